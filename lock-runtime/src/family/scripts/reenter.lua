-- Re-enter a lock the caller's scope holds: one more hold under the same owner id.
--
-- KEYS[1]  lock key (hash of owner id -> hold count, and the owner's record, see common.lua)
--
-- ARGV[1]  owner id of the scope's hold
-- ARGV[2]  the re-entry's number: above every number the client gave before (see common.lua)
--
-- Returns:
--   1   re-entered (the lease is the outer hold's; the token too), by this copy or an earlier
--       one
--   0   this owner no longer holds the lock: the lease is lost
--  -1   KEYS[1] holds a value of another type
--  -2   the number is spent: the re-entry was undone (undo_reenter.lua ran first), or a later
--       re-entry of the owner landed first; nothing taken, a caller still waiting asks again
--       under a new number
--
-- A copy counts once, however late it lands: see reenter in common.lua. No memo: the owner's
-- record in the lock's hash answers a resend.

local kind = redis_call('type', KEYS[1]).ok
if kind ~= 'none' and kind ~= 'hash' then
    return -1
end
return reenter(KEYS[1], ARGV[1], ARGV[2])
