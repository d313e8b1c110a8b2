//! Prompt decoding: every accepted format comes out as 8 kHz frames of the same sound.

use std::io::Cursor;

use media::wav::{self, Format};
use media::{Codec, Error, FRAME_SAMPLES, decode_prompt};

use crate::signal::{amplitude_at, rms, tone, write_wav};

/// The decoded prompt as linear samples.
fn linear(frames: &[[u8; FRAME_SAMPLES]], codec: Codec) -> Vec<i16> {
    frames
        .iter()
        .flat_map(|frame| frame.iter().map(move |code| codec.decode(*code)))
        .collect()
}

#[test]
fn a_tone_survives_every_rate() {
    for rate in [8000, 16000, 22050, 44100, 48000] {
        // Half a second of 1 kHz at peak 10000.
        let samples = tone(1000.0, rate, 10000.0, 0, rate as usize / 2);
        let frames = decode_prompt(&write_wav(rate, &[samples]), Codec::Pcmu).unwrap();
        assert_eq!(frames.len(), 25, "{rate} Hz");
        let out = linear(&frames, Codec::Pcmu);
        // Away from the edges, where the filter sees only half its taps.
        let middle = &out[400..3600];
        let at_1k = amplitude_at(middle, 1000.0, 8000);
        assert!(
            (at_1k - 10000.0).abs() < 400.0,
            "{rate} Hz: 1 kHz at {at_1k}"
        );
        let at_2k = amplitude_at(middle, 2000.0, 8000);
        assert!(at_2k < 150.0, "{rate} Hz: 2 kHz at {at_2k}");
    }
}

#[test]
fn what_would_alias_is_filtered_out() {
    // 6 kHz cannot be represented at 8 kHz; without a low-pass it folds to 2 kHz.
    for rate in [16000, 22050, 44100, 48000] {
        let samples = tone(6000.0, rate, 10000.0, 0, rate as usize / 2);
        let frames = decode_prompt(&write_wav(rate, &[samples]), Codec::Pcmu).unwrap();
        let out = linear(&frames, Codec::Pcmu);
        let level = rms(&out[400..3600]);
        assert!(level < 150.0, "{rate} Hz: 6 kHz leaks at rms {level}");
    }
}

#[test]
fn stereo_is_mixed_down_and_a_law_legs_get_a_law() {
    let left = tone(500.0, 44100, 10000.0, 0, 44100 / 4);
    let right = vec![0; left.len()];
    let frames = decode_prompt(&write_wav(44100, &[left, right]), Codec::Pcma).unwrap();
    assert_eq!(frames.len(), 13); // 2000 samples: 12.5 frames
    let out = linear(&frames, Codec::Pcma);
    let at_500 = amplitude_at(&out[400..1600], 500.0, 8000);
    assert!((at_500 - 5000.0).abs() < 300.0, "{at_500}");
    // The padding of the last frame is A-law silence.
    assert_eq!(frames[12][FRAME_SAMPLES - 1], 0xD5);
}

fn mulaw_wav(codes: &[u8], declared: u32) -> Vec<u8> {
    let format = Format {
        format_tag: wav::MULAW,
        channels: 1,
        rate: 8000,
        bits: 8,
    };
    let mut bytes = wav::header(format, declared).to_vec();
    bytes.extend_from_slice(codes);
    bytes
}

#[test]
fn a_mulaw_prompt_at_8k_passes_through_unchanged() {
    let codes: Vec<u8> = (0..320).map(|i| (i * 7 % 256) as u8).collect();
    let frames = decode_prompt(&mulaw_wav(&codes, 320), Codec::Pcmu).unwrap();
    let expected: Vec<u8> = codes
        .iter()
        .map(|code| if *code == 0x7F { 0xFF } else { *code })
        .collect();
    assert_eq!(frames.concat(), expected);
}

#[test]
fn a_data_chunk_longer_than_the_file_plays_what_is_there() {
    let codes = [0x80u8; 200];
    let frames = decode_prompt(&mulaw_wav(&codes, u32::MAX), Codec::Pcmu).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1][39], 0x80);
    assert_eq!(frames[1][40], 0xFF);
}

#[test]
fn unsupported_formats_are_refused_with_what_is_supported() {
    let write = |spec: hound::WavSpec| {
        let mut cursor = Cursor::new(Vec::new());
        let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for _ in 0..spec.channels * 10 {
            match spec.sample_format {
                hound::SampleFormat::Int => writer.write_sample(0i32).unwrap(),
                hound::SampleFormat::Float => writer.write_sample(0f32).unwrap(),
            }
        }
        writer.finalize().unwrap();
        cursor.into_inner()
    };
    let spec = |channels, rate, bits, float| hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    for (channels, rate, bits, float) in [
        (1, 8000, 24, false),
        (1, 11025, 16, false),
        (3, 8000, 16, false),
        (1, 8000, 32, true),
        (1, 8000, 8, false),
    ] {
        let result = decode_prompt(&write(spec(channels, rate, bits, float)), Codec::Pcmu);
        let Err(error @ Error::UnsupportedWav { .. }) = result else {
            panic!("{channels} ch {rate} Hz {bits} bit accepted");
        };
        assert!(error.to_string().contains("16-bit PCM or 8-bit µ-law"));
    }
    assert!(matches!(
        decode_prompt(b"ID3\x04 not a wav", Codec::Pcmu),
        Err(Error::NotWav(_))
    ));
}
