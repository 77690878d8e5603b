-- Raise a lock's fencing state to a token handed out elsewhere (a Redlock's quorum token), while
-- this owner holds the lock.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  fencing state: the last token handed out for this name (see next_token in common.lua)
--
-- ARGV[1]  owner id
-- ARGV[2]  the token, in decimal
-- ARGV[3]  how long the fencing state lives once raised, in milliseconds (the fence TTL)
--
-- Returns:
--   1   the fencing state is at the token or above: every later token of this lock is greater
--   0   this owner does not hold the lock any more: nothing changed
--
-- Checking the hold first orders the raise before any later acquisition of this lock, whose
-- token is then above the raised state. Raising twice is harmless, so a resent raise needs no
-- memo.
--
-- A raised state lives the full fence TTL from the raise, like a state this master created
-- from its own clock: when it expires, this master restarts from its clock, which by then has
-- moved a fence TTL past the raise, while the token came from a clock read at or before the
-- raise. So the restart is above the token unless this master's clock lags the one that issued
-- it by a fence TTL or more. (Keeping the TTL of the state raised, which may have been created
-- almost a fence TTL earlier, let it expire moments after the raise: a later quorum that shared
-- only this master then restarted from a clock that could be behind the token.) A state already
-- at the token or above is left as it is: it came from a clock read no later than its own TTL
-- began, so the same argument holds for it.

if redis.call('type', KEYS[1]).ok ~= 'hash' or redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
    return 0
end
local last = tonumber(redis.call('get', KEYS[2]))
if not last or last < tonumber(ARGV[2]) then
    redis.call('set', KEYS[2], ARGV[2], 'px', ARGV[3])
end
return 1
