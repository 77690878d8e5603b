-- Run a pipeline's commands only if an owner still holds its lock: the check and the writes are
-- one script, so a holder whose lease ran out (or whose lock was force-unlocked or taken over)
-- cannot write, even before it learns of the loss.
--
-- KEYS[1]  lock key: hash of owner id -> hold count (the reentrant, fair or write lock)
-- KEYS[2]  the per-hold leases of a read-write lock (see rwlock/scripts/rw.lua); unused by the
--          exclusive locks, whose key's TTL is the lease
--
-- ARGV[1]  owner id of the hold
-- ARGV[2]  "1" if the hold's lease is kept in KEYS[2] (a write hold), "0" otherwise
-- ARGV[3]  the number of commands
-- ARGV[4…] the commands, each as its argument count followed by its arguments (name first)
--
-- Returns:
--   {0}           the owner does not hold the lock: nothing ran
--   {1, replies}  every command ran, in order; replies holds each one's reply, an error reply
--                 where a command failed (the others still ran, as in a pipeline)
--
-- The commands' keys are not declared (the client cannot tell keys from other arguments). The
-- script is sent with a `#!lua` shebang (lock/scripts.rs), so on Redis Cluster Redis lets it
-- touch keys of its declared keys' slot only: the lock's.

local holds = redis.call('type', KEYS[1]).ok == 'hash' and redis.call('hexists', KEYS[1], ARGV[1]) == 1
if holds and ARGV[2] == '1' then
    local ends = tonumber(redis.call('zscore', KEYS[2], ARGV[1]))
    holds = ends ~= nil and ends >= server_ms()
end
if not holds then
    return {0}
end

local replies = {}
local at = 4
for index = 1, tonumber(ARGV[3]) do
    local count = tonumber(ARGV[at])
    replies[index] = redis.pcall(unpack(ARGV, at + 1, at + count))
    at = at + count + 1
end
return {1, replies}
