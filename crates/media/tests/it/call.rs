//! A simulated call through the bridge: two legs over a lossy, jittery network in
//! simulated time, into a recording.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::{Duration, Instant};

use media::dtmf::key_packets;
use media::{
    Bridge, Codec, FRAME_SAMPLES, LegConfig, PlayoutConfig, Recorder, RecorderConfig, RtpHeader,
    RtpPacket, Side,
};

use crate::signal::{amplitude_at, read_wav, rms, tone};

/// A small deterministic generator, so the network's behaviour is the same every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn leg(codec: Codec, ssrc: u32) -> LegConfig {
    LegConfig {
        codec,
        telephone_event: Some(101),
        ssrc,
        first_sequence: 40_000,
        first_timestamp: 123_456,
        playout: PlayoutConfig::default(),
    }
}

/// The packets a phone sends: `seconds` of a tone, 20 ms each, with the send time.
/// After one second, seven sequence numbers are left for a key press.
fn phone(codec: Codec, hz: f64, ssrc: u32, seconds: usize) -> Vec<(Duration, Vec<u8>)> {
    (0..seconds * 50)
        .map(|i| {
            let samples = tone(hz, 8000, 8000.0, i * FRAME_SAMPLES, FRAME_SAMPLES);
            let payload: Vec<u8> = samples.iter().map(|s| codec.encode(*s)).collect();
            let header = RtpHeader::new(
                codec.payload_type(),
                (65_500 + i + if i >= 50 { 7 } else { 0 }) as u16,
                (i * FRAME_SAMPLES) as u32,
                ssrc,
            );
            (
                Duration::from_millis(20 * i as u64),
                header.to_packet(&payload).unwrap(),
            )
        })
        .collect()
}

#[allow(clippy::disallowed_methods)] // an origin only; every time is origin + offset
fn origin() -> Instant {
    Instant::now()
}

#[test]
fn a_bridged_call_over_a_bad_network_is_heard_and_recorded() {
    let t0 = origin();
    let mut network = Lcg(7);
    let mut bridge = Bridge::new(t0);
    bridge.add_leg(Side::Customer, leg(Codec::Pcmu, 1));
    bridge.add_leg(Side::Agent, leg(Codec::Pcma, 2));

    // Both phones talk for 3 s; the customer presses 5 at 1 s.
    let mut sent: Vec<(Side, Duration, Vec<u8>)> = Vec::new();
    for (at, packet) in phone(Codec::Pcmu, 440.0, 11, 3) {
        sent.push((Side::Customer, at, packet));
    }
    for (at, packet) in phone(Codec::Pcma, 1000.0, 22, 3) {
        sent.push((Side::Agent, at, packet));
    }
    // The key's packets take the sequence numbers the audio left (65550 wrapped is 14).
    let (keys, _) = key_packets(
        '5',
        Duration::from_millis(100),
        10,
        &RtpHeader::new(101, 14, 8000, 11),
    )
    .unwrap();
    for (n, packet) in keys.into_iter().enumerate() {
        sent.push((
            Side::Customer,
            Duration::from_millis(1000 + 20 * n.min(4) as u64),
            packet,
        ));
    }
    // 5 % loss, 0–40 ms of delay each (which reorders), some duplicates, and junk.
    let mut arrivals: BTreeMap<(Duration, usize), (Side, Vec<u8>)> = BTreeMap::new();
    for (n, (side, at, packet)) in sent.into_iter().enumerate() {
        if network.below(100) < 5 {
            continue;
        }
        let delay = Duration::from_millis(network.below(40));
        if network.below(100) < 2 {
            arrivals.insert(
                (at + delay + Duration::from_millis(3), n + 100_000),
                (side, packet.clone()),
            );
        }
        arrivals.insert((at + delay, n), (side, packet));
    }
    arrivals.insert(
        (Duration::from_millis(500), 999_999),
        (Side::Agent, vec![0x80, 201, 0, 1, 0, 0, 0, 2]),
    );
    arrivals.insert(
        (Duration::from_millis(501), 999_998),
        (Side::Agent, vec![0x40, 0, 0]),
    );

    let mut recorder = Recorder::new(Cursor::new(Vec::new()), RecorderConfig::default()).unwrap();
    let mut to_customer = Vec::new();
    let mut to_agent = Vec::new();
    let mut digits = String::new();
    // Every packet of the customer's stream that arrives counts, duplicates included.
    let customer_arrivals = arrivals
        .values()
        .filter(|(side, packet)| *side == Side::Customer && packet.len() >= 12)
        .count() as u64;
    let mut arrivals = arrivals.into_iter().peekable();
    for ms in 0..3100u64 {
        let now = t0 + Duration::from_millis(ms);
        while let Some(((at, _), _)) = arrivals.peek() {
            if *at > Duration::from_millis(ms) {
                break;
            }
            let (_, (side, packet)) = arrivals.next().unwrap();
            if let Some(digit) = bridge.receive(side, &packet, now) {
                digits.push(digit.key);
            }
        }
        while bridge.next_tick() <= now {
            let tick = bridge.tick(now);
            for (side, packet) in tick.send {
                let parsed = RtpPacket::parse(&packet).unwrap();
                match side {
                    Side::Customer => to_customer.push(Codec::Pcmu.decode_frame(parsed.payload)),
                    Side::Agent => to_agent.push(Codec::Pcma.decode_frame(parsed.payload)),
                }
            }
            for (side, frame) in [Side::Customer, Side::Agent].into_iter().zip(tick.heard) {
                recorder.push(side, tick.at, &frame.unwrap()).unwrap();
            }
        }
    }

    assert_eq!(digits, "5");
    // 3.1 s of ticks: every tick sent a packet to each leg.
    assert_eq!((to_customer.len(), to_agent.len()), (155, 155));
    let heard_by_agent: Vec<i16> = to_agent.concat();
    let heard_by_customer: Vec<i16> = to_customer.concat();
    assert!(amplitude_at(&heard_by_agent[1600..20000], 440.0, 8000) > 6000.0);
    assert!(amplitude_at(&heard_by_customer[1600..20000], 1000.0, 8000) > 6000.0);
    // Transcoded, not just passed through: the wrong law would add strong harmonics.
    for (heard, hz) in [(&heard_by_agent, 440.0), (&heard_by_customer, 1000.0)] {
        for harmonic in [2.0, 3.0] {
            let level = amplitude_at(&heard[1600..20000], hz * harmonic, 8000);
            assert!(level < 200.0, "{hz} Hz × {harmonic}: {level}");
        }
    }

    let customer = bridge.stats(Side::Customer).unwrap();
    assert_eq!(customer.receive.expected, 157);
    assert!((3..=15).contains(&customer.receive.lost), "{customer:?}");
    assert_eq!(customer.receive.received, customer_arrivals);
    assert!(
        customer.receive.jitter > Duration::from_millis(3),
        "{customer:?}"
    );
    let agent = bridge.stats(Side::Agent).unwrap();
    assert_eq!(agent.malformed, 1);
    assert_eq!(agent.sent, 155);

    let bytes = recorder.finish().unwrap().into_inner();
    let (_, channels) = read_wav(&bytes);
    assert_eq!(channels[0].len(), channels[1].len());
    assert_eq!(channels[0].len(), 155 * 160);
    assert!(amplitude_at(&channels[0][1600..20000], 440.0, 8000) > 6000.0);
    assert!(amplitude_at(&channels[0][1600..20000], 1000.0, 8000) < 300.0);
    assert!(amplitude_at(&channels[1][1600..20000], 1000.0, 8000) > 6000.0);
    assert!(amplitude_at(&channels[1][1600..20000], 440.0, 8000) < 300.0);
}

#[test]
fn a_prompt_plays_before_anyone_answers_and_then_silence() {
    let t0 = origin();
    let mut bridge = Bridge::new(t0);
    bridge.add_leg(Side::Customer, leg(Codec::Pcma, 1));
    let codec = bridge.codec(Side::Customer).unwrap();
    let prompt: Vec<[u8; FRAME_SAMPLES]> = (0..5)
        .map(|i| {
            let samples = tone(700.0, 8000, 8000.0, i * FRAME_SAMPLES, FRAME_SAMPLES);
            std::array::from_fn(|n| codec.encode(samples[n]))
        })
        .collect();
    bridge.play(Side::Customer, prompt.clone());
    assert!(bridge.is_playing(Side::Customer));
    let mut heard = Vec::new();
    for n in 0..8u64 {
        let tick = bridge.tick(t0 + Duration::from_millis(20 * n));
        assert_eq!(tick.heard[1], None);
        let (side, packet) = &tick.send[0];
        assert_eq!(*side, Side::Customer);
        let parsed = RtpPacket::parse(packet).unwrap();
        assert_eq!(parsed.header.marker, n == 0);
        assert_eq!(parsed.header.sequence, 40_000 + n as u16);
        assert_eq!(parsed.header.timestamp, 123_456 + 160 * n as u32);
        assert_eq!(parsed.header.payload_type, 8);
        heard.push(parsed.payload.to_vec());
    }
    assert_eq!(heard[..5].concat(), prompt.concat());
    let silence = Codec::Pcma.decode_frame(&heard[5..].concat());
    assert_eq!(rms(&silence), 8.0); // A-law's quietest code is ±8
    assert!(!bridge.is_playing(Side::Customer));
    assert_eq!(bridge.remove_leg(Side::Customer).unwrap().sent, 8);
}
