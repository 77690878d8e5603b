-- Undo a re-entry whose caller gave up while its request was in flight.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  wake-up channel
-- KEYS[3]  memo key of the re-entry request (see reenter.lua)
-- KEYS[4]  fencing state (see acquire.lua): a lock handed over directly takes the next token
-- KEYS[5]  queue of waiting owner ids (see acquire.lua)
-- KEYS[6]  their liveness deadlines (see acquire.lua)
-- KEYS[7]  what each waiter waits for: the lease of a direct hand-over (see acquire.lua)
--
-- ARGV[1]  owner id
-- ARGV[2]  how long the memo remembers the undo, in milliseconds: a copy of the re-entry still
--          queued on a retired connection must find it
-- ARGV[3]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[4]  how long the fencing state lives, in milliseconds (see acquire.lua)
--
-- Returns:
--   1   the re-entry had counted: one hold given back (if it was the last, the lock deleted and
--       passed on to the head of the queue)
--   0   it had not arrived: it never will count now
--
-- Safe to resend: the memo records the undo.

if not undo_reentry(KEYS[3], ARGV[2]) then
    return 0
end
local q = {queue = KEYS[5], alive = KEYS[6], wants = KEYS[7]}
if redis.call('type', KEYS[1]).ok == 'hash' and redis.call('hexists', KEYS[1], ARGV[1]) == 1 then
    if redis.call('hincrby', KEYS[1], ARGV[1], -1) <= 0 then
        redis.call('del', KEYS[1])
        pass_on(KEYS[1], KEYS[4], ARGV[4], q, KEYS[2], ARGV[3])
    end
end
return 1
