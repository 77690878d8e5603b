-- Delete the holds, read and write, of the owners that holders.lua (family/scripts) found holding
-- a read-write lock, and wake its waiters: the second step of a force-unlock.
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  the leases of the holds (see rw.lua)
-- KEYS[4]  fencing state (see rw.lua): counted past the period if the lock is freed
-- KEYS[5]  notes of the lock's holds that ended without their release: the holds deleted here
--          are noted (see note_lost in family/scripts/common.lua)
--
-- ARGV[1]  wake-up message
-- ARGV[2]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[3…] the owner ids holders.lua found holding the lock
--
-- Returns:
--   1   at least one of them still held it: their holds are gone (with their records and
--       leases, see drop_hold in rw.lua)
--   0   none of them holds it any more: nothing was deleted
--  -1   KEYS[1] holds a value of another type (left untouched)
--
-- A hold taken after the read, such as a reader that joined meanwhile, is left alone: a reader
-- takes no new fencing token, so the fencing state could not tell, but every hold has an owner
-- id of its own, unique to its acquisition. So a copy that lands late, after the lock was taken
-- again, deletes nothing.

local kind = redis_call('type', KEYS[1]).ok
if kind == 'none' then
    redis_call('del', KEYS[3])
    return 0
end
if kind ~= 'hash' then
    return -1
end
local dropped = {}
for i = 3, #ARGV do
    if redis_call('hexists', KEYS[1], ARGV[i]) == 1 then
        dropped[#dropped + 1] = ARGV[i]
    end
end
if #dropped == 0 then
    return 0
end
note_dropped(KEYS[1], dropped)
for _, owner in ipairs(dropped) do
    drop_hold(KEYS[1], KEYS[3], owner)
end
settle(KEYS[1], KEYS[3])
redis_pcall(ARGV[2], KEYS[2], ARGV[1])
return 1
