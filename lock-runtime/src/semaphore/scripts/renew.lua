-- Extend the lease of one acquisition's permits (the watchdog's renewal).
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  the leases of the acquisitions (see sem.lua)
-- KEYS[3]  the lone acquisition (see sem.lua)
-- KEYS[4]  unused (the locks' fencing state)
-- KEYS[5]  notes of acquisitions that ended without their release (see sem.lua): an
--          acquisition whose lease ended is noted as it is dropped
--
-- ARGV[1]  permit id
-- ARGV[2]  lease in milliseconds, from now
--
-- Returns 1 renewed, 0 the permits are gone (their lease ended, or they were released by id).
--
-- Renewing twice is harmless, so a resent renewal needs no memo: the watchdog resends a renewal
-- whose reply it did not get, and a copy may also land late from a connection the client retired.
-- Any copy only re-arms the lease of permits this acquisition still has, from the moment it runs:
-- Redis then keeps them longer than the holder believes (its local deadline is timed from
-- the send of the copy it got the reply of), which is safe. A copy that finds them gone
-- changes nothing.

-- The lone acquisition (see sem.lua), while there is one, is the only one holding permits.
local lone = redis_call('get', KEYS[3])
if lone then
    if lone_is(lone, ARGV[1]) then
        redis_call('pexpire', KEYS[3], ARGV[2])
        return 1
    end
    return 0
end
return renew_own_lease(KEYS[1], KEYS[2], ARGV[1], ARGV[2], expire_permits)
