-- Count a latch down by one. At zero the latch is deleted and every waiter, in every process, is
-- woken. A count-down on no latch changes nothing (it never makes a latch, nor a count below
-- zero) but wakes the waiters too: a latch deleted behind their backs is open, and they learn it
-- at once rather than at their next timed look.
--
-- KEYS[1]  latch key (see latch.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  the latch's recent requests (see requests.lua): a request that ran already counts
--          nothing again, however late its copy lands (on this latch or on one set since), and
--          answers what it did
--
-- ARGV[1]  wake-up message: every waiter
-- ARGV[2]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[3]  the latch's TTL in milliseconds, re-armed while the count stays above zero
-- ARGV[4]  id of this request
-- ARGV[5]  how long a copy of a request may land after it ran, in milliseconds (see requests.lua)
--
-- Returns:
--   2   counted down; the count is still above zero
--   1   counted down to zero: the latch is gone and its waiters woken
--   0   there was no latch (the count was already zero): nothing changed; waiters woken
--  -1   KEYS[1] holds something that is not a count (left untouched)

return run_once(KEYS[3], ARGV[4], ARGV[5], function()
    local count = read_count(KEYS[1])
    local result
    if count == nil then
        result = 0
    elseif not count then
        return -1
    elseif redis_call('decr', KEYS[1]) > 0 then
        redis_call('pexpire', KEYS[1], ARGV[3])
        return 2
    else
        redis_call('del', KEYS[1])
        result = 1
    end
    -- pcall: a user without channel rights still counts down; its waiters wake by their timers.
    redis_pcall(ARGV[2], KEYS[2], ARGV[1])
    return result
end)
