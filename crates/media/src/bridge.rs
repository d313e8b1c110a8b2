//! The media of one call: up to two legs (customer and agent), what each hears, what is
//! recorded, and the numbers for the call record.
//!
//! The driver owns the sockets and a 20 ms timer. It hands every datagram from a leg to
//! [`Bridge::receive`] and, whenever [`Bridge::next_tick`] has passed, calls
//! [`Bridge::tick`], which returns one RTP packet per leg to send and the two decoded
//! frames to give the recorder. Each leg hears, in order of preference: a prompt queued
//! for it, the other leg's audio, or silence; it always gets a packet, so a silent or
//! vanished peer never stalls the other side, and the outgoing stream keeps a steady
//! clock. Legs may speak different G.711 laws; audio is transcoded per frame.
//!
//! A leg can be put on hold ([`Bridge::set_hold`], a re-INVITE's `sendonly` or `inactive`):
//! while it is, its audio reaches neither the other leg nor the recording (both get
//! silence in its place), and it is sent silence itself. Packets keep flowing both ways
//! every 20 ms, so neither stream's clock jumps when the hold ends.
//!
//! Telephone events are turned into keys and reported, not forwarded: the contact
//! center decides what a key means. A leg that should hear a key can be sent one with
//! [`crate::dtmf::key_packets`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dtmf::{Digit, DtmfDetector};
use crate::g711::{Codec, FRAME_SAMPLES, Frame};
use crate::playout::{Fill, Playout, PlayoutConfig, PlayoutCounters};
use crate::recording::Side;
use crate::rtp::{Datagram, RtpHeader, demux};
use crate::stats::{ReceiveStats, Summary};

/// What one leg negotiated, and the random starting points of what genkan sends it
/// (RFC 3550 wants SSRC, sequence number and timestamp to start at random values; the
/// caller has the RNG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegConfig {
    /// The G.711 law of the leg.
    pub codec: Codec,
    /// The dynamic payload type of `telephone-event`, if negotiated.
    pub telephone_event: Option<u8>,
    /// The SSRC genkan sends with.
    pub ssrc: u32,
    /// The first sequence number genkan sends.
    pub first_sequence: u16,
    /// The first timestamp genkan sends.
    pub first_timestamp: u32,
    /// The jitter buffer's depth.
    pub playout: PlayoutConfig,
}

/// Counters of one leg for the call record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegStats {
    /// RFC 3550 receive statistics of the leg's audio.
    pub receive: Summary,
    /// What the jitter buffer did.
    pub playout: PlayoutCounters,
    /// Datagrams that were not RTP (and not RTCP).
    pub malformed: u64,
    /// RTP packets of a payload type that was not negotiated.
    pub ignored: u64,
    /// Packets sent to the leg.
    pub sent: u64,
}

/// One 20 ms step of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// Time since the bridge began: where these frames go in a recording (a recording
    /// started later subtracts its own start).
    pub at: Duration,
    /// One RTP packet for each leg present.
    pub send: Vec<(Side, Vec<u8>)>,
    /// What each leg said during this slot, decoded (silence where it said nothing),
    /// `None` for a leg that is not present.
    pub heard: [Option<Frame>; 2],
    /// Keys whose end was never received, reported once their timeout passed.
    pub digits: Vec<(Side, Digit)>,
}

/// The media state of one call.
#[derive(Debug)]
pub struct Bridge {
    started: Instant,
    ticks: u64,
    legs: [Option<Leg>; 2],
}

#[derive(Debug)]
struct Leg {
    config: LegConfig,
    playout: Playout,
    receive: ReceiveStats,
    dtmf: DtmfDetector,
    prompt: VecDeque<[u8; FRAME_SAMPLES]>,
    next_sequence: u16,
    next_timestamp: u32,
    stats: LegStats,
    held: bool,
}

impl Bridge {
    /// A call with no legs yet, whose clock starts at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            started: now,
            ticks: 0,
            legs: [None, None],
        }
    }

    /// Adds (or replaces, for a re-INVITE that changed the codec) a leg.
    pub fn add_leg(&mut self, side: Side, config: LegConfig) {
        self.legs[index(side)] = Some(Leg {
            config,
            playout: Playout::new(config.codec, config.playout),
            receive: ReceiveStats::new(8000),
            dtmf: DtmfDetector::new(),
            prompt: VecDeque::new(),
            next_sequence: config.first_sequence,
            next_timestamp: config.first_timestamp,
            stats: LegStats::default(),
            held: false,
        });
    }

    /// Removes a leg, returning its final counters.
    pub fn remove_leg(&mut self, side: Side) -> Option<LegStats> {
        self.legs[index(side)].take().map(|leg| leg.summary())
    }

    /// The codec of a leg, to decode a prompt for it.
    pub fn codec(&self, side: Side) -> Option<Codec> {
        self.legs[index(side)].as_ref().map(|leg| leg.config.codec)
    }

    /// Queues prompt frames (in the leg's codec) to play to a leg before anything else.
    pub fn play(&mut self, side: Side, frames: impl IntoIterator<Item = [u8; FRAME_SAMPLES]>) {
        if let Some(leg) = &mut self.legs[index(side)] {
            leg.prompt.extend(frames);
        }
    }

    /// Stops a prompt (a caller pressed a key, the agent answered).
    pub fn stop_prompt(&mut self, side: Side) {
        if let Some(leg) = &mut self.legs[index(side)] {
            leg.prompt.clear();
        }
    }

    /// Puts a leg on hold or takes it off. A leg that is not present is left alone; a leg
    /// added later starts off hold.
    pub fn set_hold(&mut self, side: Side, held: bool) {
        if let Some(leg) = &mut self.legs[index(side)] {
            leg.held = held;
        }
    }

    /// Whether a leg is on hold.
    pub fn is_held(&self, side: Side) -> bool {
        self.legs[index(side)].as_ref().is_some_and(|leg| leg.held)
    }

    /// Whether a prompt is still playing to a leg.
    pub fn is_playing(&self, side: Side) -> bool {
        self.legs[index(side)]
            .as_ref()
            .is_some_and(|leg| !leg.prompt.is_empty())
    }

    /// Takes one datagram from a leg. Returns a key when this packet completed one.
    /// Malformed datagrams and unknown payload types are counted and dropped.
    pub fn receive(&mut self, side: Side, datagram: &[u8], now: Instant) -> Option<Digit> {
        let leg = self.legs[index(side)].as_mut()?;
        let packet = match demux(datagram) {
            Ok(Datagram::Rtp(packet)) => packet,
            Ok(Datagram::Rtcp) => return None,
            Err(_) => {
                leg.stats.malformed += 1;
                return None;
            }
        };
        let payload_type = packet.header.payload_type;
        if payload_type == leg.config.codec.payload_type() {
            leg.receive.record(&packet.header, now);
            leg.playout.push(&packet);
            None
        } else if Some(payload_type) == leg.config.telephone_event {
            leg.receive.record_untimed(&packet.header, now);
            leg.dtmf.push(&packet.header, packet.payload, now)
        } else {
            leg.stats.ignored += 1;
            None
        }
    }

    /// When the next tick is due.
    pub fn next_tick(&self) -> Instant {
        self.started + tick_time(self.ticks)
    }

    /// Plays 20 ms. Call it whenever [`Bridge::next_tick`] has passed (several times if
    /// the driver fell behind); `now` only times out DTMF keys whose end was lost.
    pub fn tick(&mut self, now: Instant) -> Tick {
        let at = tick_time(self.ticks);
        self.ticks += 1;
        // What each leg said in this slot, as linear audio.
        let mut heard = [None, None];
        let mut digits = Vec::new();
        for (i, slot) in self.legs.iter_mut().enumerate() {
            if let Some(leg) = slot {
                // The jitter buffer keeps playing out during a hold, so nothing stale is
                // left in it to be heard when the hold ends.
                let played = leg.playout.tick();
                heard[i] = Some(match played.fill {
                    Fill::Received | Fill::Repeated if !leg.held => {
                        leg.config.codec.decode_frame(&played.payload)
                    }
                    Fill::Received | Fill::Repeated | Fill::Silence => [0; FRAME_SAMPLES],
                });
                if let Some(digit) = leg.dtmf.poll(now) {
                    digits.push((side_of(i), digit));
                }
            }
        }
        let mut send = Vec::new();
        for (i, slot) in self.legs.iter_mut().enumerate() {
            let Some(leg) = slot else { continue };
            let codec = leg.config.codec;
            // A held leg hears silence; its queued prompt waits for the end of the hold.
            let prompt = if leg.held {
                None
            } else {
                leg.prompt.pop_front()
            };
            let other = heard[1 - i].filter(|_| !leg.held);
            let payload = match (prompt, other) {
                (Some(prompt), _) => prompt.to_vec(),
                (None, Some(other)) => other.iter().map(|sample| codec.encode(*sample)).collect(),
                (None, None) => vec![codec.silence(); FRAME_SAMPLES],
            };
            let mut header = RtpHeader::new(
                codec.payload_type(),
                leg.next_sequence,
                leg.next_timestamp,
                leg.config.ssrc,
            );
            // The first packet of the stream starts a talkspurt.
            header.marker = leg.stats.sent == 0;
            let mut packet = Vec::with_capacity(12 + FRAME_SAMPLES);
            // A header without CSRCs and with a static payload type always writes.
            if header.write(&payload, &mut packet).is_ok() {
                send.push((side_of(i), packet));
                leg.stats.sent += 1;
            }
            leg.next_sequence = leg.next_sequence.wrapping_add(1);
            leg.next_timestamp = leg.next_timestamp.wrapping_add(FRAME_SAMPLES as u32);
        }
        Tick {
            at,
            send,
            heard,
            digits,
        }
    }

    /// A leg's counters so far.
    pub fn stats(&self, side: Side) -> Option<LegStats> {
        self.legs[index(side)].as_ref().map(Leg::summary)
    }
}

impl Leg {
    fn summary(&self) -> LegStats {
        LegStats {
            receive: self.receive.summary(),
            playout: self.playout.counters(),
            ..self.stats
        }
    }
}

fn tick_time(ticks: u64) -> Duration {
    Duration::from_millis(ticks.saturating_mul(20))
}

fn index(side: Side) -> usize {
    match side {
        Side::Customer => 0,
        Side::Agent => 1,
    }
}

fn side_of(index: usize) -> Side {
    if index == 0 {
        Side::Customer
    } else {
        Side::Agent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(codec: Codec, ssrc: u32) -> LegConfig {
        LegConfig {
            codec,
            telephone_event: None,
            ssrc,
            first_sequence: 100,
            first_timestamp: 8000,
            playout: PlayoutConfig::default(),
        }
    }

    #[allow(clippy::disallowed_methods)] // an origin only; every time is origin + offset
    fn origin() -> Instant {
        Instant::now()
    }

    /// A loud frame (a square wave well above silence) as one RTP packet.
    fn loud_packet(codec: Codec, sequence: u16, ssrc: u32) -> Vec<u8> {
        let payload: Vec<u8> = (0..FRAME_SAMPLES)
            .map(|n| codec.encode(if n % 16 < 8 { 8000 } else { -8000 }))
            .collect();
        let header = RtpHeader::new(
            codec.payload_type(),
            sequence,
            u32::from(sequence) * FRAME_SAMPLES as u32,
            ssrc,
        );
        let mut packet = Vec::new();
        header.write(&payload, &mut packet).unwrap();
        packet
    }

    fn peak(frame: &Frame) -> i16 {
        frame.iter().map(|s| s.saturating_abs()).max().unwrap_or(0)
    }

    /// The loudest sample in the packet a tick sends to `side`.
    fn sent_peak(tick: &Tick, side: Side, codec: Codec) -> i16 {
        let (_, packet) = tick.send.iter().find(|(s, _)| *s == side).unwrap();
        packet[12..]
            .iter()
            .map(|code| codec.decode(*code).saturating_abs())
            .max()
            .unwrap_or(0)
    }

    /// Both legs talk for `seconds`; returns every tick. `hold` says, per tick number,
    /// which legs are held at that tick.
    fn talk(seconds: usize, hold: impl Fn(usize) -> (bool, bool)) -> Vec<Tick> {
        let t0 = origin();
        let mut bridge = Bridge::new(t0);
        bridge.add_leg(Side::Customer, config(Codec::Pcmu, 1));
        bridge.add_leg(Side::Agent, config(Codec::Pcma, 2));
        let mut ticks = Vec::new();
        for n in 0..seconds * 50 {
            let now = t0 + tick_time(n as u64);
            let (customer, agent) = hold(n);
            bridge.set_hold(Side::Customer, customer);
            bridge.set_hold(Side::Agent, agent);
            assert_eq!(bridge.is_held(Side::Agent), agent);
            let sequence = 1000 + n as u16;
            bridge.receive(Side::Customer, &loud_packet(Codec::Pcmu, sequence, 11), now);
            bridge.receive(Side::Agent, &loud_packet(Codec::Pcma, sequence, 22), now);
            ticks.push(bridge.tick(now));
        }
        ticks
    }

    #[test]
    fn a_held_leg_is_neither_heard_nor_recorded_and_hears_silence() {
        // The agent holds from 1 s to 2 s of a 3 s call.
        let held = |n: usize| (50..100).contains(&n);
        let ticks = talk(3, |n| (false, held(n)));
        // The jitter buffer delays what is heard; judge well inside each stretch.
        for (n, tick) in ticks.iter().enumerate().filter(|(n, _)| *n >= 10) {
            let settled = !held(n) && !held(n.saturating_sub(10));
            let [customer, agent] = tick.heard.map(Option::unwrap);
            // Every tick sends both legs a packet, hold or not.
            assert_eq!(tick.send.len(), 2, "tick {n}");
            if held(n) {
                assert_eq!(peak(&agent), 0, "tick {n}: the held leg was recorded");
                assert_eq!(sent_peak(tick, Side::Customer, Codec::Pcmu), 0, "tick {n}");
                assert!(sent_peak(tick, Side::Agent, Codec::Pcma) < 16, "tick {n}");
                // The customer is still heard (recorded), only not passed on.
                assert!(peak(&customer) > 4000, "tick {n}");
            } else if settled {
                assert!(peak(&agent) > 4000, "tick {n}");
                assert!(
                    sent_peak(tick, Side::Customer, Codec::Pcmu) > 4000,
                    "tick {n}"
                );
                assert!(sent_peak(tick, Side::Agent, Codec::Pcma) > 4000, "tick {n}");
            }
        }
    }

    #[test]
    fn streams_keep_their_clock_through_a_hold() {
        let ticks = talk(2, |n| ((20..60).contains(&n), false));
        for side in [Side::Customer, Side::Agent] {
            let headers: Vec<RtpHeader> = ticks
                .iter()
                .map(|tick| {
                    let (_, packet) = tick.send.iter().find(|(s, _)| *s == side).unwrap();
                    match demux(packet) {
                        Ok(Datagram::Rtp(packet)) => packet.header,
                        other => panic!("not RTP: {other:?}"),
                    }
                })
                .collect();
            for pair in headers.windows(2) {
                assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
                assert_eq!(
                    pair[1].timestamp,
                    pair[0].timestamp.wrapping_add(FRAME_SAMPLES as u32)
                );
            }
        }
    }

    #[test]
    fn a_prompt_waits_for_the_end_of_a_hold() {
        let t0 = origin();
        let mut bridge = Bridge::new(t0);
        bridge.add_leg(Side::Customer, config(Codec::Pcmu, 1));
        bridge.play(
            Side::Customer,
            [[Codec::Pcmu.encode(9000); FRAME_SAMPLES]; 3],
        );
        bridge.set_hold(Side::Customer, true);
        for n in 0..5 {
            let tick = bridge.tick(t0 + tick_time(n));
            assert!(sent_peak(&tick, Side::Customer, Codec::Pcmu) < 16);
        }
        assert!(bridge.is_playing(Side::Customer));
        bridge.set_hold(Side::Customer, false);
        let tick = bridge.tick(t0 + tick_time(5));
        assert!(sent_peak(&tick, Side::Customer, Codec::Pcmu) > 8000);
        // No agent leg: holding it does nothing.
        bridge.set_hold(Side::Agent, true);
        assert!(!bridge.is_held(Side::Agent));
    }
}
