-- Undo a fresh acquisition whose caller gave up while its request was in flight.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  wake-up channel
-- KEYS[3]  abandoned mark of the owner id (see acquire.lua)
--
-- ARGV[1]  owner id of the abandoned acquisition
-- ARGV[2]  wake-up message published if the lock was released
-- ARGV[3]  how long the mark lives, in milliseconds: a copy of the acquire still queued on a
--          retired connection must find it
-- ARGV[4]  publish command: "publish", or "spublish" on Redis Cluster
--
-- Returns:
--   1   the acquisition had taken the lock: released
--   0   it had not: it never will now
--
-- The owner id is unique to the abandoned acquisition, and no guard was ever handed out for it,
-- so every hold it has is the request's own. Safe to resend.

redis.call('set', KEYS[3], 1, 'px', ARGV[3])
if redis.call('type', KEYS[1]).ok == 'hash' and redis.call('hexists', KEYS[1], ARGV[1]) == 1 then
    redis.call('del', KEYS[1])
    redis.pcall(ARGV[4], KEYS[2], ARGV[2])
    return 1
end
return 0
