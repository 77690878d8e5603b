-- Functions shared by the lock scripts. lock/scripts.rs puts this file in front of every script
-- that uses them (Lua scripts in Redis cannot include one another).

-- The next fencing token of the lock whose fencing state is `fence` (a key with a TTL of
-- `ttl` ms once created): a hybrid logical clock. The state counts up by one per acquisition
-- (INCR keeps its TTL); when it is gone it restarts from the server time in microseconds.
-- Counting up by one never outruns the clock (an acquisition takes far more than a microsecond
-- of server time), so the clock is above every token handed out before, as long as it does not
-- step back by more than `ttl`. A counter below 10^15 (from a version without this scheme,
-- without TTL) restarts from the clock too.
local function next_token(fence, ttl)
    local token = redis.call('incr', fence)
    if token < 1000000000000000 then
        local time = redis.call('time')
        token = tonumber(time[1]) * 1000000 + tonumber(time[2])
        redis.call('set', fence, string.format('%d', token), 'px', ttl)
    end
    return token
end

-- Takes the free lock `lock` for `owner`: one hold, `lease` ms as its TTL, and the next token
-- of `fence` (see next_token), which it returns.
local function take(lock, fence, fence_ttl, owner, lease)
    local token = next_token(fence, fence_ttl)
    redis.call('hset', lock, owner, 1)
    redis.call('pexpire', lock, lease)
    return token
end

-- A resend of an acquisition that succeeded finds `owner` in `lock`: writes the hold again and
-- re-arms its lease, so the lease the caller times from this resend is never longer than the
-- key's, and a replica that missed the first write gets it (WAIT covers the resend). Returns the
-- hold's token, or nil if `owner` does not hold `lock`.
local function rearm(lock, fence, fence_ttl, owner, lease)
    local holds = redis.call('hget', lock, owner)
    if not holds then
        return nil
    end
    redis.call('hset', lock, owner, holds)
    redis.call('pexpire', lock, lease)
    return tonumber(redis.call('get', fence)) or next_token(fence, fence_ttl)
end

-- The server time in milliseconds.
local function server_ms()
    local time = redis.call('time')
    return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Queues `owner` in `queue`, keeping the place (`now_us`) of its first try, and makes it live
-- until `liveness` ms from now in `alive`. Both keys live one liveness period past the last try.
local function enqueue(queue, alive, owner, now_us, liveness)
    redis.call('zadd', queue, 'NX', now_us, owner)
    redis.call('zadd', alive, math.floor(now_us / 1000) + liveness, owner)
    redis.call('pexpire', queue, liveness)
    redis.call('pexpire', alive, liveness)
end

-- Takes `waiter` out of `queue` and `alive`.
local function dequeue(queue, alive, waiter)
    redis.call('zrem', queue, waiter)
    redis.call('zrem', alive, waiter)
end

-- The first waiter of `queue` that is live at `now` (server ms; read when first needed if nil),
-- or `keep` if it comes first; the dead ones ahead of it leave the queue. Nil if none.
local function first_live(queue, alive, now, keep)
    local head = redis.call('zrange', queue, 0, 0)[1]
    while head and head ~= keep do
        now = now or server_ms()
        if tonumber(redis.call('zscore', alive, head) or '0') >= now then
            return head
        end
        dequeue(queue, alive, head)
        head = redis.call('zrange', queue, 0, 0)[1]
    end
    return head
end

-- Wakes the first live waiter of `queue` (liveness deadlines in `alive`), by name, on `channel`
-- with the `publish` command; dead waiters ahead of it leave the queue. Published with pcall: a
-- Redis user without channel rights still gets its work done (its waiters wake at their timers).
local function wake_head(queue, alive, channel, publish)
    local head = first_live(queue, alive, nil, nil)
    if head then
        redis.pcall(publish, channel, 'to:' .. head)
    end
end

