-- Re-enter a lock the caller's scope holds: one more hold under the same owner id.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  memo key of this request: a resend counts once
--
-- ARGV[1]  owner id of the scope's hold
-- ARGV[2]  memo TTL in milliseconds
--
-- Returns:
--   1   re-entered (the lease is the outer hold's; the token too)
--   0   this owner no longer holds the lock: the lease is lost
--  -1   KEYS[1] holds a value of another type
--  -2   this request was cancelled (undo_reenter.lua ran first): nothing taken
--
-- The memo: see reenter in common.lua.

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return -1
end
return reenter(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
