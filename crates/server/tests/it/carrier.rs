//! genkan registering with a carrier (`[voice.trunk.register]`), against sipp playing the
//! carrier's registrar: the digest challenge answered, the refresh before the binding
//! lapses, a wrong password backed off from; and calls from the registrar's address taken
//! as the trunk's while other addresses are refused.

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::process::Child;

use crate::harness::Genkan;
use crate::voice::{
    PHONE_PASSWORD, final_response, free_udp_port, newest_contact, offer, phone, register, request,
    scenario, sipp, status, succeeds, trunk, work_dir, write_tone,
};

/// genkan with one trunk that only registers (no `allow`, no credentials of its own) with
/// the registrar at 127.0.0.1:`registrar`, and agent1's SIP phone.
async fn start(sip: u16, rtp: &str, registrar: u16, password: &str) -> Genkan {
    Genkan::start(&format!(
        "[identity]\ntotp_required_groups = []\n\
         [contact]\n[[contact.queue]]\nname = \"support\"\n\
         [[contact.agent]]\nname = \"agent1\"\nqueues = [\"support\"]\n\
         [voice]\nsip_listen = \"127.0.0.1:{sip}\"\nrtp_ports = \"{rtp}\"\n\
         [[voice.trunk]]\nname = \"carrier\"\n\
         [voice.trunk.register]\nregistrar = \"127.0.0.1:{registrar}\"\n\
         username = \"0312345678\"\npassword = \"{password}\"\ndomain = \"carrier.test\"\n\
         expires = 600\n\
         [[voice.sip_agent]]\nname = \"agent1\"\npassword = \"{PHONE_PASSWORD}\"\n"
    ))
    .await
}

/// sipp as the carrier's registrar on 127.0.0.1:`port`, for one registration.
fn registrar(dir: &std::path::Path, scenario_file: &str, port: u16) -> Child {
    let args: Vec<String> = [
        "-sf".into(),
        scenario(scenario_file),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-m".into(),
        "1".into(),
    ]
    .into();
    sipp(dir, "registrar", &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genkan_registers_with_the_carrier_refreshes_and_takes_calls_from_it_only() {
    let sip = free_udp_port();
    let registrar_port = free_udp_port();
    // The registrar listens before genkan starts: the first REGISTER goes at start-up.
    let scratch = crate::harness::TempDir::new("carrier");
    let mut carrier_registrar = registrar(&scratch.0, "carrier_registrar.xml", registrar_port);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let genkan = start(sip, "41600-41699", registrar_port, "carrier-secret").await;
    // Challenge, answer, 2-second binding, signed refresh: all checked by the registrar.
    succeeds(&mut carrier_registrar, &scratch.0, "registrar").await;

    // The carrier calls from its registrar's address: the trunk's call, to agent1's phone.
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let phone_port = free_udp_port();
    let mut phone = phone(&dir, "agent_answers.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent1", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent1").await;
    let mut call = trunk(&dir, "trunk_call.xml", sip, 1000);
    succeeds(&mut call, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "phone").await;
    let row = newest_contact(&genkan).await;
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    assert_eq!(attributes["call.trunk"], "carrier", "{attributes}");
    assert_eq!(row.outcome, "Completed");

    // Anyone else is refused: the trunk has no `allow` and no credentials.
    let server: SocketAddr = format!("127.0.0.1:{sip}").parse().unwrap();
    let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let local = stranger.local_addr().unwrap();
    let uri = format!("sip:service@{server}");
    let invite = request(
        "INVITE",
        &uri,
        local,
        1,
        "Content-Type: application/sdp\r\n",
        &offer(local),
    );
    let response = final_response(&stranger, server, &invite).await;
    assert_eq!(status(&response), "403", "{response}");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_carrier_password_is_tried_once_then_backed_off_from() {
    let sip = free_udp_port();
    let registrar_port = free_udp_port();
    let scratch = crate::harness::TempDir::new("carrier-refuses");
    let mut carrier_registrar = registrar(&scratch.0, "carrier_refuses.xml", registrar_port);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let genkan = start(sip, "41700-41799", registrar_port, "not-the-password").await;
    // The registrar fails the scenario if the answer verifies, or if a REGISTER comes
    // again within 3 seconds of the refusal.
    succeeds(&mut carrier_registrar, &scratch.0, "registrar").await;
    genkan.shutdown().await;
}
