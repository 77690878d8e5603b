-- Functions for primitives that keep the ids of their recent requests in their own keys, so a
-- copy of a state-changing request counts once however late it lands (DESIGN 3.2). A retired
-- connection's bytes can reach Redis up to ~15 minutes after they were sent (TCP
-- retransmission), long after a memo kept for the retry timeout is gone. The count-down latch
-- and the semaphore put this file in front of their scripts (latch/scripts.rs,
-- semaphore/scripts.rs): Lua scripts in Redis cannot include one another.
--
-- `requests` is a sorted set beside the primitive's keys, in its hash slot: one member per
-- request id that ran (changed the primitive, or looked and changed nothing), scored with the
-- server time in milliseconds it first ran times 4, plus what it answered (an outcome from 0 to
-- 3). One ZSCORE tells whether a request ran and what it answered, so a resend answers like the
-- first attempt without a memo key, and a late copy changes nothing. Every write drops the
-- members older than the horizon (a copy never lands later than that after its request first
-- ran) and sets the key's TTL to the horizon: the set holds what ran within the horizon, about
-- 100 bytes per request, and goes with the last of them.

-- What request `id` answered, if it ran within the horizon; nil if it did not.
local function ran_already(requests, id)
    local score = redis_call('zscore', requests, id)
    if not score then
        return nil
    end
    return tonumber(score) % 4
end

-- Records that request `id` ran now and answered `outcome` (0 to 3), keeping the requests of the
-- last `horizon` milliseconds.
local function record_run(requests, id, outcome, horizon)
    local time = redis_call('time')
    local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    local oldest = (now - tonumber(horizon)) * 4
    redis_call('zremrangebyscore', requests, '-inf', '(' .. string.format('%d', oldest))
    redis_call('zadd', requests, string.format('%d', now * 4 + outcome), id)
    redis_call('pexpire', requests, horizon)
end

-- Runs `change` for request `id` unless the request ran within the horizon, and answers what it
-- answered the first time. `change()` returns its outcome: 0 to 3, recorded with `id` in
-- `requests` for `horizon` ms, or a negative status (a value of another type at the primitive's
-- key), which changed nothing and is not recorded.
local function run_once(requests, id, horizon, change)
    local ran = ran_already(requests, id)
    if ran then
        return ran
    end
    local outcome = change()
    if outcome >= 0 then
        record_run(requests, id, outcome, horizon)
    end
    return outcome
end
