-- What the server says of some commands, and its version: what lock-checked writes check a
-- pipeline's commands against before sending them (family/exec.rs, core/commands.rs). Sent
-- read-only, changing nothing.
--
-- KEYS[1]  a lock key: not read; it sends the call, on Redis Cluster, to the node that serves
--          the lock's slot, where the lock-checked script will run
--
-- ARGV     command names (at most 7997)
--
-- Returns {version, infos}: the server's version (server_version in common.lua), and `COMMAND
-- INFO` of the names, in order (nil for a name the server does not know), both read at one
-- instant of one server.

if #ARGV == 0 then
    return {server_version(), {}}
end
return {server_version(), redis_call('command', 'info', unpack(ARGV))}
