-- Release one hold of a lock (reentrant or fair); at the last hold, delete it and wake the
-- waiter at the head of the queue, by name.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  wake-up channel
-- KEYS[3]  memo key of this request: a resend answers what the first attempt did
-- KEYS[4]  queue of waiting owner ids (see acquire.lua)
-- KEYS[5]  their liveness deadlines (see acquire.lua)
--
-- ARGV[1]  owner id
-- ARGV[2]  memo TTL in milliseconds
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
--
-- Returns:
--   1   released: this was the last hold; the key is gone and the head waiter was woken
--   2   one hold released; the owner still holds the lock
--   0   this owner does not hold the lock (its lease ran out, or it was force-unlocked)
--  -1   KEYS[1] holds a value of another type
--
-- The wake-up names the first live waiter ("to:<owner id>"): only that task wakes, in whichever
-- process it waits, so a release costs one wake-up across every process. Dead waiters ahead of
-- it leave the queue. The wake-up is published with pcall: a Redis user without channel rights
-- still releases (its waiters then wake at their timers).

local memo = redis.call('get', KEYS[3])
if memo then
    return tonumber(memo)
end

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return -1
end

local result = 0
if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then
    if redis.call('hincrby', KEYS[1], ARGV[1], -1) > 0 then
        result = 2
    else
        redis.call('del', KEYS[1])
        result = 1
        wake_head(KEYS[4], KEYS[5], KEYS[2], ARGV[3])
    end
end
redis.call('set', KEYS[3], result, 'px', ARGV[2])
return result
