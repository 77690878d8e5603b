-- An acquisition ends without a permit handed out (its wait ran out, it failed, its caller gave
-- up, or the permits it took will not be handed out): leave the queue, give back whatever the
-- request took, and, if a copy of its request may still be on its way, mark the permit id
-- abandoned so that copy takes nothing.
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  abandoned mark of the permit id (see acquire.lua)
-- KEYS[4]  unused (the locks' fencing state)
-- KEYS[5]  queue of waiting permit ids
-- KEYS[6]  their liveness deadlines
-- KEYS[7]  the permits each waiter wants
-- KEYS[8]  the leases of the acquisitions (see sem.lua)
-- KEYS[9]  the lone acquisition's lease (see sem.lua)
-- KEYS[10] notes of acquisitions that ended without their release (see sem.lua)
--
-- ARGV[1]  permit id of the acquisition
-- ARGV[2]  how long the mark lives, in milliseconds; 0: no mark
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[4]  unused
--
-- Returns:
--   1   the acquisition had taken permits: given back
--   0   it had not: it never will now
--
-- Whoever now fits is woken (a large request leaving the head of the queue lets the smaller ones
-- behind it in). Safe to resend.

if tonumber(ARGV[2]) > 0 then
    redis_call('set', KEYS[3], 1, 'px', ARGV[2])
end
local q = {queue = KEYS[5], alive = KEYS[6], wants = KEYS[7]}
dequeue(q, ARGV[1])

if redis_call('type', KEYS[1]).ok ~= 'hash' then
    return 0
end
local now = server_ms()
expire_all(KEYS[1], KEYS[8], now)
local released = 0
if give_back(KEYS[1], KEYS[8], ARGV[1]) then
    released = 1
end
wake_fitting(KEYS[1], available(KEYS[1]), now, ARGV[3])
return released
