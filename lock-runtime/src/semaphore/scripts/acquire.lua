-- Take permits for a new acquisition if enough are free; else queue.
--
-- KEYS[1]  the semaphore: hash of `total`, `used`, permit id -> permits held and
--          `~who:<permit id>` (see sem.lua)
-- KEYS[2]  unused (the locks' fencing state: a semaphore hands out no fencing token)
-- KEYS[3]  the permit id's mark: this acquisition takes nothing new (see abandoned in
--          family/scripts/common.lua)
-- KEYS[4]  queue: sorted set of waiting permit ids, by the server time (µs) of their first try
-- KEYS[5]  liveness: sorted set of waiting permit ids, by the server time (ms) they are live until
-- KEYS[6]  wants: hash of waiting permit ids -> the number of permits each wants
-- KEYS[7]  leases: sorted set of permit id -> server time (ms) its lease ends
-- KEYS[8]  the lone acquisition: a key of its permit id, permits and who took them, whose TTL
--          is its lease (see sem.lua)
-- KEYS[9]  notes of acquisitions that ended without their release (see sem.lua): a take of
--          the lone state notes a lone acquisition whose key expired unseen
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  permit id, new to this acquisition (it is also the waiter's id in the queue)
-- ARGV[2]  who takes them: "<client name> <ms since the Unix epoch>", by the client's clock,
--          recorded with the permits (see sem.lua)
-- ARGV[3]  lease in milliseconds (see lease_of in common.lua)
-- ARGV[4]  liveness period in milliseconds: a waiter that does not try again within it is gone
-- ARGV[5]  longest sleep in milliseconds before a waiter must try again (well under ARGV[4])
-- ARGV[6]  unused (the fair lock's hand-over lease)
-- ARGV[7]  unused ("1" if this acquisition queued on an earlier try: the queue itself tells,
--          resends included)
-- ARGV[8]  how long to mark the permit id when this copy takes or re-arms the permits, in ms,
--          or "0" (see lock/scripts/acquire.lua)
-- ARGV[9]  the number of permits wanted (at least 1); left out for 1, and the arguments before
--          it at their defaults with it (see lock/scripts/acquire.lua)
--
-- Returns {status, value}:
--   token           acquired (a bare integer, as every acquire of the family answers): not a
--                   fencing token, but what a resent release names (see sem.lua): the count of
--                   a lone acquisition, 0 for one kept in the hash
--   { 0, wait, now, who, waiters}  not enough free: queued (its liveness refreshed); try
--                    again within `wait` ms (the nearest lease end, or ARGV[5]); `now` is the
--                    server time in µs; `who` the acquisitions holding permits (see holders_seen
--                    in sem.lua), `waiters` the queue's length
--   {-1, type}       KEYS[1] holds a value of another type
--   {-3, 0}          this permit id is marked: a late copy of a request whose caller gave up
--                    or whose acquisition already took its permits
--   {-4, total}      more permits wanted than the semaphore has in all: it never could
--   {-5, 0}          the semaphore's permits were never set
--
-- First come, first served (see in_turn in sem.lua): permits are taken only when they cover
-- what every live waiter queued ahead wants too; a newcomer queues behind every waiter.

local sem, id = KEYS[1], ARGV[1]
local found = redis_pcall('hmget', sem, 'total', 'used', id, LONES)
local kind = refused_type(sem, found)
if kind then
    return {-1, kind}
end
local total = tonumber(found[1])
if not total then
    return {-5, 0}
end
local permits, lease = ARGV[9] or '1', lease_of(ARGV)
local wanted = tonumber(permits)
if wanted > total then
    return {-4, total}
end

local queue, mark = key_of(sem, 'queue'), key_of(sem, 'abandoned', id)
local used = tonumber(found[2]) or 0
local leases, now_us, now
-- Whether the permit id is not marked (see abandoned in common.lua) and nobody queues: asked
-- once, here if no permit is used.
local untouched
if used == 0 then
    -- No permit used in the hash: no lease there to end, and no hold of this permit id (this
    -- copy is not a resend of a request that took them there). One EXISTS tells whether the
    -- permit id is marked, anybody queues, or an acquisition holds permits lone; none of them,
    -- the permits are taken at once, lone.
    local lone = key_of(sem, 'lone')
    local seen = redis_call('exists', mark, queue, lone)
    if seen == 0 then
        local token = take_lone(sem, lone, id, permits, ARGV[2], lease, found[4])
        mark_taken(mark, ARGV[8])
        return token
    end
    local value = redis_call('get', lone)
    if value then
        if lone_is(value, id) then
            -- A resend of the request that took them lone: re-arm their lease (see rearm in
            -- common.lua).
            redis_call('pexpire', lone, lease)
            mark_taken(mark, ARGV[8])
            return tonumber(found[4]) or 0
        end
        leases = key_of(sem, 'leases')
        now_us, now = server_time()
        used = settle_lone(sem, leases, lone, value, now) or 0
        seen = seen - 1
    end
    untouched = seen == 0
end

if not now then
    leases = key_of(sem, 'leases')
    now_us, now = server_time()
end
local ends = string.format('%d', now + tonumber(lease))
-- Permits were used (`untouched` not asked yet): the acquisitions whose lease ended give theirs
-- back first; then a hold of this permit id means this copy is a resend of a request that took
-- it, which re-arms its lease.
local own = found[3]
if untouched == nil and expire_permits(sem, leases, now) then
    local again = redis_call('hmget', sem, 'used', id)
    used, own = tonumber(again[1]) or 0, again[2]
end
if own then
    lease_until(leases, id, ends)
    mark_taken(mark, ARGV[8])
    return 0
end

local fits, queued
local q
if untouched == nil then
    untouched = redis_call('exists', mark, queue) == 0
end
if untouched then
    -- Not marked (see abandoned in common.lua), and nobody queues: the free permits decide.
    fits, queued = total - used >= wanted, false
else
    local refused = abandoned(mark)
    if refused then
        return refused
    end
    q = queue_of(sem, queue)
    fits, queued = in_turn(q, id, total - used - wanted, now)
end
if fits then
    if queued then
        dequeue(q, id)
    end
    local taken = string.format('%d', used + wanted)
    redis_call('hset', sem, id, permits, who_field(id), ARGV[2], 'used', taken)
    lease_until(leases, id, ends)
    mark_taken(mark, ARGV[8])
    return 0
end

q = q or queue_of(sem, queue)
local liveness, wait = waiter_times(ARGV)
enqueue(q, id, now_us, liveness, permits)
local first = redis_call('zrange', leases, 0, 0, 'WITHSCORES')
if first[2] then
    wait = math.min(wait, tonumber(first[2]) - now)
end
local who = holders_seen(sem, leases)
return {0, math.max(wait, 0), now_us, who, redis_call('zcard', q.queue)}
