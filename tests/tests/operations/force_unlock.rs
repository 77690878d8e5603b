//! `force_unlock` deletes the holds that are there when it asks, never a later one: not when it
//! races a new acquisition, and not when a copy of its request, resent after a timeout, reaches
//! Redis minutes later (DESIGN 3.2, "a copy counts once, however late"), after the lock was
//! taken again. For every lock of the family, and for several readers of a read-write lock.
//!
//! The client that force-unlocks talks to Redis through a [`TcpProxy`] with the default
//! settings: [`TcpProxy::hold_connections`] keeps a request on the connection it was sent on,
//! the client gets no reply within its response timeout (3 s), resends on a new connection, and
//! [`TcpProxy::release_held`] delivers the first copy after another holder took the lock.

use std::time::Duration;

use lock_runtime::{LockClient, LockError, LockGuard};
use lock_tests::{
    RedisServer, TcpProxy,
    late::deliver_held,
    locks::{Family, command_calls, eventually, for_each_family},
    unique_name,
};

/// How long a holder waits for the lock: it is free, or freed by the force-unlock.
const WAIT: Duration = Duration::from_secs(10);

/// A lease that outlasts the test: the holders send nothing while the force-unlock runs.
const LEASE: Duration = Duration::from_secs(60);

/// One lock of `family` on a server of its own: `forcer` force-unlocks it through the proxy,
/// `holders` (straight to Redis) hold it.
struct Setup {
    family: Family,
    server: RedisServer,
    proxy: TcpProxy,
    forcer: LockClient,
    holders: LockClient,
    name: String,
}

impl Setup {
    /// Starts the server and the proxy and connects both clients; the forcer force-unlocks a
    /// held lock once, so Redis has its scripts (a late copy of an `EVALSHA` of a script Redis
    /// never saw would do nothing, and hide what it does).
    async fn new(family: Family, prefix: &str) -> Self {
        let server = RedisServer::start();
        let proxy = TcpProxy::start(server.port()).await;
        let forcer = LockClient::connect(&proxy.url()).await.expect("connect");
        let holders = LockClient::connect(&server.url()).await.expect("connect");
        let setup = Self {
            family,
            name: unique_name(prefix),
            server,
            proxy,
            forcer,
            holders,
        };
        let warm_up = unique_name("warm-up");
        let held = setup.hold(&warm_up).await;
        assert!(
            family
                .force_unlock(&setup.forcer, &warm_up)
                .await
                .expect("warm-up force-unlock"),
            "{family:?}: warm-up: nothing to force-unlock"
        );
        // Released now, not in the background later: nothing but the force-unlock under test
        // runs a script from here on.
        let released = held.unlock().await;
        assert!(
            released.as_ref().is_err_and(|err| err.is_not_held()),
            "{family:?}: warm-up: {released:?}"
        );
        setup
    }

    /// A new hold of the lock `name` (for a read lock, one more reader).
    async fn hold(&self, name: &str) -> LockGuard {
        self.family
            .try_acquire(&self.holders, name, WAIT, Some(LEASE))
            .await
            .unwrap_or_else(|err| panic!("{:?}: acquiring: {err}", self.family))
    }

    /// The holds the force-unlock is meant for: two readers of a read lock, one hold otherwise.
    async fn old_holds(&self) -> Vec<LockGuard> {
        let mut holds = vec![self.hold(&self.name).await];
        if self.family == Family::Read {
            holds.push(self.hold(&self.name).await);
        }
        holds
    }

    /// Force-unlocks the lock; it must find the old holds there.
    async fn force_unlock(&self) {
        let family = self.family;
        assert!(
            family
                .force_unlock(&self.forcer, &self.name)
                .await
                .unwrap_or_else(|err| panic!("{family:?}: force-unlock: {err}")),
            "{family:?}: the force-unlock found nothing to delete"
        );
    }

    /// Delivers the held copy once it is known to be held, and waits until Redis ran it.
    async fn deliver_late(&self, what: &str) {
        deliver_held(&self.proxy, &format!("{:?}: {what}", self.family)).await;
    }

    /// Panics unless `new` still holds the lock, alone, then releases it and checks nothing of
    /// the lock is left. The old guards go first: their releases find nothing of theirs.
    async fn assert_new_holder_kept(&self, old: Vec<LockGuard>, new: LockGuard) {
        let family = self.family;
        for guard in old {
            let released = guard.unlock().await;
            assert!(
                released.as_ref().is_err_and(|err| err.is_not_held()),
                "{family:?}: an old hold was not force-unlocked: {released:?}"
            );
        }
        assert_eq!(
            family.hold_counts(&self.server, &self.name),
            vec![1],
            "{family:?}: the new holder's hold should be left alone"
        );
        new.unlock()
            .await
            .unwrap_or_else(|err| panic!("{family:?}: the new holder lost its lock: {err}"));
        family.assert_released(&self.server, &self.name);
    }
}

/// The force-unlock's request stalls on its connection; the client times out and resends it on
/// a new one, which deletes the old holds. A new holder takes the lock; then the first copy
/// lands. Required: it deletes nothing: the new holder keeps the lock. Before the fix the late
/// copy deleted whatever held the name when it landed: the new holder's lock.
async fn late_copy_of_a_force_unlock(family: Family) {
    let setup = Setup::new(family, "late-force").await;
    let old = setup.old_holds().await;
    setup.proxy.hold_connections();
    setup.force_unlock().await;
    let new = setup.hold(&setup.name).await;

    setup.deliver_late("the force-unlock's request").await;

    setup.assert_new_holder_kept(old, new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_a_force_unlock_leaves_the_new_holder_alone() {
    for_each_family(Family::ALL, late_copy_of_a_force_unlock).await;
}

/// The same with the deletion itself stalled: the force-unlock read the holders at once (its
/// reply held back until the connection is held), then its deletion stalls, times out and is
/// resent. A reader that joins meanwhile keeps its hold through the resend (it came after the
/// force-unlock asked); an exclusive lock is taken once the resend freed it. Then the first copy
/// of the deletion lands. Required: the new holder keeps the lock.
async fn late_copy_of_the_deletion(family: Family) {
    let setup = Setup::new(family, "late-deletion").await;
    let old = setup.old_holds().await;
    let scripts_run = command_calls(&setup.server, &["fcall", "evalsha"]);
    setup.proxy.hold_replies(true);
    let ((), joined) = tokio::join!(setup.force_unlock(), async {
        assert!(
            eventually(WAIT, || command_calls(&setup.server, &["fcall", "evalsha"])
                > scripts_run)
            .await,
            "{family:?}: set-up: the force-unlock's read did not reach Redis"
        );
        // The read ran; its reply comes once the connection is held, and the deletion then
        // goes out on it.
        setup.proxy.hold_connections();
        setup.proxy.hold_replies(false);
        match family {
            Family::Read => Some(setup.hold(&setup.name).await),
            _ => None,
        }
    });
    let new = match joined {
        Some(reader) => reader,
        None => setup.hold(&setup.name).await,
    };

    setup.deliver_late("the deletion's first copy").await;

    setup.assert_new_holder_kept(old, new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_the_deletion_leaves_the_new_holder_alone() {
    for_each_family(Family::ALL, late_copy_of_the_deletion).await;
}

/// `force_unlock_held_by` deletes the hold of the owner it names and nothing else: not the
/// lock of a holder that came after that owner released (the operator decided on the one they
/// were shown), not another reader's hold.
async fn held_by_deletes_the_named_hold_only(family: Family) {
    let setup = Setup::new(family, "held-by").await;
    let (forcer, name) = (&setup.forcer, &setup.name);
    let old = setup.old_holds().await;
    let shown = family.owners(forcer, name).await.expect("owners");
    assert_eq!(shown.len(), old.len(), "{family:?}: {shown:?}");

    if family == Family::Read {
        assert!(
            family
                .force_unlock_held_by(forcer, name, &shown[0])
                .await
                .expect("force-unlock"),
            "{family:?}: the named reader's hold was there"
        );
        let left = family.owners(forcer, name).await.expect("owners");
        assert_eq!(
            left,
            shown[1..],
            "{family:?}: the other reader keeps its hold"
        );
        let mut released = Vec::new();
        for guard in old {
            released.push(guard.unlock().await);
        }
        assert_eq!(
            released
                .iter()
                .filter(|released| released.as_ref().is_err_and(LockError::is_not_held))
                .count(),
            1,
            "{family:?}: one reader's hold was taken away: {released:?}"
        );
        family.assert_released(&setup.server, name);
        return;
    }

    for guard in old {
        guard.unlock().await.expect("release");
    }
    let new = setup.hold(name).await;
    assert!(
        !family
            .force_unlock_held_by(forcer, name, &shown[0])
            .await
            .expect("force-unlock"),
        "{family:?}: the owner shown had released: nothing of its is left"
    );
    assert_eq!(
        family.hold_counts(&setup.server, name),
        vec![1],
        "{family:?}: the new holder keeps the lock"
    );
    let current = family.owners(forcer, name).await.expect("owners");
    assert!(
        family
            .force_unlock_held_by(forcer, name, &current[0])
            .await
            .expect("force-unlock"),
        "{family:?}: the current holder's hold was there"
    );
    let released = new.unlock().await;
    assert!(
        released.as_ref().is_err_and(LockError::is_not_held),
        "{family:?}: {released:?}"
    );
    family.assert_released(&setup.server, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_held_by_deletes_the_named_hold_only() {
    for_each_family(Family::ALL, held_by_deletes_the_named_hold_only).await;
}

/// A copy of a `force_unlock_held_by`, resent after a timeout, that lands after the lock was
/// taken again deletes nothing: it names the old owner only.
async fn late_copy_of_a_force_unlock_held_by(family: Family) {
    let setup = Setup::new(family, "late-held-by").await;
    let old = setup.old_holds().await;
    let owners = setup
        .family
        .owners(&setup.forcer, &setup.name)
        .await
        .expect("owners");
    setup.proxy.hold_connections();
    for owner in &owners {
        assert!(
            family
                .force_unlock_held_by(&setup.forcer, &setup.name, owner)
                .await
                .unwrap_or_else(|err| panic!("{family:?}: force-unlock: {err}")),
            "{family:?}: the hold of {owner} was there"
        );
    }
    let new = setup.hold(&setup.name).await;

    setup.deliver_late("the force-unlocks' requests").await;

    setup.assert_new_holder_kept(old, new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_copy_of_a_force_unlock_held_by_leaves_the_new_holder_alone() {
    for_each_family(Family::ALL, late_copy_of_a_force_unlock_held_by).await;
}

/// Anything but an owner id is refused before it is sent, and nothing is deleted: in
/// particular not the names of the other fields of a lock's hash (`writer`, a hold's record),
/// which the deletion would otherwise take for a hold.
async fn held_by_refuses_what_is_not_an_owner_id(family: Family) {
    let setup = Setup::new(family, "held-by-bad").await;
    let (forcer, name) = (&setup.forcer, &setup.name);
    let held = setup.hold(name).await;
    let owner = family.owners(forcer, name).await.expect("owners").remove(0);
    let client_id = owner.rsplit_once(':').expect("client id:number").0;
    for bad in [
        String::new(),
        "writer".to_owned(),
        format!("~who:{owner}"),
        format!("~r:{owner}"),
        client_id.to_owned(),
        format!("{client_id}:0"),
        format!("{client_id}:-1"),
        "not-a-client:1".to_owned(),
        format!("{owner} "),
    ] {
        let refused = family.force_unlock_held_by(forcer, name, &bad).await;
        assert!(
            refused.as_ref().is_err_and(LockError::is_invalid_argument),
            "{family:?}: {bad:?}: {refused:?}"
        );
    }
    assert_eq!(
        family.owners(forcer, name).await.expect("owners"),
        [owner],
        "{family:?}"
    );
    held.unlock().await.expect("still held");
    family.assert_released(&setup.server, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unlock_held_by_refuses_what_is_not_an_owner_id() {
    for_each_family(Family::ALL, held_by_refuses_what_is_not_an_owner_id).await;
}
