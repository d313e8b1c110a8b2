//! Hold by re-INVITE, end to end: the agent's SIP phone (sipp, `agent_holds.xml`, echoing
//! what it hears) holds and resumes while the carrier (sipp) plays a tone; sipp checks the
//! directions and versions of genkan's answers, and the recording shows the hold.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::voice::{
    PHONE_PASSWORD, call_figure, final_response, free_udp_port, newest_contact, offer, phone,
    register, request, start, status, succeeds, trunk, work_dir, write_tone,
};

/// RMS of each 20 ms frame of one channel of a stereo 16-bit WAV's samples.
fn frame_rms(samples: &[i16], channel: usize) -> Vec<f64> {
    samples
        .chunks_exact(2 * 160)
        .map(|frame| {
            let sum: f64 = frame
                .iter()
                .skip(channel)
                .step_by(2)
                .map(|sample| f64::from(*sample).powi(2))
                .sum();
            (sum / 160.0).sqrt()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_who_holds_is_answered_recvonly_and_the_caller_hears_silence_until_resumed() {
    let sip = free_udp_port();
    let genkan = start(sip, "41600-41699").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);

    // A re-INVITE naming no dialog genkan has is refused as before.
    let server: SocketAddr = format!("127.0.0.1:{sip}").parse().unwrap();
    let uri = format!("sip:service@{server}");
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = stranger.local_addr().unwrap();
    let reinvite = request(
        "INVITE",
        &uri,
        local,
        1,
        "Content-Type: application/sdp\r\n",
        &offer(local),
    )
    .replace(&format!("To: <{uri}>"), &format!("To: <{uri}>;tag=unknown"));
    let refused = final_response(&stranger, server, &reinvite).await;
    assert_eq!(status(&refused), "481", "{refused}");

    let phone_port = free_udp_port();
    let mut phone = phone(&dir, "agent_holds.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent1", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent1").await;

    // The phone holds from about 0.8 s after its answer for 1.5 s, inside the carrier's 3 s
    // of tone; the carrier hangs up at 5 s.
    let mut carrier = trunk(&dir, "trunk_call.xml", sip, 5000);
    succeeds(&mut phone, &dir, "phone").await;
    succeeds(&mut carrier, &dir, "trunk").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    assert_eq!(attributes["call.hold_count"], "1", "{attributes}");
    let held: f64 = call_figure(&attributes, "call.hold_seconds");
    assert!((1.2..3.0).contains(&held), "held {held} s: {attributes}");

    // The customer channel has the tone throughout; the agent channel (the phone's echo of
    // what genkan passed it) goes silent while the agent holds, and is loud around it.
    let name = row.recording.expect("the call was recorded");
    let wav = std::fs::read(genkan.dir.0.join("data/recordings").join(&name)).unwrap();
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let (customer, agent) = (frame_rms(&samples, 0), frame_rms(&samples, 1));
    let talking = customer.iter().filter(|rms| **rms > 2000.0);
    let (mut silent, mut loud) = (0, 0);
    for (customer, agent) in customer.iter().zip(&agent) {
        if *customer > 2000.0 {
            if *agent < 50.0 {
                silent += 1;
            } else if *agent > 2000.0 {
                loud += 1;
            }
        }
    }
    assert!(talking.count() >= 120, "the tone was not recorded");
    // 1.5 s of hold is 75 frames; without the hold the echo would fill them.
    assert!(
        (50..=120).contains(&silent),
        "{silent} silent frames, {loud} loud"
    );
    assert!(loud >= 25, "{loud} frames of echo outside the hold");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_holds_the_old_way_and_resumes_with_a_re_invite_without_an_offer() {
    let sip = free_udp_port();
    let genkan = start(sip, "41700-41799").await;
    let dir = work_dir(&genkan);
    write_tone(&dir);
    let phone_port = free_udp_port();
    let mut phone = phone(&dir, "agent_answers.xml", phone_port, free_udp_port());
    let mut registration = register(&dir, "agent1", sip, phone_port, PHONE_PASSWORD);
    succeeds(&mut registration, &dir, "register-agent1").await;

    // One second of tone, one second held, one second resumed, then silence and BYE.
    let mut carrier = trunk(&dir, "trunk_holds.xml", sip, 0);
    succeeds(&mut carrier, &dir, "trunk").await;
    succeeds(&mut phone, &dir, "phone").await;

    let row = newest_contact(&genkan).await;
    assert_eq!(row.outcome, "Completed");
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap();
    // The ACK's sendrecv answer ended the hold.
    assert_eq!(attributes["call.hold_count"], "1", "{attributes}");
    let held: f64 = call_figure(&attributes, "call.hold_seconds");
    assert!((0.7..2.0).contains(&held), "held {held} s: {attributes}");

    // The caller's channel has two of the tone's three seconds: the held one is silence.
    let name = row.recording.expect("the call was recorded");
    let wav = std::fs::read(genkan.dir.0.join("data/recordings").join(&name)).unwrap();
    let samples: Vec<i16> = wav[44..]
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let loud = frame_rms(&samples, 0)
        .iter()
        .filter(|rms| **rms > 2000.0)
        .count();
    assert!(
        (60..=125).contains(&loud),
        "{loud} loud frames of the caller"
    );
    genkan.shutdown().await;
}
