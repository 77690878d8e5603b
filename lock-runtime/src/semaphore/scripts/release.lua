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
-- KEYS[9]  the lone acquisition's lease (see sem.lua)
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  permit id
-- ARGV[2]  memo TTL in milliseconds
-- ARGV[3]  the id of this request, which names its memo key (KEYS[3])
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

local sem, id = KEYS[1], ARGV[1]
local publish = ARGV[5] or 'publish'
local found = redis.pcall('hmget', sem, id, 'total', LONE)
if refused_type(sem, found) then
    return -1
end

local memo = key_of(sem, 'memo', ARGV[3])
if found[1] then
    local used, now
    if found[3] == id then
        -- The lone acquisition (see sem.lua): the only one, so no other lease to look at, and
        -- its own is live while its key is there. Without it, its lease ended: its permits come
        -- back all the same, and it held nothing.
        if give_back_lone(sem, id) then
            used = 0
        end
    else
        local leases = key_of(sem, 'leases')
        now = server_ms()
        if expire_permits(sem, leases, now, found[3]) then
            used = give_back(sem, leases, id)
        else
            used = give_back(sem, leases, id, found[1])
        end
    end
    if used then
        local free = (tonumber(found[2]) or 0) - used
        wake_fitting(sem, free, now, publish)
        redis.call('set', memo, '1', 'px', ARGV[2])
        return 1
    end
end
return tonumber(redis.call('get', memo) or '0')
