-- Give back every permit of one acquisition named by its permit id, from any process (see
-- release.lua): the call of `Semaphore::release_by_id`, whose caller has no token of the
-- acquisition, so a resend answers from a memo its first copy writes when it releases.
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  memo key of this request: a resend answers what the first attempt did
-- KEYS[4]  queue of waiting permit ids (see acquire.lua)
-- KEYS[5]  their liveness deadlines
-- KEYS[6]  the permits each waiter wants
-- KEYS[7]  the leases of the acquisitions (see sem.lua)
-- KEYS[8]  the lone acquisition (see sem.lua)
-- KEYS[9]  unused (the locks' fencing state)
-- KEYS[10] notes of acquisitions that ended without their release (see sem.lua)
--
-- ARGV[1]  permit id
-- ARGV[2]  memo TTL in milliseconds
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
--
-- Returns: as release.lua, the memo answering a copy that finds the permits gone.

local released = release_permits(KEYS[1], ARGV[1], ARGV[3])
if released == 1 then
    redis_call('set', KEYS[3], '1', 'px', ARGV[2])
end
if released ~= 0 then
    return released
end
return tonumber(redis_call('get', KEYS[3]) or '0')
