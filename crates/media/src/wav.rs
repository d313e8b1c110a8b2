//! The WAV (RIFF/WAVE) container: the canonical 44-byte header genkan writes, and a
//! reader of the `fmt ` and `data` chunks that prompts and recovery share.

use crate::Error;

/// Length of the canonical header: RIFF, a 16-byte `fmt ` chunk, the `data` chunk head.
pub const HEADER_LEN: usize = 44;

/// Size fields written while a recording is open: "unknown, read to the end", which
/// streaming tools (sox, ffmpeg) honour, and which [`crate::recover`] replaces.
pub(crate) const OPEN_SIZE: u32 = u32::MAX;

/// The `fmt ` chunk's fields that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// 1 PCM, 7 µ-law (0xFFFE extensible is resolved to its sub-format).
    pub format_tag: u16,
    /// Channels.
    pub channels: u16,
    /// Samples per second per channel.
    pub rate: u32,
    /// Bits per sample.
    pub bits: u16,
}

/// Format tag of integer PCM.
pub const PCM: u16 = 1;
/// Format tag of µ-law.
pub const MULAW: u16 = 7;
const EXTENSIBLE: u16 = 0xFFFE;

impl Format {
    /// Bytes per sample frame (one sample of every channel).
    pub fn block_align(self) -> usize {
        usize::from(self.channels) * usize::from(self.bits).div_ceil(8)
    }
}

/// The canonical header for `data_len` bytes of PCM in `format`.
pub fn header(format: Format, data_len: u32) -> [u8; HEADER_LEN] {
    let riff_len = if data_len == OPEN_SIZE {
        OPEN_SIZE
    } else {
        data_len.saturating_add(36)
    };
    let block_align = format.block_align() as u16;
    let mut out = [0; HEADER_LEN];
    out[0..4].copy_from_slice(b"RIFF");
    out[4..8].copy_from_slice(&riff_len.to_le_bytes());
    out[8..12].copy_from_slice(b"WAVE");
    out[12..16].copy_from_slice(b"fmt ");
    out[16..20].copy_from_slice(&16u32.to_le_bytes());
    out[20..22].copy_from_slice(&format.format_tag.to_le_bytes());
    out[22..24].copy_from_slice(&format.channels.to_le_bytes());
    out[24..28].copy_from_slice(&format.rate.to_le_bytes());
    let byte_rate = format.rate * u32::from(block_align);
    out[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    out[32..34].copy_from_slice(&block_align.to_le_bytes());
    out[34..36].copy_from_slice(&format.bits.to_le_bytes());
    out[36..40].copy_from_slice(b"data");
    out[40..44].copy_from_slice(&data_len.to_le_bytes());
    out
}

/// Where a file's audio is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The format.
    pub format: Format,
    /// Offset of the first data byte.
    pub data_start: usize,
    /// The `data` chunk's declared length (may be `0xFFFFFFFF`, "open", or run past the end).
    pub declared_len: u32,
}

/// Walks the chunks of a WAV file up to the start of its `data` chunk.
pub fn layout(bytes: &[u8]) -> Result<Layout, Error> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(Error::NotWav("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format = None;
    loop {
        let Some(head) = bytes.get(at..at + 8) else {
            return Err(Error::NotWav("no data chunk"));
        };
        let id = &head[0..4];
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let body = at + 8;
        if id == b"data" {
            let Some(format) = format else {
                return Err(Error::NotWav("the data chunk comes before fmt"));
            };
            return Ok(Layout {
                format,
                data_start: body,
                declared_len: len,
            });
        }
        let Some(chunk) = bytes.get(body..body.saturating_add(len as usize)) else {
            return Err(Error::NotWav("a chunk runs past the end"));
        };
        if id == b"fmt " {
            format = Some(parse_fmt(chunk)?);
        }
        // Chunks are padded to an even length.
        at = body + len as usize + (len as usize & 1);
    }
}

fn parse_fmt(chunk: &[u8]) -> Result<Format, Error> {
    let Some(fields) = chunk.first_chunk::<16>() else {
        return Err(Error::NotWav("the fmt chunk is short"));
    };
    let u16_at = |at: usize| u16::from_le_bytes([fields[at], fields[at + 1]]);
    let mut format = Format {
        format_tag: u16_at(0),
        channels: u16_at(2),
        rate: u32::from_le_bytes([fields[4], fields[5], fields[6], fields[7]]),
        bits: u16_at(14),
    };
    if format.format_tag == EXTENSIBLE {
        // WAVE_FORMAT_EXTENSIBLE keeps the real tag in the first two bytes of its
        // sub-format GUID, 24 bytes into the extension.
        let Some(sub) = chunk.get(24..26) else {
            return Err(Error::NotWav("the extensible fmt chunk is short"));
        };
        format.format_tag = u16::from_le_bytes([sub[0], sub[1]]);
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEREO: Format = Format {
        format_tag: PCM,
        channels: 2,
        rate: 8000,
        bits: 16,
    };

    #[test]
    fn the_canonical_header_reads_back() {
        let bytes = header(STEREO, 640);
        assert_eq!(&bytes[4..8], &676u32.to_le_bytes());
        assert_eq!(&bytes[28..32], &32000u32.to_le_bytes());
        let layout = layout(&bytes).unwrap();
        assert_eq!(layout.format, STEREO);
        assert_eq!(layout.data_start, 44);
        assert_eq!(layout.declared_len, 640);
        assert_eq!(&header(STEREO, OPEN_SIZE)[4..8], &[0xFF; 4]);
    }

    #[test]
    fn other_chunks_are_skipped_and_extensible_resolved() {
        let mut bytes = b"RIFF\0\0\0\0WAVE".to_vec();
        bytes.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        bytes.extend_from_slice(b"fmt \x28\0\0\0");
        let mut fmt = vec![0u8; 40];
        fmt[0..2].copy_from_slice(&EXTENSIBLE.to_le_bytes());
        fmt[2..4].copy_from_slice(&1u16.to_le_bytes());
        fmt[4..8].copy_from_slice(&48000u32.to_le_bytes());
        fmt[14..16].copy_from_slice(&16u16.to_le_bytes());
        fmt[24..26].copy_from_slice(&PCM.to_le_bytes());
        bytes.extend_from_slice(&fmt);
        bytes.extend_from_slice(b"data\x02\0\0\0\x01\x02");
        let layout = layout(&bytes).unwrap();
        assert_eq!(layout.format.format_tag, PCM);
        assert_eq!(layout.format.rate, 48000);
        assert_eq!(layout.data_start, bytes.len() - 2);
    }

    #[test]
    fn broken_files_are_refused() {
        assert!(layout(b"RIFX\0\0\0\0WAVE").is_err());
        assert!(layout(&header(STEREO, 0)[..40]).is_err());
        let mut no_fmt = header(STEREO, 0).to_vec();
        no_fmt[12..16].copy_from_slice(b"junk");
        assert!(matches!(layout(&no_fmt), Err(Error::NotWav(_))));
        let mut huge = header(STEREO, 0).to_vec();
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(layout(&huge).is_err());
    }
}
