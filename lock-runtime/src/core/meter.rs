//! What the runtime measures of its locks, recorded through the `metrics` facade when the
//! `metrics` cargo feature is on (and compiled to nothing when it is off).
//!
//! The names, labels and meaning of what is recorded are public, in `crate::metrics`. This
//! module records them: where a primitive is measured, it holds a [`Meter`] (its kind and
//! label), built from the handle's [`Label`].

use std::{
    borrow::Cow,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

#[cfg(feature = "metrics")]
use tokio::time::Instant;

#[cfg(feature = "metrics")]
use crate::metrics::{
    ACQUISITIONS, HANDOFFS, HELD, HOLD_SECONDS, LEASE_LOSSES, RENEWALS, TIMEOUTS, WAIT_SECONDS,
    WAITING,
};
use crate::{error::LockError, metrics::UNLABELED};

/// The `lock` label of a handle's measurements.
#[derive(Debug, Clone, Default)]
pub(crate) enum Label {
    /// No label given: measured as [`UNLABELED`].
    #[default]
    Unlabeled,
    /// A label given by the caller, as a static string (a template).
    Static(&'static str),
    /// A label given by the caller, made at run time: shared, so a hold clones no string.
    Shared(Arc<str>),
    /// Not measured on its own: a member of a multi-lock or a Redlock, measured as a whole.
    Member,
}

impl Label {
    /// A label the caller chose.
    pub(crate) fn given(label: impl Into<Cow<'static, str>>) -> Self {
        match label.into() {
            Cow::Borrowed(label) => Self::Static(label),
            Cow::Owned(label) => Self::Shared(label.into()),
        }
    }
}

/// The series one primitive's measurements go to: its kind and its label.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    kind: &'static str,
    label: Label,
}

impl fmt::Display for Meter {
    /// `kind/label`, as the acquisition's tracing span shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.label {
            Label::Unlabeled => write!(f, "{}/{UNLABELED}", self.kind),
            Label::Static(label) => write!(f, "{}/{label}", self.kind),
            Label::Shared(label) => write!(f, "{}/{label}", self.kind),
            Label::Member => write!(f, "{} member", self.kind),
        }
    }
}

/// A fresh acquisition that succeeded, and how.
#[derive(Debug)]
pub(crate) struct Won<T> {
    pub(crate) output: T,
    /// Whether a release woke this waiter (or handed it the lock) just before it won.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) handed_off: bool,
}

impl<T> Won<T> {
    /// Won without being handed the lock by a release.
    pub(crate) fn found_free(output: T) -> Self {
        Self {
            output,
            handed_off: false,
        }
    }
}

impl Meter {
    pub(crate) fn new(kind: &'static str, label: &Label) -> Self {
        Self {
            kind,
            label: label.clone(),
        }
    }

    /// `acquiring`, its wait and outcome recorded (`cancelled` if the returned future is dropped
    /// before the acquisition ends). A future wrapping the other in place, not an `async fn`:
    /// an `async fn` would keep the wait future twice in its state (once as its argument, once
    /// being awaited), and every waiting task carries that state. It takes the meter, so that
    /// a build without the `metrics` feature keeps none while waiting.
    pub(crate) fn measure<T, F>(self, acquiring: F) -> Measured<F>
    where
        F: Future<Output = Result<Won<T>, LockError>>,
    {
        Measured {
            acquiring,
            waiting: Waiting::new(self),
        }
    }

    /// A hold starting now, counted as held until the returned value is dropped, and its time
    /// measured then.
    pub(crate) fn holding(&self) -> Holding {
        #[cfg(feature = "metrics")]
        self.gauge(HELD, 1.0);
        Holding {
            #[cfg(feature = "metrics")]
            since: (Instant::now(), self.clone()),
        }
    }

    /// The watchdog renewed a hold.
    pub(crate) fn renewed(&self) {
        #[cfg(feature = "metrics")]
        self.count(RENEWALS);
    }

    /// A hold's lease is known lost.
    pub(crate) fn lease_lost(&self) {
        #[cfg(feature = "metrics")]
        self.count(LEASE_LOSSES);
    }

    /// The `lock` label's value, or `None` for a member (not measured).
    #[cfg(feature = "metrics")]
    fn label(&self) -> Option<::metrics::SharedString> {
        match &self.label {
            Label::Unlabeled => Some(::metrics::SharedString::const_str(UNLABELED)),
            Label::Static(label) => Some(::metrics::SharedString::const_str(label)),
            Label::Shared(label) => Some(::metrics::SharedString::from(Arc::clone(label))),
            Label::Member => None,
        }
    }

    #[cfg(feature = "metrics")]
    fn count(&self, counter: &'static str) {
        if let Some(lock) = self.label() {
            ::metrics::counter!(counter, "kind" => self.kind, "lock" => lock).increment(1);
        }
    }

    /// Moves the gauge `gauge` by `by`.
    #[cfg(feature = "metrics")]
    fn gauge(&self, gauge: &'static str, by: f64) {
        if let Some(lock) = self.label() {
            ::metrics::gauge!(gauge, "kind" => self.kind, "lock" => lock).increment(by);
        }
    }
}

pin_project_lite::pin_project! {
    /// A fresh acquisition being measured; see [`Meter::measure`].
    pub(crate) struct Measured<F> {
        #[pin]
        acquiring: F,
        waiting: Waiting,
    }
}

impl<T, F> Future for Measured<F>
where
    F: Future<Output = Result<Won<T>, LockError>>,
{
    type Output = Result<T, LockError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = std::task::ready!(this.acquiring.poll(cx));
        this.waiting.ended(&outcome);
        Poll::Ready(outcome.map(|won| won.output))
    }
}

/// A hold being measured: counted as held until this is dropped (when the release starts), and
/// its time recorded then.
#[derive(Debug)]
pub(crate) struct Holding {
    #[cfg(feature = "metrics")]
    since: (Instant, Meter),
}

impl Holding {
    /// The release starts: the hold's time is recorded now.
    pub(crate) fn end(self) {}
}

#[cfg(feature = "metrics")]
impl Drop for Holding {
    fn drop(&mut self) {
        let (since, meter) = &self.since;
        meter.gauge(HELD, -1.0);
        if let Some(lock) = meter.label() {
            ::metrics::histogram!(HOLD_SECONDS, "kind" => meter.kind, "lock" => lock)
                .record(since.elapsed());
        }
    }
}

#[cfg(feature = "metrics")]
use recording::Waiting;

/// Without the feature a wait is not measured: nothing to keep.
#[cfg(not(feature = "metrics"))]
struct Waiting;

#[cfg(not(feature = "metrics"))]
impl Waiting {
    fn new(_: Meter) -> Self {
        Self
    }

    fn ended<T>(&mut self, _: &Result<Won<T>, LockError>) {}
}

#[cfg(feature = "metrics")]
mod recording {
    //! The wait's measurement, kept apart so a build without the feature carries none of it.

    use super::*;

    /// A fresh acquisition being measured, counted as waiting until it ends; dropped before
    /// [`Waiting::ended`], it counts as cancelled.
    pub(super) struct Waiting {
        meter: Meter,
        start: Instant,
        ended: bool,
    }

    impl Waiting {
        pub(super) fn new(meter: Meter) -> Self {
            meter.gauge(WAITING, 1.0);
            Self {
                meter,
                start: Instant::now(),
                ended: false,
            }
        }

        pub(super) fn ended<T>(&mut self, outcome: &Result<Won<T>, LockError>) {
            self.ended = true;
            let outcome = match outcome {
                Ok(won) => {
                    self.meter.count(ACQUISITIONS);
                    if won.handed_off {
                        self.meter.count(HANDOFFS);
                    }
                    "acquired"
                }
                Err(LockError::Timeout { .. }) => {
                    self.meter.count(TIMEOUTS);
                    "timeout"
                }
                Err(_) => "error",
            };
            self.record(outcome);
        }

        /// Records the wait's end under `outcome`.
        fn record(&self, outcome: &'static str) {
            self.meter.gauge(WAITING, -1.0);
            if let Some(lock) = self.meter.label() {
                ::metrics::histogram!(
                    WAIT_SECONDS,
                    "kind" => self.meter.kind,
                    "lock" => lock,
                    "outcome" => outcome
                )
                .record(self.start.elapsed());
            }
        }
    }

    impl Drop for Waiting {
        fn drop(&mut self) {
            if !self.ended {
                self.record("cancelled");
            }
        }
    }
}
