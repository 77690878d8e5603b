//! The process-wide default client that `#[distribute_lock]` uses when given no `client = …`.

use std::sync::RwLock;

use tokio::sync::OnceCell;

use crate::{client::LockClient, error::LockError};

static DEFAULT_CLIENT: RwLock<Option<LockClient>> = RwLock::new(None);
static FROM_ENVIRONMENT: OnceCell<LockClient> = OnceCell::const_new();

/// Makes `client` the default client of this process, replacing any earlier one.
///
/// Call it once at start-up, after connecting. The client may be used from any Tokio runtime,
/// not only the one that built it: its connections and background tasks run on the library's own
/// background runtime, so a client built in one `#[tokio::test]` keeps working in the next.
///
/// ```no_run
/// # async fn example() -> Result<(), lock_runtime::LockError> {
/// let client = lock_runtime::LockClient::connect("redis://127.0.0.1:6379").await?;
/// lock_runtime::set_default_client(client);
/// # Ok(()) }
/// ```
pub fn set_default_client(client: LockClient) {
    let mut slot = DEFAULT_CLIENT
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *slot = Some(client);
}

/// The default client: the one given to [`set_default_client`], or else one connected once to
/// the URL in the `REDIS_URL` environment variable.
///
/// # Errors
///
/// [`LockError::Config`] ([`Mistake::Misuse`](crate::Mistake::Misuse)) if no client was set and `REDIS_URL` is unset or empty, and the errors of
/// [`LockClient::connect`] when connecting to `REDIS_URL`.
///
/// # Cancel safety
///
/// Cancel safe: a connection to `REDIS_URL` cut short is started again by the next call.
///
/// # Examples
///
/// ```
/// # lock_tests::locks::run_with_redis(|url| async move {
/// lock_runtime::set_default_client(lock_runtime::LockClient::connect(&url).await?);
/// let client = lock_runtime::default_client().await?;
/// # drop(client);
/// # Ok(()) });
/// ```
pub async fn default_client() -> Result<LockClient, LockError> {
    let set = DEFAULT_CLIENT
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    if let Some(client) = set.or_else(|| FROM_ENVIRONMENT.get().cloned()) {
        return Ok(client);
    }
    // Boxed: connecting takes about 3 KiB of future state, which every `#[distribute_lock]`
    // call on the default client would otherwise carry for as long as it waits for its lock.
    Box::pin(connect_from_environment()).await
}

/// The client connected once to `REDIS_URL`, connecting it if no call did yet.
async fn connect_from_environment() -> Result<LockClient, LockError> {
    let url = std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .ok_or_else(|| {
            LockError::misuse(
                "no default lock client: call `lock_runtime::set_default_client`, or set REDIS_URL",
            )
        })?;
    FROM_ENVIRONMENT
        .get_or_try_init(|| LockClient::connect(&url))
        .await
        .cloned()
        .map_err(|err| match err {
            LockError::Config { mistake, message } => LockError::Config {
                mistake,
                message: format!("{message} (the URL in REDIS_URL)"),
            },
            other => other,
        })
}
