//! Announcements: the WAV prompts an administrator puts in `[voice] prompts`, decoded once at
//! start into 20 ms frames of both G.711 laws, looked up by what the flow says.
//!
//! The center's commands carry a block's text, not its name, so a prompt is found by text:
//! `[voice.prompt_files]` maps texts to files, and the seed's two messages (nobody available,
//! outside hours) map to `nobody.wav` and `closed.wav` without configuration, so the seed
//! works by dropping two files in the folder. A text with no readable file plays a short
//! tone, so the caller still hears that something was said before the call goes on or ends.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use contact::flow::{Block, seed_flow};
use media::{Codec, FRAME_SAMPLES};

use crate::config::VoiceSettings;

type Frames = Vec<[u8; FRAME_SAMPLES]>;

/// One prompt in both laws, so no call decodes anything.
#[derive(Debug)]
pub(crate) struct Prompt {
    pcmu: Frames,
    pcma: Frames,
}

impl Prompt {
    /// The frames for a leg speaking `codec`.
    pub(crate) fn frames(&self, codec: Codec) -> &Frames {
        match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        }
    }
}

/// Every prompt genkan can play, by text.
#[derive(Debug)]
pub(crate) struct Prompts {
    by_text: HashMap<String, Arc<Prompt>>,
    tone: Arc<Prompt>,
}

impl Prompts {
    /// Reads and decodes the prompts; logs once which ones are missing or unreadable.
    pub(crate) fn load(settings: &VoiceSettings, data_dir: &Path) -> Self {
        Self::from_folder(&data_dir.join(&settings.prompts), &settings.prompt_files)
    }

    fn from_folder(folder: &Path, prompt_files: &BTreeMap<String, String>) -> Self {
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for (block, file) in [("nobody", "nobody.wav"), ("closed", "closed.wav")] {
            if let Some(Block::Say { text, .. }) = seed_flow("").blocks.get(block) {
                files.insert(text.clone(), file.to_owned());
            }
        }
        files.extend(prompt_files.clone());
        let mut by_text = HashMap::new();
        let mut missing = Vec::new();
        for (text, file) in files {
            let path = folder.join(&file);
            let decoded = std::fs::read(&path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| decode(&bytes).map_err(|error| error.to_string()));
            match decoded {
                Ok(prompt) => {
                    by_text.insert(text, Arc::new(prompt));
                }
                Err(error) => missing.push(format!("{} ({error})", path.display())),
            }
        }
        if !missing.is_empty() {
            tracing::warn!(
                missing = missing.join(", "),
                "voice prompts without a usable WAV play a short tone instead"
            );
        }
        tracing::info!(prompts = by_text.len(), folder = %folder.display(), "voice prompts loaded");
        Self {
            by_text,
            tone: Arc::new(tone()),
        }
    }

    /// The prompt for a text, or the tone.
    pub(crate) fn get(&self, text: &str) -> Arc<Prompt> {
        self.by_text
            .get(text)
            .map_or_else(|| Arc::clone(&self.tone), Arc::clone)
    }
}

fn decode(bytes: &[u8]) -> Result<Prompt, media::Error> {
    Ok(Prompt {
        pcmu: media::decode_prompt(bytes, Codec::Pcmu)?,
        pcma: media::decode_prompt(bytes, Codec::Pcma)?,
    })
}

/// Half a second of 425 Hz (the Japanese and European call-progress tone) at a moderate
/// level: audible, unmistakably not speech, and short.
fn tone() -> Prompt {
    let samples: Vec<i16> = (0..4000)
        .map(|n| {
            let phase = f64::from(n) * 2.0 * std::f64::consts::PI * 425.0 / 8000.0;
            (phase.sin() * 6000.0) as i16
        })
        .collect();
    let frames = |codec: Codec| -> Frames {
        samples
            .chunks(FRAME_SAMPLES)
            .map(|chunk| {
                let mut frame = [codec.silence(); FRAME_SAMPLES];
                for (code, sample) in frame.iter_mut().zip(chunk) {
                    *code = codec.encode(*sample);
                }
                frame
            })
            .collect()
    };
    Prompt {
        pcmu: frames(Codec::Pcmu),
        pcma: frames(Codec::Pcma),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_text(block: &str) -> String {
        match seed_flow("").blocks.get(block) {
            Some(Block::Say { text, .. }) => text.clone(),
            other => panic!("the seed's {block} is {other:?}"),
        }
    }

    #[test]
    fn seed_prompts_need_no_mapping_and_missing_files_play_the_tone() {
        let folder = std::env::temp_dir().join(format!("genkan-prompts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        // One second of 8 kHz 16-bit mono: 50 frames.
        let samples: Vec<u8> = (0..8000u32)
            .flat_map(|n| (((n % 40) as i16 - 20) * 500).to_le_bytes())
            .collect();
        let mut wav = Vec::new();
        for part in [
            &b"RIFF"[..],
            &(36 + samples.len() as u32).to_le_bytes(),
            b"WAVEfmt ",
            &16u32.to_le_bytes(),
            &1u16.to_le_bytes(),
            &1u16.to_le_bytes(),
            &8000u32.to_le_bytes(),
            &16000u32.to_le_bytes(),
            &2u16.to_le_bytes(),
            &16u16.to_le_bytes(),
            b"data",
            &(samples.len() as u32).to_le_bytes(),
            &samples,
        ] {
            wav.extend_from_slice(part);
        }
        std::fs::write(folder.join("nobody.wav"), &wav).unwrap();
        std::fs::write(folder.join("broken.wav"), b"not a wav").unwrap();
        let files = BTreeMap::from([
            ("menu".to_owned(), "broken.wav".to_owned()),
            ("again".to_owned(), "nobody.wav".to_owned()),
        ]);
        let prompts = Prompts::from_folder(&folder, &files);
        assert_eq!(
            prompts.get(&seed_text("nobody")).frames(Codec::Pcmu).len(),
            50
        );
        assert_eq!(prompts.get("again").frames(Codec::Pcma).len(), 50);
        // closed.wav is absent, menu's file is not a WAV, "other" has no mapping: the tone.
        for text in [seed_text("closed").as_str(), "menu", "other"] {
            assert_eq!(prompts.get(text).frames(Codec::Pcmu).len(), 25, "{text}");
        }
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn the_tone_is_half_a_second_of_sound_in_both_laws() {
        let tone = tone();
        for codec in [Codec::Pcmu, Codec::Pcma] {
            let frames = tone.frames(codec);
            assert_eq!(frames.len(), 25);
            let loud = frames
                .iter()
                .flatten()
                .filter(|code| codec.decode(**code).unsigned_abs() > 1000)
                .count();
            assert!(loud > 2000, "{codec:?}: {loud} loud samples");
        }
    }
}
