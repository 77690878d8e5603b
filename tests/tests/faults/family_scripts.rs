//! The read-write lock's and the semaphore's scripts driven directly: like the reentrant lock's
//! (`scripts.rs`), a request resent after a timeout or a reconnect must not change the outcome
//! (a hold counted once, a release answering what its first attempt did), and a late copy of a
//! request whose caller gave up must take nothing.

use lock_runtime::testing::scripts::{read_write_lock, semaphore};
use lock_tests::{RedisServer, locks::lock_key, unique_name};

const FENCE_IDLE_MS: &str = "600000";
const MARK_MS: &str = "10000";
const LIVENESS_MS: &str = "30000";
const REFRESH_MS: &str = "10000";
const LEASE_MS: &str = "10000";

/// A primitive whose keys live under `{lock:name}:part`, and its scripts.
struct Subject {
    part: &'static str,
    scripts: Vec<(&'static str, &'static str)>,
}

impl Subject {
    fn read_write_lock() -> Self {
        Self {
            part: "rw",
            scripts: read_write_lock().to_vec(),
        }
    }

    fn semaphore() -> Self {
        Self {
            part: "sem",
            scripts: semaphore().to_vec(),
        }
    }

    fn script(&self, file: &str) -> &'static str {
        self.scripts
            .iter()
            .find(|(name, _)| *name == file)
            .map(|(_, source)| *source)
            .unwrap_or_else(|| panic!("no script {file} for `{}`", self.part))
    }

    /// The main key of `name`, and a key named after it.
    fn key(&self, name: &str, suffix: Option<&str>) -> String {
        let main = format!("{}:{}", lock_key(name), self.part);
        suffix.map_or_else(|| main.clone(), |suffix| format!("{main}:{suffix}"))
    }

    /// A fresh acquisition's try with the family's KEYS and ARGV (see `acquire_call`), with no
    /// earlier copy on its way; the reply's status and value.
    fn acquire(
        &self,
        server: &RedisServer,
        file: &str,
        name: &str,
        owner: &str,
        argument: Option<&str>,
    ) -> (i64, i64) {
        self.acquire_marking(server, file, name, owner, argument, "0")
    }

    /// [`acquire`](Self::acquire) for a copy that marks its owner for `mark_ms` as it takes or
    /// re-arms its hold.
    fn acquire_marking(
        &self,
        server: &RedisServer,
        file: &str,
        name: &str,
        owner: &str,
        argument: Option<&str>,
        mark_ms: &str,
    ) -> (i64, i64) {
        // A queued try answers more than two items, some of them lists: read the first two.
        let reply = self.acquire_reply(server, file, name, owner, argument, (mark_ms, LEASE_MS));
        let number =
            |value: &redis::Value| redis::from_redis_value::<i64>(value.clone()).expect("number");
        (number(&reply[0]), number(&reply[1]))
    }

    /// The whole reply of [`acquire_marking`](Self::acquire_marking), for a lease of `lease_ms`.
    fn acquire_reply(
        &self,
        server: &RedisServer,
        file: &str,
        name: &str,
        owner: &str,
        argument: Option<&str>,
        (mark_ms, lease_ms): (&str, &str),
    ) -> Vec<redis::Value> {
        let key = |suffix: Option<&str>| self.key(name, suffix);
        let mark = key(Some(&format!("abandoned:{owner}")));
        let mut args = vec![
            "EVAL".to_owned(),
            self.script(file).to_owned(),
            "7".to_owned(),
            key(None),
            key(Some("fence")),
            mark,
            key(Some("queue")),
            key(Some("alive")),
            key(Some("wants")),
            key(Some("leases")),
            owner.to_owned(),
            "family-scripts-test 1796548183609".to_owned(),
            lease_ms.to_owned(),
            LIVENESS_MS.to_owned(),
            REFRESH_MS.to_owned(),
            "0".to_owned(),
            "0".to_owned(),
            mark_ms.to_owned(),
        ];
        args.extend(argument.map(str::to_owned));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::acquire_reply_items(server.cmd(&args))
    }

    /// The first copy of `release.lua` (the acquisition's hold: number 0), or `leave.lua`
    /// (marking the owner abandoned).
    fn give_back(&self, server: &RedisServer, file: &str, name: &str, owner: &str) -> i64 {
        self.release(server, file, name, (owner, "0"), "")
    }

    /// `release.lua` of the hold of `owner` numbered `hold` (or `leave.lua`, as `give_back`),
    /// naming `token`: "" for a first copy, the hold's token for a resend (see
    /// `released_before` in `family/scripts/common.lua`).
    fn release(
        &self,
        server: &RedisServer,
        file: &str,
        name: &str,
        (owner, hold): (&str, &str),
        token: &str,
    ) -> i64 {
        let key = |suffix: &str| self.key(name, Some(suffix));
        let main = self.key(name, None);
        // The leaves take the mark's TTL, the publish command and the fencing state's TTL; the
        // releases the token and the number of the hold.
        let mut keys = vec![main, key("unlock")];
        let arguments = if file == "leave.lua" {
            keys.push(key(&format!("abandoned:{owner}")));
            vec![MARK_MS, "publish", FENCE_IDLE_MS]
        } else {
            vec![token, hold]
        };
        keys.extend(["fence", "queue", "alive", "wants", "leases"].map(key));
        if self.part == "sem" {
            keys.push(key("lone"));
        }
        keys.push(key("lost"));
        let count = keys.len().to_string();
        let mut args = vec!["EVAL", self.script(file), &count];
        args.extend(keys.iter().map(String::as_str));
        args.push(owner);
        args.extend(arguments);
        server.cmd(&args)
    }

    /// `reenter.lua`: re-entry `number` of `owner`'s hold.
    fn reenter(&self, server: &RedisServer, name: &str, owner: &str, number: &str) -> i64 {
        let script = self.script("reenter.lua");
        let leases = self.key(name, Some("leases"));
        server.cmd(&[
            "EVAL",
            script,
            "2",
            &self.key(name, None),
            &leases,
            owner,
            number,
        ])
    }

    /// The fields of the main hash.
    fn fields(&self, server: &RedisServer, name: &str) -> Vec<String> {
        let mut fields: Vec<String> = server.cmd(&["HKEYS", &self.key(name, None)]);
        fields.sort();
        fields
    }

    /// The field `field` of the main hash.
    fn field(&self, server: &RedisServer, name: &str, field: &str) -> Option<i64> {
        server.cmd(&["HGET", &self.key(name, None), field])
    }

    /// What `owner` holds: its field of the main hash, or the permits of the semaphore's lone
    /// acquisition if it is `owner`'s (kept whole in the key `lone`, "<permit id> <permits>
    /// <who>", see sem.lua).
    fn held(&self, server: &RedisServer, name: &str, owner: &str) -> Option<i64> {
        let lone: Option<String> = server.cmd(&["GET", &self.key(name, Some("lone"))]);
        if let Some(rest) = lone
            .as_deref()
            .and_then(|v| v.strip_prefix(&format!("{owner} ")))
        {
            return rest
                .split(' ')
                .next()
                .and_then(|permits| permits.parse().ok());
        }
        self.field(server, name, owner)
    }
}

/// The read or write acquisition, and the semaphore's of two permits.
fn acquisitions() -> [(Subject, &'static str, Option<&'static str>); 3] {
    [
        (Subject::read_write_lock(), "acquire_read.lua", None),
        (Subject::read_write_lock(), "acquire_write.lua", None),
        (Subject::semaphore(), "acquire.lua", Some("2")),
    ]
}

/// Sets a semaphore's permits, so its acquire has something to take.
fn prepare(server: &RedisServer, subject: &Subject, name: &str) {
    if subject.part == "sem" {
        let _: i64 = server.cmd(&["HSET", &subject.key(name, None), "total", "4", "used", "0"]);
    }
}

/// Released by its number, 0, and as the runtime releases the hold of an owner that never
/// re-entered: "" (no re-entry record read).
#[test]
fn a_resent_acquisition_counts_once_and_a_resent_release_answers_like_the_first() {
    for (hold, (subject, file, argument)) in ["0", ""]
        .into_iter()
        .flat_map(|hold| acquisitions().map(|acquisition| (hold, acquisition)))
    {
        let server = RedisServer::start();
        let name = unique_name("resent");
        prepare(&server, &subject, &name);
        let first = subject.acquire(&server, file, &name, "client:1", argument);
        let resent = subject.acquire(&server, file, &name, "client:1", argument);
        assert_eq!(first.0, 1, "{file}, hold \"{hold}\": acquired");
        assert_eq!(
            resent, first,
            "{file}, hold \"{hold}\": the resend answers like the first attempt"
        );
        let counted = subject.held(&server, &name, "client:1");
        assert_eq!(
            counted,
            Some(argument.map_or(1, |n| n.parse().expect("n"))),
            "{file}, hold \"{hold}\": counted once"
        );

        let release =
            |copy: &str| subject.release(&server, "release.lua", &name, ("client:1", hold), copy);
        let resend = first.1.to_string();
        let (released, again) = (release(""), release(&resend));
        assert_eq!(
            (released, again),
            (1, 1),
            "{file}, hold \"{hold}\": the resent release answers 1"
        );
        let other = release("");
        assert_eq!(
            other, 0,
            "{file}, hold \"{hold}\": a new release finds nothing held"
        );
        assert_eq!(
            subject.held(&server, &name, "client:1"),
            None,
            "{file}, hold \"{hold}\""
        );
    }
}

/// The release of a lone read or write hold whose owner never re-entered (its number left out,
/// as the runtime sends it) tells it is the lock's only hold whether or not the leases exist: a
/// renewal writes the lone hold's own entry there, and a waiter may queue meanwhile. Either way
/// the lock and its leases go, the fencing state is counted one past the hold's token, and a
/// resend answers released.
#[test]
fn a_lone_hold_is_released_whole_after_a_renewal_and_with_a_waiter_queued() {
    let subject = Subject::read_write_lock();
    let server = RedisServer::start();
    for (file, after) in [
        ("acquire_read.lua", "renewed"),
        ("acquire_write.lua", "renewed"),
        ("acquire_read.lua", "queued"),
        ("acquire_write.lua", "queued"),
    ] {
        let name = unique_name("rw-lone-release");
        let (lock, leases) = (subject.key(&name, None), subject.key(&name, Some("leases")));
        let fence = subject.key(&name, Some("fence"));
        let (status, token) = subject.acquire(&server, file, &name, "c:1", None);
        assert_eq!(status, 1, "{file}: taken");
        if after == "renewed" {
            let renewed: i64 = server.cmd(&[
                "EVAL",
                subject.script("renew.lua"),
                "4",
                &lock,
                &leases,
                &fence,
                &subject.key(&name, Some("lost")),
                "c:1",
                LEASE_MS,
            ]);
            assert_eq!(renewed, 1, "{file}: renewed");
            let kept: i64 = server.cmd(&["EXISTS", &leases]);
            assert_eq!(kept, 1, "{file}: the renewal wrote the lone hold's lease");
        } else {
            let (status, _) = subject.acquire(&server, "acquire_write.lua", &name, "c:2", None);
            assert_eq!(status, 0, "{file}: c:2 queues");
        }
        let release =
            |copy: &str| subject.release(&server, "release.lua", &name, ("c:1", ""), copy);
        assert_eq!(release(""), 1, "{file}, {after}: released");
        let left: i64 = server.cmd(&["EXISTS", &lock, &leases]);
        assert_eq!(left, 0, "{file}, {after}: the lock and its leases are gone");
        let state: i64 = server.cmd(&["GET", &fence]);
        assert_eq!(state, token + 1, "{file}, {after}: the period ended");
        assert_eq!(release(&token.to_string()), 1, "{file}, {after}: resent");
    }
}

#[test]
fn an_abandoned_acquisition_is_given_back_and_a_late_copy_takes_nothing() {
    for (subject, file, argument) in acquisitions() {
        let server = RedisServer::start();
        let name = unique_name("abandoned");
        prepare(&server, &subject, &name);
        assert_eq!(
            subject
                .acquire(&server, file, &name, "client:1", argument)
                .0,
            1
        );
        let left = subject.give_back(&server, "leave.lua", &name, "client:1");
        assert_eq!(left, 1, "{file}: what the request took is given back");
        let late = subject.acquire(&server, file, &name, "client:1", argument);
        assert_eq!(late, (-3, 0), "{file}: a late copy is refused");
        assert_eq!(subject.field(&server, &name, "client:1"), None, "{file}");
        let other = subject.acquire(&server, file, &name, "client:2", argument);
        assert_eq!(other.0, 1, "{file}: the lock is free for others");
    }
}

/// A resend that takes a read or write hold or permits marks the owner: a copy re-arms the hold
/// while it lasts, and takes nothing once it is given back.
#[test]
fn a_resent_acquisition_marks_its_owner_so_a_late_copy_takes_nothing_once_the_hold_is_gone() {
    for (subject, file, argument) in acquisitions() {
        let server = RedisServer::start();
        let name = unique_name("marked");
        prepare(&server, &subject, &name);
        let taken = subject.acquire_marking(&server, file, &name, "client:1", argument, "60000");
        assert_eq!(taken.0, 1, "{file}: the resend takes it");
        let again = subject.acquire(&server, file, &name, "client:1", argument);
        assert_eq!(again, taken, "{file}: an earlier copy re-arms the hold");
        let released = subject.give_back(&server, "release.lua", &name, "client:1");
        assert!(released >= 0, "{file}: released");
        assert_eq!(subject.field(&server, &name, "client:1"), None, "{file}");
        let late = subject.acquire(&server, file, &name, "client:1", argument);
        assert_eq!(late, (-3, 0), "{file}: a late copy takes nothing");
        assert_eq!(subject.field(&server, &name, "client:1"), None, "{file}");
    }
}

/// A read or write hold re-entered: a late copy of the re-entry, or of a release (a first copy,
/// naming no token, that answers from what it finds), counts nothing; the record of the hold's re-entries
/// goes with the hold, whether it is released or its lease ends.
#[test]
fn late_copies_of_read_and_write_reentries_and_releases_count_nothing() {
    for file in ["acquire_read.lua", "acquire_write.lua"] {
        let subject = Subject::read_write_lock();
        let server = RedisServer::start();
        let name = unique_name("late-rw");
        assert_eq!(subject.acquire(&server, file, &name, "c:1", None).0, 1);
        assert_eq!(subject.reenter(&server, &name, "c:1", "1"), 1, "{file}");
        assert_eq!(subject.reenter(&server, &name, "c:1", "1"), 1, "{file}");
        assert_eq!(subject.field(&server, &name, "c:1"), Some(2), "{file}");

        let release =
            |hold: &str| subject.release(&server, "release.lua", &name, ("c:1", hold), "");
        assert_eq!(release("1"), 2, "{file}");
        assert_eq!(release("1"), 0, "{file}: a late copy");
        assert_eq!(subject.reenter(&server, &name, "c:1", "1"), -2, "{file}");
        assert_eq!(subject.field(&server, &name, "c:1"), Some(1), "{file}");
        assert_eq!(release("0"), 1, "{file}");
        assert!(
            subject.fields(&server, &name).is_empty(),
            "{file}: nothing of the hold is left"
        );
    }

    // A re-entered read hold whose lease ended is dropped with its record, beside a live one.
    let subject = Subject::read_write_lock();
    let server = RedisServer::start();
    let name = unique_name("ended-rw");
    for owner in ["c:1", "c:2"] {
        assert_eq!(
            subject
                .acquire(&server, "acquire_read.lua", &name, owner, None)
                .0,
            1
        );
    }
    assert_eq!(subject.reenter(&server, &name, "c:1", "1"), 1);
    let leases = subject.key(&name, Some("leases"));
    let _: i64 = server.cmd(&["ZADD", &leases, "1", "c:1"]);
    assert_eq!(subject.reenter(&server, &name, "c:2", "2"), 1);
    assert_eq!(
        subject.fields(&server, &name),
        ["c:2", "~r:c:2", "~who:c:2"],
        "the ended hold left nothing behind"
    );
}

/// The semaphore serves first come, first served, and only live waiters count: with all four
/// permits free, a newcomer does not take two of them ahead of a live waiter queued for four;
/// once that waiter is dead (its liveness passed, its process gone), the next try drops it
/// from the queue and takes its permits.
#[test]
fn a_semaphore_newcomer_queues_behind_a_live_waiter_and_passes_a_dead_one() {
    let server = RedisServer::start();
    let subject = Subject::semaphore();
    let name = unique_name("sem-turn");
    prepare(&server, &subject, &name);
    let queue = |owner: &str, live_until_ms: i64| {
        let _: i64 = server.cmd(&["ZADD", &subject.key(&name, Some("queue")), "1", owner]);
        let until = live_until_ms.to_string();
        let _: i64 = server.cmd(&["ZADD", &subject.key(&name, Some("alive")), &until, owner]);
        let _: i64 = server.cmd(&["HSET", &subject.key(&name, Some("wants")), owner, "4"]);
    };
    let (seconds, _): (i64, i64) = server.cmd(&["TIME"]);
    queue("client:head", (seconds + 60) * 1000);
    let newcomer = subject.acquire(&server, "acquire.lua", &name, "client:new", Some("2"));
    assert_eq!(newcomer.0, 0, "the newcomer queues behind the live head");
    assert_eq!(subject.field(&server, &name, "used"), Some(0));

    queue("client:head", (seconds - 60) * 1000);
    let again = subject.acquire(&server, "acquire.lua", &name, "client:new", Some("2"));
    assert_eq!(again.0, 1, "the dead head holds nobody back");
    let queued: Vec<String> =
        server.cmd(&["ZRANGE", &subject.key(&name, Some("queue")), "0", "-1"]);
    assert!(queued.is_empty(), "both left the queue: {queued:?}");
}

/// A key of another type at the primitive's name is another program's: every acquire and release
/// says so (`{-1, type}`, `-1`) and writes nothing, not even a memo or a lease.
#[test]
fn a_value_of_another_type_is_refused_and_left_alone() {
    for (subject, file, argument) in acquisitions() {
        let server = RedisServer::start();
        let name = unique_name("wrong-type");
        let main = subject.key(&name, None);
        let _: () = server.cmd(&["SET", &main, "somebody else's"]);

        let reply =
            subject.acquire_reply(&server, file, &name, "client:1", argument, ("0", LEASE_MS));
        let refused: (i64, String) =
            redis::from_redis_value(redis::Value::Array(reply)).expect("{-1, type}");
        assert_eq!(refused, (-1, "string".to_owned()), "{file}");
        let released = subject.give_back(&server, "release.lua", &name, "client:1");
        assert_eq!(released, -1, "{file}: release.lua");

        let value: String = server.cmd(&["GET", &main]);
        assert_eq!(value, "somebody else's", "{file}");
        assert!(
            server.keys(&format!("{main}:*")).is_empty(),
            "{file}: nothing else written"
        );
    }
}

/// A resend of a release whose first copy ran answers like it, whether that copy left other
/// counts of the hold, other holds, or nothing: from the owner's other counts, or, the hold
/// gone, from the fencing state (the read holds of a period carry its token: the period still
/// on, or counted one past by the release that freed the lock) and the notes of lost holds. The
/// semaphore's first copy writes a memo, read only when its permits are not found.
#[test]
fn a_resent_release_whose_first_copy_ran_answers_like_it_beside_other_holds() {
    let subject = Subject::read_write_lock();
    let server = RedisServer::start();
    let name = unique_name("resent-rw");
    let mut tokens = Vec::new();
    for owner in ["c:1", "c:2"] {
        let taken = subject.acquire(&server, "acquire_read.lua", &name, owner, None);
        assert_eq!(taken.0, 1, "{owner}");
        tokens.push(taken.1);
    }
    let token = tokens[0];
    assert_eq!(
        tokens,
        [token, token],
        "the second read joins the first's period"
    );
    assert_eq!(token % 2, 1, "a period's token is odd");
    assert_eq!(subject.reenter(&server, &name, "c:1", "1"), 1);
    let resend = token.to_string();
    let release = |owner: &str, hold: &str, copy: &str| {
        subject.release(&server, "release.lua", &name, (owner, hold), copy)
    };
    assert_eq!(release("c:1", "1", ""), 2, "a count of two");
    assert_eq!(
        release("c:1", "1", &resend),
        2,
        "resent: the hold is there, its count is not"
    );
    assert_eq!(
        release("c:1", "0", ""),
        1,
        "the hold's last count, beside c:2's"
    );
    assert_eq!(
        release("c:1", "0", &resend),
        1,
        "resent: the hold is gone, its period goes on"
    );
    assert_eq!(subject.fields(&server, &name), ["c:2", "~who:c:2"]);
    let ttl: i64 = server.cmd(&["PTTL", &subject.key(&name, None)]);
    assert!(ttl > 0, "the lock still expires with c:2's lease: {ttl}");
    assert_eq!(release("c:2", "0", ""), 1, "the only hold");
    let fence = subject.key(&name, Some("fence"));
    let state: i64 = server.cmd(&["GET", &fence]);
    assert_eq!(
        state,
        token + 1,
        "the release that frees the lock counts one past"
    );
    assert_eq!(release("c:2", "0", &resend), 1, "resent: the lock is free");
    assert_eq!(release("c:1", "0", &resend), 1, "resent again: the same");
    let left: i64 = server.cmd(&[
        "EXISTS",
        &subject.key(&name, None),
        &subject.key(&name, Some("leases")),
        &subject.key(&name, Some("lost")),
    ]);
    assert_eq!(
        left, 0,
        "neither the lock nor its leases, nor a note, is left"
    );
    assert_eq!(release("c:2", "0", ""), 0, "a new release finds nothing");
    let next = subject.acquire(&server, "acquire_write.lua", &name, "c:3", None);
    assert_eq!(next, (1, token + 2), "the next period's token");
    assert_eq!(release("c:3", "0", ""), 1);
    assert_eq!(
        release("c:2", "0", &resend),
        1,
        "resent after another period"
    );

    let subject = Subject::semaphore();
    let name = unique_name("resent-sem");
    prepare(&server, &subject, &name);
    let mut tokens = Vec::new();
    for owner in ["c:1", "c:2"] {
        let taken = subject.acquire(&server, "acquire.lua", &name, owner, Some("2"));
        assert_eq!(taken.0, 1, "{owner}");
        tokens.push(taken.1);
    }
    assert_eq!(
        tokens[0] % 2,
        1,
        "a lone acquisition counts the lone ones up: {tokens:?}"
    );
    assert_eq!(
        tokens[1], 0,
        "an acquisition kept in the hash has the token 0"
    );
    for copy in [String::new(), tokens[0].to_string()] {
        let released = subject.release(&server, "release.lua", &name, ("c:1", "0"), &copy);
        assert_eq!(released, 1, "the first copy and its resend");
    }
    assert_eq!(
        subject.field(&server, &name, "used"),
        Some(2),
        "given back once"
    );
    assert_eq!(subject.field(&server, &name, "c:2"), Some(2));
}

/// A resend of a read-write lock's release answers that its hold was not held when the hold
/// ended otherwise, however its first copy fared: a hold dropped as its lease ended, by its own
/// release (a resend that is the first copy to run finds it ended) or by another script, noted
/// by owner id; a hold force-unlocked, noted so too; a lone hold whose period ended unseen (its
/// lock gone with its TTL: here deleted by hand), before the next take (the state at its token,
/// the lock gone) and after it (the period noted). A release that freed the lock before any of
/// this still answers released.
#[test]
fn a_resent_read_write_release_answers_not_held_for_a_hold_that_ended_otherwise() {
    let subject = Subject::read_write_lock();
    let server = RedisServer::start();
    let name = unique_name("rw-lost");
    let release = |owner: &str, copy: &str| {
        subject.release(&server, "release.lua", &name, (owner, "0"), copy)
    };
    let take = |owner: &str| {
        let taken = subject.acquire(&server, "acquire_read.lua", &name, owner, None);
        assert_eq!(taken.0, 1, "{owner} takes a read hold");
        taken.1.to_string()
    };
    let leases = subject.key(&name, Some("leases"));
    let end_lease = |owner: &str| {
        let ended: i64 = server.cmd(&["ZADD", &leases, "XX", "CH", "1", owner]);
        assert_eq!(ended, 1, "{owner}'s lease ends");
    };

    let first = take("c:1");
    take("c:2");
    take("c:3");
    end_lease("c:1");
    assert_eq!(
        release("c:1", &first),
        0,
        "a resend that finds its lease ended"
    );
    end_lease("c:2");
    assert_eq!(release("c:3", ""), 1, "c:3's release drops c:2");
    assert_eq!(release("c:2", &first), 0, "c:2 was dropped, noted");
    assert_eq!(release("c:1", &first), 0, "c:1 too");
    assert_eq!(release("c:3", &first), 1, "c:3 released its hold");

    let forced = take("c:4");
    take("c:5");
    let force = subject.script("force_unlock.lua");
    let main = subject.key(&name, None);
    let (unlock, fence, lost) = (
        subject.key(&name, Some("unlock")),
        subject.key(&name, Some("fence")),
        subject.key(&name, Some("lost")),
    );
    let deleted: i64 = server.cmd(&[
        "EVAL", force, "5", &main, &unlock, &leases, &fence, &lost, "all", "publish", "c:4", "c:5",
    ]);
    assert_eq!(deleted, 1, "force-unlocked");
    for owner in ["c:4", "c:5"] {
        assert_eq!(release(owner, &forced), 0, "{owner} was force-unlocked");
    }

    let token = take("c:6");
    let _: i64 = server.cmd(&["DEL", &main]);
    assert_eq!(release("c:6", ""), 0, "the lock is gone");
    assert_eq!(release("c:6", &token), 0, "resent before the next take");
    take("c:7");
    assert_eq!(
        release("c:6", &token),
        0,
        "resent after it: the period is noted"
    );
    assert_eq!(release("c:7", ""), 1);
    assert_eq!(release("c:6", &token), 0, "and after its release");
    assert_eq!(
        release("c:3", &first),
        1,
        "an earlier release is still known"
    );
    assert_eq!(release("c:5", &forced), 0, "an earlier loss is still known");
}

/// A resend of a semaphore's release answers from the count of its lone acquisitions and the
/// notes of lost ones: a lone acquisition whose key expired unseen (deleted here) answers not
/// held before the next lone take (the count still at its token) and after it (noted); one
/// released answers released, also after later lone acquisitions came and went; an acquisition
/// kept in the hash (token 0, or lone and then settled there by a second one) answers not held
/// once it was dropped as its lease ended (noted by permit id), released otherwise. A release by
/// id answers its resend from a memo.
#[test]
fn a_resent_semaphore_release_answers_from_the_lone_count_and_the_notes() {
    let subject = Subject::semaphore();
    let server = RedisServer::start();
    let name = unique_name("sem-lost");
    prepare(&server, &subject, &name);
    let take = |owner: &str| {
        let taken = subject.acquire(&server, "acquire.lua", &name, owner, Some("1"));
        assert_eq!(taken.0, 1, "{owner} takes a permit");
        taken.1.to_string()
    };
    let release = |owner: &str, copy: &str| {
        subject.release(&server, "release.lua", &name, (owner, "0"), copy)
    };
    let lone = subject.key(&name, Some("lone"));
    let leases = subject.key(&name, Some("leases"));

    let expired = take("c:1");
    let _: i64 = server.cmd(&["DEL", &lone]);
    assert_eq!(release("c:1", ""), 0, "its key is gone");
    assert_eq!(
        release("c:1", &expired),
        0,
        "resent before the next lone take"
    );
    let released = take("c:2");
    assert_eq!(release("c:2", ""), 1);
    assert_eq!(release("c:1", &expired), 0, "resent after it: noted");
    assert_eq!(release("c:2", &released), 1, "released");
    let next = take("c:3");
    assert_eq!(release("c:3", ""), 1);
    assert_eq!(
        release("c:2", &released),
        1,
        "released, after another lone one"
    );
    assert_eq!(release("c:3", &next), 1);

    let settled = take("c:4");
    assert_eq!(take("c:5"), "0", "kept in the hash");
    assert_eq!(take("c:6"), "0", "kept in the hash");
    let ended: i64 = server.cmd(&["ZADD", &leases, "XX", "CH", "1", "c:4", "1", "c:5"]);
    assert_eq!(ended, 2, "the leases of c:4 and c:5 end");
    assert_eq!(release("c:6", ""), 1, "c:6's release drops c:4 and c:5");
    assert_eq!(release("c:4", &settled), 0, "settled, then dropped: noted");
    assert_eq!(release("c:5", "0"), 0, "dropped: noted");
    assert_eq!(release("c:6", "0"), 1, "released");

    let by_id = subject.script("release_by_id.lua");
    let id = take("c:7");
    assert_ne!(id, "0");
    let key = |suffix: &str| subject.key(&name, Some(suffix));
    let main = subject.key(&name, None);
    let memo = key("memo:r1");
    let keys = [
        main.as_str(),
        &key("unlock"),
        &memo,
        &key("queue"),
        &key("alive"),
        &key("wants"),
        &leases,
        &lone,
        &key("fence"),
        &key("lost"),
    ];
    for _ in 0..2 {
        let mut args = vec!["EVAL", by_id, "10"];
        args.extend(keys);
        args.extend(["c:7", MARK_MS, "publish"]);
        let released: i64 = server.cmd(&args);
        assert_eq!(released, 1, "a release by id and its resend");
    }
}

/// A release drops the holds whose lease ended before it looks at its own, as every script does:
/// an ended hold of another owner leaves with its permits, and an ended hold of its own is not
/// released (0: its lease ran out). A live hold (`c:4`) stays beside it, as it must: the
/// read-write lock's keys expire with their last lease, so a last hold whose lease ended has
/// no lock left to release (its release relies on that, and asks no time).
#[test]
fn a_release_drops_the_holds_whose_lease_ended_first() {
    for (subject, file, argument) in [
        (Subject::read_write_lock(), "acquire_read.lua", None),
        (Subject::semaphore(), "acquire.lua", Some("1")),
    ] {
        let server = RedisServer::start();
        let name = unique_name("ended");
        prepare(&server, &subject, &name);
        for owner in ["c:1", "c:2", "c:3", "c:4"] {
            let taken = subject.acquire(&server, file, &name, owner, argument);
            assert_eq!(taken.0, 1, "{file}: {owner}");
        }
        let leases = subject.key(&name, Some("leases"));
        let _: i64 = server.cmd(&["ZADD", &leases, "1", "c:2"]);
        assert_eq!(
            subject.give_back(&server, "release.lua", &name, "c:1"),
            1,
            "{file}"
        );
        assert_eq!(
            subject.field(&server, &name, "c:2"),
            None,
            "{file}: c:2 dropped"
        );
        let _: i64 = server.cmd(&["ZADD", &leases, "1", "c:3"]);
        assert_eq!(
            subject.give_back(&server, "release.lua", &name, "c:3"),
            0,
            "{file}: c:3's lease ran out"
        );
        assert_eq!(subject.field(&server, &name, "c:3"), None, "{file}");
        assert_eq!(
            subject.give_back(&server, "release.lua", &name, "c:4"),
            1,
            "{file}: c:4's lease is live"
        );
        if subject.part == "sem" {
            assert_eq!(subject.field(&server, &name, "used"), Some(0), "{file}");
        } else {
            assert!(subject.fields(&server, &name).is_empty(), "{file}");
        }
        let left: i64 = server.cmd(&["EXISTS", &leases]);
        assert_eq!(left, 0, "{file}: no lease left");
    }
}

/// A free lock is taken at once (one EXISTS finds no lock, no mark, no queue and no leases): the
/// hold is its only one, lone, the lock's TTL its lease, and no leases are kept. An entry of a
/// hold gone from the lock (its key deleted by hand) is in nobody's way: the hold is granted
/// all the same, with a lease in the leases, and both keys expire with the hold's lease.
#[test]
fn a_free_lock_is_taken_at_once_and_expires_with_its_lease() {
    for stale_entry in [false, true] {
        for (file, fields) in [
            ("acquire_read.lua", &["c:1", "~who:c:1"][..]),
            ("acquire_write.lua", &["c:1", "writer", "~who:c:1"][..]),
        ] {
            let subject = Subject::read_write_lock();
            let server = RedisServer::start();
            let name = unique_name("free");
            let leases = subject.key(&name, Some("leases"));
            if stale_entry {
                let _: i64 = server.cmd(&["ZADD", &leases, "99999999999999", "gone"]);
            }
            assert_eq!(
                subject.acquire(&server, file, &name, "c:1", None).0,
                1,
                "{file}"
            );
            assert_eq!(subject.fields(&server, &name), fields, "{file}");
            let lease: i64 = LEASE_MS.parse().expect("ms");
            let lock = subject.key(&name, None);
            let keys = if stale_entry {
                vec![lock, leases]
            } else {
                let kept: i64 = server.cmd(&["EXISTS", &leases]);
                assert_eq!(kept, 0, "{file}: a lone hold keeps no leases");
                vec![lock]
            };
            for key in keys {
                let ttl: i64 = server.cmd(&["PTTL", &key]);
                assert!(lease - 5000 < ttl && ttl <= lease, "{file}: {key} {ttl}");
            }
        }
    }
}

/// A hold that comes beside a lone one writes the lone one's lease into the leases first, from
/// the TTL that kept it (the read-write lock's own key; the semaphore's `lone` key, which then
/// goes): the lone hold keeps its own end, shorter or longer than the newcomer's, and leaves at
/// it. The read-write lock's keys then live as long as the last lease.
#[test]
fn a_second_hold_spreads_the_lone_ones_lease() {
    let server = RedisServer::start();
    for (subject, file, argument) in [
        (Subject::read_write_lock(), "acquire_read.lua", None),
        (Subject::semaphore(), "acquire.lua", Some("1")),
    ] {
        for (lone_ms, second_ms) in [("2000", "60000"), ("60000", "2000")] {
            let name = unique_name("spread");
            prepare(&server, &subject, &name);
            let (main, leases) = (subject.key(&name, None), subject.key(&name, Some("leases")));
            let lone = if subject.part == "sem" {
                subject.key(&name, Some("lone"))
            } else {
                main.clone()
            };
            let take = |owner: &str, lease_ms: &str| {
                let reply =
                    subject.acquire_reply(&server, file, &name, owner, argument, ("0", lease_ms));
                assert!(
                    matches!(reply[0], redis::Value::Int(1)),
                    "{file}: {owner} takes it"
                );
            };
            take("c:1", lone_ms);
            let lone_left: i64 = server.cmd(&["PTTL", &lone]);
            let kept: i64 = server.cmd(&["EXISTS", &leases]);
            assert_eq!(kept, 0, "{file}: a lone hold keeps no leases");
            take("c:2", second_ms);
            let (seconds, micros): (i64, i64) = server.cmd(&["TIME"]);
            let now = seconds * 1000 + micros / 1000;
            let ends = |owner: &str| -> i64 {
                let score: Option<i64> = server.cmd(&["ZSCORE", &leases, owner]);
                score.unwrap_or_else(|| panic!("{file}: {owner} has no lease entry")) - now
            };
            let (first, second) = (ends("c:1"), ends("c:2"));
            assert!(
                (lone_left - 100..=lone_left + 5).contains(&first),
                "{file}: c:1's lease ends as its TTL said: {first} ms, TTL {lone_left} ms"
            );
            let second_ms: i64 = second_ms.parse().expect("ms");
            assert!(
                second_ms - 100 <= second && second <= second_ms + 5,
                "{file}: c:2: {second} ms"
            );
            if subject.part == "sem" {
                let left: i64 = server.cmd(&["EXISTS", &lone]);
                let named: i64 = server.cmd(&["HEXISTS", &main, "~lone"]);
                assert_eq!((left, named), (0, 0), "{file}: the lone lease goes");
            } else {
                let ttl: i64 = server.cmd(&["PTTL", &main]);
                assert!(
                    first.max(second) - 100 <= ttl,
                    "{file}: the lock lives as long as its last lease: {ttl} ms"
                );
            }
        }
    }
}
