//! Booting genkan in-process on loopback, a private test CA, and small clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use server::config::{Config, Environment, parse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A folder under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("genkan-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test CA and a server certificate it signed for localhost and 127.0.0.1, shaped so that
/// testssl.sh has nothing to complain about (90 days, serverAuth, a CRL distribution point).
pub struct TestPki {
    pub ca_der: CertificateDer<'static>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub ca_path: PathBuf,
}

impl TestPki {
    pub fn new(dir: &Path, common_name: &str) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CrlDistributionPoint, DistinguishedName, DnType,
            ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let now = chrono::Utc::now();
        let ymd = |t: chrono::DateTime<chrono::Utc>| {
            use chrono::Datelike;
            rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut ca_name = DistinguishedName::new();
        ca_name.push(DnType::CommonName, format!("genkan test CA {common_name}"));
        ca_params.distinguished_name = ca_name;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = ymd(now - chrono::Duration::days(1));
        ca_params.not_after = ymd(now + chrono::Duration::days(365));
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let mut leaf_name = DistinguishedName::new();
        leaf_name.push(DnType::CommonName, common_name);
        leaf.distinguished_name = leaf_name;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec!["http://127.0.0.1/test.crl".to_owned()],
        }];
        leaf.not_before = ymd(now - chrono::Duration::days(1));
        leaf.not_after = ymd(now + chrono::Duration::days(90));
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        let cert_path = dir.join(format!("{common_name}.crt"));
        let key_path = dir.join(format!("{common_name}.key"));
        let ca_path = dir.join(format!("{common_name}-ca.crt"));
        std::fs::write(&cert_path, format!("{}{}", leaf_cert.pem(), ca_cert.pem())).unwrap();
        std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        Self {
            ca_der: ca_cert.der().clone(),
            cert_path,
            key_path,
            ca_path,
        }
    }

    /// A second handle on the same trust anchor, to move into another task.
    pub fn from_ca_for_test(other: &Self) -> Self {
        Self {
            ca_der: other.ca_der.clone(),
            cert_path: other.cert_path.clone(),
            key_path: other.key_path.clone(),
            ca_path: other.ca_path.clone(),
        }
    }

    pub fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|proto| proto.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

/// A genkan started in-process with a test certificate.
pub struct Genkan {
    pub running: Option<server::Running>,
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub pki: TestPki,
    pub dir: TempDir,
}

impl Genkan {
    /// Starts genkan with `extra` appended to a config that listens on ephemeral loopback ports.
    /// Unless `extra` writes policy rules, everyone may reach everything: these tests are about
    /// the gateway, and `identity.rs` tests the gate.
    pub async fn start(extra: &str) -> Self {
        let open =
            "\n[[policy.rule]]\nname = \"tests-everyone\"\n[policy.rule.allow]\neveryone = true\n";
        let extra = if extra.contains("[[policy.rule]]") {
            extra.to_owned()
        } else {
            format!("{extra}{open}")
        };
        let dir = TempDir::new("gw");
        let pki = TestPki::new(&dir.0, "gateway");
        let text = format!(
            "data_dir = \"data\"\nlisten_https = \"127.0.0.1:0\"\nlisten_http = \"127.0.0.1:0\"\n\
             [tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n{extra}",
            pki.cert_path.display(),
            pki.key_path.display()
        );
        let config_path = dir.0.join("genkan.toml");
        std::fs::write(&config_path, &text).unwrap();
        let mut config =
            Config::from_file(parse(&text).unwrap(), &dir.0, &Environment::default()).unwrap();
        config.source = Some(config_path);
        let running = server::start(config).await.unwrap();
        Self {
            https: running.https_addr,
            http: running.http_addr,
            running: Some(running),
            pki,
            dir,
        }
    }

    pub fn access_log(&self) -> PathBuf {
        self.dir.0.join("data/logs/access.log")
    }

    /// Sends one HTTP/1.1 request over TLS and returns the response with its whole body.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Response<Bytes> {
        tokio::time::timeout(
            Duration::from_secs(20),
            send_https(&self.pki, self.https, request),
        )
        .await
        .expect("request timed out")
    }

    pub async fn get(&self, path: &str) -> Response<Bytes> {
        self.send(request("GET", path).body(Full::new(Bytes::new())).unwrap())
            .await
    }

    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// A request builder with the Host header tests use.
pub fn request(method: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("user-agent", "genkan-it")
}

pub async fn send_https(
    pki: &TestPki,
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Response<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = pki
        .connector(&[b"http/1.1"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Response::from_parts(parts, bytes)
}

/// Writes raw bytes over TLS and reads until the server closes or `wait` passes.
pub async fn raw_tls(pki: &TestPki, addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = pki
        .connector(&[b"http/1.1"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, tls.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs a command with a time limit and returns (success, stdout + stderr).
pub async fn run_tool(program: &str, args: &[&str], limit: Duration) -> (bool, String) {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(limit, child).await {
        Ok(Ok(output)) => (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ),
        Ok(Err(error)) => panic!("{program} could not run ({error}); scripts/test installs it"),
        Err(_) => panic!("{program} did not finish within {limit:?}"),
    }
}

/// Waits until `check` passes or `limit` is over; returns whether it passed.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    check()
}
