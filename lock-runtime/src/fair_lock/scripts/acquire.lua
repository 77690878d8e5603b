-- Take a fair lock for a new owner if it is free and no one queues ahead; else queue.
--
-- KEYS[1]  lock key: hash of owner id -> hold count, with the lease as its TTL (shared with the
--          reentrant lock of the same name, so the two exclude each other)
-- KEYS[2]  fencing state (see lock/scripts/acquire.lua)
-- KEYS[3]  the owner id's mark: this acquisition takes nothing new (see abandoned in common.lua)
-- KEYS[4]  queue: sorted set of waiting owner ids, by the server time (µs) of their first try
-- KEYS[5]  liveness: sorted set of waiting owner ids, by the server time (ms) they are live until
-- KEYS[6]  wants: hash of waiting owner ids -> what each waits for (here: the lease a release
--          hands it the lock with, for the waiters that take a direct hand-over)
-- KEYS[7]  notes of the lock's holds that ended without their release (see note_lost in
--          common.lua), written when a take finds one
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV     as lock/scripts/acquire.lua: ARGV[1] owner id, new to this acquisition (it is also
--          the waiter's id in the queue), ARGV[2] who takes it, ARGV[3] lease, ARGV[4] liveness,
--          ARGV[5] longest sleep, ARGV[6] the lease of a direct hand-over (left out: the
--          default watchdog's, WATCHDOG_MS in common.lua), or "0": woken by name only, it
--          takes the lock with its next try (see pass_on in common.lua),
--          ARGV[7] "1" if this owner queued on an earlier try: one that did but is no longer
--          in the queue takes its place back at the head (see below), ARGV[8] how long to mark
--          the owner id; the last ones left out at their defaults
--
-- Returns {status, value}:
--   token        acquired (a bare integer, not a table: the common reply costs Redis least);
--                token as lock/scripts/acquire.lua
--   { 0, wait, now, who, waiters}  not this owner's turn: it is queued (its liveness refreshed)
--                and must try again within `wait` ms (the holder's remaining lease, the head's
--                liveness, or ARGV[5]; for a waiter that takes a direct hand-over, at most a
--                third of ARGV[6]); `now` is the server time in µs (a direct hand-over is timed
--                from it); `who` and `waiters` as lock/scripts/acquire.lua
--   {-1, type}   KEYS[1] holds a value of another type
--   {-3, 0}      this owner id is marked: a late copy of a request whose caller gave up or
--                whose acquisition already took its hold
--
-- FIFO by first try: a free lock goes to the head of the queue only; a newcomer queues behind it
-- (no barging). A release normally hands the lock straight to the head (pass_on in common.lua),
-- so a free lock with a queue is met only when a holder's lease ran out, or the head takes no
-- direct hand-over (a lease longer than its liveness, or a replica wait to run itself). A head
-- whose liveness ran out (a crashed process, a cancelled task whose undo was lost) is dropped
-- from the queue here and by the release, so it blocks the queue at most one liveness period.
-- Every key carries a TTL: the queue keys live one liveness period past the last waiter's try.
--
-- A hand-over message that goes astray (pub/sub is at-most-once) must not cost the head its
-- turn. The head was made the owner with its own lease; it learns so at its next try, which
-- finds the hold its own (rearm). So a waiter that takes a direct hand-over tries again within
-- a third of the lease it would be handed (as the watchdog renews every third of its lease; in
-- watchdog mode that is ARGV[5] already): its try lands long before the lease it was handed
-- runs out unused. Should the try still come too late (Redis or the client stalled for two
-- thirds of the lease), the waiter is no longer in the queue: the release took it out as the
-- head. A waiter that says it queued before (ARGV[7]) and is not in the queue was taken out at
-- its head (handed the lock, or dropped as gone), and everyone still queued came after it; it
-- goes back to the head instead of the back. A late copy of a try cannot do this for an owner
-- that has finished: the owner of a request that went out more than once is marked once it takes
-- its hold or gives up (KEYS[3]).
--
-- The common path, a free lock, an unmarked owner and no queue, costs one EXISTS of the three
-- keys before the three commands of take (common.lua): with no queue, no one is ahead, and this
-- owner is in none of the queue keys (a waiter leaves all three at once, see dequeue), unless
-- it queued on an earlier try (ARGV[7]), which it then leaves. Anything found costs more: the
-- HGET of the owner's hold in rearm (common.lua; its failure tells a value of another type, so
-- no TYPE is asked), the mark, and the PTTL that tells whether the lock is held.

local lock, owner = KEYS[1], ARGV[1]
-- Left out in watchdog mode under the default settings (see WATCHDOG_MS in common.lua).
ARGV[6] = ARGV[6] or WATCHDOG_MS
local mark, queue = key_of(lock, 'abandoned', owner), key_of(lock, 'queue')
local reply = take_or_rearm(lock, mark, ARGV, redis_call('exists', lock, mark, queue))
if reply then
    return reply
end
local q = queue_of(lock, queue)

local refused = abandoned(mark)
if refused then
    return refused
end

local pttl = redis_call('pttl', lock)
local now_us, now = server_time()
local liveness, wait = waiter_times(ARGV)

if ARGV[7] == '1' and not redis_call('zscore', q.queue, owner) then
    -- Taken out at the head (see above): back to the head, ahead of everyone queued now.
    local first = redis_call('zrange', q.queue, 0, 0, 'WITHSCORES')[2]
    local place = now_us
    if first and tonumber(first) <= place then
        place = tonumber(first) - 1
    end
    redis_call('zadd', q.queue, place, owner)
    redis_call('zadd', q.alive, now + liveness, owner)
end
local head = first_live(q, now, owner)
if pttl == -2 and (not head or head == owner) then
    dequeue(q, owner, asks_hand_over(ARGV))
    mark_taken(mark, ARGV[8])
    return take(lock, key_of(lock, 'fence'), FENCE_TTL, owner, lease_of(ARGV), ARGV[2])
end

local want = nil
if asks_hand_over(ARGV) then
    -- "<lease> <client name>": the record's time is the hand-over's (see pass_on).
    want = ARGV[6] .. ' ' .. (string.match(ARGV[2], '^(.+) %d+$') or ARGV[2])
end
enqueue(q, owner, now_us, liveness, want)

if pttl >= 0 then
    if pttl < wait then
        wait = pttl
    end
elseif pttl == -2 and head and head ~= owner then
    -- Free, but the head's turn: it has until its liveness runs out to take it.
    local head_left = tonumber(redis_call('zscore', q.alive, head)) - now
    if head_left < wait then
        wait = head_left
    end
end
if want then
    -- Within a third of the lease a release may hand it the lock with (see above).
    local within = math.max(math.floor(tonumber(ARGV[6]) / 3), 1)
    if within < wait then
        wait = within
    end
end
local who, waiters = holder_seen(lock, q.queue)
return {0, math.max(wait, 0), now_us, who, waiters}
