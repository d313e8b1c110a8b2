//! A stand-in for genkan's two device endpoints: HTTPS on 127.0.0.1 with a test CA, one-time
//! enrolment codes, certificates signed from the agent's request, and a report path that
//! requires the client certificate. It can be stopped (connections refused) and started
//! again on the same port, and told to answer 503.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use posture::{ENROL_PATH, EnrolRequest, EnrolResponse, REPORT_PATH, Report, ReportAccepted};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// What the server saw and how it should behave.
#[derive(Default)]
pub(crate) struct Books {
    /// Codes not yet used.
    pub(crate) codes: BTreeSet<String>,
    /// Device certificates issued, by DER, with their device ids.
    devices: BTreeMap<Vec<u8>, String>,
    /// Reports accepted, in arrival order, with the device the certificate named.
    pub(crate) accepted: Vec<(String, Report)>,
    /// Reports to accept before answering 503 (None: no limit).
    pub(crate) accept_budget: Option<usize>,
    /// Report posts refused for want of a known certificate.
    pub(crate) unauthenticated: usize,
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    /// The CA of the server's HTTPS certificate, for `--ca-file`.
    pub(crate) https_ca_pem: String,
    pub(crate) books: Arc<Mutex<Books>>,
    acceptor: TlsAcceptor,
    device_ca: Arc<(Issuer<'static, KeyPair>, String)>,
    tasks: Option<JoinSet<()>>,
}

fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).unwrap().pem();
    (Issuer::new(params, key), pem)
}

impl TestServer {
    pub(crate) async fn start(codes: &[&str]) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (https_issuer, https_ca_pem) = ca("test genkan HTTPS CA");
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &https_issuer)
            .unwrap();
        let device_ca = ca("test genkan device CA");
        let mut device_roots = RootCertStore::empty();
        device_roots
            .add(CertificateDer::from_pem_slice(device_ca.1.as_bytes()).unwrap())
            .unwrap();
        // Enrolment has no certificate yet, so the handshake admits both; the report
        // handler refuses a request without a known one.
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(device_roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![server_cert.der().clone()],
                PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let books = Books {
            codes: codes.iter().map(|code| (*code).to_owned()).collect(),
            ..Books::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut server = Self {
            addr: listener.local_addr().unwrap(),
            https_ca_pem,
            books: Arc::new(Mutex::new(books)),
            acceptor: TlsAcceptor::from(Arc::new(config)),
            device_ca: Arc::new(device_ca),
            tasks: None,
        };
        server.serve(listener);
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Closes the listener and every connection: from now on connections are refused.
    pub(crate) async fn stop(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }

    /// Listens again on the same port.
    pub(crate) async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let acceptor = self.acceptor.clone();
        let books = self.books.clone();
        let device_ca = self.device_ca.clone();
        // Connections live in the accept task's own set, so stopping the server drops them.
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let books = books.clone();
                let device_ca = device_ca.clone();
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let peer = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|cert| cert.as_ref().to_vec());
                    let service = service_fn(move |request| {
                        let books = books.clone();
                        let device_ca = device_ca.clone();
                        let peer = peer.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                handle(request, &books, &device_ca, peer).await,
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// The collection times of the accepted reports, in arrival order.
    pub(crate) fn accepted_times(&self) -> Vec<String> {
        self.books
            .lock()
            .unwrap()
            .accepted
            .iter()
            .map(|(_, report)| report.collected_at.to_rfc3339())
            .collect()
    }
}

async fn handle(
    request: Request<Incoming>,
    books: &Mutex<Books>,
    device_ca: &(Issuer<'static, KeyPair>, String),
    peer: Option<Vec<u8>>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let Ok(body) = request.into_body().collect().await else {
        return answer(StatusCode::BAD_REQUEST, "{}".into());
    };
    let body = body.to_bytes();
    match path.as_str() {
        ENROL_PATH => enrol(&body, books, device_ca),
        REPORT_PATH => report(&body, books, peer),
        _ => answer(StatusCode::NOT_FOUND, "{}".into()),
    }
}

fn enrol(
    body: &[u8],
    books: &Mutex<Books>,
    device_ca: &(Issuer<'static, KeyPair>, String),
) -> Response<Full<Bytes>> {
    let Ok(request) = serde_json::from_slice::<EnrolRequest>(body) else {
        return answer(StatusCode::BAD_REQUEST, r#"{"error":"malformed"}"#.into());
    };
    let mut books = books.lock().unwrap();
    if !books.codes.remove(&request.code) {
        return answer(
            StatusCode::FORBIDDEN,
            r#"{"error":"unknown or already used code"}"#.into(),
        );
    }
    let mut csr = CertificateSigningRequestParams::from_pem(&request.csr_pem).unwrap();
    csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let certificate = csr.signed_by(&device_ca.0).unwrap();
    let device_id = format!("dev-{}", books.devices.len() + 1);
    books
        .devices
        .insert(certificate.der().to_vec(), device_id.clone());
    let response = EnrolResponse {
        device_id,
        certificate_pem: certificate.pem(),
        ca_pem: device_ca.1.clone(),
        report_interval_seconds: 120,
    };
    answer(StatusCode::OK, serde_json::to_vec(&response).unwrap())
}

fn report(body: &[u8], books: &Mutex<Books>, peer: Option<Vec<u8>>) -> Response<Full<Bytes>> {
    let mut books = books.lock().unwrap();
    let Some(device) = peer.and_then(|der| books.devices.get(&der).cloned()) else {
        books.unauthenticated += 1;
        return answer(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"no device certificate"}"#.into(),
        );
    };
    let Ok(report) = serde_json::from_slice::<Report>(body) else {
        return answer(
            StatusCode::BAD_REQUEST,
            r#"{"error":"malformed report"}"#.into(),
        );
    };
    match books.accept_budget {
        Some(0) => {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"busy"}"#.into(),
            );
        }
        Some(left) => books.accept_budget = Some(left - 1),
        None => {}
    }
    books.accepted.push((device, report));
    let accepted = ReportAccepted {
        next_report_seconds: 60,
        renewed_certificate_pem: None,
    };
    answer(StatusCode::OK, serde_json::to_vec(&accepted).unwrap())
}

fn answer(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
