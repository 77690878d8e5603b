-- Release one hold of a lock (reentrant or fair); at the last hold, delete it and pass it on to
-- the waiter at the head of the queue.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  wake-up channel
-- KEYS[3]  memo key of this request: a resend answers what the first attempt did
-- KEYS[4]  fencing state (see acquire.lua): a lock handed over directly takes the next token
-- KEYS[5]  queue of waiting owner ids (see acquire.lua)
-- KEYS[6]  their liveness deadlines (see acquire.lua)
-- KEYS[7]  what each waiter waits for: the lease of a direct hand-over (see acquire.lua)
--
-- ARGV[1]  owner id
-- ARGV[2]  memo TTL in milliseconds
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[4]  how long the fencing state lives, in milliseconds (see acquire.lua)
--
-- Returns:
--   1   released: this was the last hold; the lock was handed to the head waiter or is free
--   2   one hold released; the owner still holds the lock
--   0   this owner does not hold the lock (its lease ran out, or it was force-unlocked)
--  -1   KEYS[1] holds a value of another type
--
-- The wake-up names the first live waiter (pass_on in common.lua): only that task wakes, in
-- whichever process it waits, so a release costs one wake-up across every process. A waiter of
-- the fair lock is handed the lock in the same step (direct hand-over); any other tries. Dead
-- waiters ahead of it leave the queue.

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
        pass_on(KEYS[1], KEYS[4], ARGV[4], {queue = KEYS[5], alive = KEYS[6], wants = KEYS[7]}, KEYS[2], ARGV[3])
    end
end
redis.call('set', KEYS[3], result, 'px', ARGV[2])
return result
