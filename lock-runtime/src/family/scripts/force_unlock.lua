-- Delete a reentrant or fair lock if an owner that holders.lua found holding it still does, and
-- wake its waiters: the second step of a force-unlock.
--
-- KEYS[1]  lock key (hash of owner id -> hold count)
-- KEYS[2]  wake-up channel
--
-- ARGV[1]  wake-up message
-- ARGV[2]  publish command: "publish", or "spublish" on Redis Cluster
-- ARGV[3…] the owner ids holders.lua found holding the lock (one: the lock is exclusive)
--
-- Returns:
--   1   one of them held it: the lock is gone
--   0   none of them holds it any more (released, expired, or force-unlocked already): nothing
--       was deleted, whoever holds it now
--  -1   KEYS[1] holds a value of another type (left untouched)
--
-- A copy counts once, however late it lands: an owner id belongs to one acquisition, so a copy
-- that lands after the lock was freed and taken again finds none of its owners and leaves the
-- new holder's lock alone.

local early = not_a_hash(KEYS[1], 0)
if early then
    return early
end
for i = 3, #ARGV do
    if redis_call('hexists', KEYS[1], ARGV[i]) == 1 then
        redis_call('del', KEYS[1])
        redis_pcall(ARGV[2], KEYS[2], ARGV[1])
        return 1
    end
end
return 0
