-- Release one hold of a lock (reentrant or fair), named by its number; at the owner's last hold,
-- delete the lock and pass it on to the waiter at the head of the queue.
--
-- KEYS[1]  lock key (hash of owner id -> hold count, and the owner's record, see common.lua)
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
-- ARGV[5]  the number of the hold: 0 for the acquisition's, a re-entry's own otherwise (see
--          common.lua)
--
-- Returns:
--   1   released: this was the last hold; the lock was handed to the head waiter or is free
--   2   one hold released; the owner still holds the lock
--   0   this owner does not hold the lock (its lease ran out, or it was force-unlocked), or no
--       longer has this hold (a copy landing after the memo of the first expired)
--  -1   KEYS[1] holds a value of another type
--
-- The wake-up names the first live waiter (pass_on in common.lua): only that task wakes, in
-- whichever process it waits, so a release costs one wake-up across every process. A waiter of
-- the fair lock is handed the lock in the same step (direct hand-over); any other tries. Dead
-- waiters ahead of it leave the queue.
--
-- A copy counts once, however late it lands: the hold it names is gone after the first (see
-- give_back_hold in common.lua). The memo only lets a resend answer what the first attempt did.
-- The acquisition's hold, alone, costs one HMGET before the DEL.

local memo = redis.call('get', KEYS[3])
if memo then
    return tonumber(memo)
end

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return -1
end

local result = 0
local left = give_back_hold(KEYS[1], ARGV[1], ARGV[5], false)
if left == 0 then
    redis.call('del', KEYS[1])
    result = 1
    local q = {queue = KEYS[5], alive = KEYS[6], wants = KEYS[7]}
    pass_on(KEYS[1], KEYS[4], ARGV[4], q, KEYS[2], ARGV[3])
elseif left then
    result = 2
end
redis.call('set', KEYS[3], result, 'px', ARGV[2])
return result
