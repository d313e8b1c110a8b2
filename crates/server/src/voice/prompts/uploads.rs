//! Uploaded prompts on disk: checking a WAV before anything is written, storing it under a
//! name genkan picks, and `uploads.json`, the text → file map that outlives a restart.
//!
//! The map is a JSON file in the prompts folder rather than a database table: the folder
//! already holds the files it names, so backing up or moving the folder moves the prompts
//! whole, and a restore cannot leave the map and the files out of step. Both the WAV and the
//! map are written to a temporary file in the same folder, synced, then renamed over the old
//! one, so a crash leaves the old state or the new, never half a file.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use super::{Prompt, Sound};
use crate::pages::Lang;

/// The largest upload taken: 20 MB is over a minute of 48 kHz stereo, and far more than a
/// telephone announcement needs.
pub(crate) const MAX_BYTES: usize = 20 * 1024 * 1024;
/// The longest prompt taken: five minutes (at 8 kHz, 2.4 MB of frames in each law).
pub(crate) const MAX_SECONDS: f64 = 300.0;
/// The map's file name in the prompts folder.
const MAP: &str = "uploads.json";
/// Names genkan gives uploads; only these are removed when replaced.
const PREFIX: &str = "upload-";

/// Why an upload was not taken.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No bytes (also what a browser sends when no file was chosen).
    Empty,
    /// Over [`MAX_BYTES`].
    TooLarge,
    /// Over [`MAX_SECONDS`].
    TooLong(f64),
    /// Not RIFF/WAVE, or an encoding the decoder does not take.
    Wav(media::Error),
    /// `[voice.prompt_files]` maps the text, and the config wins.
    Configured,
    /// No flow says the text.
    UnknownText,
    /// The file or the map could not be written.
    Io(std::io::Error),
    /// The request was not a well-formed multipart form.
    Form(String),
}

impl Refusal {
    /// What the administrator is told.
    pub(crate) fn message(&self, lang: Lang) -> String {
        let mb = MAX_BYTES / (1024 * 1024);
        match (self, lang) {
            (Self::Empty, Lang::Ja) => "ファイルが空です（ファイルが選ばれていません）。".into(),
            (Self::Empty, Lang::En) => "The file is empty (or no file was chosen).".into(),
            (Self::TooLarge, Lang::Ja) => format!("ファイルが大きすぎます（{mb} MB まで）。"),
            (Self::TooLarge, Lang::En) => format!("The file is too large (at most {mb} MB)."),
            (Self::TooLong(seconds), Lang::Ja) => {
                format!("長すぎます（{seconds:.0} 秒。5 分まで）。")
            }
            (Self::TooLong(seconds), Lang::En) => {
                format!("The prompt is too long ({seconds:.0} s; at most 5 minutes).")
            }
            (Self::Wav(media::Error::NotWav(why)), Lang::Ja) => {
                format!("WAV ファイルではありません（{why}）。")
            }
            (Self::Wav(media::Error::NotWav(why)), Lang::En) => {
                format!("This is not a WAV file ({why}).")
            }
            (Self::Wav(error), Lang::Ja) => format!("この WAV は再生できません: {error}"),
            (Self::Wav(error), Lang::En) => format!("This WAV cannot be played: {error}"),
            (Self::Configured, Lang::Ja) => {
                "この文は設定ファイルの [voice.prompt_files] で指定されています。変更はそちらで。"
                    .into()
            }
            (Self::Configured, Lang::En) => {
                "This text's file is set by [voice.prompt_files] in the config; change it there."
                    .into()
            }
            (Self::UnknownText, Lang::Ja) => "どのフローにもない文です。".into(),
            (Self::UnknownText, Lang::En) => "No flow says this text.".into(),
            (Self::Io(error), Lang::Ja) => format!("保存できませんでした: {error}"),
            (Self::Io(error), Lang::En) => format!("The file could not be saved: {error}"),
            (Self::Form(error), Lang::Ja) => format!("フォームを読めませんでした: {error}"),
            (Self::Form(error), Lang::En) => format!("The form could not be read: {error}"),
        }
    }

    /// Whether the server, not the file, is at fault.
    pub(crate) fn is_server_error(&self) -> bool {
        matches!(self, Self::Io(_))
    }
}

/// Refuses what would not play (or would be unreasonable to keep), else decodes it.
pub(super) fn check(bytes: &[u8]) -> Result<(Prompt, Sound), Refusal> {
    if bytes.is_empty() {
        return Err(Refusal::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return Err(Refusal::TooLarge);
    }
    // The header alone says how long it is: a long file is refused before the costly
    // resampling. A rate of 0 is left to the decoder, which refuses the format.
    let sound = super::sound(bytes).map_err(Refusal::Wav)?;
    if sound.rate > 0 && sound.seconds > MAX_SECONDS {
        return Err(Refusal::TooLong(sound.seconds));
    }
    super::decode(bytes).map_err(Refusal::Wav)
}

/// Writes the checked bytes as `upload-<hash>.wav`, points `text` at it in the map, and
/// removes the file `text` played before if it was an upload nothing else plays. The name
/// comes from the content, never from the browser, so it cannot reach outside the folder.
pub(super) fn store(folder: &Path, text: &str, bytes: &[u8]) -> Result<String, Refusal> {
    std::fs::create_dir_all(folder).map_err(Refusal::Io)?;
    let hash = crate::auth::sha256_hex(bytes);
    let file = format!("{PREFIX}{}.wav", &hash[..16]);
    write_atomically(folder, &file, bytes).map_err(Refusal::Io)?;
    let mut map = read_mapping(folder);
    let previous = map.insert(text.to_owned(), file.clone());
    let json = serde_json::to_vec_pretty(&map)
        .map_err(|error| Refusal::Io(std::io::Error::other(error)))?;
    write_atomically(folder, MAP, &json).map_err(Refusal::Io)?;
    if let Some(previous) = previous
        && previous != file
        && previous.starts_with(PREFIX)
        && !map.values().any(|other| *other == previous)
        && let Err(error) = std::fs::remove_file(folder.join(&previous))
    {
        tracing::warn!(%error, file = previous, "a replaced prompt could not be removed");
    }
    Ok(file)
}

/// The uploads' map; empty when there is none. A map that cannot be read is logged and
/// ignored, so a damaged file costs the uploads (they play the tone) but never the start.
pub(super) fn read_mapping(folder: &Path) -> BTreeMap<String, String> {
    let path = folder.join(MAP);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "uploaded prompts ignored");
            return BTreeMap::new();
        }
    };
    let map: BTreeMap<String, String> = match serde_json::from_slice(&bytes) {
        Ok(map) => map,
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "uploaded prompts ignored");
            return BTreeMap::new();
        }
    };
    // Only names genkan gave: a hand-edited map cannot point outside the folder.
    map.into_iter()
        .filter(|(_, file)| plain_file_name(file))
        .collect()
}

/// A name with no directory part that cannot be `.`, `..` or hidden.
pub(crate) fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
}

fn write_atomically(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let temp = folder.join(format!(".{name}.{}.tmp", crate::voice::token()));
    let written = (|| {
        let mut file = std::fs::File::create_new(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, folder.join(name))?;
        sync_folder(folder)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Makes the rename itself durable.
#[cfg(unix)]
fn sync_folder(folder: &Path) -> std::io::Result<()> {
    std::fs::File::open(folder)?.sync_all()
}

/// Windows cannot open a folder as a file; NTFS journals the rename.
#[cfg(not(unix))]
fn sync_folder(_folder: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_pass() {
        for good in ["upload-0123.wav", "nobody.wav", "menu 1.wav"] {
            assert!(plain_file_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden.wav",
            "../x.wav",
            "a/b.wav",
            "a\\b.wav",
            "/etc/passwd",
        ] {
            assert!(!plain_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn refusals_come_before_anything_is_decoded() {
        assert!(matches!(check(b""), Err(Refusal::Empty)));
        assert!(matches!(
            check(&vec![0u8; MAX_BYTES + 1]),
            Err(Refusal::TooLarge)
        ));
        assert!(matches!(
            check(b"ID3\x04 an mp3"),
            Err(Refusal::Wav(media::Error::NotWav(_)))
        ));
        // A header declaring ten minutes of 8 kHz 16-bit mono, with the data cut short
        // except for what it declares: refused by length without decoding.
        let long = 8000 * 2 * 600;
        let mut wav = Vec::new();
        for part in [
            &b"RIFF"[..],
            &(36u32 + long).to_le_bytes(),
            b"WAVEfmt ",
            &16u32.to_le_bytes(),
            &1u16.to_le_bytes(),
            &1u16.to_le_bytes(),
            &8000u32.to_le_bytes(),
            &16000u32.to_le_bytes(),
            &2u16.to_le_bytes(),
            &16u16.to_le_bytes(),
            b"data",
            &long.to_le_bytes(),
        ] {
            wav.extend_from_slice(part);
        }
        wav.resize(wav.len() + long as usize, 0);
        assert!(matches!(check(&wav), Err(Refusal::TooLong(s)) if (s - 600.0).abs() < 0.01));
    }
}
