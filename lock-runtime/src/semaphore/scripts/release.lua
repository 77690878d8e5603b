-- Give back every permit of one acquisition, and wake the waiters they let in.
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  memo key of this request: a resend answers what the first attempt did
-- KEYS[4]  unused (the locks' fencing state)
-- KEYS[5]  queue of waiting permit ids (see acquire.lua)
-- KEYS[6]  their liveness deadlines
-- KEYS[7]  the permits each waiter wants
-- KEYS[8]  the leases of the acquisitions (see sem.lua)
--
-- ARGV[1]  permit id
-- ARGV[2]  memo TTL in milliseconds
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[4]  unused (the locks' fencing state TTL)
--
-- Returns:
--   1   released: the permits are free again, and the waiters they fit were woken by name
--   0   this permit id holds nothing (its lease ran out, or it was released already by id)
--  -1   KEYS[1] holds a value of another type

local memo = redis.call('get', KEYS[3])
if memo then
    return tonumber(memo)
end

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return -1
end

local result = 0
if kind == 'hash' then
    expire_permits(KEYS[1], KEYS[8], server_ms())
    if give_back(KEYS[1], KEYS[8], ARGV[1]) then
        result = 1
        wake_fitting(KEYS[1], {queue = KEYS[5], alive = KEYS[6], wants = KEYS[7]}, KEYS[2], ARGV[3])
    end
end
redis.call('set', KEYS[3], result, 'px', ARGV[2])
return result
