-- Extend the lease of one acquisition's permits (the watchdog's renewal).
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  the leases of the acquisitions (see sem.lua)
--
-- ARGV[1]  permit id
-- ARGV[2]  lease in milliseconds, from now
--
-- Returns 1 renewed, 0 the permits are gone (their lease ended, or they were released by id).

if redis.call('type', KEYS[1]).ok ~= 'hash' then
    return 0
end
local now = server_ms()
expire_permits(KEYS[1], KEYS[2], now)
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then
    return 0
end
lease_until(KEYS[2], ARGV[1], now + tonumber(ARGV[2]))
return 1
