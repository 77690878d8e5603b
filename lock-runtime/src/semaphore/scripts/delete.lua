-- Delete a semaphore nobody uses: its definition (the total), the keys of its acquisitions and
-- its queue. What answers the copies of requests that ran before the deletion stays, for as
-- long as such a copy may land: its recent requests and its notes of acquisitions that ended
-- without their release (both with a TTL), and the count of its lone acquisitions (LONES, see
-- sem.lua), kept as the hash's only field, with that TTL. A resend of a lone acquisition's
-- release tells from that count whether its first copy released it; were the count gone, it
-- would answer not held, and once the semaphore is set again and counted anew, it could even
-- answer released for a lease that ran out. set_permits.lua and add_permits.lua take the count
-- up where it was and make the hash lasting again.
--
-- KEYS[1]  the semaphore (see sem.lua)
-- KEYS[2]  the leases of the acquisitions (see sem.lua)
-- KEYS[3]  the lone acquisition (see sem.lua)
-- KEYS[4]  queue of waiting permit ids (see acquire.lua)
-- KEYS[5]  their liveness deadlines
-- KEYS[6]  the permits each waiter wants
-- KEYS[7]  the semaphore's recent requests (see requests.lua): a copy of this request that
--          lands after it ran answers what it did and deletes nothing, however late (a
--          semaphore set again since is kept; one found in use is not deleted later)
-- KEYS[8]  notes of acquisitions that ended without their release (see sem.lua): one whose
--          lease ended is noted as it is dropped
--
-- ARGV[1]  id of this request
-- ARGV[2]  how long a copy of a request may land after it ran, in milliseconds (see requests.lua)
--
-- Returns 1 deleted, 2 there was no semaphore (none, or one deleted already), 0 in use (permits
-- held, or a live waiter queued: nothing deleted), -1 KEYS[1] holds a value of another type.
--
-- Acquisitions whose lease ended are dropped first, and waiters whose liveness ended leave the
-- queue: neither keeps the semaphore in use.

return run_once(KEYS[7], ARGV[1], ARGV[2], function()
    local kind = redis_call('type', KEYS[1]).ok
    if kind ~= 'none' and kind ~= 'hash' then
        return -1
    end
    local now = server_ms()
    -- Read once the lone acquisition is settled, which counts LONES on.
    expire_all(KEYS[1], KEYS[2], now)
    local found = redis_call('hmget', KEYS[1], 'total', 'used', LONES)
    if not found[1] then
        return 2
    end
    if (tonumber(found[2]) or 0) > 0 or live_at(queue_of(KEYS[1], KEYS[4]), 0, now, nil) then
        return 0
    end
    redis_call('del', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
    if found[3] then
        redis_call('hset', KEYS[1], LONES, found[3])
        redis_call('pexpire', KEYS[1], ARGV[2])
    end
    return 1
end)
