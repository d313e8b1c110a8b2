//! A host that answers from recorded outputs, so every OS's collector runs in tests here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, Utc};

use super::{Context, Host, Output};

/// A recorded output from `crates/posture/tests/fixtures`.
pub(crate) fn fixture(path: &str) -> String {
    let full = format!(
        "{}/../posture/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("{full}: {error}"))
}

pub(crate) fn context() -> Context {
    Context {
        now: "2026-12-09T00:10:00Z".parse().unwrap(),
        local_offset: FixedOffset::east_opt(9 * 3600).unwrap(),
        device_id: Some("dev-test".into()),
    }
}

/// Commands are keyed by their whole line ("clamdscan --version"); anything not recorded is
/// "not installed", any file not recorded is absent.
#[derive(Default)]
pub(crate) struct FakeHost {
    commands: BTreeMap<String, Output>,
    files: BTreeMap<String, String>,
    modified: BTreeMap<String, DateTime<Utc>>,
    existing: BTreeSet<String>,
}

impl FakeHost {
    pub(crate) fn command(mut self, line: &str, stdout: impl Into<String>) -> Self {
        self.commands.insert(
            line.to_owned(),
            Output {
                success: true,
                stdout: stdout.into(),
                stderr: String::new(),
            },
        );
        self
    }

    /// A command that exits non-zero but prints its answer.
    pub(crate) fn command_failing(mut self, line: &str, stdout: &str) -> Self {
        self.commands.insert(
            line.to_owned(),
            Output {
                success: false,
                stdout: stdout.to_owned(),
                stderr: String::new(),
            },
        );
        self
    }

    /// A command that exits non-zero with only an error message.
    pub(crate) fn command_error(mut self, line: &str, stderr: &str) -> Self {
        self.commands.insert(
            line.to_owned(),
            Output {
                success: false,
                stdout: String::new(),
                stderr: stderr.to_owned(),
            },
        );
        self
    }

    pub(crate) fn file(mut self, path: &str, text: impl Into<String>) -> Self {
        self.files.insert(path.to_owned(), text.into());
        self
    }

    pub(crate) fn modified_at(mut self, path: &str, at: &str) -> Self {
        self.modified.insert(path.to_owned(), at.parse().unwrap());
        self
    }

    pub(crate) fn existing(mut self, path: &str) -> Self {
        self.existing.insert(path.to_owned());
        self
    }
}

impl Host for FakeHost {
    async fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let line = std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        self.commands
            .get(&line)
            .cloned()
            .ok_or_else(|| "not installed".to_owned())
    }

    fn read_file(&self, path: &str, _max_bytes: u64) -> Result<String, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| "No such file or directory (os error 2)".to_owned())
    }

    fn modified(&self, path: &str) -> Option<DateTime<Utc>> {
        self.modified.get(path).copied()
    }

    fn exists(&self, path: &str) -> Option<bool> {
        Some(self.files.contains_key(path) || self.existing.contains(path))
    }

    fn hostname(&self) -> String {
        "fake-host".to_owned()
    }
}
