-- An acquisition (reentrant or fair) ends without a guard (its wait ran out, it failed, its
-- caller gave up, or the lock it took will not be handed out): leave the queue, give back
-- whatever the request took, and, if a copy of its request may still be on its way, mark the
-- owner abandoned so that copy takes nothing.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  wake-up channel
-- KEYS[3]  abandoned mark of the owner id (see acquire.lua)
-- KEYS[4]  fencing state (see acquire.lua): counted past the owner's token if it took the
--          lock (see end_hold in common.lua); a lock handed over directly takes the next token
-- KEYS[5]  queue of waiting owner ids (see acquire.lua)
-- KEYS[6]  their liveness deadlines (see acquire.lua)
-- KEYS[7]  what each waiter waits for: the lease of a direct hand-over (see acquire.lua)
-- KEYS[8]  notes of the lock's holds that ended without their release (see note_lost in
--          common.lua)
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  owner id of the acquisition
-- ARGV[2]  how long the mark lives, in milliseconds; 0: no mark (no request of this owner can
--          still be on its way: its wait just ended)
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[4]  how long the fencing state lives, in milliseconds (see acquire.lua)
--
-- Returns:
--   1   the acquisition had taken the lock: released
--   0   it had not: it never will now
--
-- If the lock is free afterwards, it is passed on to the new head of the queue (pass_on in
-- common.lua), so the waiters behind a leaving head do not wait for its liveness to run out.
-- Safe to resend.

local lock, owner = KEYS[1], ARGV[1]
if tonumber(ARGV[2]) > 0 then
    redis_call('set', key_of(lock, 'abandoned', owner), 1, 'px', ARGV[2])
end
dequeue(queue_of(lock), owner)

local released = 0
local kind = redis_call('type', lock).ok
if kind == 'hash' and redis_call('hexists', lock, owner) == 1 then
    end_hold(key_of(lock, 'fence'))
    redis_call('del', lock)
    released = 1
    kind = 'none'
end
if kind == 'none' then
    pass_on(lock, ARGV[4], ARGV[3])
end
return released
