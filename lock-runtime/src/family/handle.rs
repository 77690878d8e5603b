//! [`Handle`]: what every handle of the family holds and does alike, so that a primitive's
//! public handle is its documentation and one line per method; [`handle_methods!`] writes the
//! public methods the handles share, each with the docs its handle gives it.

use std::{borrow::Cow, future::Future, sync::Arc, time::Duration};

use once_cell::sync::Lazy;

use crate::{
    core::{backend::Backend, hub::Wake, keys::Keys, lua::LuaScript, meter::Label},
    error::LockError,
    family::{
        acquisition::{self, Taken},
        flavor::{Flavor, Layout},
        guard::LockGuard,
        replies::{ForceUnlocked, Holders},
        scripts::HOLDERS,
    },
};

/// One named resource of one client, with the label its measurements carry: cheap to clone,
/// holding nothing in Redis. Each public handle ([`Lock`](crate::Lock),
/// [`Semaphore`](crate::Semaphore), …) wraps one and names its own [`Flavor`] and [`Layout`].
#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) backend: Arc<Backend>,
    pub(crate) name: Arc<str>,
    pub(crate) label: Label,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("client", self.backend.ids.client())
            .finish()
    }
}

impl Handle {
    /// The resource `name` of the client whose state is `backend`, unlabeled.
    pub(crate) fn new(backend: &Arc<Backend>, name: impl Into<Arc<str>>) -> Self {
        Self {
            backend: Arc::clone(backend),
            name: name.into(),
            label: Label::Unlabeled,
        }
    }

    /// This handle, its measurements labeled `label` (see `metrics_label` on the public
    /// handles).
    pub(crate) fn labeled(self, label: impl Into<Cow<'static, str>>) -> Self {
        Self {
            label: Label::given(label),
            ..self
        }
    }

    /// This handle as a member of a composite lock, which is measured as a whole.
    pub(crate) fn member(self) -> Self {
        Self {
            label: Label::Member,
            ..self
        }
    }

    /// The keys of this resource kept as `layout` says.
    pub(crate) fn keys(&self, layout: &Layout) -> Result<Keys, LockError> {
        layout.keys(&self.backend, &self.name)
    }

    /// Waits up to `wait` for a hold of `flavor` (or re-enters the current scope's), with a
    /// fixed `lease` or in watchdog mode: a handle's `acquire` and `try_acquire`. Not an
    /// `async fn`, so it adds no state of its own to the future every waiting task holds. The
    /// future owns a clone of this handle (two reference counts) and borrows nothing.
    pub(crate) fn acquire(
        &self,
        flavor: &'static Flavor,
        wait: Duration,
        lease: Option<Duration>,
    ) -> impl Future<Output = Result<LockGuard, LockError>> + Send + 'static + use<> {
        let Self {
            backend,
            name,
            label,
        } = self.clone();
        acquisition::acquire_traced(flavor, backend, (name, label), wait, lease)
    }

    /// Waits up to `wait` for a fresh hold of `flavor` (never a re-entry), `argument` being the
    /// flavor's own last argument to its acquire script (a semaphore's number of permits). Not
    /// an `async fn`, so it adds no state of its own to the future every waiting task holds.
    pub(crate) fn acquire_fresh(
        &self,
        flavor: &'static Flavor,
        (wait, lease): (Duration, Option<Duration>),
        argument: Option<Arc<str>>,
    ) -> impl Future<Output = Result<Taken, LockError>> + Send + '_ {
        let resource = (&self.name, &self.label);
        acquisition::acquire_fresh(flavor, &self.backend, resource, (wait, lease), argument)
    }

    /// Whether anyone holds this resource kept as `layout` says.
    pub(crate) async fn is_locked(&self, layout: &Layout) -> Result<bool, LockError> {
        let backend = &self.backend;
        let keys = self.keys(layout)?;
        let exists = redis::cmd("EXISTS").arg(&keys.main).clone();
        let context = || format!("checking lock `{}`", keys.name);
        backend
            .in_context(backend.scripts.query(&exists, context))
            .await
    }

    /// Deletes the holds of this resource (kept as `layout` says) that are there when it asks,
    /// whoever holds them, and wakes every waiter: whoever tries first (the reentrant lock) or
    /// the head of the queue (the others) takes it, the others queue on. Returns whether it
    /// deleted a hold.
    ///
    /// Two steps, because a force-unlock is resent like any request, and a copy may land
    /// minutes later (DESIGN 3.2): `holders.lua` reads the owner ids holding the lock, then the
    /// layout's `force_unlock.lua` deletes the holds of those owners only
    /// ([`Handle::delete_holds_of`]). An owner id belongs to one acquisition, so a copy of the
    /// second step that lands after the lock was taken again finds none of its owners and
    /// deletes nothing. A hold taken between the two steps is left too (it came after the
    /// caller asked); no retry is needed.
    pub(crate) async fn force_unlock(&self, layout: &Layout) -> Result<bool, LockError> {
        let backend = &self.backend;
        let keys = self.keys(layout)?;
        let script = force_unlock_script(layout, &keys)?;
        let forcing = async {
            let mut read = HOLDERS.prepare_invoke(backend.scripts.calls());
            read.key(&keys.main);
            let context = || format!("force-unlocking lock `{}`", keys.name);
            let owners = match backend.scripts.eval(&read, None, context).await?.reply {
                Holders::Owners(owners) => owners,
                Holders::WrongType => return Err(keys.wrong_type(None)),
            };
            if owners.is_empty() {
                return Ok(false);
            }
            self.delete_holds_of(layout, script, &keys, &owners).await
        };
        backend.in_context(forcing).await
    }

    /// Deletes the hold of `owner` (an owner id as the resource's `info` shows it), kept as
    /// `layout` says, if it still holds the resource, and wakes every waiter as
    /// [`Handle::force_unlock`] does. Returns whether it deleted a hold: `false` when `owner`
    /// holds nothing here any more, whoever holds the resource now.
    pub(crate) async fn force_unlock_held_by(
        &self,
        layout: &Layout,
        owner: &str,
    ) -> Result<bool, LockError> {
        let keys = self.keys(layout)?;
        let script = force_unlock_script(layout, &keys)?;
        check_owner_id(&keys.name, owner)?;
        let owners = [owner.to_owned()];
        let deleting = self.delete_holds_of(layout, script, &keys, &owners);
        self.backend.in_context(deleting).await
    }

    /// The second step of a force-unlock: deletes the holds of `owners` found in the resource
    /// of `keys` (kept as `layout` says) with `script`, the layout's `force_unlock.lua`, whose
    /// reply is [`ForceUnlocked`], and wakes every waiter if it deleted one.
    async fn delete_holds_of(
        &self,
        layout: &Layout,
        script: &'static LuaScript,
        keys: &Keys,
        owners: &[String],
    ) -> Result<bool, LockError> {
        let backend = &self.backend;
        let mut force = script.prepare_invoke(backend.scripts.calls());
        force.key(&keys.main).key(keys.channel());
        layout
            .with_ended_holds(&mut force, keys)
            .arg(Wake::All.message())
            .arg(backend.hub.publish())
            .arg(owners);
        let context = || format!("force-unlocking lock `{}`", keys.name);
        match backend.scripts.eval(&force, None, context).await?.reply {
            ForceUnlocked::Deleted => Ok(true),
            ForceUnlocked::NotLocked => Ok(false),
            ForceUnlocked::WrongType => Err(keys.wrong_type(None)),
        }
    }
}

/// The `force_unlock.lua` of `layout`, or the error of a resource that cannot be force-unlocked.
fn force_unlock_script(layout: &Layout, keys: &Keys) -> Result<&'static LuaScript, LockError> {
    match layout.force_unlock {
        Some(script) => Ok(Lazy::force(script)),
        None => Err(LockError::misuse(format!(
            "`{}` cannot be force-unlocked",
            keys.name
        ))),
    }
}

/// Refuses `owner` unless it has the shape of an owner id (`<client id>:<number>`, see
/// `core/ids.rs`), so that no other field of the resource's hash (`writer`, a hold's record)
/// can be named as a hold and deleted.
fn check_owner_id(name: &str, owner: &str) -> Result<(), LockError> {
    let well_formed = owner.rsplit_once(':').is_some_and(|(client, number)| {
        uuid::Uuid::try_parse(client).is_ok() && number.parse::<u64>().is_ok_and(|n| n > 0)
    });
    if well_formed {
        Ok(())
    } else {
        Err(LockError::invalid_argument(format!(
            "cannot force-unlock `{name}` held by `{owner}`: not an owner id (`<client id>:<number>`, \
             as the lock's info shows its holders)"
        )))
    }
}

/// Writes, inside the `impl` of a public handle (a struct whose `handle` field is a [`Handle`]),
/// the methods the handles of the family have alike: each is one call on the [`Handle`], and
/// keeps the docs its handle gives it, since what it waits for, its errors and its examples
/// differ from one handle to the next. Each method is named with what it takes of the
/// primitive, in the order they are to be listed:
///
/// ```text
/// impl Lock {
///     handle_methods! {
///         new;
///         metrics_label;
///         /// The lock's name.
///         name;
///         /// Waits as long as it takes for the lock, ...
///         acquire(REENTRANT);
///         /// Waits at most `wait` for the lock, ...
///         try_acquire(REENTRANT);
///         /// Whether anyone holds the lock now, ...
///         is_locked(ONE_OWNER);
///         /// Deletes the lock whoever holds it, ...
///         force_unlock(ONE_OWNER);
///         /// Deletes the lock if the owner named still holds it, ...
///         force_unlock_held_by(ONE_OWNER);
///     }
/// }
/// ```
///
/// `new` is the constructor the client calls (the client's state, the name); `metrics_label`
/// is documented here, alike for every handle; `acquire` and `try_acquire` take a hold of the
/// `Flavor` named, `is_locked`, `force_unlock` and `force_unlock_held_by` look at or delete the
/// holds kept as the `Layout` named says.
///
/// `acquire` and `try_acquire` return the future of [`Handle::acquire`] rather than await it in
/// an `async fn`, which would add its arguments and its own state to the future every waiting
/// task carries.
macro_rules! handle_methods {
    () => {};
    (new; $($rest:tt)*) => {
        pub(crate) fn new(
            backend: &::std::sync::Arc<$crate::core::backend::Backend>,
            name: String,
        ) -> Self {
            Self {
                handle: $crate::family::handle::Handle::new(backend, name),
            }
        }

        $crate::family::handle::handle_methods!($($rest)*);
    };
    (metrics_label; $($rest:tt)*) => {
        /// Labels this handle's metrics (cargo feature `metrics`) `label`, instead of
        /// `"unlabeled"`. Choose one label per kind of resource (`"stock"`), never one per name:
        /// every label value is a series the exporter keeps. Unused without the feature.
        /// `#[distribute_lock]` labels its lock with the key's template (`"stock:{product_id}"`).
        #[must_use]
        pub fn metrics_label(self, label: impl Into<::std::borrow::Cow<'static, str>>) -> Self {
            let handle = self.handle.labeled(label);
            Self { handle }
        }

        $crate::family::handle::handle_methods!($($rest)*);
    };
    ($(#[$doc:meta])* name; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn name(&self) -> &str {
            &self.handle.name
        }

        $crate::family::handle::handle_methods!($($rest)*);
    };
    ($(#[$doc:meta])* acquire($flavor:path); $($rest:tt)*) => {
        $(#[$doc])*
        pub fn acquire(
            &self,
        ) -> impl ::std::future::Future<
            Output = Result<$crate::family::guard::LockGuard, $crate::error::LockError>,
        > + Send + 'static + use<> {
            self.handle.acquire(&$flavor, ::std::time::Duration::MAX, None)
        }

        $crate::family::handle::handle_methods!($($rest)*);
    };
    ($(#[$doc:meta])* try_acquire($flavor:path); $($rest:tt)*) => {
        $(#[$doc])*
        pub fn try_acquire(
            &self,
            wait: ::std::time::Duration,
            lease: Option<::std::time::Duration>,
        ) -> impl ::std::future::Future<
            Output = Result<$crate::family::guard::LockGuard, $crate::error::LockError>,
        > + Send + 'static + use<> {
            self.handle.acquire(&$flavor, wait, lease)
        }

        $crate::family::handle::handle_methods!($($rest)*);
    };
    ($(#[$doc:meta])* is_locked($layout:path); $($rest:tt)*) => {
        $(#[$doc])*
        pub async fn is_locked(&self) -> Result<bool, $crate::error::LockError> {
            self.handle.is_locked(&$layout).await
        }

        $crate::family::handle::handle_methods!($($rest)*);
    };
    ($(#[$doc:meta])* force_unlock($layout:path); $($rest:tt)*) => {
        $(#[$doc])*
        pub async fn force_unlock(&self) -> Result<bool, $crate::error::LockError> {
            self.handle.force_unlock(&$layout).await
        }

        $crate::family::handle::handle_methods!($($rest)*);
    };
    ($(#[$doc:meta])* force_unlock_held_by($layout:path); $($rest:tt)*) => {
        $(#[$doc])*
        pub async fn force_unlock_held_by(
            &self,
            owner: &str,
        ) -> Result<bool, $crate::error::LockError> {
            self.handle.force_unlock_held_by(&$layout, owner).await
        }

        $crate::family::handle::handle_methods!($($rest)*);
    };
}
pub(crate) use handle_methods;
