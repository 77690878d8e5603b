//! TLS (`rediss://` URLs), behind the `tls` cargo feature: which certificates a client trusts
//! and shows, and how a node's `redis::Client` is opened with them.
//!
//! The connections are redis-rs's, over rustls with the ring provider. By default a `rediss://`
//! server is verified against the system's root certificates; `Tls::root` replaces them with
//! the given ones (a private CA), and `Tls::identity` adds a client certificate for servers
//! that ask for one (`tls-auth-clients yes`); both exist with the feature only.

use crate::error::LockError;

/// The certificates of a client's TLS connections; empty without the `tls` feature.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tls {
    #[cfg(feature = "tls")]
    certificates: Option<redis::TlsCertificates>,
}

#[cfg(feature = "tls")]
impl Tls {
    /// Trusts the certificates of `pem` (a CA's, in PEM) instead of the system's roots.
    pub(crate) fn root(&mut self, pem: Vec<u8>) {
        self.certificates().root_cert = Some(pem);
    }

    /// Shows the certificate chain `cert_pem` with its private key `key_pem` (both PEM).
    pub(crate) fn identity(&mut self, cert_pem: Vec<u8>, key_pem: Vec<u8>) {
        self.certificates().client_tls = Some(redis::ClientTlsConfig {
            client_cert: cert_pem,
            client_key: key_pem,
        });
    }

    fn certificates(&mut self) -> &mut redis::TlsCertificates {
        self.certificates.get_or_insert(redis::TlsCertificates {
            client_tls: None,
            root_cert: None,
        })
    }

    /// Checks that what was given is PEM holding what it should: a certificate at least as
    /// root, a certificate and a private key as identity. (Otherwise redis-rs would find out
    /// only when it connects.)
    ///
    /// # Errors
    ///
    /// [`LockError::Config`] naming the setting.
    pub(crate) fn check(&self) -> Result<(), LockError> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

        let Some(certificates) = &self.certificates else {
            return Ok(());
        };
        let certificates_in = |pem: &[u8]| CertificateDer::pem_slice_iter(pem).count();
        let refuse = |what: &str| {
            LockError::config(format!(
                "`{what}` is given no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
            ))
        };
        if let Some(root) = &certificates.root_cert
            && certificates_in(root) == 0
        {
            return Err(refuse("tls_root_certificate"));
        }
        if let Some(identity) = &certificates.client_tls {
            if certificates_in(&identity.client_cert) == 0 {
                return Err(refuse("tls_client_certificate"));
            }
            if PrivateKeyDer::from_pem_slice(&identity.client_key).is_err() {
                return Err(LockError::config(
                    "the key given to `tls_client_certificate` is not a PEM private key",
                ));
            }
        }
        Ok(())
    }

    /// The certificates given, for a cluster client.
    pub(crate) fn given(&self) -> Option<&redis::TlsCertificates> {
        self.certificates.as_ref()
    }
}

/// Opens the client of one node at `url`, with the certificates of `tls` for a `rediss://` URL.
///
/// # Errors
///
/// [`LockError::Config`] if the URL does not parse, names TLS in a build without the `tls`
/// feature, or the certificates given cannot be read.
pub(crate) fn open(url: &str, tls: &Tls) -> Result<redis::Client, LockError> {
    let bad = |err: redis::RedisError| unparsed("Redis", url, &err);
    let secure = asks_for_tls(url);
    #[cfg(feature = "tls")]
    if let (true, Some(certificates)) = (secure, &tls.certificates) {
        return redis::Client::build_with_tls(url, certificates.clone()).map_err(|err| {
            LockError::config(format!(
                "the TLS certificates given for `{url}` cannot be used: {err}"
            ))
        });
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = tls;
        if secure {
            return Err(unavailable(url));
        }
    }
    redis::Client::open(url).map_err(bad)
}

/// Whether `url` names a server behind TLS: `rediss://`, or `valkeys://`, which redis-rs
/// reads alike.
pub(crate) fn asks_for_tls(url: &str) -> bool {
    url.starts_with("rediss://") || url.starts_with("valkeys://")
}

/// The error for a `url` of a `what` (`"Redis"`, `"Sentinel"`) that redis-rs could not parse
/// (`err`): what is wrong where it can tell (no scheme, or not one of redis-rs's), else the
/// form a URL takes; redis-rs's own words ("Redis URL did not parse") only where they add a
/// detail.
pub(crate) fn unparsed(what: &str, url: &str, err: &redis::RedisError) -> LockError {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    // The schemes redis-rs 1.8 reads (`connection.rs`, `IntoConnectionInfo for Url`).
    let known = [
        "redis",
        "rediss",
        "redis+unix",
        "unix",
        "valkey",
        "valkeys",
        "valkey+unix",
    ];
    let hint = if scheme.is_some_and(|scheme| known.contains(&scheme)) {
        let detail = err
            .detail()
            .map(|detail| format!(" ({detail})"))
            .unwrap_or_default();
        format!("{detail}: the form is `redis://[user:password@]host[:port][/db]`")
    } else {
        ": it must start with `redis://` (`rediss://` for TLS, `redis+unix://` for a Unix \
         socket), as in `redis://127.0.0.1:6379`"
            .to_owned()
    };
    LockError::config(format!("{what} URL `{url}` does not parse{hint}"))
}

/// The error for a `rediss://` `url` in a build without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) fn unavailable(url: &str) -> LockError {
    LockError::config(format!(
        "`{url}` asks for TLS, and this build of lock-runtime has no TLS: enable its `tls` \
         cargo feature"
    ))
}
