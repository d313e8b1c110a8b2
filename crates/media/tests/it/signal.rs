//! Test signals and measurements.

use std::f64::consts::PI;
use std::io::Cursor;

/// `n` samples of a sine at `hz`, sampled at `rate`, peak `amplitude`, starting at
/// sample `from` (so consecutive frames join without a phase jump).
pub(crate) fn tone(hz: f64, rate: u32, amplitude: f64, from: usize, n: usize) -> Vec<i16> {
    (from..from + n)
        .map(|i| (amplitude * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

/// The amplitude of the `hz` component of `samples` (Goertzel's algorithm): for a pure
/// tone at `hz` with peak A over whole periods, about A.
pub(crate) fn amplitude_at(samples: &[i16], hz: f64, rate: u32) -> f64 {
    let w = 2.0 * PI * hz / f64::from(rate);
    let coefficient = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for sample in samples {
        let s0 = f64::from(*sample) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    2.0 * power.sqrt() / samples.len() as f64
}

pub(crate) fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Reads a WAV with hound: its spec and its channels de-interleaved.
pub(crate) fn read_wav(bytes: &[u8]) -> (hound::WavSpec, Vec<Vec<i16>>) {
    let reader = hound::WavReader::new(Cursor::new(bytes)).unwrap();
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    let samples: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
    let mut out = vec![Vec::new(); channels];
    for (i, sample) in samples.into_iter().enumerate() {
        out[i % channels].push(sample);
    }
    (spec, out)
}

/// Writes a 16-bit PCM WAV with hound.
pub(crate) fn write_wav(rate: u32, channels: &[Vec<i16>]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for i in 0..channels[0].len() {
        for channel in channels {
            writer.write_sample(channel[i]).unwrap();
        }
    }
    writer.finalize().unwrap();
    cursor.into_inner()
}
