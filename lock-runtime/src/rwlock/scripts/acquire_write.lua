-- Take the write hold for a new owner: only when no hold of either kind is left and this owner
-- heads the queue (or nobody queues); else queue.
--
-- KEYS and ARGV: as acquire_read.lua (ARGV[9] is not used: a write is never granted alongside).
--
-- Returns {status, value}:
--   token           acquired (a bare integer, as every acquire of the family answers);
--                   token is strictly greater than every earlier one for this name
--   { 0, wait, now, who, waiters}  not now: queued (its liveness refreshed); try again within
--                    `wait` ms (the nearest lease end, the head's liveness on a free lock, or
--                    ARGV[5]); `now` is the server time in µs; `who` and `waiters` as
--                    acquire_read.lua
--   {-1, type}       KEYS[1] holds a value of another type
--   {-3, 0}          this owner id is marked: a late copy of a request whose caller gave up
--                    or whose acquisition already took its hold

local decided, keys, seen, now_us, now, ends = acquire_start(KEYS[1], ARGV, true)
if decided then
    return decided
end
local lock, leases = keys.lock, keys.leases
local q = queue_of(lock, keys.queue)

local liveness, wait = waiter_times(ARGV)
local mode = mode_of(lock, seen.writer)
if not mode then
    local head = first_live(q, now, ARGV[1])
    if not head or head == ARGV[1] then
        if head then
            dequeue(q, ARGV[1])
        end
        local count = fence_seen(lock, keys.fence, true)
        take_free(lock, leases, ARGV[1], ends, ARGV[2], true)
        mark_taken(keys.mark, ARGV[8])
        return hold_token(keys.fence, FENCE_TTL, true, count, now_us)
    end
    -- Free, but the head's turn: it has until its liveness runs out to take it.
    wait = math.min(wait, tonumber(redis_call('zscore', q.alive, head)) - now)
else
    wait = next_try(leases, now, wait)
end

enqueue(q, ARGV[1], now_us, liveness, 'write')
local who = holders_seen(lock, leases, mode)
return {0, math.max(wait, 0), now_us, who, redis_call('zcard', q.queue)}
