-- Extend the lease of one read or write hold (the watchdog's renewal).
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  the leases of the holds (see rw.lua)
--
-- ARGV[1]  owner id of the hold
-- ARGV[2]  lease in milliseconds, from now
--
-- Returns 1 renewed, 0 the hold is gone (its lease ended, or the lock was force-unlocked).
--
-- Renewing twice is harmless, so a resent renewal needs no memo: the watchdog resends a renewal
-- whose reply it did not get, and a copy may also land late from a connection the client retired.
-- Any copy only re-arms the lease of a hold this owner still has, from the moment it runs:
-- Redis then keeps the hold longer than the holder believes (its local deadline is timed from
-- the send of the copy it got the reply of), which is safe. A copy that finds the hold gone
-- changes nothing.

return renew_own_lease(KEYS[1], KEYS[2], ARGV[1], ARGV[2], expire_holds, settle)
