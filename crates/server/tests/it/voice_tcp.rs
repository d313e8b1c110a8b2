//! Agents' SIP phones over TCP, end to end: sipp registers over one TCP connection (`-t t1`,
//! digest) and takes the call genkan sends on that same connection (`agent_tcp.xml`, whose
//! out-of-call scenario answers with `-rtp_echo`, holds, hangs up, rings until cancelled or
//! drops the connection, and checks that genkan's requests come with a TCP Via), while the
//! carrier (sipp) calls over UDP. A phone whose registration's connection has closed is
//! dialed at its Contact, or, when it cannot be, is taken out of the rotation (its agent's
//! presence is read from the supervisor page).

use std::path::Path;
use std::time::Duration;

use tokio::process::Child;

use crate::harness::Genkan;
use crate::identity::{Browser, add_user};
use crate::voice::{
    PHONE_PASSWORD, call_figure, free_udp_port, newest_contact, phone, register, scenario, sipp,
    start, start_with, succeeds, trunk, work_dir, write_tone,
};

const SUPERVISOR_PASSWORD: &str = "correct horse battery staple 8";

/// A phone that registers over one TCP connection and takes its call there with the
/// out-of-call scenario `answering`; `contact_params` end its Contact.
fn tcp_phone(dir: &Path, sip: u16, answering: &str, contact_params: &str) -> Child {
    let args: Vec<String> = [
        format!("127.0.0.1:{sip}"),
        "-sf".into(),
        scenario("agent_tcp.xml"),
        "-oocsf".into(),
        scenario(answering),
        "-t".into(),
        "t1".into(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        free_udp_port().to_string(),
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        free_udp_port().to_string(),
        "-rtp_echo".into(),
        "-m".into(),
        "1".into(),
        "-au".into(),
        "agent1".into(),
        "-ap".into(),
        PHONE_PASSWORD.into(),
        "-key".into(),
        "agent".into(),
        "agent1".into(),
        "-key".into(),
        "contact_params".into(),
        contact_params.into(),
    ]
    .into();
    sipp(dir, "tcp-phone", &args)
}

/// A REGISTER over a TCP connection that closes when sipp ends, for a Contact at
/// `contact` (a port and parameters).
fn register_over_tcp(dir: &Path, agent: &str, sip: u16, contact: &str) -> Child {
    let args: Vec<String> = [
        format!("127.0.0.1:{sip}"),
        "-sf".into(),
        scenario("agent_register.xml"),
        "-t".into(),
        "t1".into(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        free_udp_port().to_string(),
        "-m".into(),
        "1".into(),
        "-au".into(),
        agent.into(),
        "-ap".into(),
        PHONE_PASSWORD.into(),
        "-key".into(),
        "agent".into(),
        agent.into(),
        "-key".into(),
        "phone_port".into(),
        contact.into(),
    ]
    .into();
    sipp(dir, &format!("register-{agent}"), &args)
}

/// How many packets genkan received on one side of the newest call.
fn packets_received(attributes: &serde_json::Value, side: &str) -> u64 {
    call_figure(attributes, &format!("call.{side}.packets_received"))
}

/// A supervisor signed in, to watch the agents' presence.
async fn supervisor(genkan: &Genkan) -> Browser<'_> {
    add_user(
        genkan,
        "kantoku",
        &["supervisor"],
        Some(SUPERVISOR_PASSWORD),
    );
    let mut browser = Browser::new(genkan);
    browser.sign_in("kantoku", SUPERVISOR_PASSWORD).await;
    browser
}

/// Waits until the supervisor page shows `agent` with `presence`.
async fn wait_for_presence(browser: &mut Browser<'_>, agent: &str, presence: &str) {
    let row = format!("<td>{agent}</td><td>{presence}</td>");
    let mut page = String::new();
    for _ in 0..100 {
        let response = browser.send("GET", "/_genkan/supervisor", None).await;
        page = String::from_utf8_lossy(response.body()).into_owned();
        if page.contains(&row) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{agent} is not {presence}: {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_over_tcp_is_called_on_its_connection_and_the_carrier_hangs_up() {
    let sip = free_udp_port();
    let genkan = start(sip, "41800-41849").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let mut watch = supervisor(&genkan).await;
    let mut phone = tcp_phone(&dir, sip, "agent_tcp_answers.xml", ";transport=tcp");
    wait_for_presence(&mut watch, "agent1", "Available").await;

    // The carrier is on UDP; the phone's scenario checks that the INVITE, ACK and BYE come
    // on its connection with a TCP Via, and the INVITE with a Contact asking for TCP.
    let mut carrier = trunk(&dir, "trunk_call.xml", sip, 4000);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "tcp-phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.channel, "voice");
    assert_eq!(row.agent.as_deref(), Some("agent1"));
    assert_eq!(row.outcome, "Completed");
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    assert!(attributes["call.answered_at"].is_string(), "{attributes}");
    // Three seconds of tone from the carrier, echoed back by the phone.
    assert!(
        packets_received(&attributes, "customer") >= 140,
        "{attributes}"
    );
    assert!(
        packets_received(&attributes, "agent") >= 120,
        "{attributes}"
    );
    assert!(row.recording.is_some(), "the call was recorded");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_while_a_tcp_phone_rings_cancels_it_on_its_connection() {
    let sip = free_udp_port();
    let genkan = start(sip, "42050-42099").await;
    let dir = work_dir(&genkan);
    let mut watch = supervisor(&genkan).await;
    let mut phone = tcp_phone(&dir, sip, "agent_tcp_rings.xml", ";transport=tcp");
    wait_for_presence(&mut watch, "agent1", "Available").await;

    let mut carrier = trunk(&dir, "trunk_cancel.xml", sip, 0);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "tcp-phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.channel, "voice");
    assert_eq!(row.outcome, "Abandoned");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_phone_holds_with_a_re_invite_on_its_connection() {
    let sip = free_udp_port();
    let genkan = start(sip, "42100-42149").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let mut watch = supervisor(&genkan).await;
    let mut phone = tcp_phone(&dir, sip, "agent_tcp_holds.xml", ";transport=tcp");
    wait_for_presence(&mut watch, "agent1", "Available").await;

    // The phone holds 0.8 s after answering and stays on hold; the carrier hangs up at 3 s.
    let mut carrier = trunk(&dir, "trunk_call.xml", sip, 3000);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "tcp-phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    assert_eq!(attributes["call.hold_count"], "1", "{attributes}");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_a_tcp_phone_hangs_up_and_a_phone_genkan_cannot_dial_goes_away_with_its_connection()
 {
    let sip = free_udp_port();
    // A short wrap-up, so that agent1's presence after the call shows the registration.
    let genkan = start_with(sip, "41850-41899", "wrap_up_timeout = \"1s\"\n", "").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let mut watch = supervisor(&genkan).await;
    // `;ob` and no `transport=tcp`: once its connection is gone genkan has no way to it.
    let mut phone = tcp_phone(&dir, sip, "agent_tcp_hangs_up.xml", ";ob");
    wait_for_presence(&mut watch, "agent1", "Available").await;

    let mut carrier = trunk(&dir, "trunk_call_held.xml", sip, 0);
    succeeds(&mut phone, &dir, "tcp-phone").await;
    succeeds(&mut carrier, &dir, "trunk").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    assert_eq!(row.agent.as_deref(), Some("agent1"));
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    assert!(packets_received(&attributes, "agent") >= 60, "{attributes}");
    // sipp has ended and its connection with it: agent1 takes no more calls.
    wait_for_presence(&mut watch, "agent1", "Away").await;
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_phone_whose_connection_closed_is_dialed_at_its_contact() {
    let sip = free_udp_port();
    let genkan = start(sip, "41900-41949").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let mut watch = supervisor(&genkan).await;
    let phone_port = free_udp_port();
    // The REGISTER's connection closes when this sipp ends; the phone listens for TCP at
    // its Contact.
    let contact = format!("{phone_port};transport=tcp");
    let mut registration = register_over_tcp(&dir, "agent1", sip, &contact);
    succeeds(&mut registration, &dir, "register-agent1").await;
    let args: Vec<String> = [
        "-sf".into(),
        scenario("agent_answers.xml"),
        "-t".into(),
        "t1".into(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        phone_port.to_string(),
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        free_udp_port().to_string(),
        "-rtp_echo".into(),
        "-m".into(),
        "1".into(),
    ]
    .into();
    let mut phone = sipp(&dir, "phone", &args);
    // Still available: genkan can reach the phone another way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_for_presence(&mut watch, "agent1", "Available").await;

    let mut carrier = trunk(&dir, "trunk_call.xml", sip, 2000);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    assert_eq!(row.agent.as_deref(), Some("agent1"));
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    assert!(packets_received(&attributes, "agent") >= 60, "{attributes}");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_phone_that_cannot_be_reached_passes_the_call_on_at_once_and_goes_away() {
    let sip = free_udp_port();
    let genkan = start_with(
        sip,
        "41950-41999",
        "[[contact.agent]]\nname = \"agent3\"\nqueues = [\"support\"]\n",
        &format!("[[voice.sip_agent]]\nname = \"agent3\"\npassword = \"{PHONE_PASSWORD}\"\n"),
    )
    .await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let mut watch = supervisor(&genkan).await;
    // agent1's Contact may be dialed, but nothing listens there.
    let dead = format!("{};transport=tcp", free_udp_port());
    let mut registration = register_over_tcp(&dir, "agent1", sip, &dead);
    succeeds(&mut registration, &dir, "register-agent1").await;
    // agent3's cannot be dialed: it goes Away as soon as its connection closes.
    let mut registration = register_over_tcp(&dir, "agent3", sip, "5060;ob");
    succeeds(&mut registration, &dir, "register-agent3").await;
    wait_for_presence(&mut watch, "agent3", "Away").await;
    wait_for_presence(&mut watch, "agent1", "Available").await;
    // agent2 on UDP answers; agent1, idle longest, is offered the call first.
    let phone_port = free_udp_port();
    let mut answering = phone(&dir, "agent_answers.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent2", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent2").await;

    let mut carrier = trunk(&dir, "trunk_call.xml", sip, 1000);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut answering, &dir, "phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    assert_eq!(row.agent.as_deref(), Some("agent2"));
    // The refused connection failed agent1's offer at once, not at the 20 s offer timeout.
    let time = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap();
    let waited = time(row.connected_at.as_deref().unwrap()) - time(&row.initiated_at);
    assert!(waited.num_seconds() < 5, "answered after {waited}");
    wait_for_presence(&mut watch, "agent1", "Away").await;
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_phone_whose_connection_closes_while_ringing_passes_the_call_on_at_once() {
    let sip = free_udp_port();
    let genkan = start(sip, "42000-42049").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let mut watch = supervisor(&genkan).await;
    // agent1, idle longest, rings and its phone's connection closes (sipp stops).
    let mut dropping = tcp_phone(&dir, sip, "agent_tcp_drops.xml", ";transport=tcp");
    wait_for_presence(&mut watch, "agent1", "Available").await;
    let phone_port = free_udp_port();
    let mut answering = phone(&dir, "agent_answers.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent2", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent2").await;

    let mut carrier = trunk(&dir, "trunk_call.xml", sip, 1000);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut answering, &dir, "phone").await;
    let _ = tokio::time::timeout(Duration::from_secs(5), dropping.wait()).await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    assert_eq!(row.agent.as_deref(), Some("agent2"));
    // Nothing retransmits over TCP: without the closed connection failing the offer, the
    // center would have waited for its 20 s offer timeout.
    let time = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap();
    let waited = time(row.connected_at.as_deref().unwrap()) - time(&row.initiated_at);
    assert!(waited.num_seconds() < 5, "answered after {waited}");
    // Its Contact may still be dialed, so agent1 stays available.
    wait_for_presence(&mut watch, "agent1", "Available").await;
    genkan.shutdown().await;
}
