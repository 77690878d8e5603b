-- Extend the lease of one read or write hold (the watchdog's renewal).
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  the leases of the holds (see rw.lua)
--
-- ARGV[1]  owner id of the hold
-- ARGV[2]  lease in milliseconds, from now
--
-- Returns 1 renewed, 0 the hold is gone (its lease ended, or the lock was force-unlocked).

if redis.call('type', KEYS[1]).ok ~= 'hash' then
    return 0
end
local now = server_ms()
expire_holds(KEYS[1], KEYS[2], now)
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
    return 0
end
redis.call('zadd', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
settle(KEYS[1], KEYS[2])
return 1
