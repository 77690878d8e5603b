//! What every process test of `lock-cli` needs: the binary, run against a kit server, and what
//! it printed.

use std::{process::Output, time::Duration};

use lock_tests::RedisServer;
use serde_json::Value;
use tokio::{
    io::{AsyncBufRead, Lines},
    process::Command,
};

/// The binary under test, with no `LOCK_REDIS_URL` from the environment.
pub(crate) fn lock_cli() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lock-cli"));
    for variable in [
        "LOCK_REDIS_URL",
        "LOCK_REDIS_CLUSTER",
        "LOCK_REDIS_SENTINELS",
        "LOCK_REDIS_SENTINEL_MASTER",
    ] {
        command.env_remove(variable);
    }
    command.kill_on_drop(true);
    command
}

/// Runs `lock-cli --url <server> <args>` to its end.
pub(crate) async fn run(server: &RedisServer, args: &[&str]) -> Output {
    lock_cli()
        .arg("--url")
        .arg(server.url())
        .args(args)
        .output()
        .await
        .expect("lock-cli runs")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `output` exited with `code`, showing what it printed otherwise.
pub(crate) fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

pub(crate) fn json(output: &Output) -> Value {
    assert_exit(output, 0);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", stdout(output)))
}

/// The next line of `watch` (its stdout or its stderr), within a few seconds.
pub(crate) async fn next_line<R: AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> String {
    tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .expect("a line within 5 s")
        .expect("stdout readable")
        .expect("a line before the end")
}
