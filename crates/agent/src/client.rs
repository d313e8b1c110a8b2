//! HTTPS to genkan: HTTP/1.1 over rustls (ring), with or without the device's certificate.
//!
//! One connection is reused for a batch of posts (a queue being emptied) and opened again when
//! the server closed it between two posts. Every step has a time limit, so an agent never
//! hangs on a half-open connection.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// genkan's answers are a few hundred bytes; anything much larger is not genkan.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// genkan's address: `https://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerAddress {
    host: String,
    port: u16,
    authority: String,
}

impl ServerAddress {
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let uri: Uri = text
            .trim()
            .parse()
            .with_context(|| format!("{text:?} is not a URL; give https://host[:port]"))?;
        if uri.scheme_str() != Some("https") {
            bail!("{text:?}: genkan's address must start with https://");
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("{text:?} has no host; give https://host[:port]"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!("{text:?}: give only https://host[:port]; the agent knows genkan's paths");
        }
        if authority.as_str().contains('@') {
            bail!("{text:?}: a user name in the address is not supported");
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Self {
            host,
            port: authority.port_u16().unwrap_or(443),
            authority: authority.as_str().to_owned(),
        })
    }
}

/// Trust anchors for genkan's HTTPS certificate: a PEM file's certificates, or the system's.
pub(crate) fn roots_from_pem(pem: &[u8], origin: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    add_pem_roots(&mut roots, pem, origin)?;
    Ok(roots)
}

pub(crate) fn add_pem_roots(roots: &mut RootCertStore, pem: &[u8], origin: &str) -> Result<()> {
    let mut added = 0;
    for certificate in CertificateDer::pem_slice_iter(pem) {
        let certificate = certificate.with_context(|| format!("reading {origin}"))?;
        roots
            .add(certificate)
            .with_context(|| format!("using a certificate of {origin} as a trust anchor"))?;
        added += 1;
    }
    if added == 0 {
        bail!("{origin} holds no PEM certificate");
    }
    Ok(())
}

pub(crate) fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        bail!("the system has no trusted CA certificates; give genkan's CA with --ca-file");
    }
    Ok(roots)
}

/// The device's certificate and key, for the report path.
pub(crate) struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Identity {
    pub(crate) fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .context("reading the device certificate")?;
        if chain.is_empty() {
            bail!("the device certificate file holds no certificate");
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).context("reading the device key")?;
        // A certificate for another key would only fail later, in every handshake.
        rustls::sign::CertifiedKey::from_der(
            chain.clone(),
            key.clone_key(),
            &rustls::crypto::ring::default_provider(),
        )
        .context("the device certificate is not for the device's key")?;
        Ok(Self { chain, key })
    }
}

/// A configured client for one genkan server.
#[derive(Clone)]
pub(crate) struct Client {
    server: ServerAddress,
    connector: TlsConnector,
}

impl Client {
    pub(crate) fn new(
        server: ServerAddress,
        roots: RootCertStore,
        identity: Option<Identity>,
    ) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("configuring TLS")?
            .with_root_certificates(roots);
        let mut config = match identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain, identity.key)
                .context("using the device certificate")?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            server,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Opens a connection (TCP, TLS, HTTP/1.1).
    pub(crate) async fn connect(&self) -> Result<Connection> {
        let server = &self.server;
        let name = ServerName::try_from(server.host.clone())
            .with_context(|| format!("{:?} is not a host name", server.host))?;
        let open = async {
            let tcp = TcpStream::connect((server.host.as_str(), server.port))
                .await
                .with_context(|| format!("connecting to {}", server.authority))?;
            let _ = tcp.set_nodelay(true);
            let tls = self
                .connector
                .connect(name, tcp)
                .await
                .with_context(|| format!("TLS with {}", server.authority))?;
            let (sender, connection) = http1::handshake(TokioIo::new(tls))
                .await
                .with_context(|| format!("HTTP with {}", server.authority))?;
            Ok::<_, anyhow::Error>((sender, connection))
        };
        let (sender, connection) = tokio::time::timeout(CONNECT_TIMEOUT, open)
            .await
            .map_err(|_| anyhow!("connecting to {}: no answer within 15 s", server.authority))??;
        // The connection task ends when the sender is dropped or the server closes.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection to genkan ended");
            }
        });
        Ok(Connection {
            sender,
            authority: server.authority.clone(),
        })
    }
}

/// An open HTTP/1.1 connection to genkan.
pub(crate) struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    authority: String,
}

/// genkan's answer: the status and the (small) body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Connection {
    /// Whether the connection can take another request (the server may have closed it).
    pub(crate) async fn is_usable(&mut self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(1), self.sender.ready()).await,
            Ok(Ok(()))
        )
    }

    /// Posts JSON to `path` and reads the answer.
    pub(crate) async fn post_json(&mut self, path: &str, json: Vec<u8>) -> Result<Answer> {
        let request = Request::post(path)
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("genkan-agent/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(json)))
            .context("building the request")?;
        let exchange = async {
            self.sender.ready().await.context("connection closed")?;
            let response = self
                .sender
                .send_request(request)
                .await
                .with_context(|| format!("POST {path}"))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|error| anyhow!("reading the answer to POST {path}: {error}"))?
                .to_bytes();
            Ok::<_, anyhow::Error>(Answer { status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("POST {path}: no answer within 30 s"))?
    }
}

/// The start of an answer's body, for error messages (genkan's errors are short JSON).
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        let address = ServerAddress::parse("https://genkan.example.jp").unwrap();
        assert_eq!(
            (address.host.as_str(), address.port),
            ("genkan.example.jp", 443)
        );
        let address = ServerAddress::parse("https://[::1]:8443/").unwrap();
        assert_eq!((address.host.as_str(), address.port), ("::1", 8443));
        assert_eq!(address.authority, "[::1]:8443");
        for bad in [
            "http://genkan.example.jp",
            "genkan.example.jp",
            "https://genkan.example.jp/_genkan/",
            "https://user@genkan.example.jp",
            "",
        ] {
            assert!(ServerAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_pem_file_without_certificates_is_refused() {
        let error = roots_from_pem(b"not a certificate", "ca.pem").unwrap_err();
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn snippets_are_short() {
        assert_eq!(snippet(b"  {\"error\":\"x\"}\n"), "{\"error\":\"x\"}");
        assert_eq!(snippet("あ".repeat(300).as_bytes()).chars().count(), 201);
    }
}
