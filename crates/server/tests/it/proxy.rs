//! The gateway in front of an IIS6-like upstream: what the seed's nginx did, and what it should have done.

use std::io::Read;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::harness::{Genkan, eventually, raw_tls, request, run_tool};
use crate::upstream::{Iis6, PAGE_LEN, black_hole, closed_port, websocket_echo};

struct Setup {
    genkan: Genkan,
    iis: Iis6,
}

async fn setup() -> Setup {
    let iis = Iis6::start().await;
    let ws = websocket_echo().await;
    let dead = closed_port().await;
    let silent = black_hole().await;
    let extra = format!(
        "[compression]\ntypes = [\"text/css\", \"image/png\"]\nmin_length = 256\n\
         [[route]]\nname = \"ws\"\npath = \"/ws\"\nupstream = \"http://{ws}\"\n\
         [[route]]\nname = \"down\"\npath = \"/down/\"\nupstream = \"http://{dead}\"\n\
         [[route]]\nname = \"stuck\"\npath = \"/stuck/\"\nupstream = \"http://{silent}\"\nread_timeout = \"1s\"\n\
         [[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\n",
        iis.addr
    );
    Setup {
        genkan: Genkan::start(&extra).await,
        iis,
    }
}

fn text(body: &Bytes) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_get_goes_through_with_nginx_defaults_and_hardened_headers() {
    let Setup { genkan, iis } = setup().await;
    let response = genkan.get("/echo?x=1").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text(response.body());
    assert!(body.contains("method=GET\n"), "{body}");
    assert!(body.contains("path=/echo?x=1\n"), "{body}");
    // nginx's default: the upstream sees its own authority as Host.
    assert!(body.contains(&format!("host={}\n", iis.addr)), "{body}");
    assert!(body.contains("x-forwarded-for=127.0.0.1\n"), "{body}");
    assert!(body.contains("x-forwarded-proto=https\n"), "{body}");
    assert!(body.contains("x-forwarded-host=localhost\n"), "{body}");
    let headers = response.headers();
    assert!(headers.get("server").is_none(), "{headers:?}");
    assert!(headers.get("x-powered-by").is_none(), "{headers:?}");
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
    assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["referrer-policy"],
        "strict-origin-when-cross-origin"
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forwarding_headers_are_replaced() {
    let Setup { genkan, .. } = setup().await;
    let forged = request("GET", "/echo")
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-forwarded-proto", "http")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let body = text(genkan.send(forged).await.body());
    assert!(body.contains("x-forwarded-for=127.0.0.1\n"), "{body}");
    assert!(body.contains("x-forwarded-proto=https\n"), "{body}");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_bodies_reach_iis6_with_content_length_even_when_sent_chunked() {
    let Setup { genkan, iis } = setup().await;
    let plain = request("POST", "/echo")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(b"name=%E9%A1%A7%E5%AE%A2")))
        .unwrap();
    let body = text(genkan.send(plain).await.body());
    assert!(body.contains("body=name=%E9%A1%A7%E5%AE%A2\n"), "{body}");

    let chunked = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";
    let answer = raw_tls(&genkan.pki, genkan.https, chunked, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("content-length=11\n"), "{answer}");
    assert!(answer.contains("body=hello world\n"), "{answer}");
    assert_eq!(iis.last().header("transfer-encoding"), None);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_and_refresh_point_back_at_the_public_origin() {
    let Setup { genkan, .. } = setup().await;
    let response = genkan.get("/redirect").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()["location"],
        "https://localhost/login.asp?from=redirect"
    );
    assert_eq!(
        response.headers()["refresh"],
        "0; URL=https://localhost/next.asp"
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_pass_through_but_dead_and_silent_upstreams_get_the_error_page() {
    let Setup { genkan, .. } = setup().await;
    let own_error = genkan.get("/error").await;
    assert_eq!(own_error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(text(own_error.body()), "IIS says: script error");

    let dead = genkan.get("/down/anything").await;
    assert_eq!(dead.status(), StatusCode::BAD_GATEWAY);
    assert!(text(dead.body()).contains("The application cannot be reached right now"));
    assert_eq!(dead.headers()["x-frame-options"], "SAMEORIGIN");

    let started = Instant::now();
    let silent = genkan.get("/stuck/anything").await;
    assert_eq!(silent.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(text(silent.body()).contains("ただいまアプリケーションに接続できません"));
    genkan.shutdown().await;
}

async fn fetch_encoded(genkan: &Genkan, path: &str, accept: Option<&str>) -> http::Response<Bytes> {
    let mut builder = request("GET", path);
    if let Some(accept) = accept {
        builder = builder.header("accept-encoding", accept);
    }
    genkan
        .send(builder.body(Full::new(Bytes::new())).unwrap())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_follows_type_size_and_accept_encoding() {
    let Setup { genkan, .. } = setup().await;

    let gzip = fetch_encoded(&genkan, "/page.html", Some("gzip")).await;
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    assert!(
        gzip.body().len() < PAGE_LEN / 4,
        "gzip gave {} bytes",
        gzip.body().len()
    );
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gzip.body()[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain.len(), PAGE_LEN);

    let brotli = fetch_encoded(&genkan, "/page.html", Some("br")).await;
    assert_eq!(brotli.headers()["content-encoding"], "br");
    let mut plain = Vec::new();
    brotli_decompressor::Decompressor::new(&brotli.body()[..], 4096)
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain.len(), PAGE_LEN);

    for (path, accept) in [
        ("/page.html", None),
        ("/image.png", Some("gzip, br")),
        ("/tiny.html", Some("gzip")),
        ("/echo", Some("gzip")),
    ] {
        let response = fetch_encoded(&genkan, path, accept).await;
        assert!(
            response.headers().get("content-encoding").is_none(),
            "{path} {accept:?} was compressed"
        );
    }
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_pass_through() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Setup { genkan, .. } = setup().await;
    let tcp = TcpStream::connect(genkan.https).await.unwrap();
    let tls = genkan
        .pki
        .connector(&[b"http/1.1"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut socket, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async("wss://localhost/ws", tls),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket.send(Message::text("konnichiwa")).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, Message::text("KONNICHIWA"));
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_follow_the_seed_main_format() {
    let Setup { genkan, .. } = setup().await;
    let with_referer = request("GET", "/echo?from=log")
        .header("referer", "https://ref.example/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = genkan.send(with_referer).await;
    let length = response.body().len();
    let log = genkan.access_log();
    let found = eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("/echo?from=log"))
    })
    .await;
    assert!(found, "no access log line");
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|line| line.contains("/echo?from=log"))
        .unwrap();
    let (before_time, rest) = line.split_once(" [").unwrap();
    assert_eq!(before_time, "127.0.0.1 - -");
    let (time, rest) = rest.split_once("] ").unwrap();
    chrono::DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z").unwrap();
    assert_eq!(
        rest,
        format!(
            "\"GET /echo?from=log HTTP/1.1\" 200 {length} \"https://ref.example/\" \"genkan-it\" \"-\""
        )
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_speaks_http2_through_the_gateway() {
    let Setup { genkan, .. } = setup().await;
    let port = genkan.https.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/echo");
    let ca = genkan.pki.ca_path.display().to_string();
    let (ok, output) = run_tool(
        "curl",
        &[
            "--http2",
            "--silent",
            "--show-error",
            "--cacert",
            &ca,
            "--resolve",
            &resolve,
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_version} %{http_code}",
            &url,
        ],
        Duration::from_secs(20),
    )
    .await;
    assert!(ok, "{output}");
    assert_eq!(output.trim(), "2 200");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_redirects_to_https_keeping_path_and_query() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Setup { genkan, iis } = setup().await;
    let http = genkan.http.unwrap();
    for (method, status) in [("GET", "301"), ("POST", "308")] {
        let mut stream = TcpStream::connect(http).await.unwrap();
        let request = format!(
            "{method} /fmi/iwp?x=1 HTTP/1.1\r\nHost: gw.example.jp\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        let location = format!(
            "location: https://gw.example.jp:{}/fmi/iwp?x=1\r\n",
            genkan.https.port()
        );
        assert!(answer.to_ascii_lowercase().contains(&location), "{answer}");
    }
    assert_eq!(iis.count(), 0, "plain HTTP must never reach the app");
    genkan.shutdown().await;
}
