//! The wait engine: how any primitive waits for a resource another owner holds.
//!
//! A primitive supplies an [`Attempt`]: one try at taking the resource, answering
//! [`Outcome::Done`] or [`Outcome::Busy`] with the holder's remaining TTL. [`wait`] does the rest,
//! the same way for every primitive:
//!
//! - It subscribes to the resource's channel only once the resource is found taken, so an
//!   uncontended acquisition is a single round trip. (If other local tasks already wait on the
//!   channel, it joins their confirmed subscription before the first try: that costs nothing.)
//! - It registers for wake-ups *before* each try, so a wake-up sent during the try is kept
//!   (tokio's `Notify::enable`).
//! - It tries once more as soon as the subscription is confirmed: a release published between the
//!   failed try and the subscription would otherwise go unseen (Redisson issue 1763).
//! - It sleeps at most the holder's remaining TTL (a crashed holder publishes nothing) and never
//!   past the caller's deadline.
//! - A task woken by a message that leaves without using the wake-up (its try failed, its caller
//!   gave up, its deadline passed) passes the wake-up on to another local waiter, so the others
//!   do not sleep to the holder's TTL.

use std::{future::Future, pin::pin, time::Duration};

use tokio::time::Instant;

use crate::{
    LockError,
    core::{
        backend::Backend,
        hub::{Baton, Subscription},
        keys::Keys,
    },
};

/// What one try found.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// Taken: the wait is over.
    Done(T),
    /// Held by another owner, for `ttl` more at most (`None`: no TTL, or unknown).
    Busy { ttl: Option<Duration> },
}

/// One try at taking a resource; see [`wait`].
pub(crate) trait Attempt {
    /// What a successful try yields (a guard).
    type Output;

    /// Tries once. `deadline` bounds the resends of the request.
    fn attempt(
        &mut self,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Outcome<Self::Output>, LockError>> + Send;
}

/// Tries `attempt` until it is done, waiting between tries through the hub, until `deadline`
/// (`None`: without limit). `start` is when the caller began, for the timeout error.
///
/// # Errors
///
/// The first error of a try, or [`LockError::Timeout`] once `deadline` passed.
pub(crate) async fn wait<A: Attempt + Send>(
    backend: &Backend,
    keys: &Keys,
    start: Instant,
    deadline: Option<Instant>,
    attempt: &mut A,
) -> Result<A::Output, LockError> {
    let channel = keys.channel();
    let mut subscription = backend.hub.join_if_confirmed(&channel);
    let mut seen_confirmed = subscription.is_some();
    let mut try_now = true;
    let mut ttl = None;
    // Set while this task holds a wake-up it has not used yet.
    let mut baton: Option<Baton> = None;
    loop {
        if subscription.is_none() && !try_now {
            tracing::debug!(lock = %keys.name, ?ttl, "held by another owner; waiting");
            subscription = Some(backend.hub.join(&channel));
        }
        let subscription = subscription.as_ref();
        let mut woken = pin!(subscription.map(Subscription::woken));
        if let Some(woken) = woken.as_mut().as_pin_mut() {
            woken.enable();
        }
        if let Some(subscription) = subscription
            && !seen_confirmed
            && subscription.is_confirmed()
        {
            seen_confirmed = true;
            try_now = true;
        }
        if try_now {
            let outcome = Box::pin(attempt.attempt(deadline)).await?;
            // The try reached Redis: taken, or another owner holds it (and its release will
            // wake someone). Either way the wake-up served its purpose.
            if let Some(baton) = baton.take() {
                baton.used();
            }
            match outcome {
                Outcome::Done(output) => return Ok(output),
                Outcome::Busy { ttl: left } => ttl = left,
            }
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            return Err(LockError::Timeout {
                name: keys.name.to_string(),
                waited: now - start,
            });
        }
        let Some(woken) = woken.as_mut().as_pin_mut() else {
            // Subscribe at the top of the loop; its confirmation calls for the next try.
            try_now = false;
            continue;
        };
        // A lock without TTL is not ours; look again after a renewal interval.
        let mut wake_at = now.checked_add(ttl.unwrap_or(backend.config.renew_interval()));
        if let Some(deadline) = deadline {
            wake_at = Some(wake_at.map_or(deadline, |wake_at| wake_at.min(deadline)));
        }
        let timer = async {
            match wake_at {
                Some(wake_at) => tokio::time::sleep_until(wake_at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = woken => baton = subscription.map(Subscription::baton),
            () = timer => {}
        }
        try_now = true;
    }
}
