-- Describe a semaphore as it stands, changing nothing: its total, the permits free, who holds
-- permits and how many, who waits and for how many. Sent read-only, with
-- family/scripts/inspect.lua in front (see there). An acquisition whose lease ended counts as
-- gone and its permits as free (the next script that writes drops it, see expire_permits in
-- sem.lua).
--
-- KEYS[1]  the semaphore: hash of `total`, `used`, permit id -> permits held and
--          `~who:<permit id>` (see sem.lua)
-- KEYS[2]  unused (the locks' fencing state: permits carry no token)
-- KEYS[3]  queue: sorted set of waiting permit ids, by the server time (µs) of their first try
-- KEYS[4]  liveness: sorted set of the same ids, by the server time (ms) they are live until
-- KEYS[5]  wants: hash of waiting permit ids -> the number of permits each wants
-- KEYS[6]  leases: sorted set of permit id -> server time (ms) its lease ends
-- KEYS[7]  the lone acquisition: a key of its permit id, permits and who took them, whose TTL
--          is its lease (see sem.lua)
--
-- ARGV[1]  how many holders and waiters to return at most (the counts cover them all)
--
-- Returns {status, ...}:
--   {1, now, total, used, holders, held_by, waiters, ids, wants}
--   {-1, type}   KEYS[1] holds a value of another type
-- where `now` is the server time in ms; `total` the semaphore's total, or '' if its permits
-- were never set; `used` the permits held by acquisitions whose lease has not ended; `holders`
-- the first ARGV[1] of those acquisitions, soonest lease end first, as a flat list of permit
-- id, permits, ms of lease left, and who took them ("<client name> <ms>", or '' if
-- unrecorded); `held_by` how many such acquisitions there are; `waiters` how many queued
-- waiters are live; `ids` the first ARGV[1] of them, longest-queued first, and `wants` how many
-- permits each wants.

local refused, now = inspect_start(KEYS[1])
if refused then
    return refused
end
local limit = tonumber(ARGV[1])
local total = redis_call('hget', KEYS[1], 'total') or ''

-- The permits of acquisitions whose lease ended still count in `used`: take them out.
local used = tonumber(redis_call('hget', KEYS[1], 'used')) or 0
for _, id in ipairs(redis_call('zrangebyscore', KEYS[6], '-inf', '(' .. now)) do
    used = used - (tonumber(redis_call('hget', KEYS[1], id)) or 0)
end

-- The holders, as a flat list of permit id, permits, ms of lease left and who took them: the
-- lone acquisition (see sem.lua) alone while its key is there (its TTL the lease), else those of
-- KEYS[6]; and how many there are.
local holders, held_by = {}, 0
local lone = redis_call('get', KEYS[7])
local ends = lone and ttl_end(KEYS[7], now)
if ends then
    local id, permits, record = lone_parts(lone)
    used = used + tonumber(permits)
    holders, held_by = {id, tonumber(permits), tonumber(ends) - now, record}, 1
else
    held_by = redis_call('zcount', KEYS[6], now, '+inf')
    local live = redis_call('zrangebyscore', KEYS[6], now, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
    for i = 1, #live, 2 do
        local permits = redis_call('hget', KEYS[1], live[i])
        if permits then
            holders[#holders + 1] = live[i]
            holders[#holders + 1] = tonumber(permits)
            holders[#holders + 1] = tonumber(live[i + 1]) - now
            holders[#holders + 1] = who_took(KEYS[1], live[i])
        end
    end
end

local q = {queue = KEYS[3], alive = KEYS[4], wants = KEYS[5]}
local waiters, ids, wants = live_waiters(q, now, limit)
return {1, now, total, math.max(used, 0), holders, held_by, waiters, ids, wants}
