-- Functions shared by the semaphore's scripts (semaphore/scripts.rs puts family/scripts/common.lua
-- and this file in front of each).
--
-- The semaphore is a hash: `total` (the permits in all: set once by set_permits.lua, grown by
-- add_permits.lua; it has no TTL, it is the semaphore's definition), `used` (the permits held
-- now), and two fields per acquisition: its permit id -> the number of permits it holds, and
-- `~who:<permit id>` -> who took them and when (see who_field in common.lua), written and
-- deleted with it, so no record outlives its permits in this hash without a TTL. Each
-- acquisition has its own lease in `leases` (permit id -> server time in ms its lease ends); one
-- whose lease ended is dropped by the next script that looks (every one looks first, but an
-- acquire that finds no permit used, and so no lease), and its permits come back: a crashed
-- holder's permits return when its lease ends. `leases` exists while permits are held.
--
-- A lone acquisition keeps no lease in `leases`: one that finds no permit used and nobody
-- queued takes its permits lone (take_lone), its permit id in the hash's `~lone`, its lease the
-- TTL of the key `lone`. While `~lone` names it, it is the only acquisition holding permits:
-- every script that looks at the leases first settles it (settle_lone, in expire_permits), its
-- lease written into `leases` from the key's TTL, or, the key gone, its permits back; then
-- works as above. Taking and giving back the permits of a semaphore nobody else uses, the
-- common case, so asks no `TIME` and writes no `leases`.
--
-- Waiters queue as the locks' do (see common.lua), with the number of permits each wants in
-- `q.wants`, and are served first come, first served (see in_turn): newcomers too queue behind
-- them. A release wakes, by name and in queue order, the waiters whose permits fit in what is
-- free, whatever process they wait in.
--
-- As in rwlock/scripts/rw.lua, the common paths give redis.call strings, each number written out
-- once: a Lua number costs about a command to write out.


-- Drops the acquisitions `ended` (permit ids read from `leases`: those whose lease ended before
-- `now`, server ms) from `sem`; their permits come back.
local function drop_permits(sem, leases, ended, now)
    for _, id in ipairs(ended) do
        local held = tonumber(redis.call('hget', sem, id))
        if held then
            redis.call('hincrby', sem, 'used', -held)
            redis.call('hdel', sem, id, who_field(id))
        end
    end
    redis.call('zremrangebyscore', leases, '-inf', '(' .. now)
end

-- The field of the semaphore's hash naming its lone acquisition (see the top of this file).
local LONE = '~lone'

-- Grants the acquisition `id` of `sem`, on which no permit is used and nobody queues,
-- `wanted` permits (a string), lone, with `record` saying who took them, for `lease` ms from
-- now (a string). Two commands: HSET, SET.
local function take_lone(sem, id, wanted, record, lease)
    redis.call('hset', sem, id, wanted, who_field(id), record, 'used', wanted, LONE, id)
    redis.call('set', key_of(sem, 'lone'), '1', 'px', lease)
end

-- Gives back every permit of the lone acquisition `id` of `sem`: as it is the only one, no
-- permit is used after (`used` absent reads as 0). Returns whether its lease was live (its key
-- there); the key is gone after.
local function give_back_lone(sem, id)
    local live = redis.call('del', key_of(sem, 'lone')) == 1
    redis.call('hdel', sem, id, who_field(id), LONE, 'used')
    return live
end

-- Ends the lone state of `sem`, whose lone acquisition is `id` (its `~lone`), at `now` (server
-- ms): its lease, while its key is there, is written into `leases` as the server time it ends
-- (see ttl_end in common.lua); the key gone, its lease ended, and its permits come back.
-- Returns whether they came back.
local function settle_lone(sem, leases, id, now)
    local lone = key_of(sem, 'lone')
    local ends = ttl_end(lone, now)
    if ends then
        redis.call('zadd', leases, ends, id)
        redis.call('del', lone)
        redis.call('hdel', sem, LONE)
        return false
    end
    give_back_lone(sem, id)
    return true
end

-- Drops the acquisitions of `sem` whose lease ended before `now` (server ms), the lone one
-- `lone` (its `~lone`, or nil/false: none) settled first (see settle_lone); their permits come
-- back. Returns whether any ended. Asked with a ZCOUNT first: none ended is the common case,
-- and its integer reply costs Redis less than the empty table of a ZRANGEBYSCORE.
local function expire_permits(sem, leases, now, lone)
    local ended = lone and settle_lone(sem, leases, lone, now)
    local before = string.format('(%d', now)
    if redis.call('zcount', leases, '-inf', before) == 0 then
        return ended
    end
    drop_permits(sem, leases, redis.call('zrangebyscore', leases, '-inf', before), now)
    return true
end

-- expire_permits for a script that has not read the hash's `~lone`.
local function expire_all(sem, leases, now)
    return expire_permits(sem, leases, now, redis.call('hget', sem, LONE))
end

-- Sets the lease of acquisition `id` to end at `ends` (server ms, as a string). `leases` has no
-- TTL: were it to expire, the holds it times would stay in the semaphore's hash, which has none
-- either. It is deleted when its last entry leaves (an empty sorted set is no key).
local function lease_until(leases, id, ends)
    redis.call('zadd', leases, ends, id)
end

-- The permits of `sem` nobody holds now.
local function available(sem)
    local total = tonumber(redis.call('hget', sem, 'total')) or 0
    return total - (tonumber(redis.call('hget', sem, 'used')) or 0)
end

-- The live waiter of `q` at `index` in queue order and the permits it wants, or nil past the
-- end of the queue. Dead waiters met there (live until before `now`, server ms) leave the queue
-- first, so `index` then names the next one; `keep` (an acquisition looking for its own place)
-- is returned as it is.
local function live_at(q, index, now, keep)
    while true do
        local at = string.format('%d', index)
        local waiter = redis.call('zrange', q.queue, at, at)[1]
        if not waiter then
            return nil
        end
        if waiter == keep or tonumber(redis.call('zscore', q.alive, waiter) or '0') >= now then
            return waiter, tonumber(redis.call('hget', q.wants, waiter)) or 1
        end
        dequeue(q, waiter)
    end
end

-- Whether the acquisition `id` may take the permits it wants now, first come first served: the
-- free permits must cover what every live waiter queued ahead of it wants, and then its own
-- (`left`: the permits free once its own are taken). A newcomer (not in the queue) comes after
-- every waiter, so it never takes permits a waiter is owed, and a large request at the head
-- holds back the smaller ones behind it, as in tokio's Semaphore. Walks at most as many live
-- waiters as there are free permits (each wants at least one). Returns whether it may, and
-- whether `id` was found queued (it then leaves the queue).
local function in_turn(q, id, left, now)
    local index = 0
    while left >= 0 do
        local waiter, want = live_at(q, index, now, id)
        if not waiter then
            return true, false
        end
        if waiter == id then
            return true, true
        end
        left = left - want
        index = index + 1
    end
    return false, false
end

-- Wakes, by name and in queue order, the live waiters of `sem` whose permits fit in `free` (the
-- permits free at `now`, server ms; nil: read when someone waits), stopping at the first that
-- does not fit: the rule of in_turn, so every waiter woken may take its permits, and no waiter
-- behind one that does not fit is woken (it could not take them). Dead waiters met on the way
-- leave the queue. Published with pcall: a Redis user without channel rights still releases
-- (its waiters wake at their timers). As pass_on in common.lua, it names the queue's other keys
-- and the channel only when someone waits.
local function wake_fitting(sem, free, now, publish)
    local queue = key_of(sem, 'queue')
    if free <= 0 or nobody_queued(queue) then
        return
    end
    now = now or server_ms()
    local q, channel = queue_of(sem, queue), key_of(sem, 'unlock')
    local index = 0
    while free > 0 do
        local waiter, want = live_at(q, index, now, nil)
        if not waiter or want > free then
            return
        end
        wake_by_name(publish, channel, waiter, 'to:' .. waiter)
        free = free - want
        index = index + 1
    end
end

-- Gives back every permit the acquisition `id` holds (`held`: how many, as the caller read them
-- from `sem`, or nil). Returns the permits of `sem` in use after, or nil if it held none.
local function give_back(sem, leases, id, held)
    held = held or redis.call('hget', sem, id)
    if not held then
        return nil
    end
    local used = redis.call('hincrby', sem, 'used', '-' .. held)
    redis.call('hdel', sem, id, who_field(id))
    redis.call('zrem', leases, id)
    return used
end

-- What a busy acquire tells about the acquisitions holding permits of `sem`, as holds_seen in
-- common.lua: the first three by lease end, out of all of them.
local function holders_seen(sem, leases)
    local first = redis.call('zrange', leases, 0, 2)
    return holds_seen(sem, 'permit holder', redis.call('zcard', leases), first)
end
