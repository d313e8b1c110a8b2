//! Call recordings on disk: `<data_dir>/recordings/<contact id>.wav`, written by
//! `media::Recorder` through a `BufWriter`, checkpointed every few seconds, and repaired at
//! start-up when the server stopped in the middle of a call.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use media::{Frame, Recorder, RecorderConfig, Side};

/// Slots (20 ms each) between checkpoints: five seconds.
const CHECKPOINT_SLOTS: u32 = 250;

/// The recordings folder (`0700`), made if missing, with every file a crash left unfinished
/// repaired. Returns the folder and how many files were repaired.
pub(crate) fn prepare(data_dir: &Path) -> Result<(PathBuf, usize)> {
    let dir = data_dir.join("recordings");
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut repaired = 0;
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "wav") {
            match repair(&path) {
                Ok(true) => repaired += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(file = %path.display(), "cannot repair a recording: {error:#}")
                }
            }
        }
    }
    Ok((dir, repaired))
}

/// Repairs one recording if its header does not describe the audio the file holds (the
/// server stopped before finishing it). Reads only the header.
pub(crate) fn repair(path: &Path) -> Result<bool> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut head = Vec::with_capacity(44);
    (&mut file).take(44).read_to_end(&mut head)?;
    let recovery = media::recover_from_head(&head, len)?;
    if recovery.file_len == len && head.as_slice() == recovery.header.as_slice() {
        return Ok(false);
    }
    file.set_len(recovery.file_len)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&recovery.header)?;
    file.sync_all()?;
    tracing::info!(file = %path.display(), seconds = recovery.duration().as_secs(), "repaired an unfinished recording");
    Ok(true)
}

/// One call's recording being written.
pub(crate) struct CallRecording {
    recorder: Recorder<BufWriter<File>>,
    name: String,
    since_checkpoint: u32,
}

impl CallRecording {
    /// Starts `<dir>/<contact>.wav`.
    pub(crate) fn create(dir: &Path, contact: u64) -> Result<Self> {
        let name = format!("{contact}.wav");
        let path = dir.join(&name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        crate::datadir::restrict_to_owner(&path)?;
        let recorder = Recorder::new(BufWriter::new(file), RecorderConfig::default())?;
        Ok(Self {
            recorder,
            name,
            since_checkpoint: 0,
        })
    }

    /// Adds one 20 ms slot of both legs.
    pub(crate) fn push(&mut self, at: Duration, heard: &[Option<Frame>; 2]) -> Result<()> {
        let sides = [Side::Customer, Side::Agent];
        for (side, frame) in sides.into_iter().zip(heard) {
            if let Some(frame) = frame {
                self.recorder.push(side, at, frame)?;
            }
        }
        self.since_checkpoint += 1;
        if self.since_checkpoint >= CHECKPOINT_SLOTS {
            self.since_checkpoint = 0;
            self.recorder.checkpoint()?;
        }
        Ok(())
    }

    /// Finishes the file; its name and length.
    pub(crate) fn finish(self) -> Result<(String, Duration)> {
        let duration = self.recorder.duration();
        let name = self.name;
        let mut writer = self.recorder.finish()?;
        writer.flush()?;
        Ok((name, duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_cut_off_mid_call_is_repaired_at_start_and_a_finished_one_left_alone() {
        let dir = std::env::temp_dir().join(format!("genkan-rec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (recordings, repaired) = prepare(&dir).unwrap();
        assert_eq!(repaired, 0);
        let tone: Frame = std::array::from_fn(|i| if i % 2 == 0 { 1000 } else { -1000 });
        let mut finished = CallRecording::create(&recordings, 1).unwrap();
        let mut cut = CallRecording::create(&recordings, 2).unwrap();
        for slot in 0..300u64 {
            let at = Duration::from_millis(slot * 20);
            finished.push(at, &[Some(tone), Some(tone)]).unwrap();
            cut.push(at, &[Some(tone), Some(tone)]).unwrap();
        }
        finished.finish().unwrap();
        // A crash after the last checkpoint: the buffered audio reaches the file (BufWriter
        // flushes when dropped), the header is never patched again.
        drop(cut);
        let before = std::fs::read(recordings.join("2.wav")).unwrap();
        let (_, repaired) = prepare(&dir).unwrap();
        assert_eq!(repaired, 1);
        let after = std::fs::read(recordings.join("2.wav")).unwrap();
        assert_ne!(before[..44], after[..44]);
        let data_len = u32::from_le_bytes([after[40], after[41], after[42], after[43]]);
        assert_eq!(u64::from(data_len) + 44, after.len() as u64);
        assert!(!repair(&recordings.join("1.wav")).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
