//! Upload scanning through the whole gateway, against a real clamd that the test starts with
//! only a custom signature for the EICAR test file (`virus_scan::testing`): infected uploads
//! (plain, zipped, streamed in chunks) are refused and audited and never reach the app, clean ones
//! arrive byte for byte, a stopped clamd refuses uploads with a clear 503 (or forwards them with
//! `fail_open`), and bodies over the scan limit are refused with the limit named.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use virus_scan::testing::{Clamd, EICAR_SIGNATURE, eicar};

use crate::harness::{Genkan, raw_tls, request};
use crate::upstream::Iis6;

const GENKAN: &str = env!("CARGO_BIN_EXE_genkan");
const BOUNDARY: &str = "genkan-test-boundary";

struct Setup {
    genkan: Genkan,
    iis: Iis6,
    clamd: Clamd,
}

/// clamd, an IIS6-like app, and genkan scanning every route but `/unscanned/` with a 1 MiB limit.
async fn setup(scan_extra: &str) -> Setup {
    let clamd = Clamd::start().await;
    let iis = Iis6::start().await;
    let extra = format!(
        "[scan]\nclamd = \"{}\"\nmax_body_size = \"1m\"\nscan_timeout = \"10s\"\n{scan_extra}\n\
         [[route]]\nname = \"open\"\npath = \"/unscanned/\"\nupstream = \"http://{}/\"\nscan_uploads = false\n\
         [[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\n",
        clamd.socket.display(),
        iis.addr,
        iis.addr
    );
    Setup {
        genkan: Genkan::start(&extra).await,
        iis,
        clamd,
    }
}

/// A browser's file upload: one `multipart/form-data` part holding `content`.
fn multipart(file_name: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn upload(path: &str, body: Vec<u8>, accept: &str) -> http::Request<Full<Bytes>> {
    request("POST", path)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("accept", accept)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// A one-file ZIP archive with the content deflated, written by hand (the format is small and
/// this keeps a ZIP library out of the build).
fn zip(name: &str, content: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(content).unwrap();
    let deflated = encoder.finish().unwrap();
    let mut crc = flate2::Crc::new();
    crc.update(content);
    let (crc, packed, plain) = (
        crc.sum(),
        u32::try_from(deflated.len()).unwrap(),
        u32::try_from(content.len()).unwrap(),
    );
    let name_len = u16::try_from(name.len()).unwrap();
    // Version 2.0, no flags, method 8 (deflate), 1980-01-01 00:00.
    let common = |out: &mut Vec<u8>| {
        for half in [20u16, 0, 8, 0, 0x21] {
            out.extend_from_slice(&half.to_le_bytes());
        }
        for word in [crc, packed, plain] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
    };
    let mut archive = 0x0403_4b50u32.to_le_bytes().to_vec();
    common(&mut archive);
    archive.extend_from_slice(name.as_bytes());
    archive.extend_from_slice(&deflated);
    let directory_at = u32::try_from(archive.len()).unwrap();
    let mut directory = 0x0201_4b50u32.to_le_bytes().to_vec();
    directory.extend_from_slice(&20u16.to_le_bytes());
    common(&mut directory);
    // Comment length, disk, internal and external attributes, offset of the local header.
    directory.extend_from_slice(&[0u8; 2 + 2 + 2 + 4]);
    directory.extend_from_slice(&0u32.to_le_bytes());
    directory.extend_from_slice(name.as_bytes());
    let directory_len = u32::try_from(directory.len()).unwrap();
    archive.extend_from_slice(&directory);
    archive.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for half in [0u16, 0, 1, 1] {
        archive.extend_from_slice(&half.to_le_bytes());
    }
    archive.extend_from_slice(&directory_len.to_le_bytes());
    archive.extend_from_slice(&directory_at.to_le_bytes());
    archive.extend_from_slice(&0u16.to_le_bytes());
    archive
}

/// Bytes of every value in a scrambled order, so that any change in transit shows.
fn binary_file(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn audit(genkan: &Genkan) -> Vec<serde_json::Value> {
    let output = Command::new(GENKAN)
        .args(["audit", "--config"])
        .arg(genkan.dir.0.join("genkan.toml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infected_upload_is_refused_audited_and_never_reaches_the_app() {
    let Setup { genkan, iis, clamd } = setup("").await;

    let refused = genkan
        .send(upload(
            "/echo",
            multipart("invoice.pdf", &eicar()),
            "application/json",
        ))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{}", clamd.log());
    let error = json(refused.body());
    assert_eq!(error["error"]["code"], "GK-SCAN-001");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(EICAR_SIGNATURE), "{message}");
    assert!(refused.headers().get("strict-transport-security").is_some());

    let page = genkan
        .send(upload(
            "/echo",
            multipart("invoice.pdf", &eicar()),
            "text/html,application/xhtml+xml",
        ))
        .await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let text = String::from_utf8_lossy(page.body()).into_owned();
    assert!(text.contains("ウイルスが見つかりました"), "{text}");
    assert!(text.contains(EICAR_SIGNATURE), "{text}");

    // The label is the client's choice, so a form post is scanned like a file upload.
    let form = request("POST", "/echo")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(
            [b"note=".as_slice(), &eicar()].concat(),
        )))
        .unwrap();
    assert_eq!(genkan.send(form).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(iis.count(), 0, "an infected body reached the app");

    // A route that opts out passes the same file, so the app was there to be reached.
    let unscanned = genkan
        .send(upload(
            "/unscanned/echo",
            multipart("invoice.pdf", &eicar()),
            "application/json",
        ))
        .await;
    assert_eq!(unscanned.status(), StatusCode::OK);
    assert_eq!(iis.count(), 1);

    let found: Vec<_> = audit(&genkan)
        .into_iter()
        .filter(|event| event["kind"] == "virus_found")
        .collect();
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0]["subject"], "/echo");
    assert_eq!(found[0]["source"], "127.0.0.1");
    assert_eq!(found[0]["outcome"], "denied");
    assert_eq!(found[0]["detail"], EICAR_SIGNATURE);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zipped_virus_is_refused_whether_sent_whole_or_in_chunks() {
    let Setup { genkan, iis, clamd } = setup("").await;
    let letter = b"Please find the quarterly figures attached.\n".repeat(100);
    let archive = zip(
        "readme.txt",
        &[letter.as_slice(), &eicar(), &letter].concat(),
    );
    // The archive is deflated: EICAR's bytes do not appear in it, only clamd's unpacking finds them.
    assert!(!archive.windows(eicar().len()).any(|w| w == eicar()));

    let refused = genkan
        .send(upload(
            "/echo",
            multipart("reports.zip", &archive),
            "application/json",
        ))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{}", clamd.log());
    assert!(
        json(refused.body())["error"]["message"]
            .as_str()
            .unwrap()
            .contains(EICAR_SIGNATURE)
    );

    // Chunked, with EICAR itself cut between two chunks: the gateway streams it to clamd.
    let virus = eicar();
    let (head, tail) = virus.split_at(30);
    let mut raw =
        b"PUT /files/plain.txt HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\
Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for chunk in [b"prefix ".as_slice(), head, tail] {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_tls(&genkan.pki, genkan.https, &raw, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("GK-SCAN-001"), "{answer}");
    assert_eq!(iis.count(), 0, "an infected body reached the app");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_file_reaches_the_app_byte_for_byte() {
    // Bound, not `..`: clamd must live as long as the test.
    let Setup {
        genkan,
        iis,
        clamd: _clamd,
    } = setup("").await;
    let file = binary_file(700 * 1024);
    let body = multipart("drawing.dwg", &file);
    let passed = genkan
        .send(upload("/echo", body.clone(), "application/json"))
        .await;
    assert_eq!(passed.status(), StatusCode::OK);
    let seen = iis.last();
    assert_eq!(seen.body.len(), body.len());
    assert!(seen.body == body, "the file changed on the way");
    assert_eq!(seen.header("content-length"), Some(body.len().to_string()));

    // Streamed in chunks, it still reaches the app whole, with a Content-Length.
    let mut raw =
        b"PUT /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for chunk in file[..100_000].chunks(30_000) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_tls(&genkan.pki, genkan.https, &raw, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = iis.last();
    assert!(seen.body == file[..100_000], "the streamed file changed");
    assert_eq!(seen.header("transfer-encoding"), None);

    // A request without a body does not need clamd at all.
    assert_eq!(genkan.get("/echo").await.status(), StatusCode::OK);
    assert_eq!(iis.count(), 3);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_clamd_stopped_uploads_are_refused_with_a_clear_message() {
    let Setup {
        genkan,
        iis,
        mut clamd,
    } = setup("").await;
    let file = multipart("minutes.docx", b"nothing to see here");
    let before = genkan
        .send(upload("/echo", file.clone(), "application/json"))
        .await;
    assert_eq!(before.status(), StatusCode::OK, "clamd was up");
    clamd.stop().await;

    let refused = genkan
        .send(upload("/echo", file.clone(), "application/json"))
        .await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let error = json(refused.body());
    assert_eq!(error["error"]["code"], "GK-SCAN-002");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("virus scanner is unavailable"),
        "{message}"
    );

    let page = genkan.send(upload("/echo", file, "text/html")).await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = String::from_utf8_lossy(page.body()).into_owned();
    assert!(text.contains("The virus scanner is unavailable"), "{text}");
    assert!(text.contains("ウイルス検査を利用できません"), "{text}");

    // A large upload is read to its end before the refusal, so the client gets the answer
    // rather than a reset connection.
    let large = genkan
        .send(upload(
            "/echo",
            multipart("scan.tiff", &binary_file(900 * 1024)),
            "application/json",
        ))
        .await;
    assert_eq!(large.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(large.body())["error"]["code"], "GK-SCAN-002");
    assert_eq!(iis.count(), 1, "an unscanned body reached the app");

    let unscanned: Vec<_> = audit(&genkan)
        .into_iter()
        .filter(|event| event["kind"] == "upload_unscanned")
        .collect();
    assert_eq!(unscanned.len(), 3, "{unscanned:?}");
    assert_eq!(unscanned[0]["outcome"], "denied");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_forwards_unscanned_while_clamd_is_down() {
    let Setup {
        genkan,
        iis,
        mut clamd,
    } = setup("fail_open = true\n").await;
    // Up, it still refuses what it finds: fail_open is only about an absent verdict.
    let infected = genkan
        .send(upload(
            "/echo",
            multipart("a.txt", &eicar()),
            "application/json",
        ))
        .await;
    assert_eq!(infected.status(), StatusCode::FORBIDDEN);
    clamd.stop().await;
    let body = multipart("minutes.docx", b"nothing to see here");
    let passed = genkan
        .send(upload("/echo", body.clone(), "application/json"))
        .await;
    assert_eq!(passed.status(), StatusCode::OK);
    assert_eq!(iis.count(), 1);
    assert!(iis.last().body == body);
    let kinds: Vec<_> = audit(&genkan)
        .into_iter()
        .filter(|event| event["kind"] == "upload_unscanned")
        .map(|event| event["outcome"].clone())
        .collect();
    assert_eq!(kinds, ["forwarded"]);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_scan_limit_are_refused_naming_the_limit() {
    // Bound, not `..`: clamd must live as long as the test.
    let Setup {
        genkan,
        iis,
        clamd: _clamd,
    } = setup("").await;
    // Declared too large: refused from the head alone. (Only the head is sent, so the refusal
    // cannot race a body still being written.)
    let head =
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n\
Content-Length: 1048577\r\nConnection: close\r\n\r\n";
    let answer = raw_tls(&genkan.pki, genkan.https, head, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("GK-SCAN-003"), "{answer}");
    assert!(answer.contains("1 MiB (1048576 bytes)"), "{answer}");

    // Without a Content-Length the limit is found while streaming: one byte too many.
    let mut raw =
        b"PUT /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for chunk in binary_file(1024 * 1024 + 1).chunks(256 * 1024) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    let answer = raw_tls(&genkan.pki, genkan.https, &raw, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("1 MiB (1048576 bytes)"), "{answer}");

    // At the limit exactly, it passes.
    let overhead = multipart("fits.bin", b"").len();
    let body = multipart("fits.bin", &binary_file(1024 * 1024 - overhead));
    assert_eq!(body.len(), 1024 * 1024);
    let passed = genkan.send(upload("/echo", body, "application/json")).await;
    assert_eq!(passed.status(), StatusCode::OK);
    assert_eq!(iis.count(), 1, "an oversized body reached the app");
    genkan.shutdown().await;
}
