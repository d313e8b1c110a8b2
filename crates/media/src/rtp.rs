//! RTP packets (RFC 3550 §5.1) and telling them from RTCP on a shared port (RFC 5761 §4).
//!
//! Parsing borrows the payload from the datagram, so the hot path (relay a packet from
//! one leg to the other) copies nothing until the new header is written.

use crate::Error;

/// Length of the fixed header, before CSRCs and extension.
pub const HEADER_LEN: usize = 12;

/// The header fields genkan reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marks the first packet of a talkspurt (audio) or of an event (telephone-event).
    pub marker: bool,
    /// Payload type, 0–127.
    pub payload_type: u8,
    /// Sequence number; increments by one per packet and wraps.
    pub sequence: u16,
    /// Sampling instant of the first sample, in the payload's clock (8 kHz for G.711).
    pub timestamp: u32,
    /// Synchronisation source: one per sender stream.
    pub ssrc: u32,
    /// Contributing sources (mixers list them; at most 15).
    pub csrcs: Vec<u32>,
}

/// A parsed RTP packet: header and payload, with padding and any extension removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The header.
    pub header: RtpHeader,
    /// The profile-defined identifier of the header extension, if there was one; its
    /// contents are skipped because genkan uses none.
    pub extension_profile: Option<u16>,
    /// The payload, without padding.
    pub payload: &'a [u8],
}

/// What arrived on a port that carries RTP and RTCP together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// An RTP packet.
    Rtp(RtpPacket<'a>),
    /// An RTCP packet (sender or receiver report, SDES, BYE, APP…), which genkan reads
    /// no further.
    Rtcp,
}

/// Classifies and parses one datagram from an RTP port.
///
/// RFC 5761 §4: with RTP and RTCP multiplexed, a second byte of 192–223 is an RTCP
/// packet type (200–204 are SR, RR, SDES, BYE and APP); RTP payload types that would
/// collide (64–95 with the marker set) are not used on such a port.
pub fn demux(datagram: &[u8]) -> Result<Datagram<'_>, Error> {
    if datagram.len() >= 2 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1]) {
        return Ok(Datagram::Rtcp);
    }
    Ok(Datagram::Rtp(RtpPacket::parse(datagram)?))
}

impl<'a> RtpPacket<'a> {
    /// Parses an RTP packet, refusing anything malformed with a typed error.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, Error> {
        let Some(fixed) = datagram.first_chunk::<HEADER_LEN>() else {
            return Err(Error::RtpTooShort {
                len: datagram.len(),
            });
        };
        let version = fixed[0] >> 6;
        if version != 2 {
            return Err(Error::RtpVersion(version));
        }
        let has_padding = fixed[0] & 0x20 != 0;
        let has_extension = fixed[0] & 0x10 != 0;
        let csrc_count = usize::from(fixed[0] & 0x0F);
        let marker = fixed[1] & 0x80 != 0;
        let payload_type = fixed[1] & 0x7F;
        let sequence = u16::from_be_bytes([fixed[2], fixed[3]]);
        let timestamp = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let ssrc = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);

        let mut rest = &datagram[HEADER_LEN..];
        let Some((csrc_bytes, after)) = rest.split_at_checked(4 * csrc_count) else {
            return Err(Error::RtpCsrcOverrun);
        };
        let csrcs = csrc_bytes
            .chunks_exact(4)
            .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
            .collect();
        rest = after;

        let mut extension_profile = None;
        if has_extension {
            let Some((head, after)) = rest.split_first_chunk::<4>() else {
                return Err(Error::RtpExtensionOverrun);
            };
            extension_profile = Some(u16::from_be_bytes([head[0], head[1]]));
            let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let Some(after) = after.get(4 * words..) else {
                return Err(Error::RtpExtensionOverrun);
            };
            rest = after;
        }

        if has_padding {
            // The last byte counts the padding, itself included, so zero is malformed.
            let count = rest.last().copied().unwrap_or(0);
            if count == 0 || usize::from(count) > rest.len() {
                return Err(Error::RtpPadding { count });
            }
            rest = &rest[..rest.len() - usize::from(count)];
        }

        Ok(Self {
            header: RtpHeader {
                marker,
                payload_type,
                sequence,
                timestamp,
                ssrc,
                csrcs,
            },
            extension_profile,
            payload: rest,
        })
    }
}

impl RtpHeader {
    /// A header with no marker and no CSRCs.
    pub fn new(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32) -> Self {
        Self {
            marker: false,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs: Vec::new(),
        }
    }

    /// Appends the header and `payload` to `out` as one packet (no padding, no extension:
    /// genkan needs neither, and SRTP on the WebRTC leg is str0m's business).
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.payload_type > 127 {
            return Err(Error::RtpUnwritable("payload type over 127"));
        }
        let Ok(csrc_count) = u8::try_from(self.csrcs.len()) else {
            return Err(Error::RtpUnwritable("more than 15 CSRCs"));
        };
        if csrc_count > 15 {
            return Err(Error::RtpUnwritable("more than 15 CSRCs"));
        }
        out.reserve(HEADER_LEN + 4 * self.csrcs.len() + payload.len());
        out.push(0x80 | csrc_count);
        out.push(u8::from(self.marker) << 7 | self.payload_type);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for csrc in &self.csrcs {
            out.extend_from_slice(&csrc.to_be_bytes());
        }
        out.extend_from_slice(payload);
        Ok(())
    }

    /// The packet as a new buffer.
    pub fn to_packet(&self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.write(payload, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 0,
            sequence: 0xFFFE,
            timestamp: 0x1234_5678,
            ssrc: 0xDEAD_BEEF,
            csrcs: vec![7, 9],
        }
    }

    #[test]
    fn a_written_packet_parses_back() {
        let packet = header().to_packet(&[1, 2, 3]).unwrap();
        assert_eq!(packet.len(), 12 + 8 + 3);
        let parsed = RtpPacket::parse(&packet).unwrap();
        assert_eq!(parsed.header, header());
        assert_eq!(parsed.payload, [1, 2, 3]);
        assert_eq!(parsed.extension_profile, None);
    }

    #[test]
    fn known_bytes_parse() {
        // V=2, P=1, X=1, CC=1; M=0, PT=8; seq 1; ts 160; SSRC 0x01020304; one CSRC;
        // a one-word extension with profile 0xBEDE; payload 0xAA 0xBB; two bytes padding.
        let bytes = [
            0xB1, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0xA0, 0x01, 0x02, 0x03, 0x04, //
            0x00, 0x00, 0x00, 0x05, //
            0xBE, 0xDE, 0x00, 0x01, 0x10, 0x20, 0x30, 0x40, //
            0xAA, 0xBB, 0x00, 0x02,
        ];
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert!(!packet.header.marker);
        assert_eq!(packet.header.payload_type, 8);
        assert_eq!(packet.header.sequence, 1);
        assert_eq!(packet.header.timestamp, 160);
        assert_eq!(packet.header.ssrc, 0x0102_0304);
        assert_eq!(packet.header.csrcs, [5]);
        assert_eq!(packet.extension_profile, Some(0xBEDE));
        assert_eq!(packet.payload, [0xAA, 0xBB]);
    }

    #[test]
    fn malformed_packets_are_refused_by_kind() {
        let good = header().to_packet(&[1, 2, 3]).unwrap();
        assert!(matches!(
            RtpPacket::parse(&good[..11]),
            Err(Error::RtpTooShort { len: 11 })
        ));
        let mut v1 = good.clone();
        v1[0] = 0x40 | (v1[0] & 0x3F);
        assert!(matches!(RtpPacket::parse(&v1), Err(Error::RtpVersion(1))));
        assert!(matches!(
            RtpPacket::parse(&good[..15]),
            Err(Error::RtpCsrcOverrun)
        ));
        let mut extension = good.clone();
        extension[0] |= 0x10;
        assert!(matches!(
            RtpPacket::parse(&extension),
            Err(Error::RtpExtensionOverrun)
        ));
        let mut padding = good;
        padding[0] |= 0x20;
        *padding.last_mut().unwrap() = 0;
        assert!(matches!(
            RtpPacket::parse(&padding),
            Err(Error::RtpPadding { count: 0 })
        ));
        *padding.last_mut().unwrap() = 4;
        assert!(matches!(
            RtpPacket::parse(&padding),
            Err(Error::RtpPadding { count: 4 })
        ));
        *padding.last_mut().unwrap() = 3;
        assert_eq!(RtpPacket::parse(&padding).unwrap().payload, []);
    }

    #[test]
    fn unwritable_headers_are_refused() {
        let mut bad = header();
        bad.payload_type = 128;
        assert!(bad.to_packet(&[]).is_err());
        let mut bad = header();
        bad.csrcs = vec![0; 16];
        assert!(bad.to_packet(&[]).is_err());
    }

    #[test]
    fn rtcp_is_told_apart_on_a_shared_port() {
        // A receiver report: V=2, RC=0, PT=201, length 1, SSRC.
        let report = [0x80, 201, 0x00, 0x01, 0, 0, 0, 1];
        assert_eq!(demux(&report).unwrap(), Datagram::Rtcp);
        for packet_type in 200..=204 {
            assert_eq!(demux(&[0x80, packet_type, 0, 0]).unwrap(), Datagram::Rtcp);
        }
        let audio = RtpHeader::new(0, 1, 2, 3).to_packet(&[0xFF; 160]).unwrap();
        assert!(matches!(demux(&audio).unwrap(), Datagram::Rtp(_)));
        let mut event = RtpHeader::new(101, 1, 2, 3);
        event.marker = true;
        assert!(matches!(
            demux(&event.to_packet(&[0; 4]).unwrap()).unwrap(),
            Datagram::Rtp(_)
        ));
    }
}
