//! Compile-time tests of `#[distribute_lock]`: every mistake gives the error held in the
//! `.stderr` next to its case, and every supported shape of function compiles.
//!
//! The messages depend on the exact compiler (blessed with rustc 1.95.0, the toolchain of the
//! project's machines and CI); re-bless them after a toolchain update with
//! `TRYBUILD=overwrite cargo test -p lock-tests --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
    t.pass("ui/pass/*.rs");
}
