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
-- A resent release learns what its first copy did from these keys, with no memo per request, as
-- the locks' do (see released_before in common.lua): the field LONES of the hash counts the
-- lone acquisitions, odd while one holds its permits. A lone acquisition counts it up (its
-- token, which its release names), and the script that ends its lone state (its release, or
-- settle_lone) counts it one past. A take of the lone state that finds the count odd has found
-- a lone acquisition whose key expired unseen: it notes that count in `{…}:lost` (note_lost)
-- and counts up once more. An acquisition dropped from the hash as its lease ended is noted by
-- permit id (drop_permits). An acquisition kept in the hash from the start has the token 0:
-- every way it leaves the hash but its release is seen by a script, and noted.
--
-- As in rwlock/scripts/rw.lua, the common paths give redis_call strings, each number written out
-- once: a Lua number costs about a command to write out.


-- The field of a semaphore's hash counting its lone acquisitions (see above).
local LONES = '~lones'

-- Drops the acquisitions `ended` (permit ids read from `leases`: those whose lease ended before
-- `now`, server ms) from `sem`, noted as lost; their permits come back.
local function drop_permits(sem, leases, ended, now)
    note_lost(sem, nil, tonumber(redis_call('hget', sem, LONES)) or 0, ended)
    for _, id in ipairs(ended) do
        local held = tonumber(redis_call('hget', sem, id))
        if held then
            redis_call('hincrby', sem, 'used', -held)
            redis_call('hdel', sem, id, who_field(id))
        end
    end
    redis_call('zremrangebyscore', leases, '-inf', '(' .. now)
end

-- Grants the acquisition `id`, on the semaphore `sem` on which no permit is used and nobody
-- queues, `wanted` permits (a string), lone, in its key `lone`, with `record` saying who took
-- them, for `lease` ms from now (a string). `count`: the hash's LONES as the caller read it (a
-- string, or false). Returns the acquisition's token, the next odd count (see above). Two
-- commands: SET, HINCRBY; and the note of a lone acquisition whose key expired unseen.
local function take_lone(sem, lone, id, wanted, record, lease, count)
    local seen, step = tonumber(count) or 0, '1'
    if seen % 2 == 1 then
        note_lost(sem, nil, seen)
        step = '2'
    end
    redis_call('set', lone, id .. ' ' .. wanted .. ' ' .. record, 'px', lease)
    return redis_call('hincrby', sem, LONES, step)
end

-- Ends the lone state of `sem` (see above): its key was deleted, its permits released or moved
-- into the hash.
local function end_lone(sem)
    redis_pcall('hincrby', sem, LONES, '1')
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
        -- Left without a TTL (an operator's PERSIST): dropped, its lone state left to be noted
        -- by the next lone take.
        return nil
    end
    end_lone(sem)
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

-- Gives back every permit of the acquisition `id` of `sem`, and wakes, with the command
-- `publish`, the waiters they let in. Returns 1 released, 0 `id` holds nothing (its lease ran
-- out, or it was released already), -1 `sem` holds a value of another type. The lone
-- acquisition (see above), if there is one, is the only one holding permits, and nobody
-- queues: its own release gives its permits back in one DEL, waking nobody; another's means
-- `id` holds nothing.
local function release_permits(sem, id, publish)
    local lone = key_of(sem, 'lone')
    local value = redis_call('get', lone)
    if value then
        if not lone_is(value, id) then
            return 0
        end
        redis_call('del', lone)
        end_lone(sem)
        return 1
    end
    local found = redis_pcall('hmget', sem, id, 'total')
    if refused_type(sem, found) then
        return -1
    end
    if not found[1] then
        return 0
    end
    local leases = key_of(sem, 'leases')
    local now = server_ms()
    local used
    if expire_permits(sem, leases, now) then
        used = give_back(sem, leases, id)
    else
        used = give_back(sem, leases, id, found[1])
    end
    if not used then
        return 0
    end
    wake_fitting(sem, (tonumber(found[2]) or 0) - used, now, publish)
    return 1
end

-- Whether the acquisition `id` of `sem`, whose token is `token` (a string, see above), was
-- given back by a release, as a copy of that release which found its permits gone learns it
-- (see released_before in common.lua).
local function permits_released_before(sem, id, token)
    if token == '0' then
        return not redis_pcall('zscore', key_of(sem, 'lost'), id)
    end
    local count = tonumber(redis_pcall('hget', sem, LONES))
    return released_by_count(sem, count, token, id, false)
end
