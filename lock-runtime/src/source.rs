//! [`LockSource`]: what `#[distribute_lock(client = …)]` may name.

use std::sync::Arc;

use crate::{client::LockClient, multi::redlock::Redlock, sealed::Sealed};

/// Where [`#[distribute_lock]`](crate::distribute_lock) takes its lock when given
/// `client = …`: a [`LockClient`] (every lock of the family) or a [`Redlock`] (the exclusive
/// lock, `key = "…"` alone, held on a quorum of masters), or a reference, `Arc` or `Box` of
/// either. Sealed: implemented by this crate's types only.
///
/// ```
/// use lock_runtime::{LockError, Redlock, distribute_lock};
///
/// struct Reports {
///     redlock: Redlock,
/// }
///
/// impl Reports {
///     #[distribute_lock(key = "report:{day}", client = self.redlock, lease = "30s")]
///     async fn build(&self, day: u32) -> Result<u64, LockError> {
///         // The Redlock's token, strictly increasing across its masters.
///         Ok(lock_runtime::fencing_token().unwrap_or_default())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`client = …` must name a `LockClient` or a `Redlock`, not `{Self}`",
    label = "not a lock client",
    note = "a reference, `Arc` or `Box` of a `LockClient` or a `Redlock` works too"
)]
pub trait LockSource: Sealed {
    /// The source, for the attribute's generated code.
    #[doc(hidden)]
    fn source(&self) -> Source;
}

/// What `client = …` named: where the call takes its lock.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub enum Source {
    /// One Redis deployment's locks.
    Client(LockClient),
    /// A lock held on a quorum of independent masters (`key = …` only).
    Redlock(Redlock),
}

impl LockSource for LockClient {
    fn source(&self) -> Source {
        Source::Client(self.clone())
    }
}

impl LockSource for Redlock {
    fn source(&self) -> Source {
        Source::Redlock(self.clone())
    }
}

impl<T: LockSource + ?Sized> LockSource for &T {
    fn source(&self) -> Source {
        (**self).source()
    }
}

impl<T: LockSource + ?Sized> LockSource for Arc<T> {
    fn source(&self) -> Source {
        (**self).source()
    }
}

impl<T: LockSource + ?Sized> LockSource for Box<T> {
    fn source(&self) -> Source {
        (**self).source()
    }
}
