-- Count a latch down by one. At zero the latch is deleted and every waiter, in every process, is
-- woken. A count-down on no latch changes nothing (it never makes a latch, nor a count below
-- zero) but wakes the waiters too: a latch deleted behind their backs is open, and they learn it
-- at once rather than at their next timed look.
--
-- KEYS[1]  latch key (see latch.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  memo key of this request: a resend answers what the first attempt did, and never
--          counts down twice
--
-- ARGV[1]  wake-up message: every waiter
-- ARGV[2]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[3]  the latch's TTL in milliseconds, re-armed while the count stays above zero
-- ARGV[4]  memo TTL in milliseconds
--
-- Returns:
--   2   counted down; the count is still above zero
--   1   counted down to zero: the latch is gone and its waiters woken
--   0   there was no latch (the count was already zero): nothing changed; waiters woken
--  -1   KEYS[1] holds something that is not a count (left untouched)

local memo = redis.call('get', KEYS[3])
if memo then
    return tonumber(memo)
end

local count = read_count(KEYS[1])
local result
if count == nil then
    result = 0
elseif not count then
    return -1
elseif redis.call('decr', KEYS[1]) > 0 then
    redis.call('pexpire', KEYS[1], ARGV[3])
    result = 2
else
    redis.call('del', KEYS[1])
    result = 1
end
if result ~= 2 then
    -- pcall: a user without channel rights still counts down; its waiters wake by their timers.
    redis.pcall(ARGV[2], KEYS[2], ARGV[1])
end
redis.call('set', KEYS[3], result, 'px', ARGV[4])
return result
