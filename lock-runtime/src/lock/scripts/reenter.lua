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
-- Memo values: "entered" once counted; "cancelled" or "undone" once undo_reenter.lua ran.

local memo = redis.call('get', KEYS[2])
if memo == 'entered' then
    return 1
end
if memo then
    return -2
end

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return -1
end
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
    return 0
end
redis.call('hincrby', KEYS[1], ARGV[1], 1)
redis.call('set', KEYS[2], 'entered', 'px', ARGV[2])
return 1
