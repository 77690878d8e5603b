-- Functions shared by the read-write lock's scripts (rwlock/scripts.rs puts
-- family/scripts/common.lua and this file in front of each).
--
-- The lock is a hash: `writer` (the owner id of the write hold, while there is one) and per hold:
-- its owner id -> hold count (re-entries count up), `~who:<owner id>` -> who took it and when (see
-- who_field in common.lua), written and deleted with it, once it was re-entered its record
-- `~r:<owner id>` (see reenter in common.lua: each re-entry, release and undo names the count it
-- adds or takes, so a late copy of it counts nothing), and once it ran a lock-checked write its
-- exec record `~x:<owner id>` (see exec_field in common.lua), both deleted with it. Every hold,
-- read or write, has an owner id of its own, so the write hold and the read holds its scope took
-- under it (a downgrade) can be there together. Each hold has its own lease, in `leases`: a
-- sorted set of owner id -> server time (ms) its lease ends. A hold whose lease ended is dropped
-- by the next script that looks (every script looks first), so a reader that crashed frees its
-- share when its own lease ends, not when the last reader's does. Both keys expire with the last
-- lease.
--
-- A lone hold keeps no `leases`: a hold taken on an untouched lock (no key of the lock there,
-- see acquire_start) is the lock's only one, and the lock's TTL is its lease. The lock
-- is lone while `lock` exists and `leases` does not. Before a second hold comes, the lone one's
-- lease is written into `leases` from the lock's TTL (spread, in look), and the lock is kept
-- as above from then on. Taking and releasing a lock nobody else holds, the common case, so
-- writes and reads no `leases` and asks no `TIME`. Every other script works on both: what it
-- does to `leases` on a lone lock is the same as on a lock whose `leases` holds the lone hold
-- alone (no entry ended, none to drop; dropping the hold deletes the lock; a renewal or a resend
-- re-arming it writes its entry).
--
-- Waiters queue as the other locks' do (see common.lua), with `read` or `write` in `q.wants`.
-- A write is granted to the head of the queue only, on a free lock; a read to anyone while no
-- write is held and no live writer queues ahead of it: a waiting writer blocks new readers, so
-- a stream of readers cannot starve it, and the queue keeps both kinds in order.
--
-- The fencing state counts the lock's periods, from a take of the free lock until its last
-- hold goes (see released_before in common.lua): a hold that takes the free lock, read or
-- write, counts it up to the period's token, which every read hold joining the period carries;
-- the script that frees the lock counts it one past (expire_with_last). A hold dropped before
-- its release (its lease ended, a force-unlock) is noted lost by its owner id first
-- (note_dropped). So a resent release learns what its first copy did from these keys, with no
-- memo per request.
--
-- A number given to redis_call is written out by Redis as a float ('%.17g'), at about the cost
-- of a command, and string.format('%d') costs half of that: the common paths pass strings, each
-- number written out once.


-- Sets `lock` and `leases` to expire with the last lease in `leases`, or deletes both when no
-- lease is left, ending the lock's period (see end_hold in common.lua) unless the fencing state
-- says it ended already (even: the script let go of entries of holds gone from a lock deleted
-- by hand). Returns whether a lease is left. Every change of the leases ends with it (a free
-- lock's first hold sets both to its lease's end, see take_free, or is lone, see
-- acquire_start), so the lock exists only while its last lease has not ended: release.lua's
-- common path relies on it.
local function expire_with_last(lock, leases)
    local last = redis_call('zrange', leases, -1, -1, 'WITHSCORES')
    if not last[1] then
        local fence = key_of(lock, 'fence')
        if (tonumber(redis_pcall('get', fence)) or 0) % 2 == 1 then
            end_hold(fence)
        end
        redis_call('del', lock, leases)
        return false
    end
    redis_call('pexpireat', lock, last[2])
    redis_call('pexpireat', leases, last[2])
    return true
end

-- Settles `lock` after holds went: `writer` cleared if its hold is gone, both keys set to expire
-- with the last lease, or deleted when no hold is left (expire_with_last). Returns the mode:
-- 'write' while the write hold is there, 'read' while only read holds are, nil when the lock is
-- free. (A hold that comes leaves `writer` as it is: expire_with_last is all it needs.)
local function settle(lock, leases)
    local writer = redis_call('hget', lock, 'writer')
    if writer and redis_call('hexists', lock, writer) == 0 then
        redis_call('hdel', lock, 'writer')
        writer = nil
    end
    if not expire_with_last(lock, leases) then
        return nil
    end
    if writer then
        return 'write'
    end
    return 'read'
end

-- Notes the holds of the owner ids `owners` of `lock` as lost, in the period the fencing state
-- names (see note_lost in common.lua), before a script drops them without their release.
local function note_dropped(lock, owners)
    local fence = key_of(lock, 'fence')
    note_lost(lock, fence, tonumber(redis_pcall('get', fence)) or 0, owners)
end

-- Drops the holds `ended` (owner ids read from `leases`: those whose lease ended before `now`,
-- server ms) from `lock`, noted as lost, and settles it. Returns the mode (see settle).
local function drop_ended(lock, leases, ended, now)
    note_dropped(lock, ended)
    for _, owner in ipairs(ended) do
        redis_call('hdel', lock, owner, who_field(owner), record_field(owner), exec_field(owner))
    end
    redis_call('zremrangebyscore', leases, '-inf', '(' .. now)
    return settle(lock, leases)
end

-- Drops the holds of `lock` whose lease ended before `now` (server ms). Returns the mode (see
-- settle).
local function expire_holds(lock, leases, now)
    local ended = redis_call('zrangebyscore', leases, '-inf', '(' .. now)
    if #ended == 0 then
        if redis_call('exists', lock) == 0 then
            return nil
        end
        if redis_call('hexists', lock, 'writer') == 1 then
            return 'write'
        end
        return 'read'
    end
    return drop_ended(lock, leases, ended, now)
end

-- Lets the hold of `owner` go from `lock`: its count, its records (who took it, its re-entries,
-- its execs), its lease.
local function drop_hold(lock, leases, owner)
    redis_call('hdel', lock, owner, who_field(owner), record_field(owner), exec_field(owner))
    redis_call('zrem', leases, owner)
end

-- Writes a new hold of `owner` into `lock`, with `record` ("<client name> <ms>", made by the
-- acquiring client, see take in common.lua) saying who took it; `write`: the write hold. Its
-- lease is the caller's (hold, acquire_start).
local function put_hold(lock, owner, record, write)
    if write then
        redis_call('hset', lock, owner, '1', who_field(owner), record, 'writer', owner)
    else
        redis_call('hset', lock, owner, '1', who_field(owner), record)
    end
end

-- Grants `owner` a new hold of `lock` whose lease ends at `ends` (server ms, as a string), with
-- `record` saying who took it; `write`: the write hold (see put_hold). The keys' expiry is the
-- caller's (take_free, or expire_with_last: a hold that comes leaves `writer` as it is).
local function hold(lock, leases, owner, ends, record, write)
    put_hold(lock, owner, record, write)
    redis_call('zadd', leases, ends, owner)
end

-- How a fresh acquisition starts (acquire_read.lua, acquire_write.lua). One EXISTS of the lock,
-- the owner's mark, the queue and the leases: none of them there (untouched) tells that the lock
-- is free (no hold: none whose lease ended, no writer, and no hold of this owner, so this copy is
-- not a resend of a request that was granted), that the owner is not marked (see abandoned in
-- common.lua), that nobody queues ahead, and that no lease entry is left that a lone hold could
-- be confused with (see spread); so the hold is granted at once, lone (its lease the lock's
-- TTL, in two commands: HSET, PEXPIRE), as the full checks would grant it. Otherwise look reads
-- the lock: a lone hold's lease is spread, the holds whose lease ended leave, then the write
-- hold and the owner's own are read in one HMGET (its failure tells a value of another type,
-- see refused_type); the mark and the queue are read after, as before.

-- The lone hold of `lock` (see the top of this file), which keeps no leases, at `now` (server
-- ms): its owner id and the server time (ms, as a string) its lease ends, read from the lock's
-- TTL (see ttl_end in common.lua); nil if `lock` is not there, has no TTL or no hold (an
-- operator's PERSIST or HDEL).
local function lone_lease(lock, now)
    local ends = ttl_end(lock, now)
    local owner = ends and owners_of(lock)[1]
    if not owner then
        return nil
    end
    return owner, ends
end

-- Writes the lease of the lone hold of `lock` into `leases`, which does not exist (see
-- lone_lease); both keys expire at its end. Nothing to write if there is no lone hold.
local function spread(lock, leases, now)
    local owner, ends = lone_lease(lock, now)
    if not owner then
        return
    end
    redis_call('zadd', leases, ends, owner)
    redis_call('pexpireat', lock, ends)
    redis_call('pexpireat', leases, ends)
end

-- Grants `owner` a new hold (see hold) of `lock`, which has no key: the lock is free, and this
-- hold is its only one, so both keys expire with its lease. (An entry `leases` may still keep of
-- a hold no longer in `lock`, its key deleted by hand, holds nothing back: it goes with the key,
-- or leaves at its end, see expire_holds.)
local function take_free(lock, leases, owner, ends, record, write)
    hold(lock, leases, owner, ends, record, write)
    redis_call('pexpireat', lock, ends)
    redis_call('pexpireat', leases, ends)
end

-- What a fresh acquisition of `owner` finds in `lock` at `now` (server ms) when it is not
-- untouched (see above): {writer = the owner id of the write hold, or false, held = whether
-- `owner` holds `lock`: a resend of a request that was granted}, once a lone hold's lease is
-- spread (the acquisition may add a hold beside it), the holds whose lease ended are dropped,
-- and `leases` deleted if the lock is not there (what is left in it is no hold's); or nil and
-- the type of `lock` if it holds a value of another type.
local function look(lock, leases, owner, now)
    local found = redis_pcall('hmget', lock, 'writer', owner)
    local kind = refused_type(lock, found)
    if kind then
        return nil, kind
    end
    local first = redis_call('zrange', leases, 0, 0, 'WITHSCORES')
    if not first[1] then
        spread(lock, leases, now)
    elseif not found[1] and not found[2] and redis_call('exists', lock) == 0 then
        -- Entries of holds gone from the lock, its key deleted by hand: in nobody's way.
        redis_call('del', leases)
    elseif tonumber(first[2]) < now then
        drop_ended(lock, leases, redis_call('zrangebyscore', leases, '-inf', '(' .. now), now)
        found = redis_call('hmget', lock, 'writer', owner)
    end
    return {writer = found[1], held = found[2] ~= false}
end

-- The mode (see settle) of `lock` whose write hold look found to be `writer` (false: none).
local function mode_of(lock, writer)
    if writer then
        return 'write'
    end
    if redis_call('exists', lock) == 1 then
        return 'read'
    end
    return nil
end

-- A resend of a request that was granted finds `owner`'s hold in `lock` (see look): its lease is
-- re-armed to end at `ends` (server ms), so the lease the caller times from the resend is never
-- longer than Redis keeps it.
local function rearm_hold(lock, leases, owner, ends)
    redis_call('zadd', leases, ends, owner)
    expire_with_last(lock, leases)
end

-- Wakes whom the lock `lock`, now in `mode`, lets in: the head of its queue, by name, if it
-- wants to write and the lock is free; every waiter ('all') if the head wants to read and no
-- write is held: the readers enter together, and the writers among the woken find the lock read
-- and sleep again. As pass_on in common.lua, it names the queue's other keys and the channel
-- only when someone waits.
local function wake_next(mode, lock, publish)
    local queue = key_of(lock, 'queue')
    if mode == 'write' or nobody_queued(queue) then
        return
    end
    local head, want = head_of(queue_of(lock, queue))
    if not head then
        return
    end
    if want == 'write' then
        if not mode then
            wake_by_name(publish, key_of(lock, 'unlock'), head, 'to:' .. head)
        end
    else
        redis_pcall(publish, key_of(lock, 'unlock'), 'all')
    end
end

-- Gives back the count numbered `number` of `owner`'s hold (0 the acquisition's, else a
-- re-entry's; `undo`: a re-entry being undone, see give_back_hold in common.lua); at its last,
-- the hold leaves and the lock is settled and passed on (wake_next). Returns 1 the hold is gone,
-- 2 the owner still holds it, 0 the owner did not have that count (a late copy) or held nothing.
local function give_back(lock, leases, owner, number, undo, publish)
    local left = give_back_hold(lock, owner, number, undo)
    if not left then
        return 0
    end
    if left > 0 then
        return 2
    end
    drop_hold(lock, leases, owner)
    wake_next(settle(lock, leases), lock, publish)
    return 1
end

-- Whether a live waiter that wants to write queues in `q` ahead of `owner` (anywhere in the
-- queue if `owner` is not in it). Dead waiters met on the way leave the queue.
local function writer_ahead(q, owner, now)
    for _, waiter in ipairs(redis_call('zrange', q.queue, 0, -1)) do
        if waiter == owner then
            return false
        end
        if tonumber(redis_call('zscore', q.alive, waiter) or '0') < now then
            dequeue(q, waiter)
        elseif redis_call('hget', q.wants, waiter) == 'write' then
            return true
        end
    end
    return false
end

-- The soonest a waiter must try again: `refresh` ms, or less if a lease of `leases` ends sooner
-- (a crashed holder's share comes back then).
local function next_try(leases, now, refresh)
    local first = redis_call('zrange', leases, 0, 0, 'WITHSCORES')
    if first[2] then
        return math.max(math.min(refresh, tonumber(first[2]) - now), 0)
    end
    return refresh
end

-- What a busy acquire tells about the holds of `lock` in `mode` (see settle), as holds_seen in
-- common.lua: the writer while a write is held (the read holds its own scope took beside it
-- aside), else the first three read holds by lease end out of all of them; '' on a free lock
-- (its turn is the head's, or a writer's queued ahead).
local function holders_seen(lock, leases, mode)
    if mode == 'write' then
        return holds_seen(lock, 'writer', 1, {redis_call('hget', lock, 'writer')})
    end
    if mode == 'read' then
        local first = redis_call('zrange', leases, 0, 2)
        return holds_seen(lock, 'reader', redis_call('zcard', leases), first)
    end
    return ''
end

-- The first half of the token of a hold of `lock`, read before the hold is written, so that a
-- fencing state of another type fails the script before it writes a hold: for a hold that
-- `starts` a period (it takes the free lock, read or write), the state `fence` counted up (see
-- count_up in common.lua), else the state as it is (a read hold joining the period, or a hold
-- taken by an earlier copy, whose token the state still holds).
local function fence_seen(lock, fence, starts)
    if starts then
        return count_up(lock, fence)
    end
    return redis_call('get', fence)
end

-- The token of that hold, from what fence_seen saw (`seen`). A hold that starts a period takes
-- the next token (fence_token in common.lua, with the server time `now_us`); a write hold
-- always does, as it is granted on a free lock only. A read hold joining the period carries its
-- token (or one from the server clock if the state had expired): so a write's token is above
-- every token read holds carried before it, and every hold of a period carries the period's
-- token, which its release names (see released_before in common.lua).
local function hold_token(fence, fence_ttl, starts, seen, now_us)
    if starts then
        return fence_token(fence, fence_ttl, seen, now_us)
    end
    return tonumber(seen) or next_token(fence, fence_ttl, now_us)
end

-- The steps both acquires start with, for a read (`write` false) or write hold of the lock `lock`
-- (KEYS[1]), on their ARGV: an untouched lock is taken at once, lone (see above); a value of
-- another type is refused; a resend of a request that was granted re-arms its hold; a marked
-- owner is refused. The untouched lock's take is written out here, not through the helpers the
-- other paths share: it is the acquisition Redis runs most, and every Lua function call, table
-- and string on it is paid by the server for every lock taken.
-- Returns the reply when one of them decides the request, else nil and what the rest needs: the
-- keys it reads, {lock, fence, mark, queue, leases} (see acquire_read.lua; the queue's other
-- keys are named when the lock is busy, see queue_of), what look saw, the server time in µs and
-- in ms, and the new lease's end (server ms, a string).
local function acquire_start(lock, argv, write)
    local owner, lease = argv[1], lease_of(argv)
    local fence, mark = key_of(lock, 'fence'), key_of(lock, 'abandoned', owner)
    local queue, leases = key_of(lock, 'queue'), key_of(lock, 'leases')
    if redis_call('exists', lock, mark, queue, leases) == 0 then
        local count = count_up(lock, fence)
        put_hold(lock, owner, argv[2], write)
        redis_call('pexpire', lock, lease)
        mark_taken(mark, argv[8])
        return fence_token(fence, FENCE_TTL, count, nil, lock, lease)
    end
    local now_us, now = server_time()
    local ends = string.format('%d', now + tonumber(lease))
    local seen, kind = look(lock, leases, owner, now)
    if not seen then
        return {-1, kind}
    end
    if seen.held then
        local count = fence_seen(lock, fence, false)
        rearm_hold(lock, leases, owner, ends)
        mark_taken(mark, argv[8])
        return hold_token(fence, FENCE_TTL, false, count, now_us)
    end
    local refused = abandoned(mark)
    if refused then
        return refused
    end
    local keys = {lock = lock, fence = fence, mark = mark, queue = queue, leases = leases}
    return nil, keys, seen, now_us, now, ends
end
