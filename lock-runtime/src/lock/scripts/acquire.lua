-- Take a free lock for a new owner and hand out a fencing token.
--
-- KEYS[1]  lock key: hash of owner id -> hold count, with the lease as its TTL
-- KEYS[2]  fencing state: the last token handed out for this name, under a TTL
-- KEYS[3]  abandoned mark of this owner id (set by abandon.lua when the caller gave up)
--
-- ARGV[1]  owner id (client id ":" scope id), new to this acquisition
-- ARGV[2]  lease in milliseconds
-- ARGV[3]  how long the fencing state outlives the last acquisition, in milliseconds
--
-- Returns {status, value}:
--   { 1, token}  acquired; token is strictly greater than every earlier one for this name
--   { 0, pttl}   held by another owner; pttl is its remaining lease (-1: no TTL)
--   {-1, type}   KEYS[1] holds a value of another type: not ours to touch
--   {-3, 0}      this owner id was abandoned: a late copy of a request whose caller gave up
--
-- An owner id is unique to one acquire call, so finding it already in the hash means this request
-- is a resend of one that succeeded: the hold is written again and its lease re-armed, so the
-- lease the caller times from this resend is never longer than the key's, and a replica that
-- missed the first write gets it (WAIT covers the resend).
--
-- Tokens are a hybrid logical clock: max(last + 1, server time in microseconds). While the
-- fencing state lives they count up by one; once it expired (the name was idle for ARGV[3]) they
-- restart from the server clock, which is above every token handed out before as long as the
-- server clock does not step back by more than that idle time.

if redis.call('exists', KEYS[3]) == 1 then
    return {-3, 0}
end

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return {-1, kind}
end

local lease = tonumber(ARGV[2])
local function next_token()
    local time = redis.call('time')
    local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
    local last = tonumber(redis.call('get', KEYS[2]) or '0')
    local token = math.max(last + 1, now)
    redis.call('set', KEYS[2], string.format('%d', token), 'px', math.max(tonumber(ARGV[3]), lease))
    return token
end

if kind == 'hash' then
    local holds = redis.call('hget', KEYS[1], ARGV[1])
    if not holds then
        return {0, redis.call('pttl', KEYS[1])}
    end
    redis.call('hset', KEYS[1], ARGV[1], holds)
    redis.call('pexpire', KEYS[1], lease)
    local token = tonumber(redis.call('get', KEYS[2]))
    return {1, token or next_token()}
end

local token = next_token()
redis.call('hset', KEYS[1], ARGV[1], 1)
redis.call('pexpire', KEYS[1], lease)
return {1, token}
