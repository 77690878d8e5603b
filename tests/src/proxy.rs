//! A TCP proxy that injects the network faults `tc netem` cannot give in this environment.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
                        pump(client_read, server_write, &shared),
                        pump(server_read, client_write, &shared),
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

/// Forwards `from` to `to` until end of stream, applying the delay and blackhole settings.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    shared: &Shared,
) -> io::Result<()> {
    let (chunks, mut queue) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            let due = Instant::now() + *shared.delay.borrow();
            if chunks.send((due, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let write = async {
        let mut blackhole = shared.blackhole.subscribe();
        while let Some((due, chunk)) = queue.recv().await {
            tokio::time::sleep_until(due).await;
            let _ = blackhole.wait_for(|on| !*on).await;
            to.write_all(&chunk).await?;
        }
        let _ = blackhole.wait_for(|on| !*on).await;
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}
