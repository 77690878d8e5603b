-- Read who holds a lock of the family, changing nothing: the first step of a force-unlock,
-- whose second (force_unlock.lua, rwlock/scripts/force_unlock.lua) deletes the holds of these
-- owners only. An owner id belongs to one acquisition, so the second step, or a copy of it that
-- lands late, cannot delete a hold taken after this read.
--
-- KEYS[1]  lock key: hash of owner id -> hold count, beside bookkeeping fields whose names start
--          with `~` (see common.lua) and the read-write lock's `writer` (see rw.lua)
--
-- Returns:
--   {1, owner...}  the owner ids of every hold (none: nothing is held); a read-write lock's hold
--                  whose lease ended but that no script dropped yet is among them
--   {-1, type}     KEYS[1] holds a value of another type
--
-- Not declared read-only (`#!lua flags=no-writes` needs Redis 7): it runs on the primary, which
-- the second step needs anyway, and so on every Redis the library serves.

local kind = redis_call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return {-1, kind}
end
local owners = owners_of(KEYS[1])
table.insert(owners, 1, 1)
return owners
