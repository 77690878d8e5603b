-- Extend the lease of a lock this owner holds (the watchdog's renewal).
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
--
-- ARGV[1]  owner id
-- ARGV[2]  new lease in milliseconds
--
-- Returns:
--   1   renewed
--   0   this owner does not hold the lock any more: the lease is lost
--
-- Renewing twice is harmless, so a resent renewal needs no memo: the watchdog resends a renewal
-- whose reply it did not get, and a copy may also land late from a connection the client retired.
-- Any copy only re-arms the TTL of a hold this owner still has, from the moment it runs: Redis
-- then keeps the lock longer than the holder believes (its local deadline is timed from the
-- send of the copy it got the reply of), which is safe. A copy that finds the hold gone or
-- another owner's changes nothing.

if redis_call('type', KEYS[1]).ok == 'hash' and redis_call('hexists', KEYS[1], ARGV[1]) == 1 then
    redis_call('pexpire', KEYS[1], ARGV[2])
    return 1
end
return 0
