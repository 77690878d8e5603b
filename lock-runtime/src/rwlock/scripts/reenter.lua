-- Re-enter a read or write hold the caller's scope has: one more count under the same owner id.
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  the leases of the holds (see rw.lua)
-- KEYS[3]  fencing state (see rw.lua): counted past the period if dropping ended holds frees
--          the lock
-- KEYS[4]  notes of the lock's holds that ended without their release (see note_lost in
--          family/scripts/common.lua): a hold whose lease ended is noted as it is dropped
--
-- ARGV[1]  owner id of the scope's hold
-- ARGV[2]  the re-entry's number (see reenter in family/scripts/common.lua)
--
-- Returns: as family/scripts/reenter.lua (1 re-entered, 0 the hold is gone: its lease ended, -1
-- wrong type, -2 the number is spent). A hold whose lease ended is dropped first, so it cannot
-- be re-entered. A copy counts once, however late it lands.

local kind = redis_call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return -1
end
expire_holds(KEYS[1], KEYS[2], server_ms())
return reenter(KEYS[1], ARGV[1], ARGV[2])
