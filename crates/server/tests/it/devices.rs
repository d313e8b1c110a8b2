//! Devices end to end on loopback: the real `genkan-agent` enrols with a code an administrator
//! made on the devices page and reports; reports sent with its certificate decide whether a
//! route that needs a compliant device lets its owner in; a Defender detection (recorded
//! PowerShell output) is mailed through a real SMTP server (Debian's aiosmtpd) and posted to
//! a webhook, once. Replayed codes, revoked devices and certificates of another CA are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{Genkan, TempDir, TestPki, eventually, request};
use crate::identity::{Browser, GENKAN, PASSWORD, add_user, audit_kinds};
use crate::upstream::Iis6;

/// Debian's aiosmtpd, printing every message it receives.
struct Smtp {
    port: u16,
    received: Arc<Mutex<String>>,
    _child: tokio::process::Child,
}

impl Smtp {
    async fn start() -> Self {
        let port = free_port().await;
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3-aiosmtpd is needed (scripts/test installs it)");
        let received = Arc::new(Mutex::new(String::new()));
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let sink = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let listening = async {
            while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(15), listening)
            .await
            .expect("aiosmtpd did not start listening");
        Self {
            port,
            received,
            _child: child,
        }
    }

    fn text(&self) -> String {
        self.received.lock().unwrap().clone()
    }
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// An HTTP server that answers 204 to everything and keeps the bodies it received.
async fn webhook() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&bodies);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 8192];
                loop {
                    let Ok(read) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|line| {
                                let (name, value) = line.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            sink.lock().unwrap().push(body.to_owned());
                            break;
                        }
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (addr, bodies)
}

/// The agent binary, built next to `genkan` (cargo builds a test's own package only). Cargo is
/// asked only when the binary is older than the agent's sources: another cargo holding the
/// build directory's lock would otherwise stall the test.
fn agent_binary() -> PathBuf {
    let binary = Path::new(GENKAN).with_file_name("genkan-agent");
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = std::fs::metadata(&binary)
        .and_then(|meta| meta.modified())
        .ok();
    let sources = [crates.join("agent"), crates.join("posture")];
    if built.is_some_and(|built| sources.iter().all(|dir| !newer_than(dir, built))) {
        return binary;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args([
        "build",
        "--quiet",
        "-p",
        "genkan-agent",
        "--bin",
        "genkan-agent",
    ]);
    if Path::new(GENKAN)
        .parent()
        .is_some_and(|dir| dir.ends_with("release"))
    {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "building genkan-agent failed");
    assert!(binary.exists(), "{} missing", binary.display());
    binary
}

/// Whether any file under `path` was changed after `time`.
fn newer_than(path: &Path, time: std::time::SystemTime) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.is_dir() {
        return std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                let name = entry.file_name();
                name != "target" && newer_than(&entry.path(), time)
            });
    }
    meta.modified().is_ok_and(|modified| modified > time)
}

pub(crate) async fn agent(args: &[&str], state: &Path) -> (Option<i32>, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(agent_binary())
            .args(args)
            .arg("--state-dir")
            .arg(state)
            .env("GENKAN_AGENT_LOG", "info")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("genkan-agent did not finish")
    .unwrap();
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A TLS client presenting `identity` (certificate chain and key in PEM), or none.
fn connector(pki: &TestPki, identity: Option<(&[u8], &[u8])>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One request over its own connection; `Err` when TLS or HTTP failed.
pub(crate) async fn send(
    genkan: &Genkan,
    identity: Option<(&[u8], &[u8])>,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<Bytes>, String> {
    let exchange = async {
        let tcp = TcpStream::connect(genkan.https)
            .await
            .map_err(|e| e.to_string())?;
        let tls = connector(&genkan.pki, identity)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(http::Response::from_parts(parts, bytes))
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

pub(crate) fn post_json(path: &str, body: impl Into<Bytes>) -> http::Request<Full<Bytes>> {
    request("POST", path)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

fn get_with_cookies(path: &str, browser: &Browser<'_>) -> http::Request<Full<Bytes>> {
    let jar: Vec<String> = browser
        .cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    request("GET", path)
        .header("accept", "text/html")
        .header("cookie", jar.join("; "))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// A Windows report: compliant, or with the recorded Defender detection of an EICAR file.
pub(crate) fn windows_report(device_id: &str, with_detection: bool) -> posture::Report {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../posture/tests/fixtures/windows");
    let read = |name: &str| std::fs::read_to_string(fixtures.join(name)).unwrap();
    let utc = chrono::FixedOffset::east_opt(0).unwrap();
    let detections = if with_detection {
        let names = posture::windows::parse_threat_names(&read("mpthreat_single.json")).unwrap();
        posture::windows::parse_detections(&read("mpthreatdetection_single.json"), &names, utc)
            .unwrap()
    } else {
        Vec::new()
    };
    let now = chrono::Utc::now();
    posture::Report {
        device_id: Some(device_id.to_owned()),
        collected_at: now,
        os: posture::OsInfo {
            family: posture::OsFamily::Windows,
            name: "Microsoft Windows 11 Pro".into(),
            version: "10.0.22631".into(),
        },
        hostname: "YAMADA-NB".into(),
        disk_encryption: posture::Encryption {
            state: posture::EncryptionState::On,
            detail: "BitLocker on C:: protection On, FullyEncrypted".into(),
        },
        antivirus: Some(posture::Antivirus {
            product: "Microsoft Defender Antivirus".into(),
            real_time_protection: Some(true),
            signature_version: Some("1.421.1002.0".into()),
            signatures_updated_at: Some(now - chrono::Duration::hours(3)),
        }),
        detections,
        firewall: Some(true),
        problems: Vec::new(),
    }
}

/// `genkan-agent enrol` with `code` against this genkan (trusting its test CA), into `state`.
pub(crate) async fn enrol(genkan: &Genkan, code: &str, state: &TempDir) -> (Option<i32>, String) {
    let server = format!("https://127.0.0.1:{}", genkan.https.port());
    let ca_file = genkan.pki.ca_path.display().to_string();
    agent(
        &[
            "enrol",
            "--server",
            &server,
            "--code",
            code,
            "--ca-file",
            &ca_file,
        ],
        &state.0,
    )
    .await
}

/// An enrolment code for `user`, made by a signed-in administrator on the devices page.
pub(crate) async fn enrolment_code(admin: &mut Browser<'_>, user: &str) -> String {
    let devices_page = admin.send("GET", "/_genkan/admin/devices", None).await;
    assert_eq!(devices_page.status(), StatusCode::OK);
    let csrf = Browser::csrf(&devices_page);
    let made = admin
        .send(
            "POST",
            "/_genkan/admin/devices/code",
            Some(&format!("csrf={csrf}&user={user}")),
        )
        .await;
    let page = String::from_utf8_lossy(made.body()).into_owned();
    page.split("id=\"enrolment-code\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no code on the page: {page}"))
        .to_owned()
}

fn alerts_of_kind(genkan: &Genkan, kind: &str) -> usize {
    let database =
        store_sqlite::Database::open(&genkan.dir.0.join("data/genkan.db"), "unused").unwrap();
    database
        .recent_alerts(100)
        .unwrap()
        .iter()
        .filter(|alert| alert.kind == kind)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_enrol_report_and_decide_access_and_detections_are_alerted_once() {
    let smtp = Smtp::start().await;
    let (hook, hook_bodies) = webhook().await;
    let iis = Iis6::start().await;
    let extra = format!(
        "[identity]\ntotp_required_groups = []\n\
         [devices]\nreport_interval = \"5m\"\n\
         [alerts]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_starttls = false\n\
         mail_from = \"genkan <genkan@example.jp>\"\nmail_to = [\"it@example.jp\"]\n\
         webhook_url = \"http://{hook}/alerts\"\n\
         [[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\n\
         [[policy.rule]]\nname = \"genkan-pages\"\n[policy.rule.allow]\nauthenticated = true\npath = \"/_genkan/\"\n\
         [[policy.rule]]\nname = \"compliant-devices\"\n[policy.rule.allow]\nauthenticated = true\ndevice_compliant = true\n",
        smtp.port, iis.addr
    );
    let genkan = Genkan::start(&extra).await;
    add_user(&genkan, "kanri", &["admin"], Some(PASSWORD));
    add_user(&genkan, "yamada", &[], Some(PASSWORD));

    // An administrator makes a code for yamada; it is shown once.
    let mut admin = Browser::new(&genkan);
    admin.sign_in("kanri", PASSWORD).await;
    let devices_page = admin.send("GET", "/_genkan/admin/devices", None).await;
    assert_eq!(devices_page.status(), StatusCode::OK);
    let code = enrolment_code(&mut admin, "yamada").await;
    let forged = admin
        .send(
            "POST",
            "/_genkan/admin/devices/code",
            Some("csrf=wrong&user=yamada"),
        )
        .await;
    assert_eq!(
        forged.status(),
        StatusCode::FORBIDDEN,
        "a code without CSRF"
    );

    // The real agent enrols with it, and reports what this machine looks like.
    let state = TempDir::new("agent");
    let (status, output) = enrol(&genkan, &code, &state).await;
    assert_eq!(status, Some(0), "enrolment failed: {output}");
    let device: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.0.join("device.json")).unwrap()).unwrap();
    let device_id = device["device_id"].as_str().unwrap().to_owned();
    let cert = std::fs::read(state.0.join("cert.pem")).unwrap();
    let key = std::fs::read(state.0.join("key.pem")).unwrap();
    let identity = Some((cert.as_slice(), key.as_slice()));

    // The same code again is refused, and so recorded.
    let replay_state = TempDir::new("agent-replay");
    let (status, output) = enrol(&genkan, &code, &replay_state).await;
    assert_ne!(status, Some(0), "a used code enrolled again: {output}");
    assert!(output.contains("403"), "{output}");
    assert!(!replay_state.0.join("device.json").exists());

    let (status, output) = agent(&["run", "--once"], &state.0).await;
    assert_eq!(status, Some(0), "the report stayed queued: {output}");

    // Without a device, and with this (not compliant: no disk encryption here) one, the app
    // that needs a compliant device is refused with what to fix.
    let mut yamada = Browser::new(&genkan);
    yamada.sign_in("yamada", PASSWORD).await;
    let no_device = send(&genkan, None, get_with_cookies("/echo", &yamada))
        .await
        .unwrap();
    assert_eq!(no_device.status(), StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(no_device.body()).contains("genkan-agent"));
    let failing = send(&genkan, identity, get_with_cookies("/echo", &yamada))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(failing.body()).into_owned();
    assert_eq!(failing.status(), StatusCode::FORBIDDEN, "{text}");
    assert!(
        text.contains("encrypt") || text.contains("暗号"),
        "the refusal does not say what to fix: {text}"
    );

    // A compliant report lets yamada in with the device, not without it.
    let compliant = windows_report(&device_id, false);
    let accepted = send(
        &genkan,
        identity,
        post_json(
            posture::REPORT_PATH,
            serde_json::to_vec(&compliant).unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    let answer: posture::ReportAccepted = serde_json::from_slice(accepted.body()).unwrap();
    assert_eq!(answer.next_report_seconds, 300);
    let allowed = send(&genkan, identity, get_with_cookies("/echo", &yamada))
        .await
        .unwrap();
    assert_eq!(
        allowed.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(allowed.body())
    );
    let without = send(&genkan, None, get_with_cookies("/echo", &yamada))
        .await
        .unwrap();
    assert_eq!(without.status(), StatusCode::FORBIDDEN);

    // Garbage and oversized reports are the agent's "malformed" statuses.
    let garbage = send(
        &genkan,
        identity,
        post_json(posture::REPORT_PATH, "{not json"),
    )
    .await
    .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let huge = send(
        &genkan,
        identity,
        post_json(posture::REPORT_PATH, vec![b' '; 1024 * 1024 + 10]),
    )
    .await
    .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A Defender detection is mailed and posted once, however often it is reported.
    let mut detected = windows_report(&device_id, true);
    let threat = detected.detections[0].threat.clone();
    let sent = send(
        &genkan,
        identity,
        post_json(posture::REPORT_PATH, serde_json::to_vec(&detected).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(20), || smtp.text().contains(&threat)).await,
        "no e-mail about {threat}: {}",
        smtp.text()
    );
    assert!(
        eventually(Duration::from_secs(20), || {
            hook_bodies
                .lock()
                .unwrap()
                .iter()
                .any(|body| body.contains("\"detection\"") && body.contains(&threat))
        })
        .await,
        "no webhook call: {:?}",
        hook_bodies.lock().unwrap()
    );
    detected.collected_at += chrono::Duration::seconds(1);
    let again = send(
        &genkan,
        identity,
        post_json(posture::REPORT_PATH, serde_json::to_vec(&detected).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    // The resent report (same collection time) is taken as already received.
    let resent = send(
        &genkan,
        identity,
        post_json(posture::REPORT_PATH, serde_json::to_vec(&detected).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(resent.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alerts_of_kind(&genkan, "detection"), 1);
    let detection_hooks = hook_bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|body| body.contains("\"detection\""))
        .count();
    assert_eq!(detection_hooks, 1);
    let page = admin.send("GET", "/_genkan/admin/devices", None).await;
    let text = String::from_utf8_lossy(page.body()).into_owned();
    assert!(
        text.contains(&device_id) && text.contains(&threat),
        "{text}"
    );

    // Revoked: reports are refused and the certificate counts for nothing at the gate.
    let csrf = Browser::csrf(&page);
    let revoked = admin
        .send(
            "POST",
            "/_genkan/admin/devices/revoke",
            Some(&format!("csrf={csrf}&device={device_id}")),
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let refused = send(
        &genkan,
        identity,
        post_json(
            posture::REPORT_PATH,
            serde_json::to_vec(&compliant).unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let gate = send(&genkan, identity, get_with_cookies("/echo", &yamada))
        .await
        .unwrap();
    assert_eq!(gate.status(), StatusCode::FORBIDDEN);
    let (status, output) = agent(&["run", "--once"], &state.0).await;
    assert_eq!(
        status,
        Some(2),
        "a revoked device's report must stay queued: {output}"
    );

    let kinds = audit_kinds(&genkan);
    for kind in [
        "enrolment_code_made",
        "device_enrolment",
        "device_revoked",
        "device_report",
    ] {
        assert!(
            kinds.iter().any(|seen| seen == kind),
            "no {kind} in {kinds:?}"
        );
    }
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_of_another_ca_and_guessed_codes_are_refused() {
    let genkan = Genkan::start("[devices]\n").await;
    // A client certificate with the client-authentication usage, from a CA genkan never saw.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "genkan device CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let chain = format!("{}{}", cert.pem(), ca_cert.pem());
    let key_pem = key.serialize_pem();
    let report = windows_report("dev-forged", false);
    let outcome = send(
        &genkan,
        Some((chain.as_bytes(), key_pem.as_bytes())),
        post_json(posture::REPORT_PATH, serde_json::to_vec(&report).unwrap()),
    )
    .await;
    match outcome {
        Err(_) => {}
        Ok(response) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
    }
    // No certificate at all: the report path wants one; browsers are still served.
    let anonymous = send(
        &genkan,
        None,
        post_json(posture::REPORT_PATH, serde_json::to_vec(&report).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(genkan.get("/_genkan/health").await.status(), StatusCode::OK);
    // A code nobody made.
    let request = posture::EnrolRequest {
        code: "AAAA-BBBB-CCCC".into(),
        csr_pem: {
            let key = rcgen::KeyPair::generate().unwrap();
            rcgen::CertificateParams::new(Vec::<String>::new())
                .unwrap()
                .serialize_request(&key)
                .unwrap()
                .pem()
                .unwrap()
        },
        hostname: "X".into(),
        os: report.os.clone(),
    };
    let refused = send(
        &genkan,
        None,
        post_json(posture::ENROL_PATH, serde_json::to_vec(&request).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // Guessing is cut short: after ten refusals from one address, the next is 429.
    let body = serde_json::to_vec(&request).unwrap();
    for _ in 0..9 {
        let guess = send(&genkan, None, post_json(posture::ENROL_PATH, body.clone()))
            .await
            .unwrap();
        assert_eq!(guess.status(), StatusCode::FORBIDDEN);
    }
    let limited = send(&genkan, None, post_json(posture::ENROL_PATH, body))
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virus_stopped_at_the_gateway_is_mailed_and_posted() {
    use virus_scan::testing::{Clamd, EICAR_SIGNATURE, eicar};
    let smtp = Smtp::start().await;
    let (hook, hook_bodies) = webhook().await;
    let clamd = Clamd::start().await;
    let iis = Iis6::start().await;
    let extra = format!(
        "[scan]\nclamd = \"{}\"\n\
         [alerts]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_starttls = false\n\
         mail_from = \"genkan@example.jp\"\nmail_to = [\"it@example.jp\"]\n\
         webhook_url = \"http://{hook}/alerts\"\n\
         [[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\n",
        clamd.socket.display(),
        smtp.port,
        iis.addr
    );
    let genkan = Genkan::start(&extra).await;
    let upload = request("POST", "/upload")
        .header("content-type", "application/octet-stream")
        .body(Full::new(Bytes::from(eicar())))
        .unwrap();
    assert_eq!(genkan.send(upload).await.status(), StatusCode::FORBIDDEN);
    assert!(
        eventually(Duration::from_secs(20), || smtp
            .text()
            .contains(EICAR_SIGNATURE))
        .await,
        "no e-mail: {}",
        smtp.text()
    );
    assert!(
        eventually(Duration::from_secs(20), || {
            hook_bodies
                .lock()
                .unwrap()
                .iter()
                .any(|body| body.contains("\"virus_found\"") && body.contains(EICAR_SIGNATURE))
        })
        .await,
        "no webhook call"
    );
    genkan.shutdown().await;
}
