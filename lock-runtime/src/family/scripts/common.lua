-- Functions shared by the family's scripts. Each primitive's scripts.rs puts this file in front
-- of every script that uses them (`common_lua!` in family/scripts.rs: Lua scripts in Redis
-- cannot include one another).
--
-- Every script calls Redis with `redis_call` and `redis_pcall`, locals bound to `redis.call` and
-- `redis.pcall` as a call starts: a global costs Redis a lookup each time in a Function (see
-- DECLARE_CALLS in core/lua.rs).

-- A TIME reply `time` ({seconds, microseconds}, as strings) in microseconds.
local function time_us(time)
    return tonumber(time[1]) * 1000000 + tonumber(time[2])
end

-- The server time in microseconds, and in milliseconds.
local function server_time()
    local now_us = time_us(redis_call('time'))
    return now_us, math.floor(now_us / 1000)
end

-- The server time in milliseconds.
local function server_ms()
    local _, now = server_time()
    return now
end

-- The server's version: `redis.REDIS_VERSION` (Redis 7.0 and newer), else what `INFO` says
-- (Redis 6.2 has no such field; only lock-checked writes ask, not the lock's hot path).
local function server_version()
    return redis.REDIS_VERSION
        or string.match(redis_call('info', 'server'), 'redis_version:([%w%.%-]+)')
end

-- A key of the resource whose main key is `main` (KEYS[1]), named as core/keys.rs names it:
-- "<main>:<suffix>", or "<main>:<suffix>:<id>" for an owner's mark ('abandoned') or a request's
-- memo ('memo'). The scripts run on every acquisition read KEYS[1] alone and name the others
-- here, so a call off a cluster need not declare them (see core/lua.rs): a concatenation costs
-- Redis less than reading a declared key from the request. The fencing state is 'fence', the
-- wake-up channel 'unlock', the per-hold leases 'leases', the queue 'queue' (see queue_of).
local function key_of(main, suffix, id)
    if id then
        return main .. ':' .. suffix .. ':' .. id
    end
    return main .. ':' .. suffix
end

-- The queue's keys, as `q` of enqueue, dequeue and pass_on: the waiting owner ids by their first
-- try (`queue`, if its name is already made), their liveness deadlines, and what each waits for.
local function queue_of(main, queue)
    return {
        queue = queue or key_of(main, 'queue'),
        alive = key_of(main, 'alive'),
        wants = key_of(main, 'wants'),
    }
end

-- How long a lock's fencing state lives once created, in ms: `FENCE_TTL` in core/keys.rs, which
-- a unit test holds equal. A constant here, not an argument of every acquire: Redis reads each
-- argument from the request, at about half the cost of a command of a free lock's take.
local FENCE_TTL = '600000'

-- The default `watchdog_timeout` in ms, the lease of an acquisition in watchdog mode: what a
-- client leaves out, with the arguments after it at their defaults (see
-- lock/scripts/acquire.lua), as ARGV[4] of every acquire (a waiter's liveness period) and as
-- the fair lock's ARGV[6] (the lease a direct hand-over grants it).
local WATCHDOG_MS = '30000'

-- The lease an acquire asks for, in ms: its ARGV[3], left out with every argument after it
-- under the default `watchdog_timeout` in watchdog mode (and for a fixed lease of as long).
local function lease_of(argv)
    return argv[3] or WATCHDOG_MS
end

-- A waiter's liveness period and its longest sleep before it tries again, in ms: ARGV[4] and
-- ARGV[5] of every acquire, left out at the default `watchdog_timeout` and a third of it. Only
-- an acquisition that queues reads them.
local function waiter_times(argv)
    return tonumber(argv[4] or WATCHDOG_MS), tonumber(argv[5] or '10000')
end

-- How far behind the server clock (µs) the fencing state may count before an acquisition
-- brings it up to the clock: what lets a lock taken many times a second count with INCR alone,
-- and the shortest failover through which tokens keep increasing (see fence_token).
local FENCE_SLACK_US = 100000

-- The server time in µs at which this script gave `key` a TTL of `ttl` ms: PEXPIRETIME less the
-- TTL, in whole ms. The clock of an acquisition that has just set its lease, at a third of the
-- cost of TIME (an integer reply, where TIME's is two strings to read as numbers); TIME where
-- the server has no PEXPIRETIME (Redis 6.2, which has no redis.REDIS_VERSION either).
local function expiry_start_us(key, ttl)
    if redis.REDIS_VERSION then
        return (redis_call('pexpiretime', key) - ttl) * 1000
    end
    return time_us(redis_call('time'))
end

-- The smallest count of a fencing state kept by this scheme: a count below it is a state its
-- INCR created (or one from a version without this scheme).
local FENCE_FLOOR = 1000000000000000

-- `count` if it is odd, else the odd number just below it.
local function odd_at_most(count)
    return count - 1 + count % 2
end

-- The token of an acquisition whose INCR of the fencing state `fence` answered `count`: a hybrid
-- logical clock. The state holds the last token, with a TTL of `ttl` ms from when it was
-- created. It counts up by one per acquisition (and, for the reentrant and the fair lock, one
-- per release: see take), and is brought up to the server clock (INCRBY, which keeps the TTL,
-- by an even step, which keeps the count's parity) when it has fallen more than FENCE_SLACK_US
-- behind it; when it is gone (a count below FENCE_FLOOR) it restarts from the clock, read to the
-- µs (an odd number, as every token). Counting up never outruns the clock (an acquisition takes
-- far more than a microsecond of server time) and the catch-up does not either, so every token
-- handed out is at most the clock of its time, and a restart is above it, as long as the clock
-- does not step back by more than `ttl`.
-- Reading the clock on every acquisition, not only when the state is gone, is what keeps tokens
-- increasing through a failover: a promoted replica may hold a state older than the last tokens
-- its failed primary handed out, and counting on from it would hand them out again, while its
-- clock has moved past them, provided the failover took longer than FENCE_SLACK_US and the
-- servers' clocks agree to within the rest of it.
-- The clock for the catch-up: `now_us` if the caller has read it, else what the TTL of
-- `lease_key`, which this script has just set to `lease` ms, tells (see expiry_start_us), else
-- TIME.
local function fence_token(fence, ttl, count, now_us, lease_key, lease)
    if count < FENCE_FLOOR then
        local token = odd_at_most(time_us(redis_call('time')))
        redis_call('set', fence, string.format('%d', token), 'px', ttl)
        return token
    end
    if not now_us then
        now_us = lease_key and expiry_start_us(lease_key, lease) or time_us(redis_call('time'))
    end
    local behind = now_us - count
    if behind > FENCE_SLACK_US then
        behind = behind - behind % 2
        redis_call('incrby', fence, string.format('%d', behind))
        return count + behind
    end
    return count
end

-- The next token of the fencing state `fence` (see fence_token for the rest).
local function next_token(fence, ttl, now_us, lease_key, lease)
    return fence_token(fence, ttl, redis_call('incr', fence), now_us, lease_key, lease)
end

-- How a copy of a release that finds its hold gone learns what its first copy did, with no key
-- per request. A lock is held for a time (a period: from a take of the free lock until its
-- last hold goes), one owner at a time for the reentrant and the fair lock, several read holds
-- at once for the read-write lock. The fencing state is odd while a period lasts (every token
-- is odd: see fence_token), and a script that frees the lock counts it up by one (end_hold),
-- so it is even once a release, an undo, or a script that noted the holds it dropped, freed
-- it. A take of a free lock that finds it odd (its INCR answers an even count, see count_up)
-- has found a period that ended unseen (its last lease ran out with the lock's TTL, or a
-- failover or an operator lost it): it notes the period's token in the lock's `lost` notes
-- (note_lost) and counts up once more. A hold that a script drops before its release (its
-- lease ended, a force-unlock) is noted by its owner id, scored by the period's token. A
-- resend (the first copy of a release names no token: whatever it finds, it is the first of
-- its copies to run) that finds its owner's holds gone then reads the state (released_before):
-- past its token, with no note of its hold nor of its period (or, for the read-write lock, the
-- token itself with the period still on), says an earlier copy released the hold; the token
-- with the lock gone, or a note, says the hold ended otherwise, as the first copy found. The
-- notes live as long as the state they were noted in, plus a second, so a note is there
-- whenever the state counts past its token; the last LOSSES_KEPT are kept, and a token older
-- than all of a full list is not known either way. Where the state is gone, or counts below
-- the token (a failover, a state that outlived its TTL), the copy answers that it held nothing.
-- Two cases answer wrong. A hold lost in a period that ended unseen, with no take between the
-- end and the end of the state's TTL, whose state a take then restarts from the clock, before
-- the copy lands: it finds a count past its token and no note, and answers released. And, the
-- safe way, a read hold released in a period whose last hold then ended unseen: its period is
-- noted lost, and its resend answers that it held nothing.

-- How many notes of lost holds a lock keeps (a sorted set within Redis's small encoding).
local LOSSES_KEPT = 128

-- Notes that holds of `lock` ended without their release, for as long as the fencing state
-- `fence` lives (see above; FENCE_TTL where it has none, or for a semaphore, nil): the holds of
-- the owner ids `owners` in the period of `token`, or, with no `owners`, the period of `token`
-- as a whole.
local function note_lost(lock, fence, token, owners)
    local lost = key_of(lock, 'lost')
    local ttl = fence and redis_call('pttl', fence) or -1
    if ttl < 0 then
        ttl = tonumber(FENCE_TTL)
    end
    local score = string.format('%d', token)
    for _, member in ipairs(owners or {score}) do
        redis_call('zadd', lost, score, member)
    end
    redis_call('zremrangebyrank', lost, 0, -(LOSSES_KEPT + 1))
    redis_call('pexpire', lost, ttl + 1000)
end

-- Counts the fencing state `fence` of `lock` up for a take of the free lock, noting the period
-- before if it ended unseen (see above). Returns the count, which fence_token makes a token.
local function count_up(lock, fence)
    local count = redis_call('incr', fence)
    if count >= FENCE_FLOOR and count % 2 == 0 then
        note_lost(lock, fence, count - 1)
        count = redis_call('incr', fence)
    end
    return count
end

-- Whether the hold of `token` (a string, as its release names it) of `lock` ended by a release,
-- as `count`, the count of the lock's periods (nil if gone), and the notes of lost holds tell a
-- copy of that release which found the hold gone (see above). `owner`: the hold's owner id
-- where several holds share a period (the read-write lock, the semaphore), nil where one owner
-- holds the lock at a time; `on`: whether the period of `count` goes on. False where they
-- cannot tell.
local function released_by_count(lock, count, token, owner, on)
    local own = tonumber(token)
    if not count or not own or count < own then
        return false
    end
    -- The count at the token: the period goes on, or it ended unseen.
    if count == own and not on then
        return false
    end
    local lost = key_of(lock, 'lost')
    -- A note found, or notes of another type: not released, or not known.
    if owner and redis_pcall('zscore', lost, owner) then
        return false
    end
    if count <= own + 1 then
        return true
    end
    if redis_pcall('zscore', lost, token) then
        return false
    end
    if redis_call('zcard', lost) < LOSSES_KEPT then
        return true
    end
    return own > tonumber(redis_call('zrange', lost, '0', '0', 'withscores')[2])
end

-- released_by_count for a lock, whose fencing state counts its periods: one that several holds
-- share (`owner` given) goes on while the lock is there.
local function released_before(lock, token, owner)
    local count = tonumber(redis_pcall('get', key_of(lock, 'fence')))
    local on = owner ~= nil and count == tonumber(token) and redis_call('exists', lock) == 1
    return released_by_count(lock, count, token, owner, on)
end

-- Ends the period of a lock that a script frees: counts the fencing state `fence` one past the
-- period's token (see above). A state gone (it outlived its TTL while the hold lasted) is not
-- made again by the INCR (which would leave it without a TTL): the next take restarts it. A
-- state of another type is left as it is.
local function end_hold(fence)
    local count = redis_pcall('incr', fence)
    if type(count) == 'number' and count < FENCE_FLOOR then
        redis_call('del', fence)
    end
end

-- The last token that the value `state` (or false) of a lock's fencing state says was handed
-- out, as a string ('' if none): the state itself while that token's period lasts, one below it
-- once the lock was freed (see end_hold).
local function last_token(state)
    local count = tonumber(state)
    if not count then
        return ''
    end
    if count >= FENCE_FLOOR then
        count = odd_at_most(count)
    end
    return string.format('%d', count)
end

-- Takes the free lock `lock` for `owner`: one hold, `lease` ms as its TTL, and the next token
-- of `fence` (see fence_token), which it returns. `record` (or nil) says who took it, "<client
-- name> <ms since the Unix epoch>", kept in the field `~who` so a caller who times out learns
-- who holds it: made by the acquiring client from its own clock (a TIME call and the strings
-- made of its reply cost Redis as much as the take's commands), by the release for a direct
-- hand-over (see pass_on). `now_us` is the server time in µs if the caller has read it, else
-- nil. Four commands: INCR (first, so that a fencing state of another type fails the script
-- before it writes the hold), HSET, PEXPIRE, and PEXPIRETIME for the clock unless the caller
-- has it; more when the state has fallen behind the clock, or when the last hold ended without
-- its release (see note_lost).
local function take(lock, fence, fence_ttl, owner, lease, record, now_us)
    local count = count_up(lock, fence)
    if record then
        redis_call('hset', lock, owner, '1', '~who', record)
    else
        redis_call('hset', lock, owner, '1')
    end
    redis_call('pexpire', lock, lease)
    return fence_token(fence, fence_ttl, count, now_us, lock, lease)
end

-- What a busy acquire tells about the holder of `lock`: its `~who` record ('' if none), and how
-- many wait in `queue`.
local function holder_seen(lock, queue)
    return redis_call('hget', lock, '~who') or '', redis_call('zcard', queue)
end

-- The field that records who took the hold of `owner` where every hold has an owner id of its
-- own in one hash (the read-write lock's holds, the semaphore's acquisitions): "<client name>
-- <ms>", as the exclusive locks' `~who` (see take). It comes and goes with its hold, in
-- the same HSET and HDEL, so it lives exactly as long as the hold.
local function who_field(owner)
    return '~who:' .. owner
end

-- The server time (ms, as a string) the TTL of `key` ends, `now` being the server time; nil if
-- `key` is not there or has no TTL. A TTL counts from the script's start, which comes before
-- `now`, so the end given is never before the one Redis keeps. How a lone hold's lease (the
-- read-write lock's, the semaphore's) is read.
local function ttl_end(key, now)
    local left = redis_call('pttl', key)
    if left <= 0 then
        return nil
    end
    return string.format('%d', now + left)
end

-- The owner ids of every hold in `lock`: its fields, but the bookkeeping ones (their names
-- start with `~`) and the read-write lock's `writer`.
local function owners_of(lock)
    local owners = {}
    for _, field in ipairs(redis_call('hkeys', lock)) do
        if string.sub(field, 1, 1) ~= '~' and field ~= 'writer' then
            owners[#owners + 1] = field
        end
    end
    return owners
end

-- The watchdog's renewal of the hold of `owner` in `lock` where every hold has a lease of its
-- own in `leases` (owner id -> server ms it ends): the read-write lock's holds, the semaphore's
-- acquisitions. `expire(lock, leases, now)` first drops the holds whose lease ended; the hold's
-- lease then ends `lease` ms from now, and `settle(lock, leases)` (nil: nothing to do) brings
-- the keys' own expiry in line. Returns 1 renewed, 0 the hold is gone.
local function renew_own_lease(lock, leases, owner, lease, expire, settle)
    if redis_call('type', lock).ok ~= 'hash' then
        return 0
    end
    local now = server_ms()
    expire(lock, leases, now)
    if redis_call('hexists', lock, owner) == 0 then
        return 0
    end
    redis_call('zadd', leases, string.format('%d', now + tonumber(lease)), owner)
    if settle then
        settle(lock, leases)
    end
    return 1
end

-- What a busy acquire tells about holds kept under who_field: {noun, holds, record...}, where
-- `noun` says what each holder is ('writer', 'reader', 'permit holder'), `holds` how many holds
-- there are in all, and each record is that of one of `owners` (the few to name; '' where a
-- hold recorded none), read with one HMGET.
local function holds_seen(lock, noun, holds, owners)
    local seen = {noun, holds}
    if #owners == 0 then
        return seen
    end
    local fields = {}
    for i, owner in ipairs(owners) do
        fields[i] = who_field(owner)
    end
    for _, record in ipairs(redis_call('hmget', lock, unpack(fields))) do
        seen[#seen + 1] = record or ''
    end
    return seen
end

-- What an acquisition checks first: {-1, type} if `lock` holds a value of another type than a
-- hash (not ours to touch), else nil; and the type of `lock`. (The reentrant and the fair lock
-- learn it without a TYPE on their common path: see refused_type.)
local function wrong_type(lock)
    local kind = redis_call('type', lock).ok
    if kind ~= 'none' and kind ~= 'hash' then
        return {-1, kind}, kind
    end
    return nil, kind
end

-- What a script that reads or changes the hash `key`, and nothing else when it is absent,
-- answers before it starts: -1 if `key` holds a value of another type (not ours to touch),
-- `absent` if there is no key, nil for a hash (go on).
local function not_a_hash(key, absent)
    local refused, kind = wrong_type(key)
    if refused then
        return -1
    end
    if kind == 'none' then
        return absent
    end
    return nil
end

-- wrong_type for a script whose first command on `lock` ran with redis_pcall, which fails only
-- on a value of another type than a hash: the type of that value if `reply` (that command's
-- reply) is this failure, else nil. So the common case costs no TYPE. Any other failure is
-- raised, as redis_call would.
local function refused_type(lock, reply)
    if type(reply) ~= 'table' or not reply.err then
        return nil
    end
    if not string.find(reply.err, 'WRONGTYPE', 1, true) then
        error(reply.err)
    end
    return redis_call('type', lock).ok
end

-- The owner's mark (KEYS[3] of every acquire), and why a late copy of an acquisition takes
-- nothing. A copy of an acquire request may sit on a retired connection and reach Redis up to
-- the mark's life (`Config::abandoned_ttl`) after it was sent. Two cases leave such a copy:
-- - the caller gave up (its wait ran out, it failed, it was cancelled): the undo (leave.lua)
--   marks the owner as it leaves;
-- - a request of the acquisition went out more than once and the acquisition took a hold: the
--   copy that takes or re-arms the hold marks the owner (ARGV `mark_ttl` > 0, see mark_taken),
--   so that once the hold is gone (released, or its lease ran out under its guard) an earlier
--   copy landing late does not take the lock again for an owner nobody acts for.
-- A marked owner takes nothing new and does not queue (abandoned); a copy that finds its own
-- hold still there re-arms it, as any resend does (rearm), before the mark is read.

-- {-3, 0} if the owner whose mark is `mark` is marked: a late copy of a request of an
-- acquisition that gave up or already took its hold; else nil.
local function abandoned(mark)
    if redis_call('exists', mark) == 1 then
        return {-3, 0}
    end
    return nil
end

-- Marks the owner whose mark is `mark` for `ttl` ms (a string; "0" or nil: no mark) as its hold is
-- taken or re-armed by a copy that may have earlier copies on their way (see above).
local function mark_taken(mark, ttl)
    if ttl and ttl ~= '0' then
        redis_call('set', mark, 1, 'px', ttl)
    end
end

-- What the reentrant and the fair lock's acquires do first when their EXISTS found something at
-- the lock or the mark. A resend of an acquisition that succeeded finds `owner` in `lock`:
-- writes the hold again and re-arms its lease, so the lease the caller times from this resend is
-- never longer than the key's, and a replica that missed the first write gets it (WAIT covers
-- the resend); and marks the owner's `mark` for `mark_ttl` (see mark_taken). Returns the token
-- for such a resend, {-1, type} for a value of another type at `lock` (learnt from the HGET,
-- through redis_pcall: see refused_type), else nil: the hold is not this owner's.
local function rearm(lock, fence, fence_ttl, owner, lease, mark, mark_ttl)
    local holds = redis_pcall('hget', lock, owner)
    local kind = refused_type(lock, holds)
    if kind then
        return {-1, kind}
    end
    if not holds then
        return nil
    end
    redis_call('hset', lock, owner, holds)
    redis_call('pexpire', lock, lease)
    mark_taken(mark, mark_ttl)
    return tonumber(redis_call('get', fence)) or next_token(fence, fence_ttl)
end

-- The queue keys of a lock, passed to every function below as `q`: `q.queue` (sorted set of
-- waiting owner ids, by the server time in µs of their first try), `q.alive` (sorted set of the
-- same ids, by the server time in ms they are live until) and `q.wants` (hash of waiting owner
-- ids -> what each waits for, where the primitive needs to know: for the exclusive locks the
-- lease to hand the lock over with, for the read-write lock `read` or `write`).

-- Queues `owner` in `q`, keeping the place (`now_us`) of its first try, and makes it live until
-- `liveness` ms from now. `want` (or nil) is recorded in `q.wants`. Every queue key lives one
-- liveness period past the last try.
local function enqueue(q, owner, now_us, liveness, want)
    redis_call('zadd', q.queue, 'NX', now_us, owner)
    redis_call('zadd', q.alive, math.floor(now_us / 1000) + liveness, owner)
    redis_call('pexpire', q.queue, liveness)
    redis_call('pexpire', q.alive, liveness)
    if want then
        redis_call('hset', q.wants, owner, want)
        redis_call('pexpire', q.wants, liveness)
    end
end

-- Takes `waiter` out of the queue `q`. `wanted` false: the waiter never recorded what it waits
-- for (see asks_hand_over), so `q.wants` is left as it is.
local function dequeue(q, waiter, wanted)
    redis_call('zrem', q.queue, waiter)
    redis_call('zrem', q.alive, waiter)
    if wanted ~= false then
        redis_call('hdel', q.wants, waiter)
    end
end

-- Whether the acquisition whose acquire ARGV is `argv` asks a release to hand it the lock
-- (ARGV[6], the lease to hand it over with; absent or "0": no). Every try of one acquisition
-- asks the same, so one that does not never recorded a want (see dequeue).
local function asks_hand_over(argv)
    return argv[6] ~= nil and argv[6] ~= '0'
end

-- The first step of the reentrant and the fair lock's acquires, on their own ARGV, after an
-- EXISTS that found `found` of their keys: nothing found (a free lock `lock`, an unmarked owner,
-- whose mark is `mark`), it leaves the queue if this owner queued on an earlier try (ARGV[7]),
-- marks the owner if an earlier copy may still be on its way (ARGV[8], see mark_taken) and takes
-- the lock; else a resend whose hold exists re-arms it (see rearm). Returns the acquire's reply,
-- or nil when neither happened. An acquisition that asks for no hand-over (asks_hand_over)
-- recorded no want, so leaving the queue touches no `wants`.
local function take_or_rearm(lock, mark, argv, found)
    if found == 0 then
        if argv[7] == '1' then
            dequeue(queue_of(lock), argv[1], asks_hand_over(argv))
        end
        mark_taken(mark, argv[8])
        return take(lock, key_of(lock, 'fence'), FENCE_TTL, argv[1], lease_of(argv), argv[2])
    end
    return rearm(lock, key_of(lock, 'fence'), FENCE_TTL, argv[1], lease_of(argv), mark, argv[8])
end

-- Whether nobody queues in `queue`, the common case of a release: told by an EXISTS, whose
-- integer reply costs Redis less than the empty table of a ZRANGE.
local function nobody_queued(queue)
    return redis_call('exists', queue) == 0
end

-- The first waiter of `q` that is live at `now` (server ms; read when first needed if nil), or
-- `keep` if it comes first; the dead ones ahead of it leave the queue. Nil if none.
local function first_live(q, now, keep)
    local head = redis_call('zrange', q.queue, '0', '0')[1]
    while head and head ~= keep do
        now = now or server_ms()
        if tonumber(redis_call('zscore', q.alive, head) or '0') >= now then
            return head
        end
        dequeue(q, head)
        head = redis_call('zrange', q.queue, '0', '0')[1]
    end
    return head
end

-- The first live waiter of `q`, which is not empty (the dead ones ahead of it leave the
-- queue), and what it waits for (its entry in `q.wants`, or nil); nil if none is live. `now`:
-- the server time in ms, if the caller has read it (else read when first needed).
local function head_of(q, now)
    local head = first_live(q, now, nil)
    if not head then
        return nil
    end
    return head, redis_call('hget', q.wants, head)
end

-- Publishes `message` for the waiter `waiter` (an owner id, "<client id>:<n>") with `publish`,
-- on its client's own channel of the resource, "<channel>:<client id>", when someone listens
-- there (the hub subscribes it after `channel`, see core/hub), so that only the waiter's
-- process receives it instead of every process waiting on `channel`. Else (nobody listens: a
-- client of a version before own channels, or one not subscribed yet) on `channel`, which every
-- waiting client listens on. On a cluster (`publish` is 'spublish', or 'PUBLISH' before Redis 7)
-- only on `channel`: the hub subscribes no own channel there. Published with pcall (see
-- pass_on).
local function wake_by_name(publish, channel, waiter, message)
    local client = publish == 'publish' and string.match(waiter, '^(.+):[^:]*$')
    if client then
        local heard = redis_pcall(publish, channel .. ':' .. client, message)
        if type(heard) == 'number' and heard > 0 then
            return
        end
    end
    redis_pcall(publish, channel, message)
end

-- The lock `lock` was just freed: passes it on to the first live waiter of its queue (dead
-- waiters ahead of it leave the queue), on its channel with the `publish` command.
-- - A waiter that takes a direct hand-over (in its `wants`) becomes the owner here, with its own
--   lease and the next token of the lock's fencing state (living `fence_ttl` ms), and leaves the
--   queue; the message "to:<id> <token> <server time in µs>" tells its client, which returns the
--   guard without another request.
-- - Any other waiter is woken by name ("to:<id>") and tries.
-- Published with pcall: a Redis user without channel rights still gets its work done (its
-- waiters wake at their timers, and a waiter handed the lock finds it its own at its next try).
local function pass_on(lock, fence_ttl, publish)
    local queue = key_of(lock, 'queue')
    if nobody_queued(queue) then
        return
    end
    local q = queue_of(lock, queue)
    -- Someone queues, so the head's liveness needs the time: read once, for that and for a
    -- direct hand-over's record and message.
    local now_us, now = server_time()
    local head, want = head_of(q, now)
    if not head then
        return
    end
    if not want then
        wake_by_name(publish, key_of(lock, 'unlock'), head, 'to:' .. head)
        return
    end
    -- "<lease> <client name>", see the fair lock's acquire; the hold is recorded as taken now.
    local lease, name = string.match(want, '^(%d+) (.+)$')
    dequeue(q, head)
    local record = name and string.format('%s %d', name, math.floor(now_us / 1000))
    local token = take(lock, key_of(lock, 'fence'), fence_ttl, head, lease or want, record, now_us)
    local handed = string.format('to:%s %d %d', head, token, now_us)
    wake_by_name(publish, key_of(lock, 'unlock'), head, handed)
end

-- The holds of one owner, and why each state change counts once however late a copy of its
-- request lands. Every hold of an owner has a number: 0 for the hold its acquisition took, and
-- for each re-entry the number its client gave it, above every number that client gave before
-- (see core/ids.rs). The owner's own field counts its holds (what renewals, exec, info and a
-- resent acquisition read); the field `~r:<owner>`, its record, holds "<highest number seen>
-- <number of each hold left>...", e.g. "7 0 7": seen up to re-entry 7, the acquisition's hold
-- and re-entry 7 left. No record: no re-entry seen, the acquisition's hold only (as "0 0").
-- - A re-entry numbered above the highest seen counts, and becomes the highest; at or below it,
--   it is a copy (or it was undone, or a later re-entry landed first): it adds nothing.
-- - A release or an undo names the hold it gives back, and finds it gone the second time.
-- - An undo numbered above the highest seen (its re-entry has not landed) raises the highest
--   to it, so the re-entry adds nothing when it lands.
-- The record lives in the lock's hash and goes with the owner's hold: nothing of it outlives the
-- hold, and no key per request is needed (a release's memo only answers a resend).

-- The field of `owner`'s record.
local function record_field(owner)
    return '~r:' .. owner
end

-- The record `record` (nil: none) read: the highest number seen, and the list of the numbers of
-- the holds left, as strings.
local function read_record(record)
    local numbers = {}
    for number in string.gmatch(record or '0 0', '%d+') do
        numbers[#numbers + 1] = number
    end
    local last = table.remove(numbers, 1)
    return last, numbers
end

-- The position of `number` in the list `numbers`, or nil.
local function find_number(numbers, number)
    for at, held in ipairs(numbers) do
        if held == number then
            return at
        end
    end
    return nil
end

-- Counts re-entry `number` of `owner` into `lock`, once however often and however late a copy
-- of it arrives. Returns 1 re-entered (by this copy or an earlier one), 0 the owner no longer
-- holds the lock, -2 the number is spent: its re-entry was undone, or a later re-entry of the
-- owner landed first (a caller still waiting asks again under a new number).
local function reenter(lock, owner, number)
    local found = redis_call('hmget', lock, owner, record_field(owner))
    if not found[1] then
        return 0
    end
    local last, held = read_record(found[2])
    if tonumber(number) <= tonumber(last) then
        if find_number(held, number) then
            return 1
        end
        return -2
    end
    held[#held + 1] = number
    local record = number .. ' ' .. table.concat(held, ' ')
    redis_call('hset', lock, owner, tonumber(found[1]) + 1, record_field(owner), record)
    return 1
end

-- Gives back hold `number` of `owner` in `lock` if the owner still has it. `undo`: the number is
-- a re-entry's whose caller gave up, which may not have landed yet; if it is above the highest
-- seen, it becomes the highest, so that re-entry adds nothing when it lands. Returns how many
-- holds the owner has left (0: none, the caller lets the owner's hold go), or nil if it did not
-- have this one (a copy of a release or undo that counted already, an undo that came first, or
-- an owner that holds nothing). `holds` and `record` are the owner's field and its record (nil
-- where absent), read by the caller (see give_back_hold).
-- The number '' names the acquisition's hold of an owner whose client never sent a re-entry,
-- and never will (see Reentries in core/scope.rs): its only hold, and no record, so the caller
-- need not read one (the uncontended release).
local function give_back(lock, owner, number, undo, holds, record)
    if not holds then
        return nil
    end
    if number == '' or (not record and number == '0') then
        -- No re-entry seen: the acquisition's hold is the only one.
        return tonumber(holds) - 1
    end
    local last, held = read_record(record)
    if undo and tonumber(number) > tonumber(last) then
        redis_call('hset', lock, record_field(owner), number .. ' ' .. table.concat(held, ' '))
        return nil
    end
    local at = find_number(held, number)
    if not at then
        return nil
    end
    table.remove(held, at)
    local left = tonumber(holds) - 1
    if left > 0 then
        local record = last .. ' ' .. table.concat(held, ' ')
        redis_call('hset', lock, owner, left, record_field(owner), record)
    end
    return left
end

-- give_back, reading the owner's hold and record itself: one HMGET.
local function give_back_hold(lock, owner, number, undo)
    local found = redis_call('hmget', lock, owner, record_field(owner))
    return give_back(lock, owner, number, undo, found[1], found[2])
end

-- Lock-checked writes (exec.lua), and why a copy of one runs at most once, and never after its
-- caller was told it did not run, however late it lands. Every exec of an owner has a number,
-- from the same client-wide counter as its re-entries (see core/ids.rs), and carries a floor:
-- the lowest number of that owner's execs whose outcome its client may still ask about. The
-- field `~x:<owner>`, the owner's exec record, holds "<highest number seen> <number of each
-- exec that ran, at or above the floor>...", e.g. "9 8 9". No record: no exec seen (as "0").
-- - An exec numbered above the highest seen runs: its number becomes the highest and is listed
--   as run, in the same script, before its commands run. At or below the highest, it runs
--   nothing: listed, it is a copy of an exec that ran; not listed, its number is spent (its
--   caller gave up on it, or a later exec of the owner landed first).
-- - A caller that got no reply spends the number (spend_exec.lua): the highest is raised to it,
--   so a copy that lands later runs nothing, and the list says whether it ran.
-- - Numbers below the floor leave the list, so it holds no more numbers than the owner has
--   execs in flight.
-- The record lives in the lock's hash and goes with the owner's hold, as its re-entry record
-- does: nothing of it outlives the hold, and no key per request is needed.

-- The field of `owner`'s exec record.
local function exec_field(owner)
    return '~x:' .. owner
end

-- What the exec record `record` (nil: none) says of exec `number` for a request whose floor is
-- `floor` (both strings): 'new' (above the highest seen: it may run), 'ran' (listed: a copy of
-- it ran) or 'spent' (at or below the highest, not listed: it did not run and never will). Also
-- returns the highest number seen and the numbers listed as run at or above `floor`, as strings.
local function exec_seen(record, number, floor)
    local highest, ran = nil, {}
    for seen in string.gmatch(record or '0', '%d+') do
        if not highest then
            highest = seen
        elseif tonumber(seen) >= tonumber(floor) then
            ran[#ran + 1] = seen
        end
    end
    if tonumber(number) > tonumber(highest) then
        return 'new', highest, ran
    end
    if find_number(ran, number) then
        return 'ran', highest, ran
    end
    return 'spent', highest, ran
end

-- Writes `owner`'s exec record in `lock`: the highest number seen `highest`, then the numbers
-- `ran` listed as run.
local function write_execs(lock, owner, highest, ran)
    local record = highest
    if #ran > 0 then
        record = highest .. ' ' .. table.concat(ran, ' ')
    end
    redis_call('hset', lock, exec_field(owner), record)
end
