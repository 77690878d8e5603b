//! `tracing` events captured by a test, to check what the library logs (a warning that must
//! never be silent).

use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// What the subscriber of [`capture_warnings`] wrote: `tracing` events, one line each.
#[derive(Clone, Default, Debug)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The events written so far, one line each.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Captures the `warn` and `error` events of the current thread until the guard is dropped: the
/// events of futures polled on it, such as a test's own future under `#[tokio::test]`.
pub fn capture_warnings() -> (DefaultGuard, Captured) {
    capture(tracing::Level::WARN)
}

/// Captures the events of `level` and above of the current thread until the guard is dropped,
/// each line led by the spans it was recorded in (as `acquire{lock=…}:`).
pub fn capture(level: tracing::Level) -> (DefaultGuard, Captured) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(move || writer.clone())
        .finish();
    (tracing::subscriber::set_default(subscriber), captured)
}
