//! The crate's one error type.

/// Everything that can go wrong in this crate.
///
/// Parse failures name what was wrong with the bytes, never echo them, so a driver can log
/// the error of a datagram from anyone without logging the datagram.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A datagram is shorter than the fixed 12-byte RTP header.
    #[error("the packet is {len} bytes, shorter than an RTP header")]
    RtpTooShort {
        /// Bytes received.
        len: usize,
    },
    /// The version field is not 2.
    #[error("RTP version {0} is not supported")]
    RtpVersion(u8),
    /// The CSRC list runs past the end of the packet.
    #[error("the CSRC list runs past the end of the packet")]
    RtpCsrcOverrun,
    /// The header extension runs past the end of the packet.
    #[error("the header extension runs past the end of the packet")]
    RtpExtensionOverrun,
    /// The padding count is zero or larger than what follows the header.
    #[error("the padding count {count} does not fit the packet")]
    RtpPadding {
        /// The padding count from the packet's last byte.
        count: u8,
    },
    /// A packet was built with a payload type outside 0–127 or a list of more than 15 CSRCs.
    #[error("the RTP header cannot be written: {0}")]
    RtpUnwritable(&'static str),
    /// A telephone-event payload is shorter than its four bytes.
    #[error("the telephone-event payload is {len} bytes, shorter than 4")]
    TelephoneEventTooShort {
        /// Bytes received.
        len: usize,
    },
    /// A DTMF key to send is not one of 0–9, *, #, A–D.
    #[error("{0:?} is not a DTMF key")]
    NotDtmfKey(char),
    /// The bytes are not a RIFF/WAVE file, or a chunk runs past the end.
    #[error("not a WAV file: {0}")]
    NotWav(&'static str),
    /// A WAV file is well formed but its encoding is not one genkan plays.
    #[error(
        "unsupported WAV encoding: format {format_tag:#06x}, {bits} bits, {channels} channels, \
         {rate} Hz (supported: 16-bit PCM or 8-bit µ-law, mono or stereo, at 8, 16, 22.05, 44.1 \
         or 48 kHz)"
    )]
    UnsupportedWav {
        /// The fmt chunk's format tag (1 PCM, 7 µ-law, 0xFFFE extensible).
        format_tag: u16,
        /// Bits per sample.
        bits: u16,
        /// Channel count.
        channels: u16,
        /// Sample rate in Hz.
        rate: u32,
    },
    /// The file does not start like one of this crate's recordings, so it cannot be repaired.
    #[error("not a recoverable recording: {0}")]
    NotRecoverable(&'static str),
    /// The recording reached the 4 GiB limit of a WAV file (about 37 hours of stereo).
    #[error("the recording reached the WAV size limit")]
    RecordingFull,
    /// The recording was given a frame at a time before its start or too far ahead.
    #[error("a frame at {at_ms} ms cannot be placed in the recording: {reason}")]
    FrameOutOfRange {
        /// The frame's time, in milliseconds since the recording began.
        at_ms: u128,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Writing the recording failed.
    #[error("writing the recording failed")]
    Io(#[from] std::io::Error),
}
