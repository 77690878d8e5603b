-- Functions shared by the count-down latch's scripts (latch/scripts.rs puts this file in front of
-- each: Lua scripts in Redis cannot include one another).
--
-- A latch is a string key holding its count, a positive integer, with a TTL (see
-- try_set_count.lua and count_down.lua). No key means a count of zero: the latch is open.

-- The count at `key`, as Redis stores it (a decimal string, so counts above 2^53 stay exact);
-- nil when there is no latch; false and the Redis type found when `key` holds something that is
-- not a count (another program's key, left untouched).
local function read_count(key)
    local kind = redis_call('type', key).ok
    if kind == 'none' then
        return nil
    end
    if kind == 'string' then
        local count = redis_call('get', key)
        if string.match(count, '^%d+$') then
            return count
        end
    end
    return false, kind
end
