-- Spend the number of a lock-checked write (exec.lua) whose caller got no reply (it timed out,
-- or its future was dropped while the request was on the wire): a copy of the request that
-- lands later runs nothing, and the reply says whether the exec ran before this landed.
--
-- KEYS[1]  lock key: hash of owner id -> hold count, with the owner's exec record (see
--          exec_field in common.lua)
--
-- ARGV[1]  owner id of the hold the exec ran under
-- ARGV[2]  the exec's number
-- ARGV[3]  the floor: the lowest number of the owner's execs whose outcome the client may still
--          ask about (this one's at most)
--
-- Returns:
--   1   the exec ran (its commands, all of them); a copy of it runs nothing
--   0   it did not run, and never will: its number is spent
--   2   the owner does not hold the lock (any more): no exec of it runs now; whether this one
--       ran before the hold was lost is not known (its record went with the hold)
--
-- Safe to resend, and a copy that lands late changes nothing: the highest number seen only
-- rises, and the list keeps this number for as long as the client may ask (see exec_seen in
-- common.lua).

if redis_call('type', KEYS[1]).ok ~= 'hash' then
    return 2
end
local found = redis_call('hmget', KEYS[1], ARGV[1], exec_field(ARGV[1]))
if not found[1] then
    return 2
end
local seen, highest, ran = exec_seen(found[2], ARGV[2], ARGV[3])
if seen == 'new' then
    highest = ARGV[2]
end
write_execs(KEYS[1], ARGV[1], highest, ran)
if seen == 'ran' then
    return 1
end
return 0
