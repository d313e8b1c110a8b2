//! DTMF as RFC 4733 telephone events: the payload, a detector that turns received
//! packets into keys, and the packets that send a key.
//!
//! One key press is one event: every packet of it carries the same RTP timestamp (the
//! event's start) and a growing duration; the last carries the end bit and is sent
//! three times (§2.5.1.4) because it has no retransmission. The detector reports a key
//! once, on its first end packet, and remembers the timestamp so the copies are ignored.

use std::time::{Duration, Instant};

use crate::Error;
use crate::rtp::RtpHeader;

/// The clock of telephone events negotiated by genkan's SDP (`telephone-event/8000`).
const CLOCK_RATE: u32 = 8000;

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–9 the digits, 10 `*`, 11 `#`, 12–15 A–D, 16 flash.
    pub event: u8,
    /// The event has ended; this is one of its final packets.
    pub end: bool,
    /// Power level in -dBm0, 0–63 (larger is quieter).
    pub volume: u8,
    /// Duration so far, in timestamp units (1/8000 s).
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event of a payload. Longer payloads (RFC 2198 redundancy is not
    /// negotiated, but several events may be stacked) are read for their first only.
    pub fn parse(payload: &[u8]) -> Result<Self, Error> {
        let Some(bytes) = payload.first_chunk::<4>() else {
            return Err(Error::TelephoneEventTooShort { len: payload.len() });
        };
        Ok(Self {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The four payload bytes (the reserved bit is zero).
    pub fn to_bytes(self) -> [u8; 4] {
        let duration = self.duration.to_be_bytes();
        [
            self.event,
            u8::from(self.end) << 7 | (self.volume & 0x3F),
            duration[0],
            duration[1],
        ]
    }

    /// The DTMF key of the event, if it is one.
    pub fn key(self) -> Option<char> {
        key_of(self.event)
    }
}

/// The key of an event code: `0`–`9`, `*`, `#`, `A`–`D`.
pub fn key_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The event code of a key (lower-case `a`–`d` accepted).
pub fn event_of(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(key as u8 - b'A' + 12),
        'a'..='d' => Some(key as u8 - b'a' + 12),
        _ => None,
    }
}

/// A key that was pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// The key.
    pub key: char,
    /// How long it was held, as far as the packets said.
    pub duration: Duration,
}

/// Turns a leg's telephone-event packets into keys, each once.
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    /// The event in progress: its timestamp, what its packets said so far, and when the
    /// last one arrived.
    current: Option<(u32, TelephoneEvent, Instant)>,
    /// Timestamps of events already reported, newest last: their remaining end packets
    /// and any stragglers are ignored.
    reported: Vec<u32>,
}

/// An event whose end packets were all lost is reported this long after its last packet.
pub const LOST_END_TIMEOUT: Duration = Duration::from_millis(500);

impl DtmfDetector {
    /// A detector with nothing heard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one telephone-event packet that arrived at `now`; returns the key pressed,
    /// once per event (or the previous key, when this packet starts a new event before
    /// the previous one's end arrived). Malformed payloads are ignored: a lost key is
    /// better than a call dropped over it.
    pub fn push(&mut self, header: &RtpHeader, payload: &[u8], now: Instant) -> Option<Digit> {
        let event = TelephoneEvent::parse(payload).ok()?;
        let timestamp = header.timestamp;
        if self.reported.contains(&timestamp) {
            return None;
        }
        let mut earlier = None;
        match &mut self.current {
            Some((current, seen, at)) if *current == timestamp => {
                seen.duration = seen.duration.max(event.duration);
                *at = now;
            }
            _ => {
                // A new event; one still open lost its end packets, so report it now.
                earlier = self.take_current();
                self.current = Some((timestamp, event, now));
            }
        }
        if event.end {
            return earlier.or_else(|| self.take_current());
        }
        earlier
    }

    /// Reports an event whose end never came, once [`LOST_END_TIMEOUT`] has passed
    /// since its last packet. Call it from the leg's tick.
    pub fn poll(&mut self, now: Instant) -> Option<Digit> {
        let (_, _, at) = self.current.as_ref()?;
        if now.saturating_duration_since(*at) < LOST_END_TIMEOUT {
            return None;
        }
        self.take_current()
    }

    fn take_current(&mut self) -> Option<Digit> {
        let (timestamp, event, _) = self.current.take()?;
        // Four is plenty: copies of an end packet arrive within a few tens of ms.
        if self.reported.len() == 4 {
            self.reported.remove(0);
        }
        self.reported.push(timestamp);
        Some(Digit {
            key: event.key()?,
            duration: Duration::from_micros(
                u64::from(event.duration) * 1_000_000 / u64::from(CLOCK_RATE),
            ),
        })
    }
}

/// The packets that send one key: RFC 4733 §2.5's sequence for a sender that emits one
/// packet per 20 ms, with the end packet three times.
///
/// `header` gives payload type, SSRC, the first sequence number and the event's start
/// timestamp (the audio clock at the key press); each packet goes out 20 ms after the
/// previous, except the three end packets, which may go back to back. Returns the
/// packets and the sequence number after the last one. The caller should pause its
/// audio packets for the event's duration and resume with a timestamp past its end.
pub fn key_packets(
    key: char,
    duration: Duration,
    volume: u8,
    header: &RtpHeader,
) -> Result<(Vec<Vec<u8>>, u16), Error> {
    let Some(event) = event_of(key) else {
        return Err(Error::NotDtmfKey(key));
    };
    let total = u16::try_from(duration.as_millis() * u128::from(CLOCK_RATE) / 1000)
        .unwrap_or(u16::MAX)
        .max(160);
    let mut packets = Vec::new();
    let mut header = header.clone();
    let mut send = |header: &mut RtpHeader, end: bool, elapsed: u16| -> Result<(), Error> {
        let payload = TelephoneEvent {
            event,
            end,
            volume,
            duration: elapsed,
        };
        packets.push(header.to_packet(&payload.to_bytes())?);
        header.sequence = header.sequence.wrapping_add(1);
        header.marker = false;
        Ok(())
    };
    header.marker = true;
    let mut elapsed: u16 = 160;
    while elapsed < total {
        send(&mut header, false, elapsed)?;
        elapsed = elapsed.saturating_add(160);
    }
    for _ in 0..3 {
        send(&mut header, true, total)?;
    }
    Ok((packets, header.sequence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpPacket;

    #[allow(clippy::disallowed_methods)] // an origin only; every time is origin + offset
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn payload_parses_and_prints() {
        let event = TelephoneEvent::parse(&[11, 0x8A, 0x03, 0x20]).unwrap();
        assert_eq!(
            event,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(event.key(), Some('#'));
        assert_eq!(event.to_bytes(), [11, 0x8A, 0x03, 0x20]);
        // The reserved bit is ignored on input.
        assert_eq!(TelephoneEvent::parse(&[1, 0x4A, 0, 0]).unwrap().volume, 10);
        assert!(matches!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(Error::TelephoneEventTooShort { len: 3 })
        ));
    }

    #[test]
    fn keys_and_codes_map_both_ways() {
        for code in 0..16 {
            assert_eq!(event_of(key_of(code).unwrap()), Some(code));
        }
        assert_eq!(key_of(16), None);
        assert_eq!(event_of('d'), Some(15));
        assert_eq!(event_of('x'), None);
    }

    fn feed(detector: &mut DtmfDetector, packets: &[Vec<u8>], at: Instant) -> String {
        packets
            .iter()
            .filter_map(|bytes| {
                let packet = RtpPacket::parse(bytes).unwrap();
                detector.push(&packet.header, packet.payload, at)
            })
            .map(|digit| digit.key)
            .collect()
    }

    #[test]
    fn sent_keys_are_detected_once_each() {
        let t0 = origin();
        let mut detector = DtmfDetector::new();
        let mut header = RtpHeader::new(101, 65530, 8000, 5);
        let mut heard = String::new();
        for key in ['1', '2', '2', '#'] {
            let (packets, next) =
                key_packets(key, Duration::from_millis(100), 10, &header).unwrap();
            // Five packets of 20 ms, the last of them as three end packets.
            assert_eq!(packets.len(), 4 + 3);
            let first = RtpPacket::parse(&packets[0]).unwrap();
            assert!(first.header.marker);
            heard.push_str(&feed(&mut detector, &packets, t0));
            header.sequence = next;
            header.timestamp += 8000;
        }
        assert_eq!(heard, "122#");
    }

    #[test]
    fn duration_is_reported_from_the_end_packet() {
        let t0 = origin();
        let mut detector = DtmfDetector::new();
        let header = RtpHeader::new(101, 1, 0, 5);
        let (packets, _) = key_packets('5', Duration::from_millis(240), 0, &header).unwrap();
        let packet = RtpPacket::parse(&packets[packets.len() - 1]).unwrap();
        let digit = detector.push(&packet.header, packet.payload, t0).unwrap();
        assert_eq!(digit.duration, Duration::from_millis(240));
    }

    #[test]
    fn lost_end_packets_are_covered_by_the_next_event_or_a_timeout() {
        let t0 = origin();
        let mut detector = DtmfDetector::new();
        let (first, next) = key_packets(
            '7',
            Duration::from_millis(60),
            0,
            &RtpHeader::new(101, 1, 0, 5),
        )
        .unwrap();
        // Drop all three end packets of '7'.
        assert_eq!(feed(&mut detector, &first[..first.len() - 3], t0), "");
        let (second, _) = key_packets(
            '8',
            Duration::from_millis(60),
            0,
            &RtpHeader::new(101, next, 960, 5),
        )
        .unwrap();
        assert_eq!(feed(&mut detector, &second, t0), "78");

        let (third, _) = key_packets(
            '9',
            Duration::from_millis(60),
            0,
            &RtpHeader::new(101, 40, 4000, 5),
        )
        .unwrap();
        assert_eq!(feed(&mut detector, &third[..2], t0), "");
        assert_eq!(detector.poll(t0 + Duration::from_millis(100)), None);
        let late = detector.poll(t0 + LOST_END_TIMEOUT).map(|digit| digit.key);
        assert_eq!(late, Some('9'));
        // Stragglers of a reported event stay quiet.
        assert_eq!(feed(&mut detector, &third, t0), "");
    }

    #[test]
    fn not_a_key_is_refused() {
        let header = RtpHeader::new(101, 1, 0, 5);
        assert!(matches!(
            key_packets('x', Duration::from_millis(100), 0, &header),
            Err(Error::NotDtmfKey('x'))
        ));
    }
}
