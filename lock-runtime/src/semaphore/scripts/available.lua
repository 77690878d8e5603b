-- The permits of a semaphore nobody holds now (after dropping acquisitions whose lease ended).
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  the leases of the acquisitions (see sem.lua)
-- KEYS[3]  the lone acquisition's lease (see sem.lua)
--
-- Returns the free permits (0 if the permits were never set), or -1 if KEYS[1] holds a value
-- of another type.

local early = not_a_hash(KEYS[1], 0)
if early then
    return early
end
expire_all(KEYS[1], KEYS[2], server_ms())
return math.max(available(KEYS[1]), 0)
