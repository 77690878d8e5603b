//! Everything of one name at one look: the lock (reentrant or fair: one set of keys), the
//! read-write lock, the semaphore and the count-down latch of that name, each read by its own
//! `info()`. A name may be any of them, or several at once (their keys are apart), so `inspect`
//! and `watch` look at all four and show those that exist.

use std::collections::BTreeSet;

use lock_runtime::{
    LatchInfo, LockClient, LockError, LockHolder, LockInfo, PermitHolder, PrimitiveKind,
    ReadWriteLockInfo, SemaphoreInfo,
};

/// One look at every primitive of a name.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) lock: LockInfo,
    pub(crate) rw: ReadWriteLockInfo,
    pub(crate) semaphore: SemaphoreInfo,
    pub(crate) latch: LatchInfo,
}

impl Snapshot {
    /// Looks at every primitive named `name`: four read-only requests, one after the other (each
    /// snapshot is consistent in itself, not with the others).
    pub(crate) async fn look(client: &LockClient, name: &str) -> Result<Self, LockError> {
        Ok(Self {
            lock: client.lock(name).info().await?,
            rw: client.read_write_lock(name).info().await?,
            semaphore: client.semaphore(name).info().await?,
            latch: client.count_down_latch(name).info().await?,
        })
    }

    /// The name looked at.
    pub(crate) fn name(&self) -> &str {
        self.lock.name()
    }

    /// Whether the primitive of `kind` exists now: a lock or read-write lock held or waited
    /// for, a semaphore whose permits were set (or that is held or waited for), a latch set.
    pub(crate) fn exists(&self, kind: PrimitiveKind) -> bool {
        match kind {
            PrimitiveKind::Lock => lock_exists(&self.lock),
            PrimitiveKind::ReadWriteLock => rw_exists(&self.rw),
            PrimitiveKind::Semaphore => semaphore_exists(&self.semaphore),
            PrimitiveKind::CountDownLatch => self.latch.is_set(),
            _ => false,
        }
    }

    /// The kinds that exist now, in a fixed order.
    pub(crate) fn kinds(&self) -> Vec<PrimitiveKind> {
        KINDS
            .into_iter()
            .filter(|&kind| self.exists(kind))
            .collect()
    }

    /// The ids of every hold now, of every kind: lock owners, read and write owners, permit
    /// ids. A new one is a new acquisition (a hand-off, for `watch`).
    pub(crate) fn holds(&self) -> BTreeSet<String> {
        let mut holds = BTreeSet::new();
        holds.extend(self.lock.holder().map(|holder| holder.owner().to_owned()));
        holds.extend(self.rw.writer().map(|holder| holder.owner().to_owned()));
        holds.extend(self.rw.readers().iter().map(|h| h.owner().to_owned()));
        holds.extend(self.semaphore.holders().iter().map(|h| h.id().to_owned()));
        holds
    }

    /// Who holds anything now, by client name (the owner id when none was recorded), in the
    /// order of [`holds`](Self::holds)' kinds; empty when nothing is held.
    pub(crate) fn holder_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        names.extend(self.lock.holder().map(who));
        names.extend(self.rw.writer().map(who));
        names.extend(self.rw.readers().iter().map(who));
        names.extend(self.semaphore.holders().iter().map(permit_holder));
        names
    }

    /// What `watch` compares from one look to the next: who holds what (owners, holds,
    /// permits), who waits, a semaphore's total and a latch's count. Times and leases move on
    /// their own and are not changes.
    pub(crate) fn watched(&self) -> Vec<String> {
        let mut facts = Vec::new();
        if let Some(holder) = self.lock.holder() {
            facts.push(format!("lock {} {}", holder.owner(), holder.hold_count()));
        }
        facts.push(format!("lock waiters {:?}", self.lock.queue()));
        facts.push(format!("lock waiting {}", self.lock.waiters()));
        for (role, holder) in self
            .rw
            .writer()
            .map(|holder| ("writer", holder))
            .into_iter()
            .chain(self.rw.readers().iter().map(|holder| ("reader", holder)))
        {
            facts.push(format!("{role} {} {}", holder.owner(), holder.hold_count()));
        }
        facts.push(format!("rw waiting {}", self.rw.waiters()));
        for waiter in self.rw.queue() {
            facts.push(format!(
                "rw waiter {} {}",
                waiter.owner(),
                waiter.wants_write()
            ));
        }
        facts.push(format!("total {:?}", self.semaphore.total_permits()));
        for holder in self.semaphore.holders() {
            facts.push(format!("permit {} {}", holder.id(), holder.permits()));
        }
        facts.push(format!("sem waiting {}", self.semaphore.waiters()));
        facts.push(format!("count {}", self.latch.count()));
        facts
    }
}

/// Every kind, in the order they are shown.
pub(crate) const KINDS: [PrimitiveKind; 4] = [
    PrimitiveKind::Lock,
    PrimitiveKind::ReadWriteLock,
    PrimitiveKind::Semaphore,
    PrimitiveKind::CountDownLatch,
];

fn lock_exists(info: &LockInfo) -> bool {
    info.is_held() || info.waiters() > 0
}

fn rw_exists(info: &ReadWriteLockInfo) -> bool {
    info.is_locked() || info.waiters() > 0
}

fn semaphore_exists(info: &SemaphoreInfo) -> bool {
    info.total_permits().is_some() || info.acquisitions() > 0 || info.waiters() > 0
}

/// The holder's client name, or its owner id when it recorded none.
pub(crate) fn who(holder: &LockHolder) -> String {
    match holder.client_name() {
        Some(name) => name.to_owned(),
        None => format!("owner {} (no client name recorded)", holder.owner()),
    }
}

/// A semaphore's holder's client name, or its permit id when it recorded none.
pub(crate) fn permit_holder(holder: &PermitHolder) -> String {
    match holder.client_name() {
        Some(name) => name.to_owned(),
        None => format!("permit {} (no client name recorded)", holder.id()),
    }
}
