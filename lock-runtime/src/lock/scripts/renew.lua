-- Extend the lease of a lock this owner holds (the watchdog's renewal).
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  fencing state (see acquire.lua): kept at least as long as the lock
--
-- ARGV[1]  owner id
-- ARGV[2]  new lease in milliseconds
-- ARGV[3]  how long the fencing state outlives the last acquisition, in milliseconds
--
-- Returns:
--   1   renewed
--   0   this owner does not hold the lock any more: the lease is lost
--
-- Renewing twice is harmless, so a resent renewal needs no memo.

if redis.call('type', KEYS[1]).ok == 'hash' and redis.call('hexists', KEYS[1], ARGV[1]) == 1 then
    redis.call('pexpire', KEYS[1], ARGV[2])
    redis.call('pexpire', KEYS[2], math.max(tonumber(ARGV[2]), tonumber(ARGV[3])))
    return 1
end
return 0
