-- Raise a lock's fencing state to a token handed out elsewhere (a Redlock's quorum token), while
-- this owner holds the lock.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  fencing state: the last token handed out for this name (see next_token in common.lua)
--
-- ARGV[1]  owner id
-- ARGV[2]  the token, in decimal
-- ARGV[3]  how long fencing state created here lives, in milliseconds
--
-- Returns:
--   1   the fencing state is at the token or above: every later token of this lock is greater
--   0   this owner does not hold the lock any more: nothing changed
--
-- Checking the hold first orders the raise before any later acquisition of this lock, whose
-- token is then above the raised state. Raising twice is harmless, so a resent raise needs no
-- memo. An existing state keeps its TTL (it was set when the state was created).

if redis.call('type', KEYS[1]).ok ~= 'hash' or redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
    return 0
end
local last = tonumber(redis.call('get', KEYS[2]))
if not last then
    redis.call('set', KEYS[2], ARGV[2], 'px', ARGV[3])
elseif last < tonumber(ARGV[2]) then
    redis.call('set', KEYS[2], ARGV[2], 'keepttl')
end
return 1
