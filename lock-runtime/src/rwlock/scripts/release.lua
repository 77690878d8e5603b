-- Release one count of a read or write hold, named by its number; at its last, the hold leaves
-- and the lock is passed on: the head of the queue is woken if it may now enter (see wake_next
-- in rw.lua).
--
-- KEYS[1]  lock key (see rw.lua)
-- KEYS[2]  wake-up channel
-- KEYS[3]  fencing state (see rw.lua): counted one past the period's token as the lock is freed
-- KEYS[4]  queue of waiting owner ids (see acquire_read.lua)
-- KEYS[5]  their liveness deadlines
-- KEYS[6]  what each waits for: `read` or `write`
-- KEYS[7]  the leases of the holds (see rw.lua)
-- KEYS[8]  notes of the lock's holds that ended without their release (see note_lost in
--          family/scripts/common.lua)
-- Only KEYS[1] is read: the others are named from it (see lock/scripts/acquire.lua).
--
-- ARGV[1]  owner id of the hold
-- ARGV[2]  the hold's fencing token, sent by a resend only: "" (and left out) for the first
--          copy, which answers from what it finds (see released_before in common.lua)
-- ARGV[3]  the number of the count: 0 for the acquisition's, a re-entry's own otherwise (see
--          reenter in family/scripts/common.lua); "" (and left out) for the acquisition's of an
--          owner that never re-entered, read as 0 without reading the owner's re-entry record
-- ARGV[4]  publish command: "spublish" on Redis Cluster; left out for "publish" (see
--          family/scripts/release.lua)
--
-- Returns:
--   1   released: this was the hold's last count; it is gone (or an earlier copy of this
--       request released it, and the owner holds nothing now)
--   2   one count released; the owner still holds it (or an earlier copy released it)
--   0   this owner holds nothing (its lease ran out, or the lock was force-unlocked), and no
--       copy of this request released it, as far as the lock's keys tell
--  -1   KEYS[1] holds a value of another type
--
-- A copy counts once, however late it lands: the count it names is gone after the first, and
-- never comes back (a re-entry's number is spent once seen, and a late copy of the acquisition
-- finds its owner marked: see abandoned in family/scripts/common.lua). A resend that finds its
-- count gone answers what the first copy did from the lock's own keys, with no key per request,
-- as the reentrant lock's (see family/scripts/release.lua): the owner's other counts, or the
-- fencing state and the notes of lost holds.
--
-- The lock's only hold, never re-entered, with nobody queued, costs four commands, as the
-- reentrant lock's: the HGET of the hold, the EXISTS that finds no leases and no queue, the
-- INCR of the fencing state and the DEL.

local lock, owner, token = KEYS[1], ARGV[1], ARGV[2] or ''
local number, publish = ARGV[3] or '', ARGV[4] or 'publish'
-- The hold, and the owner's re-entry record unless the owner never re-entered (the number ""):
-- then it has none.
local found, record
if number == '' then
    found = redis_pcall('hget', lock, owner)
else
    found = redis_pcall('hmget', lock, owner, record_field(owner))
    if not found.err then
        found, record = found[1], found[2]
    end
end
if refused_type(lock, found) then
    return token ~= '' and released_before(lock, token, owner) and 1 or -1
end

if found then
    local leases = key_of(lock, 'leases')
    -- The lock's only hold, never re-entered, live without asking the time: the lock's keys
    -- expire when its last lease ends (see expire_with_last in rw.lua, and a lone lock's TTL is
    -- its hold's lease), which is this hold's, and the HGET found the lock. No leases: no hold
    -- was granted beside it (a lone hold keeps none, see the top of rw.lua; the lone hold's
    -- renewal writes its own). Else the two holds whose lease ends first tell: no lease left,
    -- or this one's alone. The lock is left free, as give_back would leave it, in one DEL.
    local one_count = found == '1' and number == ''
    if one_count and redis_call('exists', leases, key_of(lock, 'queue')) == 0 then
        end_hold(key_of(lock, 'fence'))
        redis_call('del', lock)
        return 1
    end
    local first = redis_call('zrange', leases, '0', '1', 'WITHSCORES')
    if one_count and (not first[1] or (first[1] == owner and not first[3])) then
        end_hold(key_of(lock, 'fence'))
        redis_call('del', lock, leases)
        wake_next(nil, lock, publish)
        return 1
    end
    number = number == '' and '0' or number
    local now = server_ms()
    if tonumber(first[2] or now) < now then
        expire_holds(lock, leases, now)
    end
    local result = give_back(lock, leases, owner, number, false, publish)
    if result > 0 then
        return result
    end
    -- The count was there (its lease had ended: dropped above), so this copy is the first to
    -- find it; or an earlier copy gave it back, and the owner's hold stays.
    local _, held = read_record(record)
    if token == '' or find_number(held, number) then
        return 0
    end
    return 2
end
if token == '' then
    return 0
end
return released_before(lock, token, owner) and 1 or 0
