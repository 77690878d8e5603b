//! Certificates for the kit's TLS listeners, made fresh for each server with rcgen: a CA, a
//! server certificate for `127.0.0.1` and `localhost` signed by it, and a client certificate
//! signed by it for mutual TLS. Nothing is checked in, so nothing expires.

use std::{fs, path::Path};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The certificates of one TLS listener; the server's files are written in its directory.
#[derive(Debug, Clone)]
pub(crate) struct TlsMaterial {
    /// The CA's certificate (PEM): what a client trusts.
    pub(crate) ca_pem: String,
    /// A client certificate signed by the CA (PEM), and its private key (PEM).
    pub(crate) client: (String, String),
}

/// The server's files, as `redis-server` options name them.
pub(crate) const SERVER_FILES: [(&str, &str); 3] = [
    ("tls-cert-file", "tls-server.pem"),
    ("tls-key-file", "tls-server.key"),
    ("tls-ca-cert-file", "tls-ca.pem"),
];

/// Issues a CA, a server and a client certificate, and writes the server's files in `dir`.
///
/// # Panics
///
/// When a key or certificate cannot be made, or a file cannot be written.
pub(crate) fn issue(dir: &Path) -> TlsMaterial {
    let ca_key = KeyPair::generate().unwrap_or_else(|err| panic!("CA key: {err}"));
    let mut ca = CertificateParams::new(Vec::new()).unwrap_or_else(|err| panic!("CA: {err}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "lock-tests CA");
    let ca_pem = ca
        .self_signed(&ca_key)
        .unwrap_or_else(|err| panic!("CA certificate: {err}"))
        .pem();
    let issuer = Issuer::new(ca, ca_key);
    let (server_pem, server_key) = leaf(&issuer, "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
    let client = leaf(
        &issuer,
        "lock-tests client",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    for ((_, file), contents) in SERVER_FILES.iter().zip([&server_pem, &server_key, &ca_pem]) {
        fs::write(dir.join(file), contents)
            .unwrap_or_else(|err| panic!("writing {file} for redis-server: {err}"));
    }
    TlsMaterial { ca_pem, client }
}

/// A certificate for `name` (and `localhost`) signed by `issuer`, for `usage`: (PEM, key PEM).
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap_or_else(|err| panic!("key of {name}: {err}"));
    let mut params = CertificateParams::new(vec![name.to_owned(), "localhost".to_owned()])
        .unwrap_or_else(|err| panic!("certificate of {name}: {err}"));
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let certificate = params
        .signed_by(&key, issuer)
        .unwrap_or_else(|err| panic!("signing the certificate of {name}: {err}"));
    (certificate.pem(), key.serialize_pem())
}
