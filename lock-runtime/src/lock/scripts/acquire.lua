-- Take a free lock for a new owner and hand out a fencing token.
--
-- KEYS[1]  lock key: hash of owner id -> hold count, with the lease as its TTL
-- KEYS[2]  fencing state: the last token handed out for this name, under a TTL set when it was
--          created
-- KEYS[3]  abandoned mark of this owner id (set by abandon.lua when the caller gave up)
--
-- ARGV[1]  owner id (client id ":" scope id), new to this acquisition
-- ARGV[2]  lease in milliseconds
-- ARGV[3]  how long the fencing state lives, in milliseconds
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
-- Tokens are a hybrid logical clock. The fencing state counts up by one per acquisition
-- (INCR keeps its TTL); when it is gone (it expired ARGV[3] after it was created) it restarts
-- from the server time in microseconds. Counting up by one never outruns the clock (an
-- acquisition takes far more than a microsecond of server time), so the clock is above every
-- token handed out before, as long as it does not step back by more than ARGV[3]. A counter
-- below 10^15 (from a version without this scheme, without TTL) restarts from the clock too.
--
-- The common path is one INCR: the state's TTL is set only when it is (re)created.

if redis.call('exists', KEYS[3]) == 1 then
    return {-3, 0}
end

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return {-1, kind}
end

local lease = ARGV[2]
local function next_token()
    local token = redis.call('incr', KEYS[2])
    if token < 1000000000000000 then
        local time = redis.call('time')
        token = tonumber(time[1]) * 1000000 + tonumber(time[2])
        redis.call('set', KEYS[2], string.format('%d', token), 'px', ARGV[3])
    end
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
