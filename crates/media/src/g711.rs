//! G.711 (ITU-T, 1972): µ-law (PCMU, North America and Japan) and A-law (PCMA, elsewhere).
//!
//! Both companders map a 16-bit linear sample onto 8 bits: a sign, a 3-bit segment (the
//! position of the leading one, i.e. a logarithm) and a 4-bit mantissa. Decoding returns
//! the middle of the quantisation step, so the error is at most half a step. Written
//! from the standard's description rather than with lookup tables: encoding is a
//! `leading_zeros` and a few shifts, cheaper than a 64 KiB table in cache.

/// Samples in one 20 ms frame at 8 kHz, the only packet time genkan sends and expects.
pub const FRAME_SAMPLES: usize = 160;

/// One 20 ms frame of linear audio.
pub type Frame = [i16; FRAME_SAMPLES];

/// The two G.711 variants, with their static RTP payload types (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    /// The codec of a static payload type, if it is one of the two.
    pub fn from_payload_type(payload_type: u8) -> Option<Self> {
        match payload_type {
            0 => Some(Self::Pcmu),
            8 => Some(Self::Pcma),
            _ => None,
        }
    }

    /// The code word for silence (linear zero).
    pub fn silence(self) -> u8 {
        match self {
            Self::Pcmu => 0xFF,
            Self::Pcma => 0xD5,
        }
    }

    /// Encodes one sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Self::Pcmu => ulaw_encode(sample),
            Self::Pcma => alaw_encode(sample),
        }
    }

    /// Decodes one code word.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Self::Pcmu => ulaw_decode(code),
            Self::Pcma => alaw_decode(code),
        }
    }

    /// Encodes linear samples into `out` (cleared first).
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        out.clear();
        out.extend(samples.iter().map(|sample| self.encode(*sample)));
    }

    /// Decodes a payload into one frame; a short payload is padded with silence and
    /// bytes past 160 are ignored, so a peer's odd packet size cannot desynchronise a
    /// recording.
    pub fn decode_frame(self, payload: &[u8]) -> Frame {
        let mut frame = [0; FRAME_SAMPLES];
        for (sample, code) in frame.iter_mut().zip(payload) {
            *sample = self.decode(*code);
        }
        frame
    }
}

/// µ-law adds this bias so every magnitude has a leading one at bit 7 or above, which
/// makes the segment simply the position of that bit.
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude that still fits segment 7 after the bias.
const ULAW_CLIP: i32 = 32635;

/// Encodes one linear sample as µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let value = i32::from(sample);
    let sign: u8 = if value < 0 { 0x80 } else { 0 };
    let magnitude = value.abs().min(ULAW_CLIP) + ULAW_BIAS;
    // magnitude is in 0x84..=0x7FFF, so its top bit is between bit 7 and bit 14.
    let top_bit = 31 - magnitude.leading_zeros();
    let segment = top_bit.saturating_sub(7);
    let mantissa = (magnitude >> (segment + 3)) & 0x0F;
    // Bits are inverted on the wire so that silence is mostly ones (a 1970s line-coding
    // concern that the standard kept).
    !(sign | (segment as u8) << 4 | mantissa as u8)
}

/// Decodes one µ-law code word.
pub fn ulaw_decode(code: u8) -> i16 {
    let code = !code;
    let segment = (code >> 4) & 0x07;
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    // magnitude is at most 32124, so the cast cannot truncate.
    let magnitude = magnitude as i16;
    if code & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Encodes one linear sample as A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    // A-law quantises 13 bits. Negative values use the one's complement, which keeps the
    // quantiser symmetric around -0.5 and cannot overflow at i16::MIN.
    let (sign, magnitude): (u8, u16) = if sample >= 0 {
        (0x80, sample as u16 >> 3)
    } else {
        (0, (!sample) as u16 >> 3)
    };
    let code = if magnitude < 32 {
        // Segment 0 is linear with steps of two.
        sign | (magnitude >> 1) as u8
    } else {
        let top_bit = 15 - magnitude.leading_zeros() as u16;
        let segment = top_bit - 4;
        let mantissa = (magnitude >> segment) & 0x0F;
        sign | (segment as u8) << 4 | mantissa as u8
    };
    // Even bits are inverted on the wire, for the same line-coding reason as µ-law.
    code ^ 0x55
}

/// Decodes one A-law code word.
pub fn alaw_decode(code: u8) -> i16 {
    let code = code ^ 0x55;
    let segment = (code >> 4) & 0x07;
    let mantissa = i16::from(code & 0x0F);
    // The trailing `| 1` puts the value in the middle of its quantisation step.
    let magnitude = if segment == 0 {
        (mantissa << 1 | 1) << 3
    } else {
        ((mantissa | 0x10) << 1 | 1) << (segment - 1) << 3
    };
    if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_encodes_to_the_standard_code_words() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(Codec::Pcmu.silence(), ulaw_encode(0));
        assert_eq!(Codec::Pcma.silence(), alaw_encode(0));
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(alaw_decode(0xD5), 8);
    }

    #[test]
    fn known_code_words() {
        // Extremes of each law, from the standard's tables.
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    /// Half a quantisation step of the segment a code word is in, the most that decoding
    /// may be off by (clipping aside).
    fn ulaw_half_step(code: u8) -> i32 {
        4 << ((!code >> 4) & 7)
    }

    fn alaw_half_step(code: u8) -> i32 {
        4 << ((code ^ 0x55) >> 4 & 7).max(1)
    }

    #[test]
    fn round_trip_error_is_within_half_a_step_over_all_samples() {
        for sample in i16::MIN..=i16::MAX {
            let x = i32::from(sample);
            let code = ulaw_encode(sample);
            let clipped = x.clamp(-ULAW_CLIP, ULAW_CLIP);
            let error = (i32::from(ulaw_decode(code)) - clipped).abs();
            assert!(
                error <= ulaw_half_step(code),
                "µ-law {sample}: off by {error}"
            );
            // And relative to the sample: µ-law's steps grow with the magnitude.
            assert!(error <= x.abs() / 16 + 8 + (x.abs() - ULAW_CLIP).max(0));

            let code = alaw_encode(sample);
            let error = (i32::from(alaw_decode(code)) - x).abs();
            assert!(
                error <= alaw_half_step(code),
                "A-law {sample}: off by {error}"
            );
            assert!(error <= x.abs() / 16 + 8);
        }
    }

    #[test]
    fn decoding_is_monotonic_over_all_samples() {
        let mut previous = (i16::MIN, i16::MIN);
        for sample in i16::MIN..=i16::MAX {
            let now = (
                ulaw_decode(ulaw_encode(sample)),
                alaw_decode(alaw_encode(sample)),
            );
            assert!(now.0 >= previous.0 && now.1 >= previous.1, "at {sample}");
            previous = now;
        }
    }

    #[test]
    fn every_code_word_is_stable() {
        for code in 0..=u8::MAX {
            // µ-law has a negative zero (0x7F), which re-encodes as the positive one.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                ulaw_encode(ulaw_decode(code)),
                expected,
                "µ-law {code:#04x}"
            );
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn payload_types_and_frames() {
        assert_eq!(Codec::from_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(101), None);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        let frame = Codec::Pcmu.decode_frame(&[0x80; 10]);
        assert_eq!(frame[9], 32124);
        assert_eq!(frame[10], 0);
        let mut out = Vec::new();
        Codec::Pcma.encode_into(&[0, 0], &mut out);
        assert_eq!(out, [0xD5, 0xD5]);
    }
}
