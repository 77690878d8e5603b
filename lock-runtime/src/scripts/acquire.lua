-- Acquire (or re-enter) a reentrant lock and hand out a fencing token.
--
-- KEYS[1]  lock key: hash of owner id -> hold count, with the lease as its TTL
-- KEYS[2]  fence key: counter of fresh acquisitions; never expires
-- KEYS[3]  memo key of this request, "reenter" mode only: makes a resent re-entry count once
--
-- ARGV[1]  owner id (client id ":" scope id)
-- ARGV[2]  lease in milliseconds (fresh mode; a re-entry keeps the outer hold's lease)
-- ARGV[3]  mode: "fresh" (this owner id is new to this request) or "reenter" (the caller's
--          scope already holds the lock under this owner id)
-- ARGV[4]  memo TTL in milliseconds ("reenter" mode only)
--
-- Returns {status, value}:
--   { 1, token}  acquired fresh; token is strictly greater than every earlier one
--   { 2, token}  re-entered; token is the holder's (the counter does not move)
--   { 0, pttl}   held by another owner; pttl is its remaining lease (-1: no TTL)
--   {-1, type}   KEYS[1] holds a value of another type: not ours to touch
--   {-2, 0}      "reenter" asked, but this owner no longer holds the lock (lease lost)
--
-- A fresh owner id is unique to one acquire call, so finding it already in the hash means this
-- request is a resend of one that succeeded: answer again without counting twice.

local kind = redis.call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return {-1, kind}
end

if ARGV[3] == 'fresh' then
    if kind == 'none' then
        local token = redis.call('incr', KEYS[2])
        redis.call('hset', KEYS[1], ARGV[1], 1)
        redis.call('pexpire', KEYS[1], ARGV[2])
        return {1, token}
    end
    if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then
        return {1, tonumber(redis.call('get', KEYS[2]))}
    end
    return {0, redis.call('pttl', KEYS[1])}
end

local token = tonumber(redis.call('get', KEYS[2]) or '0')
if redis.call('exists', KEYS[3]) == 1 then
    return {2, token}
end
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
    return {-2, 0}
end
redis.call('hincrby', KEYS[1], ARGV[1], 1)
redis.call('set', KEYS[3], 1, 'px', ARGV[4])
return {2, token}
