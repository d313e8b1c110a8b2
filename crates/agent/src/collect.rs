//! Collecting a report: run this OS's tools and hand their text to `posture`'s parsers.
//!
//! The collectors see the machine only through [`Host`] (run a command, read a file), so each
//! OS's collector is compiled and tested on every machine with a host that answers from the
//! recorded outputs in `crates/posture/tests/fixtures`; `cfg(target_os)` only picks which one
//! [`collect`] calls. A tool that is missing or fails becomes a line in the report's
//! `problems` and an "unknown" in its field; collection itself never fails.

// Each collector is compiled everywhere so that its tests run on any machine; only the one
// for this OS is called outside tests.
#[cfg_attr(any(target_os = "windows", target_os = "macos"), allow(dead_code))]
mod linux;
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
mod macos;
#[cfg_attr(not(target_os = "windows"), allow(dead_code))]
mod windows;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use posture::Report;

use crate::clock;

/// A tool slower than this is stuck (a hung network mount, a locked database); its part of
/// the report becomes a problem line instead.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Logs are read from their end, at most this much: recent detections are what matters.
pub(crate) const LOG_TAIL_BYTES: u64 = 1024 * 1024;
/// Detections kept in one report (the most recent).
pub(crate) const MAX_DETECTIONS: usize = 200;

/// What a tool printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) success: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The machine as the collectors see it.
pub(crate) trait Host {
    /// Runs a program; `Err` when it could not be run at all (not installed, timed out).
    async fn run(&self, program: &str, args: &[&str]) -> Result<Output, String>;
    /// Reads a text file, at most its last `max_bytes`.
    fn read_file(&self, path: &str, max_bytes: u64) -> Result<String, String>;
    /// When a file was last modified.
    fn modified(&self, path: &str) -> Option<DateTime<Utc>>;
    /// Whether a path exists; `None` when that cannot be known (no permission).
    fn exists(&self, path: &str) -> Option<bool>;
    /// The machine's host name.
    fn hostname(&self) -> String;
}

/// What a collector needs besides the host.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) now: DateTime<Utc>,
    pub(crate) local_offset: FixedOffset,
    pub(crate) device_id: Option<String>,
}

/// Collects a report for this machine with this OS's collector.
pub(crate) async fn collect(host: &impl Host, device_id: Option<String>) -> Report {
    let context = Context {
        now: clock::now(),
        local_offset: clock::local_offset(),
        device_id,
    };
    #[cfg(target_os = "windows")]
    return windows::collect(host, &context).await;
    #[cfg(target_os = "macos")]
    return macos::collect(host, &context).await;
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    return linux::collect(host, &context).await;
}

/// A tool's standard output, or why there is none. A failing tool that still printed its
/// answer (`systemctl is-active` exits 3 for "inactive") is an answer; a tool that printed
/// nothing and complained on standard error is not.
pub(crate) async fn output_text(
    host: &impl Host,
    program: &str,
    args: &[&str],
) -> Result<String, String> {
    let output = host.run(program, args).await?;
    let printed = !output.stdout.trim().is_empty();
    // PowerShell exits 0 after a non-terminating error, with the error on standard error.
    if printed || (output.success && output.stderr.trim().is_empty()) {
        return Ok(output.stdout);
    }
    let reason = output
        .stderr
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("failed without a message");
    Err(reason.to_owned())
}

/// Keeps the most recent detections, oldest first.
pub(crate) fn keep_recent(detections: &mut Vec<posture::Detection>) {
    detections.sort_by(|a, b| a.detected_at.cmp(&b.detected_at).then(a.id.cmp(&b.id)));
    detections.dedup_by(|a, b| a.id == b.id);
    let excess = detections.len().saturating_sub(MAX_DETECTIONS);
    detections.drain(..excess);
}

/// The real machine.
pub(crate) struct SystemHost;

impl Host for SystemHost {
    async fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            // Tools that translate their words (ufw, systemctl) must print the English the
            // parsers read.
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match tokio::time::timeout(TOOL_TIMEOUT, command.output()).await {
            Err(_) => Err(format!(
                "did not finish within {} s",
                TOOL_TIMEOUT.as_secs()
            )),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::NotFound => {
                Err("not installed".to_owned())
            }
            Ok(Err(error)) => Err(error.to_string()),
            Ok(Ok(output)) => Ok(Output {
                success: output.status.success(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }),
        }
    }

    fn read_file(&self, path: &str, max_bytes: u64) -> Result<String, String> {
        read_tail(Path::new(path), max_bytes).map_err(|error| error.to_string())
    }

    fn modified(&self, path: &str) -> Option<DateTime<Utc>> {
        let modified = std::fs::metadata(path).ok()?.modified().ok()?;
        Some(DateTime::<Utc>::from(modified))
    }

    fn exists(&self, path: &str) -> Option<bool> {
        Path::new(path).try_exists().ok()
    }

    fn hostname(&self) -> String {
        system_hostname()
    }
}

fn read_tail(path: &Path, max_bytes: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    let start = length.saturating_sub(max_bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(max_bytes).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // A tail that starts mid-line starts with half a line: drop it.
    Ok(if start > 0 {
        text.split_once('\n')
            .map_or_else(String::new, |(_, rest)| rest.to_owned())
    } else {
        text
    })
}

fn system_hostname() -> String {
    #[cfg(target_os = "windows")]
    let name = std::env::var("COMPUTERNAME").ok();
    #[cfg(target_os = "linux")]
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    #[cfg(not(any(target_os = "windows", target_os = "linux")))]
    let name = std::process::Command::new("hostname")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned());
    name.map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TempDir;

    #[test]
    fn a_tail_drops_its_first_partial_line() {
        let dir = TempDir::new("collect-tail");
        let path = dir.path().join("log");
        std::fs::write(&path, "first line\nsecond line\nthird\n").unwrap();
        assert_eq!(
            read_tail(&path, 1000).unwrap(),
            "first line\nsecond line\nthird\n"
        );
        assert_eq!(read_tail(&path, 14).unwrap(), "third\n");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn this_machine_gives_a_linux_report() {
        let report = collect(&SystemHost, Some("dev-1".into())).await;
        assert_eq!(report.os.family, posture::OsFamily::Linux);
        assert_ne!(
            report.os.name, "Linux",
            "os-release was not read: {:?}",
            report.problems
        );
        assert_eq!(report.device_id.as_deref(), Some("dev-1"));
        assert!(!report.hostname.is_empty());
        let age = clock::now() - report.collected_at;
        assert!(age.num_seconds() < 120, "{age}");
        // Missing tools are named, not fatal; the report still serialises.
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["os"]["family"], "linux");
        for problem in &report.problems {
            assert!(!problem.is_empty());
        }
    }

    #[tokio::test]
    async fn a_missing_program_is_not_installed() {
        let error = SystemHost
            .run("genkan-agent-no-such-tool", &[])
            .await
            .unwrap_err();
        assert_eq!(error, "not installed");
    }
}
