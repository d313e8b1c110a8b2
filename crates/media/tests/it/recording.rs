//! Stereo recordings: channel placement, alignment, sizes, and repair after a crash.

use std::io::Cursor;
use std::time::Duration;

use media::{Error, FRAME_SAMPLES, Frame, Recorder, RecorderConfig, Side, recover};
use proptest::prelude::*;

use crate::signal::{amplitude_at, read_wav, rms, tone};

fn frame_of(samples: &[i16]) -> Frame {
    samples.try_into().unwrap()
}

fn tone_frame(hz: f64, index: usize) -> Frame {
    frame_of(&tone(
        hz,
        8000,
        8000.0,
        index * FRAME_SAMPLES,
        FRAME_SAMPLES,
    ))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn recorder() -> Recorder<Cursor<Vec<u8>>> {
    Recorder::new(Cursor::new(Vec::new()), RecorderConfig::default()).unwrap()
}

#[test]
fn each_leg_lands_on_its_own_channel_with_the_right_duration() {
    let mut recorder = recorder();
    for i in 0..100 {
        // The agent's frames come a little late and jittery; they still share slots.
        let i64 = i as u64;
        recorder
            .push(Side::Customer, ms(20 * i64), &tone_frame(440.0, i))
            .unwrap();
        recorder
            .push(
                Side::Agent,
                ms(20 * i64 + 3 + i64 % 5),
                &tone_frame(1000.0, i),
            )
            .unwrap();
    }
    assert_eq!(recorder.duration(), Duration::from_secs(2));
    let bytes = recorder.finish().unwrap().into_inner();

    let (spec, channels) = read_wav(&bytes);
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let (left, right) = (&channels[0], &channels[1]);
    assert_eq!(left.len(), 16000);
    assert_eq!(right.len(), 16000);
    assert!(amplitude_at(left, 440.0, 8000) > 7500.0);
    assert!(amplitude_at(left, 1000.0, 8000) < 100.0);
    assert!(amplitude_at(right, 1000.0, 8000) > 7500.0);
    assert!(amplitude_at(right, 440.0, 8000) < 100.0);
    // Exactly the samples given, not shifted by a slot.
    assert_eq!(left[..FRAME_SAMPLES], tone_frame(440.0, 0));
    assert_eq!(right[160 * 99..], tone_frame(1000.0, 99));
}

#[test]
fn a_missing_frame_is_silence_and_the_channels_stay_in_step() {
    let mut recorder = recorder();
    for i in 0..50u64 {
        recorder
            .push(Side::Customer, ms(20 * i), &tone_frame(440.0, i as usize))
            .unwrap();
        // The agent joins at 200 ms and loses frames 30–34.
        if i >= 10 && !(30..35).contains(&i) {
            recorder
                .push(Side::Agent, ms(20 * i), &tone_frame(1000.0, i as usize))
                .unwrap();
        }
    }
    let counters = recorder.counters();
    let bytes = recorder.finish().unwrap().into_inner();
    let (_, channels) = read_wav(&bytes);
    let (left, right) = (&channels[0], &channels[1]);
    assert_eq!((left.len(), right.len()), (8000, 8000));
    assert!(rms(&left[..1600]) > 5000.0);
    assert_eq!(rms(&right[..1600]), 0.0);
    assert!(rms(&right[1600..4800]) > 5000.0);
    assert_eq!(rms(&right[4800..5600]), 0.0);
    assert_eq!(right[5600..5760], tone_frame(1000.0, 35));
    assert_eq!(counters.filled, 10 + 5);
}

#[test]
fn one_silent_leg_does_not_hold_the_other_back() {
    let mut recorder = recorder();
    for i in 0..30u64 {
        recorder
            .push(Side::Agent, ms(20 * i), &tone_frame(1000.0, i as usize))
            .unwrap();
    }
    // Everything but the alignment window has been written already.
    assert_eq!(recorder.counters().slots, 30 - 10);
    let file_so_far = recorder.writer().get_ref().len();
    assert_eq!(file_so_far, 44 + 20 * 640);
}

#[test]
fn a_frame_whose_slot_is_taken_goes_to_the_next() {
    let mut recorder = recorder();
    // The agent's clock runs early: its second frame rounds into the first's slot.
    recorder
        .push(Side::Agent, ms(0), &tone_frame(1000.0, 0))
        .unwrap();
    recorder
        .push(Side::Agent, ms(9), &tone_frame(1000.0, 1))
        .unwrap();
    recorder
        .push(Side::Agent, ms(15), &tone_frame(1000.0, 2))
        .unwrap();
    // Both slot 0 and slot 1 are taken now: a third frame there is dropped.
    recorder
        .push(Side::Agent, ms(1), &tone_frame(1000.0, 9))
        .unwrap();
    assert_eq!(recorder.counters().dropped, 1);
    for i in 0..3u64 {
        recorder
            .push(Side::Customer, ms(20 * i), &tone_frame(440.0, i as usize))
            .unwrap();
    }
    let bytes = recorder.finish().unwrap().into_inner();
    let (_, channels) = read_wav(&bytes);
    assert_eq!(channels[1].len(), 3 * 160);
    assert_eq!(channels[1][160..320], tone_frame(1000.0, 1));
    assert_eq!(channels[1][320..], tone_frame(1000.0, 2));
}

#[test]
fn late_duplicate_and_far_frames() {
    let mut recorder = recorder();
    let frame = tone_frame(440.0, 0);
    for i in 0..20u64 {
        recorder.push(Side::Customer, ms(20 * i), &frame).unwrap();
        recorder.push(Side::Agent, ms(20 * i), &frame).unwrap();
    }
    // Slot 3 was written long ago.
    recorder.push(Side::Agent, ms(60), &frame).unwrap();
    assert_eq!(recorder.counters().dropped, 1);
    // A frame two hours ahead is a clock error, not two hours of silence.
    let far = recorder.push(Side::Agent, Duration::from_secs(7200), &frame);
    assert!(matches!(far, Err(Error::FrameOutOfRange { .. })));
    // A gap within reason is filled with silence on both channels.
    recorder
        .push(Side::Customer, Duration::from_secs(2), &frame)
        .unwrap();
    let bytes = recorder.finish().unwrap().into_inner();
    let (_, channels) = read_wav(&bytes);
    assert_eq!(channels[0].len(), 101 * 160);
    assert_eq!(rms(&channels[0][20 * 160..100 * 160]), 0.0);
}

#[test]
fn sizes_are_open_while_recording_then_patched() {
    let mut recorder = recorder();
    let u32_at =
        |bytes: &[u8], at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    for i in 0..5u64 {
        recorder
            .push(Side::Customer, ms(20 * i), &tone_frame(440.0, 0))
            .unwrap();
        recorder
            .push(Side::Agent, ms(20 * i), &tone_frame(440.0, 0))
            .unwrap();
    }
    let open = recorder.writer().get_ref().clone();
    assert_eq!((u32_at(&open, 4), u32_at(&open, 40)), (u32::MAX, u32::MAX));
    recorder.checkpoint().unwrap();
    let checked = recorder.writer().get_ref().clone();
    assert_eq!(
        (u32_at(&checked, 4), u32_at(&checked, 40)),
        (36 + 3200, 3200)
    );
    assert_eq!(read_wav(&checked).1[0].len(), 800);
    // Recording goes on after a checkpoint, appending at the end.
    recorder
        .push(Side::Customer, ms(100), &tone_frame(440.0, 0))
        .unwrap();
    recorder
        .push(Side::Agent, ms(100), &tone_frame(440.0, 0))
        .unwrap();
    let bytes = recorder.finish().unwrap().into_inner();
    assert_eq!((u32_at(&bytes, 4), u32_at(&bytes, 40)), (36 + 3840, 3840));
    assert_eq!(bytes.len(), 44 + 3840);
}

/// A recording of `slots` slots that was never finished, checkpointed after
/// `checkpoint` slots if given, and the finished file it would have become.
fn interrupted(slots: usize, checkpoint: Option<usize>) -> (Vec<u8>, Vec<u8>) {
    let mut recorder = recorder();
    for i in 0..slots {
        let at = ms(20 * i as u64);
        recorder
            .push(Side::Customer, at, &tone_frame(440.0, i))
            .unwrap();
        recorder
            .push(Side::Agent, at, &tone_frame(1000.0, i))
            .unwrap();
        if checkpoint == Some(i) {
            recorder.checkpoint().unwrap();
        }
    }
    let crashed = recorder.writer().get_ref().clone();
    let finished = recorder.finish().unwrap().into_inner();
    (crashed, finished)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_file_cut_anywhere_recovers_to_whole_frames(
        slots in 0usize..40,
        checkpoint in proptest::option::of(0usize..40),
        cut in any::<proptest::sample::Index>(),
    ) {
        let (crashed, finished) = interrupted(slots, checkpoint);
        prop_assert_eq!(crashed.len(), finished.len());
        let cut = cut.index(crashed.len() + 1);
        let mut file = crashed[..cut].to_vec();
        let recovery = recover(&file).unwrap();
        recovery.apply(&mut file);

        let whole_frames = cut.saturating_sub(44) / 4;
        prop_assert_eq!(file.len(), 44 + whole_frames * 4);
        prop_assert_eq!(recovery.duration(), Duration::from_micros(whole_frames as u64 * 125));
        let (spec, channels) = read_wav(&file);
        prop_assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
        prop_assert_eq!(channels[0].len(), whole_frames);
        // The audio is the finished file's, up to the cut.
        let (_, full) = read_wav(&finished);
        prop_assert_eq!(&channels[0][..], &full[0][..whole_frames]);
        prop_assert_eq!(&channels[1][..], &full[1][..whole_frames]);
    }
}

#[test]
fn a_finished_file_recovers_to_itself_and_strangers_are_refused() {
    let (_, finished) = interrupted(7, None);
    let mut file = finished.clone();
    recover(&finished).unwrap().apply(&mut file);
    assert_eq!(file, finished);

    let mono = crate::signal::write_wav(8000, &[vec![0; 800]]);
    assert!(matches!(recover(&mono), Err(Error::NotRecoverable(_))));
    assert!(matches!(recover(b"RIFX"), Err(Error::NotRecoverable(_))));
}
