//! A TCP proxy that injects the network faults `tc netem` cannot give in this environment.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// The size of one forwarded chunk.
const CHUNK: usize = 16 * 1024;

/// A TCP proxy on a free `127.0.0.1` port that forwards every connection to `127.0.0.1:<target port>`,
/// and can delay, stall or cut the traffic on demand.
///
/// Point the client under test at [`url`](Self::url) instead of the server's. The proxy runs as tasks on
/// the Tokio runtime that called [`start`](Self::start); dropping it aborts them, closing every
/// connection and the listener.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use lock_tests::{RedisServer, TcpProxy};
///
/// # async fn example() {
/// let server = RedisServer::start();
/// let proxy = TcpProxy::start(server.port()).await;
/// let client = redis::Client::open(proxy.url()).unwrap();
/// // ... connect the code under test to `proxy.url()`, then:
/// proxy.blackhole(true); // the connection stays open but nothing gets through
/// proxy.blackhole(false);
/// proxy.set_delay(Duration::from_millis(100));
/// proxy.drop_connections(); // reset every open connection
/// proxy.drop_replies(true); // requests reach the server, its replies are lost
/// proxy.drop_replies(false);
/// proxy.hold_connections(); // what the client sends on today's connections waits...
/// proxy.release_held(); // ...and reaches the server now
/// # let _ = client;
/// # }
/// ```
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    target: SocketAddr,
    shared: Arc<Shared>,
    accept_task: AbortHandle,
}

#[derive(Debug)]
struct Shared {
    delay: watch::Sender<Duration>,
    blackhole: watch::Sender<bool>,
    /// Server-to-client bytes wait while this is `true` (`hold_replies`).
    hold_replies: watch::Sender<bool>,
    /// Server-to-client bytes are discarded while this is `true` (`drop_replies`).
    drop_replies: AtomicBool,
    /// Server-to-client bytes discarded so far (`dropped_bytes`).
    dropped_bytes: AtomicUsize,
    /// Client-to-server bytes of every connection whose id is below this wait (`hold_connections`);
    /// 0 holds nothing.
    hold_below: watch::Sender<u64>,
    /// Bytes read from clients on held connections and not forwarded yet.
    held_bytes: AtomicUsize,
    refuse: AtomicBool,
    /// Bumped by `drop_connections`; every connection task watches it.
    kill: watch::Sender<u64>,
    /// Bumped by `freeze_connections`; every connection task watches it.
    freeze: watch::Sender<u64>,
    connections: Mutex<HashMap<u64, AbortHandle>>,
    next_id: AtomicU64,
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl TcpProxy {
    /// Starts a proxy to `127.0.0.1:target_port` on a free loopback port.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound, or when called outside a Tokio runtime.
    pub async fn start(target_port: u16) -> TcpProxy {
        let target = SocketAddr::from(([127, 0, 0, 1], target_port));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("TcpProxy cannot bind 127.0.0.1:0: {e}"));
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            delay: watch::Sender::new(Duration::ZERO),
            blackhole: watch::Sender::new(false),
            hold_replies: watch::Sender::new(false),
            drop_replies: AtomicBool::new(false),
            dropped_bytes: AtomicUsize::new(0),
            hold_below: watch::Sender::new(0),
            held_bytes: AtomicUsize::new(0),
            refuse: AtomicBool::new(false),
            kill: watch::Sender::new(0),
            freeze: watch::Sender::new(0),
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let accept_task = tokio::spawn(accept_loop(listener, target, Arc::clone(&shared)));
        TcpProxy {
            port,
            target,
            shared,
            accept_task: accept_task.abort_handle(),
        }
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port the proxy forwards to.
    pub fn target_port(&self) -> u16 {
        self.target.port()
    }

    /// The URL to give the client under test, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Holds every chunk for `delay` before forwarding it, in both directions, so a request/response
    /// round trip takes at least `2 × delay` more. Chunks keep their order; throughput is not limited.
    /// Applies to bytes read from now on. `Duration::ZERO` (the default) turns it off.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.delay.send_replace(delay);
    }

    /// While `true`, no byte is forwarded in either direction, and the sockets stay open: the client
    /// sees an unresponsive (half-open) connection, new connections too. Bytes received meanwhile are
    /// held and delivered when it is set back to `false`, like a healed partition. Defaults to `false`.
    pub fn blackhole(&self, on: bool) {
        self.shared.blackhole.send_replace(on);
    }

    /// While `true`, the server's replies (and pub/sub messages) are held on every connection, new
    /// ones too, while the client's requests still reach the server: replies are late, not lost.
    /// Held bytes are delivered, in order, when it is set back to `false`. Defaults to `false`.
    ///
    /// Unlike [`blackhole`](Self::blackhole), the server runs every request sent meanwhile, so
    /// a client that times out and resends finds the effect of its first attempt already there.
    pub fn hold_replies(&self, on: bool) {
        self.shared.hold_replies.send_replace(on);
    }

    /// While `true`, every byte the server sends to the client is thrown away, on every
    /// connection, new ones too, while the client's requests still reach the server and run.
    /// Defaults to `false`.
    ///
    /// This models replies lost on the way back. A connection that lost bytes stays out of step
    /// for good: a reply it carries later answers an earlier request, so a client can only use
    /// it again after replacing it. A connection opened meanwhile loses its handshake replies and
    /// never becomes ready; only the client's own timeouts can tell.
    pub fn drop_replies(&self, on: bool) {
        self.shared.drop_replies.store(on, Ordering::SeqCst);
    }

    /// How many server-to-client bytes [`drop_replies`](Self::drop_replies) has discarded so
    /// far: a test that needs a reply lost waits for this to grow before it lets replies through
    /// again (a request seen to run in Redis may not have had its reply read by the proxy yet).
    pub fn dropped_bytes(&self) -> usize {
        self.shared.dropped_bytes.load(Ordering::SeqCst)
    }

    /// Holds, from now on, every byte the client sends on the connections open now: the proxy
    /// reads it but does not forward it until [`release_held`](Self::release_held). Replies to
    /// earlier requests and pub/sub messages still reach the client, and connections opened
    /// later are forwarded as usual, so a client that gives up on a held connection and opens a
    /// new one carries on.
    ///
    /// This models a request stuck in the send queue of a connection the client has retired
    /// (a stalled link, a full buffer), which reaches the server late, after the client stopped
    /// caring. Calling it again also holds the connections opened since.
    pub fn hold_connections(&self) {
        let below = self.shared.next_id.load(Ordering::SeqCst);
        self.shared.hold_below.send_replace(below);
    }

    /// Delivers every byte held by [`hold_connections`](Self::hold_connections), in order, and
    /// forwards normally from then on. A held connection the client has closed meanwhile gets
    /// its bytes delivered before the proxy closes it on the server's side.
    pub fn release_held(&self) {
        self.shared.hold_below.send_replace(0);
    }

    /// How many bytes the proxy holds, read from clients on held connections and not forwarded
    /// yet (see [`hold_connections`](Self::hold_connections)); `0` when nothing waits. Bytes
    /// still queued behind a [delay](Self::set_delay) count once their turn comes.
    pub fn held_bytes(&self) -> usize {
        self.shared.held_bytes.load(Ordering::SeqCst)
    }

    /// Closes every current connection abruptly (`RST` to both the client and the server).
    /// New connections are accepted as usual.
    pub fn drop_connections(&self) {
        self.shared.kill.send_modify(|generation| *generation += 1);
    }

    /// Freezes every current connection for good: from now on nothing is forwarded on it in either
    /// direction and nothing is closed, as when the peer's host vanished without a `FIN` or `RST`
    /// (a crash, a silent partition, a NAT that forgot the flow). Only the client's own timeouts
    /// can tell. New connections are forwarded as usual.
    pub fn freeze_connections(&self) {
        self.shared
            .freeze
            .send_modify(|generation| *generation += 1);
    }

    /// While `true`, new connections are accepted and immediately reset, so connecting fails.
    /// Open connections are not affected. Defaults to `false`.
    pub fn refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    /// The number of connections currently being proxied.
    pub fn connection_count(&self) -> usize {
        self.shared.connections().len()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        for (_, task) in self.shared.connections().drain() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of file descriptors or similar: try again shortly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shared.refuse.load(Ordering::SeqCst) {
            let _ = client.set_zero_linger();
            drop(client);
            continue;
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        // Hold the map while spawning so the task's own removal comes after its insertion.
        let mut connections = shared.connections();
        let task = tokio::spawn(serve(client, target, Arc::clone(&shared), id));
        connections.insert(id, task.abort_handle());
    }
}

async fn serve(mut client: TcpStream, target: SocketAddr, shared: Arc<Shared>, id: u64) {
    let mut kill = shared.kill.subscribe();
    kill.mark_unchanged();
    let mut freeze = shared.freeze.subscribe();
    freeze.mark_unchanged();
    let killed = match TcpStream::connect(target).await {
        Err(_) => true,
        Ok(mut server) => {
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let killed = {
                let (client_read, client_write) = client.split();
                let (server_read, server_write) = server.split();
                let both = async {
                    tokio::try_join!(
                        pump(client_read, server_write, &shared, Direction::ToServer(id)),
                        pump(server_read, client_write, &shared, Direction::ToClient),
                    )
                };
                tokio::select! {
                    result = both => result.is_err(),
                    _ = kill.changed() => true,
                    _ = freeze.changed() => {
                        // Keep both sockets open and silent until killed or the proxy is dropped.
                        let _ = kill.changed().await;
                        true
                    }
                }
            };
            if killed {
                let _ = server.set_zero_linger();
            }
            killed
        }
    };
    if killed {
        let _ = client.set_zero_linger();
    }
    drop(client);
    shared.connections().remove(&id);
}

/// Which way a [`pump`] forwards.
#[derive(Debug, Clone, Copy)]
enum Direction {
    /// Requests, on the connection with this id.
    ToServer(u64),
    /// Replies and pub/sub messages.
    ToClient,
}

/// One chunk on its way, and the count of held bytes it is part of (decremented when it goes).
struct Chunk<'a> {
    due: Instant,
    bytes: Vec<u8>,
    held: Option<&'a AtomicUsize>,
}

impl Drop for Chunk<'_> {
    fn drop(&mut self) {
        if let Some(held) = self.held {
            held.fetch_sub(self.bytes.len(), Ordering::SeqCst);
        }
    }
}

/// Forwards `from` to `to` until end of stream, applying the delay, blackhole, hold and drop
/// settings.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    shared: &Shared,
    direction: Direction,
) -> io::Result<()> {
    let held_connection = |below: &u64| match direction {
        Direction::ToServer(id) => id < *below,
        Direction::ToClient => false,
    };
    let (chunks, mut queue) = mpsc::channel::<Chunk<'_>>(64);
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            if matches!(direction, Direction::ToClient)
                && shared.drop_replies.load(Ordering::SeqCst)
            {
                shared.dropped_bytes.fetch_add(n, Ordering::SeqCst);
                continue;
            }
            let held = held_connection(&shared.hold_below.borrow()).then(|| {
                shared.held_bytes.fetch_add(n, Ordering::SeqCst);
                &shared.held_bytes
            });
            let chunk = Chunk {
                due: Instant::now() + *shared.delay.borrow(),
                bytes: buf[..n].to_vec(),
                held,
            };
            if chunks.send(chunk).await.is_err() {
                return Ok(());
            }
        }
    };
    let write = async {
        let mut blackhole = shared.blackhole.subscribe();
        let mut hold_replies = shared.hold_replies.subscribe();
        let mut hold_below = shared.hold_below.subscribe();
        while let Some(mut chunk) = queue.recv().await {
            tokio::time::sleep_until(chunk.due).await;
            let _ = blackhole.wait_for(|on| !*on).await;
            match direction {
                Direction::ToServer(_) => {
                    // A chunk read just before the hold began is held (and counted) too.
                    if chunk.held.is_none() && held_connection(&hold_below.borrow()) {
                        shared
                            .held_bytes
                            .fetch_add(chunk.bytes.len(), Ordering::SeqCst);
                        chunk.held = Some(&shared.held_bytes);
                    }
                    let _ = hold_below.wait_for(|below| !held_connection(below)).await;
                }
                Direction::ToClient => {
                    let _ = hold_replies.wait_for(|on| !*on).await;
                }
            }
            to.write_all(&chunk.bytes).await?;
        }
        let _ = blackhole.wait_for(|on| !*on).await;
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}
