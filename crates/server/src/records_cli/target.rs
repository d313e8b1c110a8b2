//! Where the running server is and which certificate to trust, read from its configuration.
//!
//! Only the few keys that say where the server listens are read (`records.data_api_listen`,
//! `listen_https`, `tls.certificate`, `data_dir`, the database names), not the whole checked
//! configuration: an operator's account may run these commands without being able to read the
//! server's private key or setup files.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::config::{ConfigFile, Environment, parse};

use super::ServerArgs;

/// How to reach the server.
#[derive(Clone)]
pub(super) struct Target {
    /// The server's base URL, for messages (`http://127.0.0.1:3000`).
    pub(super) base: String,
    /// Host and port to connect to.
    pub(super) connect: String,
    /// The `Host` header.
    pub(super) host: String,
    /// TLS, for HTTPS: the connector and the name the certificate is checked for.
    pub(super) tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Database names the configuration lists (empty without a configuration).
    pub(super) databases: Vec<String>,
}

/// What the configuration says about where the server is.
struct Located {
    data_api_listen: Option<String>,
    listen_https: String,
    certificate: PathBuf,
    databases: Vec<String>,
}

fn locate(config: Option<&Path>) -> Result<Located> {
    let (file, base) = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let file = parse(&text).with_context(|| path.display().to_string())?;
            let base = path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            (file, base)
        }
        None => (ConfigFile::default(), PathBuf::from(".")),
    };
    // The same defaults and `GENKAN_*` overrides `genkan serve` applies.
    let env = Environment::from_process();
    let data_dir = env.data_dir.clone().unwrap_or_else(|| {
        base.join(
            file.data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("data")),
        )
    });
    let certificate = file.tls.certificate.as_ref().map_or_else(
        || data_dir.join("tls/self-signed.crt"),
        |path| base.join(path),
    );
    Ok(Located {
        data_api_listen: file.records.data_api_listen.clone(),
        listen_https: env
            .listen_https
            .or(file.listen_https.clone())
            .unwrap_or_else(|| "0.0.0.0:8443".into()),
        certificate,
        databases: file
            .records
            .databases
            .iter()
            .map(|database| database.name.clone())
            .collect(),
    })
}

/// Finds the server: `--url`, else the configuration's plain-HTTP Data API listener, else its
/// HTTPS listener on this machine.
pub(super) fn find(args: &ServerArgs) -> Result<Target> {
    let located = locate(args.config.as_deref())?;
    let trust = args.cacert.clone().unwrap_or(located.certificate.clone());
    let mut target = match (&args.url, &located.data_api_listen) {
        (Some(url), _) => from_url(url, &trust)?,
        (None, Some(listen)) => {
            let addr: SocketAddr = listen.parse().map_err(|_| {
                anyhow!("records.data_api_listen: `{listen}` is not an address:port")
            })?;
            plain(addr)
        }
        (None, None) => {
            let listen: SocketAddr = located.listen_https.parse().map_err(|_| {
                anyhow!(
                    "listen_https: `{}` is not an address:port",
                    located.listen_https
                )
            })?;
            let ip = match listen.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            let connect = SocketAddr::new(ip, listen.port()).to_string();
            Target {
                base: format!("https://localhost:{}", listen.port()),
                connect,
                host: format!("localhost:{}", listen.port()),
                tls: Some((connector(&trust)?, ServerName::try_from("localhost")?)),
                databases: Vec::new(),
            }
        }
    };
    target.databases = located.databases;
    Ok(target)
}

fn plain(addr: SocketAddr) -> Target {
    Target {
        base: format!("http://{addr}"),
        connect: addr.to_string(),
        host: addr.to_string(),
        tls: None,
        databases: Vec::new(),
    }
}

fn from_url(url: &str, trust: &Path) -> Result<Target> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("--url: `{url}` is not a URL"))?;
    let secure = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => bail!("--url: give http://HOST:PORT or https://HOST:PORT"),
    };
    let Some(host) = uri.host() else {
        bail!("--url: `{url}` names no host");
    };
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let authority = format!("{host}:{port}");
    let tls = if secure {
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|_| anyhow!("--url: `{host}` is not a host name"))?;
        Some((connector(trust)?, name))
    } else {
        None
    };
    Ok(Target {
        base: format!("{}://{authority}", if secure { "https" } else { "http" }),
        connect: authority.clone(),
        host: authority,
        tls,
        databases: Vec::new(),
    })
}

/// A TLS client that trusts the certificates of `pem`: the server's own (pinned: a certificate
/// that is byte for byte one of them is accepted for any name, as it is the one the server was
/// configured with) or a CA that signed it (checked the usual way, name included).
fn connector(pem: &Path) -> Result<TlsConnector> {
    let bytes = std::fs::read(pem).with_context(|| {
        format!(
            "cannot read the server's certificate {} (give --cacert, or --config of the running server)",
            pem.display()
        )
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|error| anyhow!("{}: {error}", pem.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate in it", pem.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let (_, _) = roots.add_parsable_certificates(certs.iter().cloned());
    let chain = if roots.is_empty() {
        None
    } else {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .ok()
    };
    let verifier = Arc::new(Trusted {
        pinned: certs,
        chain,
        provider: Arc::clone(&provider),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS")?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The certificate check of [`connector`].
#[derive(Debug)]
struct Trusted {
    pinned: Vec<CertificateDer<'static>>,
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Trusted {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|pinned| pinned.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.chain {
            Some(chain) => {
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
