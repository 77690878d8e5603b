#!lua flags=no-writes
-- Describe a reentrant or fair lock as it stands, changing nothing: who holds it, since when,
-- how often re-entered, how long its lease has left, who waits, the last fencing token.
--
-- Declared read-only (`flags=no-writes`): Redis refuses any write in it, runs it under memory
-- pressure and on replicas, and on Redis Cluster lets it touch only its declared keys.
--
-- KEYS[1]  lock key: hash of owner id -> hold count, and `~who` (see take in common.lua)
-- KEYS[2]  fencing state: the last token handed out (see next_token in common.lua)
-- KEYS[3]  queue: sorted set of waiting owner ids, by the server time (µs) of their first try
-- KEYS[4]  liveness: sorted set of the same ids, by the server time (ms) they are live until
--
-- ARGV[1]  how many waiter ids to return at most, in queue order (the count covers them all)
--
-- Returns {status, ...}:
--   { 1, now, pttl, owner, holds, who, token, waiters, ids}  held
--   { 0, now, -2, '', 0, '', token, waiters, ids}            free
--   {-1, type}   KEYS[1] holds a value of another type
-- where `now` is the server time in ms; `pttl` the lock key's PTTL (-1: no TTL); `owner` the
-- holder's owner id and `holds` its hold count; `who` the holder's record ("<client name>
-- <server ms it took the lock>", or '' if none); `token` the last token handed out, or '' once
-- the fencing state expired; `waiters` how many queued waiters are live (their liveness
-- deadline not passed: the dead ones are purged by the next release, not here); `ids` the first
-- ARGV[1] live waiters' owner ids, longest-queued first.

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return {-1, kind}
end

local time = redis.call('time')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local token = redis.call('get', KEYS[2]) or ''
local waiters = redis.call('zcount', KEYS[4], now, '+inf')

local ids = {}
local limit = tonumber(ARGV[1])
local start = 0
while #ids < limit do
    local batch = redis.call('zrange', KEYS[3], start, start + 99)
    if #batch == 0 then
        break
    end
    for _, id in ipairs(batch) do
        local live_until = tonumber(redis.call('zscore', KEYS[4], id) or '0')
        if live_until >= now and #ids < limit then
            ids[#ids + 1] = id
        end
    end
    start = start + #batch
end

if kind == 'none' then
    return {0, now, -2, '', 0, '', token, waiters, ids}
end

local owner, holds = '', 0
local fields = redis.call('hgetall', KEYS[1])
for i = 1, #fields, 2 do
    if fields[i] ~= '~who' then
        owner, holds = fields[i], tonumber(fields[i + 1]) or 0
        break
    end
end
local who = redis.call('hget', KEYS[1], '~who') or ''
return {1, now, redis.call('pttl', KEYS[1]), owner, holds, who, token, waiters, ids}
