-- Undo a re-entry of a read or write hold whose caller gave up while its request was in flight.
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  memo key of the re-entry request (see reenter.lua)
-- KEYS[4]  fencing state (unused here)
-- KEYS[5]  queue of waiting owner ids
-- KEYS[6]  their liveness deadlines
-- KEYS[7]  what each waits for: `read` or `write`
-- KEYS[8]  the leases of the holds (see rw.lua)
--
-- ARGV[1]  owner id
-- ARGV[2]  how long the memo remembers the undo, in milliseconds
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[4]  unused
--
-- Returns:
--   1   the re-entry had counted: one count given back (the lock passed on if it was the last)
--   0   it had not arrived: it never will count now
--
-- Safe to resend: the memo records the undo.

if not undo_reentry(KEYS[3], ARGV[2]) then
    return 0
end
if redis.call('type', KEYS[1]).ok == 'hash' then
    local q = {queue = KEYS[5], alive = KEYS[6], wants = KEYS[7]}
    expire_holds(KEYS[1], KEYS[8], server_ms())
    give_back(KEYS[1], KEYS[8], ARGV[1], q, KEYS[2], ARGV[3])
end
return 1
