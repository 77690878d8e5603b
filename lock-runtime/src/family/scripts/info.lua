-- Describe a reentrant or fair lock as it stands, changing nothing: who holds it, since when,
-- how often re-entered, how long its lease has left, who waits, the last fencing token.
-- Sent read-only, with inspect.lua in front (see there).
--
-- KEYS[1]  lock key: hash of owner id -> hold count, and bookkeeping fields whose names start
--          with `~`, skipped here: `~who` (see take in common.lua), the owner's record of its
--          re-entries (see reenter in common.lua) and of its lock-checked writes (see exec_field
--          in common.lua)
-- KEYS[2]  fencing state: the last token handed out, or one past it once its hold was
--          released (see end_hold in common.lua; answered as the token, see last_token)
-- KEYS[3]  queue: sorted set of waiting owner ids, by the server time (µs) of their first try
-- KEYS[4]  liveness: sorted set of the same ids, by the server time (ms) they are live until
--
-- ARGV[1]  how many waiter ids to return at most, in queue order (the count covers them all)
--
-- Returns {status, ...}:
--   { 1, now, pttl, owner, holds, who, token, waiters, ids}  held
--   { 0, now, -2, '', 0, '', token, waiters, ids}            free
--   {-1, type}   KEYS[1] holds a value of another type
-- where `now` is the server time in ms; `pttl` the lock key's PTTL (-1: no TTL); `owner` the
-- holder's owner id and `holds` its hold count; `who` the holder's record ("<client name>
-- <server ms it took the lock>", or '' if none); `token` the last token handed out, or '' once
-- the fencing state expired; `waiters` how many queued waiters are live (their liveness
-- deadline not passed: the dead ones are purged by the next release, not here); `ids` the first
-- ARGV[1] live waiters' owner ids, longest-queued first.

local refused, now = inspect_start(KEYS[1])
if refused then
    return refused
end
local token = last_token(redis_call('get', KEYS[2]))
local waiters, ids = live_waiters({queue = KEYS[3], alive = KEYS[4]}, now, tonumber(ARGV[1]))

if redis_call('exists', KEYS[1]) == 0 then
    return {0, now, -2, '', 0, '', token, waiters, ids}
end

local owner, holds = '', 0
local fields = redis_call('hgetall', KEYS[1])
for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 1) ~= '~' then
        owner, holds = fields[i], tonumber(fields[i + 1]) or 0
        break
    end
end
local who = redis_call('hget', KEYS[1], '~who') or ''
return {1, now, redis_call('pttl', KEYS[1]), owner, holds, who, token, waiters, ids}
