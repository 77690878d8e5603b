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
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  owner id
-- ARGV[2]  the id of this request, which names its memo key (KEYS[3])
-- ARGV[3]  memo TTL in milliseconds; left out for MEMO_MS (see memo_ttl_of in common.lua)
-- ARGV[4]  the number of the hold: 0 for the acquisition's, a re-entry's own otherwise (see
--          common.lua); "" (and left out) for the acquisition's hold of an owner that never
--          re-entered, whose re-entry record is not read (see give_back in common.lua)
-- ARGV[5]  publish command: "spublish" on Redis Cluster; left out for "publish"
-- Arguments at their default are left out from the last: Redis reads every argument from the
-- request, at about half the cost of a command of the release.
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
-- give_back in common.lua), and never comes back (an owner id is new to each acquisition, a
-- re-entry's number to each re-entry). The memo only lets a resend answer what the first attempt
-- did, so it is read only when the hold is not found: a request that finds its hold is the
-- first of its copies to run. A copy that finds none writes no memo: any later copy finds none
-- either, and answers 0 as it did.
--
-- The acquisition's hold, alone, costs four commands: the HGET of the hold (through
-- redis_pcall: its failure tells a value of another type, see refused_type), the DEL, the
-- EXISTS that finds no waiter (see pass_on), and the SET of the memo.

local lock, owner, request = KEYS[1], ARGV[1], ARGV[2]
local number, publish = ARGV[4] or '', ARGV[5] or 'publish'
local holds, record
if number == '' then
    holds = redis_pcall('hget', lock, owner)
else
    holds = redis_pcall('hmget', lock, owner, record_field(owner))
    if not holds.err then
        holds, record = holds[1], holds[2]
    end
end
if refused_type(lock, holds) then
    return tonumber(redis_call('get', key_of(lock, 'memo', request))) or -1
end

local left = give_back(lock, owner, number, false, holds, record)
if not left then
    return tonumber(redis_call('get', key_of(lock, 'memo', request))) or 0
end
-- The memo is written as a string: a Lua number would cost a float formatting.
if left > 0 then
    redis_call('set', key_of(lock, 'memo', request), '2', 'px', memo_ttl_of(ARGV))
    return 2
end
redis_call('del', lock)
pass_on(lock, FENCE_TTL, publish)
redis_call('set', key_of(lock, 'memo', request), '1', 'px', memo_ttl_of(ARGV))
return 1
