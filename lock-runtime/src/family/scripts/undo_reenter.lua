-- Undo a re-entry whose caller gave up while its request was in flight.
--
-- KEYS[1]  lock key (hash of owner id -> hold count, and the owner's record, see common.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  fencing state (see acquire.lua): counted past the owner's token if the lock is
--          freed (see end_hold in common.lua); a lock handed over directly takes the next token
-- KEYS[4]  queue of waiting owner ids (see acquire.lua)
-- KEYS[5]  their liveness deadlines (see acquire.lua)
-- KEYS[6]  what each waiter waits for: the lease of a direct hand-over (see acquire.lua)
-- KEYS[7]  notes of the lock's holds that ended without their release (see note_lost in
--          common.lua)
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  owner id
-- ARGV[2]  the re-entry's number (see reenter.lua)
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[4]  how long the fencing state lives, in milliseconds (see acquire.lua)
--
-- Returns:
--   1   the re-entry had counted: its hold given back (if it was the owner's last, the lock
--       deleted and passed on to the head of the queue)
--   0   it had not landed: it never will count now (its number is spent in the owner's record)
--
-- Safe to resend, and a copy counts once however late it lands, as does a copy of the re-entry
-- (see give_back_hold in common.lua): no key is left behind.

local lock = KEYS[1]
if redis_call('type', lock).ok ~= 'hash' then
    return 0
end
local left = give_back_hold(lock, ARGV[1], ARGV[2], true)
if not left then
    return 0
end
if left == 0 then
    end_hold(key_of(lock, 'fence'))
    redis_call('del', lock)
    pass_on(lock, ARGV[4], ARGV[3])
end
return 1
