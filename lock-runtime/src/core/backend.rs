//! What a client shares with every handle and guard made from it: its ids, settings, script
//! path, hub and watchdog, the background runtime they run on, and what Redis said of its
//! commands.
//!
//! `LockClient` is an `Arc` of this; the core's modules take a `&Backend` rather than the client,
//! so they never depend on the public handle types built on top of them.

use std::{future::Future, sync::Arc};

use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

use crate::{
    core::{
        commands::CommandTable, hub::Hub, ids::Ids, keys::Keys, script_path::ScriptPath,
        watchdog::Watchdog,
    },
    error::LockError,
    transport::{
        background::{Background, InContext, in_context},
        config::Config,
    },
};

/// The shared state of one client.
pub(crate) struct Backend {
    pub(crate) ids: Ids,
    pub(crate) config: Config,
    pub(crate) runtime: &'static Background,
    pub(crate) scripts: Arc<ScriptPath>,
    pub(crate) hub: Hub,
    pub(crate) watchdog: Watchdog,
    /// What the server said of the commands of lock-checked writes, read as they come.
    pub(crate) commands: CommandTable,
    /// The task that notices a runtime of the application's shut down, when the client runs
    /// on one (see `transport/background.rs`); it ends with the client.
    pub(crate) _runtime_watch: Option<AbortOnDropHandle<()>>,
    /// How many tasks of [`Backend::spawn`] are running, for [`Backend::flushed`].
    pub(crate) running: watch::Sender<usize>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("client_id", self.ids.client())
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// The keys of resource `name` under this client's prefix, or why the name cannot be used.
    pub(crate) fn keys(&self, name: &Arc<str>) -> Result<Keys, LockError> {
        Keys::new(&self.config.key_prefix, name)
    }

    /// Polls `future` in the context of the runtime the client's timers belong to (see
    /// [`Background::timers`]), so they work whatever executor (or Tokio runtime, short-lived or
    /// not) the caller runs on. Its requests go through the script path, which polls them in the
    /// context of the client's own runtime.
    pub(crate) fn in_context<F: Future>(&self, future: F) -> InContext<F> {
        in_context(self.runtime.timers(), future)
    }

    /// Runs `task` on the background runtime, to its end, whatever happens to the caller.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let running = Running::start(&self.running);
        self.runtime.handle().spawn(async move {
            task.await;
            drop(running);
        });
    }

    /// Completes once no task of [`Backend::spawn`] runs: every release, undo and spend this
    /// client was running in the background has ended, and those they started too (a task
    /// counts from before it is spawned until it ends).
    pub(crate) fn flushed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut running = self.running.subscribe();
        async move {
            // The sender lives as long as the client, which the caller holds.
            let _ = running.wait_for(|&count| count == 0).await;
        }
    }
}

/// Counts one task of [`Backend::spawn`] while it exists: dropped when it ends, and also when
/// its runtime shuts down before (the task is then dropped unfinished, and nothing waits for it
/// any more).
struct Running(watch::Sender<usize>);

impl Running {
    fn start(count: &watch::Sender<usize>) -> Self {
        count.send_modify(|count| *count += 1);
        Self(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count = count.saturating_sub(1));
    }
}
