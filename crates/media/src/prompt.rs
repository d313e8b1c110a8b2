//! Prompts: a WAV file an administrator uploads, turned into the 20 ms G.711 frames a
//! leg plays.
//!
//! Accepted: 16-bit PCM or 8-bit µ-law, mono or stereo (averaged to mono), at 8, 16,
//! 22.05, 44.1 or 48 kHz; anything else is refused with [`Error::UnsupportedWav`],
//! whose message lists what is accepted.
//!
//! Resampling to 8 kHz is a windowed-sinc interpolator evaluated at each output
//! instant: an ideal low-pass at 3.6 kHz (below the 4 kHz Nyquist limit of the
//! output, the top of the telephone band being 3.4 kHz), truncated to 16 zero crossings
//! each side with a Blackman window. One filter does both jobs: it removes what would
//! alias (a 6 kHz tone at 48 kHz would otherwise come out as 2 kHz) and interpolates at
//! the fractional positions that 22.05 and 44.1 kHz need. Linear interpolation alone
//! aliases; a low-pass followed by linear interpolation needs two passes and still dulls
//! the top of the band. The taps are normalised to unit sum at every output sample, so
//! the DC gain is exactly one, also at the edges. Cost: about 200 multiply-adds per
//! output sample from 48 kHz, a few milliseconds per second of prompt, paid once at
//! upload.

use crate::Error;
use crate::g711::{self, Codec, FRAME_SAMPLES};
use crate::wav::{self, Format};

const RATES: [u32; 5] = [8000, 16000, 22050, 44100, 48000];
const OUTPUT_RATE: u32 = 8000;
const CUTOFF_HZ: f64 = 3600.0;
const ZERO_CROSSINGS: f64 = 16.0;

/// Decodes a WAV prompt into 20 ms frames of `codec` at 8 kHz; the last frame is padded
/// with silence.
pub fn decode_prompt(file: &[u8], codec: Codec) -> Result<Vec<[u8; FRAME_SAMPLES]>, Error> {
    let layout = wav::layout(file)?;
    let format = layout.format;
    check_supported(format)?;
    let available = file.len() - layout.data_start;
    let data_len = available.min(layout.declared_len as usize);
    let block_align = format.block_align();
    let data = &file[layout.data_start..][..data_len / block_align * block_align];

    let mono: Vec<f64> = data
        .chunks_exact(block_align)
        .map(|block| {
            let channels = usize::from(format.channels);
            let sum: f64 = (0..channels)
                .map(|channel| f64::from(sample_at(format, block, channel)))
                .sum();
            sum / channels as f64
        })
        .collect();
    let resampled = resample(&mono, format.rate);

    let frames = resampled
        .chunks(FRAME_SAMPLES)
        .map(|chunk| {
            let mut frame = [codec.silence(); FRAME_SAMPLES];
            for (code, sample) in frame.iter_mut().zip(chunk) {
                let clamped = sample
                    .round()
                    .clamp(f64::from(i16::MIN), f64::from(i16::MAX));
                *code = codec.encode(clamped as i16);
            }
            frame
        })
        .collect();
    Ok(frames)
}

fn check_supported(format: Format) -> Result<(), Error> {
    let encoding_ok = matches!(
        (format.format_tag, format.bits),
        (wav::PCM, 16) | (wav::MULAW, 8)
    );
    if encoding_ok && matches!(format.channels, 1 | 2) && RATES.contains(&format.rate) {
        return Ok(());
    }
    Err(Error::UnsupportedWav {
        format_tag: format.format_tag,
        bits: format.bits,
        channels: format.channels,
        rate: format.rate,
    })
}

fn sample_at(format: Format, block: &[u8], channel: usize) -> i16 {
    if format.format_tag == wav::MULAW {
        g711::ulaw_decode(block[channel])
    } else {
        i16::from_le_bytes([block[2 * channel], block[2 * channel + 1]])
    }
}

/// Resamples `input` at `from` Hz to 8 kHz (see the module docs for the filter).
fn resample(input: &[f64], from: u32) -> Vec<f64> {
    if from == OUTPUT_RATE {
        return input.to_vec();
    }
    // Input samples per output sample, and the cutoff in cycles per input sample.
    let step = f64::from(from) / f64::from(OUTPUT_RATE);
    let cutoff = CUTOFF_HZ / f64::from(from);
    // sinc(2·cutoff·t) crosses zero every 1/(2·cutoff) input samples.
    let half_width = ZERO_CROSSINGS / (2.0 * cutoff);
    let out_len = (input.len() as f64 / step).floor() as usize;
    let last = input.len() as f64 - 1.0;
    (0..out_len)
        .map(|n| {
            let center = n as f64 * step;
            let first = (center - half_width).ceil().max(0.0) as usize;
            let end = (center + half_width).floor().min(last) as usize;
            let mut sum = 0.0;
            let mut weight = 0.0;
            for (k, x) in input.iter().enumerate().take(end + 1).skip(first) {
                let t = k as f64 - center;
                let tap = sinc(2.0 * cutoff * t) * blackman(t / half_width);
                sum += x * tap;
                weight += tap;
            }
            if weight.abs() < 1e-9 {
                0.0
            } else {
                sum / weight
            }
        })
        .collect()
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// The Blackman window on [-1, 1]: 1 at the centre, 0 at the ends, with side lobes low
/// enough (-58 dB) that the stop band stays quiet.
fn blackman(x: f64) -> f64 {
    if x.abs() >= 1.0 {
        return 0.0;
    }
    let phase = std::f64::consts::PI * (x + 1.0);
    0.42 - 0.5 * phase.cos() + 0.08 * (2.0 * phase).cos()
}
