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
-- A lone acquisition is kept out of the hash and out of `leases`: one that finds no permit used
-- and nobody queued takes its permits lone (take_lone), as one string key `lone`, "<permit id>
-- <permits> <who>", whose TTL is its lease. While `lone` is there it is the only acquisition
-- holding permits, `used` is 0 and nobody queues: an acquisition that finds it first settles it
-- (settle_lone), the lone one then kept in the hash and `leases` as any other, so every script
-- that finds `used` above 0 or a waiter queued knows there is no `lone`. Its lease ended, the
-- key is gone, and its permits with it: the hash never counted them. Taking and giving back
-- the permits of a semaphore nobody else uses, the common case, so writes nothing to the hash,
-- asks no `TIME` and writes no `leases`: a SET to take them, a GET and a DEL to give them back.
--
-- Waiters queue as the locks' do (see common.lua), with the number of permits each wants in
-- `q.wants`, and are served first come, first served (see in_turn): newcomers too queue behind
-- them. A release wakes, by name and in queue order, the waiters whose permits fit in what is
-- free, whatever process they wait in.
--
-- As in rwlock/scripts/rw.lua, the common paths give redis_call strings, each number written out
-- once: a Lua number costs about a command to write out.


-- Drops the acquisitions `ended` (permit ids read from `leases`: those whose lease ended before
-- `now`, server ms) from `sem`; their permits come back.
local function drop_permits(sem, leases, ended, now)
    for _, id in ipairs(ended) do
        local held = tonumber(redis_call('hget', sem, id))
        if held then
            redis_call('hincrby', sem, 'used', -held)
            redis_call('hdel', sem, id, who_field(id))
        end
    end
    redis_call('zremrangebyscore', leases, '-inf', '(' .. now)
end

-- Grants the acquisition `id`, on a semaphore on which no permit is used and nobody queues,
-- `wanted` permits (a string), lone, in its key `lone`, with `record` saying who took them, for
-- `lease` ms from now (a string). One command: SET.
local function take_lone(lone, id, wanted, record, lease)
    redis_call('set', lone, id .. ' ' .. wanted .. ' ' .. record, 'px', lease)
end

-- Whether `value`, the value of a semaphore's key `lone`, is that of the acquisition `id`.
-- Compared in place: a new string costs Redis its hashing and interning.
local function lone_is(value, id)
    return string.byte(value, #id + 1) == 32 and string.find(value, id, 1, true) == 1
end

-- The permit id, the permits (a string) and who took them of the lone acquisition whose key's
-- value is `value`.
local function lone_parts(value)
    return string.match(value, '^(%S+) (%d+) (.*)$')
end

-- Ends the lone state of `sem`, whose key `lone` holds `value`, at `now` (server ms): while
-- the key is there its acquisition is kept in the hash and in `leases` as any other, its lease
-- ending when the key's TTL said (see ttl_end in common.lua); the key goes. Returns the
-- permits of `sem` in use after, or nil if its lease had ended (it counted in nothing).
local function settle_lone(sem, leases, lone, value, now)
    local ends = ttl_end(lone, now)
    redis_call('del', lone)
    if not ends then
        return nil
    end
    local id, permits, record = lone_parts(value)
    redis_call('hset', sem, id, permits, who_field(id), record)
    redis_call('zadd', leases, ends, id)
    return redis_call('hincrby', sem, 'used', permits)
end

-- Drops the acquisitions of `sem` kept in `leases` whose lease ended before `now` (server ms);
-- their permits come back. Returns whether any ended. Asked with a ZCOUNT first: none ended is
-- the common case, and its integer reply costs Redis less than the empty table of a
-- ZRANGEBYSCORE.
local function expire_permits(sem, leases, now)
    local before = string.format('(%d', now)
    if redis_call('zcount', leases, '-inf', before) == 0 then
        return false
    end
    drop_permits(sem, leases, redis_call('zrangebyscore', leases, '-inf', before), now)
    return true
end

-- expire_permits, the lone acquisition settled first if there is one (see settle_lone).
local function expire_all(sem, leases, now)
    local lone = key_of(sem, 'lone')
    local value = redis_call('get', lone)
    if value then
        settle_lone(sem, leases, lone, value, now)
    end
    return expire_permits(sem, leases, now)
end

-- Sets the lease of acquisition `id` to end at `ends` (server ms, as a string). `leases` has no
-- TTL: were it to expire, the holds it times would stay in the semaphore's hash, which has none
-- either. It is deleted when its last entry leaves (an empty sorted set is no key).
local function lease_until(leases, id, ends)
    redis_call('zadd', leases, ends, id)
end

-- The permits of `sem` nobody holds now.
local function available(sem)
    local total = tonumber(redis_call('hget', sem, 'total')) or 0
    return total - (tonumber(redis_call('hget', sem, 'used')) or 0)
end

-- The live waiter of `q` at `index` in queue order and the permits it wants, or nil past the
-- end of the queue. Dead waiters met there (live until before `now`, server ms) leave the queue
-- first, so `index` then names the next one; `keep` (an acquisition looking for its own place)
-- is returned as it is.
local function live_at(q, index, now, keep)
    while true do
        local at = string.format('%d', index)
        local waiter = redis_call('zrange', q.queue, at, at)[1]
        if not waiter then
            return nil
        end
        if waiter == keep or tonumber(redis_call('zscore', q.alive, waiter) or '0') >= now then
            return waiter, tonumber(redis_call('hget', q.wants, waiter)) or 1
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
    held = held or redis_call('hget', sem, id)
    if not held then
        return nil
    end
    local used = redis_call('hincrby', sem, 'used', '-' .. held)
    redis_call('hdel', sem, id, who_field(id))
    redis_call('zrem', leases, id)
    return used
end

-- What a busy acquire tells about the acquisitions holding permits of `sem`, as holds_seen in
-- common.lua: the first three by lease end, out of all of them.
local function holders_seen(sem, leases)
    local first = redis_call('zrange', leases, 0, 2)
    return holds_seen(sem, 'permit holder', redis_call('zcard', leases), first)
end
