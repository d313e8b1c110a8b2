//! The voice path end to end on loopback: sipp as the carrier (a call with PCMU audio from
//! `rtp_stream`) and as an agent's SIP phone (REGISTER with digest, then a UAS with
//! `-rtp_echo`), genkan in between routing the call through the seed's flow, bridging the
//! audio and recording it. Refusals are checked with hand-written SIP over a UDP socket.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::process::{Child, Command};

use crate::harness::{Genkan, eventually, send_https};
use crate::identity::{Browser, add_user};

pub const PHONE_PASSWORD: &str = "phone-secret-1";
const TRUNK_PASSWORD: &str = "trunk-secret";
const USER_PASSWORD: &str = "correct horse battery staple 7";

pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

/// A contact center with agent1 and a `[voice]` section: calls from 127.0.0.1 need nothing,
/// calls from 127.0.0.3 need digest credentials, nobody else may call.
pub async fn start(sip: u16, rtp: &str) -> Genkan {
    start_with(sip, rtp, "", "").await
}

/// `start`, with lines added to `[contact]` and to `[voice]`.
pub async fn start_with(sip: u16, rtp: &str, contact: &str, voice: &str) -> Genkan {
    Genkan::start(&format!(
        "[identity]\ntotp_required_groups = []\n\
         [policy.capabilities]\nadmin = [\"admin\", \"recording_playback\"]\nsupervisor = []\n\
         [contact]\n{contact}[[contact.queue]]\nname = \"support\"\n\
         [[contact.agent]]\nname = \"agent1\"\nqueues = [\"support\"]\n\
         [[contact.agent]]\nname = \"agent2\"\nqueues = [\"support\"]\n\
         [voice]\nsip_listen = \"127.0.0.1:{sip}\"\nrtp_ports = \"{rtp}\"\n{voice}\
         [[voice.trunk]]\nname = \"carrier\"\nallow = [\"127.0.0.1/32\"]\n\
         [[voice.trunk]]\nname = \"secured\"\nallow = [\"127.0.0.3\"]\nusername = \"carrier\"\n\
         password = \"{TRUNK_PASSWORD}\"\n\
         [[voice.sip_agent]]\nname = \"agent1\"\npassword = \"{PHONE_PASSWORD}\"\n\
         [[voice.sip_agent]]\nname = \"agent2\"\npassword = \"{PHONE_PASSWORD}\"\n"
    ))
    .await
}

pub fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/sipp")
        .join(name)
        .display()
        .to_string()
}

/// Starts sipp in `dir` with its screen going to `<dir>/<name>.log`.
pub fn sipp(dir: &Path, name: &str, args: &[String]) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new("sipp")
        .args(args)
        .args(["-nostdin", "-timeout", "25s", "-trace_err", "-trace_msg"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("sipp could not run; scripts/test installs it (sip-tester)")
}

/// Waits for sipp to end; panics with its log unless every call succeeded.
pub async fn succeeds(child: &mut Child, dir: &Path, name: &str) {
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    let ok = matches!(&status, Ok(Ok(status)) if status.success());
    if !ok {
        let _ = child.start_kill();
        let mut logs = String::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                logs.push_str(&format!("\n--- {} ---\n{tail}", path.display()));
            }
        }
        panic!("sipp {name} failed: {status:?}{logs}");
    }
}

/// An agent's phone registers (digest), pointing its Contact at `phone_port`.
pub fn register(dir: &Path, agent: &str, sip: u16, phone_port: u16, password: &str) -> Child {
    let args: Vec<String> = [
        format!("127.0.0.1:{sip}"),
        "-sf".into(),
        scenario("agent_register.xml"),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        free_udp_port().to_string(),
        "-m".into(),
        "1".into(),
        "-au".into(),
        agent.into(),
        "-ap".into(),
        password.into(),
        "-key".into(),
        "agent".into(),
        agent.into(),
        "-key".into(),
        "phone_port".into(),
        phone_port.to_string(),
    ]
    .into();
    sipp(dir, &format!("register-{agent}"), &args)
}

pub fn phone(dir: &Path, scenario_file: &str, port: u16, media_port: u16) -> Child {
    phone_named(dir, "phone", scenario_file, port, media_port)
}

fn phone_named(dir: &Path, name: &str, scenario_file: &str, port: u16, media_port: u16) -> Child {
    let args: Vec<String> = [
        "-sf".into(),
        scenario(scenario_file),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        media_port.to_string(),
        "-rtp_echo".into(),
        "-m".into(),
        "1".into(),
    ]
    .into();
    sipp(dir, name, &args)
}

pub fn trunk(dir: &Path, scenario_file: &str, sip: u16, hold_ms: u32) -> Child {
    trunk_over(dir, scenario_file, sip, hold_ms, "u1")
}

/// The carrier over `transport` (sipp's `-t`: `u1` UDP, `t1` one TCP connection).
fn trunk_over(dir: &Path, scenario_file: &str, sip: u16, hold_ms: u32, transport: &str) -> Child {
    let args: Vec<String> = [
        format!("127.0.0.1:{sip}"),
        "-sf".into(),
        scenario(scenario_file),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        free_udp_port().to_string(),
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        free_udp_port().to_string(),
        "-m".into(),
        "1".into(),
        "-d".into(),
        hold_ms.to_string(),
        "-t".into(),
        transport.into(),
    ]
    .into();
    sipp(dir, "trunk", &args)
}

/// Three seconds of a 440 Hz tone in µ-law, for `rtp_stream`.
pub fn write_tone(dir: &Path) {
    let tone: Vec<u8> = (0..24_000)
        .map(|n| {
            let phase = f64::from(n) * 2.0 * std::f64::consts::PI * 440.0 / 8000.0;
            media::Codec::Pcmu.encode((phase.sin() * 8000.0) as i16)
        })
        .collect();
    std::fs::write(dir.join("tone.ulaw"), tone).unwrap();
}

fn database(genkan: &Genkan) -> store_sqlite::Database {
    store_sqlite::Database::open(&genkan.dir.0.join("data/genkan.db"), "unused").unwrap()
}

/// The newest contact record, once one is stored.
pub async fn newest_contact(genkan: &Genkan) -> store_sqlite::ContactRow {
    let mut row = None;
    let found = eventually(Duration::from_secs(10), || {
        let db = database(genkan);
        let id = db.last_contact_id().unwrap_or(0);
        row = db.contact(id).ok().flatten();
        row.is_some()
    })
    .await;
    assert!(found, "no contact record was stored");
    row.unwrap()
}

/// A number from a call's contact record (its `call.…` attributes are text); a missing or
/// unreadable one fails the test, showing them all.
pub fn call_figure<T: std::str::FromStr>(attributes: &serde_json::Value, key: &str) -> T {
    attributes[key]
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{key} is not a number: {attributes}"))
}

pub fn work_dir(genkan: &Genkan) -> PathBuf {
    let dir = genkan.dir.0.join("sipp");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_call_rings_the_agents_phone_passes_audio_both_ways_and_is_recorded() {
    let sip = free_udp_port();
    let genkan = start(sip, "41000-41099").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let phone_port = free_udp_port();
    let mut phone = phone(&dir, "agent_answers.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent1", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent1").await;

    let mut carrier = trunk(&dir, "trunk_call.xml", sip, 4000);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.channel, "voice");
    assert_eq!(row.customer_address, "+81312345678");
    assert_eq!(row.agent.as_deref(), Some("agent1"));
    assert_eq!(row.outcome, "Completed");
    assert!(row.connected_at.is_some());
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    for key in [
        "call.setup_at",
        "call.ringing_at",
        "call.answered_at",
        "call.ended_at",
    ] {
        assert!(attributes[key].is_string(), "{key} missing: {attributes}");
    }
    let received =
        |side: &str| -> u64 { call_figure(&attributes, &format!("call.{side}.packets_received")) };
    // Three seconds of tone from the carrier (150 packets), echoed back by the phone.
    assert!(received("customer") >= 140, "{attributes}");
    assert!(received("agent") >= 120, "{attributes}");

    let name = row
        .recording
        .expect("the contact record names its recording");
    assert_eq!(name, format!("{}.wav", row.id));
    let wav = std::fs::read(genkan.dir.0.join("data/recordings").join(&name)).unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "stereo");
    let data_len = u32::from_le_bytes([wav[40], wav[41], wav[42], wav[43]]) as usize;
    assert_eq!(data_len + 44, wav.len(), "the recording was finished");
    let seconds = data_len as f64 / 4.0 / 8000.0;
    assert!((3.5..7.0).contains(&seconds), "recorded {seconds} s");
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let rms = |channel: usize| {
        let channel: Vec<f64> = samples
            .iter()
            .skip(channel)
            .step_by(2)
            .map(|s| f64::from(*s))
            .collect();
        (channel.iter().map(|s| s * s).sum::<f64>() / channel.len() as f64).sqrt()
    };
    // The tone's RMS is about 5,600 while it plays (three of the four seconds).
    assert!(rms(0) > 2000.0, "customer channel RMS {}", rms(0));
    assert!(rms(1) > 2000.0, "agent channel RMS {}", rms(1));
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_while_the_phone_rings_cancels_it() {
    let sip = free_udp_port();
    let genkan = start(sip, "41100-41199").await;
    let dir = work_dir(&genkan);
    let phone_port = free_udp_port();
    let mut phone = phone(&dir, "agent_rings.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent1", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent1").await;

    let mut carrier = trunk(&dir, "trunk_cancel.xml", sip, 0);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.channel, "voice");
    assert_eq!(row.outcome, "Abandoned");
    assert_eq!(row.recording, None);
    let recordings = genkan.dir.0.join("data/recordings");
    assert_eq!(std::fs::read_dir(recordings).unwrap().count(), 0);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_who_hangs_up_ends_the_carriers_leg_too() {
    let sip = free_udp_port();
    let genkan = start(sip, "41300-41399").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let phone_port = free_udp_port();
    let mut phone = phone(&dir, "agent_hangs_up.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent1", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent1").await;

    let mut carrier = trunk(&dir, "trunk_call_held.xml", sip, 0);
    succeeds(&mut phone, &dir, "phone").await;
    succeeds(&mut carrier, &dir, "trunk").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    assert_eq!(row.agent.as_deref(), Some("agent1"));
    let name = row.recording.expect("recorded");
    let wav = std::fs::read(genkan.dir.0.join("data/recordings").join(&name)).unwrap();
    let seconds = (wav.len() - 44) as f64 / 4.0 / 8000.0;
    assert!((1.5..3.5).contains(&seconds), "recorded {seconds} s");

    // Played back from the contact history: only with `recording_playback`, with ranges.
    add_user(&genkan, "kanri", &["admin"], Some(USER_PASSWORD));
    add_user(&genkan, "kantoku", &["supervisor"], Some(USER_PASSWORD));
    let path = format!("/_genkan/contacts/{}/recording", row.id);
    let mut supervisor = Browser::new(&genkan);
    supervisor.sign_in("kantoku", USER_PASSWORD).await;
    let refused = supervisor.send("GET", &path, None).await;
    assert_eq!(refused.status(), http::StatusCode::FORBIDDEN);
    let mut admin = Browser::new(&genkan);
    admin.sign_in("kanri", USER_PASSWORD).await;
    let page = admin.send("GET", "/_genkan/contacts", None).await;
    assert!(String::from_utf8_lossy(page.body()).contains(&format!("src=\"{path}\"")));
    let whole = admin.send("GET", &path, None).await;
    assert_eq!(whole.status(), http::StatusCode::OK);
    assert_eq!(whole.body().as_ref(), wav.as_slice());
    let cookies: Vec<String> = admin
        .cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let ranged = |range: &str| {
        crate::harness::request("GET", &path)
            .header("cookie", cookies.join("; "))
            .header("range", range)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let part = send_https(&genkan.pki, genkan.https, ranged("bytes=0-43")).await;
    assert_eq!(part.status(), http::StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 0-43/{}", wav.len()).as_str()
    );
    assert_eq!(part.body().as_ref(), &wav[..44]);
    let past = send_https(
        &genkan.pki,
        genkan.https,
        ranged(&format!("bytes={}-", wav.len())),
    )
    .await;
    assert_eq!(past.status(), http::StatusCode::RANGE_NOT_SATISFIABLE);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_declines_sends_the_call_on_to_the_next_agent() {
    let sip = free_udp_port();
    let genkan = start(sip, "41400-41499").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    // agent1 becomes available first, so is idle longest and is offered the call first.
    let (busy_port, answering_port) = (free_udp_port(), free_udp_port());
    let mut busy = phone_named(&dir, "busy", "agent_busy.xml", busy_port, free_udp_port());
    let mut answering = phone_named(
        &dir,
        "answering",
        "agent_answers.xml",
        answering_port,
        free_udp_port(),
    );
    let mut registration = register(&dir, "agent1", sip, busy_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent1").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut registration = register(&dir, "agent2", sip, answering_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent2").await;

    let mut carrier = trunk(&dir, "trunk_call.xml", sip, 1000);
    succeeds(&mut busy, &dir, "busy").await;
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut answering, &dir, "answering").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    assert_eq!(row.agent.as_deref(), Some("agent2"));
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_on_tcp_reaches_a_phone_on_udp() {
    let sip = free_udp_port();
    let genkan = start(sip, "41500-41599").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let phone_port = free_udp_port();
    let mut phone = phone(&dir, "agent_answers.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent1", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent1").await;

    let mut carrier = trunk_over(&dir, "trunk_call.xml", sip, 1500, "t1");
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    let received: u64 = call_figure(&attributes, "call.customer.packets_received");
    assert!(received >= 60, "{attributes}");
    assert!(row.recording.is_some());
    genkan.shutdown().await;
}

/// Sends SIP text from `socket` and returns the first final response's text.
pub async fn final_response(socket: &UdpSocket, to: SocketAddr, text: &str) -> String {
    socket.send_to(text.as_bytes(), to).await.unwrap();
    let mut buffer = vec![0u8; 65_536];
    loop {
        let (len, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buffer))
            .await
            .expect("no final response")
            .unwrap();
        let response = String::from_utf8_lossy(&buffer[..len]).into_owned();
        if !response.starts_with("SIP/2.0 1") {
            return response;
        }
    }
}

pub fn status(response: &str) -> &str {
    response.get(8..11).unwrap_or_default()
}

pub fn request(
    method: &str,
    uri: &str,
    local: SocketAddr,
    n: u32,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-it-{n}\r\n\
         From: <sip:+81312345678@{local}>;tag=it{n}\r\nTo: <{uri}>\r\nCall-ID: it-{n}@{local}\r\n\
         CSeq: {n} {method}\r\nContact: <sip:carrier@{local}>\r\nMax-Forwards: 70\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub fn offer(local: SocketAddr) -> String {
    format!(
        "v=0\r\no=it 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n",
        ip = local.ip()
    )
}

fn authorization(response: &str, user: &str, password: &str, method: &str, uri: &str) -> String {
    let nonce = response
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a challenge with a nonce");
    let ha1 = sip::auth::ha1(user, "genkan", password);
    let digest = sip::auth::digest_response(&ha1, method, uri, nonce, Some(("00000001", "c0ffee")));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"genkan\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{digest}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\"\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_wrong_credentials_are_refused_and_malformed_messages_get_400() {
    let sip = free_udp_port();
    let genkan = start(sip, "41200-41299").await;
    let server: SocketAddr = format!("127.0.0.1:{sip}").parse().unwrap();
    let uri = format!("sip:service@{server}");

    // OPTIONS is answered; a message whose Content-Length overruns its body is refused with 400.
    let allowed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = allowed.local_addr().unwrap();
    let options = final_response(
        &allowed,
        server,
        &request("OPTIONS", &uri, local, 1, "", ""),
    )
    .await;
    assert_eq!(status(&options), "200", "{options}");
    let broken = request("OPTIONS", &uri, local, 2, "", "")
        .replace("Content-Length: 0", "Content-Length: 40");
    let refused = final_response(&allowed, server, &broken).await;
    assert_eq!(status(&refused), "400", "{refused}");

    // A source no trunk allows.
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let local = stranger.local_addr().unwrap();
    let invite = request(
        "INVITE",
        &uri,
        local,
        3,
        "Content-Type: application/sdp\r\n",
        &offer(local),
    );
    let answer = final_response(&stranger, server, &invite).await;
    assert_eq!(status(&answer), "403", "{answer}");

    // The secured trunk's address: challenged, refused with a wrong password, admitted with
    // the right one (and, with no agent's phone registered, told nobody is available).
    let secured = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let local = secured.local_addr().unwrap();
    let sdp_header = "Content-Type: application/sdp\r\n";
    let invite = request("INVITE", &uri, local, 4, sdp_header, &offer(local));
    let challenge = final_response(&secured, server, &invite).await;
    assert_eq!(status(&challenge), "401", "{challenge}");
    let wrong = authorization(&challenge, "carrier", "not-the-password", "INVITE", &uri);
    let invite = request(
        "INVITE",
        &uri,
        local,
        5,
        &format!("{sdp_header}{wrong}"),
        &offer(local),
    );
    let answer = final_response(&secured, server, &invite).await;
    assert_eq!(status(&answer), "403", "{answer}");
    let invite = request("INVITE", &uri, local, 6, sdp_header, &offer(local));
    let challenge = final_response(&secured, server, &invite).await;
    let right = authorization(&challenge, "carrier", TRUNK_PASSWORD, "INVITE", &uri);
    let invite = request(
        "INVITE",
        &uri,
        local,
        7,
        &format!("{sdp_header}{right}"),
        &offer(local),
    );
    // Admitted: the seed's "nobody available" is played, which answers the call.
    let answer = final_response(&secured, server, &invite).await;
    assert_eq!(status(&answer), "200", "{answer}");
    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "NoAgentAvailable");

    // A phone with the wrong password does not register.
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = phone.local_addr().unwrap();
    let registrar = format!("sip:{server}");
    let to = "sip:agent1@127.0.0.1";
    let register = |n: u32, extra: &str| {
        request("REGISTER", &registrar, local, n, extra, "")
            .replace(&format!("To: <{registrar}>"), &format!("To: <{to}>"))
    };
    let challenge = final_response(&phone, server, &register(8, "")).await;
    assert_eq!(status(&challenge), "401", "{challenge}");
    let wrong = authorization(
        &challenge,
        "agent1",
        "wrong-password",
        "REGISTER",
        &registrar,
    );
    let answer = final_response(&phone, server, &register(9, &wrong)).await;
    assert_eq!(status(&answer), "403", "{answer}");
    genkan.shutdown().await;
}

/// A folder of its own for flow files and prompts, which must exist before genkan starts
/// (the harness makes genkan's folder as it starts it).
fn assets(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("genkan-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A 16-bit mono WAV at 16 kHz (so the prompt goes through the resampler) of a tone.
pub fn write_wav(path: &Path, hz: f64, seconds: f64) {
    let rate = 16_000u32;
    let samples: Vec<u8> = (0..(f64::from(rate) * seconds) as u32)
        .flat_map(|n| {
            let phase = f64::from(n) * 2.0 * std::f64::consts::PI * hz / f64::from(rate);
            ((phase.sin() * 10_000.0) as i16).to_le_bytes()
        })
        .collect();
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    std::fs::write(path, wav).unwrap();
}

/// The carrier's signalling (sipp, `trunk_ivr.xml`) with its SDP pointing at `rtp`, a socket
/// the test holds.
pub fn ivr_caller(dir: &Path, sip: u16, rtp: &UdpSocket) -> Child {
    let rtp_port = rtp.local_addr().unwrap().port();
    let args: Vec<String> = [
        format!("127.0.0.1:{sip}"),
        "-sf".into(),
        scenario("trunk_ivr.xml"),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        free_udp_port().to_string(),
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        free_udp_port().to_string(),
        "-m".into(),
        "1".into(),
        "-key".into(),
        "rtp_port".into(),
        rtp_port.to_string(),
    ]
    .into();
    sipp(dir, "trunk", &args)
}

/// What the caller heard from genkan.
#[derive(Debug, Default)]
pub struct Heard {
    pub packets: u32,
    /// Packets with audio well above silence.
    pub loud: u32,
    /// From the first loud packet's arrival to the last's.
    pub loud_span: Duration,
}

/// Listens on the caller's RTP socket until genkan has sent nothing for a second (its
/// media stops at the BYE). When `key` is given, presses it (RFC 4733, payload type 101)
/// as soon as the first loud packet arrives, to genkan's RTP port (where that packet came
/// from).
pub async fn listen(socket: &UdpSocket, key: Option<char>) -> Heard {
    let mut heard = Heard::default();
    let mut first_loud = None;
    let mut buffer = [0u8; 2048];
    let mut key = key;
    loop {
        let wait = if heard.packets == 0 { 15 } else { 1 };
        let Ok(received) =
            tokio::time::timeout(Duration::from_secs(wait), socket.recv_from(&mut buffer)).await
        else {
            return heard;
        };
        let (len, from) = received.unwrap();
        let Ok(media::Datagram::Rtp(packet)) = media::demux(&buffer[..len]) else {
            continue;
        };
        heard.packets += 1;
        let loud = packet.header.payload_type == 0
            && packet
                .payload
                .iter()
                .any(|code| media::Codec::Pcmu.decode(*code).unsigned_abs() > 2000);
        if !loud {
            continue;
        }
        heard.loud += 1;
        let now = tokio::time::Instant::now();
        let first = *first_loud.get_or_insert(now);
        heard.loud_span = now - first;
        if let Some(key) = key.take() {
            let header = media::RtpHeader::new(101, 1000, 160_000, 0x1234_5678);
            let (packets, _) =
                media::dtmf::key_packets(key, Duration::from_millis(100), 10, &header).unwrap();
            for packet in packets {
                socket.send_to(&packet, from).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_nobody_can_take_hears_the_announcement_then_genkan_hangs_up() {
    let prompts = assets("nobody");
    write_wav(&prompts.join("nobody.wav"), 600.0, 1.5);
    let sip = free_udp_port();
    let voice = format!("prompts = \"{}\"\n", prompts.display());
    let genkan = start_with(sip, "41300-41399", "", &voice).await;
    let dir = work_dir(&genkan);

    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut carrier = ivr_caller(&dir, sip, &rtp);
    let heard = listen(&rtp, None).await;
    // sipp succeeds only when genkan answered with telephone-event and then sent BYE.
    succeeds(&mut carrier, &dir, "trunk").await;
    // 1.5 s of prompt is 75 packets; the media stops at the BYE, so hearing (nearly) all of
    // them means the BYE waited for the prompt.
    assert!(
        (70..=80).contains(&heard.loud),
        "the caller heard {heard:?}"
    );
    assert!(
        heard.loud_span >= Duration::from_millis(1300),
        "the caller heard {heard:?}"
    );
    let row = newest_contact(&genkan).await;
    assert_eq!(row.channel, "voice");
    assert_eq!(row.outcome, "NoAgentAvailable");
    // The row waited for the call's record: the announcement's media statistics are on it.
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    let sent: u64 = call_figure(&attributes, "call.customer.packets_sent");
    assert!(sent >= 70, "{attributes}");
    genkan.shutdown().await;
    let _ = std::fs::remove_dir_all(&prompts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_caller_presses_takes_the_flows_branch() {
    let assets = assets("menu");
    let menu_text = "ご用件の番号を押してください";
    std::fs::write(
        assets.join("menu.toml"),
        format!(
            "name = \"menu\"\nstart = \"ask\"\n\
             [blocks.ask]\ntype = \"get_input\"\nprompt = \"{menu_text}\"\n\
             choices = {{ \"1\" = \"billing\", \"2\" = \"other\" }}\ntimeout_seconds = 10\n\
             no_match = \"other\"\n\
             [blocks.billing]\ntype = \"set_attribute\"\nkey = \"menu\"\nvalue = \"billing\"\n\
             next = \"thanks\"\n\
             [blocks.thanks]\ntype = \"say\"\ntext = \"請求の担当からご連絡します。\"\nnext = \"end\"\n\
             [blocks.other]\ntype = \"say\"\ntext = \"ウェブサイトをご覧ください。\"\nnext = \"end\"\n\
             [blocks.end]\ntype = \"disconnect\"\n"
        ),
    )
    .unwrap();
    // Four seconds of menu, so a key pressed at its start must cut it short.
    write_wav(&assets.join("menu.wav"), 500.0, 4.0);
    let sip = free_udp_port();
    let contact = format!(
        "flows = [\"{}\"]\nmain_flow = \"menu\"\n",
        assets.join("menu.toml").display()
    );
    let voice = format!(
        "prompts = \"{}\"\n[voice.prompt_files]\n\"{menu_text}\" = \"menu.wav\"\n",
        assets.display()
    );
    let genkan = start_with(sip, "41400-41499", &contact, &voice).await;
    let dir = work_dir(&genkan);

    let mut ids = Vec::new();
    for key in ['1', '2'] {
        let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut carrier = ivr_caller(&dir, sip, &rtp);
        let heard = listen(&rtp, Some(key)).await;
        succeeds(&mut carrier, &dir, "trunk").await;
        // The menu's first packets and the 0.5 s tone of the answer (no WAV for it): far
        // less than the menu's 200 packets, so the key stopped the menu.
        assert!(
            (20..120).contains(&heard.loud),
            "key {key}: the caller heard {heard:?}"
        );
        let mut row = None;
        let stored = eventually(Duration::from_secs(10), || {
            let db = database(&genkan);
            let id = db.last_contact_id().unwrap_or(0);
            row = db
                .contact(id)
                .ok()
                .flatten()
                .filter(|row| !ids.contains(&row.id));
            row.is_some()
        })
        .await;
        assert!(stored, "key {key}: no new contact record");
        let row = row.unwrap();
        ids.push(row.id);
        let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
        let expected = if key == '1' {
            serde_json::json!("billing")
        } else {
            serde_json::Value::Null
        };
        assert_eq!(attributes["menu"], expected, "key {key}: {attributes}");
    }
    genkan.shutdown().await;
    let _ = std::fs::remove_dir_all(&assets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_greeted_first_is_then_bridged_to_the_agent_and_recorded_from_the_answer() {
    let assets = assets("welcome");
    let welcome = "お電話ありがとうございます。";
    std::fs::write(
        assets.join("welcome.toml"),
        format!(
            "name = \"welcome\"\nstart = \"greet\"\n\
             [blocks.greet]\ntype = \"say\"\ntext = \"{welcome}\"\nnext = \"queue\"\n\
             [blocks.queue]\ntype = \"transfer_to_queue\"\nqueue = \"support\"\nnobody = \"end\"\n\
             [blocks.end]\ntype = \"disconnect\"\n"
        ),
    )
    .unwrap();
    write_wav(&assets.join("welcome.wav"), 700.0, 1.0);
    let sip = free_udp_port();
    let contact = format!(
        "flows = [\"{}\"]\nmain_flow = \"welcome\"\n",
        assets.join("welcome.toml").display()
    );
    let voice = format!(
        "prompts = \"{}\"\n[voice.prompt_files]\n\"{welcome}\" = \"welcome.wav\"\n",
        assets.display()
    );
    let genkan = start_with(sip, "41500-41599", &contact, &voice).await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let phone_port = free_udp_port();
    let mut phone = phone(&dir, "agent_answers.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent1", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent1").await;

    // The carrier is answered at the greeting; the phone is rung and answers meanwhile, and
    // its leg must join the media already running for the carrier.
    let mut carrier = trunk(&dir, "trunk_call.xml", sip, 4000);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.agent.as_deref(), Some("agent1"));
    assert_eq!(row.outcome, "Completed");
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    let received =
        |side: &str| -> u64 { call_figure(&attributes, &format!("call.{side}.packets_received")) };
    // The carrier's three seconds of tone reached genkan and, echoed by the phone, came back.
    assert!(received("customer") >= 140, "{attributes}");
    assert!(received("agent") >= 100, "{attributes}");
    let name = row.recording.expect("the call was recorded");
    let wav = std::fs::read(genkan.dir.0.join("data/recordings").join(&name)).unwrap();
    let data_len = u32::from_le_bytes([wav[40], wav[41], wav[42], wav[43]]) as usize;
    let seconds = data_len as f64 / 4.0 / 8000.0;
    // From the phone's answer to the BYE: the 4 s hold, less the ringing.
    assert!((2.5..5.0).contains(&seconds), "recorded {seconds} s");
    genkan.shutdown().await;
    let _ = std::fs::remove_dir_all(&assets);
}
