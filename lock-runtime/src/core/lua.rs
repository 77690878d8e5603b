//! How a primitive declares its Lua scripts (one line per `.lua` file, giving the `static` the
//! code calls and its place in the module's `SOURCES`, what the `testing` feature hands to tests
//! and the benchmark, so no script is named twice), and how a script is sent: as a Redis
//! Function where the server has them, else with `EVALSHA`.
//!
//! Lua scripts in Redis cannot include one another: a script that uses shared functions comes
//! with their file in front (the family's `common.lua`, the latch's and the semaphore's
//! `requests.lua` below, a primitive's own). Sent with `EVALSHA`, those files run again on every
//! call, defining each of their functions before the script's own lines run: about a
//! microsecond of Redis's time per call for `common.lua`, more than most of the commands a
//! script calls. As a Redis Function (Redis 7.0 and newer, Valkey), they run once, when the
//! library is loaded, and every `FCALL` runs the script's own lines only. Every call of a
//! declared script goes through the script path (`core/script_path.rs`).
//!
//! # One library per script, named by its source
//!
//! Each script is a library of its own, holding one function; both are named `lock_runtime_`
//! followed by the SHA-1 of the script's `EVAL` source, the name `EVALSHA` would use. So:
//!
//! - two versions of this crate sharing a Redis (a rolling deploy) never replace each other's
//!   functions: a changed script is another library;
//! - nothing is loaded up front: an `FCALL` that finds no function (a fresh server, a restart
//!   without persistence, `FUNCTION FLUSH`) loads the script's library on the node that answered
//!   and sends the call again, as `EVALSHA` loads a script after `NOSCRIPT`; a library loaded by
//!   another client meanwhile counts as loaded;
//! - a failover keeps them: Redis replicates and persists functions with the data.
//!
//! A server before 7.0 has no Functions, and a Redis user may be denied `FCALL` or
//! `FUNCTION LOAD` by its ACL: the client then sends every script with `EVALSHA` ([`Calls`]).
//!
//! A function runs with the flags of its script's shebang line (`no-writes` for the read-only
//! ones) and, like every flagged script, may touch only keys of one slot on a cluster; a script
//! without a shebang line is sent with `EVALSHA` without flags, as before.
//!
//! # Keys named by the script
//!
//! Every key a script touches is declared in its call, as Redis asks: on a Redis Cluster, the
//! declared keys are what tells a node, while a slot migrates, whether it has all of them or
//! must redirect the call (`ASK`, `TRYAGAIN`), so a script never writes a key that has moved.
//! Declared keys are not free, though: Redis reads each one from the request and hands it to
//! the script, about 0.3 µs of its time per key, and a lock's acquire and release declared six
//! and seven. So the scripts that run on every acquisition (the locks' acquire and release) read
//! only `KEYS[1]`, the resource's main key, and name the others from it, as `core/keys.rs` does
//! (`key_of` in `family/scripts/common.lua`). Their calls still declare every key on a cluster;
//! where none needs the declarations (one node, Sentinel), only the main key is written into
//! the call ([`LuaScript::prepare_invoke`] asks the client's [`Calls`]).
//! Which scripts qualify is read from the source ([`reads_main_key_only`]), so a script
//! that reads another `KEYS` entry always gets every key.

use std::{
    borrow::Cow,
    sync::atomic::{AtomicBool, Ordering},
};

use redis::{Arg, Cmd, ToRedisArgs};

use crate::{
    core::slots::key_slot,
    transport::{connect::ServerFeatures, connection::Connection},
};

/// `core/scripts/requests.lua`, for [`lua_scripts!`] lists of files sent in front: the ids of
/// the requests that ran lately on a resource, so that a copy of one counts once however late
/// it lands (the count-down latch, the semaphore's permit counts).
macro_rules! requests_lua {
    () => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/core/scripts/requests.lua"
        ))
    };
}
pub(crate) use requests_lua;

/// The shebang line of the scripts that give back (release, undo, renewal, force-unlock), for
/// [`lua_scripts!`] lists of files sent in front: a Redis out of memory under `noeviction` refuses
/// every flagged script that may write (a Function, or a script with a shebang line) unless it
/// says `allow-oom`, and a hold given back frees memory, as `DEL` does, which Redis never
/// refuses. The acquisitions say nothing, so Redis refuses them when full.
macro_rules! allow_oom {
    () => {
        "#!lua flags=allow-oom\n"
    };
}
pub(crate) use allow_oom;

/// Declares the Lua scripts of one module, one line per file of its `scripts/` folder:
///
/// ```text
/// lua_scripts! {
///     front: [common_lua!()];
///     /// Re-enter a lock the scope holds; see `scripts/reenter.lua`. Reply: `Reentered`.
///     pub(crate) static REENTER: LuaScript = "reenter.lua";
///     /// Extend a hold's lease; see `scripts/renew.lua`. Nothing in front.
///     pub(crate) static RENEW: LuaScript = [] "renew.lua";
///     /// Read-only (its shebang's flags); not among `SOURCES`.
///     unlisted pub(crate) static INFO: LuaScript =
///         ["#!lua flags=no-writes\n", inspect_lua!()] "info.lua";
/// }
/// ```
///
/// Each line makes a `static Lazy<LuaScript>` of `scripts/<file>` with the `front` files before
/// it, or the list given on the line instead (a list may start with a `#!lua` shebang line: see
/// [`LuaScript`]); and, unless `unlisted`, a `(file, script)` entry in the module's
/// `pub(crate) static SCRIPTS`. Scripts left out of `SCRIPTS` are the operators' and the
/// connection's (`info`, `holders`, `commands`), not the steps of acquiring and releasing that
/// tests drive and the benchmark pipelines.
macro_rules! lua_scripts {
    (front: [$($front:expr),* $(,)?]; $($lines:tt)*) => {
        $crate::core::lua::lua_scripts!(@line [$($front),*] [] $($lines)*);
    };
    // Every line read: the listed ones.
    (@line [$($front:expr),*] [$(($file:literal, $name:ident))*]) => {
        /// Every script of this module but the unlisted ones, by file name.
        #[cfg_attr(not(feature = "testing"), allow(dead_code))]
        pub(crate) static SCRIPTS: &[(&str, &::once_cell::sync::Lazy<$crate::core::lua::LuaScript>)] =
            &[$(($file, &$name)),*];
    };
    (@line [$($front:expr),*] [$($listed:tt)*]
        $(#[$doc:meta])* unlisted $vis:vis static $name:ident: LuaScript
        = $([$($own:expr),* $(,)?])? $file:literal; $($rest:tt)*) => {
        $crate::core::lua::lua_scripts!(@static $(#[$doc])* $vis $name
            $crate::core::lua::lua_scripts!(@front [$($front),*] $([$($own),*])?), $file);
        $crate::core::lua::lua_scripts!(@line [$($front),*] [$($listed)*] $($rest)*);
    };
    (@line [$($front:expr),*] [$($listed:tt)*]
        $(#[$doc:meta])* $vis:vis static $name:ident: LuaScript
        = $([$($own:expr),* $(,)?])? $file:literal; $($rest:tt)*) => {
        $crate::core::lua::lua_scripts!(@static $(#[$doc])* $vis $name
            $crate::core::lua::lua_scripts!(@front [$($front),*] $([$($own),*])?), $file);
        $crate::core::lua::lua_scripts!(@line [$($front),*] [$($listed)* ($file, $name)]
            $($rest)*);
    };
    (@static $(#[$doc:meta])* $vis:vis $name:ident $front:expr, $file:literal) => {
        $(#[$doc])*
        $vis static $name: ::once_cell::sync::Lazy<$crate::core::lua::LuaScript> =
            ::once_cell::sync::Lazy::new(|| {
                $crate::core::lua::LuaScript::new($front, include_str!(concat!("scripts/", $file)))
            });
    };
    // The files in front: the line's own list if it has one, else the module's.
    (@front [$($front:expr),*] [$($own:expr),*]) => {
        concat!("", $($own),*)
    };
    (@front [$($front:expr),*]) => {
        concat!("", $($front),*)
    };
}
pub(crate) use lua_scripts;

/// The prefix of every library and function this crate loads.
const NAME_PREFIX: &str = "lock_runtime_";

/// The first line of every script: `redis_call` and `redis_pcall`, which the scripts and the
/// files in front of them call Redis with, instead of `redis.call` and `redis.pcall`.
///
/// In a Function, a global such as `redis` is looked up through the library's empty global
/// table and its metatable, about 20 ns of Redis's time each, and a lock's acquire and release
/// call Redis about ten times; a local of the library costs nothing to read. A library cannot
/// read `redis.call` as it loads (Redis hands it another `redis` then), so the locals are
/// declared here and bound by [`BIND_CALLS`] when a call runs: by the first call of a library,
/// for every call after it (both are the same functions for the server's life), and by every
/// `EVALSHA`, whose script runs the files in front again each time.
const DECLARE_CALLS: &str = "local redis_call, redis_pcall\n";

/// The first line of every script's own lines (see [`DECLARE_CALLS`]).
const BIND_CALLS: &str =
    "redis_call, redis_pcall = redis_call or redis.call, redis_pcall or redis.pcall\n";

/// One Lua script of the runtime: the files in front of it and its own lines, ready to be sent
/// as `FCALL` or as `EVALSHA` (see the module docs).
pub(crate) struct LuaScript {
    /// The `EVALSHA` script, with its shebang line if it has one (Redis 7.0 and newer).
    with_shebang: Eval,
    /// The same without the shebang line, for servers before 7.0, which cannot compile one and
    /// run every script as a shebang-less one. The same script when there is no shebang.
    without_shebang: Eval,
    /// The name of its function and of the library that holds it.
    function: String,
    /// Whether its own lines read no key but `KEYS[1]`, naming every other key it touches from
    /// it: its calls may then leave the other keys out where no cluster needs them declared.
    names_its_keys: bool,
    /// The library's source, for `FUNCTION LOAD`.
    library: String,
}

impl LuaScript {
    /// The script of `body` with `front` (shared functions, maybe a shebang line first) before
    /// it.
    pub(crate) fn new(front: &str, body: &str) -> Self {
        let (shebang, front) = match front.strip_prefix("#!") {
            Some(rest) => match rest.split_once('\n') {
                Some((line, front)) => (Some(line), front),
                None => (Some(rest), ""),
            },
            None => (None, front),
        };
        let eval = format!("{DECLARE_CALLS}{front}{BIND_CALLS}{body}");
        let source = match shebang {
            Some(line) => format!("#!{line}\n{eval}"),
            None => eval.clone(),
        };
        let without_shebang = Eval::new(eval);
        let function = format!("{NAME_PREFIX}{}", without_shebang.script.get_hash());
        let flags = shebang
            .and_then(|line| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix("flags="))
            })
            .map(|flags| {
                flags
                    .split(',')
                    .map(|flag| format!("'{flag}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        // The script's own lines become the function's body: `KEYS` and `ARGV` are its
        // parameters, and the files in front run once, when the library is loaded.
        let library = format!(
            "#!lua name={function}\n{DECLARE_CALLS}{front}\nredis.register_function{{\
             function_name = '{function}', callback = function(KEYS, ARGV)\n{BIND_CALLS}{body}\n\
             end, flags = {{{flags}}}}}\n"
        );
        Self {
            with_shebang: Eval::new(source),
            without_shebang,
            function,
            library,
            names_its_keys: reads_main_key_only(body),
        }
    }

    /// Whether the script reads no key but `KEYS[1]`: its calls off a cluster send that key
    /// alone (see the module docs). The scripts every acquisition runs keep to it, which their
    /// tests hold.
    #[cfg(test)]
    pub(crate) fn names_its_keys(&self) -> bool {
        self.names_its_keys
    }

    /// A call of this script with no keys or arguments yet, as `calls` sends it: where they
    /// need no key but the main one (see the module docs), the keys added after it are left
    /// out as they are added, and the call is written as the command that goes out.
    pub(crate) fn prepare_invoke(&'static self, calls: &Calls) -> Invocation {
        let mut arguments = Cmd::with_capacity(16, 384);
        let main_key_only = calls.main_key_only && self.names_its_keys;
        let whole = main_key_only.then(|| {
            let verb = calls.verb();
            let (command, name) = self.called_as(verb, calls.server);
            arguments.arg(command).arg(name).arg(1);
            verb
        });
        Invocation {
            script: self,
            keys: 0,
            whole,
            arguments,
        }
    }

    /// The command that calls this script with `verb`, and the name it calls it by.
    fn called_as(&self, verb: Verb, server: ServerFeatures) -> (&'static str, &str) {
        match verb {
            Verb::Fcall => ("FCALL", &self.function),
            Verb::Evalsha => ("EVALSHA", self.for_eval(server).script.get_hash()),
        }
    }

    /// The source as `EVAL` runs it on every server: the files in front and the script, without
    /// the shebang line (whose flags say only when Redis may refuse to run it).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn source(&self) -> &str {
        &self.without_shebang.source
    }

    /// The `EVALSHA` script `server` compiles: with the shebang when it reads script flags.
    fn for_eval(&self, server: ServerFeatures) -> &Eval {
        if server.script_flags() {
            &self.with_shebang
        } else {
            &self.without_shebang
        }
    }
}

/// A script as `EVALSHA` runs it: its source, and the hash that names it.
struct Eval {
    script: redis::Script,
    source: String,
}

impl Eval {
    fn new(source: String) -> Self {
        Self {
            script: redis::Script::new(&source),
            source,
        }
    }
}

/// A call of a [`LuaScript`]: its keys and arguments, sent by [`Calls::invoke`].
///
/// The keys, then the arguments, are written into one buffer as they are added, so a call costs
/// a couple of allocations however many it has: it is built for every try, release and renewal.
/// A call that sends its main key alone knows its number of keys (one) before any is added, so
/// its buffer starts with the command and the script's name and is the command sent ([`whole`]);
/// any other is copied behind them when sent.
///
/// [`whole`]: Self::whole
pub(crate) struct Invocation {
    script: &'static LuaScript,
    /// How many `KEYS` `arguments` holds, after its prefix (see [`whole`](Self::whole)).
    keys: usize,
    /// Set when the call sends its main key alone (the script names the others from it, and
    /// the client is not on a cluster, see [`LuaScript::prepare_invoke`]): the keys added after
    /// the first are left out, and `arguments` starts with the command calling the script with
    /// this verb, its name and its number of keys (one): the whole command.
    whole: Option<Verb>,
    arguments: Cmd,
}

/// How a call names its script: the command, and the name that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    /// `FCALL` and the function's name.
    Fcall,
    /// `EVALSHA` and the script's SHA-1.
    Evalsha,
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments may carry a caller's data (`exec`): their count only.
        f.debug_struct("Invocation")
            .field("function", &self.script.function)
            .field("keys", &self.keys)
            .field(
                "args",
                &(self.arguments.args_iter().len() - self.prefix() - self.keys),
            )
            .finish()
    }
}

impl Invocation {
    /// Adds an argument: the script's next `ARGV`.
    pub(crate) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.arguments.arg(arg);
        self
    }

    /// Adds a key: the script's next `KEYS`, unless the call sends its main key alone. Every
    /// key comes before the first argument.
    pub(crate) fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        debug_assert_eq!(
            self.prefix() + self.keys,
            self.arguments.args_iter().len(),
            "a key added after an argument"
        );
        if !(self.whole.is_some() && self.keys == 1) {
            self.arguments.arg(key);
            self.keys += 1;
        }
        self
    }

    /// How many of `arguments` come before the keys: the command, the script's name and the
    /// number of keys, where they were written first ([`whole`](Self::whole)).
    fn prefix(&self) -> usize {
        if self.whole.is_some() { 3 } else { 0 }
    }

    /// The slot of its first key (every key of a script shares its slot), where its library
    /// must be loaded on a cluster.
    fn slot(&self) -> Option<u16> {
        match self.arguments.args_iter().nth(self.prefix()) {
            Some(Arg::Simple(key)) if self.keys > 0 => Some(key_slot(key)),
            _ => None,
        }
    }

    /// The command calling `script` by `name` (`FCALL` or `EVALSHA`), with its keys and
    /// arguments, written anew.
    fn command(&self, name: &str, script: &str) -> Cmd {
        let (count, bytes) = self.sent().fold((0, 0), |(count, bytes), argument| {
            (count + 1, bytes + argument.len())
        });
        let mut command = Cmd::with_capacity(count + 3, bytes + name.len() + script.len() + 8);
        command.arg(name).arg(script).arg(self.keys);
        for argument in self.sent() {
            command.arg(argument);
        }
        command
    }

    /// The keys and arguments, as they go out.
    fn sent(&self) -> impl Iterator<Item = &[u8]> {
        self.arguments
            .args_iter()
            .skip(self.prefix())
            .filter_map(|argument| match argument {
                Arg::Simple(bytes) => Some(bytes),
                _ => None,
            })
    }
}

/// How a client sends the runtime's scripts: as Redis Functions (`FCALL`) while the server
/// lets it, else with `EVALSHA` (see the module docs). Shared by every request of the client.
#[derive(Debug)]
pub(crate) struct Calls {
    server: ServerFeatures,
    functions: AtomicBool,
    /// Whether calls declare their main key alone where the script names the others (see the
    /// module docs): everywhere but on a Redis Cluster.
    main_key_only: bool,
}

impl Calls {
    /// Functions on a server that has them (Redis 7.0 and newer, and Valkey, which reports
    /// 7.2); `EVALSHA` before. Every key a script touches is declared on a `cluster`; elsewhere,
    /// only those the script reads from its `KEYS`.
    pub(crate) fn new(server: ServerFeatures, cluster: bool) -> Self {
        Self {
            server,
            functions: AtomicBool::new(server.functions()),
            main_key_only: !cluster,
        }
    }

    /// Whether scripts go out as `FCALL` now.
    pub(crate) fn functions(&self) -> bool {
        self.functions.load(Ordering::Relaxed)
    }

    /// How scripts are called now.
    fn verb(&self) -> Verb {
        if self.functions() {
            Verb::Fcall
        } else {
            Verb::Evalsha
        }
    }

    /// The command that runs `call` as things stand.
    pub(crate) fn command<'a>(&self, call: &'a Invocation) -> Cow<'a, Cmd> {
        self.command_as(call, self.verb())
    }

    /// The command that runs `call` with `verb`: the call itself where it was written whole
    /// for that verb (and given its one key), else written anew.
    fn command_as<'a>(&self, call: &'a Invocation, verb: Verb) -> Cow<'a, Cmd> {
        if call.whole == Some(verb) && call.keys == 1 {
            return Cow::Borrowed(&call.arguments);
        }
        let (command, name) = call.script.called_as(verb, self.server);
        Cow::Owned(call.command(command, name))
    }

    /// Runs `call` on `connection` and returns its reply, loading the script first if the
    /// server does not have it.
    ///
    /// A Redis out of memory refuses `FUNCTION LOAD` but not `SCRIPT LOAD`: a call whose library
    /// cannot be loaded then goes out with `EVALSHA`, so that a release or a renewal (which
    /// Redis runs when full, see [`allow_oom!`]) still runs on a server that lost its functions.
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        call: &Invocation,
        connection: &mut Connection,
    ) -> redis::RedisResult<T> {
        let verb = self.verb();
        match connection.query(&self.command_as(call, verb)).await {
            // Rare (a server that lacks the script), and boxed: every request's future would
            // otherwise carry the state of the loads and resends across their awaits.
            Err(err) if self.needs_load(&err) => {
                Box::pin(self.load_and_send(call, connection, verb)).await
            }
            reply => reply,
        }
    }

    /// Sends `call` again once its script is loaded, after a copy sent with `verb` found the
    /// server without it (see [`invoke`](Self::invoke)).
    async fn load_and_send<T: redis::FromRedisValue>(
        &self,
        call: &Invocation,
        connection: &mut Connection,
        verb: Verb,
    ) -> redis::RedisResult<T> {
        let command = self.command_as(call, Verb::Evalsha);
        if verb == Verb::Fcall {
            match self.load(call, connection).await {
                Ok(()) if self.functions() => {
                    return connection.query(&self.command(call)).await;
                }
                // Turned to `EVALSHA` (`needs_load` says when).
                Ok(()) => {}
                Err(err) if err.code() == Some("OOM") => {}
                Err(err) => return Err(err),
            }
            match connection.query(&command).await {
                Err(err) if err.kind() == redis::ServerErrorKind::NoScript.into() => {}
                reply => return reply,
            }
        }
        let script = &call.script.for_eval(self.server).script;
        script.load_async(connection).await?;
        connection.query(&command).await
    }

    /// Whether `err`, the failure of a call made as things stood, asks for its script to be
    /// loaded before it is sent again: `NOSCRIPT` and "Function not found"; and a Redis user
    /// denied `FCALL` (ACL), or a server without it, which turns this client to `EVALSHA`.
    pub(crate) fn needs_load(&self, err: &redis::RedisError) -> bool {
        if err.kind() == redis::ServerErrorKind::NoScript.into() {
            return true;
        }
        if !self.functions() {
            return false;
        }
        if err.kind() == redis::ServerErrorKind::NoPerm.into() || is_unknown_command(err) {
            self.give_up_functions(err);
            return true;
        }
        err.kind() == redis::ServerErrorKind::ResponseError.into()
            && detail(err).as_deref() == Some("Function not found")
    }

    /// The command that loads `script` as things stand: its library (`FUNCTION LOAD`), or its
    /// `EVALSHA` script (`SCRIPT LOAD`).
    pub(crate) fn load_command(&self, script: &LuaScript) -> Cmd {
        let (command, source) = if self.functions() {
            ("FUNCTION", &script.library)
        } else {
            ("SCRIPT", &script.for_eval(self.server).source)
        };
        let mut load = redis::cmd(command);
        load.arg("LOAD").arg(source);
        load
    }

    /// Loads the script of `call` on the node that runs it (see [`load_command`]).
    ///
    /// [`load_command`]: Self::load_command
    pub(crate) async fn load(
        &self,
        call: &Invocation,
        connection: &mut Connection,
    ) -> redis::RedisResult<()> {
        match connection
            .query_on::<redis::Value>(&self.load_command(call.script), call.slot())
            .await
        {
            // Loaded meanwhile by another request, or another client of the same version.
            Err(err)
                if err
                    .detail()
                    .is_some_and(|detail| detail.ends_with("already exists")) =>
            {
                Ok(())
            }
            Err(err)
                if self.functions()
                    && (err.kind() == redis::ServerErrorKind::NoPerm.into()
                        || is_unknown_command(&err)) =>
            {
                self.give_up_functions(&err);
                Ok(())
            }
            loaded => loaded.map(drop),
        }
    }

    fn give_up_functions(&self, err: &redis::RedisError) {
        if self.functions.swap(false, Ordering::Relaxed) {
            tracing::info!(
                error = %err,
                "Redis refused a Redis Function call or load; sending scripts with EVALSHA"
            );
        }
    }
}

/// Whether `err` says the server does not know the command (a server or proxy without
/// Functions).
fn is_unknown_command(err: &redis::RedisError) -> bool {
    err.kind() == redis::ServerErrorKind::ResponseError.into()
        && detail(err).is_some_and(|detail| detail.starts_with("unknown command"))
}

/// What the server said after its error code, for a command's error or the first error of a
/// pipeline (the replica check sends the script and `WAIT` in one).
fn detail(err: &redis::RedisError) -> Option<String> {
    if let Some(detail) = err.detail() {
        return Some(detail.to_owned());
    }
    let errors = err.clone().into_server_errors()?;
    let (_, first) = errors.first()?;
    first.details().map(str::to_owned)
}

/// Whether the Lua lines of `body` read no entry of `KEYS` but `KEYS[1]`, comments aside. The
/// files in front never read `KEYS`: as a Function's body, a script gets it as a parameter, and
/// the shared functions take the keys they touch as theirs.
fn reads_main_key_only(body: &str) -> bool {
    body.lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .all(|code| {
            code.match_indices("KEYS")
                .all(|(at, _)| code[at..].starts_with("KEYS[1]"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_that_reads_only_its_main_key_is_sent_with_it_alone_off_a_cluster() {
        static SCRIPT: once_cell::sync::Lazy<LuaScript> = once_cell::sync::Lazy::new(|| {
            LuaScript::new(
                "",
                "-- KEYS[2] is named from KEYS[1]\nreturn redis.call('get', KEYS[1] .. ':x')\n",
            )
        });
        assert!(SCRIPT.names_its_keys());
        let words = |command: &Cmd| {
            command
                .args_iter()
                .map(|arg| match arg {
                    Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
        };
        let function = SCRIPT.function.as_str();
        let sha = SCRIPT.with_shebang.script.get_hash();
        for cluster in [false, true] {
            let calls = Calls::new(ServerFeatures { version: None }, cluster);
            let mut call = SCRIPT.prepare_invoke(&calls);
            call.key("main").key("main:x").arg("a");
            let (count, keys) = if cluster {
                ("2", &["main", "main:x"][..])
            } else {
                ("1", &["main"][..])
            };
            let expected =
                |command, name| [[command, name, count].as_slice(), keys, &["a"]].concat();
            let sent = calls.command(&call);
            // Off a cluster, the call is the command sent, as it was written.
            assert_eq!(matches!(sent, Cow::Borrowed(_)), !cluster);
            assert_eq!(words(&sent), expected("FCALL", function));
            // Turned to `EVALSHA` after the call was written: written anew, the same keys.
            calls.functions.store(false, Ordering::Relaxed);
            assert_eq!(words(&calls.command(&call)), expected("EVALSHA", sha));
        }
    }

    #[test]
    fn a_call_given_no_key_says_so_however_it_was_prepared() {
        static SCRIPT: once_cell::sync::Lazy<LuaScript> = once_cell::sync::Lazy::new(|| {
            LuaScript::new(
                "",
                "return ARGV[1]
",
            )
        });
        assert!(SCRIPT.names_its_keys());
        let calls = Calls::new(ServerFeatures { version: None }, false);
        let mut call = SCRIPT.prepare_invoke(&calls);
        call.arg("a");
        let sent = calls.command(&call);
        let words: Vec<_> = sent.args_iter().skip(2).collect();
        assert_eq!(words, [Arg::Simple(&b"0"[..]), Arg::Simple(&b"a"[..])]);
    }

    #[test]
    fn a_script_that_reads_another_key_is_sent_with_every_key() {
        for body in [
            "return redis.call('get', KEYS[2])",
            "return helper(KEYS)",
            "local k = KEYS[1] return #KEYS",
        ] {
            assert!(!reads_main_key_only(body), "{body}");
        }
        assert!(reads_main_key_only("-- KEYS[3]: the queue\nreturn KEYS[1]"));
    }

    #[test]
    fn a_flagged_script_loses_its_shebang_line_only_for_old_servers() {
        let script = LuaScript::new("#!lua flags=no-writes\n", "return 1\n");
        let eval = format!("{DECLARE_CALLS}{BIND_CALLS}return 1\n");
        assert_eq!(script.without_shebang.source, eval);
        assert_eq!(
            script.with_shebang.source,
            format!("#!lua flags=no-writes\n{eval}")
        );
    }

    #[test]
    fn a_library_runs_the_files_in_front_once_and_the_script_as_its_function() {
        let script = LuaScript::new("#!lua flags=no-writes\nlocal x = 1\n", "return x\n");
        let function = format!(
            "lock_runtime_{}",
            redis::Script::new(&format!(
                "{DECLARE_CALLS}local x = 1\n{BIND_CALLS}return x\n"
            ))
            .get_hash()
        );
        assert_eq!(script.function, function);
        assert_eq!(
            script.library,
            format!(
                "#!lua name={function}\n{DECLARE_CALLS}local x = 1\n\nredis.register_function{{\
                 function_name = '{function}', callback = function(KEYS, ARGV)\n{BIND_CALLS}\
                 return x\n\nend, flags = {{'no-writes'}}}}\n"
            )
        );
        let plain = LuaScript::new("", "return 1\n");
        assert!(plain.library.ends_with("end, flags = {}}\n"));
        assert_eq!(plain.with_shebang.source, plain.without_shebang.source);
    }
}
