-- Take a read hold for a new owner: shared with other readers, refused while a write is held
-- (unless it is the caller's own scope's: a downgrade) or a live writer queues ahead; else queue.
--
-- KEYS[1]  lock key: hash of `writer`, owner id -> hold count and `~who:<owner id>` (see rw.lua)
-- KEYS[2]  fencing state (see lock/scripts/acquire.lua)
-- KEYS[3]  the owner id's mark: this acquisition takes nothing new (see abandoned in
--          family/scripts/common.lua)
-- KEYS[4]  queue: sorted set of waiting owner ids, by the server time (µs) of their first try
-- KEYS[5]  liveness: sorted set of waiting owner ids, by the server time (ms) they are live until
-- KEYS[6]  wants: hash of waiting owner ids -> `read` or `write`
-- KEYS[7]  leases: sorted set of owner id -> server time (ms) its hold's lease ends
-- KEYS[8]  notes of the lock's holds that ended without their release (see note_lost in
--          family/scripts/common.lua): a take of the free lock notes a period that ended
--          unseen, and a hold whose lease ended is noted as it is dropped
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  owner id, new to this acquisition (it is also the waiter's id in the queue)
-- ARGV[2]  who takes it: "<client name> <ms since the Unix epoch>", by the client's clock,
--          recorded with the hold (see hold in rw.lua)
-- ARGV[3]  lease in milliseconds (see lease_of in common.lua)
-- ARGV[4]  liveness period in milliseconds: a waiter that does not try again within it is gone
-- ARGV[5]  longest sleep in milliseconds before a waiter must try again (well under ARGV[4])
-- ARGV[6]  unused (the exclusive locks' hand-over lease)
-- ARGV[7]  "1" if this owner queued on an earlier try, "0" otherwise
-- ARGV[8]  how long to mark the owner id when this copy takes or re-arms the hold, in ms, or
--          "0" (see lock/scripts/acquire.lua)
-- ARGV[9]  optional: the owner id of the write hold of the caller's scope; the read is granted
--          alongside it (a downgrade)
-- The last arguments are left out at their defaults (see lock/scripts/acquire.lua).
--
-- Returns {status, value}:
--   token           acquired (a bare integer, as every acquire of the family answers);
--                   token: see hold_token in rw.lua
--   { 0, wait, now, who, waiters}  not now: queued (its liveness refreshed); try again within
--                    `wait` ms (the nearest lease end, or ARGV[5]); `now` is the server time in
--                    µs; `who` the holds in the way (see holders_seen in rw.lua), `waiters` the
--                    queue's length
--   {-1, type}       KEYS[1] holds a value of another type
--   {-3, 0}          this owner id is marked: a late copy of a request whose caller gave up
--                    or whose acquisition already took its hold

local decided, keys, seen, now_us, now, ends = acquire_start(KEYS[1], ARGV, false)
if decided then
    return decided
end
local lock, leases = keys.lock, keys.leases
local q = queue_of(lock, keys.queue)

local granted
if seen.writer then
    granted = ARGV[9] ~= nil and seen.writer == ARGV[9]
else
    granted = not writer_ahead(q, ARGV[1], now)
end
if granted then
    if ARGV[7] == '1' then
        dequeue(q, ARGV[1])
    end
    local starts = not seen.writer and redis_call('exists', lock) == 0
    local fence = fence_seen(lock, keys.fence, starts)
    hold(lock, leases, ARGV[1], ends, ARGV[2], false)
    expire_with_last(lock, leases)
    mark_taken(keys.mark, ARGV[8])
    return hold_token(keys.fence, FENCE_TTL, starts, fence, now_us)
end

local liveness, refresh = waiter_times(ARGV)
enqueue(q, ARGV[1], now_us, liveness, 'read')
local wait = next_try(leases, now, refresh)
local who = holders_seen(lock, leases, mode_of(lock, seen.writer))
return {0, wait, now_us, who, redis_call('zcard', q.queue)}
