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

-- Wakes the first live waiter of `queue` (liveness deadlines in `alive`), by name, on `channel`
-- with the `publish` command; dead waiters ahead of it leave the queue. Published with pcall: a
-- Redis user without channel rights still gets its work done (its waiters wake at their timers).
local function wake_head(queue, alive, channel, publish)
    local head = redis.call('zrange', queue, 0, 0)[1]
    if not head then
        return
    end
    local time = redis.call('time')
    local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    while head do
        if tonumber(redis.call('zscore', alive, head) or '0') >= now then
            redis.pcall(publish, channel, 'to:' .. head)
            return
        end
        redis.call('zrem', queue, head)
        redis.call('zrem', alive, head)
        head = redis.call('zrange', queue, 0, 0)[1]
    end
end

