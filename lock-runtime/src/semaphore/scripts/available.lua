-- The permits of a semaphore nobody holds now (after dropping acquisitions whose lease ended).
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  the leases of the acquisitions (see sem.lua)
-- KEYS[3]  the lone acquisition (see sem.lua)
-- KEYS[4]  unused (the locks' fencing state)
-- KEYS[5]  notes of acquisitions that ended without their release (see sem.lua): an
--          acquisition whose lease ended is noted as it is dropped
--
-- Returns the free permits (0 if the permits were never set), or -1 if KEYS[1] holds a value
-- of another type.

local early = not_a_hash(KEYS[1], 0)
if early then
    return early
end
-- The lone acquisition (see sem.lua), while there is one, holds the only permits used.
local lone = redis_call('get', KEYS[3])
if lone then
    local _, permits = lone_parts(lone)
    return math.max(available(KEYS[1]) - tonumber(permits), 0)
end
expire_permits(KEYS[1], KEYS[2], server_ms())
return math.max(available(KEYS[1]), 0)
