-- Give back every permit of one acquisition, and wake the waiters they let in.
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  unused (the locks' fencing state)
-- KEYS[4]  queue of waiting permit ids (see acquire.lua)
-- KEYS[5]  their liveness deadlines
-- KEYS[6]  the permits each waiter wants
-- KEYS[7]  the leases of the acquisitions (see sem.lua)
-- KEYS[8]  the lone acquisition (see sem.lua)
-- KEYS[9]  notes of acquisitions that ended without their release (see sem.lua)
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  permit id
-- ARGV[2]  the acquisition's token (see sem.lua), sent by a resend only: "" (and left out) for
--          the first copy, which answers from what it finds
-- ARGV[3]  unused (the locks' number of the hold: "" here, left out)
-- ARGV[4]  publish command: "spublish" on Redis Cluster; left out for "publish" (see
--          family/scripts/release.lua)
--
-- Returns:
--   1   released: the permits are free again, and the waiters they fit were woken by name (or
--       an earlier copy of this request released them)
--   0   this permit id holds nothing (its lease ran out, or it was released already by id), and
--       no copy of this request released it, as far as the semaphore's keys tell
--  -1   KEYS[1] holds a value of another type
--
-- A copy counts once, however late it lands: the permits are gone after the first, and never
-- come back under this permit id (a late copy of its acquisition finds it marked: see abandoned
-- in family/scripts/common.lua). A resend that finds them gone answers what the first copy did
-- from the semaphore's own keys, with no key per request (see sem.lua). The lone acquisition's
-- release costs three commands: GET, DEL, HINCRBY.

local sem, id, token = KEYS[1], ARGV[1], ARGV[2] or ''
local released = release_permits(sem, id, ARGV[4] or 'publish')
if released ~= 0 or token == '' then
    return released
end
return permits_released_before(sem, id, token) and 1 or 0
