//! Nothing a peer or an uploader sends can panic the crate, and what is written reads
//! back.

use std::time::{Duration, Instant};

use media::{
    Codec, Datagram, DtmfDetector, Fill, Playout, PlayoutConfig, ReceiveStats, RtpHeader,
    RtpPacket, TelephoneEvent, decode_prompt, demux, recover,
};
use proptest::prelude::*;

fn header() -> impl Strategy<Value = RtpHeader> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u32>(), 0..16),
    )
        .prop_map(
            |(marker, payload_type, sequence, timestamp, ssrc, csrcs)| RtpHeader {
                marker,
                payload_type,
                sequence,
                timestamp,
                ssrc,
                csrcs,
            },
        )
}

#[allow(clippy::disallowed_methods)] // an origin only; every time is origin + offset
fn origin() -> Instant {
    Instant::now()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(Datagram::Rtp(packet)) = demux(&bytes) {
            prop_assert!(packet.payload.len() + 12 <= bytes.len());
            let _ = TelephoneEvent::parse(packet.payload);
        }
        let _ = RtpPacket::parse(&bytes);
        let _ = decode_prompt(&bytes, Codec::Pcmu);
        let _ = recover(&bytes);
        let _ = media::wav::layout(&bytes);
    }

    #[test]
    fn written_headers_parse_back(header in header(), payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let bytes = header.to_packet(&payload).unwrap();
        let packet = RtpPacket::parse(&bytes).unwrap();
        prop_assert_eq!(&packet.header, &header);
        prop_assert_eq!(packet.payload, &payload[..]);
    }

    #[test]
    fn telephone_events_round_trip(event in any::<u8>(), end in any::<bool>(), volume in 0u8..64, duration in any::<u16>()) {
        let event = TelephoneEvent { event, end, volume, duration };
        prop_assert_eq!(TelephoneEvent::parse(&event.to_bytes()).unwrap(), event);
    }

    /// Whatever packets arrive (any order, SSRC, sequence, timestamp, size), every
    /// tick plays one frame, the receive statistics and the DTMF detector keep going.
    #[test]
    fn a_leg_never_stalls_or_panics(
        steps in proptest::collection::vec(
            (0u8..4, any::<u32>(), any::<u16>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..200)),
            0..200,
        ),
    ) {
        let t0 = origin();
        let mut playout = Playout::new(Codec::Pcmu, PlayoutConfig::default());
        let mut stats = ReceiveStats::new(8000);
        let mut dtmf = DtmfDetector::new();
        for (i, (kind, ssrc, sequence, timestamp, payload)) in steps.iter().enumerate() {
            let now = t0 + Duration::from_millis(7 * i as u64);
            let header = RtpHeader::new(0, *sequence, *timestamp, ssrc % 3);
            let packet = RtpPacket { header, extension_profile: None, payload };
            match kind {
                0 => {
                    let played = playout.tick();
                    prop_assert_eq!(played.payload.len(), 160);
                    if played.fill == Fill::Silence {
                        prop_assert!(played.payload.iter().all(|code| *code == 0xFF));
                    }
                }
                1 => playout.push(&packet),
                2 => {
                    stats.record(&packet.header, now);
                    let summary = stats.summary();
                    prop_assert!(summary.received <= i as u64 + 1);
                }
                _ => {
                    let _ = dtmf.push(&packet.header, payload, now);
                    let _ = dtmf.poll(now);
                }
            }
        }
    }
}
