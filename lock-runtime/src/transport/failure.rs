//! How a failed request reads: whether sending it again may succeed, and whether the failure
//! proves that it never ran.

use redis::RetryMethod;

/// A script's error that wraps a replica's `READONLY` as the plain `READONLY` it stands for.
/// Redis 7 refuses a writing script on a replica before it runs; Redis 6.2 runs it, and its first
/// write fails (`Error running script …: -READONLY You can't write …`): nothing was written
/// either way (every write fails on a replica), so both mean "find the primary and send again".
pub(crate) fn refused_by_a_replica(err: redis::RedisError) -> redis::RedisError {
    let is_wrapped = !matches!(
        err.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
    ) && err.to_string().contains("-READONLY ");
    if !is_wrapped {
        return err;
    }
    redis::parse_redis_value(b"-READONLY You can't write against a read only replica.\r\n")
        .and_then(redis::Value::extract_error)
        .err()
        .unwrap_or(err)
}

/// Whether resending the command may succeed: the connection dropped or stalled, or the server is
/// loading or failing over.
pub(crate) fn is_transient(err: &redis::RedisError) -> bool {
    !matches!(err.retry_method(), RetryMethod::NoRetry)
        && err.kind() != redis::ErrorKind::AuthenticationFailed
}

/// Whether `err` proves that the request did not run, so that even a request sent once may go
/// out again: a redirect (`MOVED`, `ASK`), a cluster or server not serving yet (`TRYAGAIN`,
/// `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`), a write refused by a replica (`READONLY`: the first
/// write of a script fails, so none ran), or no connection to send it on (refused, or none to
/// the node in the cluster connection). A timeout or a dropped connection proves nothing: the
/// request may have run, and its reply been lost.
pub(crate) fn never_ran(err: &redis::RedisError) -> bool {
    use redis::ServerErrorKind::{
        Ask, BusyLoading, ClusterDown, MasterDown, Moved, ReadOnly, TryAgain,
    };
    match err.kind() {
        redis::ErrorKind::Server(kind) => matches!(
            kind,
            Moved | Ask | TryAgain | ClusterDown | MasterDown | BusyLoading | ReadOnly
        ),
        redis::ErrorKind::ClusterConnectionNotFound => true,
        _ => err.is_connection_refusal(),
    }
}

/// The error of the error reply `line`, as it comes from Redis: for the tests of the script
/// path and of this module.
#[cfg(test)]
pub(crate) fn server_error(line: &str) -> redis::RedisError {
    redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
        .expect("an error reply")
        .extract_error()
        .expect_err("an error reply")
}

#[cfg(test)]
mod tests {
    use super::{server_error as server, *};

    #[test]
    fn a_script_refused_by_a_replica_of_redis_6_2_never_ran() {
        let wrapped = server(
            "ERR Error running script (call to f_7e32): @user_script:380: @user_script: 380: \
             -READONLY You can't write against a read only replica.",
        );
        assert!(!never_ran(&wrapped));
        assert!(never_ran(&refused_by_a_replica(wrapped)));
        let other = refused_by_a_replica(server("ERR something else"));
        assert!(!never_ran(&other) && other.to_string().contains("something else"));
    }

    #[test]
    fn only_a_failure_that_proves_nothing_ran_allows_sending_once_more() {
        let io = |kind: std::io::ErrorKind| redis::RedisError::from(std::io::Error::from(kind));
        for err in [
            server("MOVED 12 127.0.0.1:7001"),
            server("ASK 12 127.0.0.1:7001"),
            server("TRYAGAIN Multiple keys request during rehashing of slot"),
            server("CLUSTERDOWN The cluster is down"),
            server("LOADING Redis is loading the dataset in memory"),
            server("READONLY You can't write against a read only replica."),
            io(std::io::ErrorKind::ConnectionRefused),
        ] {
            assert!(never_ran(&err), "{err}");
        }
        for err in [
            io(std::io::ErrorKind::TimedOut),
            io(std::io::ErrorKind::BrokenPipe),
            io(std::io::ErrorKind::ConnectionReset),
            io(std::io::ErrorKind::UnexpectedEof),
            server("ERR something went wrong in the script"),
        ] {
            assert!(!never_ran(&err), "{err}");
        }
    }
}
