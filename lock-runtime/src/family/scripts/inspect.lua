-- Functions shared by the scripts that describe a primitive without changing it (its `info`).
-- Each such script is sent as the shebang `#!lua flags=no-writes`, this file, then its own
-- body (Lua scripts in Redis cannot include one another): Redis refuses any write in it, runs it
-- under memory pressure and on replicas, and on Redis Cluster lets it touch only its declared
-- keys. Nothing here writes: dead waiters and ended leases are skipped, not purged (the next
-- script that writes purges them).

-- The first step of every info.lua, on the primitive's hash `key`: the reply refusing to
-- describe it if it holds something other than a hash (another program's key), {-1, type};
-- else nil and the server time in milliseconds, from which leases and liveness are read.
local function inspect_start(key)
    local kind = redis_call('type', key).ok
    if kind ~= 'none' and kind ~= 'hash' then
        return {-1, kind}
    end
    local time = redis_call('time')
    return nil, tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- The record of who took the hold of `owner` in `hash`, where every hold has a field of its own
-- for it ("<client name> <ms>", see who_field in common.lua), or '' if it has none.
local function who_took(hash, owner)
    return redis_call('hget', hash, '~who:' .. owner) or ''
end

-- The live waiters of the queue `q` (see common.lua: `q.queue`, `q.alive`, and `q.wants` or nil
-- where the caller did not declare it) at `now` (server ms): how many there are, the owner ids
-- of the first `limit` of them, longest-queued first, and what each of those waits for (from
-- `q.wants`; '' where it records nothing or was not given).
local function live_waiters(q, now, limit)
    local count = redis_call('zcount', q.alive, now, '+inf')
    local ids, wants = {}, {}
    local start = 0
    while #ids < limit do
        local batch = redis_call('zrange', q.queue, start, start + 99)
        if #batch == 0 then
            break
        end
        for _, id in ipairs(batch) do
            local live_until = tonumber(redis_call('zscore', q.alive, id) or '0')
            if live_until >= now and #ids < limit then
                ids[#ids + 1] = id
                wants[#wants + 1] = (q.wants and redis_call('hget', q.wants, id)) or ''
            end
        end
        start = start + #batch
    end
    return count, ids, wants
end
