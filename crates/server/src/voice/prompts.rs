//! Announcements: the WAV prompts in `[voice] prompts`, decoded into 20 ms frames of both
//! G.711 laws, looked up by what the flow says.
//!
//! The center's commands carry a block's text, not its name, so a prompt is found by text.
//! Three sources say which file plays a text, the later winning: the seed's two messages
//! (nobody available, outside hours) play `nobody.wav` and `closed.wav` without
//! configuration; the admin page's uploads (`uploads.rs`, remembered in `uploads.json` in
//! the folder); `[voice.prompt_files]` in the config, which an administrator who writes the
//! config means literally. A text with no readable file plays a short tone, so the caller
//! still hears that something was said before the call goes on or ends.
//!
//! Everything is decoded at start and after each upload, never during a call. The decoded set
//! sits behind an `ArcSwap` in [`PromptLibrary`], shared by the switch and the admin page: an
//! upload swaps in a new set and the next prompt played comes from it, while frames a call
//! has already queued are its own copy and play on unchanged.

pub(crate) mod page;
mod uploads;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use contact::flow::{Block, seed_flow};
use media::{Codec, FRAME_SAMPLES};

use crate::config::VoiceSettings;
pub(crate) use uploads::{MAX_BYTES, Refusal, plain_file_name};

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

/// What the admin page shows about a text's file.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// File name in the prompts folder.
    pub(crate) file: String,
    /// The sound's length and rate, or why the file does not play.
    pub(crate) sound: Result<Sound, String>,
}

/// A WAV file's length and sample rate, as uploaded (before resampling).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sound {
    pub(crate) seconds: f64,
    pub(crate) rate: u32,
}

/// Every prompt genkan can play, by text.
#[derive(Debug, Clone)]
pub(crate) struct Prompts {
    by_text: HashMap<String, Arc<Prompt>>,
    entries: BTreeMap<String, Entry>,
    tone: Arc<Prompt>,
}

impl Prompts {
    /// Reads and decodes the prompts; logs once which ones are missing or unreadable.
    fn from_folder(
        folder: &Path,
        uploaded: &BTreeMap<String, String>,
        configured: &BTreeMap<String, String>,
    ) -> Self {
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for (block, file) in [("nobody", "nobody.wav"), ("closed", "closed.wav")] {
            if let Some(Block::Say { text, .. }) = seed_flow("").blocks.get(block) {
                files.insert(text.clone(), file.to_owned());
            }
        }
        // Later wins: uploads over the seed's names, the config over both.
        files.extend(uploaded.clone());
        files.extend(configured.clone());
        let mut prompts = Self {
            by_text: HashMap::new(),
            entries: BTreeMap::new(),
            tone: Arc::new(tone()),
        };
        let mut missing = Vec::new();
        for (text, file) in files {
            let path = folder.join(&file);
            let decoded = std::fs::read(&path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| decode(&bytes).map_err(|error| error.to_string()));
            let sound = match decoded {
                Ok((prompt, sound)) => {
                    prompts.by_text.insert(text.clone(), Arc::new(prompt));
                    Ok(sound)
                }
                Err(error) => {
                    missing.push(format!("{} ({error})", path.display()));
                    Err(error)
                }
            };
            prompts.entries.insert(text, Entry { file, sound });
        }
        if !missing.is_empty() {
            tracing::warn!(
                missing = missing.join(", "),
                "voice prompts without a usable WAV play a short tone instead"
            );
        }
        tracing::info!(prompts = prompts.by_text.len(), folder = %folder.display(), "voice prompts loaded");
        prompts
    }

    /// The prompt for a text, or the tone.
    pub(crate) fn get(&self, text: &str) -> Arc<Prompt> {
        self.by_text
            .get(text)
            .map_or_else(|| Arc::clone(&self.tone), Arc::clone)
    }

    /// Which file a text plays, and how it sounds; `None` for a text nothing maps.
    pub(crate) fn entry(&self, text: &str) -> Option<&Entry> {
        self.entries.get(text)
    }

    /// Every mapped text.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    /// The same set with `text` playing a freshly decoded upload. The `Arc`s are shared, so
    /// this copies no audio.
    fn with_upload(&self, text: &str, file: &str, prompt: Prompt, sound: Sound) -> Self {
        let mut next = self.clone();
        next.by_text.insert(text.to_owned(), Arc::new(prompt));
        next.entries.insert(
            text.to_owned(),
            Entry {
                file: file.to_owned(),
                sound: Ok(sound),
            },
        );
        next
    }
}

/// The prompts folder and its decoded prompts, swappable while calls run.
#[derive(Debug)]
pub(crate) struct PromptLibrary {
    folder: PathBuf,
    configured: BTreeMap<String, String>,
    current: ArcSwap<Prompts>,
    /// One upload at a time, so two never race on `uploads.json`.
    writing: Mutex<()>,
}

impl PromptLibrary {
    /// Reads the folder (`[voice] prompts` against the data directory) and decodes its prompts.
    pub(crate) fn load(settings: &VoiceSettings, data_dir: &Path) -> Arc<Self> {
        Self::open(
            data_dir.join(&settings.prompts),
            settings.prompt_files.clone(),
        )
    }

    fn open(folder: PathBuf, configured: BTreeMap<String, String>) -> Arc<Self> {
        let uploaded = uploads::read_mapping(&folder);
        let prompts = Prompts::from_folder(&folder, &uploaded, &configured);
        Arc::new(Self {
            folder,
            configured,
            current: ArcSwap::from_pointee(prompts),
            writing: Mutex::new(()),
        })
    }

    /// The prompt for a text as of now, or the tone.
    pub(crate) fn get(&self, text: &str) -> Arc<Prompt> {
        self.current.load().get(text)
    }

    /// The prompts as of now.
    pub(crate) fn current(&self) -> Arc<Prompts> {
        self.current.load_full()
    }

    /// The folder the files are in.
    pub(crate) fn folder(&self) -> &Path {
        &self.folder
    }

    /// Whether `[voice.prompt_files]` maps `text` (uploads for it would never play).
    pub(crate) fn configured(&self, text: &str) -> bool {
        self.configured.contains_key(text)
    }

    /// Checks an uploaded WAV, stores it under a name genkan picks, remembers that `text`
    /// plays it and swaps the decoded prompts so the next prompt played uses it. Blocking
    /// (decoding, fsync): call from a blocking thread. Returns the file name.
    pub(crate) fn install(&self, text: &str, bytes: &[u8]) -> Result<String, Refusal> {
        if self.configured(text) {
            return Err(Refusal::Configured);
        }
        let (prompt, sound) = uploads::check(bytes)?;
        let _writing = self
            .writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let file = uploads::store(&self.folder, text, bytes)?;
        let next = self.current().with_upload(text, &file, prompt, sound);
        self.current.store(Arc::new(next));
        Ok(file)
    }
}

fn decode(bytes: &[u8]) -> Result<(Prompt, Sound), media::Error> {
    let sound = sound(bytes)?;
    let prompt = Prompt {
        pcmu: media::decode_prompt(bytes, Codec::Pcmu)?,
        pcma: media::decode_prompt(bytes, Codec::Pcma)?,
    };
    Ok((prompt, sound))
}

/// Length and rate from the WAV's header, counting the sample frames the decoder would read
/// (the `data` chunk as declared, cut at the end of the file).
fn sound(bytes: &[u8]) -> Result<Sound, media::Error> {
    let layout = media::wav::layout(bytes)?;
    let format = layout.format;
    let available = bytes.len().saturating_sub(layout.data_start);
    let data_len = available.min(layout.declared_len as usize);
    let frames = data_len / format.block_align().max(1);
    let seconds = if format.rate == 0 {
        0.0
    } else {
        frames as f64 / f64::from(format.rate)
    };
    Ok(Sound {
        seconds,
        rate: format.rate,
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

    /// One second of 16-bit mono at `rate`: 50 frames once at 8 kHz.
    fn wav(rate: u32) -> Vec<u8> {
        let samples: Vec<u8> = (0..rate)
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
            &rate.to_le_bytes(),
            &(rate * 2).to_le_bytes(),
            &2u16.to_le_bytes(),
            &16u16.to_le_bytes(),
            b"data",
            &(samples.len() as u32).to_le_bytes(),
            &samples,
        ] {
            wav.extend_from_slice(part);
        }
        wav
    }

    fn temp_folder(tag: &str) -> PathBuf {
        let folder =
            std::env::temp_dir().join(format!("genkan-prompts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        folder
    }

    #[test]
    fn an_upload_plays_at_once_survives_a_restart_and_yields_to_the_config() {
        let folder = temp_folder("upload");
        let library = PromptLibrary::open(
            folder.clone(),
            BTreeMap::from([("configured".to_owned(), "menu.wav".to_owned())]),
        );
        let before = library.current();
        assert_eq!(library.get("greeting").frames(Codec::Pcmu).len(), 25);
        let file = library.install("greeting", &wav(16000)).unwrap();
        assert!(
            file.starts_with("upload-") && file.ends_with(".wav"),
            "{file}"
        );
        // The switch's next lookup has it; a set taken before (a call's) is unchanged.
        assert_eq!(library.get("greeting").frames(Codec::Pcma).len(), 50);
        assert_eq!(before.get("greeting").frames(Codec::Pcma).len(), 25);
        let entry = library.current().entry("greeting").cloned().unwrap();
        let sound = entry.sound.unwrap();
        assert_eq!((entry.file.as_str(), sound.rate), (file.as_str(), 16000));
        assert!((sound.seconds - 1.0).abs() < 1e-9);
        assert!(matches!(
            library.install("configured", &wav(8000)),
            Err(Refusal::Configured)
        ));

        // A second upload replaces the first, whose file goes.
        let second = library.install("greeting", &wav(8000)).unwrap();
        assert_ne!(second, file);
        assert!(!folder.join(&file).exists());
        assert!(folder.join(&second).exists());

        // After a restart the map brings it back; the config wins over an upload.
        let restarted = PromptLibrary::open(folder.clone(), BTreeMap::new());
        assert_eq!(restarted.current().entry("greeting").unwrap().file, second);
        let overridden = PromptLibrary::open(
            folder.clone(),
            BTreeMap::from([("greeting".to_owned(), "missing.wav".to_owned())]),
        );
        assert_eq!(overridden.get("greeting").frames(Codec::Pcmu).len(), 25);
        // No temporary files are left behind.
        let names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn seed_prompts_need_no_mapping_and_missing_files_play_the_tone() {
        let folder = std::env::temp_dir().join(format!("genkan-prompts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let wav = wav(8000);
        std::fs::write(folder.join("nobody.wav"), &wav).unwrap();
        std::fs::write(folder.join("broken.wav"), b"not a wav").unwrap();
        let files = BTreeMap::from([
            ("menu".to_owned(), "broken.wav".to_owned()),
            ("again".to_owned(), "nobody.wav".to_owned()),
        ]);
        let prompts = Prompts::from_folder(&folder, &BTreeMap::new(), &files);
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
