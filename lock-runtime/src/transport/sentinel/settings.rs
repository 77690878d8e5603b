//! The Sentinels a client asks, read from the builder's master name and URLs into redis-rs's
//! `SentinelClient`, with everything wrong with them found before connecting.

use redis::{
    IntoConnectionInfo,
    sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType},
};

use crate::{error::LockError, transport::tls::Tls};

/// The redis-rs client that asks the Sentinels at `urls` for the primary they monitor as
/// `master`. Opens no connection.
///
/// Every Sentinel, and every data node the Sentinels name, is reached with the username and
/// password of the URLs (which must agree); the data nodes use the URLs' database number.
/// `rediss://` URLs mean TLS to the Sentinels and to the data nodes, with the certificates
/// given to the builder (the `tls` feature).
///
/// # Errors
///
/// [`LockError::Config`] for an empty master name, no URL, a URL that does not parse, URLs that
/// mix TLS and plain TCP or carry different credentials, or TLS in a build without the `tls`
/// feature.
pub(crate) fn sentinel_client(
    master: &str,
    urls: &[String],
    tls: &Tls,
) -> Result<SentinelClient, LockError> {
    if master.trim().is_empty() {
        return Err(LockError::config(
            "`.sentinel(..)` was given an empty master name: give the name the Sentinels \
             monitor the primary under (`sentinel monitor <name> <host> <port> <quorum>`)",
        ));
    }
    if urls.is_empty() {
        return Err(LockError::config(
            "`.sentinel(..)` was given no Sentinel: name at least one Sentinel URL",
        ));
    }
    // Read from the scheme, before parsing: without the `tls` feature redis-rs does not parse
    // a `rediss://` URL, and the error should say why.
    let secure = |url: &String| crate::transport::tls::asks_for_tls(url);
    let tls_mode = secure(&urls[0]);
    if urls.iter().any(|url| secure(url) != tls_mode) {
        return Err(LockError::config(
            "the Sentinel URLs mix `redis://` and `rediss://`: use one scheme for every Sentinel",
        ));
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        if tls_mode {
            return Err(crate::transport::tls::unavailable(&urls[0]));
        }
    }
    let infos = urls
        .iter()
        .map(|url| {
            url.as_str()
                .into_connection_info()
                .map_err(|err| crate::transport::tls::unparsed("Sentinel", url, &err))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let settings = infos[0].redis_settings();
    let credentials = |info: &redis::ConnectionInfo| {
        let settings = info.redis_settings();
        (
            settings.username().map(str::to_owned),
            settings.password().map(str::to_owned),
            settings.db(),
        )
    };
    if infos
        .iter()
        .any(|info| credentials(info) != credentials(&infos[0]))
    {
        return Err(LockError::config(
            "the Sentinel URLs carry different usernames, passwords or database numbers: every \
             Sentinel and the data nodes are reached with one of each",
        ));
    }
    let invalid = |err: redis::RedisError| {
        LockError::config(format!(
            "the Sentinels at {} cannot be used: {err}",
            urls.join(", ")
        ))
    };
    let addresses = infos.iter().map(|info| info.addr().clone());
    let mut builder = SentinelClientBuilder::new(addresses, master, SentinelServerType::Master)
        .map_err(invalid)?;
    if let Some(username) = settings.username() {
        builder = builder
            .set_client_to_sentinel_username(username)
            .set_client_to_redis_username(username);
    }
    if let Some(password) = settings.password() {
        builder = builder
            .set_client_to_sentinel_password(password)
            .set_client_to_redis_password(password);
    }
    if settings.db() != 0 {
        builder = builder.set_client_to_redis_db(settings.db());
    }
    if tls_mode {
        builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
        #[cfg(feature = "tls")]
        if let Some(certificates) = tls.given() {
            builder = builder
                .set_client_to_sentinel_certificates(certificates.clone())
                .set_client_to_redis_certificates(certificates.clone());
        }
    }
    builder.build().map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(master: &str, urls: &[&str]) -> String {
        let urls: Vec<String> = urls.iter().map(|url| (*url).to_owned()).collect();
        match sentinel_client(master, &urls, &Tls::default()) {
            Ok(_) => panic!("{master:?} {urls:?} should be refused"),
            Err(err) => {
                assert!(matches!(err, LockError::Config { .. }), "{err}");
                err.to_string()
            }
        }
    }

    #[test]
    fn bad_sentinel_settings_are_config_errors() {
        assert!(refused(" ", &["redis://127.0.0.1:26379"]).contains("empty master name"));
        assert!(refused("mymaster", &[]).contains("no Sentinel"));
        assert!(refused("mymaster", &["localhost:26379"]).contains("does not parse"));
        assert!(
            refused(
                "mymaster",
                &["redis://:a@127.0.0.1:26379", "redis://:b@127.0.0.1:26380"]
            )
            .contains("passwords")
        );
        assert!(
            refused(
                "mymaster",
                &["redis://127.0.0.1:26379", "rediss://127.0.0.1:26380"]
            )
            .contains("mix")
        );
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_sentinels_need_the_tls_feature() {
        for url in ["rediss://127.0.0.1:26379", "valkeys://127.0.0.1:26379"] {
            assert!(refused("mymaster", &[url]).contains("`tls` cargo feature"));
        }
    }

    #[test]
    fn good_sentinel_settings_open_nothing() {
        let urls = [
            "redis://:secret@127.0.0.1:26379/2".to_owned(),
            "redis://:secret@127.0.0.1:26380/2".to_owned(),
        ];
        assert!(sentinel_client("mymaster", &urls, &Tls::default()).is_ok());
    }
}
