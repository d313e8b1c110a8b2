//! The webhook block's HTTP call against a real HTTP server on loopback: a good answer, a slow
//! one (the timeout), garbage in several shapes, a closed port, and HTTPS with a certificate
//! the system does not trust.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use server::center::webhook::{WebhookFailure, invoke};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{TempDir, TestPki};

/// A server answering every request with `status` and `body` after `delay`, and sending back
/// what it received through the channel.
async fn answering(
    status: u16,
    body: &'static str,
    delay: Duration,
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 8192];
                // Headers, then as much body as Content-Length says.
                loop {
                    let Ok(read) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|line| {
                                let (name, value) = line.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if rest.len() >= length {
                            let _ = seen.send(text);
                            break;
                        }
                    }
                }
                tokio::time::sleep(delay).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, received)
}

fn event() -> serde_json::Value {
    serde_json::json!({"Name": "ContactFlowEvent", "Details": {"ContactData": {"ContactId": "7"}, "Parameters": {"table": "customers"}}})
}

#[tokio::test]
async fn a_flat_answer_becomes_attributes_and_the_event_is_posted_as_json() {
    let (addr, mut received) = answering(
        200,
        r#"{"customerName": "佐藤 花子", "balance": 1200, "vip": true}"#,
        Duration::ZERO,
    )
    .await;
    let answer = invoke(
        &format!("http://{addr}/connect?from=genkan"),
        &event(),
        Duration::from_secs(3),
    )
    .await
    .unwrap();
    assert_eq!(answer["customerName"], "佐藤 花子");
    assert_eq!(answer["balance"], "1200");
    assert_eq!(answer["vip"], "true");
    let request = received.recv().await.unwrap();
    assert!(
        request.starts_with("POST /connect?from=genkan HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    assert!(
        request.contains(r#""Name":"ContactFlowEvent""#),
        "{request}"
    );
    assert!(
        request.contains(r#""Parameters":{"table":"customers"}"#),
        "{request}"
    );
}

#[tokio::test]
async fn a_slow_service_is_cut_off_at_the_timeout() {
    let (addr, _received) = answering(200, r#"{"a": "b"}"#, Duration::from_secs(5)).await;
    let started = tokio::time::Instant::now();
    let failure = invoke(
        &format!("http://{addr}/"),
        &event(),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(failure, WebhookFailure::Timeout(_)), "{failure}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn garbage_errors_and_dead_services_take_the_error_branch() {
    for (status, body, expected) in [
        (200, "<html>maintenance</html>", "not a JSON object"),
        (200, r#"{"customer": {"name": "x"}}"#, "not flat"),
        (200, "[1, 2, 3]", "not a JSON object"),
        (500, r#"{"error": "boom"}"#, "HTTP status 500"),
    ] {
        let (addr, _received) = answering(status, body, Duration::ZERO).await;
        let failure = invoke(&format!("http://{addr}/"), &event(), Duration::from_secs(3))
            .await
            .unwrap_err();
        assert!(failure.to_string().contains(expected), "{body}: {failure}");
    }
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let failure = invoke(&format!("http://{addr}/"), &event(), Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(matches!(failure, WebhookFailure::Transport(_)), "{failure}");
    let failure = invoke("ftp://127.0.0.1/", &event(), Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(matches!(failure, WebhookFailure::Url(_)), "{failure}");
}

#[tokio::test]
async fn https_to_a_certificate_the_system_does_not_trust_is_refused() {
    let dir = TempDir::new("webhook-tls");
    let pki = TestPki::new(&dir.0, "webhook");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from_pem_file(&pki.cert_path).unwrap()],
        PrivateKeyDer::from_pem_file(&pki.key_path).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let accepted = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        acceptor.accept(stream).await.is_ok()
    });
    let failure = invoke(
        &format!("https://localhost:{}/", addr.port()),
        &event(),
        Duration::from_secs(3),
    )
    .await
    .unwrap_err();
    assert!(failure.to_string().contains("TLS"), "{failure}");
    assert!(!accepted.await.unwrap(), "the handshake must not complete");
}
