//! `MONITOR`: every command a server runs, and who sent it.
//!
//! `INFO commandstats` counts the commands that scripts run under the same names as those that
//! clients send (a script's `HGET` and a client's `HGET` are one counter), so it cannot tell
//! whether a client sent a command of its own. `MONITOR` can: it tags each command with the
//! address of the connection that sent it, or `lua` for the commands a script ran.
//!
//! Redis leaves administrative commands (`CONFIG`, `DEBUG`, …) out of `MONITOR`'s feed. The
//! kit leaves out the handshake of each new connection too: redis-rs sends
//! `CLIENT SETINFO LIB-NAME` / `LIB-VER` before anything else, which Redis 7.2+ and Valkey run
//! (and show) and older servers refuse (and do not show), so counts stay the same on every server.

use std::{
    thread::{self, JoinHandle},
    time::Duration,
};

use redis::Value;

use crate::RedisServer;

/// How long the feed may stay silent before the monitor gives up (the end marker is late).
const FEED_TIMEOUT: Duration = Duration::from_secs(10);

/// One command as `MONITOR` showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoredCommand {
    /// The sender: a connection's `ip:port`, or `lua` for a command a script ran.
    pub sender: String,
    /// The command and its arguments; the command as sent (`MONITOR` keeps its case).
    pub args: Vec<String>,
}

impl MonitoredCommand {
    /// The command's name in lower case, such as `evalsha`.
    #[must_use]
    pub fn name(&self) -> String {
        self.args
            .first()
            .map(|name| name.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// Whether it is part of a new connection's handshake (`CLIENT SETINFO`, sent by redis-rs
    /// to every server; only Redis 7.2+ and Valkey run it), not a command of the client's own.
    fn is_handshake(&self) -> bool {
        self.sent_by_a_client()
            && self.name() == "client"
            && self
                .args
                .get(1)
                .is_some_and(|sub| sub.eq_ignore_ascii_case("setinfo"))
    }

    /// Whether a client sent it (rather than a script running it).
    #[must_use]
    pub fn sent_by_a_client(&self) -> bool {
        self.sender != "lua"
    }
}

/// A `MONITOR` connection recording the server's commands from [`RedisServer::monitor`] until
/// [`stop`](Self::stop).
#[derive(Debug)]
pub struct Monitor<'a> {
    server: &'a RedisServer,
    marker: String,
    feed: JoinHandle<Result<Vec<MonitoredCommand>, String>>,
}

impl RedisServer {
    /// Starts recording every command the server runs (see [`Monitor`]); the recording starts
    /// before this returns.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses `MONITOR`.
    pub fn monitor(&self) -> Monitor<'_> {
        let mut connection = self.sync_connection();
        connection
            .set_read_timeout(Some(FEED_TIMEOUT))
            .expect("a read timeout");
        let reply: String = redis::cmd("MONITOR")
            .query(&mut connection)
            .unwrap_or_else(|err| panic!("MONITOR on port {}: {err}", self.port()));
        assert_eq!(reply, "OK", "MONITOR's reply");
        let marker = crate::unique_name("monitor-end");
        let end = marker.clone();
        let feed = thread::spawn(move || read_feed(&mut connection, &end));
        Monitor {
            server: self,
            marker,
            feed,
        }
    }
}

impl Monitor<'_> {
    /// Stops recording and returns the commands seen, in order, leaving out `MONITOR`'s own end
    /// marker (an `ECHO` sent here).
    ///
    /// # Panics
    ///
    /// When the feed broke or fell silent before the marker arrived.
    #[must_use]
    pub fn stop(self) -> Vec<MonitoredCommand> {
        let _: String = self.server.cmd(&["ECHO", &self.marker]);
        self.feed
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .unwrap_or_else(|err| panic!("MONITOR feed: {err}"))
    }
}

/// The commands each script ran, one list per command a client sent (empty for one that runs
/// no script), in the order the client commands came: a script runs whole, so `MONITOR` lists
/// its commands right after its call. Names are in lower case, as [`MonitoredCommand::name`].
#[must_use]
pub fn ran_by_each_call(seen: &[MonitoredCommand]) -> Vec<Vec<String>> {
    let mut calls: Vec<Vec<String>> = Vec::new();
    for command in seen {
        match calls.last_mut() {
            Some(ran) if !command.sent_by_a_client() => ran.push(command.name()),
            _ => calls.push(Vec::new()),
        }
    }
    calls
}

/// Leaves out of `calls` (as [`ran_by_each_call`] gives them) the `INCRBY`s that bring a lock's
/// fencing state up to the server clock: an acquisition runs one when the state has fallen
/// 100 ms behind the clock (see `fence_token` in lock-runtime's `common.lua`), which depends on
/// how fast the test ran, so a test comparing command lists whole compares them without it.
pub fn drop_fence_catch_ups(calls: &mut [Vec<String>]) {
    for ran in calls {
        ran.retain(|name| name != "incrby");
    }
}

/// The channels the scripts published on, in order, out of what a [`Monitor`] saw: where a
/// release sent its wake-ups.
#[must_use]
pub fn published_channels(seen: &[MonitoredCommand]) -> Vec<String> {
    seen.iter()
        .filter(|command| !command.sent_by_a_client() && command.name() == "publish")
        .filter_map(|command| command.args.get(1).cloned())
        .collect()
}

/// Reads the feed of a `MONITOR` connection until the `ECHO` of `marker`.
fn read_feed(
    connection: &mut redis::Connection,
    marker: &str,
) -> Result<Vec<MonitoredCommand>, String> {
    let mut seen = Vec::new();
    loop {
        let line = match connection.recv_response().map_err(|err| err.to_string())? {
            Value::SimpleString(line) => line,
            other => return Err(format!("unexpected MONITOR reply {other:?}")),
        };
        let command = parse_line(&line).ok_or_else(|| format!("unreadable line {line:?}"))?;
        if command.name() == "echo" && command.args.get(1).is_some_and(|arg| arg == marker) {
            return Ok(seen);
        }
        if !command.is_handshake() {
            seen.push(command);
        }
    }
}

/// Parses `1339518083.107412 [0 127.0.0.1:60866] "keys" "*"` (the sender is `lua` for a script's
/// command, `unix:/path` for a socket).
fn parse_line(line: &str) -> Option<MonitoredCommand> {
    let (_, rest) = line.split_once(" [")?;
    let (database_and_sender, args) = rest.split_once("] ")?;
    let (_, sender) = database_and_sender.split_once(' ')?;
    Some(MonitoredCommand {
        sender: sender.to_owned(),
        args: unquote_all(args)?,
    })
}

/// The arguments of a `MONITOR` line: double-quoted, space-separated, with C-like escapes
/// (`\"`, `\\`, `\n`, `\r`, `\t`, `\a`, `\b`, `\xNN`).
fn unquote_all(text: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut chars = text.chars();
    while let Some(open) = chars.next() {
        match open {
            ' ' => continue,
            '"' => {}
            _ => return None,
        }
        let mut arg = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => arg.push(unescape(&mut chars)?),
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
    Some(args)
}

/// The character an escape stands for, `chars` being just past its backslash.
fn unescape(chars: &mut std::str::Chars<'_>) -> Option<char> {
    Some(match chars.next()? {
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'x' => {
            let hex: String = chars.by_ref().take(2).collect();
            char::from(u8::from_str_radix(&hex, 16).ok()?)
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_from_clients_and_scripts() {
        let sent = parse_line(r#"1339518083.107412 [0 127.0.0.1:60866] "evalsha" "ab" "1""#)
            .expect("a line");
        assert_eq!(sent.sender, "127.0.0.1:60866");
        assert_eq!(sent.args, ["evalsha", "ab", "1"]);
        assert!(sent.sent_by_a_client());
        let ran = parse_line(r#"1339518083.2 [0 lua] "HSET" "k" "a\"b\\c\x01 d""#).expect("a line");
        assert!(!ran.sent_by_a_client());
        assert_eq!(ran.name(), "hset");
        assert_eq!(ran.args, ["HSET", "k", "a\"b\\c\u{1} d"]);
        assert_eq!(parse_line("garbage"), None);
        let handshake =
            parse_line(r#"1.5 [0 127.0.0.1:60866] "CLIENT" "SETINFO" "LIB-NAME" "redis-rs""#)
                .expect("a line");
        assert!(handshake.is_handshake());
        assert!(!sent.is_handshake());
    }
}
