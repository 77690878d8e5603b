-- Run a pipeline's commands only if an owner still holds its lock, all of them or none: the
-- hold check, the checks of every command and the commands are one script, so a holder whose
-- lease ran out (or whose lock was force-unlocked or taken over) cannot write, even before it
-- learns of the loss, and a command that Redis would refuse before running it leaves the whole
-- pipeline unrun, as `EXEC` discards a transaction that queued such a command.
--
-- The client has already refused what `COMMAND INFO` tells (unknown commands and subcommands,
-- wrong arity, commands refused in scripts, blocking ones, `SELECT` and the like, more
-- arguments than `unpack` gives: see family/exec.rs), for the server version in ARGV[3]. What
-- only the server can tell is checked here, before the first command runs: that version, the
-- ACL user's rights, and on Redis Cluster that every key is one this script may touch.
--
-- Sent once, never resent, yet its request may reach Redis long after the client gave up on it
-- (a copy queued on a connection the client retired): it runs only if its number is above every
-- exec number of the owner seen before, and records it before its commands run, so a copy that
-- lands after the caller spent the number (spend_exec.lua) runs nothing, and a copy of one that
-- ran does not run again (see exec_seen in common.lua). This costs one HSET: the HMGET that
-- reads the record also checks the hold.
--
-- KEYS[1]  lock key: hash of owner id -> hold count (the reentrant, fair or write lock), and the
--          owner's exec record `~x:<owner id>` (see exec_field in common.lua)
-- KEYS[2]  the per-hold leases of a read-write lock (see rwlock/scripts/rw.lua); unused by the
--          exclusive locks, whose key's TTL is the lease
--
-- ARGV[1]  owner id of the hold
-- ARGV[2]  "1" if the hold's lease is kept in KEYS[2] (a write hold; a lone one keeps it in
--          the lock's TTL, see rwlock/scripts/rw.lua), "0" otherwise
-- ARGV[3]  the server version (server_version in common.lua) the client checked the commands
--          against
-- ARGV[4]  "1" to check the commands' keys first (Redis Cluster), "0" otherwise
-- ARGV[5]  this exec's number (see core/ids.rs)
-- ARGV[6]  its floor: the lowest number of the owner's execs whose outcome the client may still
--          ask about (this one's at most)
-- ARGV[7]  the number of commands
-- ARGV[8…] the commands, each as its argument count, "1" if it has keys ("0" if not), then its
--          arguments (name first); at most 7997 arguments, all `unpack` gives
--
-- Returns:
--   {0}                    the owner does not hold the lock: nothing ran
--   {1, replies, exact, errors}
--                          every command ran, in order, with nothing between them; replies holds
--                          each one's reply; exact lists the positions of replies that are
--                          integers carried as strings (see below); errors the positions of
--                          replies that are error messages carried as strings: a command that
--                          failed as it ran (the others still ran, as in MULTI/EXEC), or whose
--                          reply held an error inside (the first one, depth first, is what a
--                          pipeline sent directly reports). Carried as strings because the
--                          client's Redis library turns an error anywhere in a reply into an
--                          error for the whole script.
--   {2, version}           the server runs another version than ARGV[3]: nothing ran
--   {3, index, error}      Redis would refuse command `index` (1-based) before running it, for
--                          `error` (its ACL rights; a key outside the lock's slot): nothing ran
--   {4}                    the number is spent: its caller gave up on it, or a later exec of the
--                          owner landed first; nothing ran
--   {5}                    a copy of this request ran before: nothing ran now
--
-- A Lua number holds integers exactly up to 2^53 only, and Redis hands a script every integer
-- reply as a Lua number. A counter's reply past that (INCR, INCRBY, DECR, DECRBY, HINCRBY) is
-- read again as the string Redis keeps, exactly, and its position listed in `exact`; any other
-- reply holding such an integer becomes an error reply that says the command ran.
--
-- The commands' keys are not declared (the client cannot tell keys from other arguments). The
-- script is sent with a `#!lua` shebang (family/scripts.rs), so on Redis Cluster Redis lets it
-- touch keys of its declared keys' slot only: the lock's. `COMMAND GETKEYS` finds each
-- command's keys as Redis does (and SPUBLISH's channel, which Cluster places as a key), and an
-- `EXISTS` of each meets the same slot check as the command will, before anything runs.
-- Redis before 7.0 cannot compile the shebang: the client sends it without one there, and the
-- script compares each key's slot with the lock's itself (see slot_checked below).

if redis_call('type', KEYS[1]).ok ~= 'hash' then
    return {0}
end
local found = redis_call('hmget', KEYS[1], ARGV[1], exec_field(ARGV[1]))
if not found[1] then
    return {0}
end
if ARGV[2] == '1' then
    local ends = tonumber(redis_call('zscore', KEYS[2], ARGV[1]))
    if ends then
        if ends < server_ms() then
            return {0}
        end
    elseif redis_call('exists', KEYS[2]) == 1 then
        return {0}
    end
    -- Neither an entry nor `leases`: the hold is lone, its lease the lock's TTL (see
    -- rwlock/scripts/rw.lua), and the lock is there, so the lease is live.
end
local seen, _, ran = exec_seen(found[2], ARGV[5], ARGV[6])
if seen == 'spent' then
    return {4}
end
if seen == 'ran' then
    return {5}
end

local count = tonumber(ARGV[7])
if count > 0 then
    local version = server_version()
    if ARGV[3] ~= version then
        return {2, version}
    end
end

-- The text of an error raised by a Redis function: a table in Redis 7, a string in some cases.
local function message(err)
    if type(err) == 'table' and err.err then
        return err.err
    end
    return tostring(err)
end

-- Each command's first and last argument in ARGV, and whether it has keys.
local commands = {}
local at = 8
for index = 1, count do
    local size = tonumber(ARGV[at])
    commands[index] = {at + 2, at + 1 + size, ARGV[at + 1] == '1'}
    at = at + size + 2
end

local cluster = ARGV[4] == '1'
-- Redis 7.0 (the shebang) refuses a key of another slot than the declared ones; before, a
-- script may touch any key its node serves (a key it does not serve is still refused): there
-- each key's slot is compared with the lock's, one CLUSTER KEYSLOT each, on such servers only.
local slot_checked = redis.REDIS_VERSION ~= nil
local lock_slot = cluster and not slot_checked and redis_call('cluster', 'keyslot', KEYS[1])
-- `redis.acl_check_cmd` came with Redis 7.0: before, a command the ACL user may not run fails
-- as it runs, and the others still run (the README's table of servers says so).
local acl_check = redis.acl_check_cmd
for index, command in ipairs(commands) do
    local first, last = command[1], command[2]
    local checked, allowed = true, true
    if acl_check then
        checked, allowed = pcall(acl_check, unpack(ARGV, first, last))
    end
    if not checked then
        return {3, index, message(allowed)}
    end
    if not allowed then
        return {3, index, 'NOPERM the ACL user of this connection may not run this command '
            .. 'with these arguments'}
    end
    if cluster and command[3] then
        local keys = redis_pcall('command', 'getkeys', unpack(ARGV, first, last))
        if keys.err and string.lower(ARGV[first]) == 'spublish' then
            -- A sharded channel is no key to GETKEYS, but Cluster places it in a slot as one.
            keys = {ARGV[first + 1]}
        elseif keys.err then
            return {3, index, keys.err}
        end
        for _, key in ipairs(keys) do
            local probe = redis_pcall('exists', key)
            if type(probe) == 'table' and probe.err then
                return {3, index, probe.err}
            end
            if not slot_checked and redis_call('cluster', 'keyslot', key) ~= lock_slot then
                return {3, index,
                    'CROSSSLOT Script attempted to access a key outside the lock\'s slot'}
            end
        end
    end
end

-- 2^53: a Lua number this far from zero may not be the integer Redis replied.
local EXACT_UP_TO = 9007199254740992

local function inexact(reply)
    if type(reply) == 'number' then
        return reply >= EXACT_UP_TO or reply <= -EXACT_UP_TO
    end
    if type(reply) == 'table' then
        for _, item in ipairs(reply) do
            if inexact(item) then
                return true
            end
        end
    end
    return false
end

-- The counters, whose integer reply is the value they leave: the command that reads it back.
local counters = {incr = 'get', incrby = 'get', decr = 'get', decrby = 'get', hincrby = 'hget'}

-- The first error in `reply`, depth first, or nil.
local function first_error(reply)
    if type(reply) ~= 'table' then
        return nil
    end
    if reply.err then
        return reply.err
    end
    for _, item in ipairs(reply) do
        local err = first_error(item)
        if err then
            return err
        end
    end
    return nil
end

-- Every check passed: the commands run now, and the record says so first.
ran[#ran + 1] = ARGV[5]
write_execs(KEYS[1], ARGV[1], ARGV[5], ran)

local replies, exact, errors = {}, {}, {}
for index, command in ipairs(commands) do
    local first, last = command[1], command[2]
    local reply = redis_pcall(unpack(ARGV, first, last))
    if inexact(reply) then
        local read = type(reply) == 'number' and counters[string.lower(ARGV[first])]
        if read == 'get' then
            reply = redis_pcall('get', ARGV[first + 1])
            exact[#exact + 1] = index
        elseif read == 'hget' then
            reply = redis_pcall('hget', ARGV[first + 1], ARGV[first + 2])
            exact[#exact + 1] = index
        else
            reply = {err = 'ERR this command ran, but its reply holds an integer beyond 2^53, '
                .. 'which a Lua script cannot pass on exactly (lock-checked writes run in one)'}
        end
    end
    local err = first_error(reply)
    if err then
        reply = err
        errors[#errors + 1] = index
    end
    replies[index] = reply
end
return {1, replies, exact, errors}
