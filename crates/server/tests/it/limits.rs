//! Hostile and unlucky clients: oversized heads and bodies, garbage, slowloris; and the
//! operational paths: graceful shutdown and reloads.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::harness::{Genkan, TestPki, raw_tls, request, send_https};
use crate::upstream::Iis6;

async fn strict() -> (Genkan, Iis6) {
    let iis = Iis6::start().await;
    let extra = format!(
        "[limits]\nmax_header_size = \"8k\"\nmax_body_size = \"1k\"\nheader_timeout = \"1s\"\nshutdown_grace = \"10s\"\n\
         [[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\n\
         [[route]]\nname = \"streaming\"\npath = \"/stream/\"\nupstream = \"http://{}\"\nbuffer_request_body = false\n",
        iis.addr, iis.addr
    );
    (Genkan::start(&extra).await, iis)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_431_and_garbage_gets_400() {
    let (genkan, iis) = strict().await;
    let big = format!(
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = raw_tls(
        &genkan.pki,
        genkan.https,
        big.as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let answer = raw_tls(
        &genkan.pki,
        genkan.https,
        b"\x00\x01GARBAGE\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let answer = raw_tls(
        &genkan.pki,
        genkan.https,
        b"GET /echo HTTP/1.1\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "a request without Host must be refused: {answer}"
    );
    assert_eq!(iis.count(), 0, "nothing malformed may reach the app");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_before_reaching_the_app() {
    let (genkan, iis) = strict().await;
    let declared = request("POST", "/echo")
        .body(Full::new(Bytes::from(vec![b'x'; 4096])))
        .unwrap();
    assert_eq!(
        genkan.send(declared).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let chunk = "x".repeat(700);
    let chunked = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2bc\r\n{chunk}\r\n2bc\r\n{chunk}\r\n0\r\n\r\n"
    );
    let answer = raw_tls(
        &genkan.pki,
        genkan.https,
        chunked.as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(iis.count(), 0, "an oversized body must not reach the app");

    let streamed = request("POST", "/stream/echo")
        .body(Full::new(Bytes::from(vec![b'x'; 4096])))
        .unwrap();
    assert_eq!(
        genkan.send(streamed).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let small = request("POST", "/echo")
        .body(Full::new(Bytes::from_static(b"ok=1")))
        .unwrap();
    assert_eq!(genkan.send(small).await.status(), StatusCode::OK);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (genkan, _iis) = strict().await;
    let tcp = TcpStream::connect(genkan.https).await.unwrap();
    let mut tls = genkan
        .pki
        .connector(&[b"http/1.1"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /echo HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        // Keep dribbling a byte now and then, as slowloris does.
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if tls.write_all(b"X").await.is_err() {
                break;
            }
            let mut byte = [0u8; 256];
            match tokio::time::timeout(Duration::from_millis(10), tls.read(&mut byte)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => rest.extend_from_slice(&byte[..n]),
                Err(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open for 10 s");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut off only after {:?}",
        started.elapsed()
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish_and_refuses_new_ones() {
    let (mut genkan, _iis) = strict().await;
    let pki_ca = genkan.pki.ca_path.clone();
    let addr = genkan.https;
    let pki = TestPki::from_ca_for_test(&genkan.pki);
    let in_flight = tokio::spawn(async move {
        let slow = request("GET", "/slow")
            .body(Full::new(Bytes::new()))
            .unwrap();
        send_https(&pki, addr, slow).await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let running = genkan.running.take().unwrap();
    let stopping = tokio::spawn(running.shutdown());
    let response = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{pki_ca:?}");
    assert_eq!(&response.body()[..], b"finally");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_routes_and_certificate_without_dropping_open_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut genkan, iis) = strict().await;
    // An open keep-alive connection before the reload.
    let tcp = TcpStream::connect(genkan.https).await.unwrap();
    let mut open = genkan
        .pki
        .connector(&[b"http/1.1"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();

    let fresh = TestPki::new(&genkan.dir.0, "renewed");
    std::fs::copy(&fresh.cert_path, &genkan.pki.cert_path).unwrap();
    std::fs::copy(&fresh.key_path, &genkan.pki.key_path).unwrap();
    let config = genkan.dir.0.join("genkan.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[[route]]\nname = \"added\"\npath = \"/added/\"\nupstream = \"http://{}/\"\n",
        iis.addr
    ));
    std::fs::write(&config, text).unwrap();
    genkan.running.as_mut().unwrap().reload().unwrap();

    // New connections get the new certificate, and the new route.
    let via_new_route = send_https(
        &fresh,
        genkan.https,
        request("GET", "/added/echo")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(via_new_route.status(), StatusCode::OK);
    assert!(String::from_utf8_lossy(via_new_route.body()).contains("path=/echo\n"));
    let old_ca_refused = genkan
        .pki
        .connector(&[b"http/1.1"])
        .connect(
            ServerName::try_from("localhost").unwrap(),
            TcpStream::connect(genkan.https).await.unwrap(),
        )
        .await;
    assert!(
        old_ca_refused.is_err(),
        "the old certificate is still presented"
    );

    // The connection opened before the reload still works.
    open.write_all(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), open.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A broken config is refused and the running settings stay.
    std::fs::write(&config, "listen_https = \"nowhere\"\n").unwrap();
    let error = genkan.running.as_mut().unwrap().reload().unwrap_err();
    assert!(format!("{error:#}").contains("listen_https"), "{error:#}");
    let still = send_https(
        &fresh,
        genkan.https,
        request("GET", "/added/echo")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(still.status(), StatusCode::OK, "{:?}", still.body());
    genkan.shutdown().await;
}

/// A small deterministic generator, so a failure can be replayed from its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_hostile_requests_never_take_the_gateway_down() {
    let (genkan, _iis) = strict().await;
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut cases: Vec<Vec<u8>> = vec![
        b"GET /echo HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n".to_vec(),
        b"GET /echo HTTP/1.1\r\nHost: evil.example/\r\nX: y\r\n\r\n".to_vec(),
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(),
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"GET http://other.example/echo HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        b"GET /echo HTTP/9.9\r\nHost: localhost\r\n\r\n".to_vec(),
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n".to_vec(),
        format!("GET /echo HTTP/1.1\r\nHost: localhost\r\n{}\r\n", "X-A: b\r\n".repeat(2000)).into_bytes(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec(),
    ];
    for _ in 0..40 {
        let len = (random.next() % 600) as usize + 1;
        cases.push(random.bytes(len));
        let mut head = b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Junk: ".to_vec();
        head.extend(random.bytes(len).into_iter().filter(|byte| *byte != b'\n'));
        head.extend_from_slice(b"\r\n\r\n");
        cases.push(head);
    }
    for case in &cases {
        let answer = raw_tls(&genkan.pki, genkan.https, case, Duration::from_millis(1500)).await;
        if let Some(status) = answer.split_whitespace().nth(1) {
            assert!(
                !status.starts_with('5') || status == "502" || status == "504",
                "server error for {case:?}: {answer}"
            );
        }
    }
    let healthy = genkan.get("/echo").await;
    assert_eq!(
        healthy.status(),
        StatusCode::OK,
        "the gateway stopped answering after hostile input"
    );
    genkan.shutdown().await;
}
