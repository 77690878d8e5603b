-- Grow a semaphore's total of permits (setting it if it was never set), and wake the waiters the
-- new permits let in.
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  queue of waiting permit ids (see acquire.lua)
-- KEYS[4]  their liveness deadlines
-- KEYS[5]  the permits each waiter wants
-- KEYS[6]  the semaphore's recent requests (see requests.lua): a request that ran already adds
--          nothing again, however late its copy lands
--
-- ARGV[1]  how many permits to add
-- ARGV[2]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[3]  id of this request
-- ARGV[4]  how long a copy of a request may land after it ran, in milliseconds (see requests.lua)
--
-- Returns 1 added (now, or by an earlier copy of this request), -1 KEYS[1] holds a value of
-- another type.

if ran_already(KEYS[6], ARGV[3]) then
    return 1
end
local kind = redis_call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return -1
end
redis_call('hincrby', KEYS[1], 'total', ARGV[1])
redis_call('hsetnx', KEYS[1], 'used', 0)
-- Set again after a deletion, whose count of lone acquisitions carries on (delete.lua).
redis_call('persist', KEYS[1])
wake_fitting(KEYS[1], available(KEYS[1]), server_ms(), ARGV[2])
record_run(KEYS[6], ARGV[3], 1, ARGV[4])
return 1
