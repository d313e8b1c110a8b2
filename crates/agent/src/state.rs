//! The state directory: the device's key and certificates, its enrolment, the report queue.
//!
//! ```text
//! device.json     server address, device id, report interval (written last at enrolment)
//! key.pem         the device's private key (PKCS#8), never sent anywhere
//! cert.pem        the client certificate genkan issued
//! ca.pem          genkan's device CA (the certificate's issuer)
//! server-ca.pem   the CA given with --ca-file at enrolment, trusted for genkan's HTTPS
//! queue/          reports not yet delivered (see queue.rs)
//! rejected/       reports the server refused as malformed, kept for the administrator
//! agent.lock      held by the running agent, so two never send the same queue
//! ```
//!
//! Everything is `0600` in a `0700` directory (on Unix; on Windows the directory under
//! ProgramData inherits its ACL, which admits administrators and SYSTEM).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// What the enrolment left for later runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Device {
    /// genkan's address, as given to `enrol --server`.
    pub(crate) server: String,
    /// The device's id in genkan's registry.
    pub(crate) device_id: String,
    /// The interval genkan asked for at enrolment.
    pub(crate) report_interval_seconds: u32,
}

/// The agent's state directory.
#[derive(Debug, Clone)]
pub(crate) struct StateDir {
    root: PathBuf,
}

/// The default state directory: systemd's `StateDirectory=` when set, else the usual place
/// for a system service's state on each OS.
pub(crate) fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may list several, separated by colons; the unit names one.
        if let Some(first) = dir.to_string_lossy().split(':').next() {
            return PathBuf::from(first);
        }
    }
    if cfg!(windows) {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
        PathBuf::from(base).join("genkan-agent")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/genkan-agent")
    } else {
        PathBuf::from("/var/lib/genkan-agent")
    }
}

impl StateDir {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Creates the directory (and a subdirectory) private to the agent's user.
    pub(crate) fn ensure(&self) -> Result<()> {
        private_dir(&self.root)
    }

    /// Takes the agent's lock, so that a second agent on the same state (a `run --once` next
    /// to the service) cannot send the same queued reports. Released when the file drops.
    pub(crate) fn lock(&self) -> Result<File> {
        self.ensure()?;
        let path = self.path("agent.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => bail!(
                "another genkan-agent is using {} (the service?); stop it first",
                self.root.display()
            ),
            Err(fs::TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// The enrolment, or an error saying to enrol first.
    pub(crate) fn device(&self) -> Result<Device> {
        let path = self.path("device.json");
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                "this device is not enrolled ({} is missing); run `genkan-agent enrol` first",
                path.display()
            ),
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", path.display()));
            }
        };
        serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))
    }

    pub(crate) fn read_text(&self, name: &str) -> Result<String> {
        let path = self.path(name);
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// Writes a file of the state directory atomically with mode `0600`.
    pub(crate) fn write_private(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.root, name, bytes)
    }
}

/// Creates `dir` (and its parents) with mode `0700`, and narrows an existing one to it.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(())
}

/// Writes `dir/name` so that a crash leaves either the old file or the new one, never half of
/// one: a temporary file (`.tmp-` prefix, which readers skip) is written, flushed to disk,
/// renamed over the name, and the directory entry is flushed too.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let temporary = dir.join(format!(".tmp-{name}"));
    let target = dir.join(name);
    // A temporary file left by a crash is stale: replace it.
    let _ = fs::remove_file(&temporary);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    drop(file);
    fs::rename(&temporary, &target)
        .with_context(|| format!("renaming {} to {}", temporary.display(), target.display()))?;
    sync_dir(dir)
}

/// Flushes a directory's entries (a rename or removal) to disk. Windows has no such call;
/// NTFS journals its metadata.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .with_context(|| format!("flushing {}", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TempDir;

    #[test]
    fn atomic_write_replaces_and_is_private() {
        let dir = TempDir::new("state-write");
        let state = StateDir::new(dir.path().join("state"));
        state.ensure().unwrap();
        state.write_private("cert.pem", b"one").unwrap();
        state.write_private("cert.pem", b"two").unwrap();
        assert_eq!(state.read_text("cert.pem").unwrap(), "two");
        assert!(!state.path(".tmp-cert.pem").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&state.path("cert.pem")), 0o600);
            assert_eq!(mode(state.root()), 0o700);
        }
    }

    #[test]
    fn a_stale_temporary_file_does_not_block_a_write() {
        let dir = TempDir::new("state-stale");
        let state = StateDir::new(dir.path().to_path_buf());
        state.ensure().unwrap();
        fs::write(state.path(".tmp-device.json"), b"{half").unwrap();
        state.write_private("device.json", b"{}").unwrap();
        assert_eq!(state.read_text("device.json").unwrap(), "{}");
    }

    #[test]
    fn not_enrolled_says_what_to_do() {
        let dir = TempDir::new("state-missing");
        let state = StateDir::new(dir.path().to_path_buf());
        let error = state.device().unwrap_err().to_string();
        assert!(error.contains("genkan-agent enrol"), "{error}");
    }

    #[test]
    fn a_second_agent_cannot_take_the_lock() {
        let dir = TempDir::new("state-lock");
        let state = StateDir::new(dir.path().to_path_buf());
        let held = state.lock().unwrap();
        let error = state.lock().unwrap_err().to_string();
        assert!(error.contains("another genkan-agent"), "{error}");
        drop(held);
        // Other tests in this binary start processes; a child forked while the lock file was
        // open shares its lock until its exec closes the (close-on-exec) descriptor, so the
        // lock may come free a moment after the drop.
        // So when it is refused, wait (bounded) for the lock to come free, then take it again.
        let mut relocked = state.lock();
        for _ in 0..10 {
            if relocked.is_ok() {
                break;
            }
            let file = File::open(state.path("agent.lock")).unwrap();
            let (free, freed) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = free.send(file.lock().map(|()| file));
            });
            let waited = freed
                .recv_timeout(std::time::Duration::from_secs(2))
                .expect("the lock came free within 2 s");
            drop(waited);
            relocked = state.lock();
        }
        relocked.unwrap();
    }
}
