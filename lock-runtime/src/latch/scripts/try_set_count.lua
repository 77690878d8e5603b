-- Set a count-down latch's count, unless the latch exists.
--
-- KEYS[1]  latch key (see latch.lua)
-- KEYS[2]  memo key of this request: a resend answers what the first attempt did
--
-- ARGV[1]  the count: a positive integer that fits a signed 64-bit integer (DECR's range)
-- ARGV[2]  the latch's TTL in milliseconds
-- ARGV[3]  memo TTL in milliseconds
--
-- Returns:
--   1   set: there was no latch; it now stands at ARGV[1], expiring in ARGV[2] ms
--   0   not set: the latch exists (its count and TTL unchanged)
--  -1   KEYS[1] holds something that is not a count (left untouched)

local memo = redis.call('get', KEYS[2])
if memo then
    return tonumber(memo)
end

local count = read_count(KEYS[1])
local result
if count == nil then
    redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
    result = 1
elseif count then
    result = 0
else
    return -1
end
redis.call('set', KEYS[2], result, 'px', ARGV[3])
return result
