//! Receive statistics for one RTP stream, computed as RFC 3550 Appendix A.1 and A.8 do.
//!
//! These are the numbers a call record carries (packets, loss, jitter) and the ones a
//! receiver report would. "Lost" is expected minus received, so duplicates can make it
//! negative, as the RFC says it may.

use std::time::{Duration, Instant};

use crate::rtp::RtpHeader;

/// A jump larger than this (in sequence numbers) is not a gap but a restart, unless two
/// packets in a row confirm it (RFC 3550's `MAX_DROPOUT`).
const MAX_DROPOUT: u16 = 3000;
/// Sequence numbers this far behind the highest are late packets, not a restart.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u64 = 1 << 16;

/// Receive statistics for one SSRC.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    state: Option<State>,
}

#[derive(Debug, Clone)]
struct State {
    ssrc: u32,
    /// Highest sequence number seen, and the wraps before it (the "extended" number is
    /// `cycles + max_seq`).
    max_seq: u16,
    cycles: u64,
    base_seq: u64,
    /// After a suspicious jump, the sequence number that would confirm a restart.
    bad_seq: Option<u16>,
    received: u64,
    /// Arrival clock origin and the previous packet's relative transit time, in RTP
    /// timestamp units.
    origin: Instant,
    last_transit: Option<i64>,
    /// Interarrival jitter in timestamp units, times 16 (A.8's fixed-point form).
    jitter_x16: u64,
}

/// A snapshot of the statistics, for a call record or a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// The SSRC these figures are about (0 before the first packet).
    pub ssrc: u32,
    /// Packets received, duplicates included.
    pub received: u64,
    /// Packets expected from the first and highest sequence numbers seen.
    pub expected: u64,
    /// `expected - received`; negative when duplicates outnumber losses.
    pub lost: i64,
    /// Interarrival jitter.
    pub jitter: Duration,
}

impl ReceiveStats {
    /// Statistics for a stream whose RTP clock runs at `clock_rate` Hz (8000 for G.711).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            state: None,
        }
    }

    /// Counts one packet that arrived at `now`. Returns false when the packet was not
    /// counted: it belongs to another SSRC than the one being measured, or it is the
    /// first of a suspicious sequence jump (the next one in line confirms the restart).
    pub fn record(&mut self, header: &RtpHeader, now: Instant) -> bool {
        self.count(header, now, true)
    }

    /// Counts a packet of the stream whose timestamp does not follow its sampling clock
    /// packet by packet: a telephone event, whose packets all carry the event's start
    /// (RFC 4733 §2.5.1.2). It shares the audio's sequence numbers, so leaving it out
    /// would count it as lost; timing it would count the event's length as jitter.
    pub fn record_untimed(&mut self, header: &RtpHeader, now: Instant) -> bool {
        self.count(header, now, false)
    }

    fn count(&mut self, header: &RtpHeader, now: Instant, timed: bool) -> bool {
        let Some(state) = &mut self.state else {
            self.state = Some(State::start(header, now));
            return true;
        };
        if header.ssrc != state.ssrc {
            return false;
        }
        let seq = header.sequence;
        let delta = seq.wrapping_sub(state.max_seq);
        if delta < MAX_DROPOUT {
            // In order, possibly with a gap.
            if seq < state.max_seq {
                state.cycles += SEQ_MOD;
            }
            state.max_seq = seq;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A very large jump: the sender restarted, or this is a stray packet.
            if state.bad_seq == Some(seq) {
                // Two in a row: a restart. Measure afresh, as A.1's init_seq does.
                *state = State::start(header, now);
                return true;
            }
            state.bad_seq = Some(seq.wrapping_add(1));
            return false;
        }
        // Otherwise a duplicate or a late packet within MAX_MISORDER: counted below.
        state.bad_seq = None;
        state.received += 1;
        if timed {
            state.update_jitter(header.timestamp, now, self.clock_rate);
        }
        true
    }

    /// The figures so far.
    pub fn summary(&self) -> Summary {
        let Some(state) = &self.state else {
            return Summary::default();
        };
        let expected = (state.cycles + u64::from(state.max_seq) + 1).saturating_sub(state.base_seq);
        let jitter_units = state.jitter_x16 >> 4;
        Summary {
            ssrc: state.ssrc,
            received: state.received,
            expected,
            lost: expected as i64 - state.received as i64,
            jitter: Duration::from_micros(jitter_units * 1_000_000 / u64::from(self.clock_rate)),
        }
    }
}

impl State {
    fn start(header: &RtpHeader, now: Instant) -> Self {
        let mut state = Self {
            ssrc: header.ssrc,
            max_seq: header.sequence,
            cycles: 0,
            base_seq: u64::from(header.sequence),
            bad_seq: None,
            received: 1,
            origin: now,
            last_transit: None,
            jitter_x16: 0,
        };
        state.last_transit = Some(state.transit(header.timestamp, now, 1));
        state
    }

    /// Arrival time minus RTP timestamp, both in timestamp units; only differences of it
    /// mean anything, so the arbitrary origins cancel out.
    fn transit(&self, timestamp: u32, now: Instant, clock_rate: u32) -> i64 {
        let elapsed = now.saturating_duration_since(self.origin);
        let arrival = elapsed.as_micros() as i64 * i64::from(clock_rate) / 1_000_000;
        arrival - i64::from(timestamp)
    }

    fn update_jitter(&mut self, timestamp: u32, now: Instant, clock_rate: u32) {
        let transit = self.transit(timestamp, now, clock_rate);
        if let Some(last) = self.last_transit {
            // Timestamps wrap at 2^32; the difference of two transits is small unless the
            // stream restarted, so fold it into the i32 range.
            let d = i64::from((transit - last) as i32).unsigned_abs();
            // J += (|D| - J) / 16, in fixed point with J scaled by 16 (A.8).
            self.jitter_x16 = (self.jitter_x16 + d).saturating_sub((self.jitter_x16 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(sequence: u16, timestamp: u32) -> RtpHeader {
        RtpHeader::new(0, sequence, timestamp, 42)
    }

    #[allow(clippy::disallowed_methods)] // an origin only; every time is origin + offset
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn counts_loss_across_the_sequence_wrap() {
        let t0 = origin();
        let mut stats = ReceiveStats::new(8000);
        // 65530 … 65535, 0 … 9 with 3 and 65533 lost: 16 expected, 14 received.
        let mut n = 0;
        for seq in (65530..=65535).chain(0..10) {
            n += 1;
            if seq == 3 || seq == 65533 {
                continue;
            }
            let at = t0 + Duration::from_millis(20 * n);
            assert!(stats.record(&packet(seq, 160 * n as u32), at));
        }
        let summary = stats.summary();
        assert_eq!(summary.expected, 16);
        assert_eq!(summary.received, 14);
        assert_eq!(summary.lost, 2);
        assert_eq!(summary.jitter, Duration::ZERO);
    }

    #[test]
    fn late_and_duplicate_packets_are_counted_as_received() {
        let t0 = origin();
        let mut stats = ReceiveStats::new(8000);
        for seq in [1, 2, 4, 3, 4] {
            stats.record(&packet(seq, 160 * u32::from(seq)), t0);
        }
        let summary = stats.summary();
        assert_eq!(
            (summary.expected, summary.received, summary.lost),
            (4, 5, -1)
        );
    }

    #[test]
    fn jitter_follows_rfc_3550() {
        let t0 = origin();
        let mut stats = ReceiveStats::new(8000);
        // Packets every 20 ms of media; arrivals alternate 0 and +10 ms late, so |D| is
        // 80 timestamp units for every packet after the first.
        let mut expected_jitter = 0.0_f64;
        for n in 0..200u32 {
            let late = if n % 2 == 1 { 10 } else { 0 };
            let at = t0 + Duration::from_millis(u64::from(20 * n + late));
            stats.record(&packet(n as u16, 160 * n), at);
            if n > 0 {
                expected_jitter += (80.0 - expected_jitter) / 16.0;
            }
        }
        let jitter_ms = stats.summary().jitter.as_secs_f64() * 1000.0;
        let expected_ms = expected_jitter / 8.0;
        assert!(
            (jitter_ms - expected_ms).abs() < 0.2,
            "jitter {jitter_ms} ms, expected {expected_ms} ms"
        );
        assert!(jitter_ms > 9.0, "converges towards 10 ms: {jitter_ms}");
    }

    #[test]
    fn telephone_events_fill_the_sequence_without_adding_jitter() {
        let t0 = origin();
        let mut stats = ReceiveStats::new(8000);
        for n in 0..20u16 {
            let at = t0 + Duration::from_millis(20 * u64::from(n));
            if (5..10).contains(&n) {
                // An event that started at packet 5: its timestamp stays put.
                assert!(stats.record_untimed(&packet(n, 800), at));
            } else {
                assert!(stats.record(&packet(n, 160 * u32::from(n)), at));
            }
        }
        let summary = stats.summary();
        assert_eq!((summary.expected, summary.lost), (20, 0));
        assert_eq!(summary.jitter, Duration::ZERO);
    }

    #[test]
    fn a_confirmed_jump_restarts_and_a_stray_one_is_ignored() {
        let t0 = origin();
        let mut stats = ReceiveStats::new(8000);
        for seq in 0..10 {
            stats.record(&packet(seq, 0), t0);
        }
        // One stray packet far ahead: not counted, and the stream goes on.
        assert!(!stats.record(&packet(40_000, 0), t0));
        assert!(stats.record(&packet(10, 0), t0));
        assert_eq!(stats.summary().expected, 11);
        // Two in a row far ahead: a restart.
        assert!(!stats.record(&packet(20_000, 0), t0));
        assert!(stats.record(&packet(20_001, 0), t0));
        assert!(stats.record(&packet(20_002, 0), t0));
        let summary = stats.summary();
        assert_eq!((summary.expected, summary.received), (2, 2));
        // Another SSRC is not this stream.
        assert!(!stats.record(&RtpHeader::new(0, 20_003, 0, 43), t0));
    }
}
