//! Re-entry: acquiring again a lock the current scope holds, as one more hold under the scope's
//! owner id, one re-entry at a time per scope; and its undo when the caller gives up in flight.

use std::sync::{Arc, Weak};

use tokio::time::Instant;

use crate::{
    core::{
        backend::Backend,
        hold::{Hold, InFlight},
        keys::Keys,
        scope::Held,
    },
    error::LockError,
    family::{
        flavor::Layout,
        guard::LockGuard,
        release::{Release, Undo},
        replies::Reentered,
    },
};

/// Acquires again a lock the current scope holds: one more hold under the scope's owner id, once
/// no other re-entry of that scope is held.
pub(crate) async fn reenter(
    layout: &'static Layout,
    backend: &Arc<Backend>,
    keys: Arc<Keys>,
    held: &Held,
    start: Instant,
    deadline: Option<Instant>,
) -> Result<LockGuard, LockError> {
    let turn = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, held.exclusive_reentry())
            .await
            .map_err(|_| LockError::Timeout {
                name: keys.name.to_string(),
                waited: start.elapsed(),
                holder: None,
            })?,
        None => held.exclusive_reentry().await,
    };
    let owner = &held.holder.owner;
    let Some(script) = layout.reenter else {
        return Err(LockError::config(format!(
            "`{}` cannot be re-entered",
            keys.name
        )));
    };
    let context = || format!("re-entering lock `{}`", keys.name);
    let mut tries = 0;
    let (reply, number) = loop {
        let number = backend.ids.reentry();
        let mut call = script.prepare_invoke();
        call.key(&keys.main);
        layout
            .with_leases(&mut call, &keys)
            .arg(owner.as_ref())
            .arg(number);
        let in_flight = InFlight::arm(backend, Undo::reentry(layout, &keys, owner, number));
        let reply = backend
            .scripts
            .eval::<Reentered>(&call, deadline, context)
            .await?;
        in_flight.disarm();
        tries += 1;
        // Spent: a later re-entry of this owner (another scope level's) landed first, so this
        // number can never count; nothing was taken, and a new number is asked again.
        if reply.reply != Reentered::Spent || tries == SPENT_TRIES {
            break (reply.reply, number);
        }
    };
    match reply {
        Reentered::Entered => {
            tracing::debug!(lock = %keys.name, "re-entered");
            let release = Box::new(Release {
                layout,
                keys: Arc::clone(&keys),
                owner: Arc::clone(owner),
                hold: number,
                abandon_after: false,
            });
            // The re-entry shares the outer hold's renewal: renewed as long as either is held.
            let renewal = held.holder.renewal.as_ref().and_then(Weak::upgrade);
            let hold = Hold::new(Arc::clone(backend), release, renewal, Some(turn));
            Ok(LockGuard::new(
                hold,
                Arc::clone(&keys.name),
                held.holder.clone(),
                backend.runtime,
            ))
        }
        Reentered::WrongType => Err(keys.wrong_type(None)),
        Reentered::Lost | Reentered::Spent => Err(LockError::LeaseLost {
            name: keys.name.to_string(),
        }),
    }
}

/// How many numbers a re-entry tries, each found spent by a later re-entry of its owner that
/// landed first, before it gives up. Re-entries of one owner run one at a time per scope level,
/// so one more try is all it takes unless a guard's scope runs beside its own release.
const SPENT_TRIES: u32 = 3;
