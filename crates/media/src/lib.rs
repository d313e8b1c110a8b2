//! genkan's media core, sans I/O: the audio half of the voice path.
//!
//! What it is: values and small state machines for G.711 audio over RTP. [`g711`]
//! encodes and decodes µ-law and A-law; [`rtp`] parses and builds RTP packets and tells
//! RTCP apart on a shared port; [`ReceiveStats`] keeps RFC 3550's receive statistics
//! (packets, expected, lost, interarrival jitter) for a call record; [`Playout`] is a
//! jitter buffer that hands out one 20 ms frame per tick whatever arrived; [`dtmf`]
//! reads and writes RFC 4733 telephone events and turns them into keys once each;
//! [`Recorder`] writes both legs of a call into one stereo WAV and [`recover`] repairs
//! one cut off by a crash; [`prompt`] turns an uploaded WAV into 20 ms G.711 frames.
//! [`Bridge`] ties them together for one call: datagrams in from either leg, every
//! 20 ms a packet out to each leg and a frame of each for the recording.
//!
//! What it is not: sockets, files, a clock or threads. Arrival times come in as `now`
//! ([`std::time::Instant`]); the recording's timeline is a [`std::time::Duration`] since
//! it began; the recorder writes through any `Write + Seek` the caller opens. SRTP and
//! the WebRTC leg are str0m's; SDP is the `sip` crate's.
//!
//! The driver's loop for one call: every datagram from a leg goes to
//! [`Bridge::receive`] (which demultiplexes RTCP away, feeds audio to that leg's
//! [`ReceiveStats`] and [`Playout`] and telephone events to its [`DtmfDetector`]);
//! whenever [`Bridge::next_tick`] has passed, [`Bridge::tick`] gives one packet to send
//! to each leg and the two frames heard, which go to the [`Recorder`] at the tick's
//! time. A driver that wants other wiring uses the parts directly.
//!
//! Invariants: nothing a peer sends can panic this crate (parsers return [`Error`]s,
//! property-tested on arbitrary bytes); a playout tick always yields a frame; the two
//! recording channels always hold the same number of samples.

#![warn(missing_docs)]

pub mod bridge;
pub mod dtmf;
mod error;
pub mod g711;
pub mod playout;
pub mod prompt;
pub mod recording;
pub mod rtp;
pub mod stats;
pub mod wav;

pub use bridge::{Bridge, LegConfig, LegStats, Tick};
pub use dtmf::{Digit, DtmfDetector, TelephoneEvent};
pub use error::Error;
pub use g711::{Codec, FRAME_SAMPLES, Frame};
pub use playout::{Fill, Played, Playout, PlayoutConfig};
pub use prompt::decode_prompt;
pub use recording::{Recorder, RecorderConfig, Recovery, Side, recover, recover_from_head};
pub use rtp::{Datagram, RtpHeader, RtpPacket, demux};
pub use stats::{ReceiveStats, Summary};
