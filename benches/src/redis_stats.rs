//! What Redis says about itself: command counts, clients, subscriptions, memory.

use std::collections::BTreeMap;

use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};

use crate::{BenchResult, contenders::Implementation, contenders::multiplexed_connection};

/// Commands the harness itself sends (stats, sampling, connection setup); never counted.
pub const HARNESS_COMMANDS: &[&str] = &[
    "info",
    "config|resetstat",
    "config|get",
    "config|set",
    "client|list",
    "client|setinfo",
    "client|setname",
    "client|id",
    "hello",
    "pubsub|numsub",
    "pubsub|channels",
    "command",
    "command|docs",
    "command|count",
    "select",
];

/// Commands counted per acquisition, from `INFO commandstats` taken around a measured window.
///
/// `INFO commandstats` counts a command that a Lua script calls exactly like one a client sent.
/// So two figures are kept:
///
/// - [`client_sent`](Self::client_sent): every command but the harness's own
///   ([`HARNESS_COMMANDS`]) and those the implementation's scripts call inside Redis
///   ([`Implementation::script_internal_commands`]): `FCALL`, `EVALSHA`, `EVAL`, `SCRIPT LOAD`,
///   `SUBSCRIBE`, `UNSUBSCRIBE`, `PING`, and a spin lock's `SET`. Each is one request on the
///   network and one trip through Redis's event loop: the figure the targets speak of.
/// - [`executed`](Self::executed): every command Redis executed, those inside scripts included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCounts {
    /// Commands sent by clients (network requests).
    pub client_sent: u64,
    /// Commands executed, including those called from Lua scripts.
    pub executed: u64,
    /// `PUBLISH` calls (all made inside release scripts, for `ours`).
    pub published: u64,
    /// Calls per command name, harness commands left out.
    pub by_command: BTreeMap<String, u64>,
}

impl CommandCounts {
    /// Classifies the calls of `stats` (command name → calls) for `implementation`.
    pub fn classify(stats: &BTreeMap<String, u64>, implementation: Implementation) -> Self {
        let internal = implementation.script_internal_commands();
        let mut counts = CommandCounts::default();
        for (name, &calls) in stats {
            if HARNESS_COMMANDS.contains(&name.as_str()) {
                continue;
            }
            counts.by_command.insert(name.clone(), calls);
            counts.executed += calls;
            if !internal.contains(&name.as_str()) {
                counts.client_sent += calls;
            }
            if name == "publish" || name == "spublish" {
                counts.published += calls;
            }
        }
        counts
    }
}

/// Microseconds Redis spent executing the client-sent commands of `implementation` (all
/// non-harness commands for `None`), from `INFO commandstats` microseconds.
pub fn client_usec(usec: &BTreeMap<String, u64>, implementation: Option<Implementation>) -> u64 {
    requests_usec(
        usec,
        implementation.map_or(&[][..], Implementation::script_internal_commands),
    )
}

/// Microseconds Redis spent executing the commands a client sent, from `INFO commandstats`
/// microseconds: all but the harness's and `internal`, those its scripts call inside Redis
/// (their time is in the script's).
pub fn requests_usec(usec: &BTreeMap<String, u64>, internal: &[&str]) -> u64 {
    usec.iter()
        .filter(|(name, _)| {
            !HARNESS_COMMANDS.contains(&name.as_str()) && !internal.contains(&name.as_str())
        })
        .map(|(_, usec)| usec)
        .sum()
}

/// How many clients of each kind are connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCounts {
    /// Ordinary (command) connections.
    pub normal: u64,
    /// Connections in pub/sub mode.
    pub pubsub: u64,
}

/// The harness's own connection to Redis, for statistics.
#[derive(Clone)]
pub struct Admin {
    connection: MultiplexedConnection,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// Connects to the Redis at `url`.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached.
    pub async fn connect(url: &str) -> BenchResult<Self> {
        Ok(Self {
            connection: multiplexed_connection(url).await?,
        })
    }

    async fn query<T: redis::FromRedisValue>(&mut self, args: &[&str]) -> BenchResult<T> {
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        Ok(command.query_async(&mut self.connection).await?)
    }

    /// `CONFIG RESETSTAT`: zeroes `INFO commandstats`.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn reset_stats(&mut self) -> BenchResult<()> {
        self.query::<()>(&["CONFIG", "RESETSTAT"]).await
    }

    /// The text of `INFO <section>`.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn info(&mut self, section: &str) -> BenchResult<String> {
        self.query(&["INFO", section]).await
    }

    /// Command name → calls, from `INFO commandstats`.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn command_stats(&mut self) -> BenchResult<BTreeMap<String, u64>> {
        Ok(lock_tests::command_stats(
            &self.info("commandstats").await?,
            "calls",
        ))
    }

    /// Command name → microseconds spent, from `INFO commandstats`.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn command_usec(&mut self) -> BenchResult<BTreeMap<String, u64>> {
        Ok(lock_tests::command_stats(
            &self.info("commandstats").await?,
            "usec",
        ))
    }

    /// `used_memory` of `INFO memory`, in bytes.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn used_memory(&mut self) -> BenchResult<u64> {
        let info = self.info("memory").await?;
        Ok(lock_tests::info_value(&info, "used_memory")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0))
    }

    /// Seconds of CPU the server has used since it started, system and user, all its threads:
    /// `used_cpu_sys` + `used_cpu_user` of `INFO cpu`.
    ///
    /// # Errors
    ///
    /// When Redis fails, or its reply lacks either figure.
    pub async fn cpu_seconds(&mut self) -> BenchResult<f64> {
        let info = self.info("cpu").await?;
        let mut total = 0.0;
        for field in ["used_cpu_sys", "used_cpu_user"] {
            let seconds: f64 = lock_tests::info_value(&info, field)
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| format!("INFO cpu has no `{field}`"))?;
            total += seconds;
        }
        Ok(total)
    }

    /// Deletes every key matching `pattern` (`SCAN` … `MATCH`, then `UNLINK`), and returns how
    /// many there were.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn unlink_matching(&mut self, pattern: &str) -> BenchResult<u64> {
        let mut cursor = 0_u64;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut self.connection)
                .await?;
            if !keys.is_empty() {
                deleted += redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async::<u64>(&mut self.connection)
                    .await?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    /// The server's version (`redis_version` of `INFO server`).
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn version(&mut self) -> BenchResult<String> {
        let info = self.info("server").await?;
        Ok(lock_tests::info_value(&info, "redis_version").unwrap_or_else(|| "unknown".to_owned()))
    }

    /// How many connections of each type are open (this admin connection included).
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn clients(&mut self) -> BenchResult<ClientCounts> {
        let normal: String = self.query(&["CLIENT", "LIST", "TYPE", "normal"]).await?;
        let pubsub: String = self.query(&["CLIENT", "LIST", "TYPE", "pubsub"]).await?;
        let count = |list: &str| list.lines().filter(|line| !line.is_empty()).count() as u64;
        Ok(ClientCounts {
            normal: count(&normal),
            pubsub: count(&pubsub),
        })
    }

    /// The channels with a subscriber whose names match the glob `pattern` (`PUBSUB CHANNELS`).
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn channels(&mut self, pattern: &str) -> BenchResult<Vec<String>> {
        let mut command = redis::cmd("PUBSUB");
        command.arg("CHANNELS").arg(pattern);
        Ok(command.query_async(&mut self.connection).await?)
    }

    /// Subscriber counts of `channels` (`PUBSUB NUMSUB`), in order.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn subscribers(&mut self, channels: &[String]) -> BenchResult<Vec<u64>> {
        let mut command = redis::cmd("PUBSUB");
        command.arg("NUMSUB").arg(channels);
        let reply: Vec<(String, u64)> = command.query_async(&mut self.connection).await?;
        Ok(reply.into_iter().map(|(_, count)| count).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Commandstats\r\n\
        cmdstat_evalsha:calls=10,usec=50,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_hset:calls=4,usec=4,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_publish:calls=3,usec=4,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_subscribe:calls=1,usec=4,usec_per_call=4.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_config|resetstat:calls=1,usec=9,usec_per_call=9.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=2,usec=9,usec_per_call=4.50,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn commands_inside_scripts_and_of_the_harness_are_not_client_sent() {
        let stats = lock_tests::command_stats(SAMPLE, "calls");
        assert_eq!(stats.get("config|resetstat"), Some(&1));
        let counts = CommandCounts::classify(&stats, Implementation::Ours);
        assert_eq!(counts.client_sent, 11); // evalsha + subscribe
        assert_eq!(counts.executed, 18);
        assert_eq!(counts.published, 3);
        assert!(!counts.by_command.contains_key("info"));
    }
}
