//! A small jitter buffer that never stalls: one frame out per 20 ms tick, whatever
//! arrived.
//!
//! Packets are slotted by RTP timestamp rather than sequence number, because
//! telephone-event packets share the sequence space of the audio (RFC 4733 §2.1) and
//! would otherwise leave holes that look like loss. The driver calls [`Playout::push`]
//! for every audio packet of the leg and [`Playout::tick`] every 20 ms; each tick plays
//! the slot at the play head, or conceals it (the previous frame once, then silence)
//! and moves on, so a late or lost packet costs one slot, never the call.
//!
//! Assumes 20 ms packets (160 samples at 8 kHz), which is what genkan's SDP asks for
//! (`a=ptime:20`) and what Chromium and sipp send.

use std::collections::BTreeMap;

use crate::g711::{Codec, FRAME_SAMPLES};
use crate::rtp::RtpPacket;

const SLOT: u64 = FRAME_SAMPLES as u64;

/// How deep the buffer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayoutConfig {
    /// Slots of delay before the first packet of a stream (or after a resync) plays: the
    /// jitter it absorbs. Three slots is 60 ms.
    pub delay_slots: u64,
    /// The most slots the buffer may hold ahead of the play head; when a sender's clock
    /// runs fast and the buffer grows past this, the oldest slots are skipped so delay
    /// cannot creep up. A packet further ahead than `resync_slots` is not buffered but
    /// resynchronises.
    pub max_slots: u64,
    /// A timestamp jump (either way) of more slots than this is a new stream (new
    /// talkspurt after a long pause, a restarted sender, another SSRC): the buffer
    /// starts over from it.
    pub resync_slots: u64,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        Self {
            delay_slots: 3,
            max_slots: 10,
            resync_slots: 50,
        }
    }
}

/// How a tick's frame was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// The packet for this slot arrived in time.
    Received,
    /// It did not; the previous frame is played again (once), which hides a single lost
    /// packet better than a gap of silence.
    Repeated,
    /// Nothing to play: before the first packet, while buffering, or after a repeat.
    Silence,
}

/// What a tick plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Played {
    /// The G.711 payload, always 160 bytes (20 ms): a shorter packet is padded with
    /// silence, a longer one cut.
    pub payload: Vec<u8>,
    /// Where it came from.
    pub fill: Fill,
    /// The RTP timestamp of the slot in the sender's clock, when the stream is playing.
    pub timestamp: Option<u32>,
}

/// Counters for the call record; loss and jitter proper are in [`crate::ReceiveStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlayoutCounters {
    /// Packets that arrived after their slot had played.
    pub late: u64,
    /// Packets whose slot was already filled.
    pub duplicate: u64,
    /// Slots played from a packet.
    pub played: u64,
    /// Slots concealed (repeat or silence) while a stream was playing.
    pub concealed: u64,
    /// Slots skipped to keep the delay bounded.
    pub skipped: u64,
    /// Times the buffer started over.
    pub resyncs: u64,
}

/// The playout of one received stream.
#[derive(Debug, Clone)]
pub struct Playout {
    config: PlayoutConfig,
    codec: Codec,
    /// The SSRC being played, set by the first packet.
    ssrc: Option<u32>,
    /// The slot to play next, as an extended (non-wrapping) RTP timestamp.
    head: u64,
    /// Ticks of silence left before the head starts moving.
    buffering: u64,
    slots: BTreeMap<u64, Vec<u8>>,
    last: Option<Vec<u8>>,
    repeated: bool,
    counters: PlayoutCounters,
}

impl Playout {
    /// An empty playout for a leg speaking `codec`.
    pub fn new(codec: Codec, config: PlayoutConfig) -> Self {
        Self {
            config,
            codec,
            ssrc: None,
            head: 0,
            buffering: 0,
            slots: BTreeMap::new(),
            last: None,
            repeated: false,
            counters: PlayoutCounters::default(),
        }
    }

    /// Takes one audio packet of this leg.
    pub fn push(&mut self, packet: &RtpPacket<'_>) {
        let header = &packet.header;
        if self.ssrc != Some(header.ssrc) {
            self.resync(header.ssrc, header.timestamp);
        }
        // Extend the 32-bit timestamp around the head: packets are near it.
        let offset = i64::from(header.timestamp.wrapping_sub(self.head as u32) as i32);
        let resync_span =
            i64::try_from(self.config.resync_slots.saturating_mul(SLOT)).unwrap_or(i64::MAX);
        if offset.abs() > resync_span {
            self.resync(header.ssrc, header.timestamp);
            return self.push(packet);
        }
        if offset < 0 {
            self.counters.late += 1;
            return;
        }
        // Round to the nearest slot, so a sender whose timestamps are not multiples of
        // 160 from its first packet still lands one packet per slot.
        let slot = self.head + (offset as u64 + SLOT / 2) / SLOT * SLOT;
        if self.slots.contains_key(&slot) {
            self.counters.duplicate += 1;
            return;
        }
        // Every frame out is exactly 20 ms, so the other leg and the recording stay in
        // step even when a peer ignores the negotiated packet time.
        let mut payload = packet.payload.to_vec();
        payload.resize(FRAME_SAMPLES, self.codec.silence());
        self.slots.insert(slot, payload);
    }

    /// Plays the next 20 ms; call once per tick whether or not packets arrived.
    pub fn tick(&mut self) -> Played {
        if self.ssrc.is_none() || self.buffering > 0 {
            self.buffering = self.buffering.saturating_sub(1);
            return self.silence(None);
        }
        // Keep the delay bounded: skip the oldest slots when too much is waiting.
        while let Some((&newest, _)) = self.slots.last_key_value() {
            if newest
                < self
                    .head
                    .saturating_add(self.config.max_slots.saturating_mul(SLOT))
            {
                break;
            }
            self.slots.retain(|slot, _| *slot > self.head);
            self.head += SLOT;
            self.counters.skipped += 1;
        }
        let timestamp = Some(self.head as u32);
        let played = match self.slots.remove(&self.head) {
            Some(payload) => {
                self.counters.played += 1;
                self.repeated = false;
                self.last = Some(payload.clone());
                Played {
                    payload,
                    fill: Fill::Received,
                    timestamp,
                }
            }
            None => {
                self.counters.concealed += 1;
                match (&self.last, self.repeated) {
                    (Some(last), false) => {
                        self.repeated = true;
                        Played {
                            payload: last.clone(),
                            fill: Fill::Repeated,
                            timestamp,
                        }
                    }
                    _ => self.silence(timestamp),
                }
            }
        };
        self.head += SLOT;
        played
    }

    /// The counters so far.
    pub fn counters(&self) -> PlayoutCounters {
        self.counters
    }

    fn resync(&mut self, ssrc: u32, timestamp: u32) {
        if self.ssrc.is_some() {
            self.counters.resyncs += 1;
        }
        self.ssrc = Some(ssrc);
        // Start the extended clock high so that wrapping below the first packet's
        // timestamp never underflows.
        self.head = (1 << 40) + u64::from(timestamp);
        self.buffering = self.config.delay_slots;
        self.slots.clear();
        self.last = None;
        self.repeated = false;
    }

    fn silence(&self, timestamp: Option<u32>) -> Played {
        Played {
            payload: vec![self.codec.silence(); FRAME_SAMPLES],
            fill: Fill::Silence,
            timestamp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;

    const SSRC: u32 = 7;

    fn push(playout: &mut Playout, ssrc: u32, sequence: u16, timestamp: u32) {
        // The payload names the packet, so a test can see which one played.
        let payload = [sequence as u8; 160];
        let packet = RtpPacket {
            header: RtpHeader::new(0, sequence, timestamp, ssrc),
            extension_profile: None,
            payload: &payload,
        };
        playout.push(&packet);
    }

    fn config() -> PlayoutConfig {
        PlayoutConfig {
            delay_slots: 2,
            max_slots: 6,
            resync_slots: 20,
        }
    }

    /// Ticks `n` times and writes what played: the packet number, `r` for a repeat of
    /// the previous one, `.` for silence.
    fn play(playout: &mut Playout, n: usize) -> String {
        (0..n)
            .map(|_| {
                let played = playout.tick();
                assert_eq!(played.payload.len(), 160);
                match played.fill {
                    Fill::Received => char::from(b'a' + played.payload[0] % 26),
                    Fill::Repeated => 'r',
                    Fill::Silence => '.',
                }
            })
            .collect()
    }

    #[test]
    fn plays_in_order_after_the_delay() {
        let mut playout = Playout::new(Codec::Pcmu, config());
        assert_eq!(play(&mut playout, 2), "..");
        for n in 0..4 {
            push(&mut playout, SSRC, n, 1000 + 160 * u32::from(n));
        }
        assert_eq!(play(&mut playout, 7), "..abcdr");
        assert_eq!(playout.tick().payload, [0xFF; 160]);
    }

    #[test]
    fn reorders_drops_duplicates_and_conceals_loss() {
        let config = PlayoutConfig {
            max_slots: 10,
            ..config()
        };
        let mut playout = Playout::new(Codec::Pcma, config);
        // 0, 2, 1, 1 (duplicate), 3 lost, 4, 5 lost, 6 lost, 7.
        for n in [0u16, 2, 1, 1, 4, 7] {
            push(&mut playout, SSRC, n, 160 * u32::from(n));
        }
        // Another packet for slot 1 does not replace the one that came first.
        push(&mut playout, SSRC, 9, 160);
        assert_eq!(play(&mut playout, 2 + 9), "..abcrer.hr");
        assert_eq!(playout.counters().duplicate, 2);
        assert_eq!(playout.counters().concealed, 4);
        // A packet whose slot has played is late, not played out of turn.
        push(&mut playout, SSRC, 3, 160 * 3);
        assert_eq!(playout.counters().late, 1);
        let silence = playout.tick();
        assert_eq!((silence.fill, silence.payload[0]), (Fill::Silence, 0xD5));
    }

    #[test]
    fn never_stalls_when_nothing_arrives() {
        let mut playout = Playout::new(Codec::Pcmu, config());
        push(&mut playout, SSRC, 0, 0);
        assert_eq!(play(&mut playout, 6), "..ar..");
        assert_eq!(play(&mut playout, 100), ".".repeat(100));
    }

    #[test]
    fn resyncs_on_a_jump_or_a_new_ssrc_and_across_the_wrap() {
        let mut playout = Playout::new(Codec::Pcmu, config());
        push(&mut playout, SSRC, 0, u32::MAX - 159);
        push(&mut playout, SSRC, 1, 0); // the timestamp wrapped
        assert_eq!(play(&mut playout, 4), "..ab");
        // A new talkspurt far ahead in time: starts over with the delay.
        push(&mut playout, SSRC, 2, 1_000_000);
        push(&mut playout, SSRC, 3, 1_000_160);
        assert_eq!(play(&mut playout, 4), "..cd");
        // Another sender: the same.
        push(&mut playout, SSRC + 1, 4, 5);
        assert_eq!(play(&mut playout, 3), "..e");
        assert_eq!(playout.counters().resyncs, 2);
    }

    #[test]
    fn a_fast_sender_cannot_make_delay_grow() {
        let mut playout = Playout::new(Codec::Pcmu, config());
        // Two packets per tick: the buffer would grow forever without skipping.
        let mut n = 0u16;
        let mut out = String::new();
        for _ in 0..40 {
            for _ in 0..2 {
                push(&mut playout, SSRC, n, 160 * u32::from(n));
                n += 1;
            }
            out.push_str(&play(&mut playout, 1));
            assert!(playout.slots.len() <= 6, "buffer grew: {out}");
        }
        assert!(playout.counters().skipped > 0);
        assert!(!out.ends_with('.'), "{out}");
    }
}
