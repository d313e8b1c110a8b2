//! Reports waiting to be delivered, one JSON file each in `state-dir/queue/`.
//!
//! A report is written here before any attempt to send it and removed only after the server
//! answered 2xx, so a crash or an unreachable server loses nothing. Files are named by a
//! sequence number (`00000000000000000042.json`), one more than the highest present, so name
//! order is the order of collection even when the clock jumps. Temporary files (`.tmp-…`)
//! of a write that did not finish are ignored and removed when the queue is opened.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::state::{private_dir, sync_dir, write_atomic};

/// Reports kept at most: 35 days at the default five minutes. Past this the oldest are
/// dropped, because a device away for longer than that is better described by its new
/// reports than by a disk filling up.
pub(crate) const MAX_QUEUED: usize = 10_000;

/// The on-disk queue.
#[derive(Debug)]
pub(crate) struct Queue {
    dir: PathBuf,
    rejected: PathBuf,
    limit: usize,
}

/// One queued report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) sequence: u64,
    pub(crate) path: PathBuf,
}

impl Queue {
    /// Opens (creating) the queue in `dir`; refused reports go to `rejected`.
    pub(crate) fn open(dir: PathBuf, rejected: PathBuf) -> Result<Self> {
        private_dir(&dir)?;
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            dir,
            rejected,
            limit: MAX_QUEUED,
        })
    }

    /// Adds a report at the end of the queue; drops the oldest beyond the limit
    /// ([`MAX_QUEUED`]) and returns how many it dropped.
    pub(crate) fn push(&self, report_json: &[u8]) -> Result<usize> {
        let entries = self.list()?;
        let next = entries.last().map_or(1, |entry| entry.sequence + 1);
        write_atomic(&self.dir, &file_name(next), report_json)?;
        let excess = (entries.len() + 1).saturating_sub(self.limit);
        for entry in entries.iter().take(excess) {
            self.remove(entry)?;
        }
        Ok(excess)
    }

    /// The queued reports, oldest first.
    pub(crate) fn list(&self) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let listing =
            fs::read_dir(&self.dir).with_context(|| format!("listing {}", self.dir.display()))?;
        for item in listing {
            let item = item.with_context(|| format!("listing {}", self.dir.display()))?;
            let name = item.file_name();
            if let Some(sequence) = parse_name(&name.to_string_lossy()) {
                entries.push(Entry {
                    sequence,
                    path: item.path(),
                });
            }
        }
        entries.sort_by_key(|entry| entry.sequence);
        Ok(entries)
    }

    pub(crate) fn read(&self, entry: &Entry) -> Result<Vec<u8>> {
        fs::read(&entry.path).with_context(|| format!("reading {}", entry.path.display()))
    }

    /// Removes a delivered report, durably: once this returns, a restart will not send it
    /// again.
    pub(crate) fn remove(&self, entry: &Entry) -> Result<()> {
        fs::remove_file(&entry.path)
            .with_context(|| format!("removing {}", entry.path.display()))?;
        sync_dir(&self.dir)
    }

    /// Moves a report the server refused as malformed out of the queue, so it does not block
    /// the reports behind it; it stays on disk for the administrator.
    pub(crate) fn reject(&self, entry: &Entry) -> Result<PathBuf> {
        private_dir(&self.rejected)?;
        let target = self.rejected.join(file_name(entry.sequence));
        fs::rename(&entry.path, &target)
            .with_context(|| format!("moving {} to {}", entry.path.display(), target.display()))?;
        sync_dir(&self.dir)?;
        Ok(target)
    }

    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    #[cfg(test)]
    fn with_limit(self, limit: usize) -> Self {
        Self { limit, ..self }
    }
}

fn file_name(sequence: u64) -> String {
    format!("{sequence:020}.json")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The queue directory inside a state directory.
pub(crate) fn open_in(state_root: &Path) -> Result<Queue> {
    Queue::open(state_root.join("queue"), state_root.join("rejected"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TempDir;

    fn queue(dir: &TempDir) -> Queue {
        open_in(dir.path()).unwrap()
    }

    #[test]
    fn reports_come_back_oldest_first() {
        let dir = TempDir::new("queue-order");
        let queue = queue(&dir);
        for n in 1..=12 {
            queue.push(format!("{{\"n\":{n}}}").as_bytes()).unwrap();
        }
        let entries = queue.list().unwrap();
        let bodies: Vec<String> = entries
            .iter()
            .map(|entry| String::from_utf8(queue.read(entry).unwrap()).unwrap())
            .collect();
        let expected: Vec<String> = (1..=12).map(|n| format!("{{\"n\":{n}}}")).collect();
        // 10, 11, 12 after 9: numeric order, not text order of short names.
        assert_eq!(bodies, expected);
    }

    #[test]
    fn removed_reports_are_gone_and_numbering_continues() {
        let dir = TempDir::new("queue-remove");
        let queue = queue(&dir);
        queue.push(b"a").unwrap();
        queue.push(b"b").unwrap();
        let first = queue.list().unwrap().remove(0);
        queue.remove(&first).unwrap();
        queue.push(b"c").unwrap();
        let entries = queue.list().unwrap();
        let sequences: Vec<u64> = entries.iter().map(|entry| entry.sequence).collect();
        assert_eq!(sequences, [2, 3]);
        assert_eq!(queue.read(&entries[1]).unwrap(), b"c");
    }

    #[test]
    fn a_half_written_temporary_file_is_ignored_and_cleaned() {
        let dir = TempDir::new("queue-temp");
        let queue = queue(&dir);
        queue.push(b"{\"whole\":true}").unwrap();
        let stray = queue.dir().join(".tmp-00000000000000000002.json");
        fs::write(&stray, b"{\"half").unwrap();
        fs::write(queue.dir().join("notes.txt"), b"x").unwrap();
        let entries = queue.list().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(queue.read(&entries[0]).unwrap(), b"{\"whole\":true}");
        // The next write takes the number the half-written file was meant to have.
        queue.push(b"{\"next\":true}").unwrap();
        assert_eq!(queue.list().unwrap()[1].sequence, 2);
        // Reopening (a restart) removes the stray temporary file.
        fs::write(&stray, b"{\"half").unwrap();
        let _reopened = open_in(dir.path()).unwrap();
        assert!(!stray.exists());
    }

    #[test]
    fn rejected_reports_leave_the_queue_but_not_the_disk() {
        let dir = TempDir::new("queue-reject");
        let queue = queue(&dir);
        queue.push(b"bad").unwrap();
        let entry = queue.list().unwrap().remove(0);
        let kept = queue.reject(&entry).unwrap();
        assert!(queue.list().unwrap().is_empty());
        assert_eq!(fs::read(kept).unwrap(), b"bad");
    }

    #[test]
    fn past_the_limit_the_oldest_are_dropped() {
        let dir = TempDir::new("queue-limit");
        let queue = queue(&dir).with_limit(3);
        for n in 1..=3 {
            assert_eq!(queue.push(format!("{n}").as_bytes()).unwrap(), 0);
        }
        assert_eq!(queue.push(b"4").unwrap(), 1);
        let entries = queue.list().unwrap();
        let bodies: Vec<Vec<u8>> = entries.iter().map(|e| queue.read(e).unwrap()).collect();
        assert_eq!(bodies, [b"2", b"3", b"4"]);
    }

    #[test]
    fn names_must_be_twenty_digits() {
        assert_eq!(parse_name("00000000000000000042.json"), Some(42));
        assert_eq!(parse_name("42.json"), None);
        assert_eq!(parse_name("0000000000000000004x.json"), None);
        assert_eq!(parse_name(".tmp-00000000000000000042.json"), None);
    }
}
