//! The prompts page: an administrator uploads a WAV for a text the flow says, the page lists
//! it, the playback link serves it, and the next call hears it with no restart; what is not a
//! WAV, a wrong CSRF value and anyone but an administrator are refused with nothing written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use tokio::net::UdpSocket;

use crate::harness::{Genkan, request, send_https};
use crate::identity::{Browser, add_user, audit_kinds};
use crate::voice::{
    free_udp_port, ivr_caller, listen, newest_contact, start_with, succeeds, work_dir, write_wav,
};

const PASSWORD: &str = "correct horse battery staple 7";
const PAGE: &str = "/_genkan/admin/prompts";
/// What the seed flow's `nobody` block says.
fn nobody() -> String {
    match contact::flow::seed_flow("support").blocks.get("nobody") {
        Some(contact::flow::Block::Say { text, .. }) => text.clone(),
        other => panic!("the seed's nobody block is {other:?}"),
    }
}

fn prompts_dir(genkan: &Genkan) -> PathBuf {
    genkan.dir.0.join("data/prompts")
}

/// Files in the prompts folder (none when it does not exist yet).
fn files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a browser sends for the upload form: `multipart/form-data` with the three fields.
async fn upload(
    browser: &Browser<'_>,
    genkan: &Genkan,
    csrf: &str,
    text: &str,
    wav: &[u8],
) -> http::Response<Bytes> {
    let boundary = "----genkanTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in [("csrf", csrf), ("text", text)] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../evil.wav\"\r\n\
             Content-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let jar: Vec<String> = browser
        .cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let request = request("POST", PAGE)
        .header("accept", "text/html")
        .header("accept-language", "en")
        .header("cookie", jar.join("; "))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    send_https(&genkan.pki, genkan.https, request).await
}

async fn get(browser: &Browser<'_>, genkan: &Genkan, path: &str) -> http::Response<Bytes> {
    let jar: Vec<String> = browser
        .cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let request = request("GET", path)
        .header("accept-language", "en")
        .header("cookie", jar.join("; "))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send_https(&genkan.pki, genkan.https, request).await
}

fn text(response: &http::Response<Bytes>) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

fn wav_bytes(dir: &Path, seconds: f64) -> Vec<u8> {
    let path = dir.join("upload-source.wav");
    write_wav(&path, 600.0, seconds);
    std::fs::read(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_wav_is_listed_played_back_and_heard_on_the_next_call() {
    let sip = free_udp_port();
    let nobody = nobody();
    let genkan = start_with(sip, "41600-41699", "", "").await;
    add_user(&genkan, "kanri", &["admin"], Some(PASSWORD));
    let mut admin = Browser::new(&genkan);
    admin.sign_in("kanri", PASSWORD).await;

    let before = get(&admin, &genkan, PAGE).await;
    assert_eq!(before.status(), StatusCode::OK, "{}", text(&before));
    let page = text(&before);
    assert!(page.contains(&nobody), "{page}");
    assert!(page.contains("missing (a short tone plays)"), "{page}");
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");

    let dir = work_dir(&genkan);
    let wav = wav_bytes(&dir, 1.5);
    let csrf = Browser::csrf(&before);
    let uploaded = upload(&admin, &genkan, &csrf, &nobody, &wav).await;
    let page = text(&uploaded);
    assert_eq!(uploaded.status(), StatusCode::OK, "{page}");
    assert!(page.contains("class=\"notice\""), "{page}");
    assert!(
        page.contains("<span class=\"length\">1.5 s</span>"),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"rate\">16000 Hz</span>"),
        "{page}"
    );

    // Stored under genkan's name (never the browser's "../../evil.wav"), with the map.
    let stored = files(&prompts_dir(&genkan));
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.contains(&"uploads.json".to_owned()), "{stored:?}");
    let file = stored
        .iter()
        .find(|name| name.starts_with("upload-") && name.ends_with(".wav"))
        .unwrap();
    assert!(!genkan.dir.0.join("evil.wav").exists());
    assert_eq!(std::fs::read(prompts_dir(&genkan).join(file)).unwrap(), wav);
    let map = std::fs::read_to_string(prompts_dir(&genkan).join("uploads.json")).unwrap();
    let map: serde_json::Value = serde_json::from_str(&map).unwrap();
    assert_eq!(map[&nobody], file.as_str());
    assert!(audit_kinds(&genkan).contains(&"prompt_uploaded".to_owned()));

    let played = get(&admin, &genkan, &format!("{PAGE}/{file}")).await;
    assert_eq!(played.status(), StatusCode::OK);
    assert_eq!(played.headers()["content-type"], "audio/wav");
    assert_eq!(played.body().as_ref(), wav.as_slice());
    // Only files some text plays are served.
    let other = get(&admin, &genkan, &format!("{PAGE}/uploads.json")).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    // The running switch plays it: nobody can take the call, so the caller hears the seed's
    // "nobody available", now 1.5 s (75 packets) of upload rather than the 0.5 s tone.
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut carrier = ivr_caller(&dir, sip, &rtp);
    let heard = listen(&rtp, None).await;
    succeeds(&mut carrier, &dir, "trunk").await;
    assert!(
        (70..=80).contains(&heard.loud),
        "the caller heard {heard:?}"
    );
    assert!(
        heard.loud_span >= Duration::from_millis(1300),
        "the caller heard {heard:?}"
    );
    assert_eq!(newest_contact(&genkan).await.outcome, "NoAgentAvailable");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_wav_a_wrong_csrf_and_non_administrators_are_refused() {
    let nobody = nobody();
    let genkan = start_with(free_udp_port(), "41700-41799", "", "").await;
    add_user(&genkan, "kanri", &["admin"], Some(PASSWORD));
    add_user(&genkan, "kantoku", &["supervisor"], Some(PASSWORD));
    let mut admin = Browser::new(&genkan);
    admin.sign_in("kanri", PASSWORD).await;
    let page = get(&admin, &genkan, PAGE).await;
    let csrf = Browser::csrf(&page);

    let mp3 = upload(&admin, &genkan, &csrf, &nobody, b"ID3\x04\x00 an mp3 file").await;
    let body = text(&mp3);
    assert_eq!(mp3.status(), StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("This is not a WAV file (no RIFF/WAVE header)."),
        "{body}"
    );
    let empty = upload(&admin, &genkan, &csrf, &nobody, b"").await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert!(
        text(&empty).contains("The file is empty"),
        "{}",
        text(&empty)
    );

    // Over the 20 MB limit: cut off while the body is read.
    let huge = upload(
        &admin,
        &genkan,
        &csrf,
        &nobody,
        &vec![0u8; 21 * 1024 * 1024],
    )
    .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(text(&huge).contains("The file is too large (at most 20 MB)."));

    let dir = work_dir(&genkan);
    let wav = wav_bytes(&dir, 0.5);
    let forged = upload(&admin, &genkan, "not-the-csrf-value", &nobody, &wav).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let unknown = upload(&admin, &genkan, &csrf, "a text no flow says", &wav).await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(text(&unknown).contains("No flow says this text."));

    let mut supervisor = Browser::new(&genkan);
    supervisor.sign_in("kantoku", PASSWORD).await;
    let refused = get(&supervisor, &genkan, PAGE).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!text(&refused).contains(&nobody));
    // Refused for who they are, whatever CSRF value comes with it.
    let refused = upload(&supervisor, &genkan, &csrf, &nobody, &wav).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let anonymous = Browser::new(&genkan);
    let refused = upload(&anonymous, &genkan, &csrf, &nobody, &wav).await;
    assert_ne!(refused.status(), StatusCode::OK);

    assert_eq!(files(&prompts_dir(&genkan)), Vec::<String>::new());
    // Nothing was played from an upload either: the page still says the tone plays.
    let page = text(&get(&admin, &genkan, PAGE).await);
    assert!(page.contains("missing (a short tone plays)"), "{page}");
    assert!(!page.contains("upload-"), "{page}");
    let refusals = audit_kinds(&genkan)
        .iter()
        .filter(|kind| *kind == "prompt_uploaded")
        .count();
    assert_eq!(refusals, 3, "the mp3, the empty file and the unknown text");
    genkan.shutdown().await;
}
