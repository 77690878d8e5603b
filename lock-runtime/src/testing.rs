//! For the workspace's own tests and benchmark (cargo feature `testing`): the Lua scripts of
//! every primitive as they are sent, calls built exactly as the reentrant lock builds them, and
//! the Redis names of every primitive's keys, from the runtime's own naming code. Not a public
//! API: it may change in any release.

/// The Lua scripts of the lock family, for tests that drive them directly and for the
/// benchmark, which pipelines them to measure Redis's own ceiling. Each file's header gives its
/// KEYS, ARGV and replies; each source is the script as `EVAL` runs it on every server, shared
/// files in
/// front (the runtime sends it as a Redis Function where it can).
pub mod scripts {
    use std::{sync::Arc, time::Duration};

    use once_cell::sync::Lazy;

    use crate::{
        core::{
            hub::PUBLISH,
            keys::Keys,
            lua::{Calls, Invocation, LuaScript},
        },
        error::LockError,
        family::{
            acquisition::{Queueing, acquire_call},
            flavor::ONE_OWNER,
            release::{HoldNumber, release_hold_call},
        },
        lock::REENTRANT,
        transport::{config::DEFAULT_WATCHDOG_TIMEOUT, connect::ServerFeatures},
    };

    /// A module's `SCRIPTS`.
    type Scripts = &'static [(&'static str, &'static Lazy<LuaScript>)];

    /// `(file name, source)` of every script of `tables`, each as `EVAL` runs it on every server
    /// (without its shebang line).
    fn sources(tables: &[Scripts]) -> Vec<(&'static str, &'static str)> {
        tables
            .iter()
            .flat_map(|table| table.iter())
            .map(|(file, script)| (*file, Lazy::force(script).source()))
            .collect()
    }

    /// The reentrant lock's scripts: the family's (the fair lock runs them too), its acquire,
    /// and the Redlock's fence raise.
    const LOCK: [Scripts; 3] = [
        crate::family::scripts::SCRIPTS,
        crate::lock::scripts::SCRIPTS,
        crate::multi::redlock::scripts::SCRIPTS,
    ];

    /// `(file name, source)` of every script of the reentrant lock: the family's (the fair lock
    /// runs them too), its acquire, and the Redlock's fence raise.
    pub fn lock() -> Vec<(&'static str, &'static str)> {
        sources(&LOCK)
    }

    /// `(file name, source)` of the fair lock's own scripts (its acquire; every other script it
    /// runs is the reentrant lock's).
    pub fn fair_lock() -> Vec<(&'static str, &'static str)> {
        sources(&[crate::fair_lock::scripts::SCRIPTS])
    }

    /// `(file name, source)` of every script of the read-write lock.
    pub fn read_write_lock() -> Vec<(&'static str, &'static str)> {
        sources(&[crate::rwlock::scripts::SCRIPTS])
    }

    /// `(file name, source)` of every script of the semaphore.
    pub fn semaphore() -> Vec<(&'static str, &'static str)> {
        sources(&[crate::semaphore::scripts::SCRIPTS])
    }

    /// `(file name, source)` of every script of the count-down latch.
    pub fn count_down_latch() -> Vec<(&'static str, &'static str)> {
        sources(&[crate::latch::scripts::SCRIPTS])
    }

    /// The source of the lock's script `file` (such as `"acquire.lua"`), if there is one.
    pub fn lock_script(file: &str) -> Option<&'static str> {
        lock()
            .into_iter()
            .find(|(name, _)| *name == file)
            .map(|(_, source)| source)
    }

    /// How a pipeline sends the lock's scripts: as a client of the runtime would on a server of
    /// `version` (`(major, minor)`): `FCALL` from Redis 7.0 on, `EVALSHA` before.
    #[derive(Debug, Clone)]
    pub struct Pipelined {
        calls: Arc<Calls>,
    }

    impl Pipelined {
        /// The calls a client of the runtime makes on a server of `version`.
        pub fn for_version(version: (u32, u32)) -> Self {
            let server = ServerFeatures {
                version: Some(version),
            };
            Self {
                calls: Arc::new(Calls::new(server, false)),
            }
        }

        /// Whether the scripts go out as `FCALL`.
        pub fn functions(&self) -> bool {
            self.calls.functions()
        }

        /// The commands that load the scripts [`pipe_acquire`] and [`pipe_release`] send
        /// (`FUNCTION LOAD`, or `SCRIPT LOAD`), to run once before the pipelines: a pipeline
        /// does not load what the server lacks. A `FUNCTION LOAD` of a library the server has
        /// fails with "already exists", which the caller may ignore.
        pub fn load_commands(&self) -> Vec<redis::Cmd> {
            [REENTRANT.acquire, ONE_OWNER.release]
                .into_iter()
                .map(|script| self.calls.load_command(script))
                .collect()
        }

        /// The command that loads the reentrant lock's script `file` (see [`lock`]) the way a
        /// client sends it, so that a test can have it in Redis before a request that must not
        /// stall on loading it; `None` if there is no such script.
        pub fn load_lock_script(&self, file: &str) -> Option<redis::Cmd> {
            LOCK.iter()
                .flat_map(|table| table.iter())
                .find(|(name, _)| *name == file)
                .map(|(_, script)| self.calls.load_command(script))
        }

        /// The commands that load every script of every primitive that tests drive (see
        /// [`lock`], [`fair_lock`], [`read_write_lock`], [`semaphore`], [`count_down_latch`]) the
        /// way a client sends them: so that a late copy of a request finds its script, as it
        /// would where other clients had run it.
        pub fn load_every_script(&self) -> Vec<redis::Cmd> {
            LOCK.iter()
                .chain(&[
                    crate::fair_lock::scripts::SCRIPTS,
                    crate::rwlock::scripts::SCRIPTS,
                    crate::semaphore::scripts::SCRIPTS,
                    crate::latch::scripts::SCRIPTS,
                ])
                .flat_map(|table| table.iter())
                .map(|(_, script)| self.calls.load_command(script))
                .collect()
        }

        fn acquire_invocation(
            &self,
            keys: &Keys,
            owner: &str,
            lease: Duration,
            client_name: &str,
        ) -> Invocation {
            // A queued waiter's liveness and refresh under a client with default settings.
            let queueing = Queueing {
                liveness: DEFAULT_WATCHDOG_TIMEOUT,
                refresh: DEFAULT_WATCHDOG_TIMEOUT / 3,
                queued: false,
                grant: Duration::ZERO,
                client_name,
            };
            acquire_call(
                (&self.calls, &REENTRANT),
                keys,
                owner,
                lease,
                queueing,
                None,
                Duration::ZERO,
            )
        }
    }

    /// Appends to `pipeline` the fresh acquisition of lock `name` (under key prefix `prefix`) by
    /// `owner`, for `lease`, recording `client_name` as the holder's client (see
    /// `LockClientBuilder::client_name`), sent as `calls` says. The scripts must be loaded
    /// first ([`Pipelined::load_commands`]): a pipeline does not load what the server lacks.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`] for a name the lock refuses.
    pub fn pipe_acquire(
        pipeline: &mut redis::Pipeline,
        calls: &Pipelined,
        prefix: &str,
        name: &str,
        owner: &str,
        lease: Duration,
        client_name: &str,
    ) -> Result<(), LockError> {
        let keys = Keys::new(prefix, &Arc::from(name))?;
        let call = calls.acquire_invocation(&keys, owner, lease, client_name);
        pipeline.add_command(calls.calls.command(&call).into_owned());
        Ok(())
    }

    /// Appends to `pipeline` the release of the hold of lock `name` that `owner` took, as the
    /// first copy of a release goes out, sent as `calls` says. Loaded scripts required, as for
    /// [`pipe_acquire`].
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidName`] for a name the lock refuses.
    pub fn pipe_release(
        pipeline: &mut redis::Pipeline,
        calls: &Pipelined,
        prefix: &str,
        name: &str,
        owner: &str,
    ) -> Result<(), LockError> {
        let keys = Keys::new(prefix, &Arc::from(name))?;
        // The bench runs on one Redis: classic `PUBLISH`.
        // The first copy of the release of an owner that never re-entered.
        let hold = (owner, HoldNumber::Only);
        let call = release_hold_call(&calls.calls, &ONE_OWNER, &keys, hold, None, PUBLISH);
        pipeline.add_command(calls.calls.command(&call).into_owned());
        Ok(())
    }
}

/// The Redis names of every primitive's keys and channels under a key prefix, as the runtime
/// derives them: every key of one name shares its hash tag `{prefix:name}`.
///
/// # Errors
///
/// Each function returns [`LockError::InvalidName`](crate::LockError::InvalidName) for a name
/// (or prefix) the runtime refuses: empty, or with braces.
pub mod keys {
    use std::sync::Arc;

    use crate::{
        core::keys::Keys, error::LockError, family::flavor::ONE_OWNER, latch, rwlock::RW,
        semaphore::SEM,
    };

    /// The keys of the reentrant and fair lock `name`.
    fn one_owner(prefix: &str, name: &str) -> Result<Keys, LockError> {
        ONE_OWNER.keys_under(prefix, &Arc::from(name))
    }

    /// The reentrant and the fair lock `name`'s hash (owner id -> hold count): `{prefix:name}`.
    pub fn lock(prefix: &str, name: &str) -> Result<String, LockError> {
        Ok(one_owner(prefix, name)?.main)
    }

    /// The fencing state of the lock `name` (the last token handed out): `{prefix:name}:fence`.
    pub fn fence(prefix: &str, name: &str) -> Result<String, LockError> {
        Ok(one_owner(prefix, name)?.fence().to_string())
    }

    /// The queue of the lock `name`'s waiters, by their first try: `{prefix:name}:queue`.
    pub fn queue(prefix: &str, name: &str) -> Result<String, LockError> {
        Ok(one_owner(prefix, name)?.queue().to_string())
    }

    /// The channel on which the releases of the lock `name` are announced:
    /// `{prefix:name}:unlock`.
    pub fn unlock_channel(prefix: &str, name: &str) -> Result<String, LockError> {
        Ok(one_owner(prefix, name)?.channel().to_string())
    }

    /// The read-write lock `name`'s hash: `{prefix:name}:rw`.
    pub fn read_write_lock(prefix: &str, name: &str) -> Result<String, LockError> {
        Ok(RW.keys_under(prefix, &Arc::from(name))?.main)
    }

    /// The per-hold leases of the read-write lock `name`: `{prefix:name}:rw:leases`.
    pub fn read_write_leases(prefix: &str, name: &str) -> Result<String, LockError> {
        Ok(RW
            .keys_under(prefix, &Arc::from(name))?
            .leases()
            .to_string())
    }

    /// The semaphore `name`'s hash: `{prefix:name}:sem`.
    pub fn semaphore(prefix: &str, name: &str) -> Result<String, LockError> {
        Ok(SEM.keys_under(prefix, &Arc::from(name))?.main)
    }

    /// The count-down latch `name`'s count: `{prefix:name}:latch`.
    pub fn latch(prefix: &str, name: &str) -> Result<String, LockError> {
        Ok(latch_keys(prefix, name)?.main)
    }

    /// The channel on which the count-down latch `name` announces it reached zero:
    /// `{prefix:name}:latch:unlock`.
    pub fn latch_channel(prefix: &str, name: &str) -> Result<String, LockError> {
        Ok(latch_keys(prefix, name)?.channel().to_string())
    }

    /// The keys of the count-down latch `name`.
    fn latch_keys(prefix: &str, name: &str) -> Result<Keys, LockError> {
        Ok(Keys::new(prefix, &Arc::from(name))?.part(latch::PART))
    }
}
