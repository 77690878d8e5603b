-- The Redisson-style reference's acquire (lock-bench only; not a script of lock-runtime).
--
-- Written for the benchmark from the algorithm of Redisson's reentrant lock (`RLock`: the acquire
-- script of `RedissonLock.tryLockInnerAsync`, redisson/redisson on GitHub), so that lock-bench
-- can put Redis's cost per acquisition beside that of the most used Redis lock. The lock is a hash
-- whose one field is the owner and whose value counts its holds.
--
-- KEYS[1]  the lock's hash
-- ARGV[1]  the lease, in milliseconds
-- ARGV[2]  the owner (a client id and a thread or task id)
--
-- Returns nil when the owner now holds the lock (taken, or entered once more), else the lock's
-- remaining time to live in milliseconds (another owner holds it).

local free = redis.call('exists', KEYS[1]) == 0
if free or redis.call('hexists', KEYS[1], ARGV[2]) == 1 then
    redis.call('hincrby', KEYS[1], ARGV[2], 1)
    redis.call('pexpire', KEYS[1], ARGV[1])
    return nil
end
return redis.call('pttl', KEYS[1])
