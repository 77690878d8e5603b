//! `watch`: follow a lock until Ctrl-C, in one of two forms.
//!
//! - For a person (stdout is a terminal, no `--json`): a live view redrawn in place every
//!   interval ([`crate::live`] says what it shows), on the alternate screen, given back on exit.
//! - For a program (`--json`, or stdout a pipe or a file): a line now, then one per change of
//!   holders or waiters (of any primitive of the name: see [`Snapshot`]), each with its time,
//!   so a script can read the changes as they come.
//!
//! The first look must succeed (a wrong URL or lock name ends the command with status 1); a look
//! that fails after it (Redis restarting, say) is reported and the watch goes on.

use std::{
    future::Future,
    io::{self, IsTerminal, Write},
    time::{Duration, SystemTime},
};

use lock_runtime::LockClient;

use crate::{
    Failure,
    args::Global,
    chain,
    live::{Frame, History},
    render,
    screen::Screen,
    snapshot::Snapshot,
};

/// Runs `watch NAME --interval …` until Ctrl-C.
pub(crate) async fn watch(
    client: &LockClient,
    global: &Global,
    name: &str,
    interval: Duration,
) -> Result<(), Failure> {
    let first = Snapshot::look(client, name).await?;
    if global.json || !io::stdout().is_terminal() {
        until_ctrl_c(lines(client, global.json, interval, first)).await
    } else {
        until_ctrl_c(live(client, interval, first)).await
    }
}

/// Runs `follow` until it fails or Ctrl-C is pressed; dropping `follow` on Ctrl-C drops what it
/// holds (the live view's [`Screen`], which gives the terminal back).
async fn until_ctrl_c(follow: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => {
            stopped.map_err(|err| format!("listening for Ctrl-C: {err}").into())
        }
        failed = follow => failed,
    }
}

/// The live view: redrawn every `interval`, from the look `first` on. Ends only on an error
/// writing to the terminal.
async fn live(client: &LockClient, interval: Duration, first: Snapshot) -> Result<(), Failure> {
    let mut screen = Screen::enter()?;
    let mut history = History::new(&first);
    let (mut snapshot, mut at) = (first, SystemTime::now());
    let mut failure = None;
    loop {
        let frame = Frame {
            interval,
            snapshot: &snapshot,
            at,
            failure: failure.as_ref(),
            history: &history,
        };
        screen.draw(&frame.lines())?;
        tokio::time::sleep(interval).await;
        let looked_at = SystemTime::now();
        match look(client, snapshot.name(), interval).await {
            Ok(now) => {
                history.observe(&now, looked_at);
                (snapshot, at, failure) = (now, looked_at, None);
            }
            Err(why) => failure = Some((looked_at, why)),
        }
    }
}

/// Lines for programs: the look `first`, then one line per change of holder or waiters, as
/// text or (with `json`) one JSON document per line with an `at` timestamp. Ends only on an
/// error writing to stdout (such as a closed pipe).
async fn lines(
    client: &LockClient,
    json: bool,
    interval: Duration,
    first: Snapshot,
) -> Result<(), Failure> {
    let mut last = first.watched();
    print_change(&first, json)?;
    loop {
        tokio::time::sleep(interval).await;
        match look(client, first.name(), interval).await {
            Ok(snapshot) => {
                let seen = snapshot.watched();
                if seen != last {
                    print_change(&snapshot, json)?;
                    last = seen;
                }
            }
            Err(why) => eprintln!("lock-cli: {why}"),
        }
    }
}

/// One look at `name` after the first, or why it failed. Bounded by the interval, and at least
/// 2 s (four reads, from a Redis that may be busy): a look at a Redis that stopped answering
/// would otherwise wait out the client's retry timeout, about ten seconds, while the view went
/// on showing the last state as the current one.
async fn look(client: &LockClient, name: &str, interval: Duration) -> Result<Snapshot, String> {
    let bound = interval.max(Duration::from_secs(2));
    match tokio::time::timeout(bound, Snapshot::look(client, name)).await {
        Ok(Ok(snapshot)) => Ok(snapshot),
        Ok(Err(err)) => Err(chain(&err)),
        Err(_) => Err(format!(
            "no answer from Redis within {}",
            humantime::format_duration(bound)
        )),
    }
}

/// Prints one line of [`lines`], now.
fn print_change(snapshot: &Snapshot, json: bool) -> io::Result<()> {
    let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let line = if json {
        let mut document = render::snapshot_json(snapshot);
        document["at"] = serde_json::Value::String(at);
        document.to_string()
    } else {
        format!("{at}  {}", render::watch_line(snapshot))
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}
