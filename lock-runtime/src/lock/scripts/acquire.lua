-- Take a free lock for a new owner (newcomers may barge), or queue to be woken by name.
--
-- KEYS[1]  lock key: hash of owner id -> hold count, with the lease as its TTL
-- KEYS[2]  fencing state: the last token handed out for this name, under a TTL set when it was
--          created
-- KEYS[3]  the owner id's mark: this acquisition takes nothing new (see abandoned in common.lua)
-- KEYS[4]  queue: sorted set of waiting owner ids, by the server time (µs) of their first try
-- KEYS[5]  liveness: sorted set of waiting owner ids, by the server time (ms) they are live until
-- KEYS[6]  wants: hash of waiting owner ids -> what each waits for (here: the lease a release
--          hands it the lock with, for the waiters that take a direct hand-over)
-- KEYS[7]  notes of the lock's holds that ended without their release (see note_lost in
--          common.lua), written when a take finds one
-- Only KEYS[1] is read: the others are named from it (key_of and queue_of in
-- common.lua), and declared for a cluster only (see core/lua.rs).
--
-- ARGV[1]  owner id (client id ":" scope id), new to this acquisition; also its waiter id
-- ARGV[2]  who takes it: "<client name> <ms since the Unix epoch>", by the client's clock,
--          recorded with the hold (see take in common.lua)
-- ARGV[3]  lease in milliseconds (see lease_of in common.lua)
-- ARGV[4]  liveness period in milliseconds: a waiter that does not try again within it is gone
-- ARGV[5]  longest sleep in milliseconds before a waiter must try again (well under ARGV[4])
-- ARGV[6]  the lease in ms a release may hand this owner the lock with while it waits (the fair
--          lock's direct hand-over), or "0": woken by name only (see pass_on in common.lua)
-- ARGV[7]  "1" if this owner queued on an earlier try (it leaves the queue when it takes the
--          lock), "0" otherwise (the uncontended path touches no queue key)
-- ARGV[8]  how long to mark the owner id when this copy takes or re-arms the hold, in ms: a
--          request of this acquisition went out more than once; "0": no copy of one can still
--          be on its way (see mark_taken in common.lua)
-- ARGV[9]  the primitive's own argument, where it has one (the read-write lock's, the
--          semaphore's acquires)
-- Arguments at their default are left out from the last: "0", but ARGV[3], ARGV[4] and
-- ARGV[5], whose defaults are those of the default `watchdog_timeout` (see lease_of and
-- waiter_times in common.lua). Redis
-- reads every argument from the request, at about half the cost of a command of the take. The
-- fencing state's TTL is FENCE_TTL in common.lua.
--
-- Returns {status, value}:
--   token        acquired (a bare integer, not a table: the common reply costs Redis least);
--                token is strictly greater than every earlier one for this name
--   { 0, wait, now, who, waiters}  held by another owner: this owner is queued (its liveness
--                refreshed) and must try again within `wait` ms (the holder's remaining lease,
--                or ARGV[5]); `now` is the server time in µs (a direct hand-over is timed from
--                it); `who` the holder's record ("<client name> <ms>", or ''), `waiters`
--                the queue's length
--   {-1, type}   KEYS[1] holds a value of another type: not ours to touch
--   {-3, 0}      this owner id is marked: a late copy of a request whose caller gave up or
--                whose acquisition already took its hold
--
-- A free lock goes to whoever asks (barging is allowed: that is the reentrant lock's contract);
-- the queue only says whom a release wakes: the longest-queued live waiter, by name, so a release
-- wakes one task across every process instead of one per process. The fair lock's acquire
-- (fair_lock/scripts/acquire.lua) gives a free lock to the head of the queue only.
--
-- An owner id is unique to one acquire call, so finding it already in the hash means this request
-- is a resend of one that succeeded (see rearm in common.lua).
--
-- The common path, a free lock and an unmarked owner, costs one EXISTS of both keys before the
-- three commands of take (common.lua). Only a lock or a mark found costs more: the HGET of the
-- owner's hold in rearm (common.lua; its failure tells a value of another type, so no TYPE is
-- asked), then the PTTL that tells which of the two was found.
--
-- Tokens: see next_token in common.lua.

local lock, owner = KEYS[1], ARGV[1]
local mark = key_of(lock, 'abandoned', owner)
local found = redis_call('exists', lock, mark)
local reply = take_or_rearm(lock, mark, ARGV, found)
if reply then
    return reply
end

-- Not this owner's hold: the lock is another's, or the owner is marked (see abandoned in
-- common.lua), or both. The lock exists unless its PTTL says -2; else the one key found is the
-- mark.
local pttl = redis_call('pttl', lock)
if pttl == -2 or found == 2 then
    return {-3, 0}
end

local q = queue_of(lock)
local now_us = server_time()
local want = nil
if asks_hand_over(ARGV) then
    want = ARGV[6]
end
local liveness, wait = waiter_times(ARGV)
enqueue(q, owner, now_us, liveness, want)

if pttl >= 0 and pttl < wait then
    wait = pttl
end
local who, waiters = holder_seen(lock, q.queue)
return {0, wait, now_us, who, waiters}
