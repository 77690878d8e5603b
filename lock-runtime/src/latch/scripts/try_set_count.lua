-- Set a count-down latch's count, unless the latch exists.
--
-- KEYS[1]  latch key (see latch.lua)
-- KEYS[2]  the latch's recent requests (see requests.lua): a request that ran already answers
--          what it did and changes nothing, however late its copy lands (a latch it set and
--          that opened since is not set again)
--
-- ARGV[1]  the count: a positive integer that fits a signed 64-bit integer (DECR's range)
-- ARGV[2]  the latch's TTL in milliseconds
-- ARGV[3]  id of this request
-- ARGV[4]  how long a copy of a request may land after it ran, in milliseconds (see requests.lua)
--
-- Returns:
--   1   set: there was no latch; it now stands at ARGV[1], expiring in ARGV[2] ms
--   0   not set: the latch exists (its count and TTL unchanged)
--  -1   KEYS[1] holds something that is not a count (left untouched)

return run_once(KEYS[2], ARGV[3], ARGV[4], function()
    local count = read_count(KEYS[1])
    if count == nil then
        redis_call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
        return 1
    elseif count then
        return 0
    end
    return -1
end)
