//! Call recording: both legs into one stereo WAV, customer left and agent right, 8 kHz
//! 16-bit PCM (the layout Amazon Connect uses), written so that a crash loses at most
//! what the writer had not yet handed to the operating system.
//!
//! Alignment: each leg's frames come with their time since the recording began, which
//! places them in a 20 ms slot. Slots are written in order once both sides are in, or
//! once they fall more than [`RecorderConfig::window_slots`] behind the newest frame; a
//! side that sent nothing for a slot is silence there, so the channels never drift apart
//! however much one leg loses. A frame for a slot already written is dropped (counted).
//!
//! Crash safety: the header is written first with its two size fields set to
//! `0xFFFFFFFF` ("read to the end", which sox and ffmpeg accept), audio is appended
//! whole slots at a time, [`Recorder::checkpoint`] patches the sizes to what has been
//! written (so strict readers see everything up to it), and [`Recorder::finish`] patches
//! the final sizes. A file cut off anywhere (a crash, a full disk) is made valid again by
//! [`recover`], which trusts the file's length, not its header.
//!
//! Why not `hound` (the research's suggestion): its `WavWriter` has the right shape
//! (`Write + Seek`, a `flush` that patches the header as a checkpoint) but writes sizes
//! of zero until the first flush, so a crash before it leaves a file every reader calls
//! empty; it finalises in `Drop`, seeking and writing in a destructor where errors are
//! lost; it cannot open a cut-off file to repair it (its reader refuses a data length
//! past the end or not a multiple of the sample size); and its reader has no µ-law, which
//! prompts need. What this module needs of WAV is one fixed 44-byte header and a chunk
//! walk, about a hundred lines, so it is written here. `hound` remains a dev-dependency:
//! the tests read every file written or repaired here with it, as an independent reader.

use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use crate::Error;
use crate::g711::{FRAME_SAMPLES, Frame};
use crate::wav::{self, Format, HEADER_LEN, OPEN_SIZE};

/// The recording format: stereo, 8 kHz, 16-bit PCM.
pub const FORMAT: Format = Format {
    format_tag: wav::PCM,
    channels: 2,
    rate: 8000,
    bits: 16,
};

/// Bytes of one 20 ms slot of both channels.
const SLOT_BYTES: u64 = (FRAME_SAMPLES * 4) as u64;
/// The most audio a WAV can hold: the RIFF size (data + 36) must fit in 32 bits and
/// must not be mistaken for the open-size marker.
const MAX_DATA: u64 = (u32::MAX as u64 - 37) / SLOT_BYTES * SLOT_BYTES;

/// Which channel a leg is recorded on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The caller: left.
    Customer,
    /// The agent (or whatever the caller was bridged to): right.
    Agent,
}

/// Tuning of the alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderConfig {
    /// How many slots a side may lag behind the other before its missing frames become
    /// silence. Ten slots (200 ms) covers a jitter buffer's delay with room to spare.
    pub window_slots: u64,
    /// The largest forward jump of time, in slots, filled with silence; a frame further
    /// ahead is refused as a caller's clock error. Defaults to an hour.
    pub max_gap_slots: u64,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            window_slots: 10,
            max_gap_slots: 3600 * 50,
        }
    }
}

/// What the recorder did with the frames it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecorderCounters {
    /// Slots written.
    pub slots: u64,
    /// Frames dropped because their slot had been written or was taken twice over.
    pub dropped: u64,
    /// Slots in which one side (or both) was silence for want of a frame.
    pub filled: u64,
}

/// A stereo recording being written.
#[derive(Debug)]
pub struct Recorder<W: Write + Seek> {
    out: W,
    config: RecorderConfig,
    /// Slots not yet written, starting at slot number `counters.slots`.
    pending: VecDeque<[Option<Frame>; 2]>,
    counters: RecorderCounters,
}

impl<W: Write + Seek> Recorder<W> {
    /// Starts a recording at the beginning of `out` (a new, empty file) by writing its
    /// header.
    pub fn new(mut out: W, config: RecorderConfig) -> Result<Self, Error> {
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&wav::header(FORMAT, OPEN_SIZE))?;
        Ok(Self {
            out,
            config,
            pending: VecDeque::new(),
            counters: RecorderCounters::default(),
        })
    }

    /// Adds one 20 ms frame of `side`, `at` its time since the recording began.
    pub fn push(&mut self, side: Side, at: Duration, frame: &Frame) -> Result<(), Error> {
        // Round to the nearest slot, so frames that arrive a little early or late still
        // land in their own.
        let slot = (at.as_micros() + 10_000) / 20_000;
        let first = u128::from(self.counters.slots);
        if slot < first {
            self.counters.dropped += 1;
            return Ok(());
        }
        let index = slot - first;
        let newest = first + self.pending.len() as u128;
        if slot > newest + u128::from(self.config.max_gap_slots) {
            return Err(Error::FrameOutOfRange {
                at_ms: at.as_millis(),
                reason: "further ahead than the largest gap",
            });
        }
        let mut index = index as u64;
        // Slots a window or more behind this frame are done: write them (as silence
        // where nothing came) before making room, so a gap never piles up in memory.
        while index >= self.config.window_slots.max(1) {
            let front = self.pending.pop_front().unwrap_or([None, None]);
            self.write_slot(&front)?;
            index -= 1;
        }
        let index = index as usize;
        if index >= self.pending.len() {
            self.pending.resize(index + 1, [None, None]);
        }
        let channel = match side {
            Side::Customer => 0,
            Side::Agent => 1,
        };
        // A frame whose slot is taken goes to the next one if that is free: a leg whose
        // frames straddle slot boundaries then still fills every slot once.
        let mut index = index;
        if self.pending[index][channel].is_some() {
            index += 1;
            if index == self.pending.len() {
                self.pending.push_back([None, None]);
            }
            if self.pending[index][channel].is_some() {
                self.counters.dropped += 1;
                return Ok(());
            }
        }
        self.pending[index][channel] = Some(*frame);
        self.write_ready()
    }

    /// Patches the header's sizes to the audio written so far (slots still waiting for
    /// the other side, at most the alignment window, are not in the file yet), flushes,
    /// and goes on recording. Call it every few seconds so that a reader that knows
    /// nothing of [`recover`] still sees most of an interrupted call.
    pub fn checkpoint(&mut self) -> Result<(), Error> {
        self.patch_sizes()?;
        self.out.flush()?;
        Ok(())
    }

    /// Writes the slots still pending (missing sides as silence), the final sizes, and
    /// returns the writer.
    pub fn finish(mut self) -> Result<W, Error> {
        while let Some(slot) = self.pending.pop_front() {
            self.write_slot(&slot)?;
        }
        self.patch_sizes()?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// The writer, for a caller that wants to sync the file after a checkpoint.
    pub fn writer(&self) -> &W {
        &self.out
    }

    /// The counters so far.
    pub fn counters(&self) -> RecorderCounters {
        self.counters
    }

    /// Length of the recording written so far.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.counters.slots * 20)
    }

    /// Writes the complete slots at the front. (Slots too far behind the newest frame
    /// were written by [`Recorder::push`] before it made room.)
    fn write_ready(&mut self) -> Result<(), Error> {
        while let Some(front) = self.pending.front() {
            if front[0].is_none() || front[1].is_none() {
                break;
            }
            let Some(slot) = self.pending.pop_front() else {
                break;
            };
            self.write_slot(&slot)?;
        }
        Ok(())
    }

    fn write_slot(&mut self, slot: &[Option<Frame>; 2]) -> Result<(), Error> {
        if self.data_len() + SLOT_BYTES > MAX_DATA {
            return Err(Error::RecordingFull);
        }
        if slot[0].is_none() || slot[1].is_none() {
            self.counters.filled += 1;
        }
        let silence = [0; FRAME_SAMPLES];
        let left = slot[0].as_ref().unwrap_or(&silence);
        let right = slot[1].as_ref().unwrap_or(&silence);
        let mut bytes = [0u8; SLOT_BYTES as usize];
        for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
            chunk[0..2].copy_from_slice(&left[i].to_le_bytes());
            chunk[2..4].copy_from_slice(&right[i].to_le_bytes());
        }
        // One write per slot: a crash cuts at most this slot, and recovery keeps its
        // whole sample frames.
        self.out.write_all(&bytes)?;
        self.counters.slots += 1;
        Ok(())
    }

    fn data_len(&self) -> u64 {
        self.counters.slots * SLOT_BYTES
    }

    fn patch_sizes(&mut self) -> Result<(), Error> {
        let header = wav::header(FORMAT, self.data_len() as u32);
        self.out.seek(SeekFrom::Start(4))?;
        self.out.write_all(&header[4..8])?;
        self.out.seek(SeekFrom::Start(40))?;
        self.out.write_all(&header[40..44])?;
        self.out
            .seek(SeekFrom::Start(HEADER_LEN as u64 + self.data_len()))?;
        Ok(())
    }
}

/// How to repair a recording that was not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// The header to write over the file's first 44 bytes.
    pub header: [u8; HEADER_LEN],
    /// The length to cut the file to: the header and whole sample frames of audio.
    pub file_len: u64,
}

impl Recovery {
    /// Applies the repair to a file held in memory.
    pub fn apply(&self, file: &mut Vec<u8>) {
        file.resize(self.file_len as usize, 0);
        file[..HEADER_LEN].copy_from_slice(&self.header);
    }

    /// Audio in the repaired file.
    pub fn duration(&self) -> Duration {
        let frames = (self.file_len - HEADER_LEN as u64) / FORMAT.block_align() as u64;
        Duration::from_micros(frames * 1_000_000 / u64::from(FORMAT.rate))
    }
}

/// Works out the repair of a recording from its whole contents.
pub fn recover(file: &[u8]) -> Result<Recovery, Error> {
    recover_from_head(&file[..file.len().min(HEADER_LEN)], file.len() as u64)
}

/// Works out the repair from the file's first bytes (44 are enough) and its length, so
/// the server can repair an hour-long file without reading it.
///
/// Only files this module wrote are repaired: the canonical 44-byte header of
/// [`FORMAT`], audio after it to the end of the file. A file cut inside its header
/// becomes an empty recording. Whatever the header's size fields say, the audio is taken
/// to run to the end of the file, cut down to whole sample frames.
pub fn recover_from_head(head: &[u8], file_len: u64) -> Result<Recovery, Error> {
    let expected = wav::header(FORMAT, OPEN_SIZE);
    let head = &head[..head.len().min(HEADER_LEN)];
    let size_field = |at: usize| (4..8).contains(&at) || (40..44).contains(&at);
    let matches = head
        .iter()
        .zip(expected)
        .enumerate()
        .all(|(at, (got, want))| size_field(at) || *got == want);
    if !matches {
        return Err(Error::NotRecoverable(
            "the header is not the one genkan writes for recordings",
        ));
    }
    let audio = file_len.saturating_sub(HEADER_LEN as u64);
    let block_align = FORMAT.block_align() as u64;
    let data_len = (audio / block_align * block_align).min(MAX_DATA);
    Ok(Recovery {
        header: wav::header(FORMAT, data_len as u32),
        file_len: HEADER_LEN as u64 + data_len,
    })
}
