//! `#[distribute_lock]` on real Redis, one module per way of naming the lock: `key` (the
//! reentrant lock), `fair = true`, `mode = "read"` / `"write"`, `keys = [...]`, and no `client`
//! at all (the process-wide default client, also from other runtimes). In every mode every exit
//! path releases the lock (checked by reading Redis afterwards), the body runs exactly when it
//! should (checked by counting runs) and under the lock it names ([`act`] checks both, the same way
//! for every mode), lease loss is acted on, and re-entry works.
//!
//! The functions take their client as a parameter (`client = f.client`) so that tests running in
//! parallel in one process never share the process-wide default client; the tests that set it
//! take turns through [`DEFAULT_CLIENT`].

mod default_client;
mod fair;
mod instrument;
mod key;
mod keys;
mod mode;
mod runtimes;

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use lock_runtime::{LockClient, LockError, distribute_lock};
use lock_tests::{
    RedisServer,
    locks::{Family, is_held, rw_key},
    unique_name,
};

/// Held by every test that sets the process-wide default client, for its whole run: `cargo test`
/// runs the tests of this binary in parallel in one process, and each sets its own default client
/// for its own server. Keep every test that calls `set_default_client` in this binary, and take
/// this lock in it.
static DEFAULT_CLIENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, PartialEq)]
enum AppError {
    Refused(&'static str),
    Parse(String),
    Lock(String),
}

impl From<LockError> for AppError {
    fn from(err: LockError) -> Self {
        let kind = if err.is_timeout() {
            "timeout"
        } else if err.is_lease_lost() {
            "lease lost"
        } else {
            "other"
        };
        AppError::Lock(format!("{kind}: {err}"))
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(err: std::num::ParseIntError) -> Self {
        AppError::Parse(err.to_string())
    }
}

struct Fixture {
    server: RedisServer,
    client: LockClient,
    name: String,
    runs: AtomicUsize,
    finished: AtomicUsize,
}

impl Fixture {
    async fn new(prefix: &str) -> Self {
        let server = RedisServer::start();
        let client = LockClient::connect(&server.url()).await.expect("connect");
        Self {
            server,
            client,
            name: unique_name(prefix),
            runs: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
        }
    }

    /// Whether anyone holds the reentrant (or fair) lock of `name`.
    fn is_held(&self) -> bool {
        is_held(&self.server, &self.name)
    }

    /// Whether anyone holds the read-write lock of `name`, to read or to write.
    fn is_rw_held(&self) -> bool {
        self.server.cmd::<i64>(&["EXISTS", &rw_key(&self.name)]) == 1
    }

    /// Whether the read-write lock of `name` has a write hold.
    fn is_write_held(&self) -> bool {
        self.server
            .cmd::<i64>(&["HEXISTS", &rw_key(&self.name), "writer"])
            == 1
    }

    /// How many holds, read or write, the read-write lock of `name` has.
    fn rw_holds(&self) -> usize {
        lock_tests::locks::rw_holds(&self.server, &self.name)
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

/// Which lock an [`act`] call runs under: one lock of the family, named by `key = "{f.name}"`
/// (the reentrant lock, `fair = true`, `mode = "read"` or `mode = "write"`), or the multi-lock of
/// `keys = ["{f.name}:{from}", "{f.name}:{to}"]`.
#[derive(Debug, Clone, Copy)]
enum Mode<'a> {
    Key(Family),
    Keys(&'a str, &'a str),
}

impl From<Family> for Mode<'_> {
    fn from(family: Family) -> Self {
        Self::Key(family)
    }
}

/// How the body of an [`act`] call leaves.
#[derive(Debug, Clone, Copy)]
enum Exit {
    /// Runs to its end and returns `Ok(token)`.
    Ok,
    /// Returns an `Err` of its own.
    Err,
    /// Leaves through `?` on an error of another type (converted by `From`).
    QuestionMark,
    /// Returns `Ok(0)` before its end.
    EarlyReturn,
    /// Panics.
    Panic,
}

/// Calls, under the lock `mode` names, a body that checks it runs under that lock (see [`enter`])
/// and leaves as `exit` says: the one helper for every mode.
async fn act<'a>(f: &Fixture, mode: impl Into<Mode<'a>>, exit: Exit) -> Result<u64, AppError> {
    match mode.into() {
        Mode::Key(Family::Reentrant) => key_act(f, exit).await,
        Mode::Key(Family::Fair) => fair_act(f, exit).await,
        Mode::Key(Family::Read) => read_act(f, exit).await,
        Mode::Key(Family::Write) => write_act(f, exit).await,
        Mode::Keys(from, to) => keys_act(f, from, to, exit).await,
    }
}

/// The body of every function [`act`] calls, written once. A macro, not a function, so that its
/// `return` and `?` are the annotated function's own: what the attribute must handle.
macro_rules! act_body {
    ($f:expr, $mode:expr, $exit:expr) => {{
        let f: &Fixture = $f;
        let token = enter(f, $mode).await;
        match $exit {
            Exit::Ok => {}
            Exit::Err => return Err(AppError::Refused("refused")),
            Exit::QuestionMark => {
                let parsed: u64 = "not a number".parse()?;
                return Ok(parsed);
            }
            Exit::EarlyReturn => {
                if token > 0 {
                    return Ok(0);
                }
            }
            Exit::Panic => panic!("the body panics"),
        }
        f.finished.fetch_add(1, Ordering::SeqCst);
        Ok(token)
    }};
}

#[distribute_lock(key = "{f.name}", client = f.client, wait = "2s")]
async fn key_act(f: &Fixture, exit: Exit) -> Result<u64, AppError> {
    act_body!(f, Family::Reentrant.into(), exit)
}

#[distribute_lock(key = "{f.name}", client = f.client, fair = true, wait = "2s")]
async fn fair_act(f: &Fixture, exit: Exit) -> Result<u64, AppError> {
    act_body!(f, Family::Fair.into(), exit)
}

#[distribute_lock(key = "{f.name}", client = f.client, mode = "read", wait = "2s")]
async fn read_act(f: &Fixture, exit: Exit) -> Result<u64, AppError> {
    act_body!(f, Family::Read.into(), exit)
}

#[distribute_lock(key = "{f.name}", client = f.client, mode = "write", wait = "2s")]
async fn write_act(f: &Fixture, exit: Exit) -> Result<u64, AppError> {
    act_body!(f, Family::Write.into(), exit)
}

#[distribute_lock(keys = ["{f.name}:{from}", "{f.name}:{to}"], client = f.client, wait = "2s")]
async fn keys_act(f: &Fixture, from: &str, to: &str, exit: Exit) -> Result<u64, AppError> {
    act_body!(f, Mode::Keys(from, to), exit)
}

/// Counts the run, checks from inside the body that the lock of `mode` is held as it should be,
/// and returns the body's fencing token.
///
/// - The reentrant lock: its key exists.
/// - The fair lock: its key exists; another task's fair try finds it taken; from inside, the fair
///   lock re-enters this call's hold and the reentrant lock of the same name does not (a scope
///   re-enters only its own kind of hold).
/// - A read hold: another task may read too, but not write.
/// - The write hold: another task can neither read nor write.
/// - `keys`: the lock of every key is held.
async fn enter(f: &Fixture, mode: Mode<'_>) -> u64 {
    f.runs.fetch_add(1, Ordering::SeqCst);
    match mode {
        Mode::Key(Family::Reentrant | Family::Fair) => {
            assert!(f.is_held(), "the body runs under the lock");
        }
        Mode::Key(Family::Read) => assert!(
            f.is_rw_held() && !f.is_write_held(),
            "the body runs under a read hold"
        ),
        Mode::Key(Family::Write) => {
            assert!(f.is_write_held(), "the body runs under the write hold")
        }
        Mode::Keys(from, to) => assert!(
            is_account_held(f, from) && is_account_held(f, to),
            "the body runs under the lock of every key"
        ),
    }
    let token = lock_runtime::fencing_token().expect("a token inside the body");
    match mode {
        Mode::Key(Family::Fair) => {
            let elsewhere = try_elsewhere(f, Family::Fair).await;
            assert!(
                elsewhere.as_ref().is_err_and(LockError::is_timeout),
                "another task took the fair lock while the body held it: {elsewhere:?}"
            );
            let reentry = f
                .client
                .fair_lock(&f.name)
                .try_acquire(Duration::ZERO, None)
                .await
                .expect("the fair lock re-enters the call's hold");
            assert_eq!(reentry.fencing_token(), token, "re-entry keeps the token");
            reentry.unlock().await.expect("unlock the re-entry");
            let reentrant = f
                .client
                .lock(&f.name)
                .try_acquire(Duration::ZERO, None)
                .await;
            assert!(
                reentrant.as_ref().is_err_and(LockError::is_timeout),
                "the reentrant lock re-entered the hold: it is not a fair one: {reentrant:?}"
            );
        }
        Mode::Key(Family::Read) => {
            try_elsewhere(f, Family::Read)
                .await
                .expect("another task reads alongside");
            let write = try_elsewhere(f, Family::Write).await;
            assert!(
                write.as_ref().is_err_and(LockError::is_timeout),
                "another task wrote while the body read: {write:?}"
            );
        }
        Mode::Key(Family::Write) => {
            for family in [Family::Read, Family::Write] {
                let elsewhere = try_elsewhere(f, family).await;
                assert!(
                    elsewhere.as_ref().is_err_and(LockError::is_timeout),
                    "another task took the lock ({family:?}) while the body wrote: {elsewhere:?}"
                );
            }
        }
        Mode::Key(Family::Reentrant) | Mode::Keys(..) => {}
    }
    token
}

/// What another task gets when it tries, without waiting, for the lock `family` of `f.name`;
/// whatever it gets it gives back at once. (Another task is another scope: it neither re-enters
/// nor downgrades this one's holds.)
async fn try_elsewhere(f: &Fixture, family: Family) -> Result<(), LockError> {
    let (client, name) = (f.client.clone(), f.name.clone());
    tokio::spawn(async move {
        family
            .try_acquire(&client, &name, Duration::ZERO, None)
            .await?
            .unlock()
            .await
    })
    .await
    .expect("join")
}

/// The lock name `keys = ["{f.name}:{account}", ..]` formats for `account`.
fn account(f: &Fixture, account: &str) -> String {
    format!("{}:{account}", f.name)
}

/// Whether the lock of `account` is held, by anyone.
fn is_account_held(f: &Fixture, name: &str) -> bool {
    is_held(&f.server, &account(f, name))
}
