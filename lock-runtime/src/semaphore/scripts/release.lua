-- Give back every permit of one acquisition, and wake the waiters they let in.
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  memo key of this request: a resend answers what the first attempt did
-- KEYS[4]  unused (the locks' fencing state)
-- KEYS[5]  queue of waiting permit ids (see acquire.lua)
-- KEYS[6]  their liveness deadlines
-- KEYS[7]  the permits each waiter wants
-- KEYS[8]  the leases of the acquisitions (see sem.lua)
--
-- ARGV[1]  permit id
-- ARGV[2]  memo TTL in milliseconds
-- ARGV[3]  unused (the id of the request, which names KEYS[3])
-- ARGV[4]  unused (the locks' number of the hold: always 0 here, left out)
-- ARGV[5]  publish command: "spublish" on Redis Cluster; left out for "publish" (see
--          family/scripts/release.lua)
--
-- Returns:
--   1   released: the permits are free again, and the waiters they fit were woken by name
--   0   this permit id holds nothing (its lease ran out, or it was released already by id)
--  -1   KEYS[1] holds a value of another type
--
-- A copy counts once, however late it lands: the permits are gone after the first, and never
-- come back under this permit id (a late copy of its acquisition finds it marked: see abandoned
-- in family/scripts/common.lua). So a copy that finds its permits is the first to run, and the
-- memo, which only lets a resend answer what the first attempt did, is read only when the permit
-- id holds nothing.

local publish = ARGV[5] or 'publish'
local found = redis.pcall('hmget', KEYS[1], ARGV[1], 'total')
if refused_type(KEYS[1], found) then
    return -1
end

if found[1] then
    local now = server_ms()
    local used
    if expire_permits(KEYS[1], KEYS[8], now) then
        used = give_back(KEYS[1], KEYS[8], ARGV[1])
    else
        used = give_back(KEYS[1], KEYS[8], ARGV[1], found[1])
    end
    if used then
        local q = {queue = KEYS[5], alive = KEYS[6], wants = KEYS[7]}
        wake_fitting(q, (tonumber(found[2]) or 0) - used, now, KEYS[2], publish)
        redis.call('set', KEYS[3], '1', 'px', ARGV[2])
        return 1
    end
end
return tonumber(redis.call('get', KEYS[3]) or '0')
