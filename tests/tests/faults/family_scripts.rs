//! The read-write lock's and the semaphore's scripts driven directly: like the reentrant lock's
//! (`scripts.rs`), a request resent after a timeout or a reconnect must not change the outcome
//! (a hold counted once, a release answering what its first attempt did), and a late copy of a
//! request whose caller gave up must take nothing.

use lock_runtime::testing::scripts::{read_write_lock, semaphore};
use lock_tests::{RedisServer, locks::lock_key, unique_name};

const FENCE_IDLE_MS: &str = "600000";
const MEMO_MS: &str = "10000";
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
            LEASE_MS.to_owned(),
            FENCE_IDLE_MS.to_owned(),
            LIVENESS_MS.to_owned(),
            REFRESH_MS.to_owned(),
            "0".to_owned(),
            "0".to_owned(),
            "family-scripts-test".to_owned(),
            mark_ms.to_owned(),
        ];
        args.extend(argument.map(str::to_owned));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // A queued try answers more than two items, some of them lists: read the first two.
        let reply: Vec<redis::Value> = server.cmd(&args);
        let number =
            |value: &redis::Value| redis::from_redis_value::<i64>(value.clone()).expect("number");
        (number(&reply[0]), number(&reply[1]))
    }

    /// `release.lua` (request `request`, the acquisition's hold: number 0) or `leave.lua`
    /// (marking the owner abandoned).
    fn give_back(
        &self,
        server: &RedisServer,
        file: &str,
        name: &str,
        owner: &str,
        request: &str,
    ) -> i64 {
        self.release(server, file, name, (owner, "0"), request)
    }

    /// `release.lua` of the hold of `owner` numbered `hold` (or `leave.lua`, as `give_back`).
    fn release(
        &self,
        server: &RedisServer,
        file: &str,
        name: &str,
        (owner, hold): (&str, &str),
        request: &str,
    ) -> i64 {
        let key = |suffix: &str| self.key(name, Some(suffix));
        let third = if file == "leave.lua" {
            key(&format!("abandoned:{owner}"))
        } else {
            key(&format!("memo:{request}"))
        };
        server.cmd(&[
            "EVAL",
            self.script(file),
            "8",
            &self.key(name, None),
            &key("unlock"),
            &third,
            &key("fence"),
            &key("queue"),
            &key("alive"),
            &key("wants"),
            &key("leases"),
            owner,
            MEMO_MS,
            "publish",
            FENCE_IDLE_MS,
            hold,
        ])
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

#[test]
fn a_resent_acquisition_counts_once_and_a_resent_release_answers_like_the_first() {
    for (subject, file, argument) in acquisitions() {
        let server = RedisServer::start();
        let name = unique_name("resent");
        prepare(&server, &subject, &name);
        let first = subject.acquire(&server, file, &name, "client:1", argument);
        let resent = subject.acquire(&server, file, &name, "client:1", argument);
        assert_eq!(first.0, 1, "{file}: acquired");
        assert_eq!(
            resent, first,
            "{file}: the resend answers like the first attempt"
        );
        let counted = subject.field(&server, &name, "client:1");
        assert_eq!(
            counted,
            Some(argument.map_or(1, |n| n.parse().expect("n"))),
            "{file}"
        );
        if subject.part == "sem" {
            assert_eq!(
                subject.field(&server, &name, "used"),
                Some(2),
                "counted once"
            );
        }

        let released = subject.give_back(&server, "release.lua", &name, "client:1", "r1");
        let again = subject.give_back(&server, "release.lua", &name, "client:1", "r1");
        assert_eq!(
            (released, again),
            (1, 1),
            "{file}: the resent release answers 1"
        );
        let other = subject.give_back(&server, "release.lua", &name, "client:1", "r2");
        assert_eq!(other, 0, "{file}: a new release finds nothing held");
        assert_eq!(subject.field(&server, &name, "client:1"), None, "{file}");
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
        let left = subject.give_back(&server, "leave.lua", &name, "client:1", "");
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
        let released = subject.give_back(&server, "release.lua", &name, "client:1", "r1");
        assert!(released >= 0, "{file}: released");
        assert_eq!(subject.field(&server, &name, "client:1"), None, "{file}");
        let late = subject.acquire(&server, file, &name, "client:1", argument);
        assert_eq!(late, (-3, 0), "{file}: a late copy takes nothing");
        assert_eq!(subject.field(&server, &name, "client:1"), None, "{file}");
    }
}

/// A read or write hold re-entered: a late copy of the re-entry, or of a release (once its memo
/// expired: a request id of its own here), counts nothing; the record of the hold's re-entries
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

        let release = |hold: &str, request: &str| {
            subject.release(&server, "release.lua", &name, ("c:1", hold), request)
        };
        assert_eq!(release("1", "r1"), 2, "{file}");
        assert_eq!(release("1", "r1-late"), 0, "{file}: a late copy");
        assert_eq!(subject.reenter(&server, &name, "c:1", "1"), -2, "{file}");
        assert_eq!(subject.field(&server, &name, "c:1"), Some(1), "{file}");
        assert_eq!(release("0", "r2"), 1, "{file}");
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
