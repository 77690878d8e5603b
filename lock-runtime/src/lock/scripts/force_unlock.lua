-- Delete a lock whoever holds it, and wake a waiter.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  wake-up channel
--
-- ARGV[1]  wake-up message
-- ARGV[2]  publish command: "publish", or "spublish" on Redis Cluster
--
-- Returns:
--   1   a lock was there and is gone
--   0   nothing was locked
--  -1   KEYS[1] holds a value of another type (left untouched)

local kind = redis.call('type', KEYS[1]).ok
if kind == 'none' then
    return 0
end
if kind ~= 'hash' then
    return -1
end
redis.call('del', KEYS[1])
redis.pcall(ARGV[2], KEYS[2], ARGV[1])
return 1
