//! Giving holds back: the release of one hold (its acquisition's or a re-entry's), and the undo
//! of a request whose caller gave up (a fresh acquisition, also one that took the lock but will
//! not hand it out, or a re-entry). Each is a [`GiveBack`] the core runs on drop, on
//! cancellation and in the background; the calls are built from the hold's [`Layout`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::core::{
    lua::{Calls, Invocation},
    script_path::Copies,
};
use futures_util::future::BoxFuture;
use redis::{RedisWrite, ToRedisArgs};

use crate::{
    core::{
        backend::Backend,
        hold::GiveBack,
        hub::PUBLISH,
        keys::{FENCE_TTL, Keys},
        lease::redis_millis,
        scope::Reentries,
    },
    error::LockError,
    family::{
        flavor::Layout,
        replies::{Released, Undone},
    },
};

/// Whether an undo marks the owner abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A copy of the request may still reach Redis (it was in flight, or resent): mark, so it
    /// takes nothing when it lands.
    Abandoned,
    /// Nothing of the owner's can still be on its way (a queued waiter whose wait ended): no
    /// mark, no key left behind.
    Nothing,
}

impl Mark {
    /// How long the mark lives, for the scripts (0: none).
    pub(crate) fn ttl(self, backend: &Backend) -> Duration {
        match self {
            Self::Abandoned => backend.config.abandoned_ttl(),
            Self::Nothing => Duration::ZERO,
        }
    }
}

/// The number of the hold an acquisition takes; each re-entry's is its own (see
/// `scripts/common.lua`).
pub(crate) const ACQUISITION_HOLD: u64 = 0;

/// Which hold of its owner a release gives back, as its call names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HoldNumber {
    /// The acquisition's hold of an owner that never re-entered, and never will (see
    /// [`Reentries`]): its only hold, so the script reads no re-entry record.
    Only,
    /// The hold of this number: [`ACQUISITION_HOLD`], or a re-entry's.
    Numbered(u64),
}

/// As the release scripts read it: "" for the only hold, else the number.
impl ToRedisArgs for HoldNumber {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        match self {
            Self::Only => out.write_arg(b""),
            Self::Numbered(number) => number.write_redis_args(out),
        }
    }
}

/// Which hold a [`Release`] gives back.
pub(crate) enum Held {
    /// The acquisition's: its owner's re-entries say, when the release is built, whether it is
    /// the only one ([`HoldNumber::Only`]).
    Acquisition(Arc<Reentries>),
    /// The re-entry of this number.
    Reentry(u64),
}

/// Releases one hold of an owner.
pub(crate) struct Release {
    pub(crate) layout: &'static Layout,
    pub(crate) keys: Arc<Keys>,
    pub(crate) owner: Arc<str>,
    /// The hold's token, which a resend of the release names (see `released_before` in
    /// `scripts/common.lua`): the owner's fencing token for the locks, a semaphore's count of
    /// its lone acquisition (0 for one kept in its hash); a Redlock may raise it (see
    /// [`GiveBack::fence_raised`]).
    pub(crate) token: AtomicU64,
    /// The hold. A copy of the release that lands late finds it gone and gives back nothing.
    pub(crate) hold: Held,
}

impl Release {
    /// The number the call names its hold by.
    fn number(&self) -> HoldNumber {
        match &self.hold {
            Held::Acquisition(reentries) if reentries.release_alone() => HoldNumber::Only,
            Held::Acquisition(_) => HoldNumber::Numbered(ACQUISITION_HOLD),
            Held::Reentry(number) => HoldNumber::Numbered(*number),
        }
    }
}

impl GiveBack for Release {
    fn name(&self) -> &str {
        &self.keys.name
    }

    fn give_back<'a>(&'a self, backend: &'a Backend) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async move {
            let keys = &self.keys;
            let context = || format!("releasing lock `{}`", keys.name);
            let (hold, publish) = (self.number(), backend.hub.publish());
            let token = self.token.load(Ordering::Relaxed);
            let calls = backend.scripts.calls();
            let call = |resend| {
                release_hold_call(
                    calls,
                    self.layout,
                    keys,
                    (&self.owner, hold),
                    resend,
                    publish,
                )
            };
            // The first copy names no token: whatever it finds, no copy ran before it.
            let copies = Copies::new(call(None), move || call(Some(token)));
            let released = backend
                .scripts
                .eval::<Released>(&copies, None, context)
                .await?;
            tracing::debug!(lock = %keys.name, outcome = ?released.reply, "released");
            match released.reply {
                Released::Freed | Released::StillHeld => Ok(()),
                Released::NotHeld => Err(LockError::NotHeld {
                    name: keys.name.to_string(),
                }),
                Released::WrongType => Err(keys.wrong_type(None)),
            }
        })
    }

    fn fence_raised(&self, token: u64) {
        self.token.store(token, Ordering::Relaxed);
    }
}

/// Undoes a request whose caller gave up: a fresh acquisition (`leave.lua`, also for a lock
/// taken but not handed out) or a re-entry (`undo_reenter.lua`). The call is built when it is
/// sent, so an undo armed for every waiting task costs a few pointers.
pub(crate) struct Undo {
    layout: &'static Layout,
    keys: Arc<Keys>,
    owner: Arc<str>,
    of: UndoOf,
}

/// Which request of its owner an [`Undo`] undoes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UndoOf {
    /// The fresh acquisition, marking the owner as the [`Mark`] says.
    Acquisition(Mark),
    /// The re-entry of this number: its hold, if it counted, is given back; if it did not land
    /// yet, the number is spent, so it never counts.
    Reentry(u64),
}

impl Undo {
    /// The undo of `owner`'s request `of` on the lock of `keys`, kept as `layout` says.
    pub(crate) fn new(
        layout: &'static Layout,
        keys: &Arc<Keys>,
        owner: &Arc<str>,
        of: UndoOf,
    ) -> Self {
        Self {
            layout,
            keys: Arc::clone(keys),
            owner: Arc::clone(owner),
            of,
        }
    }
}

impl GiveBack for Undo {
    fn name(&self) -> &str {
        &self.keys.name
    }

    fn give_back<'a>(&'a self, backend: &'a Backend) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async move {
            let Self {
                layout,
                keys,
                owner,
                of,
            } = self;
            let call = match *of {
                UndoOf::Acquisition(mark) => leave_call(
                    backend.scripts.calls(),
                    layout,
                    keys,
                    owner,
                    mark.ttl(backend),
                    backend.hub.publish(),
                ),
                UndoOf::Reentry(number) => {
                    let Some(script) = layout.undo_reenter else {
                        return Ok(());
                    };
                    let mut call = script.prepare_invoke(backend.scripts.calls());
                    call.key(&keys.main).key(keys.channel());
                    passing_on(layout, &mut call, keys)
                        .arg(owner.as_ref())
                        .arg(number)
                        .arg(backend.hub.publish())
                        .arg(redis_millis(FENCE_TTL));
                    call
                }
            };
            let context = || format!("undoing a request on lock `{}`", keys.name);
            let undone = backend.scripts.eval::<Undone>(&call, None, context).await?;
            tracing::debug!(lock = %keys.name, outcome = ?undone.reply, "request undone");
            Ok(())
        })
    }
}

/// The call of `layout`'s release, as `calls` sends it, giving back the hold of `owner` named
/// `hold`, naming the hold's token if it is a resend (`resend`: a copy that finds its hold gone
/// then answers what the first copy did from the lock's own keys, see `released_before` in
/// `scripts/common.lua`; the first copy names none); it wakes the next waiter with the command
/// `publish`.
pub(crate) fn release_hold_call(
    calls: &Calls,
    layout: &Layout,
    keys: &Keys,
    (owner, hold): (&str, HoldNumber),
    resend: Option<u64>,
    publish: &str,
) -> Invocation {
    let mut release = layout.release.prepare_invoke(calls);
    release.key(&keys.main).key(keys.channel());
    passing_on(layout, &mut release, keys).arg(owner);
    // Left out at their default, from the last (see the release scripts).
    let token = resend.map_or_else(String::new, |token| token.to_string());
    if publish != PUBLISH {
        release.arg(token).arg(hold).arg(publish);
    } else if hold != HoldNumber::Only {
        release.arg(token).arg(hold);
    } else if !token.is_empty() {
        release.arg(token);
    }
    release
}

/// The call of `layout`'s leave, as `calls` sends it: `owner` leaves the queue and gives back what
/// it took; a `mark_ttl` above zero marks it abandoned for that long. It wakes the next waiter with
/// the command `publish`.
fn leave_call(
    calls: &Calls,
    layout: &Layout,
    keys: &Keys,
    owner: &str,
    mark_ttl: Duration,
    publish: &str,
) -> Invocation {
    let mut leave = layout.leave.prepare_invoke(calls);
    leave
        .key(&keys.main)
        .key(keys.channel())
        .key(keys.abandoned(owner));
    passing_on(layout, &mut leave, keys)
        .arg(owner)
        .arg(redis_millis(mark_ttl))
        .arg(publish)
        .arg(redis_millis(FENCE_TTL));
    leave
}

/// Adds the keys a script that may free the lock needs to pass it on (`pass_on` in
/// `scripts/common.lua`): the fencing state, the queue, the liveness deadlines, what each waiter
/// wants, the per-hold leases if `layout` has them, and the notes of lost holds (a take may note
/// one, a resend reads them).
fn passing_on<'a>(layout: &Layout, call: &'a mut Invocation, keys: &Keys) -> &'a mut Invocation {
    call.key(keys.fence())
        .key(keys.queue())
        .key(keys.alive())
        .key(keys.wants());
    layout.with_leases(call, keys).key(keys.lost())
}
