-- A read or write acquisition ends without a guard (its wait ran out, it failed, its caller gave
-- up, or the hold it took will not be handed out): leave the queue, give back whatever the
-- request took, and, if a copy of its request may still be on its way, mark the owner abandoned
-- so that copy takes nothing.
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  abandoned mark of the owner id (see acquire_read.lua)
-- KEYS[4]  fencing state (see rw.lua): counted past the period if the lock is freed
-- KEYS[5]  queue of waiting owner ids
-- KEYS[6]  their liveness deadlines
-- KEYS[7]  what each waits for: `read` or `write`
-- KEYS[8]  the leases of the holds (see rw.lua)
-- KEYS[9]  notes of the lock's holds that ended without their release (see note_lost in
--          family/scripts/common.lua): a hold whose lease ended is noted as it is dropped
--
-- ARGV[1]  owner id of the acquisition
-- ARGV[2]  how long the mark lives, in milliseconds; 0: no mark
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[4]  unused
--
-- Returns:
--   1   the acquisition had taken a hold: released
--   0   it had not: it never will now
--
-- A writer leaving the head of the queue lets the readers behind it in: whoever may enter now is
-- woken (wake_next in rw.lua). Safe to resend.

if tonumber(ARGV[2]) > 0 then
    redis_call('set', KEYS[3], 1, 'px', ARGV[2])
end
local q = {queue = KEYS[5], alive = KEYS[6], wants = KEYS[7]}
dequeue(q, ARGV[1])

local kind = redis_call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return 0
end
local mode = expire_holds(KEYS[1], KEYS[8], server_ms())
if redis_call('hexists', KEYS[1], ARGV[1]) == 1 then
    drop_hold(KEYS[1], KEYS[8], ARGV[1])
    wake_next(settle(KEYS[1], KEYS[8]), KEYS[1], ARGV[3])
    return 1
end
wake_next(mode, KEYS[1], ARGV[3])
return 0
