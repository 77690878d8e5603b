-- Delete a read-write lock whoever holds it, and wake its waiters.
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  the leases of the holds (see rw.lua)
--
-- ARGV[1]  wake-up message
-- ARGV[2]  publish command: "publish", or "spublish" on Redis Cluster
--
-- Returns:
--   1   a hold was there and is gone
--   0   nothing was held
--  -1   KEYS[1] holds a value of another type (left untouched)

local kind = redis.call('type', KEYS[1]).ok
if kind == 'none' then
    redis.call('del', KEYS[3])
    return 0
end
if kind ~= 'hash' then
    return -1
end
redis.call('del', KEYS[1], KEYS[3])
redis.pcall(ARGV[2], KEYS[2], ARGV[1])
return 1
