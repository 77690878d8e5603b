-- Describe a read-write lock as it stands, changing nothing: its write hold, its read holds,
-- who waits and for what, the last fencing token. Sent read-only, with family/scripts/inspect.lua
-- in front (see there). A hold whose lease ended counts as gone (the next script that writes
-- drops it, see expire_holds in rw.lua).
--
-- KEYS[1]  lock key: hash of `writer`, owner id -> hold count and the holds' bookkeeping fields
--          (`~who:`, `~r:`, `~x:`, see rw.lua), read by name only
-- KEYS[2]  fencing state: the last token handed out (see last_token in common.lua)
-- KEYS[3]  queue: sorted set of waiting owner ids, by the server time (µs) of their first try
-- KEYS[4]  liveness: sorted set of the same ids, by the server time (ms) they are live until
-- KEYS[5]  wants: hash of waiting owner ids -> `read` or `write`
-- KEYS[6]  leases: sorted set of owner id -> server time (ms) its hold's lease ends; none on a
--          lone lock, whose TTL is its one hold's lease (see rw.lua)
--
-- ARGV[1]  how many read holds and waiters to return at most (the counts cover them all)
--
-- Returns {status, ...}:
--   {1, now, writer, readers, reads, token, waiters, ids, wants}
--   {-1, type}   KEYS[1] holds a value of another type
-- where `now` is the server time in ms; `writer` is {owner id, hold count, ms of lease left,
-- who} of the write hold, or {} if none, `who` being the hold's record ("<client name> <ms
-- it was taken>", or '' if none); `readers` the first ARGV[1] read holds, soonest lease end
-- first, as a flat list of the same four; `reads` how many read holds there are; `token` the
-- last token handed out, or '' once the fencing state expired; `waiters` how many queued
-- waiters are live; `ids` the first ARGV[1] of them, longest-queued first, and `wants` what
-- each waits for.

local refused, now = inspect_start(KEYS[1])
if refused then
    return refused
end
local limit = tonumber(ARGV[1])

-- One hold as the reply lists it, or nil if its lease ended (or it is not in the hash).
local function live_hold(owner, ends)
    local holds = redis_call('hget', KEYS[1], owner)
    if not holds or not ends or tonumber(ends) < now then
        return nil
    end
    return {owner, tonumber(holds), tonumber(ends) - now, who_took(KEYS[1], owner)}
end

-- A lone lock (see rw.lua) keeps no leases: {its hold's owner id, the server time (ms) its lease
-- ends} (see lone_lease in rw.lua); nil otherwise.
local lone
if redis_call('exists', KEYS[6]) == 0 then
    local owner, ends = lone_lease(KEYS[1], now)
    if owner then
        lone = {owner, ends}
    end
end

-- The server time (ms) the lease of `owner`'s hold ends, or nil.
local function ends_of(owner)
    if not lone then
        return redis_call('zscore', KEYS[6], owner)
    end
    if owner == lone[1] then
        return lone[2]
    end
    return nil
end

-- How many holds have a live lease, and the first `count` of them from the soonest end, as a
-- flat list of owner id, lease end.
local function live_leases(count)
    if lone then
        return 1, lone
    end
    return redis_call('zcount', KEYS[6], now, '+inf'),
        redis_call('zrangebyscore', KEYS[6], now, '+inf', 'WITHSCORES', 'LIMIT', 0, count)
end

local writer = {}
local writer_id = redis_call('hget', KEYS[1], 'writer')
if writer_id then
    writer = live_hold(writer_id, ends_of(writer_id)) or {}
end

local readers = {}
local reads, live = live_leases(limit + 1)
if writer[1] then
    reads = reads - 1
end
for i = 1, #live, 2 do
    if live[i] ~= writer[1] and #readers < limit * 4 then
        for _, part in ipairs(live_hold(live[i], live[i + 1]) or {}) do
            readers[#readers + 1] = part
        end
    end
end

local token = last_token(redis_call('get', KEYS[2]))
local q = {queue = KEYS[3], alive = KEYS[4], wants = KEYS[5]}
local waiters, ids, wants = live_waiters(q, now, limit)
return {1, now, writer, readers, reads, token, waiters, ids, wants}
