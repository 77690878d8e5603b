-- Undo a re-entry of a read or write hold whose caller gave up while its request was in flight.
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  fencing state (see rw.lua): counted past the period if the lock is freed
-- KEYS[4]  queue of waiting owner ids
-- KEYS[5]  their liveness deadlines
-- KEYS[6]  what each waits for: `read` or `write`
-- KEYS[7]  the leases of the holds (see rw.lua)
-- KEYS[8]  notes of the lock's holds that ended without their release (see note_lost in
--          family/scripts/common.lua): a hold whose lease ended is noted as it is dropped
--
-- ARGV[1]  owner id
-- ARGV[2]  the re-entry's number (see reenter.lua)
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[4]  unused
--
-- Returns:
--   1   the re-entry had counted: its count given back (the lock passed on if it was the last)
--   0   it had not landed: it never will count now (its number is spent in the hold's record)
--
-- Safe to resend, and a copy counts once however late it lands, as does a copy of the re-entry
-- (see give_back_hold in family/scripts/common.lua): no key is left behind.

if redis_call('type', KEYS[1]).ok ~= 'hash' then
    return 0
end
expire_holds(KEYS[1], KEYS[7], server_ms())
if give_back(KEYS[1], KEYS[7], ARGV[1], ARGV[2], true, ARGV[3]) == 0 then
    return 0
end
return 1
