-- Release one hold of a lock (reentrant or fair), named by its number; at the owner's last hold,
-- delete the lock and pass it on to the waiter at the head of the queue.
--
-- KEYS[1]  lock key (hash of owner id -> hold count, and the owner's record, see common.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  fencing state (see acquire.lua): counted one past the hold's token as the lock is
--          freed; a lock handed over directly takes the next token
-- KEYS[4]  queue of waiting owner ids (see acquire.lua)
-- KEYS[5]  their liveness deadlines (see acquire.lua)
-- KEYS[6]  what each waiter waits for: the lease of a direct hand-over (see acquire.lua)
-- KEYS[7]  notes of the lock's holds that ended without their release (see note_lost in
--          common.lua)
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  owner id
-- ARGV[2]  the owner's fencing token, sent by a resend only: "" (and left out) for the first copy,
--          which answers from what it finds (see released_before in common.lua)
-- ARGV[3]  the number of the hold: 0 for the acquisition's, a re-entry's own otherwise (see
--          common.lua); "" (and left out) for the acquisition's hold of an owner that never
--          re-entered, whose re-entry record is not read (see give_back in common.lua)
-- ARGV[4]  publish command: "spublish" on Redis Cluster; left out for "publish"
-- Arguments at their default are left out from the last: Redis reads every argument from the
-- request, at about half the cost of a command of the release.
--
-- Returns:
--   1   released: this was the last hold; the lock was handed to the head waiter or is free
--       (or an earlier copy of this request released it, and the owner holds nothing now)
--   2   one hold released; the owner still holds the lock (or an earlier copy released it)
--   0   this owner does not hold the lock (its lease ran out, or it was force-unlocked), and
--       no copy of this request released it, as far as the lock's keys tell
--  -1   KEYS[1] holds a value of another type
--
-- The wake-up names the first live waiter (pass_on in common.lua): only that task wakes, in
-- whichever process it waits, so a release costs one wake-up across every process. A waiter of
-- the fair lock is handed the lock in the same step (direct hand-over); any other tries. Dead
-- waiters ahead of it leave the queue.
--
-- A copy counts once, however late it lands: the hold it names is gone after the first (see
-- give_back in common.lua), and never comes back (an owner id is new to each acquisition, a
-- re-entry's number to each re-entry). A resend that finds its hold gone answers what the first
-- copy did from the lock's own keys, with no key per request: the owner's other holds (a
-- re-entry's hold given back while the owner holds the lock), or the fencing state and the
-- notes of lost holds (see released_before in common.lua). The first copy finds its hold, or
-- answers 0.
--
-- The acquisition's hold, alone, costs four commands: the HGET of the hold (through
-- redis_pcall: its failure tells a value of another type, see refused_type), the INCR of the
-- fencing state, the DEL, and the EXISTS that finds no waiter (see pass_on).

local lock, owner, token = KEYS[1], ARGV[1], ARGV[2] or ''
local number, publish = ARGV[3] or '', ARGV[4] or 'publish'
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
    return token ~= '' and released_before(lock, token) and 1 or -1
end

local left = give_back(lock, owner, number, false, holds, record)
if not left then
    if token == '' then
        return 0
    end
    if holds then
        return 2
    end
    return released_before(lock, token) and 1 or 0
end
if left > 0 then
    return 2
end
end_hold(key_of(lock, 'fence'))
redis_call('del', lock)
pass_on(lock, FENCE_TTL, publish)
return 1
