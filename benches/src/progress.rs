//! Progress lines on stderr, stamped with the time since the run started: the run and every
//! scenario print through it, so it sits below both.

use std::time::Instant;

/// Prints progress on stderr, each line stamped with the time since the run started.
#[derive(Debug)]
pub struct Progress {
    start: Instant,
}

impl Progress {
    /// Starts the clock.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// A scenario begins.
    pub fn step(&self, number: &str, title: &str) {
        eprintln!(
            "[{:>6.1}s] == {number} {title}",
            self.start.elapsed().as_secs_f64()
        );
    }

    /// A figure or a note.
    pub fn note(&self, message: &str) {
        eprintln!(
            "[{:>6.1}s]    {message}",
            self.start.elapsed().as_secs_f64()
        );
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
