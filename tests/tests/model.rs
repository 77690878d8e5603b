//! A model-based test of "a copy counts once, however late" (DESIGN 3.2, issue 20): random
//! sequences of operations on the reentrant lock, the fair lock, a count-down latch, a semaphore
//! and a read-write lock, with requests
//! duplicated and delivered late, connections reset, clients crashing and leases running out,
//! run against the real scripts on a real Redis and against a small reference model.
//!
//! Each client under test sits behind its own [`TcpProxy`]. A *stalled* operation is sent right
//! after [`TcpProxy::hold_connections`]: its request waits in the proxy, the client times out
//! after its response timeout, retires the connection and resends on a fresh one, and the first
//! copy stays held until a later step delivers it, at once or after the request memos expired:
//! the late copy of DESIGN 3.2. After every step, what Redis holds, read through the public API
//! by an observer client connected directly ([`Lock::info`], [`FairLock::info`],
//! [`CountDownLatch::info`], [`Semaphore::info`], [`ReadWriteLock::info`]), is compared with the
//! model, and the invariants are checked:
//!
//! - **never two live holders**: a lock is never acquired while another acquisition's guard
//!   still trusts its lease, a semaphore never grants more permits than live holders leave, and
//!   a read-write lock never shows a write hold beside any hold but the reads taken under it
//!   (downgrades);
//! - **counts exact**: hold counts, the latch's count, the semaphore's total and the permits of
//!   each acquisition are what the model counts; a hold whose guard trusts its lease is in Redis;
//! - **no phantom, no revival**: Redis never shows a hold the model does not know (a late copy
//!   of an acquire whose caller gave up) nor one that was given back or seen gone;
//! - **leases end only for a reason**: a guard never learns its lease is lost while the lease
//!   still runs (the watchdog found its hold gone), and a watchdog lease of a healthy client
//!   never runs out;
//! - **fencing tokens strictly increase** per lock name (a read-write lock's reads carry the
//!   last one; each write's is above every token before it);
//! - **nothing refused without a reason**: an acquisition fails only if a hold that may still
//!   be live is in its way (the fair and the read-write lock: or a waiter an acquisition that
//!   just failed may have left queued; the lock models: or a contender, below), or its wait was
//!   too short for a resend; an upgrade is refused at once, a downgrade granted at once;
//! - **a waiter gets the lock only once it is free**: in the lock models an acquisition may wait
//!   in the background (a *contender*) while the steps after it run, to be woken by name or
//!   handed the lock by a release; when it is joined, no acquisition the model knows may have
//!   been held in Redis past the moment the contender's acquire returned, nor taken since;
//! - at the end, everything given back, **no key without a TTL**.
//!
//! The model does not replay deliveries: a late copy must change nothing, so delivering held
//! copies changes no expectation (only a semaphore's `add_permits` that failed, which is sent
//! once and never resent, may land whenever its only copy does).
//!
//! # How sequences are made
//!
//! Proptest draws *genes* ([`Gene`]); each model's [`plan`](Model::plan) reads them against an
//! abstract state of its primitive, a reference state machine used for generation only, so that
//! most steps do something (an unlock when a guard exists, a delivery when copies are held). The
//! plans are biased towards what finds the seams of issue 20: re-entries, releases of the newest
//! guard, and releases stalled and delivered late (see [`Gene::stall`]); every operation and
//! fault stays in play. Each case runs a few sequences (*lanes*) side by side, each with its own
//! clients and names: a sequence mostly waits (for timeouts, memos, leases), so lanes cost little
//! more than one. Each stall holds one operation's copy: what the operation's outcome starts in
//! the background (the undo of a request given up) goes out before the next fault.
//!
//! # Timeouts shortened for run time
//!
//! The clients use a 300 ms response timeout, a 500 ms retry timeout (so request memos live the
//! 1 s minimum), a 1.5 s watchdog timeout and 2.5 s fixed leases (long enough to outlive a late
//! delivery), instead of the defaults (3 s, 10 s, so memos live 13 s; 30 s): each stalled
//! request costs one response timeout, each "after the memo expired" delivery one memo TTL, each
//! crash or lease expiry one lease, and the whole test must run in under a minute. What the
//! model checks does not depend on them: whether a copy counts once is a property of the scripts
//! whatever the memo TTL is, and the late delivery waits for the memo TTL these settings give,
//! as it would wait 13 s (or 15 minutes of TCP retransmission) with the defaults.
//!
//! # Reading a failure
//!
//! The five models run side by side, each with its own proptest runner and seed; a failure is
//! shrunk (for at most three minutes) and reported as the minimal case, with what each step did
//! and the violated invariant. `PROPTEST_RNG_SEED=<seed>` replays a seed (timing aside), and
//! `PROPTEST_CASES=<n>` explores further than the CI budget. The counterexamples the search
//! found are kept at the end of the file as tests of their own.
//!
//! [`Lock::info`]: lock_runtime::Lock::info
//! [`CountDownLatch::info`]: lock_runtime::CountDownLatch::info
//! [`Semaphore::info`]: lock_runtime::Semaphore::info
//! [`FairLock::info`]: lock_runtime::FairLock::info
//! [`ReadWriteLock::info`]: lock_runtime::ReadWriteLock::info

use std::{
    cell::Cell,
    collections::VecDeque,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    task::Poll,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use lock_runtime::{LockClient, LockError, LockGuard, SemaphorePermit};
use lock_tests::{
    RedisServer, TcpProxy,
    locks::{
        assert_no_key_without_ttl, assert_released, assert_rw_released, eventually,
        load_every_script, sem_key,
    },
    unique_name,
};
use proptest::{
    prelude::*,
    test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner},
};
use tokio::time::Instant;

/// The clients' response timeout: a stalled request is resent this long after it was sent.
/// Shortened for run time (see the module docs).
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(300);

/// The clients' retry timeout. Shortened for run time (see the module docs).
const RETRY_TIMEOUT: Duration = Duration::from_millis(500);

/// How long request memos live with these settings: the retry timeout plus the response
/// timeout, at least 1 s (`Config::memo_ttl`).
const MEMO_TTL: Duration = Duration::from_secs(1);

/// The clients' watchdog timeout: the lease of a watchdog hold, renewed every third of it.
/// Shortened for run time (see the module docs).
const WATCHDOG_TIMEOUT: Duration = Duration::from_millis(1500);

/// The fixed lease of the acquisitions that take one: short for run time (see the module docs),
/// long enough that a hold usually outlives a stalled release delivered late (about 1.5 s).
const FIXED_LEASE: Duration = Duration::from_millis(2500);

/// How many clients each model drives, each behind its own proxy.
const CLIENTS: usize = 2;

/// How long a background effect (a dropped guard's release, an undo, a delivered copy) may take
/// to show in Redis.
const CONVERGE: Duration = Duration::from_secs(1);

/// How long a stalled operation's background follow-up (an undo) is given to go out before the
/// next step.
const BACKGROUND: Duration = Duration::from_millis(100);

/// The longest one operation may take before it counts as hung.
const OP_LIMIT: Duration = Duration::from_secs(10);

/// How long the shrinking of one failure may take.
const SHRINK_TIME: Duration = Duration::from_secs(180);

/// One step of a sequence: an operation of the model (maybe stalled), or a fault.
#[derive(Clone)]
enum Step<Op> {
    /// An operation; `stalled`: its client's connections are held first, so its first copy
    /// stays in the proxy and it is resent on a fresh connection.
    Op { op: Op, stalled: bool },
    /// Delivers every held copy now (within the memo TTL).
    DeliverNow,
    /// Waits until the memos of every request sent so far expired, then delivers every held
    /// copy: the late copy of DESIGN 3.2.
    DeliverLate,
    /// Waits until every fixed lease, and every lease of a crashed client, surely ran out.
    ExpireLeases,
    /// The client crashes: nothing it sends reaches Redis any more, its holds are left to
    /// expire, and a fresh client takes its place.
    Crash(usize),
    /// Resets every connection of the client (its held copies are lost); it reconnects.
    Reset(usize),
}

impl<Op: fmt::Debug> fmt::Debug for Step<Op> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Op { op, stalled: true } => write!(f, "stalled {op:?}"),
            Self::Op { op, stalled: false } => write!(f, "{op:?}"),
            Self::DeliverNow => f.write_str("DeliverNow"),
            Self::DeliverLate => f.write_str("DeliverLate (after the memo TTL)"),
            Self::ExpireLeases => f.write_str("ExpireLeases"),
            Self::Crash(client) => write!(f, "Crash(client {client})"),
            Self::Reset(client) => write!(f, "Reset(client {client})"),
        }
    }
}

/// How an acquisition is leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leasing {
    Watchdog,
    Fixed,
}

impl Leasing {
    fn lease(self) -> Option<Duration> {
        match self {
            Self::Watchdog => None,
            Self::Fixed => Some(FIXED_LEASE),
        }
    }
}

/// How long an acquisition waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Less than a response timeout: a stalled request is given up, not resent.
    Short,
    /// Long enough for a stalled request to be resent.
    Long,
}

impl Wait {
    fn duration(self) -> Duration {
        match self {
            Self::Short => Duration::from_millis(100),
            Self::Long => Duration::from_millis(600),
        }
    }
}

/// One random choice of a sequence. A model's [`plan`](Model::plan) reads genes in turn against
/// an abstract state of the primitive (a reference state machine for generation only), so that
/// most steps do something: an unlock is planned when a guard exists, a delivery when copies are
/// held. Each field is a small number that shrinks towards 0, the plainest choice: an operation
/// rather than a fault, client 0, a watchdog lease, a long wait, the newest guard, no stall.
#[derive(Debug, Clone, Copy)]
struct Gene {
    /// An operation (below [`Gene::FAULTS`], its kind by share) or one of five faults.
    roll: u8,
    /// Which client: the first one three times in four (the others mostly find its locks
    /// taken).
    who: u8,
    /// Bit 0: a short wait; `how / 2`: 0 and 1 a watchdog lease, 2 a fixed one (a fixed
    /// lease often runs out before a late copy lands); 1 or 2 permits or counts.
    how: u8,
    /// Which guard or permit, newest first (see [`Holds::pick`]): 0 and 1 the newest.
    which: u8,
    /// Whether the operation is stalled, and how its first copy travels: see [`Gene::stall`].
    stall: u8,
}

/// How a planned operation's first copy travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// Not stalled.
    No,
    /// Held until a later delivery (or the end of the sequence).
    Held,
    /// Held, then delivered once the memos expired, right after the operation.
    Late,
}

impl Gene {
    /// `roll` from here on is a fault: one step in five.
    const FAULTS: u8 = 20;

    fn is_fault(self) -> bool {
        self.roll >= Self::FAULTS
    }

    /// Where an operation's `roll` falls, in percent.
    fn percent(self) -> u32 {
        u32::from(self.roll) * 5
    }

    fn client(self) -> usize {
        if self.who == 3 { 1 } else { 0 }
    }

    fn wait(self) -> Wait {
        if self.how & 1 == 1 {
            Wait::Short
        } else {
            Wait::Long
        }
    }

    fn leasing(self) -> Leasing {
        if self.how / 2 == 2 {
            Leasing::Fixed
        } else {
            Leasing::Watchdog
        }
    }

    /// 1 or 2 (permits, counts).
    fn small(self) -> u32 {
        u32::from(self.how / 2 % 2) + 1
    }

    /// The newest guard in half the cases and more: releasing the innermost re-entry first is
    /// the usual order.
    fn pick(self) -> usize {
        usize::from(self.which.saturating_sub(1))
    }

    /// For an operation that gives something back (a release, a count-down), stalled seven
    /// times in ten and delivered late at once in half the cases: the late copy of a release is
    /// what frees a lock under its holder (issue 20, item 1). For any other, stalled three
    /// times in ten.
    fn stall(self, giving_back: bool) -> Stall {
        let (held, late) = if giving_back { (6, 10) } else { (14, 17) };
        match self.stall {
            stall if stall < held => Stall::No,
            stall if stall < late => Stall::Held,
            _ => Stall::Late,
        }
    }
}

fn genes(max: usize) -> impl Strategy<Value = Vec<Gene>> {
    let gene = (0..Gene::FAULTS + 5, 0..4_u8, 0..6_u8, 0..4_u8, 0..20_u8).prop_map(
        |(roll, who, how, which, stall)| Gene {
            roll,
            who,
            how,
            which,
            stall,
        },
    );
    prop::collection::vec(gene, 1..=max)
}

/// A sequence being planned: the steps so far, and whether copies are held.
struct Planner<Op> {
    steps: Vec<Step<Op>>,
    held: bool,
}

impl<Op> Planner<Op> {
    fn new() -> Self {
        Self {
            steps: Vec::new(),
            held: false,
        }
    }

    /// Plans `op`, stalled as `gene` says; `giving_back`: see [`Gene::stall`].
    fn op(&mut self, op: Op, gene: Gene, giving_back: bool) {
        let stall = gene.stall(giving_back);
        self.steps.push(Step::Op {
            op,
            stalled: stall != Stall::No,
        });
        match stall {
            Stall::No => {}
            Stall::Held => self.held = true,
            Stall::Late => {
                self.steps.push(Step::DeliverLate);
                self.held = false;
            }
        }
    }

    /// Plans the fault `gene` names, if it makes sense now (`leases`: a lease may run out);
    /// `None`: plan an operation instead.
    fn fault(&mut self, gene: Gene, leases: bool) -> Option<&Step<Op>> {
        let client = usize::from(gene.who) % CLIENTS;
        let step = match gene.roll - Gene::FAULTS {
            0 if self.held => Step::DeliverNow,
            1 if self.held => Step::DeliverLate,
            2 if leases => Step::ExpireLeases,
            3 => Step::Crash(client),
            4 => Step::Reset(client),
            _ => return None,
        };
        if matches!(step, Step::DeliverNow | Step::DeliverLate) {
            self.held = false;
        }
        self.steps.push(step);
        self.steps.last()
    }
}

/// Sequences of up to `max` genes of model `M`, planned.
fn steps<M: Model>(max: usize) -> impl Strategy<Value = Vec<Step<M::Op>>> {
    genes(max).prop_map(|genes| M::plan(&genes))
}

/// One client under test, behind its own proxy.
struct Node {
    proxy: TcpProxy,
    client: LockClient,
    /// When a fault last touched its connections (a stalled request, a reset): its watchdog
    /// may have missed renewals around then.
    last_fault: Cell<Option<Instant>>,
}

impl Node {
    async fn start(server: &RedisServer, name: String) -> Node {
        let proxy = TcpProxy::start(server.port()).await;
        let client = LockClient::builder()
            .url(proxy.url())
            .client_name(name)
            .response_timeout(RESPONSE_TIMEOUT)
            .retry_timeout(RETRY_TIMEOUT)
            .watchdog_timeout(WATCHDOG_TIMEOUT)
            .build()
            .await
            .unwrap_or_else(|err| panic!("connecting through {}: {err:?}", proxy.url()));
        Node {
            proxy,
            client,
            last_fault: Cell::new(None),
        }
    }
}

/// The servers, proxies and clients of one case.
struct Harness<'s> {
    server: &'s RedisServer,
    /// Reads what Redis holds, connected directly, with default settings.
    observer: LockClient,
    nodes: Vec<Node>,
    /// Crashed clients, silenced (their proxies black-holed) until the case ends.
    crashed: Vec<Node>,
    started: usize,
    /// When the last step with a stalled operation was over (its outcome in Redis, a dropped
    /// guard's release included): the memo of every resend was written before.
    last_stall: Cell<Option<Instant>>,
}

impl<'s> Harness<'s> {
    async fn new(server: &'s RedisServer) -> Harness<'s> {
        let observer = LockClient::connect(&server.url())
            .await
            .unwrap_or_else(|err| panic!("connecting to {}: {err:?}", server.url()));
        let mut harness = Harness {
            server,
            observer,
            nodes: Vec::new(),
            crashed: Vec::new(),
            started: 0,
            last_stall: Cell::new(None),
        };
        for _ in 0..CLIENTS {
            let node = harness.start_node().await;
            harness.nodes.push(node);
        }
        harness
    }

    async fn start_node(&mut self) -> Node {
        self.started += 1;
        Node::start(self.server, format!("model-client-{}", self.started)).await
    }

    fn client(&self, client: usize) -> &LockClient {
        &self.nodes[client].client
    }

    /// Runs `op`, a request of client `client`, stalled if `stalled`: the client's connections
    /// are held first, so the request's first copy stays in the proxy.
    async fn send<T>(
        &self,
        client: usize,
        stalled: bool,
        op: impl Future<Output = T>,
    ) -> Result<T, String> {
        let node = &self.nodes[client];
        if stalled {
            node.proxy.hold_connections();
        }
        let out = tokio::time::timeout(OP_LIMIT, op).await;
        if stalled {
            node.last_fault.set(Some(Instant::now()));
            // What the outcome started in the background (the undo of a request given up)
            // goes out on a fresh connection, not held by the next stall: each stall holds one
            // operation's copy.
            tokio::time::sleep(BACKGROUND).await;
        }
        out.map_err(|_| format!("the operation did not return within {OP_LIMIT:?}"))
    }

    /// Whether a fault touched `client`'s connections recently enough to have cost its watchdog
    /// the renewals that kept a lease.
    fn recent_fault(&self, client: usize) -> bool {
        self.nodes[client].last_fault.get().is_some_and(|fault| {
            fault.elapsed() < WATCHDOG_TIMEOUT + RESPONSE_TIMEOUT + Duration::from_millis(500)
        })
    }

    fn held_bytes(&self) -> usize {
        self.nodes.iter().map(|node| node.proxy.held_bytes()).sum()
    }

    /// Delivers every held copy and waits until Redis ran them.
    async fn deliver(&self) -> Result<(), String> {
        for node in &self.nodes {
            node.proxy.release_held();
        }
        if !eventually(Duration::from_secs(3), || self.held_bytes() == 0).await {
            return Err(format!(
                "{} held bytes still not delivered after 3 s",
                self.held_bytes()
            ));
        }
        // Delivered to Redis's socket; time for Redis to run them.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(())
    }

    /// Client `client` crashes: its proxy swallows everything from now on and a fresh client
    /// takes its place.
    async fn crash(&mut self, client: usize) {
        let fresh = self.start_node().await;
        let crashed = std::mem::replace(&mut self.nodes[client], fresh);
        crashed.proxy.blackhole(true);
        self.crashed.push(crashed);
    }

    fn reset(&self, client: usize) {
        let node = &self.nodes[client];
        node.proxy.drop_connections();
        node.last_fault.set(Some(Instant::now()));
    }
}

/// A reference model of one primitive, driven step by step beside the real one.
trait Model: Sized {
    type Op: fmt::Debug + Clone;

    /// For reports.
    const NAME: &'static str;

    /// The steps `genes` stand for (see [`Gene`]).
    fn plan(genes: &[Gene]) -> Vec<Step<Self::Op>>;

    fn new() -> Self;

    /// Runs `op` (stalled if `stalled`) and checks its outcome against the model; says what
    /// happened.
    async fn apply(
        &mut self,
        h: &Harness<'_>,
        op: &Self::Op,
        stalled: bool,
    ) -> Result<String, String>;

    /// Compares what Redis holds with the model.
    async fn check(&mut self, h: &Harness<'_>) -> Result<(), Mismatch>;

    /// Client `client` crashed.
    fn crashed(&mut self, _client: usize) {}

    /// When every fixed lease, and every lease of a crashed client, surely ran out.
    fn leases_end(&self) -> Option<Instant> {
        None
    }

    /// Gives everything back and checks nothing is left.
    async fn finish(&mut self, h: &Harness<'_>) -> Result<(), String>;
}

/// What a comparison of Redis with the model found wrong.
#[derive(Debug)]
struct Mismatch {
    message: String,
    /// Whether a background effect still on its way (a dropped guard's release, an undo) may
    /// explain it; otherwise it is a violation at once.
    may_settle: bool,
}

impl Mismatch {
    fn may_settle(message: String) -> Self {
        Self {
            message,
            may_settle: true,
        }
    }
}

impl From<String> for Mismatch {
    fn from(message: String) -> Self {
        Self {
            message,
            may_settle: false,
        }
    }
}

/// Compares with the model; a mismatch that a background effect may explain is compared again
/// until they agree, for at most [`CONVERGE`].
async fn settle<M: Model>(model: &mut M, h: &Harness<'_>) -> Result<(), String> {
    let until = Instant::now() + CONVERGE;
    loop {
        match model.check(h).await {
            Ok(()) => return Ok(()),
            Err(mismatch) if !mismatch.may_settle || Instant::now() >= until => {
                return Err(mismatch.message);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn run_step<M: Model>(
    h: &mut Harness<'_>,
    model: &mut M,
    step: &Step<M::Op>,
) -> Result<String, String> {
    match step {
        Step::Op { op, stalled } => model.apply(h, op, *stalled).await,
        Step::DeliverNow => {
            h.deliver().await?;
            Ok("delivered".into())
        }
        Step::DeliverLate => {
            if h.held_bytes() == 0 {
                return Ok("nothing held".into());
            }
            // Every memo was written before the last step with a stalled operation was over.
            if let Some(stalled) = h.last_stall.get() {
                tokio::time::sleep_until(stalled + MEMO_TTL + Duration::from_millis(50)).await;
            }
            h.deliver().await?;
            Ok("delivered after the memo TTL".into())
        }
        Step::ExpireLeases => match model.leases_end() {
            Some(end) => {
                tokio::time::sleep_until(end + Duration::from_millis(100)).await;
                Ok("leases ran out".into())
            }
            None => Ok("no lease to run out".into()),
        },
        Step::Crash(client) => {
            h.crash(*client).await;
            model.crashed(*client);
            Ok("crashed; a fresh client took its place".into())
        }
        Step::Reset(client) => {
            h.reset(*client);
            Ok("connections reset".into())
        }
    }
}

/// Runs one sequence; `Err` says which step broke which invariant, after what.
async fn run_case<M: Model>(server: &RedisServer, steps: &[Step<M::Op>]) -> Result<(), String> {
    let mut h = Harness::new(server).await;
    let mut model = M::new();
    let mut trace = Vec::new();
    let report = |trace: &[String], what: String| {
        format!(
            "{what}\n  after:\n{}",
            trace
                .iter()
                .map(|line| format!("    {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    for (i, step) in steps.iter().enumerate() {
        let started = Instant::now();
        let done = run_step(&mut h, &mut model, step).await;
        let line = |outcome: &str| {
            format!(
                "{}. {step:?} -> {outcome} ({} ms)",
                i + 1,
                started.elapsed().as_millis()
            )
        };
        let note = match done {
            Ok(note) => note,
            Err(err) => return Err(report(&trace, format!("{}: {err}", line("VIOLATION")))),
        };
        trace.push(line(&note));
        if let Err(err) = settle(&mut model, &h).await {
            return Err(report(
                &trace,
                format!("after step {}, Redis disagrees: {err}", i + 1),
            ));
        }
        if matches!(step, Step::Op { stalled: true, .. }) {
            h.last_stall.set(Some(Instant::now()));
        }
    }
    // Whatever is still held reaches Redis, then everything is given back.
    h.deliver().await?;
    if let Err(err) = settle(&mut model, &h).await {
        return Err(report(
            &trace,
            format!("once every held copy was delivered: {err}"),
        ));
    }
    model
        .finish(&h)
        .await
        .map_err(|err| report(&trace, format!("giving everything back: {err}")))
}

/// Runs `lanes` side by side, each with its own clients and names, on one server: most of a
/// sequence's time is spent waiting (for timeouts, memos, leases), so lanes cost little more
/// than one. Returns the first failure, naming its lane; the other lanes are dropped then.
async fn run_lanes<M: Model>(
    server: &RedisServer,
    lanes: &[Vec<Step<M::Op>>],
) -> Result<(), String> {
    type Lane<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;
    let mut running: Vec<Option<Lane<'_>>> = lanes
        .iter()
        .enumerate()
        .map(|(lane, steps)| {
            let run = async move {
                run_case::<M>(server, steps)
                    .await
                    .map_err(|err| format!("lane {}: {err}", lane + 1))
            };
            Some(Box::pin(run) as Lane<'_>)
        })
        .collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for slot in &mut running {
            let Some(lane) = slot else { continue };
            match lane.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => *slot = None,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    })
    .await
}

/// A server with every script loaded: a late copy runs the script it names even if no other
/// copy of it reached Redis first (an `FCALL` or `EVALSHA` that finds no script does nothing).
fn start_server() -> RedisServer {
    let server = RedisServer::start();
    load_every_script(&server);
    server
}

/// Runs `check`, an assertion of the kit (which panics), and returns its message as an error,
/// so that a failure reports the steps that led to it.
fn kit_check(check: impl FnOnce()) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| {
                panic
                    .downcast_ref::<&str>()
                    .map(|message| (*message).to_owned())
            })
            .unwrap_or_else(|| "a kit assertion failed".to_owned())
    })
}

/// How much of a model one run explores.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// Cases, each of up to `lanes` sequences run side by side.
    cases: u32,
    lanes: usize,
    /// Genes per sequence (a late delivery planned with its operation adds a step).
    genes: usize,
}

/// Runs `budget` of random sequences of model `M`; on a failure, the minimal case proptest
/// shrank it to, and what broke.
fn explore<M: Model>(budget: Budget) -> Result<String, String> {
    let defaults = Config::default();
    let seed = match defaults.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |now| now.as_nanos() as u64),
    };
    // The environment (`PROPTEST_CASES=100`, `PROPTEST_MAX_SHRINK_TIME=...`) overrides the CI
    // budget, to explore further.
    let set = |name: &str| std::env::var_os(name).is_some();
    let config = Config {
        cases: if set("PROPTEST_CASES") {
            defaults.cases
        } else {
            budget.cases
        },
        max_shrink_time: if set("PROPTEST_MAX_SHRINK_TIME") {
            defaults.max_shrink_time
        } else {
            SHRINK_TIME.as_millis() as u32
        },
        max_shrink_iters: if set("PROPTEST_MAX_SHRINK_ITERS") {
            defaults.max_shrink_iters
        } else {
            1_000
        },
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..defaults
    };
    let cases = config.cases;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("building a Tokio runtime: {err}"));
    let started = std::time::Instant::now();
    // When the first failure was found, and in which case.
    let found = Mutex::new(None);
    let runs = AtomicU32::new(0);
    let lanes = prop::collection::vec(steps::<M>(budget.genes), 1..=budget.lanes);
    let outcome = TestRunner::new(config).run(&lanes, |lanes| {
        let run = runs.fetch_add(1, Ordering::Relaxed) + 1;
        // A server of its own for each case, as every test of the kit has.
        let server = start_server();
        let result = runtime.block_on(run_lanes::<M>(&server, &lanes));
        if let Err(err) = &result {
            let mut found = found.lock().unwrap_or_else(PoisonError::into_inner);
            if found.is_none() {
                // Said at once, unshrunk: should the run be stopped while it shrinks (a test
                // runner's timeout), the failure is on record.
                eprintln!(
                    "{} model (seed {seed}): case {run} failed; shrinking it for up to \
                     {SHRINK_TIME:?}:\n{err}",
                    M::NAME
                );
                *found = Some((run, started.elapsed()));
            }
        }
        result.map_err(TestCaseError::fail)
    });
    let took = started.elapsed();
    let Budget { lanes, genes, .. } = budget;
    let (reason, case) = match outcome {
        Ok(()) => {
            return Ok(format!(
                "{} model: {cases} cases of up to {lanes} sequences of up to {genes} genes kept \
                 every invariant ({took:.1?}, seed {seed})",
                M::NAME
            ));
        }
        Err(TestError::Abort(reason)) => {
            return Err(format!("{} model aborted: {reason}", M::NAME));
        }
        Err(TestError::Fail(reason, case)) => (reason, case),
    };
    let found = match found.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some((run, after)) => format!("found in case {run} after {after:.1?}"),
        None => "found".to_owned(),
    };
    let listed: Vec<String> = case
        .iter()
        .enumerate()
        .map(|(i, steps)| {
            let steps: Vec<String> = steps
                .iter()
                .enumerate()
                .map(|(j, step)| format!("    {}. {step:?}", j + 1))
                .collect();
            format!("  lane {}:\n{}", i + 1, steps.join("\n"))
        })
        .collect();
    Err(format!(
        "{} model (seed {seed}; {found}, shrunk by {took:.1?} in all): minimal failing case:\n{}\n\
         what broke, in {reason}",
        M::NAME,
        listed.join("\n")
    ))
}

/// Runs one given sequence of model `M` (a counterexample the random search found).
fn replay<M: Model>(steps: &[Step<M::Op>]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("building a Tokio runtime: {err}"));
    let server = start_server();
    if let Err(err) = runtime.block_on(run_case::<M>(&server, steps)) {
        panic!("{} model: {err}", M::NAME);
    }
}

// ---------------------------------------------------------------------------------------------
// What the lock and the semaphore share: acquisitions, their guards, and their leases.

/// What a guard tells about its lease.
trait Leased {
    fn is_lease_lost(&self) -> bool;
    fn remaining_lease(&self) -> Duration;
}

impl Leased for LockGuard {
    fn is_lease_lost(&self) -> bool {
        LockGuard::is_lease_lost(self)
    }

    fn remaining_lease(&self) -> Duration {
        LockGuard::remaining_lease(self)
    }
}

impl Leased for SemaphorePermit {
    fn is_lease_lost(&self) -> bool {
        SemaphorePermit::is_lease_lost(self)
    }

    fn remaining_lease(&self) -> Duration {
        SemaphorePermit::remaining_lease(self)
    }
}

/// What the model knows of an acquisition's place in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Its guard trusts its lease: Redis holds it, with exactly the model's count.
    Live,
    /// Its lease may have ended (it ran out, or its client crashed): Redis holds it with the
    /// model's count, or not at all.
    Doubtful,
    /// Given back, or seen gone: Redis must never show it again.
    Gone,
}

/// One acquisition (a lock's fresh acquisition with its re-entries, or a semaphore's permits).
struct Hold {
    index: usize,
    client: usize,
    /// Its owner id (lock) or permit id (semaphore).
    id: String,
    leasing: Leasing,
    /// The fencing token (lock), 0 for permits.
    token: u64,
    /// When its acquire returned: its lease in Redis was set before.
    taken_at: Instant,
    /// A time until which Redis surely held it, once its last count was given back: when the
    /// release of that count started, if it found the hold (an unlock that returned `Ok`), or
    /// when its last guard was dropped while the lease still ran. Not set for permits.
    held_until: Option<Instant>,
    crashed_at: Option<Instant>,
    /// Holds (lock: 1 + re-entries not given back) or permits.
    count: u64,
    state: State,
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acquisition #{} (client {}, {:?} lease, count {}, {:?})",
            self.index, self.client, self.leasing, self.count, self.state
        )
    }
}

/// The acquisitions of one primitive, and the guards that hold them.
struct Holds<G> {
    /// "hold" or "permit".
    unit: &'static str,
    holds: Vec<Hold>,
    /// Each guard with the index of its acquisition, oldest first.
    guards: Vec<(usize, G)>,
    /// The guards of crashed clients: never given back, kept until the case ends.
    dead: Vec<G>,
}

impl<G: Leased> Holds<G> {
    fn new(unit: &'static str) -> Self {
        Self {
            unit,
            holds: Vec::new(),
            guards: Vec::new(),
            dead: Vec::new(),
        }
    }

    fn add(
        &mut self,
        client: usize,
        id: String,
        leasing: Leasing,
        token: u64,
        count: u64,
        guard: G,
    ) -> usize {
        let index = self.holds.len();
        self.holds.push(Hold {
            index,
            client,
            id,
            leasing,
            token,
            taken_at: Instant::now(),
            held_until: None,
            crashed_at: None,
            count,
            state: State::Live,
        });
        self.guards.push((index, guard));
        index
    }

    /// The guard `pick` names among the live guards, newest first (0 is the newest, modulo
    /// their number), if any: releasing the innermost re-entry first is the usual order.
    fn pick(&self, pick: usize) -> Option<usize> {
        let len = self.guards.len();
        (len > 0).then(|| len - 1 - pick % len)
    }

    fn live(&self) -> impl Iterator<Item = &Hold> {
        self.holds.iter().filter(|hold| hold.state == State::Live)
    }

    fn any_doubtful(&self) -> bool {
        self.holds.iter().any(|hold| hold.state == State::Doubtful)
    }

    fn knows(&self, id: &str) -> bool {
        self.holds.iter().any(|hold| hold.id == id)
    }

    /// Moves every live acquisition whose guard knows its lease lost to `Doubtful`, if the
    /// loss has a reason; a loss without one is a violation.
    fn check_leases(&mut self, h: &Harness<'_>) -> Result<(), String> {
        for hold in &mut self.holds {
            if hold.state != State::Live {
                continue;
            }
            let Some((_, guard)) = self.guards.iter().find(|(index, _)| *index == hold.index)
            else {
                continue;
            };
            if !guard.is_lease_lost() {
                continue;
            }
            let left = guard.remaining_lease();
            if !left.is_zero() {
                return Err(format!(
                    "{hold}: its guard reports the lease lost with {left:?} of it still to run: \
                     the watchdog found the {} gone or taken while the lease was valid",
                    self.unit
                ));
            }
            if hold.leasing == Leasing::Watchdog && !h.recent_fault(hold.client) {
                return Err(format!(
                    "{hold}: its watchdog lease ran out although its client was healthy and its \
                     guard alive: nothing renewed it"
                ));
            }
            hold.state = State::Doubtful;
        }
        Ok(())
    }

    /// Compares the model with `seen`, the ids Redis shows holding and their counts.
    fn compare(&mut self, seen: &[(String, u64)]) -> Result<(), Mismatch> {
        let unit = self.unit;
        let shown = if seen.is_empty() {
            format!("Redis shows no {unit}")
        } else {
            let listed: Vec<String> = seen
                .iter()
                .map(|(id, count)| {
                    let known = self
                        .holds
                        .iter()
                        .find(|hold| hold.id == *id)
                        .map_or("unknown".to_owned(), |hold| format!("#{}", hold.index));
                    format!("{known} = {id} x{count}")
                })
                .collect();
            format!("Redis shows {}", listed.join(", "))
        };
        if let Some((id, count)) = seen.iter().find(|(id, _)| !self.knows(id)) {
            // An undo of an acquisition whose caller gave up may be on its way.
            return Err(Mismatch::may_settle(format!(
                "{shown}: {id} holds {count} {unit}(s), taken by no acquisition of the model (a \
                 late copy of a request whose caller gave up?)"
            )));
        }
        for hold in &mut self.holds {
            let here = seen
                .iter()
                .find(|(id, _)| *id == hold.id)
                .map(|(_, count)| *count);
            let problem = match (hold.state, here) {
                // A release in the background (a dropped guard) may be on its way.
                (State::Gone, Some(count)) => Mismatch::may_settle(format!(
                    "{hold} was given back or seen gone, yet Redis shows it with count {count}"
                )),
                (_, Some(count)) if count > hold.count => Mismatch::may_settle(format!(
                    "Redis counts {count} {unit}(s) for {hold}, the model {}",
                    hold.count
                )),
                (_, Some(count)) if count < hold.count => Mismatch::from(format!(
                    "Redis counts {count} {unit}(s) for {hold}, the model {}",
                    hold.count
                )),
                (State::Live, None) => Mismatch::from(format!(
                    "{hold}: its guard trusts its lease, but Redis does not hold it"
                )),
                (State::Doubtful, None) => {
                    hold.state = State::Gone;
                    continue;
                }
                _ => continue,
            };
            return Err(Mismatch {
                message: format!("{} ({shown})", problem.message),
                ..problem
            });
        }
        Ok(())
    }

    /// A guard of acquisition `hold` gave `units` back (all of them if `None`) with `result`;
    /// `could_have_run_out`: its lease may have ended during the release.
    fn gave_back(
        &mut self,
        hold: usize,
        units: Option<u64>,
        result: Result<(), LockError>,
        could_have_run_out: bool,
    ) -> Result<String, String> {
        let hold = &mut self.holds[hold];
        let verdict = match (hold.state, &result) {
            (State::Live, Ok(())) => Ok("given back".to_owned()),
            (State::Live, Err(err)) if could_have_run_out => {
                hold.state = State::Doubtful;
                Ok(format!("its lease ran out meanwhile: {err}"))
            }
            (State::Live, Err(err)) => Err(format!("giving back {hold} failed: {err}")),
            (State::Doubtful, result) => Ok(format!("lease in doubt: {result:?}")),
            (State::Gone, Ok(())) => Err(format!(
                "giving back {hold} succeeded, although Redis no longer held it"
            )),
            (State::Gone, Err(err)) => Ok(format!("not held: {err}")),
        };
        hold.count = units.map_or(0, |units| hold.count.saturating_sub(units));
        if hold.count == 0 {
            hold.state = State::Gone;
        }
        verdict
    }

    fn crashed(&mut self, client: usize) {
        let now = Instant::now();
        for hold in &mut self.holds {
            if hold.client == client && hold.state != State::Gone {
                hold.state = State::Doubtful;
                hold.crashed_at = Some(now);
            }
        }
        let (dead, alive): (Vec<_>, Vec<_>) = std::mem::take(&mut self.guards)
            .into_iter()
            .partition(|(index, _)| self.holds[*index].client == client);
        self.guards = alive;
        self.dead.extend(dead.into_iter().map(|(_, guard)| guard));
    }

    fn leases_end(&self) -> Option<Instant> {
        self.holds
            .iter()
            .filter(|hold| hold.state != State::Gone)
            .filter_map(|hold| match (hold.leasing, hold.crashed_at) {
                (Leasing::Fixed, _) => Some(hold.taken_at + FIXED_LEASE),
                (Leasing::Watchdog, Some(crashed)) => Some(crashed + WATCHDOG_TIMEOUT),
                (Leasing::Watchdog, None) => None,
            })
            .max()
    }
}

/// The end of a case of a model whose acquisitions are lock guards (its `holds`): every guard
/// unlocked, innermost first, until Redis agrees with the model; then, unless a lease is in
/// doubt, `released` (the primitive's check that nothing of `name` is held) passes, and no key
/// of `name` is left without a TTL either way.
async fn finish_locks<M: Model>(
    model: &mut M,
    h: &Harness<'_>,
    holds: fn(&mut M) -> &mut Holds<LockGuard>,
    released: fn(&RedisServer, &str),
    name: &str,
) -> Result<(), String> {
    holds(model).unlock_all(h).await?;
    settle(model, h).await?;
    let in_doubt = holds(model).any_doubtful();
    kit_check(|| {
        if !in_doubt {
            released(h.server, name);
        }
        assert_no_key_without_ttl(h.server, name);
    })
}

/// Whether `miss`, when an acquisition ended without a guard, is recent enough that the waiter
/// it may have left queued is still there: its leave (sent in the background, resent until it
/// lands) or, if that was lost, the end of its liveness period (the watchdog timeout) has not
/// surely come.
fn recent(miss: Option<Instant>) -> bool {
    miss.is_some_and(|miss| {
        miss.elapsed() < WATCHDOG_TIMEOUT + RESPONSE_TIMEOUT + Duration::from_millis(500)
    })
}

/// Whether `guard`'s lease, read now, may have run out by the end of a release starting now:
/// lost already, or too little left for a lease that can end (a fixed one, or a watchdog's
/// whose client just missed renewals).
fn may_run_out<G: Leased>(
    guard: &G,
    leasing: Leasing,
    recent_fault: bool,
) -> impl Fn() -> bool + use<G> {
    let started = Instant::now();
    let left = guard.remaining_lease();
    let lost = guard.is_lease_lost();
    move || {
        lost || ((leasing == Leasing::Fixed || recent_fault)
            && started.elapsed() + Duration::from_millis(50) >= left)
    }
}

/// What the lock and the read-write lock do with their guards alike.
impl Holds<LockGuard> {
    /// Counts the outcome `entered` of a re-entry of acquisition `hold` (inside the scope of
    /// one of its guards, waiting `wait`, stalled if `stalled`).
    fn reentered(
        &mut self,
        hold: usize,
        entered: Result<LockGuard, LockError>,
        wait: Wait,
        stalled: bool,
    ) -> Result<String, String> {
        let index = hold;
        let hold = &mut self.holds[index];
        match entered {
            Ok(inner) => {
                if inner.fencing_token() != hold.token {
                    return Err(format!(
                        "the re-entry of {hold} carries token {}, not its outer hold's {}",
                        inner.fencing_token(),
                        hold.token
                    ));
                }
                if hold.state == State::Gone {
                    return Err(format!("re-entered {hold}, which Redis no longer held"));
                }
                hold.count += 1;
                let count = hold.count;
                self.guards.push((index, inner));
                Ok(format!("re-entered #{index}: {count} holds"))
            }
            // A short wait ends before a resend: a held (or merely slow) request is given up.
            Err(err)
                if hold.state == State::Live
                    && !(wait == Wait::Short && (stalled || err.is_redis())) =>
            {
                Err(format!("re-entering {hold} failed: {err}"))
            }
            Err(err) => Ok(format!("not re-entered: {err}")),
        }
    }

    /// `unlock()` of the guard `guard` names (see [`Holds::pick`]), stalled if `stalled`.
    async fn unlock(
        &mut self,
        h: &Harness<'_>,
        guard: usize,
        stalled: bool,
    ) -> Result<String, String> {
        let Some(picked) = self.pick(guard) else {
            return Ok("no guard to unlock".into());
        };
        let (index, guard) = self.guards.remove(picked);
        let hold = &self.holds[index];
        let client = hold.client;
        let ran_out = may_run_out(&guard, hold.leasing, h.recent_fault(client));
        let started = Instant::now();
        let result = h.send(client, stalled, guard.unlock()).await?;
        let hold = &mut self.holds[index];
        if hold.count == 1 && result.is_ok() {
            hold.held_until = Some(started);
        }
        self.check_leases(h)?;
        self.gave_back(index, Some(1), result, ran_out())
            .map(|note| format!("#{index}: {note}"))
    }

    /// Drops the guard `guard` names: released in the background, held if `stalled`.
    async fn drop_guard(
        &mut self,
        h: &Harness<'_>,
        guard: usize,
        stalled: bool,
    ) -> Result<String, String> {
        let Some(picked) = self.pick(guard) else {
            return Ok("no guard to drop".into());
        };
        let (index, guard) = self.guards.remove(picked);
        let client = self.holds[index].client;
        if self.holds[index].count == 1 && !guard.is_lease_lost() {
            self.holds[index].held_until = Some(Instant::now());
        }
        h.send(client, stalled, async { drop(guard) }).await?;
        let hold = &mut self.holds[index];
        hold.count -= 1;
        if hold.count == 0 {
            hold.state = State::Gone;
        }
        Ok(format!("dropped a guard of #{index}"))
    }

    /// Unlocks every guard, innermost first (`pick` 0 is the newest guard).
    async fn unlock_all(&mut self, h: &Harness<'_>) -> Result<(), String> {
        while !self.guards.is_empty() {
            self.unlock(h, 0, false).await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The reentrant lock.

#[derive(Debug, Clone)]
enum LockOp {
    /// `try_acquire` by client `client`, outside any scope.
    Acquire {
        client: usize,
        leasing: Leasing,
        wait: Wait,
    },
    /// Re-enters inside the scope of the guard `guard` names (see [`Holds::pick`]).
    Reenter { guard: usize, wait: Wait },
    /// `unlock()` of the guard `guard` names: an outer guard or a re-entry's.
    Unlock { guard: usize },
    /// Drops the guard `guard` names: released in the background.
    Drop { guard: usize },
    /// `try_acquire` by client `client`, with a watchdog lease, started in the background: it
    /// waits (up to [`CONTEND_WAIT`]) while the steps after it run, so a release wakes it by
    /// name, or (the fair lock) hands it the lock.
    Contend { client: usize },
    /// Waits for the oldest contender to return, and counts what it got.
    Join,
}

/// How long a contender ([`LockOp::Contend`]) waits for the lock: a few steps.
const CONTEND_WAIT: Duration = Duration::from_secs(2);

/// An acquisition waiting in the background ([`LockOp::Contend`]): what it returned, and when.
struct Contender {
    client: usize,
    outcome: tokio::task::JoinHandle<(Result<LockGuard, LockError>, Instant)>,
}

/// The reentrant lock, or with `FAIR` the fair lock: the same operations and checks, and the
/// fair lock's own rule (first come, first served) where an acquisition may fail.
struct LockModel<const FAIR: bool> {
    name: String,
    holds: Holds<LockGuard>,
    last_token: Option<u64>,
    /// When an acquisition last ended without a guard (the fair lock only): until its waiter
    /// left the queue (in the background, or after one liveness period if the leave was lost),
    /// a free fair lock goes to it, not to a newcomer.
    last_miss: Option<Instant>,
    /// The acquisitions waiting in the background, oldest first.
    contenders: VecDeque<Contender>,
}

/// The handle a [`LockModel`] drives.
enum Exclusive {
    Lock(lock_runtime::Lock),
    Fair(lock_runtime::FairLock),
}

impl Exclusive {
    async fn try_acquire(
        &self,
        wait: Duration,
        lease: Option<Duration>,
    ) -> Result<LockGuard, LockError> {
        match self {
            Self::Lock(lock) => lock.try_acquire(wait, lease).await,
            Self::Fair(lock) => lock.try_acquire(wait, lease).await,
        }
    }

    async fn info(&self) -> Result<lock_runtime::LockInfo, LockError> {
        match self {
            Self::Lock(lock) => lock.info().await,
            Self::Fair(lock) => lock.info().await,
        }
    }
}

impl<const FAIR: bool> LockModel<FAIR> {
    /// Counts `token`, the token of a fresh acquisition: strictly above every one before.
    fn handed_out(&mut self, token: u64) -> Result<(), String> {
        if let Some(last) = self.last_token
            && token <= last
        {
            return Err(format!(
                "fencing token {token} handed out after {last}: not strictly increasing"
            ));
        }
        self.last_token = Some(token);
        Ok(())
    }

    fn handle(&self, client: &LockClient) -> Exclusive {
        if FAIR {
            Exclusive::Fair(client.fair_lock(&self.name))
        } else {
            Exclusive::Lock(client.lock(&self.name))
        }
    }

    async fn holder(&self, h: &Harness<'_>) -> Result<Vec<(String, u64)>, String> {
        let info = self
            .handle(&h.observer)
            .info()
            .await
            .map_err(|err| format!("reading the lock: {err}"))?;
        Ok(info
            .holder()
            .map(|holder| (holder.owner().to_owned(), holder.hold_count()))
            .into_iter()
            .collect())
    }

    async fn acquire(
        &mut self,
        h: &Harness<'_>,
        client: usize,
        leasing: Leasing,
        wait: Wait,
        stalled: bool,
    ) -> Result<String, String> {
        let lock = self.handle(h.client(client));
        let taken = h
            .send(
                client,
                stalled,
                lock.try_acquire(wait.duration(), leasing.lease()),
            )
            .await?;
        self.holds.check_leases(h)?;
        let busy = self.holds.live().next().map(ToString::to_string);
        let queued_ahead = FAIR && recent(self.last_miss);
        if taken.is_err() {
            self.last_miss = Some(Instant::now());
        }
        let guard = match taken {
            Ok(guard) => guard,
            Err(err) if busy.is_some() || self.holds.any_doubtful() => {
                return Ok(format!("not acquired (held): {err}"));
            }
            Err(err) if queued_ahead => {
                return Ok(format!("not acquired (a waiter may queue ahead): {err}"));
            }
            Err(err) if !self.contenders.is_empty() => {
                return Ok(format!("not acquired (a contender may hold it): {err}"));
            }
            // A short wait ends before a resend: a held (or merely slow) request is given up.
            Err(err) if wait == Wait::Short && (stalled || err.is_redis()) => {
                return Ok(format!("gave up before a resend: {err}"));
            }
            Err(err) => return Err(format!("acquiring the free lock failed: {err}")),
        };
        if let Some(busy) = busy {
            return Err(format!(
                "two live holders: client {client} acquired the lock while {busy} still trusts \
                 its lease"
            ));
        }
        let token = guard.fencing_token();
        self.handed_out(token)?;
        let owner = match self.holder(h).await?.pop() {
            Some((owner, _)) => owner,
            None => return Err("Redis shows the lock free right after it was acquired".into()),
        };
        if !owner.starts_with(h.client(client).id()) || self.holds.knows(&owner) {
            return Err(format!(
                "client {client} acquired the lock, but Redis shows it held by {owner}"
            ));
        }
        let index = self.holds.add(client, owner, leasing, token, 1, guard);
        Ok(format!("acquired as #{index}, token {token}"))
    }

    async fn reenter(
        &mut self,
        h: &Harness<'_>,
        guard: usize,
        wait: Wait,
        stalled: bool,
    ) -> Result<String, String> {
        let Some(picked) = self.holds.pick(guard) else {
            return Ok("no guard to re-enter".into());
        };
        let (index, outer) = &self.holds.guards[picked];
        let index = *index;
        let client = self.holds.holds[index].client;
        let lock = self.handle(h.client(client));
        let entered = h
            .send(
                client,
                stalled,
                outer.scope(lock.try_acquire(wait.duration(), None)),
            )
            .await?;
        self.holds.check_leases(h)?;
        self.holds.reentered(index, entered, wait, stalled)
    }

    fn contend(&mut self, h: &Harness<'_>, client: usize) -> String {
        let lock = self.handle(h.client(client));
        let outcome = tokio::spawn(async move {
            let taken = lock.try_acquire(CONTEND_WAIT, None).await;
            (taken, Instant::now())
        });
        self.contenders.push_back(Contender { client, outcome });
        format!("client {client} waits in the background")
    }

    /// Counts what the oldest contender got. A lock it took it held from when its acquire
    /// returned (`done`) until now, its watchdog lease trusted. So no acquisition the model
    /// knows may have returned since (its guard trusted its lease as it returned: Redis held both
    /// then), and none that returned before may have been held in Redis past `done`: one still
    /// live, or one given back later that Redis surely held until then (see
    /// [`Hold::held_until`]).
    async fn join(&mut self, h: &Harness<'_>) -> Result<String, String> {
        let Some(Contender { client, outcome }) = self.contenders.pop_front() else {
            return Ok("no contender".into());
        };
        let (taken, done) = tokio::time::timeout(OP_LIMIT, outcome)
            .await
            .map_err(|_| format!("client {client}'s contender did not return within {OP_LIMIT:?}"))?
            .map_err(|err| format!("client {client}'s contender failed: {err}"))?;
        self.holds.check_leases(h)?;
        let guard = match taken {
            Ok(guard) if !guard.is_lease_lost() => guard,
            Ok(_) => return Ok("acquired; its lease is lost since (dropped)".into()),
            Err(err) => {
                self.last_miss = Some(done);
                return Ok(format!("not acquired: {err}"));
            }
        };
        let waited = done.elapsed();
        for hold in &self.holds.holds {
            let overlap = hold.taken_at > done
                || hold.state == State::Live
                || hold.held_until.is_some_and(|until| until > done);
            if overlap {
                return Err(format!(
                    "two live holders: client {client}'s contender took the lock {waited:?} ago \
                     while {hold} held it (taken {:?} ago, surely held until {:?} ago)",
                    hold.taken_at.elapsed(),
                    hold.held_until.map(|until| until.elapsed())
                ));
            }
        }
        let token = guard.fencing_token();
        self.handed_out(token)?;
        let owner = match self.holder(h).await?.pop() {
            Some((owner, _))
                if owner.starts_with(h.client(client).id()) && !self.holds.knows(&owner) =>
            {
                owner
            }
            seen => {
                return Err(format!(
                    "client {client}'s contender took the lock, but Redis shows it held by \
                     {seen:?}"
                ));
            }
        };
        let index = self
            .holds
            .add(client, owner, Leasing::Watchdog, token, 1, guard);
        self.holds.holds[index].taken_at = done;
        Ok(format!(
            "took the lock {waited:?} ago as #{index}, token {token}"
        ))
    }
}

impl<const FAIR: bool> Model for LockModel<FAIR> {
    type Op = LockOp;

    const NAME: &'static str = if FAIR { "fair lock" } else { "lock" };

    fn plan(genes: &[Gene]) -> Vec<Step<LockOp>> {
        let mut plan = Planner::new();
        // The abstract lock: the client of each guard, oldest first; who holds the lock and
        // with which lease; whether that holder crashed.
        let mut guards: Vec<usize> = Vec::new();
        let mut holder: Option<(usize, Leasing)> = None;
        let mut dead = false;
        // The clients of the contenders waiting, oldest first: a client with one is not
        // crashed (its contender would wait on a dead connection until it gives up).
        let mut contenders: Vec<usize> = Vec::new();
        for &gene in genes {
            let crashes_a_contender = gene.is_fault()
                && gene.roll - Gene::FAULTS == 3
                && contenders.contains(&(usize::from(gene.who) % CLIENTS));
            if gene.is_fault() && !crashes_a_contender {
                let leases = dead || holder.is_some_and(|(_, leasing)| leasing == Leasing::Fixed);
                match plan.fault(gene, leases) {
                    Some(&Step::Crash(client)) => {
                        guards.retain(|&guard| guard != client);
                        dead |= holder.is_some_and(|(holder, _)| holder == client);
                        continue;
                    }
                    Some(Step::ExpireLeases) => {
                        holder = None;
                        dead = false;
                        continue;
                    }
                    Some(_) => continue,
                    None => {}
                }
            }
            let guard = gene.pick();
            let picked = (!guards.is_empty()).then(|| guards.len() - 1 - guard % guards.len());
            let op = match (holder, picked, gene.percent()) {
                (Some(_), Some(_), 0..45) if !dead => LockOp::Reenter {
                    guard,
                    wait: gene.wait(),
                },
                (_, Some(_), 0..85) => LockOp::Unlock { guard },
                (_, Some(_), 85..90) => LockOp::Drop { guard },
                (Some(_), _, 90) if !dead && contenders.len() < 2 => LockOp::Contend {
                    client: gene.client(),
                },
                (_, _, percent) if !contenders.is_empty() && percent % 10 == 5 => LockOp::Join,
                _ => LockOp::Acquire {
                    client: gene.client(),
                    leasing: gene.leasing(),
                    wait: gene.wait(),
                },
            };
            let giving_back = matches!(op, LockOp::Unlock { .. } | LockOp::Drop { .. });
            // A stalled request with a short wait is given up before it is resent.
            let given_up = gene.stall(false) != Stall::No && gene.wait() == Wait::Short;
            match (&op, picked) {
                (
                    LockOp::Acquire {
                        client, leasing, ..
                    },
                    _,
                ) if holder.is_none() && !given_up => {
                    holder = Some((*client, *leasing));
                    guards.push(*client);
                }
                (LockOp::Reenter { .. }, Some(picked)) if !given_up => guards.push(guards[picked]),
                (LockOp::Unlock { .. } | LockOp::Drop { .. }, Some(picked)) => {
                    guards.remove(picked);
                    if guards.is_empty() && !dead {
                        holder = None;
                    }
                }
                (LockOp::Contend { client }, _) => contenders.push(*client),
                (LockOp::Join, _) => {
                    let client = contenders.remove(0);
                    if holder.is_none() {
                        holder = Some((client, Leasing::Watchdog));
                        guards.push(client);
                    }
                }
                _ => {}
            }
            if matches!(op, LockOp::Contend { .. } | LockOp::Join) {
                // Started in the background or only awaited: nothing to stall.
                plan.steps.push(Step::Op { op, stalled: false });
                continue;
            }
            plan.op(op, gene, giving_back);
        }
        plan.steps
    }

    fn new() -> Self {
        Self {
            name: unique_name(if FAIR { "model-fair" } else { "model-lock" }),
            holds: Holds::new("hold"),
            last_token: None,
            last_miss: None,
            contenders: VecDeque::new(),
        }
    }

    async fn apply(
        &mut self,
        h: &Harness<'_>,
        op: &LockOp,
        stalled: bool,
    ) -> Result<String, String> {
        match *op {
            LockOp::Acquire {
                client,
                leasing,
                wait,
            } => self.acquire(h, client, leasing, wait, stalled).await,
            LockOp::Reenter { guard, wait } => self.reenter(h, guard, wait, stalled).await,
            LockOp::Unlock { guard } => self.holds.unlock(h, guard, stalled).await,
            LockOp::Drop { guard } => self.holds.drop_guard(h, guard, stalled).await,
            LockOp::Contend { client } => Ok(self.contend(h, client)),
            LockOp::Join => self.join(h).await,
        }
    }

    async fn check(&mut self, h: &Harness<'_>) -> Result<(), Mismatch> {
        let mut seen = self.holder(h).await?;
        // A contender may hold the lock before the model learns of it at its join.
        seen.retain(|(owner, _)| {
            self.holds.knows(owner)
                || !self
                    .contenders
                    .iter()
                    .any(|contender| owner.starts_with(h.client(contender.client).id()))
        });
        self.holds.check_leases(h)?;
        self.holds.compare(&seen)
    }

    fn crashed(&mut self, client: usize) {
        self.holds.crashed(client);
    }

    fn leases_end(&self) -> Option<Instant> {
        self.holds.leases_end()
    }

    async fn finish(&mut self, h: &Harness<'_>) -> Result<(), String> {
        while !self.contenders.is_empty() {
            self.join(h).await?;
        }
        let name = self.name.clone();
        finish_locks(self, h, |model| &mut model.holds, assert_released, &name).await
    }
}

// ---------------------------------------------------------------------------------------------
// The count-down latch.

#[derive(Debug, Clone)]
enum LatchOp {
    TrySetCount { client: usize, count: u64 },
    CountDown { client: usize },
    Count { client: usize },
}

struct LatchModel {
    name: String,
    /// 0: no latch.
    count: u64,
}

impl Model for LatchModel {
    type Op = LatchOp;

    const NAME: &'static str = "latch";

    fn plan(genes: &[Gene]) -> Vec<Step<LatchOp>> {
        let mut plan = Planner::new();
        // The abstract latch: its count.
        let mut count = 0_u64;
        for &gene in genes {
            if gene.is_fault() && plan.fault(gene, false).is_some() {
                continue;
            }
            let client = gene.client();
            let op = match (count, gene.percent()) {
                (0, 0..60) | (_, 0..20) => LatchOp::TrySetCount {
                    client,
                    count: u64::from(gene.small()) + 1,
                },
                (_, 20..85) | (0, _) => LatchOp::CountDown { client },
                _ => LatchOp::Count { client },
            };
            let giving_back = matches!(op, LatchOp::CountDown { .. });
            match op {
                LatchOp::TrySetCount { count: set, .. } if count == 0 => count = set,
                LatchOp::CountDown { .. } => count = count.saturating_sub(1),
                _ => {}
            }
            plan.op(op, gene, giving_back);
        }
        plan.steps
    }

    fn new() -> Self {
        Self {
            name: unique_name("model-latch"),
            count: 0,
        }
    }

    async fn apply(
        &mut self,
        h: &Harness<'_>,
        op: &LatchOp,
        stalled: bool,
    ) -> Result<String, String> {
        match *op {
            LatchOp::TrySetCount { client, count } => {
                let latch = h.client(client).count_down_latch(&self.name);
                let set = h
                    .send(client, stalled, latch.try_set_count(count))
                    .await?
                    .map_err(|err| format!("try_set_count({count}) failed: {err}"))?;
                if set != (self.count == 0) {
                    return Err(format!(
                        "try_set_count({count}) returned {set} on a latch at {}",
                        self.count
                    ));
                }
                if set {
                    self.count = count;
                }
                Ok(format!("set: {set}"))
            }
            LatchOp::CountDown { client } => {
                let latch = h.client(client).count_down_latch(&self.name);
                h.send(client, stalled, latch.count_down())
                    .await?
                    .map_err(|err| format!("count_down failed: {err}"))?;
                self.count = self.count.saturating_sub(1);
                Ok(format!("now {}", self.count))
            }
            LatchOp::Count { client } => {
                let latch = h.client(client).count_down_latch(&self.name);
                let count = h
                    .send(client, stalled, latch.count())
                    .await?
                    .map_err(|err| format!("count failed: {err}"))?;
                if count != self.count {
                    return Err(format!("count() is {count}, the model {}", self.count));
                }
                Ok(format!("{count}"))
            }
        }
    }

    async fn check(&mut self, h: &Harness<'_>) -> Result<(), Mismatch> {
        let info = h
            .observer
            .count_down_latch(&self.name)
            .info()
            .await
            .map_err(|err| format!("reading the latch: {err}"))?;
        if info.count() != self.count {
            return Err(Mismatch::from(format!(
                "the latch stands at {} in Redis, the model at {}",
                info.count(),
                self.count
            )));
        }
        if info.is_set() && info.ttl().is_none() {
            return Err(Mismatch::from("the latch has no TTL".to_owned()));
        }
        Ok(())
    }

    async fn finish(&mut self, h: &Harness<'_>) -> Result<(), String> {
        kit_check(|| assert_no_key_without_ttl(h.server, &self.name))
    }
}

// ---------------------------------------------------------------------------------------------
// The semaphore.

#[derive(Debug, Clone)]
enum SemOp {
    TrySetPermits {
        client: usize,
        permits: u32,
    },
    AddPermits {
        client: usize,
        permits: u32,
    },
    Acquire {
        client: usize,
        permits: u32,
        leasing: Leasing,
        wait: Wait,
    },
    /// `release()` of the permit `permit` names (see [`Holds::pick`]).
    Release {
        permit: usize,
    },
    /// Drops the permit `permit` names: released in the background.
    Drop {
        permit: usize,
    },
    /// `delete_if_unused()`.
    DeleteIfUnused {
        client: usize,
    },
}

struct SemaphoreModel {
    name: String,
    /// The total in Redis; `None`: never set.
    total: Option<u64>,
    /// Permits added by `add_permits` calls that failed: sent once, never resent, so their
    /// only copy may land (now, or when delivered if it was held) or not at all (lost with a
    /// reset connection). Settled when Redis shows them.
    unsure_adds: u64,
    /// A `delete_if_unused` call failed: its copy may land (deleting the semaphore if nobody
    /// uses it then) or not. Kept to the end of the case.
    unsure_delete: bool,
    holds: Holds<SemaphorePermit>,
}

impl SemaphoreModel {
    /// The semaphore was deleted: it had no permit held (a hold in doubt was surely gone).
    fn deleted(&mut self) {
        self.total = None;
        for hold in &mut self.holds.holds {
            if hold.state == State::Doubtful {
                hold.state = State::Gone;
                hold.count = 0;
            }
        }
    }

    async fn acquire(
        &mut self,
        h: &Harness<'_>,
        (client, permits, leasing, wait): (usize, u32, Leasing, Wait),
        stalled: bool,
    ) -> Result<String, String> {
        let semaphore = h.client(client).semaphore(&self.name);
        let taken = h
            .send(
                client,
                stalled,
                semaphore.try_acquire(permits, wait.duration(), leasing.lease()),
            )
            .await?;
        self.holds.check_leases(h)?;
        let wanted = u64::from(permits);
        let count = |state| {
            self.holds
                .holds
                .iter()
                .filter(|hold| hold.state == state)
                .map(|hold| hold.count)
                .sum::<u64>()
        };
        let (live, doubtful) = (count(State::Live), count(State::Doubtful));
        let at_most = self.total.unwrap_or(0) + self.unsure_adds;
        match taken {
            Ok(permit) => {
                if live + wanted > at_most {
                    return Err(format!(
                        "over-granted: {wanted} permit(s) granted while live acquisitions hold \
                         {live} of at most {at_most}"
                    ));
                }
                let id = permit.id().to_owned();
                if self.holds.knows(&id) {
                    return Err(format!("permit id {id} handed out twice"));
                }
                let index = self.holds.add(client, id, leasing, 0, wanted, permit);
                Ok(format!("acquired as #{index}"))
            }
            Err(err) => {
                let surely_free = self
                    .total
                    .map(|total| total.saturating_sub(live + doubtful));
                // A short wait ends before a resend: a held (or merely slow) request is given up.
                let expected = surely_free.is_some_and(|free| wanted <= free)
                    && self.unsure_adds == 0
                    && !self.unsure_delete
                    && !(wait == Wait::Short && (stalled || err.is_redis()));
                if expected {
                    Err(format!(
                        "acquiring {wanted} of {} surely free permit(s) failed: {err}",
                        surely_free.unwrap_or(0)
                    ))
                } else {
                    Ok(format!("not acquired: {err}"))
                }
            }
        }
    }
}

impl Model for SemaphoreModel {
    type Op = SemOp;

    const NAME: &'static str = "semaphore";

    fn plan(genes: &[Gene]) -> Vec<Step<SemOp>> {
        let mut plan = Planner::new();
        // The abstract semaphore: whether its total is set, and the permits of each
        // acquisition, oldest first.
        let mut set = false;
        let mut permits: Vec<u32> = Vec::new();
        let mut fixed = false;
        for &gene in genes {
            if gene.is_fault() && plan.fault(gene, fixed).is_some() {
                continue;
            }
            let client = gene.client();
            let permit = gene.pick();
            let picked = (!permits.is_empty()).then(|| permits.len() - 1 - permit % permits.len());
            let op = match (set, picked, gene.percent()) {
                (false, _, 0..60) => SemOp::TrySetPermits {
                    client,
                    permits: gene.small() + 1,
                },
                (false, _, _) | (true, _, 0..10) => SemOp::AddPermits {
                    client,
                    permits: gene.small(),
                },
                (true, Some(_), 10..45) => SemOp::Release { permit },
                (true, Some(_), 45..55) => SemOp::Drop { permit },
                (true, _, 55..62) => SemOp::DeleteIfUnused { client },
                _ => SemOp::Acquire {
                    client,
                    permits: gene.small(),
                    leasing: gene.leasing(),
                    wait: gene.wait(),
                },
            };
            let giving_back = matches!(op, SemOp::Release { .. } | SemOp::Drop { .. });
            let given_up = gene.stall(false) != Stall::No && gene.wait() == Wait::Short;
            match (&op, picked) {
                (SemOp::TrySetPermits { .. } | SemOp::AddPermits { .. }, _) => set = true,
                // Unused, it is deleted: the next calls set it again.
                (SemOp::DeleteIfUnused { .. }, None) => set = false,
                (
                    SemOp::Acquire {
                        permits: n,
                        leasing,
                        ..
                    },
                    _,
                ) if !given_up => {
                    permits.push(*n);
                    fixed |= *leasing == Leasing::Fixed;
                }
                (SemOp::Release { .. } | SemOp::Drop { .. }, Some(picked)) => {
                    permits.remove(picked);
                }
                _ => {}
            }
            plan.op(op, gene, giving_back);
        }
        plan.steps
    }

    fn new() -> Self {
        Self {
            name: unique_name("model-semaphore"),
            total: None,
            unsure_adds: 0,
            unsure_delete: false,
            holds: Holds::new("permit"),
        }
    }

    async fn apply(
        &mut self,
        h: &Harness<'_>,
        op: &SemOp,
        stalled: bool,
    ) -> Result<String, String> {
        match *op {
            SemOp::TrySetPermits { client, permits } => {
                let semaphore = h.client(client).semaphore(&self.name);
                let set = h
                    .send(client, stalled, semaphore.try_set_permits(permits))
                    .await?
                    .map_err(|err| format!("try_set_permits({permits}) failed: {err}"))?;
                let expected = self.total.is_none();
                if set != expected && self.unsure_adds == 0 && !self.unsure_delete {
                    return Err(format!(
                        "try_set_permits({permits}) returned {set} with the total at {:?}",
                        self.total
                    ));
                }
                if set {
                    self.total = Some(u64::from(permits));
                }
                Ok(format!("set: {set}"))
            }
            SemOp::AddPermits { client, permits } => {
                let semaphore = h.client(client).semaphore(&self.name);
                let added = h
                    .send(client, stalled, semaphore.add_permits(permits))
                    .await?;
                let permits = u64::from(permits);
                match added {
                    Ok(()) => {
                        self.total = Some(self.total.unwrap_or(0) + permits);
                        Ok(format!("total {:?}", self.total))
                    }
                    Err(err) => {
                        self.unsure_adds += permits;
                        Ok(format!("failed, may land: {err}"))
                    }
                }
            }
            SemOp::Acquire {
                client,
                permits,
                leasing,
                wait,
            } => {
                self.acquire(h, (client, permits, leasing, wait), stalled)
                    .await
            }
            SemOp::Release { permit } => {
                let Some(picked) = self.holds.pick(permit) else {
                    return Ok("no permit to release".into());
                };
                let (index, permit) = self.holds.guards.remove(picked);
                let hold = &self.holds.holds[index];
                let client = hold.client;
                let ran_out = may_run_out(&permit, hold.leasing, h.recent_fault(client));
                let result = h.send(client, stalled, permit.release()).await?;
                self.holds.check_leases(h)?;
                self.holds
                    .gave_back(index, None, result, ran_out())
                    .map(|note| format!("#{index}: {note}"))
            }
            SemOp::DeleteIfUnused { client } => {
                let semaphore = h.client(client).semaphore(&self.name);
                let deleted = h
                    .send(client, stalled, semaphore.delete_if_unused())
                    .await?;
                self.holds.check_leases(h)?;
                match deleted {
                    Ok(true) => {
                        if let Some(hold) = self
                            .holds
                            .holds
                            .iter()
                            .find(|hold| hold.state == State::Live)
                        {
                            return Err(format!("deleted while {hold} held its permits"));
                        }
                        self.deleted();
                        Ok("deleted (or none)".into())
                    }
                    Ok(false) => Ok("in use: left".into()),
                    Err(err) => {
                        self.unsure_delete = true;
                        Ok(format!("failed, may land: {err}"))
                    }
                }
            }
            SemOp::Drop { permit } => {
                let Some(picked) = self.holds.pick(permit) else {
                    return Ok("no permit to drop".into());
                };
                let (index, permit) = self.holds.guards.remove(picked);
                let client = self.holds.holds[index].client;
                // The release goes out from the background, held if stalled.
                h.send(client, stalled, async { drop(permit) }).await?;
                let hold = &mut self.holds.holds[index];
                hold.count = 0;
                hold.state = State::Gone;
                Ok(format!("dropped #{index}"))
            }
        }
    }

    async fn check(&mut self, h: &Harness<'_>) -> Result<(), Mismatch> {
        let info = h
            .observer
            .semaphore(&self.name)
            .info()
            .await
            .map_err(|err| format!("reading the semaphore: {err}"))?;
        self.holds.check_leases(h)?;
        let total = info.total_permits();
        if total != self.total {
            let base = self.total.unwrap_or(0);
            match total {
                Some(total)
                    if self.unsure_adds > 0
                        && (base..=base + self.unsure_adds).contains(&total) =>
                {
                    self.unsure_adds -= total - base;
                    self.total = Some(total);
                }
                // A delete whose outcome was unknown landed.
                None if self.unsure_delete => self.deleted(),
                _ => {
                    return Err(Mismatch::from(format!(
                        "the total is {total:?} in Redis, {:?} in the model",
                        self.total
                    )));
                }
            }
        }
        let seen: Vec<(String, u64)> = info
            .holders()
            .iter()
            .map(|holder| (holder.id().to_owned(), holder.permits()))
            .collect();
        self.holds.compare(&seen)
    }

    fn crashed(&mut self, client: usize) {
        self.holds.crashed(client);
    }

    fn leases_end(&self) -> Option<Instant> {
        self.holds.leases_end()
    }

    async fn finish(&mut self, h: &Harness<'_>) -> Result<(), String> {
        while let Some((index, permit)) = self.holds.guards.pop() {
            let hold = &self.holds.holds[index];
            let ran_out = may_run_out(&permit, hold.leasing, h.recent_fault(hold.client));
            let result = permit.release().await;
            self.holds.check_leases(h)?;
            self.holds.gave_back(index, None, result, ran_out())?;
        }
        settle(self, h).await?;
        // The semaphore's definition (its total) and its leases have no TTL by design (see
        // `Semaphore`): deleted as its docs say; everything else of it must expire.
        let sem = sem_key(&self.name);
        let _: i64 = h.server.cmd(&["DEL", &sem, &format!("{sem}:leases")]);
        kit_check(|| assert_no_key_without_ttl(h.server, &self.name))
    }
}

// ---------------------------------------------------------------------------------------------
// The read-write lock.

/// The two kinds of hold of the read-write lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

impl Kind {
    /// What the model puts before an owner id: the id alone does not say the kind of its hold.
    fn tag(self) -> &'static str {
        match self {
            Self::Read => "read ",
            Self::Write => "write ",
        }
    }

    fn other(self) -> Self {
        match self {
            Self::Read => Self::Write,
            Self::Write => Self::Read,
        }
    }
}

#[derive(Debug, Clone)]
enum RwOp {
    /// `try_acquire` of the `kind` lock by client `client`, outside any scope.
    Acquire {
        client: usize,
        kind: Kind,
        leasing: Leasing,
        wait: Wait,
    },
    /// Takes the `kind` lock inside the scope of the guard `guard` names (see [`Holds::pick`]),
    /// with a watchdog lease: the guard's own kind re-enters its hold; a read under a write is a
    /// downgrade (a hold of its own, granted beside the write at once); a write under a read
    /// is an upgrade, refused at once.
    Within {
        guard: usize,
        kind: Kind,
        wait: Wait,
    },
    /// `unlock()` of the guard `guard` names.
    Unlock { guard: usize },
    /// Drops the guard `guard` names: released in the background.
    Drop { guard: usize },
}

struct RwModel {
    name: String,
    /// Each acquisition's id is its kind's tag and its owner id (see [`Kind::tag`]).
    holds: Holds<LockGuard>,
    /// Per acquisition: its kind, and for a downgrade the write acquisition it was taken under.
    kinds: Vec<(Kind, Option<usize>)>,
    /// The highest fencing token handed out, a read's included.
    last_token: Option<u64>,
    /// When an acquisition last ended without a guard: until its waiter left the queue (in the
    /// background, or after one liveness period if the leave was lost), a writer it left there
    /// blocks new readers and writers, and a reader at the head blocks the writers.
    last_miss: Option<Instant>,
}

impl RwModel {
    /// What Redis shows holding the lock: ids as the model makes them, with their counts.
    async fn seen(&self, h: &Harness<'_>) -> Result<Vec<(String, u64)>, String> {
        let info = h
            .observer
            .read_write_lock(&self.name)
            .info()
            .await
            .map_err(|err| format!("reading the read-write lock: {err}"))?;
        let tagged = |kind: Kind, holder: &lock_runtime::LockHolder| {
            (
                format!("{}{}", kind.tag(), holder.owner()),
                holder.hold_count(),
            )
        };
        let mut seen: Vec<_> = info
            .readers()
            .iter()
            .map(|reader| tagged(Kind::Read, reader))
            .collect();
        seen.extend(info.writer().map(|writer| tagged(Kind::Write, writer)));
        Ok(seen)
    }

    /// The first acquisition in `state` that a fresh hold of `kind` (outside its scope) must
    /// wait for: any for a write, a write for a read.
    fn blocking(&self, kind: Kind, state: State) -> Option<&Hold> {
        self.holds.holds.iter().find(|hold| {
            hold.state == state && (kind == Kind::Write || self.kinds[hold.index].0 == Kind::Write)
        })
    }

    async fn acquire(
        &mut self,
        h: &Harness<'_>,
        (client, kind, leasing, wait): (usize, Kind, Leasing, Wait),
        stalled: bool,
    ) -> Result<String, String> {
        let rw = h.client(client).read_write_lock(&self.name);
        let (read, write) = (rw.read(), rw.write());
        let (wait_for, lease) = (wait.duration(), leasing.lease());
        let taken = h
            .send(client, stalled, async {
                match kind {
                    Kind::Read => read.try_acquire(wait_for, lease).await,
                    Kind::Write => write.try_acquire(wait_for, lease).await,
                }
            })
            .await?;
        self.holds.check_leases(h)?;
        let busy = self.blocking(kind, State::Live).map(ToString::to_string);
        match taken {
            Ok(guard) => {
                if let Some(busy) = busy {
                    return Err(format!(
                        "client {client} took the {kind:?} lock while {busy} still trusts its \
                         lease"
                    ));
                }
                self.taken(h, client, (kind, None), leasing, guard).await
            }
            Err(err) => {
                // A short wait ends before a resend: a held (or merely slow) request is given up.
                let excused = busy.is_some()
                    || self.blocking(kind, State::Doubtful).is_some()
                    || recent(self.last_miss)
                    || (wait == Wait::Short && (stalled || err.is_redis()));
                self.last_miss = Some(Instant::now());
                if excused {
                    Ok(format!("not acquired: {err}"))
                } else {
                    Err(format!(
                        "acquiring the {kind:?} lock failed with nothing in its way: {err}"
                    ))
                }
            }
        }
    }

    /// A fresh hold of `kind` (a downgrade if taken under a write acquisition) client `client`
    /// took with `guard`: its token checked, its owner id found in Redis.
    async fn taken(
        &mut self,
        h: &Harness<'_>,
        client: usize,
        (kind, under): (Kind, Option<usize>),
        leasing: Leasing,
        guard: LockGuard,
    ) -> Result<String, String> {
        let token = guard.fencing_token();
        if let Some(last) = self.last_token
            && kind == Kind::Write
            && token <= last
        {
            return Err(format!(
                "fencing token {token} handed out to a write after {last}: not strictly \
                 increasing"
            ));
        }
        self.last_token = Some(self.last_token.map_or(token, |last| last.max(token)));
        let prefix = format!("{}{}", kind.tag(), h.client(client).id());
        let fresh: Vec<String> = self
            .seen(h)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| id.starts_with(&prefix) && !self.holds.knows(id))
            .collect();
        let [id] = fresh.as_slice() else {
            return Err(format!(
                "client {client} took the {kind:?} lock, but Redis shows {} new hold(s) of its \
                 kind from it: {fresh:?}",
                fresh.len()
            ));
        };
        let index = self.holds.add(client, id.clone(), leasing, token, 1, guard);
        self.kinds.push((kind, under));
        Ok(format!("took {kind:?} as #{index}, token {token}"))
    }

    async fn within(
        &mut self,
        h: &Harness<'_>,
        (guard, kind, wait): (usize, Kind, Wait),
        stalled: bool,
    ) -> Result<String, String> {
        let Some(picked) = self.holds.pick(guard) else {
            return Ok("no guard to take a lock under".into());
        };
        let (index, outer) = &self.holds.guards[picked];
        let index = *index;
        let client = self.holds.holds[index].client;
        let rw = h.client(client).read_write_lock(&self.name);
        let (read, write) = (rw.read(), rw.write());
        let taken = h
            .send(
                client,
                stalled,
                outer.scope(async move {
                    match kind {
                        Kind::Read => read.try_acquire(wait.duration(), None).await,
                        Kind::Write => write.try_acquire(wait.duration(), None).await,
                    }
                }),
            )
            .await?;
        self.holds.check_leases(h)?;
        match (self.kinds[index].0, kind, taken) {
            (held, kind, taken) if held == kind => {
                self.holds.reentered(index, taken, wait, stalled)
            }
            (Kind::Write, _, Ok(guard)) => {
                // Granted beside the write hold while Redis holds it (a downgrade); once that
                // hold is gone, as any read is, with no other write in its way.
                if let Some(busy) = self
                    .holds
                    .live()
                    .find(|hold| hold.index != index && self.kinds[hold.index].0 == Kind::Write)
                {
                    return Err(format!(
                        "a read was taken under the write hold #{index} while {busy} still \
                         trusts its lease"
                    ));
                }
                self.taken(
                    h,
                    client,
                    (Kind::Read, Some(index)),
                    Leasing::Watchdog,
                    guard,
                )
                .await
                .map(|note| format!("downgrade of #{index}: {note}"))
            }
            (Kind::Write, _, Err(err)) => {
                let hold = &self.holds.holds[index];
                if hold.state == State::Live
                    && !(wait == Wait::Short && (stalled || err.is_redis()))
                {
                    Err(format!("a read under {hold} (a downgrade) failed: {err}"))
                } else {
                    Ok(format!("no downgrade: {err}"))
                }
            }
            (Kind::Read, _, Err(err)) if err.is_misuse() => Ok(format!("upgrade refused: {err}")),
            (Kind::Read, _, outcome) => Err(format!(
                "a write asked under the read hold #{index} (an upgrade) was not refused: {:?}",
                outcome.map(|guard| guard.fencing_token())
            )),
        }
    }
}

impl Model for RwModel {
    type Op = RwOp;

    const NAME: &'static str = "read-write lock";

    fn plan(genes: &[Gene]) -> Vec<Step<RwOp>> {
        let mut plan = Planner::new();
        // The abstract lock: the client and kind of each guard, oldest first; whether a lease
        // may run out (a fixed one, or a crashed client's).
        let mut guards: Vec<(usize, Kind)> = Vec::new();
        let mut leases = false;
        for &gene in genes {
            if gene.is_fault() {
                match plan.fault(gene, leases) {
                    Some(&Step::Crash(client)) => {
                        leases |= guards.iter().any(|&(holder, _)| holder == client);
                        guards.retain(|&(holder, _)| holder != client);
                        continue;
                    }
                    Some(_) => continue,
                    None => {}
                }
            }
            let guard = gene.pick();
            let picked = (!guards.is_empty()).then(|| guards.len() - 1 - guard % guards.len());
            let wait = gene.wait();
            let op = match (picked, gene.percent()) {
                (Some(picked), 0..20) => RwOp::Within {
                    guard,
                    kind: guards[picked].1,
                    wait,
                },
                (Some(picked), 20..30) => RwOp::Within {
                    guard,
                    kind: guards[picked].1.other(),
                    wait,
                },
                (Some(_), 30..60) => RwOp::Unlock { guard },
                (Some(_), 60..70) => RwOp::Drop { guard },
                (_, percent) => RwOp::Acquire {
                    client: gene.client(),
                    kind: if percent % 10 == 0 {
                        Kind::Read
                    } else {
                        Kind::Write
                    },
                    leasing: gene.leasing(),
                    wait,
                },
            };
            let giving_back = matches!(op, RwOp::Unlock { .. } | RwOp::Drop { .. });
            // A stalled request with a short wait is given up before it is resent.
            let given_up = gene.stall(false) != Stall::No && wait == Wait::Short;
            match (&op, picked) {
                (
                    RwOp::Acquire {
                        client,
                        kind,
                        leasing,
                        ..
                    },
                    _,
                ) if !given_up => {
                    let free = match kind {
                        Kind::Read => guards.iter().all(|&(_, held)| held == Kind::Read),
                        Kind::Write => guards.is_empty(),
                    };
                    if free {
                        guards.push((*client, *kind));
                        leases |= *leasing == Leasing::Fixed;
                    }
                }
                (RwOp::Within { kind, .. }, Some(picked))
                    if !given_up && (*kind == guards[picked].1 || *kind == Kind::Read) =>
                {
                    guards.push((guards[picked].0, *kind));
                }
                (RwOp::Unlock { .. } | RwOp::Drop { .. }, Some(picked)) => {
                    guards.remove(picked);
                }
                _ => {}
            }
            plan.op(op, gene, giving_back);
        }
        plan.steps
    }

    fn new() -> Self {
        Self {
            name: unique_name("model-rw"),
            holds: Holds::new("hold"),
            kinds: Vec::new(),
            last_token: None,
            last_miss: None,
        }
    }

    async fn apply(&mut self, h: &Harness<'_>, op: &RwOp, stalled: bool) -> Result<String, String> {
        match *op {
            RwOp::Acquire {
                client,
                kind,
                leasing,
                wait,
            } => {
                self.acquire(h, (client, kind, leasing, wait), stalled)
                    .await
            }
            RwOp::Within { guard, kind, wait } => {
                self.within(h, (guard, kind, wait), stalled).await
            }
            RwOp::Unlock { guard } => self.holds.unlock(h, guard, stalled).await,
            RwOp::Drop { guard } => self.holds.drop_guard(h, guard, stalled).await,
        }
    }

    async fn check(&mut self, h: &Harness<'_>) -> Result<(), Mismatch> {
        let seen = self.seen(h).await?;
        self.holds.check_leases(h)?;
        // A write hold beside a read hold: only a read taken under that write (a downgrade).
        let write_tag = Kind::Write.tag();
        if let Some((writer, _)) = seen.iter().find(|(id, _)| id.starts_with(write_tag)) {
            let index_of = |id: &String| self.holds.holds.iter().position(|hold| hold.id == *id);
            let writer_index = index_of(writer);
            for (reader, _) in seen.iter().filter(|(id, _)| !id.starts_with(write_tag)) {
                let under = index_of(reader).and_then(|index| self.kinds[index].1);
                if writer_index.is_none() || under != writer_index {
                    return Err(Mismatch::from(format!(
                        "Redis shows the write hold {writer} beside the read hold {reader}, \
                         which was not taken under it"
                    )));
                }
            }
        }
        self.holds.compare(&seen)
    }

    fn crashed(&mut self, client: usize) {
        self.holds.crashed(client);
    }

    fn leases_end(&self) -> Option<Instant> {
        self.holds.leases_end()
    }

    async fn finish(&mut self, h: &Harness<'_>) -> Result<(), String> {
        let name = self.name.clone();
        finish_locks(self, h, |model| &mut model.holds, assert_rw_released, &name).await
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// The lock's budget. On a loaded two-core machine, debug build: 25 to 40 s when every
/// invariant holds; with only item 1 of issue 20 left in the scripts (the other seams patched
/// out for the measure), it found item 1 in each of ten runs, within its first four cases.
const LOCK_BUDGET: Budget = Budget {
    cases: 8,
    lanes: 6,
    genes: 10,
};

/// The latch's budget: 20 to 35 s when every invariant holds; it finds the late count-down in
/// its first case or two.
const LATCH_BUDGET: Budget = Budget {
    cases: 8,
    lanes: 3,
    genes: 8,
};

/// The fair lock's budget: as the lock's. With the fair acquire's check of a marked owner patched
/// out, it found the late copy of a given-up acquisition taking the lock in its first two cases,
/// in each of three runs; with a release handing the lock to the head of the queue while a
/// re-entry of the holder remained (a seam only a contender can see), in cases 6 and 14 of two
/// runs of 20.
const FAIR_BUDGET: Budget = Budget {
    cases: 8,
    lanes: 6,
    genes: 10,
};

/// The read-write lock's budget: 20 to 30 s. With a late copy of a release counting again
/// patched into the scripts, it found the seam in three runs of four; with reads granted beside
/// another's write, or a lone hold's lease lost when a second hold comes, in its first case.
const RW_BUDGET: Budget = Budget {
    cases: 8,
    lanes: 6,
    genes: 10,
};

/// The semaphore's budget: 25 to 40 s.
const SEMAPHORE_BUDGET: Budget = Budget {
    cases: 10,
    lanes: 3,
    genes: 10,
};

/// The five models side by side, each with its own runner, server and seed; every failure is
/// reported, shrunk. Budgets: the whole test stays under a minute in a debug build on a loaded
/// two-core machine while every invariant holds.
///
/// Each run draws new sequences (the seed is printed with a failure). It found, besides the
/// seams kept as tests below, a late copy of a resent acquisition taking the lock again after
/// its lease ran out under the live guard, and an undo given up while Redis was out of reach (its
/// request's copy then counted). `PROPTEST_CASES=<n>` searches further.
#[test]
fn random_operations_with_late_copies_keep_every_invariant() {
    let runs = [
        std::thread::spawn(|| explore::<LockModel<false>>(LOCK_BUDGET)),
        std::thread::spawn(|| explore::<LockModel<true>>(FAIR_BUDGET)),
        std::thread::spawn(|| explore::<LatchModel>(LATCH_BUDGET)),
        std::thread::spawn(|| explore::<SemaphoreModel>(SEMAPHORE_BUDGET)),
        std::thread::spawn(|| explore::<RwModel>(RW_BUDGET)),
    ];
    let mut failures = Vec::new();
    for run in runs {
        match run.join() {
            Ok(Ok(summary)) => println!("{summary}"),
            Ok(Err(failure)) => failures.push(failure),
            Err(_) => failures.push("a model's runner panicked (see above)".to_owned()),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// The seams the random search found, each as the shortest sequence that shows it (item 1 and
// the late count-down exactly as the search shrank them), and the late `try_set_count` of issue
// 20, which the search reaches less often: each is checked on every run, whatever the search
// draws. Each failed on the commit that added it.

fn op<Op>(op: Op) -> Step<Op> {
    Step::Op { op, stalled: false }
}

fn stalled<Op>(op: Op) -> Step<Op> {
    Step::Op { op, stalled: true }
}

const ACQUIRE: LockOp = LockOp::Acquire {
    client: 0,
    leasing: Leasing::Watchdog,
    wait: Wait::Long,
};

/// Issue 20, item 1: a lock held twice (a re-entry); the inner `unlock()` is stalled, resent
/// on a fresh connection (2 -> 1), and its first copy lands after the memo expired: 1 -> 0, the
/// lock is freed under the outer guard, which still trusts its lease.
#[test]
fn late_copy_of_an_inner_unlock_leaves_the_outer_hold() {
    replay::<LockModel<false>>(&[
        op(ACQUIRE),
        op(LockOp::Reenter {
            guard: 0,
            wait: Wait::Long,
        }),
        stalled(LockOp::Unlock { guard: 0 }),
        Step::DeliverLate,
    ]);
}

/// A stalled re-entry, resent (2 holds), whose first copy lands after the memo expired: it must
/// not add a third hold nobody will give back.
#[test]
fn late_copy_of_a_reentry_adds_no_hold() {
    replay::<LockModel<false>>(&[
        op(ACQUIRE),
        stalled(LockOp::Reenter {
            guard: 0,
            wait: Wait::Long,
        }),
        Step::DeliverLate,
    ]);
}

/// The outer guard given back before its re-entry: the re-entry still holds the lock, and its
/// watchdog lease must go on being renewed (here another client waits three times 600 ms, past
/// the 1.5 s watchdog lease).
#[test]
fn reentry_kept_after_its_outer_guard_is_still_renewed() {
    let other = LockOp::Acquire {
        client: 1,
        leasing: Leasing::Watchdog,
        wait: Wait::Long,
    };
    replay::<LockModel<false>>(&[
        op(ACQUIRE),
        op(LockOp::Reenter {
            guard: 0,
            wait: Wait::Long,
        }),
        op(LockOp::Unlock { guard: 1 }),
        op(other.clone()),
        op(other.clone()),
        op(other),
    ]);
}

/// A stalled count-down, resent, whose first copy lands after the memo expired: it must not
/// count twice.
#[test]
fn late_copy_of_a_count_down_counts_once() {
    replay::<LatchModel>(&[
        op(LatchOp::TrySetCount {
            client: 0,
            count: 2,
        }),
        stalled(LatchOp::CountDown { client: 0 }),
        Step::DeliverLate,
    ]);
}

/// A stalled `try_set_count`, resent; the latch is counted down to zero (opened); the first
/// copy lands after the memo expired: it must not set the opened latch again.
#[test]
fn late_copy_of_try_set_count_leaves_an_opened_latch_open() {
    replay::<LatchModel>(&[
        stalled(LatchOp::TrySetCount {
            client: 0,
            count: 1,
        }),
        op(LatchOp::CountDown { client: 0 }),
        Step::DeliverLate,
    ]);
}

/// A stalled acquisition with a fixed lease, resent on a fresh connection, takes the lock; its
/// lease runs out under the live guard; then the first copy lands: it must not take the lock
/// again for an owner whose guard already counts its lease as spent (a hold nobody gives back).
#[test]
fn late_copy_of_a_resent_acquire_takes_nothing_after_the_lease_ran_out() {
    replay::<LockModel<false>>(&[
        stalled(LockOp::Acquire {
            client: 0,
            leasing: Leasing::Fixed,
            wait: Wait::Long,
        }),
        Step::ExpireLeases,
        Step::DeliverLate,
    ]);
}

/// A read asked for under a write guard whose fixed lease ran out: the write hold is gone, so
/// the read is granted as any read is (the lock is free), not refused as a downgrade of a hold
/// Redis no longer has. (The search found this in the model, not in the scripts.)
#[test]
fn a_read_under_a_spent_write_is_taken_as_any_read() {
    replay::<RwModel>(&[
        op(RwOp::Acquire {
            client: 0,
            kind: Kind::Write,
            leasing: Leasing::Fixed,
            wait: Wait::Long,
        }),
        Step::ExpireLeases,
        op(RwOp::Within {
            guard: 0,
            kind: Kind::Read,
            wait: Wait::Short,
        }),
    ]);
}

/// A contender waits while the lock is held (a second acquisition waits out its 600 ms beside
/// it, past the contender's retry by timer) and takes it once its holder unlocks: woken by name
/// (the lock) or handed the lock by the release (the fair lock), never before.
#[test]
fn a_contender_takes_the_lock_once_its_holder_unlocks() {
    let steps = [
        op(ACQUIRE),
        op(LockOp::Contend { client: 1 }),
        op(ACQUIRE),
        op(LockOp::Unlock { guard: 0 }),
        op(LockOp::Join),
        op(LockOp::Unlock { guard: 0 }),
    ];
    replay::<LockModel<false>>(&steps);
    replay::<LockModel<true>>(&steps);
}
