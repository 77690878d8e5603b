//! The `lock-bench` binary; see the library's documentation for what it measures.

fn main() -> std::process::ExitCode {
    lock_bench::run::main()
}
