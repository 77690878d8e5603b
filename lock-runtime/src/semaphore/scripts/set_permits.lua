-- Set a semaphore's total of permits, once.
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  the semaphore's recent requests (see requests.lua): a request that ran already
--          answers what it did and changes nothing, however late its copy lands (a semaphore
--          deleted since is not made again)
--
-- ARGV[1]  the total
-- ARGV[2]  id of this request
-- ARGV[3]  how long a copy of a request may land after it ran, in milliseconds (see requests.lua)
--
-- Returns {status, total}: status 1 set, 0 it was set already (left as it is), -1 KEYS[1] holds
-- a value of another type; total the semaphore's total as this run leaves it (0 if there is
-- none: another type, or a semaphore deleted since an earlier copy of this request ran).

local ran = ran_already(KEYS[2], ARGV[2])
local kind = redis_call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return {-1, 0}
end
if ran then
    return {ran, tonumber(redis_call('hget', KEYS[1], 'total') or '0')}
end
local result = 0
if redis_call('hsetnx', KEYS[1], 'total', ARGV[1]) == 1 then
    redis_call('hsetnx', KEYS[1], 'used', 0)
    -- Set again after a deletion, whose count of lone acquisitions carries on (delete.lua).
    redis_call('persist', KEYS[1])
    result = 1
end
record_run(KEYS[2], ARGV[2], result, ARGV[3])
return {result, tonumber(redis_call('hget', KEYS[1], 'total'))}
