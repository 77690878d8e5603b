-- Release one count of a read or write hold, named by its number; at its last, the hold leaves
-- and the lock is passed on: the head of the queue is woken if it may now enter (see wake_next
-- in rw.lua).
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  memo key of this request: a resend answers what the first attempt did
-- KEYS[4]  fencing state (unused here; the exclusive locks' release hands over with it)
-- KEYS[5]  queue of waiting owner ids (see acquire_read.lua)
-- KEYS[6]  their liveness deadlines
-- KEYS[7]  what each waits for: `read` or `write`
-- KEYS[8]  the leases of the holds (see rw.lua)
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  owner id of the hold
-- ARGV[2]  the id of this request, which names its memo key (KEYS[3])
-- ARGV[3]  memo TTL in milliseconds; left out for MEMO_MS (see memo_ttl_of in common.lua)
-- ARGV[4]  the number of the count: 0 for the acquisition's, a re-entry's own otherwise (see
--          reenter in family/scripts/common.lua); "" (and left out) for the acquisition's of an
--          owner that never re-entered, read as 0 without reading the owner's re-entry record
-- ARGV[5]  publish command: "spublish" on Redis Cluster; left out for "publish" (see
--          family/scripts/release.lua)
--
-- Returns:
--   1   released: this was the hold's last count; it is gone
--   2   one count released; the owner still holds it
--   0   this owner holds nothing (its lease ran out, or the lock was force-unlocked), or no
--       longer has this count (a copy landing after the memo of the first expired)
--  -1   KEYS[1] holds a value of another type
--
-- A copy counts once, however late it lands: the count it names is gone after the first, and
-- never comes back (a re-entry's number is spent once seen, and a late copy of the acquisition
-- finds its owner marked: see abandoned in family/scripts/common.lua). So a copy that finds its
-- count is the first to run, and the memo, which only lets a resend answer what the first attempt
-- did, is read only when the count is not found.

local lock, owner = KEYS[1], ARGV[1]
local number, publish = ARGV[4] or '', ARGV[5] or 'publish'
-- The hold, SHARED, and the owner's re-entry record unless the owner never re-entered (the
-- number ""): then it has none.
local found
if number == '' then
    number = '0'
    found = redis_pcall('hmget', lock, owner, SHARED)
else
    found = redis_pcall('hmget', lock, owner, SHARED, record_field(owner))
end
if refused_type(lock, found) then
    return -1
end

local memo = key_of(lock, 'memo', ARGV[2])
if found[1] then
    local leases = key_of(lock, 'leases')
    -- Whether this is the lock's only hold. No SHARED (see rw.lua): no hold was ever granted
    -- but the lone one, which this is. Else the two holds whose lease ends first tell: no lease
    -- left, or this one's alone.
    local first
    local only = not found[2]
    if not only then
        first = redis_call('zrange', leases, '0', '1', 'WITHSCORES')
        only = not first[1] or (first[1] == owner and not first[3])
    end
    local result
    if only and found[1] == '1' and not found[3] and number == '0' then
        -- The lock's only hold, never re-entered, and live without asking the time: the
        -- lock's keys expire when its last lease ends (see expire_with_last in rw.lua, and a
        -- lone lock's TTL is its hold's lease), which is this hold's, and the HMGET found the
        -- lock. The lock is left free, as give_back would leave it, in one DEL (of the leases
        -- too, which a renewal of a lone hold writes).
        redis_call('del', lock, leases)
        wake_next(nil, lock, publish)
        result = 1
    else
        first = first or redis_call('zrange', leases, '0', '0', 'WITHSCORES')
        local now = server_ms()
        if tonumber(first[2] or now) < now then
            expire_holds(lock, leases, now)
        end
        result = give_back(lock, leases, owner, number, false, publish)
    end
    if result > 0 then
        -- Written as a string: a Lua number would cost a float formatting.
        redis_call('set', memo, result == 1 and '1' or '2', 'px', memo_ttl_of(ARGV))
        return result
    end
end
return tonumber(redis_call('get', memo) or '0')
