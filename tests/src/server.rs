//! A real `redis-server` child process on a free loopback port.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use redis::FromRedisValue;
use tempfile::TempDir;

use crate::binary::{self, ServerVersion};
use crate::tls::{self, TlsMaterial};

/// How long [`RedisServer::start`] and [`RedisServer::restart`] wait for the server to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many fresh ports a start tries when the chosen one was taken in the meantime.
const START_ATTEMPTS: usize = 5;
/// How many lines of the log a failure message shows.
const LOG_TAIL_LINES: usize = 40;
/// The read timeout of the connections behind [`RedisServer::cmd`] and friends.
const CMD_TIMEOUT: Duration = Duration::from_secs(10);

/// The message of every panic caused by a missing `redis-server` binary.
pub(crate) const INSTALL_HINT: &str = "the lock-tests kit runs a real redis-server (tests never skip): \
run `scripts/ensure-redis.sh`, or install it yourself \
(Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`), \
or set REDIS_SERVER=/path/to/redis-server";

/// A real `redis-server` process listening on `127.0.0.1` on a free port, with its own temporary directory.
///
/// The server runs without persistence (`save ""`, `appendonly no`), with `DEBUG` enabled for local
/// connections and `repl-diskless-sync-delay 0` so replicas sync at once. Its log (and anything it printed
/// on stdout / stderr) is kept in the temporary directory; [`log_tail`](Self::log_tail) shows it and every
/// failure message of the kit includes it.
///
/// Every method takes `&self`, so a server can be shared (for example through
/// [`RedisCluster::node_for_key`](crate::RedisCluster::node_for_key)) and still be killed or paused.
/// Methods that talk to the server are synchronous and block the calling thread for at most a few
/// seconds; they are fine to call from a `#[tokio::test(flavor = "multi_thread")]` test.
///
/// Dropping the value kills the process (`SIGKILL`, even when paused), reaps it and removes the
/// temporary directory, also when the test panics.
///
/// # Examples
///
/// ```no_run
/// use lock_tests::RedisServer;
///
/// let server = RedisServer::start();
/// let _: () = server.cmd(&["SET", "k", "v"]);
/// assert_eq!(server.cmd::<String>(&["GET", "k"]), "v");
/// server.kill();
/// server.restart();
/// assert_eq!(server.cmd::<i64>(&["EXISTS", "k"]), 0);
/// ```
pub struct RedisServer {
    port: u16,
    cluster_port: Option<u16>,
    /// The TLS port and its certificates, for a server started with
    /// [`tls`](RedisServerBuilder::tls).
    tls: Option<(u16, TlsMaterial)>,
    binary: PathBuf,
    version: ServerVersion,
    /// Every argument after the binary, ports included, so a restart reuses them as they are.
    args: Vec<String>,
    child: Mutex<Option<Child>>,
    dir: TempDir,
}

/// Configures and starts a [`RedisServer`]; made by [`RedisServer::builder`].
///
/// # Examples
///
/// ```no_run
/// use lock_tests::RedisServer;
///
/// let primary = RedisServer::builder().arg("maxmemory-policy", "allkeys-lru").start();
/// let replica = RedisServer::builder().replica_of(&primary).start();
/// # let _ = replica;
/// ```
#[derive(Debug, Clone, Default)]
pub struct RedisServerBuilder {
    binary: Option<PathBuf>,
    args: Vec<(String, Vec<String>)>,
    replica_of: Option<u16>,
    cluster_enabled: bool,
    tls: bool,
    sentinel: Option<String>,
}

impl RedisServerBuilder {
    /// Uses this `redis-server` executable.
    ///
    /// Defaults to `$REDIS_SERVER` when set, else `redis-server` found on `PATH`.
    #[must_use]
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Adds the configuration directive `--name value` (for example `("maxmemory-policy", "allkeys-lru")`).
    ///
    /// A directive given here comes after the kit's defaults, so it overrides them. Leave `port`,
    /// `bind`, `dir` and `logfile` to the kit: it chooses the port and reads the log from its directory.
    #[must_use]
    pub fn arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.args.push((name.into(), vec![value.into()]));
        self
    }

    /// Adds a directive that takes several values, as `--name v1 v2 …`.
    #[must_use]
    pub fn arg_values<I, S>(mut self, name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args
            .push((name.into(), values.into_iter().map(Into::into).collect()));
        self
    }

    /// Starts the server as a replica of `primary` (`replicaof 127.0.0.1 <primary port>`).
    ///
    /// [`start`](Self::start) returns once the replica answers `PING`, not once it has synced; see
    /// [`ReplicatedRedis`](crate::ReplicatedRedis) for a primary with synced replicas.
    #[must_use]
    pub fn replica_of(self, primary: &RedisServer) -> Self {
        self.replica_of_port(primary.port())
    }

    /// Starts the server as a replica of the server on `127.0.0.1:port`.
    #[must_use]
    pub fn replica_of_port(mut self, port: u16) -> Self {
        self.replica_of = Some(port);
        self
    }

    /// Enables Redis Cluster mode: `cluster-enabled yes`, a `cluster-config-file` in the temporary
    /// directory, `cluster-node-timeout 2000` and a free `cluster-port` for the cluster bus.
    ///
    /// The node starts alone, with no slots; [`RedisCluster`](crate::RedisCluster) assembles nodes.
    /// Defaults to `false`.
    #[must_use]
    pub fn cluster_enabled(mut self, enabled: bool) -> Self {
        self.cluster_enabled = enabled;
        self
    }

    /// Also listens with TLS on a port of its own ([`RedisServer::tls_url`]), with a
    /// certificate for `127.0.0.1` signed by a CA made for this server
    /// ([`RedisServer::tls_ca_pem`]). Clients may show a certificate signed by that CA
    /// ([`RedisServer::tls_client_certificate`]) and need not (`tls-auth-clients optional`,
    /// unless overridden with [`arg`](Self::arg)). The plain port stays open for the kit's own
    /// commands. Defaults to `false`.
    #[must_use]
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls = enabled;
        self
    }

    /// Starts a Sentinel (`redis-server <config> --sentinel`) instead of a data node, with
    /// `config` (such as `sentinel monitor …` lines) as its configuration file, written to its
    /// temporary directory (Sentinel rewrites it as it learns the deployment).
    /// [`SentinelRedis`](crate::SentinelRedis) starts Sentinels monitoring a primary.
    #[must_use]
    pub fn sentinel(mut self, config: impl Into<String>) -> Self {
        self.sentinel = Some(config.into());
        self
    }

    /// Starts the server and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing (with a hint on how to install it), or when the server does not
    /// answer within 10 s (with the tail of its log).
    pub fn start(self) -> RedisServer {
        self.try_start()
            .unwrap_or_else(|message| panic!("{message}"))
    }

    /// Like [`start`](Self::start), but a server that exits during start or does not answer is an
    /// error (with the tail of its log) instead of a panic.
    ///
    /// # Errors
    ///
    /// The reason the server did not start, and its log.
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing, or its temporary directory cannot be made.
    pub fn try_start(self) -> Result<RedisServer, String> {
        let binary = resolve_binary(self.binary.as_deref());
        let version = binary::version_of(&binary);
        let dir = tempfile::Builder::new()
            .prefix("lock-tests-redis-")
            .tempdir()
            .unwrap_or_else(|e| {
                panic!("cannot create a temporary directory for redis-server: {e}")
            });
        let tls = self.tls.then(|| (0, tls::issue(dir.path())));
        if let Some(config) = &self.sentinel {
            fs::write(dir.path().join(SENTINEL_CONFIG), config)
                .unwrap_or_else(|e| panic!("cannot write the Sentinel configuration: {e}"));
        }
        let mut server = RedisServer {
            port: 0,
            cluster_port: None,
            tls,
            binary,
            version,
            args: Vec::new(),
            child: Mutex::new(None),
            dir,
        };
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            if self.cluster_enabled && !version.redis_7_or_newer() {
                // Before Redis 7.0 (no `cluster-port`) the bus listens on the port plus 10000.
                let (port, bus) = std::iter::repeat_with(free_port)
                    .find_map(|port| {
                        let bus = port.checked_add(CLUSTER_BUS_OFFSET)?;
                        port_is_free(bus).then_some((port, bus))
                    })
                    .unwrap_or_default();
                server.port = port;
                server.cluster_port = Some(bus);
            } else {
                server.port = free_port();
                server.cluster_port = self
                    .cluster_enabled
                    .then(|| std::iter::repeat_with(free_port).find(|p| *p != server.port))
                    .flatten();
            }
            if let Some((tls_port, _)) = &mut server.tls {
                *tls_port = std::iter::repeat_with(free_port)
                    .find(|p| *p != server.port && Some(*p) != server.cluster_port)
                    .unwrap_or_default();
            }
            let tls_port = server.tls.as_ref().map(|(port, _)| *port);
            server.args = self.command_args(
                server.dir.path(),
                version,
                (server.port, server.cluster_port, tls_port),
            );
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(StartError::AddressInUse(log)) => last_failure = log,
                Err(StartError::Failed(message)) => return Err(message),
            }
        }
        Err(format!(
            "redis-server could not find a free port after {START_ATTEMPTS} attempts; last log:\n{last_failure}"
        ))
    }

    fn command_args(
        &self,
        dir: &Path,
        version: ServerVersion,
        (port, cluster_port, tls_port): (u16, Option<u16>, Option<u16>),
    ) -> Vec<String> {
        let dir_str = dir.to_string_lossy().into_owned();
        let mut args: Vec<String> = Vec::new();
        if self.sentinel.is_some() {
            args.push(dir.join(SENTINEL_CONFIG).to_string_lossy().into_owned());
            args.push("--sentinel".to_owned());
        }
        let mut push = |name: &str, values: &[&str]| {
            args.push(format!("--{name}"));
            args.extend(values.iter().map(|v| (*v).to_owned()));
        };
        let port_str = port.to_string();
        push("port", &[&port_str]);
        push("bind", &["127.0.0.1"]);
        push("protected-mode", &["no"]);
        push("daemonize", &["no"]);
        push("dir", &[&dir_str]);
        push("logfile", &[&dir.join(LOG_FILE).to_string_lossy()]);
        push("save", &[""]);
        push("appendonly", &["no"]);
        if version.redis_7_or_newer() {
            // Before Redis 7.0 `DEBUG` is always enabled and the option does not exist.
            push("enable-debug-command", &["local"]);
        }
        push("repl-diskless-sync-delay", &["0"]);
        if let Some(primary) = self.replica_of {
            push("replicaof", &["127.0.0.1", &primary.to_string()]);
        }
        if let Some(cluster_port) = cluster_port {
            push("cluster-enabled", &["yes"]);
            push(
                "cluster-config-file",
                &[&dir.join("nodes.conf").to_string_lossy()],
            );
            push("cluster-node-timeout", &["2000"]);
            if version.redis_7_or_newer() {
                push("cluster-port", &[&cluster_port.to_string()]);
            }
        }
        if let Some(tls_port) = tls_port {
            push("tls-port", &[&tls_port.to_string()]);
            for (option, file) in tls::SERVER_FILES {
                push(option, &[&dir.join(file).to_string_lossy()]);
            }
            push("tls-auth-clients", &["optional"]);
        }
        for (name, values) in &self.args {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            push(name, &values);
        }
        args
    }
}

/// Where a cluster node's bus listens before Redis 7.0: its port plus this.
const CLUSTER_BUS_OFFSET: u16 = 10_000;
const LOG_FILE: &str = "redis.log";
const SENTINEL_CONFIG: &str = "sentinel.conf";
const OUTPUT_FILE: &str = "stdout-stderr.log";

enum StartError {
    /// The port was taken between choosing it and the server binding it; the log says so.
    AddressInUse(String),
    /// Any other failure, with the full panic message.
    Failed(String),
}

impl RedisServer {
    /// Starts a standalone server with the kit's defaults and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing (with a hint on how to install it), or when the server does not
    /// answer within 10 s (with the tail of its log).
    pub fn start() -> RedisServer {
        RedisServer::builder().start()
    }

    /// A builder for a server with extra directives, as a replica, in cluster mode or from a given binary.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The TCP port the server listens on (on `127.0.0.1`); it stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `rediss://` URL of the TLS port, for a server started with
    /// [`tls`](RedisServerBuilder::tls).
    ///
    /// # Panics
    ///
    /// When the server was started without TLS.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_material().0)
    }

    /// The certificate (PEM) of the CA that signed the TLS port's certificate: what a client
    /// trusts. Panics as [`tls_url`](Self::tls_url).
    pub fn tls_ca_pem(&self) -> &str {
        &self.tls_material().1.ca_pem
    }

    /// A client certificate signed by the server's CA and its private key (both PEM), for
    /// mutual TLS. Panics as [`tls_url`](Self::tls_url).
    pub fn tls_client_certificate(&self) -> (&str, &str) {
        let (cert, key) = &self.tls_material().1.client;
        (cert, key)
    }

    fn tls_material(&self) -> (u16, &TlsMaterial) {
        match &self.tls {
            Some((port, material)) => (*port, material),
            None => panic!("this server was started without `RedisServer::builder().tls(true)`"),
        }
    }

    /// The product and version of the server's binary (Redis 6.2.14, Valkey 9.1.2, …).
    pub fn version(&self) -> ServerVersion {
        self.version
    }

    /// The cluster bus port, for a server started with [`cluster_enabled`](RedisServerBuilder::cluster_enabled).
    pub fn cluster_port(&self) -> Option<u16> {
        self.cluster_port
    }

    /// The connection URL, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The temporary directory the server runs in (its `dir`, log and cluster config live there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of the running server.
    ///
    /// # Panics
    ///
    /// When the server was [`kill`](Self::kill)ed and not restarted.
    pub fn pid(&self) -> u32 {
        self.lock_child()
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("redis-server on port {} is not running", self.port))
    }

    /// Whether the process is alive (a [`pause`](Self::pause)d server counts as running).
    pub fn is_running(&self) -> bool {
        let mut child = self.lock_child();
        match child.as_mut() {
            None => false,
            Some(c) => match c.try_wait() {
                Ok(None) => true,
                Ok(Some(_)) | Err(_) => {
                    *child = None;
                    false
                }
            },
        }
    }

    /// Kills the server with `SIGKILL` and waits for the process to exit. Does nothing if it is not running.
    pub fn kill(&self) {
        if let Some(mut child) = self.lock_child().take() {
            // Fails only when the process already exited; the wait below reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same arguments and waits until it answers `PING`.
    ///
    /// The data set is empty afterwards (there is no persistence); a cluster node keeps its identity and
    /// slots through its `nodes.conf`. A running server is killed first.
    ///
    /// # Panics
    ///
    /// When the server does not come back within 10 s, or the port was taken by another process.
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(StartError::AddressInUse(log)) => {
                    if Instant::now() >= deadline {
                        panic!(
                            "redis-server could not restart on port {}: the port is in use\n{log}",
                            self.port
                        );
                    }
                    thread::sleep(Duration::from_millis(100));
                }
                Err(StartError::Failed(message)) => panic!("{message}"),
            }
        }
    }

    /// Stops the process with `SIGSTOP`: connections stay open but nothing is answered until
    /// [`resume`](Self::resume). Replicas and cluster peers see it as unreachable.
    ///
    /// # Panics
    ///
    /// When the server is not running.
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// Continues a [`pause`](Self::pause)d process with `SIGCONT`.
    ///
    /// # Panics
    ///
    /// When the server is not running.
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    fn signal(&self, signal: Signal) {
        let pid = self.pid();
        let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits in i32"));
        signal::kill(pid, signal)
            .unwrap_or_else(|e| panic!("cannot send {signal} to redis-server {pid}: {e}"));
    }

    /// Runs `CLIENT KILL <filter>` (for example `"TYPE pubsub"`, `"TYPE normal"`, `"ADDR 127.0.0.1:1234"`)
    /// and returns how many connections were closed. The kit's own connection is never killed
    /// (`SKIPME yes` is Redis' default).
    ///
    /// # Panics
    ///
    /// When the command fails.
    pub fn client_kill(&self, filter: &str) -> i64 {
        let mut args = vec!["CLIENT", "KILL"];
        args.extend(filter.split_whitespace());
        self.cmd(&args)
    }

    /// The server's `CLIENT LIST`: one map per connection, of its fields (`id`, `name`, `sub`,
    /// `cmd`, ...), the kit's own connection included.
    ///
    /// # Panics
    ///
    /// When the command fails.
    pub fn client_list(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        let list: String = self.cmd(&["CLIENT", "LIST"]);
        list.lines()
            .map(|line| {
                line.split(' ')
                    .filter_map(|field| field.split_once('='))
                    .map(|(key, value)| (key.to_owned(), value.to_owned()))
                    .collect()
            })
            .collect()
    }

    /// Makes the server unresponsive for `duration` with `DEBUG SLEEP`, without blocking the caller for
    /// that long.
    ///
    /// The command is sent on a new connection before this returns, followed by a 50 ms grace so the
    /// server is already asleep when the caller goes on. A background thread waits for the reply; the
    /// returned handle joins once the server has woken up (it panics if the server refused the command).
    ///
    /// # Panics
    ///
    /// When the server cannot be reached.
    pub fn debug_sleep(&self, duration: Duration) -> JoinHandle<()> {
        let seconds = format!("{:.3}", duration.as_secs_f64());
        let request = format!(
            "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n${}\r\n{seconds}\r\n",
            seconds.len()
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap_or_else(|e| {
            panic!("cannot connect to redis-server on port {}: {e}", self.port)
        });
        stream
            .set_read_timeout(Some(duration + CMD_TIMEOUT))
            .expect("set_read_timeout");
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("cannot send DEBUG SLEEP: {e}"));
        let port = self.port;
        let handle = thread::spawn(move || {
            let mut reply = Vec::new();
            let mut byte = [0u8; 1];
            while !reply.ends_with(b"\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => reply.push(byte[0]),
                    Ok(_) => break,
                    Err(e) => panic!("DEBUG SLEEP on port {port}: no reply: {e}"),
                }
            }
            assert!(
                reply.starts_with(b"+OK"),
                "DEBUG SLEEP on port {port} failed: {}",
                String::from_utf8_lossy(&reply).trim_end()
            );
        });
        thread::sleep(Duration::from_millis(50));
        handle
    }

    /// A new synchronous connection (no read timeout set; use `set_read_timeout` on it if needed).
    ///
    /// # Panics
    ///
    /// When the server cannot be reached.
    pub fn sync_connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to redis-server on port {}: {e}\n{}",
                    self.port,
                    self.log_tail()
                )
            })
    }

    /// A new multiplexed async connection, with the redis crate's default timeouts
    /// (1 s to connect, 500 ms per response).
    ///
    /// # Panics
    ///
    /// When the server cannot be reached.
    pub async fn async_connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).expect("valid redis URL");
        match client.get_multiplexed_async_connection().await {
            Ok(connection) => connection,
            Err(e) => panic!(
                "cannot connect to redis-server on port {}: {e}\n{}",
                self.port,
                self.log_tail()
            ),
        }
    }

    /// Runs one command on a new connection (10 s read timeout) and returns its reply.
    ///
    /// Each call uses its own connection, so connection-scoped commands (`WAIT` after a write,
    /// `MULTI`, `SUBSCRIBE`, `CLIENT SETNAME`) need [`sync_connection`](Self::sync_connection) instead.
    ///
    /// ```no_run
    /// # let server = lock_tests::RedisServer::start();
    /// assert_eq!(server.cmd::<i64>(&["EXISTS", "some-key"]), 0);
    /// ```
    ///
    /// # Panics
    ///
    /// When the command fails or the reply does not convert to `T`; see [`try_cmd`](Self::try_cmd).
    pub fn cmd<T: FromRedisValue>(&self, args: &[&str]) -> T {
        self.try_cmd(args).unwrap_or_else(|e| {
            panic!(
                "{} on redis-server port {} failed: {e}",
                args.join(" "),
                self.port
            )
        })
    }

    /// Like [`cmd`](Self::cmd) but returns the error instead of panicking (a refused connection too).
    ///
    /// # Errors
    ///
    /// The connection or command error, or a reply that does not convert to `T`.
    pub fn try_cmd<T: FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_connection_with_timeout(Duration::from_secs(5))?;
        connection.set_read_timeout(Some(CMD_TIMEOUT))?;
        let mut command = redis::cmd(args.first().copied().unwrap_or("PING"));
        for arg in args.iter().skip(1) {
            command.arg(*arg);
        }
        command.query(&mut connection)
    }

    /// The keys matching `pattern` (`KEYS pattern`), sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.cmd(&["KEYS", pattern]);
        keys.sort();
        keys
    }

    /// The text of `INFO <section>`.
    pub fn info(&self, section: &str) -> String {
        self.cmd(&["INFO", section])
    }

    /// One `field:value` line of `INFO <section>`, for example
    /// `info_field("replication", "connected_slaves")`.
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        info_value(&self.info(section), field)
    }

    /// The last lines of the server's log (and of anything it printed on stdout / stderr).
    pub fn log_tail(&self) -> String {
        log_tail_of(self.dir.path())
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        // A panic while holding the lock leaves the `Option<Child>` consistent.
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Spawns the process and waits for `PING`.
    fn launch(&self) -> Result<(), StartError> {
        let dir = self.dir.path();
        let log_offset = fs::metadata(dir.join(LOG_FILE)).map_or(0, |m| m.len());
        let output_offset = fs::metadata(dir.join(OUTPUT_FILE)).map_or(0, |m| m.len());
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(OUTPUT_FILE))
            .unwrap_or_else(|e| panic!("cannot create the redis-server output file: {e}"));
        let output_err = output.try_clone().expect("clone file handle");
        let child = Command::new(&self.binary)
            .args(&self.args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(output_err)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!(
                    "redis-server binary {} not found: {e}\n{INSTALL_HINT}",
                    self.binary.display()
                )
            }
            Err(e) => {
                return Err(StartError::Failed(format!(
                    "cannot run {}: {e}\n{INSTALL_HINT}",
                    self.binary.display()
                )));
            }
        };
        let pid = child.id();
        *self.lock_child() = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.answers_ping(pid) {
                return Ok(());
            }
            let exited = {
                let mut child = self.lock_child();
                match child.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => {
                        *child = None;
                        Some(status.to_string())
                    }
                    Some(Ok(None)) => None,
                    Some(Err(e)) => Some(e.to_string()),
                    None => Some("killed".to_owned()),
                }
            };
            if let Some(status) = exited {
                let log = log_tail_of(dir);
                let new_output = read_from(&dir.join(LOG_FILE), log_offset)
                    + &read_from(&dir.join(OUTPUT_FILE), output_offset);
                if new_output.contains("Address already in use") {
                    return Err(StartError::AddressInUse(log));
                }
                return Err(StartError::Failed(format!(
                    "redis-server on port {} exited during start ({status}).\n\
                     binary: {} ({})\nargs: {:?}\n{log}",
                    self.port,
                    self.binary.display(),
                    binary_version(&self.binary),
                    self.args
                )));
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(StartError::Failed(format!(
                    "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}.\n{}",
                    self.port,
                    log_tail_of(dir)
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server on our port answers `PING` and is our process `pid` (not another server that
    /// took the port first, whose answer would otherwise be mistaken for ours).
    fn answers_ping(&self, pid: u32) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_millis(500))
        else {
            return false;
        };
        if connection
            .set_read_timeout(Some(Duration::from_secs(1)))
            .is_err()
        {
            return false;
        }
        let pong = redis::cmd("PING")
            .query::<String>(&mut connection)
            .is_ok_and(|pong| pong == "PONG");
        pong && redis::cmd("INFO")
            .arg("server")
            .query::<String>(&mut connection)
            .ok()
            .and_then(|info| info_value(&info, "process_id"))
            .is_some_and(|process_id| process_id == pid.to_string())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pid = self.lock_child().as_ref().map(Child::id);
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("cluster_port", &self.cluster_port)
            .field("pid", &pid)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Starts `n` independent standalone servers (in parallel).
///
/// # Panics
///
/// As [`RedisServer::start`].
pub fn start_masters(n: usize) -> Vec<RedisServer> {
    start_many(n, RedisServer::builder)
}

/// Starts `n` servers from `builder()` in parallel, in order.
pub(crate) fn start_many(
    n: usize,
    builder: impl Fn() -> RedisServerBuilder + Sync,
) -> Vec<RedisServer> {
    thread::scope(|scope| {
        let handles: Vec<_> = (0..n).map(|_| scope.spawn(|| builder().start())).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The value of `field` in the text of an `INFO` reply (`field:value` lines), for example
/// `info_value(&info, "redis_version")`.
pub fn info_value(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == field).then(|| value.trim_end().to_owned())
    })
}

/// One statistic of every command in the text of `INFO commandstats`: command name → value of
/// `field` (`"calls"`, `"usec"`, `"failed_calls"`, …). Subcommands keep their `|` form
/// (`config|resetstat`).
pub fn command_stats(info: &str, field: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{field}=");
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let value = stats
                .split(',')
                .find_map(|pair| pair.strip_prefix(prefix.as_str()))?
                .trim_end()
                .parse()
                .ok()?;
            Some((name.to_owned(), value))
        })
        .collect()
}

/// A port that was free on `127.0.0.1` a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"))
}

/// Whether `port` on `127.0.0.1` was free a moment ago.
fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The `redis-server` to run: the builder's, else `$REDIS_SERVER`, else `redis-server` on `PATH`.
pub(crate) fn resolve_binary(explicit: Option<&Path>) -> PathBuf {
    let (path, origin) = match explicit {
        Some(path) => (path.to_path_buf(), "RedisServerBuilder::binary"),
        None => match std::env::var_os("REDIS_SERVER").filter(|v| !v.is_empty()) {
            Some(path) => (PathBuf::from(path), "REDIS_SERVER"),
            None => {
                return find_on_path("redis-server").unwrap_or_else(|| {
                    panic!("redis-server was not found on PATH.\n{INSTALL_HINT}")
                });
            }
        },
    };
    let path = if path.components().count() == 1 {
        find_on_path(&path.to_string_lossy()).unwrap_or(path)
    } else {
        path
    };
    assert!(
        path.is_file(),
        "redis-server binary {} (from {origin}) does not exist.\n{INSTALL_HINT}",
        path.display()
    );
    path
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn binary_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("version unknown: {e}"))
}

fn read_from(path: &Path, offset: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(offset)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last lines of the log and output files in `dir`.
fn log_tail_of(dir: &Path) -> String {
    let mut text = String::new();
    for (name, title) in [
        (LOG_FILE, "redis-server log"),
        (OUTPUT_FILE, "stdout/stderr"),
    ] {
        let content = read_from(&dir.join(name), 0);
        if content.trim().is_empty() {
            continue;
        }
        let lines: Vec<&str> = content.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        text.push_str(&format!(
            "--- {title} ({}), last {} lines ---\n",
            dir.join(name).display(),
            tail.len()
        ));
        for line in tail {
            text.push_str(line);
            text.push('\n');
        }
    }
    if text.is_empty() {
        text.push_str("(redis-server wrote no log)\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::command_stats;

    #[test]
    fn command_stats_reads_one_field_of_every_command() {
        let info = "# Commandstats\r\n\
            cmdstat_evalsha:calls=10,usec=50,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_config|resetstat:calls=1,usec=9,usec_per_call=9.00,rejected_calls=0,failed_calls=0\r\n";
        let calls = command_stats(info, "calls");
        assert_eq!(calls.get("evalsha"), Some(&10));
        assert_eq!(calls.get("config|resetstat"), Some(&1));
        assert_eq!(command_stats(info, "usec").get("evalsha"), Some(&50));
        assert!(command_stats(info, "no_such_field").is_empty());
    }
}
