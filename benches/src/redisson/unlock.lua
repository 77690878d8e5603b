-- The Redisson-style reference's release (lock-bench only; not a script of lock-runtime).
--
-- Written for the benchmark from the algorithm of Redisson's reentrant lock (`RLock`: the release
-- script of `RedissonLock.unlockInnerAsync`, redisson/redisson on GitHub). A release first looks
-- for the memo of its own request, so a resent release answers what the first did; else it counts
-- one hold down, and the last hold deletes the lock, tells the waiters on the lock's channel and
-- writes the memo. (Redisson's client also sends a `DEL` of the memo once the reply is in; the
-- reference leaves it out, so it costs Redis less than Redisson does.)
--
-- KEYS[1]  the lock's hash
-- KEYS[2]  the lock's channel
-- KEYS[3]  the memo of this release request
-- ARGV[1]  the message published to the waiters
-- ARGV[2]  the lease, in milliseconds (kept while holds remain)
-- ARGV[3]  the owner
-- ARGV[4]  the publish command (`publish`, or `spublish` on a sharded cluster)
-- ARGV[5]  how long the memo lives, in milliseconds
--
-- Returns 1 when the lock was released, 0 when the owner still holds it (it had entered it more
-- than once), nil when the owner did not hold it; a resent request returns what the first did.

local memo = redis.call('get', KEYS[3])
if memo then
    return tonumber(memo)
end
if redis.call('hexists', KEYS[1], ARGV[3]) == 0 then
    return nil
end
if redis.call('hincrby', KEYS[1], ARGV[3], -1) > 0 then
    redis.call('pexpire', KEYS[1], ARGV[2])
    redis.call('set', KEYS[3], 0, 'px', ARGV[5])
    return 0
end
redis.call('del', KEYS[1])
redis.call(ARGV[4], KEYS[2], ARGV[1])
redis.call('set', KEYS[3], 1, 'px', ARGV[5])
return 1
