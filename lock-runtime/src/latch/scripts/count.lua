-- Read a count-down latch: its count, and how long its key has left.
--
-- KEYS[1]  latch key (see latch.lua)
--
-- Returns:
--   {1, count, pttl}  the latch stands at `count` (a decimal string); its key expires in `pttl`
--                     ms (-1: it has no TTL, someone removed it)
--   {0}               no latch: the count is zero
--   {-1, type}        KEYS[1] holds something that is not a count, of this Redis type

local count, kind = read_count(KEYS[1])
if count == nil then
    return {0}
end
if not count then
    return {-1, kind}
end
return {1, count, redis_call('pttl', KEYS[1])}
