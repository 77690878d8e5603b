//! The Lua scripts' resend and give-up contract, driven directly: a request resent after a
//! timeout or a reconnect must not change the outcome (Redisson issues 7367, 4822, 4178 and
//! 4871), and a request whose caller gave up must take nothing when a late copy arrives.

use std::time::Duration;

use lock_runtime::testing::scripts::{fair_lock, lock_script};
use lock_tests::{RedisServer, locks::lock_key, server_version, unique_name};

/// The lock's script `file` as the client sends it to the kit's server: without its `#!lua`
/// line before Redis 7.0, which cannot compile one.
fn script(file: &str) -> &'static str {
    let source = lock_script(file).unwrap_or_else(|| panic!("lock-runtime has no script {file}"));
    match source
        .strip_prefix("#!")
        .and_then(|rest| rest.split_once('\n'))
    {
        Some((_, body)) if !server_version().redis_7_or_newer() => body,
        _ => source,
    }
}

/// The fair lock's `acquire.lua`, which takes the reentrant lock's KEYS and ARGV.
fn fair_acquire_script() -> &'static str {
    fair_lock()
        .into_iter()
        .find(|(name, _)| *name == "acquire.lua")
        .map(|(_, source)| source)
        .expect("the fair lock's acquire.lua")
}

/// Lifetime of the fencing state passed to the scripts: 10 minutes.
const FENCE_IDLE_MS: &str = "600000";
const MEMO_MS: &str = "10000";
/// A queued waiter's liveness, and the longest it sleeps between tries.
const LIVENESS_MS: &str = "30000";
const REFRESH_MS: &str = "10000";
/// Who takes the holds, as a client of the runtime records it: its name and its clock in ms.
const TAKEN_BY: &str = "scripts-test 1796548183609";

struct Keys {
    lock: String,
    fence: String,
    channel: String,
    queue: String,
    alive: String,
    wants: String,
    lost: String,
}

impl Keys {
    fn abandoned(&self, owner: &str) -> String {
        format!("{}:abandoned:{owner}", self.lock)
    }
}

fn keys(name: &str) -> Keys {
    let lock = lock_key(name);
    Keys {
        fence: format!("{lock}:fence"),
        channel: format!("{lock}:unlock"),
        queue: format!("{lock}:queue"),
        alive: format!("{lock}:alive"),
        wants: format!("{lock}:wants"),
        lost: format!("{lock}:lost"),
        lock,
    }
}

/// `acquire.lua`'s status and value (a busy reply's server time and holder left out), for a copy
/// with no earlier copy on its way.
fn acquire(server: &RedisServer, keys: &Keys, owner: &str, lease_ms: &str) -> (i64, i64) {
    acquire_marking(server, keys, owner, lease_ms, "0")
}

/// [`acquire`] for a copy that marks its owner for `mark_ms` as it takes or re-arms the hold.
fn acquire_marking(
    server: &RedisServer,
    keys: &Keys,
    owner: &str,
    lease_ms: &str,
    mark_ms: &str,
) -> (i64, i64) {
    let reply = acquire_reply(
        server,
        script("acquire.lua"),
        keys,
        (owner, "0"),
        (lease_ms, "0"),
        mark_ms,
    );
    status_and_value(&reply)
}

/// The first two items of an acquire script's reply, both integers.
fn status_and_value(reply: &[redis::Value]) -> (i64, i64) {
    let int = |value: &redis::Value| match value {
        redis::Value::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    };
    (int(&reply[0]), int(&reply[1]))
}

/// The whole reply of the acquire script `source` (the reentrant or the fair lock's) for
/// `owner`, which says whether it queued on an earlier try ("1") or not ("0"), for a lease and
/// the lease of a direct hand-over ("0": none), as a list (see `acquire_reply_items`).
fn acquire_reply(
    server: &RedisServer,
    source: &str,
    keys: &Keys,
    (owner, queued): (&str, &str),
    (lease_ms, grant_ms): (&str, &str),
    mark_ms: &str,
) -> Vec<redis::Value> {
    super::acquire_reply_items(server.cmd(&[
        "EVAL",
        source,
        "7",
        &keys.lock,
        &keys.fence,
        &keys.abandoned(owner),
        &keys.queue,
        &keys.alive,
        &keys.wants,
        &keys.lost,
        owner,
        TAKEN_BY,
        lease_ms,
        LIVENESS_MS,
        REFRESH_MS,
        grant_ms,
        queued,
        mark_ms,
    ]))
}

/// The fair lock's `acquire.lua`'s status and value, as [`acquire`].
fn fair_acquire(server: &RedisServer, keys: &Keys, (owner, queued): (&str, &str)) -> (i64, i64) {
    let reply = acquire_reply(
        server,
        fair_acquire_script(),
        keys,
        (owner, queued),
        ("10000", "0"),
        "0",
    );
    status_and_value(&reply)
}

/// Asserts that the lock's key is gone (`why` says what freed it, or why nothing took it).
fn assert_lock_gone(server: &RedisServer, keys: &Keys, why: &str) {
    let exists: i64 = server.cmd(&["EXISTS", &keys.lock]);
    assert_eq!(exists, 0, "{why}");
}

/// `reenter.lua`: re-entry `number` of `owner`.
fn reenter(server: &RedisServer, keys: &Keys, owner: &str, number: &str) -> i64 {
    server.cmd(&[
        "EVAL",
        script("reenter.lua"),
        "1",
        &keys.lock,
        owner,
        number,
    ])
}

/// `release.lua`: the hold numbered `hold` of `owner` ("0": its acquisition's), as the first
/// copy of its request (`token` "") or as a resend naming the owner's fencing token.
fn release(server: &RedisServer, keys: &Keys, owner: &str, hold: &str, token: &str) -> i64 {
    server.cmd(&[
        "EVAL",
        script("release.lua"),
        "7",
        &keys.lock,
        &keys.channel,
        &keys.fence,
        &keys.queue,
        &keys.alive,
        &keys.wants,
        &keys.lost,
        owner,
        token,
        hold,
    ])
}

/// `leave.lua` as an undo whose request may still be on its way: it marks the owner.
fn abandon(server: &RedisServer, keys: &Keys, owner: &str) -> i64 {
    server.cmd(&[
        "EVAL",
        script("leave.lua"),
        "8",
        &keys.lock,
        &keys.channel,
        &keys.abandoned(owner),
        &keys.fence,
        &keys.queue,
        &keys.alive,
        &keys.wants,
        &keys.lost,
        owner,
        MEMO_MS,
        "publish",
        FENCE_IDLE_MS,
    ])
}

/// `undo_reenter.lua`: undoes re-entry `number` of `owner`.
fn undo_reenter(server: &RedisServer, keys: &Keys, owner: &str, number: &str) -> i64 {
    server.cmd(&[
        "EVAL",
        script("undo_reenter.lua"),
        "7",
        &keys.lock,
        &keys.channel,
        &keys.fence,
        &keys.queue,
        &keys.alive,
        &keys.wants,
        &keys.lost,
        owner,
        number,
        "publish",
        FENCE_IDLE_MS,
    ])
}

/// `exec.lua`: exec `number` of `owner` (floor `floor`) writing `SET <lock>:data <value>`; its
/// status.
fn exec(server: &RedisServer, keys: &Keys, owner: &str, number: &str, floor: &str) -> i64 {
    let version = server
        .info_field("server", "redis_version")
        .expect("the server's version");
    let data = format!("{}:data", keys.lock);
    let reply: Vec<redis::Value> = server.cmd(&[
        "EVAL",
        script("exec.lua"),
        "2",
        &keys.lock,
        &format!("{}:leases", keys.lock),
        owner,
        "0",
        &version,
        "0",
        number,
        floor,
        "1",
        "3",
        "0",
        "SET",
        &data,
        number,
    ]);
    match reply.first() {
        Some(redis::Value::Int(status)) => *status,
        other => panic!("exec.lua's status: {other:?}"),
    }
}

/// `spend_exec.lua`: spends exec `number` of `owner` (floor `floor`); its status.
fn spend_exec(server: &RedisServer, keys: &Keys, owner: &str, number: &str, floor: &str) -> i64 {
    server.cmd(&[
        "EVAL",
        script("spend_exec.lua"),
        "1",
        &keys.lock,
        owner,
        number,
        floor,
    ])
}

fn holds(server: &RedisServer, keys: &Keys, owner: &str) -> Option<i64> {
    server.cmd(&["HGET", &keys.lock, owner])
}

fn pttl(server: &RedisServer, key: &str) -> i64 {
    server.cmd(&["PTTL", key])
}

#[test]
fn a_resent_fresh_acquisition_counts_once_returns_the_same_token_and_rearms_the_lease() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("resent-acquire"));

    let first = acquire(&server, &keys, "client:1", "10000");
    server.cmd::<i64>(&["PEXPIRE", &keys.lock, "2000"]);
    let resent = acquire(&server, &keys, "client:1", "10000");

    assert_eq!(first.0, 1, "acquired");
    assert_eq!(resent, first, "the resend answers like the first attempt");
    assert!(
        pttl(&server, &keys.lock) > 9_000,
        "the resend re-arms the lease it will be timed from"
    );
    assert_eq!(
        holds(&server, &keys, "client:1"),
        Some(1),
        "one hold, not two"
    );
    assert_eq!(release(&server, &keys, "client:1", "0", ""), 1);
    assert_lock_gone(&server, &keys, "a single release frees it");
}

#[test]
fn another_owner_is_refused_with_the_remaining_ttl() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("other-owner"));

    acquire(&server, &keys, "client:1", "10000");
    let (status, ttl) = acquire(&server, &keys, "client:2", "10000");

    assert_eq!(status, 0);
    assert!(
        ttl > 9_000 && ttl <= 10_000,
        "sleep at most the remaining TTL: {ttl}"
    );
    assert_eq!(holds(&server, &keys, "client:2"), None);
    let queued: Option<String> = server.cmd(&["ZSCORE", &keys.queue, "client:2"]);
    assert!(
        queued.is_some(),
        "the refused owner queues, to be woken by name"
    );
    for key in [&keys.queue, &keys.alive] {
        assert!(pttl(&server, key) > 0, "{key} expires");
    }
}

#[test]
fn tokens_increase_strictly_and_survive_the_loss_of_the_fencing_state() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("tokens"));
    let mut last = 0;
    for round in 0..5 {
        let owner = format!("client:{round}");
        let (status, token) = acquire(&server, &keys, &owner, "10000");
        assert_eq!(status, 1);
        assert!(token > last, "token {token} after {last}");
        assert_eq!(
            token % 2,
            1,
            "a token is odd: the state is odd while a hold lasts"
        );
        let fence_ttl = pttl(&server, &keys.fence);
        assert!(
            fence_ttl > 0,
            "the fencing state carries a TTL ({fence_ttl})"
        );
        assert_eq!(release(&server, &keys, &owner, "0", ""), 1);
        let fence: i64 = server.cmd(&["GET", &keys.fence]);
        assert_eq!(
            fence,
            token + 1,
            "the release counts the state one past the token"
        );
        if round == 2 {
            // As if the fencing state had lived out its TTL.
            server.cmd::<i64>(&["DEL", &keys.fence]);
        }
        last = token;
    }
}

#[test]
fn a_resent_reentry_counts_once() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("resent-reentry"));

    acquire(&server, &keys, "client:1", "10000");
    let fence: i64 = server.cmd(&["GET", &keys.fence]);
    assert_eq!(reenter(&server, &keys, "client:1", "1"), 1);
    assert_eq!(reenter(&server, &keys, "client:1", "1"), 1);

    assert_eq!(
        holds(&server, &keys, "client:1"),
        Some(2),
        "two holds, not three"
    );
    let after: i64 = server.cmd(&["GET", &keys.fence]);
    assert_eq!(after, fence, "re-entry does not move the fencing state");
}

#[test]
fn a_reentry_into_a_lost_lock_is_refused() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("lost-reentry"));

    assert_eq!(reenter(&server, &keys, "client:1", "1"), 0);
    assert_lock_gone(&server, &keys, "nothing taken");
}

/// A resend of a release (it names the owner's fencing token; the first copy names none)
/// answers what the first copy did, from the lock's own keys: with the owner still holding the
/// lock, the owner's holds; once the lock is free, the fencing state, which the release counted
/// one past the token. No key is written per request.
#[test]
fn a_resent_release_reports_the_first_attempts_result_and_counts_once() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("resent-release"));
    let token = acquire(&server, &keys, "client:1", "10000").1.to_string();
    reenter(&server, &keys, "client:1", "1");

    assert_eq!(
        release(&server, &keys, "client:1", "1", ""),
        2,
        "one hold left"
    );
    assert_eq!(
        release(&server, &keys, "client:1", "1", &token),
        2,
        "the resend says the same"
    );
    assert_eq!(
        holds(&server, &keys, "client:1"),
        Some(1),
        "decremented once"
    );

    assert_eq!(release(&server, &keys, "client:1", "0", ""), 1, "released");
    assert_eq!(
        release(&server, &keys, "client:1", "0", &token),
        1,
        "not `not held`"
    );
    let fence: i64 = server.cmd(&["GET", &keys.fence]);
    assert_eq!(
        fence.to_string(),
        format!("{}", token.parse::<i64>().expect("a token") + 1)
    );

    // The next owner takes the lock and releases it: the resend still answers released.
    let next = acquire(&server, &keys, "client:2", "10000").1;
    assert!(next > fence, "the next token is above the state");
    assert_eq!(release(&server, &keys, "client:2", "", ""), 1);
    assert_eq!(
        release(&server, &keys, "client:1", "0", &token),
        1,
        "answered from the fencing state"
    );
    let left: Vec<String> = server.cmd(&["KEYS", &format!("{}*", keys.lock)]);
    assert_eq!(
        left,
        std::slice::from_ref(&keys.fence),
        "no key per request"
    );
}

/// A copy of a release that lands late (a retired connection's bytes, up to ~15 minutes late)
/// finds the hold it names gone: it gives back nothing, whichever hold it named, and whichever
/// holds the owner has left.
#[test]
fn a_late_copy_of_a_release_gives_back_nothing() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("late-release"));
    let token = acquire(&server, &keys, "client:1", "10000").1.to_string();
    assert_eq!(reenter(&server, &keys, "client:1", "1"), 1);
    assert_eq!(reenter(&server, &keys, "client:1", "2"), 1);

    // A late copy of a first copy finds its hold gone and answers 0; a late resend, whose first
    // copy ran, answers what that copy did: either way, nothing is given back.
    assert_eq!(release(&server, &keys, "client:1", "1", ""), 2);
    assert_eq!(release(&server, &keys, "client:1", "1", ""), 0);
    assert_eq!(release(&server, &keys, "client:1", "1", &token), 2);
    // The acquisition's hold released while re-entry 2 is still held (its guard escaped).
    assert_eq!(release(&server, &keys, "client:1", "0", ""), 2);
    assert_eq!(release(&server, &keys, "client:1", "0", ""), 0);
    assert_eq!(release(&server, &keys, "client:1", "0", &token), 2);
    assert_eq!(
        holds(&server, &keys, "client:1"),
        Some(1),
        "re-entry 2's hold is left"
    );

    assert_eq!(release(&server, &keys, "client:1", "2", ""), 1, "freed");
    assert_lock_gone(&server, &keys, "the last hold given back frees the lock");
}

/// The release of an acquisition's hold whose owner never re-entered names it "" (its only
/// hold: no re-entry record is read). A resend answers what the first attempt did, a late copy
/// gives back nothing, and it is refused on a value of another type like any release.
#[test]
fn the_release_of_an_only_hold_counts_once_however_late_a_copy_lands() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("only-hold"));
    let token = acquire(&server, &keys, "client:1", "10000").1.to_string();
    assert_eq!(release(&server, &keys, "client:1", "", ""), 1, "freed");
    assert_lock_gone(&server, &keys, "the only hold given back frees the lock");
    assert_eq!(release(&server, &keys, "client:1", "", &token), 1, "resent");
    assert_eq!(
        release(&server, &keys, "client:1", "", ""),
        0,
        "a late copy of the first"
    );

    // The next owner's hold is left alone by late copies of the last owner's release.
    let next = acquire(&server, &keys, "client:2", "10000").1.to_string();
    assert_eq!(release(&server, &keys, "client:1", "", ""), 0);
    assert_eq!(release(&server, &keys, "client:1", "", &token), 1);
    assert_eq!(holds(&server, &keys, "client:2"), Some(1));
    assert_eq!(release(&server, &keys, "client:2", "", ""), 1);
    assert_lock_gone(&server, &keys, "the next owner released");

    let _: () = server.cmd(&["RPUSH", &keys.lock, "x"]);
    assert_eq!(
        release(&server, &keys, "client:3", "", ""),
        -1,
        "another type"
    );
    assert_eq!(
        release(&server, &keys, "client:2", "", &next),
        1,
        "a resend whose first copy ran, whatever is at the key now"
    );
    let _: () = server.cmd(&["DEL", &keys.lock]);
}

/// A late copy of a re-entry (at or below the highest number its owner's record has seen)
/// counts nothing, after its hold was released too; so does a re-entry overtaken by a later one
/// of the same owner, whose caller asks again under a new number.
#[test]
fn a_late_or_overtaken_reentry_counts_nothing() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("late-reentry"));
    acquire(&server, &keys, "client:1", "10000");

    assert_eq!(reenter(&server, &keys, "client:1", "1"), 1);
    assert_eq!(release(&server, &keys, "client:1", "1", ""), 2);
    assert_eq!(
        reenter(&server, &keys, "client:1", "1"),
        -2,
        "a copy after its release"
    );
    assert_eq!(holds(&server, &keys, "client:1"), Some(1));

    assert_eq!(reenter(&server, &keys, "client:1", "3"), 1);
    assert_eq!(reenter(&server, &keys, "client:1", "2"), -2, "overtaken");
    assert_eq!(holds(&server, &keys, "client:1"), Some(2));
}

#[test]
fn an_abandoned_acquisition_is_released_and_a_late_copy_takes_nothing() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("abandoned"));

    // The request ran before the caller gave up: the undo releases it.
    acquire(&server, &keys, "client:1", "10000");
    assert_eq!(abandon(&server, &keys, "client:1"), 1);
    assert_lock_gone(&server, &keys, "released by the undo");

    // The undo ran before the request arrived: the late copy takes nothing.
    assert_eq!(abandon(&server, &keys, "client:2"), 0);
    assert_eq!(acquire(&server, &keys, "client:2", "10000"), (-3, 0));
    assert_lock_gone(
        &server,
        &keys,
        "a late copy of an abandoned request takes nothing",
    );
    assert!(
        pttl(&server, &keys.abandoned("client:2")) > 0,
        "the mark expires"
    );
}

/// A resend of an acquisition that takes the lock marks the owner: while the hold lasts, any
/// copy re-arms it; once it is gone (released, or its lease ran out under the live guard), an
/// earlier copy landing late takes nothing, and a copy that marks nothing is left unmarked.
#[test]
fn a_resent_acquisition_marks_its_owner_so_a_late_copy_takes_nothing_once_the_hold_is_gone() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("marked"));

    let taken = acquire_marking(&server, &keys, "client:1", "200", "60000");
    assert_eq!(taken.0, 1, "the resend takes the lock");
    assert!(
        pttl(&server, &keys.abandoned("client:1")) > 200,
        "and marks the owner"
    );
    assert_eq!(
        acquire(&server, &keys, "client:1", "200"),
        taken,
        "an earlier copy landing while the hold lasts re-arms it"
    );

    let gone = std::time::Instant::now() + std::time::Duration::from_millis(250);
    while pttl(&server, &keys.lock) > 0 && std::time::Instant::now() < gone {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(pttl(&server, &keys.lock), -2, "the lease ran out");
    assert_eq!(
        acquire(&server, &keys, "client:1", "10000"),
        (-3, 0),
        "a copy landing after the hold is gone takes nothing"
    );
    assert_lock_gone(&server, &keys, "the late copy took nothing");

    acquire(&server, &keys, "client:2", "10000");
    assert_eq!(
        pttl(&server, &keys.abandoned("client:2")),
        -2,
        "a copy with no earlier copy on its way leaves no mark"
    );
}

#[test]
fn an_undone_reentry_gives_its_hold_back_once_and_a_late_copy_counts_nothing() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("undo-reentry"));
    acquire(&server, &keys, "client:1", "10000");

    // Counted, then undone (twice: a resend of the undo changes nothing).
    assert_eq!(reenter(&server, &keys, "client:1", "7"), 1);
    assert_eq!(undo_reenter(&server, &keys, "client:1", "7"), 1);
    assert_eq!(undo_reenter(&server, &keys, "client:1", "7"), 0);
    assert_eq!(holds(&server, &keys, "client:1"), Some(1));

    // Undone before it arrived: the late copy is refused.
    assert_eq!(undo_reenter(&server, &keys, "client:1", "8"), 0);
    assert_eq!(reenter(&server, &keys, "client:1", "8"), -2);
    assert_eq!(holds(&server, &keys, "client:1"), Some(1));

    // Nothing of it is kept outside the lock's hash.
    let lock_keys = server.keys(&format!("{}*", keys.lock));
    assert_eq!(
        lock_keys,
        vec![keys.lock.clone(), keys.fence.clone()],
        "re-entries and their undos leave no key of their own"
    );

    // The outer hold released meanwhile: the undo of the last hold frees the lock.
    assert_eq!(reenter(&server, &keys, "client:1", "9"), 1);
    assert_eq!(release(&server, &keys, "client:1", "0", ""), 2);
    assert_eq!(undo_reenter(&server, &keys, "client:1", "9"), 1);
    assert_lock_gone(&server, &keys, "the last hold given back frees the lock");
}

/// A lock-checked write runs once, however often and however late a copy of its request lands,
/// and never once its number is spent; the spend says whether it ran; the owner's record keeps
/// the numbers a client may still ask about (at or above the floor) and goes with the hold.
#[test]
fn an_exec_runs_once_and_never_after_its_number_is_spent() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("exec-numbers"));
    let data = || server.cmd::<Option<String>>(&["GET", &format!("{}:data", keys.lock)]);
    let record = || server.cmd::<Option<String>>(&["HGET", &keys.lock, "~x:c:1"]);
    assert_eq!(acquire(&server, &keys, "c:1", "10000").0, 1);

    assert_eq!(exec(&server, &keys, "c:1", "5", "5"), 1, "ran");
    assert_eq!(
        exec(&server, &keys, "c:1", "5", "5"),
        5,
        "a copy: ran before"
    );
    assert_eq!(exec(&server, &keys, "c:1", "3", "3"), 4, "overtaken: spent");
    assert_eq!(data().as_deref(), Some("5"), "only the first copy ran");
    assert_eq!(spend_exec(&server, &keys, "c:1", "5", "5"), 1, "it ran");

    assert_eq!(spend_exec(&server, &keys, "c:1", "7", "7"), 0, "not run");
    assert_eq!(spend_exec(&server, &keys, "c:1", "7", "7"), 0, "resent");
    assert_eq!(
        exec(&server, &keys, "c:1", "7", "7"),
        4,
        "spent: never runs"
    );
    assert_eq!(data().as_deref(), Some("5"));

    // Below the floor, numbers are forgotten; at or above it, kept while a caller may ask.
    assert_eq!(exec(&server, &keys, "c:1", "9", "9"), 1);
    assert_eq!(record().as_deref(), Some("9 9"));
    assert_eq!(exec(&server, &keys, "c:1", "10", "9"), 1);
    assert_eq!(record().as_deref(), Some("10 9 10"));
    assert_eq!(
        spend_exec(&server, &keys, "c:1", "9", "9"),
        1,
        "9 is still known"
    );
    assert_eq!(exec(&server, &keys, "c:1", "12", "12"), 1);
    assert_eq!(record().as_deref(), Some("12 12"));

    // Another owner's execs run nothing; nothing of an owner's outlives its hold.
    assert_eq!(exec(&server, &keys, "c:2", "13", "13"), 0);
    assert_eq!(spend_exec(&server, &keys, "c:2", "13", "13"), 2);
    assert_eq!(release(&server, &keys, "c:1", "0", ""), 1);
    assert_eq!(spend_exec(&server, &keys, "c:1", "12", "12"), 2, "not held");
    assert_lock_gone(&server, &keys, "the release frees the lock");
    let _: i64 = server.cmd(&["DEL", &format!("{}:data", keys.lock)]);
}

/// A value of another type at the lock's key is not ours: both acquires answer its type and
/// the release -1, without a TYPE on their common path (the hold's read fails with WRONGTYPE),
/// and nothing is written: no hold, no mark, no note. A resent release whose first copy ran
/// before the key changed type still answers what that copy did.
#[test]
fn a_value_of_another_type_is_refused_by_the_acquires_and_the_release_and_left_as_it_is() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("wrong-type"));
    let token = acquire(&server, &keys, "client:1", "10000").1.to_string();
    assert_eq!(release(&server, &keys, "client:1", "0", ""), 1);

    let _: i64 = server.cmd(&["RPUSH", &keys.lock, "not", "a", "lock"]);
    for source in [script("acquire.lua"), fair_acquire_script()] {
        let reply = acquire_reply(
            &server,
            source,
            &keys,
            ("client:2", "0"),
            ("10000", "0"),
            "60000",
        );
        assert_eq!(
            reply,
            vec![
                redis::Value::Int(-1),
                redis::Value::BulkString(b"list".to_vec())
            ],
            "the acquire names the type it found"
        );
    }
    assert_eq!(release(&server, &keys, "client:2", "0", ""), -1);
    assert_eq!(
        release(&server, &keys, "client:1", "0", &token),
        1,
        "a resend whose first copy ran answers what it did"
    );

    let list: Vec<String> = server.cmd(&["LRANGE", &keys.lock, "0", "-1"]);
    assert_eq!(list, ["not", "a", "lock"], "the value is left as it was");
    for key in [keys.abandoned("client:2"), keys.lost.clone()] {
        assert_eq!(pttl(&server, &key), -2, "{key}: nothing written");
    }
}

/// A release counts once and its resend answers what the first copy did from the fencing state,
/// read only when the hold is not found: here after another owner took the lock, whose hold the
/// resend leaves alone. A hold that ended without its release is noted as lost by the take that
/// finds it so, and its resend answers 0, as its first copy did; so does a resend whose hold was
/// lost with no take since. Nothing is written per request.
#[test]
fn a_resent_release_answers_from_the_fencing_state_and_leaves_the_next_owner_alone() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("resent-after-next"));
    let first = acquire(&server, &keys, "client:1", "10000").1.to_string();
    assert_eq!(release(&server, &keys, "client:1", "0", ""), 1);
    assert_eq!(acquire(&server, &keys, "client:2", "10000").0, 1);

    assert_eq!(
        release(&server, &keys, "client:1", "0", &first),
        1,
        "resent"
    );
    assert_eq!(holds(&server, &keys, "client:2"), Some(1), "untouched");

    // client:2's hold ends without its release (as its lease running out would end it).
    let second = server.cmd::<i64>(&["GET", &keys.fence]).to_string();
    let _: i64 = server.cmd(&["DEL", &keys.lock]);
    assert_eq!(release(&server, &keys, "client:2", "0", ""), 0, "not held");
    assert_eq!(
        release(&server, &keys, "client:2", "0", &second),
        0,
        "resent, no take since: the state still counts at its token"
    );
    let third = acquire(&server, &keys, "client:3", "10000").1;
    assert_eq!(
        third.to_string(),
        format!("{}", second.parse::<i64>().expect("a token") + 2),
        "the take noted the loss and counted past it"
    );
    let noted: Option<String> = server.cmd(&["ZSCORE", &keys.lost, &second]);
    assert_eq!(noted.as_deref(), Some(second.as_str()), "noted as lost");
    assert!(
        pttl(&server, &keys.lost) > pttl(&server, &keys.fence),
        "as long as the state"
    );
    assert_eq!(
        release(&server, &keys, "client:2", "0", &second),
        0,
        "resent after the next take: the note answers"
    );
    assert_eq!(
        release(&server, &keys, "client:1", "0", &first),
        1,
        "still released"
    );
    assert_eq!(release(&server, &keys, "client:3", "0", ""), 1);
    assert_lock_gone(&server, &keys, "released");
}

/// A marked owner takes nothing, whether the lock is free or another's, and does not queue:
/// the acquire tells the mark from the lock by the lock's PTTL.
#[test]
fn a_marked_owner_takes_nothing_and_does_not_queue_while_another_holds_the_lock() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("marked-busy"));
    assert_eq!(acquire(&server, &keys, "client:1", "10000").0, 1);

    assert_eq!(abandon(&server, &keys, "client:2"), 0);
    assert_eq!(acquire(&server, &keys, "client:2", "10000"), (-3, 0));
    let queued: Option<String> = server.cmd(&["ZSCORE", &keys.queue, "client:2"]);
    assert_eq!(queued, None, "a marked owner does not queue");
    assert_eq!(holds(&server, &keys, "client:1"), Some(1));

    assert_eq!(release(&server, &keys, "client:1", "0", ""), 1);
    assert_eq!(
        acquire(&server, &keys, "client:2", "10000"),
        (-3, 0),
        "free"
    );
    assert_lock_gone(&server, &keys, "nor does it take a free lock");
}

/// The fair lock's common path takes a free lock only when no queue exists: a free lock with a
/// live waiter queued goes to that waiter, not to a newcomer.
#[test]
fn a_free_fair_lock_goes_to_the_waiter_queued_not_to_a_newcomer() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("fair-free-queued"));
    assert_eq!(fair_acquire(&server, &keys, ("client:1", "0")).0, 1);
    assert_eq!(
        fair_acquire(&server, &keys, ("client:2", "0")).0,
        0,
        "queued"
    );
    // client:2 takes no direct hand-over: the release frees the lock and wakes it by name.
    assert_eq!(release(&server, &keys, "client:1", "0", ""), 1);
    assert_lock_gone(&server, &keys, "free, client:2's turn");

    assert_eq!(
        fair_acquire(&server, &keys, ("client:3", "0")).0,
        0,
        "the newcomer queues behind"
    );
    assert_eq!(fair_acquire(&server, &keys, ("client:2", "1")).0, 1);
    assert_eq!(holds(&server, &keys, "client:3"), None);
    let waiters: Vec<String> = server.cmd(&["ZRANGE", &keys.queue, "0", "-1"]);
    assert_eq!(waiters, ["client:3"], "client:2 left the queue");
}

/// The holder's record, "<client name> <ms since the Unix epoch>", is written as the acquiring
/// client made it (Redis reads no clock for it); a release that hands the lock over directly
/// times it by Redis's clock.
#[test]
fn the_holders_record_is_its_clients_and_a_hand_over_is_timed_by_redis() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("record"));
    let (status, _) = acquire(&server, &keys, "client:1", "10000");
    assert_eq!(status, 1);
    let record: Option<String> = server.cmd(&["HGET", &keys.lock, "~who"]);
    assert_eq!(record.as_deref(), Some(TAKEN_BY), "as the client made it");

    // A waiter of the fair lock that takes a direct hand-over is made the owner by the release:
    // its record is its client's name and the server's time of the release.
    let reply = acquire_reply(
        &server,
        fair_acquire_script(),
        &keys,
        ("client:2", "0"),
        ("10000", "10000"),
        "0",
    );
    assert_eq!(status_and_value(&reply).0, 0, "queued behind client:1");
    let before = server_ms(&server);
    assert_eq!(release(&server, &keys, "client:1", "0", ""), 1);
    let after = server_ms(&server);
    let owner: i64 = server.cmd(&["HEXISTS", &keys.lock, "client:2"]);
    assert_eq!(owner, 1, "handed over");
    let record: String = server.cmd(&["HGET", &keys.lock, "~who"]);
    let (name, at) = record.rsplit_once(' ').expect("a name and a time");
    assert_eq!(name, "scripts-test");
    let at: u64 = at.parse().expect("ms");
    assert!(
        (before..=after).contains(&at),
        "{before} <= {at} <= {after}"
    );
}

/// The server's clock in ms.
fn server_ms(server: &RedisServer) -> u64 {
    let (seconds, micros): (u64, u64) = server.cmd(&["TIME"]);
    seconds * 1000 + micros / 1000
}

/// A subscriber of `channel` on `server` (a connection of its own, subscribed when this
/// returns), whose reads give up after `timeout`.
fn subscriber(server: &RedisServer, channel: &str, timeout: Duration) -> redis::Connection {
    let client = redis::Client::open(server.url()).expect("a Redis URL");
    let mut connection = client.get_connection().expect("connect");
    connection
        .set_read_timeout(Some(timeout))
        .expect("a read timeout");
    // Not through `as_pubsub()`, whose guard unsubscribes when it is dropped.
    let confirmed: redis::Value = redis::cmd("SUBSCRIBE")
        .arg(channel)
        .query(&mut connection)
        .expect("SUBSCRIBE");
    assert!(matches!(confirmed, redis::Value::Array(_)), "{confirmed:?}");
    connection
}

/// The payload of the next message `connection` (a [`subscriber`]) receives within its
/// timeout, if any.
fn next_message(connection: &mut redis::Connection) -> Option<String> {
    let message: Vec<String> = redis::from_redis_value(connection.recv_response().ok()?)
        .expect("a message: [\"message\", channel, payload]");
    message.get(2).cloned()
}

/// A release names the waiter it wakes on the waiter's client's own channel of the lock
/// (`<channel>:<client id>`), which only that client subscribes to, so no other waiting process
/// receives it. Where nobody listens there (a client of a version before own channels, or not
/// subscribed yet), it names it on the lock's channel, which every waiting client listens on.
#[test]
fn a_waiter_is_woken_on_its_clients_own_channel_or_else_on_the_locks() {
    let server = RedisServer::start();
    let keys = keys(&unique_name("own-channel"));
    let quiet = Duration::from_millis(300);
    let mut shared = subscriber(&server, &keys.channel, quiet);
    let mut listening = subscriber(&server, &format!("{}:client-b", keys.channel), quiet);
    assert_eq!(acquire(&server, &keys, "client-a:1", "10000").0, 1);
    assert_eq!(
        acquire(&server, &keys, "client-b:2", "10000").0,
        0,
        "queued"
    );
    assert_eq!(
        acquire(&server, &keys, "client-c:3", "10000").0,
        0,
        "queued"
    );

    assert_eq!(release(&server, &keys, "client-a:1", "0", ""), 1);
    assert_eq!(
        next_message(&mut listening).as_deref(),
        Some("to:client-b:2")
    );

    // client-b takes the lock; client-c's client listens on no own channel.
    let taken = acquire_reply(
        &server,
        script("acquire.lua"),
        &keys,
        ("client-b:2", "1"),
        ("10000", "0"),
        "0",
    );
    assert_eq!(status_and_value(&taken).0, 1, "client-b takes the lock");
    assert_eq!(release(&server, &keys, "client-b:2", "0", ""), 1);
    // The first message on the lock's channel: client-b's wake-up was not sent there. (A read
    // that times out leaves its connection unusable, so each subscriber waits for nothing last.)
    assert_eq!(next_message(&mut shared).as_deref(), Some("to:client-c:3"));
    assert_eq!(next_message(&mut listening), None);
}
