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
-- KEYS[9]  the lone acquisition (see sem.lua)
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  permit id
-- ARGV[2]  the id of this request, which names its memo key (KEYS[3])
-- ARGV[3]  memo TTL in milliseconds; left out for MEMO_MS (see memo_ttl_of in common.lua)
-- ARGV[4]  unused (the locks' number of the hold: "" here, left out)
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

local sem, id = KEYS[1], ARGV[1]
local memo = key_of(sem, 'memo', ARGV[2])
-- The lone acquisition (see sem.lua), if there is one, is the only one holding permits, and
-- nobody queues: its own release gives its permits back in one DEL, waking nobody; another's
-- means this permit id holds nothing.
local lone = key_of(sem, 'lone')
local value = redis_call('get', lone)
if value then
    if not lone_is(value, id) then
        return tonumber(redis_call('get', memo) or '0')
    end
    redis_call('del', lone)
    redis_call('set', memo, '1', 'px', memo_ttl_of(ARGV))
    return 1
end

local found = redis_pcall('hmget', sem, id, 'total')
if refused_type(sem, found) then
    return -1
end
if found[1] then
    local leases = key_of(sem, 'leases')
    local now = server_ms()
    local used
    if expire_permits(sem, leases, now) then
        used = give_back(sem, leases, id)
    else
        used = give_back(sem, leases, id, found[1])
    end
    if used then
        local free = (tonumber(found[2]) or 0) - used
        wake_fitting(sem, free, now, ARGV[5] or 'publish')
        redis_call('set', memo, '1', 'px', memo_ttl_of(ARGV))
        return 1
    end
end
return tonumber(redis_call('get', memo) or '0')
