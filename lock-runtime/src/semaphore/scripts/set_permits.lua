-- Set a semaphore's total of permits, once.
--
-- KEYS[1]  the semaphore (see sem.lua)
--
-- ARGV[1]  the total
--
-- Returns 1 set, 0 it was set already (left as it is), -1 KEYS[1] holds a value of another type.

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return -1
end
if redis.call('hsetnx', KEYS[1], 'total', ARGV[1]) == 0 then
    return 0
end
redis.call('hsetnx', KEYS[1], 'used', 0)
return 1
