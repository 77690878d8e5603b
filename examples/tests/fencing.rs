//! The fencing example end to end: a writer frozen past its lease is refused by the store.

use std::process::Command;

/// The number after `marker` on the demo's output line that contains it.
fn token_after(stdout: &str, marker: &str) -> u64 {
    let rest = stdout
        .split_once(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{stdout}"))
        .1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no token after {marker:?} in:\n{stdout}"))
}

#[test]
fn the_stale_writers_late_write_is_rejected() {
    let output = Command::new(env!("CARGO_BIN_EXE_fencing-demo"))
        .env_remove("REDIS_URL")
        .output()
        .expect("run fencing-demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let a = token_after(&stdout, "A holds the lock with token ");
    let b = token_after(&stdout, "B takes the lock with token ");
    assert!(b > a, "B's token {b} is newer than A's {a}");
    assert!(
        stdout.contains(&format!("writes with token {a}: REJECTED by the store")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "the document now reads \"written by B with token {b}\""
        )),
        "{stdout}"
    );
}
