//! TLS for the front door: rustls with TLS 1.2 and 1.3, ECDHE key exchange and AEAD suites only.
//!
//! The seed's `ssl_ciphers` string asked for "ECDHE and GCM, no export, no DES, no MD5" but, read
//! by OpenSSL, also let in DHE with CBC and anonymous suites. rustls implements nothing weaker
//! than what the seed meant, so the list below is the whole of what is offered.
//!
//! The certificate lives in a [`CertStore`] that the server swaps on `SIGHUP`: one
//! `ServerConfig` serves the whole process life, so the session cache and ticket keys survive a
//! certificate renewal and open connections are untouched.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;

use crate::Error;

/// The certificate currently presented to clients.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
}

impl CertStore {
    /// Starts with `key`.
    pub fn new(key: CertifiedKey) -> Self {
        Self {
            current: ArcSwap::from_pointee(key),
        }
    }

    /// Presents `key` to new handshakes from now on.
    pub fn replace(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }

    /// The certificate chain presented now (leaf first).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.load().cert.clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Reads a full chain and its private key from PEM files and checks that they belong together.
pub fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, Error> {
    let cert_pem = std::fs::read(cert_path).map_err(|source| Error::ReadPem {
        path: cert_path.to_owned(),
        source,
    })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| Error::BadCertificate {
            path: cert_path.to_owned(),
            reason: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(Error::BadCertificate {
            path: cert_path.to_owned(),
            reason: "no CERTIFICATE block found".into(),
        });
    }
    let key_pem = std::fs::read(key_path).map_err(|source| Error::ReadPem {
        path: key_path.to_owned(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| Error::BadPrivateKey {
        path: key_path.to_owned(),
        reason: error.to_string(),
    })?;
    certified_key(chain, key).map_err(|error| match error {
        Error::KeyMismatch { .. } => Error::KeyMismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        },
        Error::BadPrivateKey { reason, .. } => Error::BadPrivateKey {
            path: key_path.to_owned(),
            reason,
        },
        other => other,
    })
}

/// Pairs a chain with its key, refusing a key that does not match the leaf certificate.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, Error> {
    let signing_key = provider::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|error| Error::BadPrivateKey {
            path: "(memory)".into(),
            reason: error.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        // Some key types cannot report their public key; rustls then cannot check, and neither can we.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(_) => Err(Error::KeyMismatch {
            cert: "(memory)".into(),
            key: "(memory)".into(),
        }),
    }
}

/// The AEAD suites offered, strongest first; the server's order wins over the client's.
fn cipher_suites() -> Vec<rustls::SupportedCipherSuite> {
    use provider::cipher_suite as suite;
    vec![
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
}

/// Builds the process-wide rustls server configuration around a certificate store.
///
/// `session_cache_entries` sizes the stateful resumption cache (nginx's `shared:SSL:1m` held
/// about 4000 sessions); stateless tickets with rotating keys are on as well.
pub fn server_config(
    certs: Arc<CertStore>,
    session_cache_entries: usize,
) -> Result<rustls::ServerConfig, Error> {
    server_config_with_devices(certs, session_cache_entries, None)
}

/// [`server_config`] that also asks clients for a certificate issued by `device_ca` (genkan's
/// device CA). Clients without one are served as before, so browsers see no prompt beyond
/// their own choice; a certificate that does not verify (another CA, expired, without the
/// client-authentication usage) fails the handshake.
pub fn server_config_with_devices(
    certs: Arc<CertStore>,
    session_cache_entries: usize,
    device_ca: Option<Arc<rustls::RootCertStore>>,
) -> Result<rustls::ServerConfig, Error> {
    let mut crypto = provider::default_provider();
    crypto.cipher_suites = cipher_suites();
    let crypto = Arc::new(crypto);
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&crypto))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match device_ca {
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots, crypto)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|error| Error::BadCertificate {
                        path: "(the device CA)".into(),
                        reason: error.to_string(),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    config.session_storage = ServerSessionMemoryCache::new(session_cache_entries.max(1));
    config.ticketer = provider::Ticketer::new()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tls12_and_tls13_aead_suites_are_offered() {
        for suite in cipher_suites() {
            let name = format!("{:?}", suite.suite());
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "{name}"
            );
            assert!(
                name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"),
                "{name}"
            );
        }
    }
}
