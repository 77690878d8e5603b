//! The fencing example end to end: a writer frozen past its lease is refused by the store.

use std::process::Command;

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
    assert!(
        stdout.contains("writes with token 1: REJECTED by the store"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the document now reads \"written by B with token 2\""),
        "{stdout}"
    );
}
