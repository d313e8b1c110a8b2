//! A private clamd for tests: Debian's `/usr/sbin/clamd` started in a temporary folder with its
//! own configuration, listening on a Unix socket there and on a free loopback TCP port, and
//! loading one custom signature that matches the EICAR test string anywhere in a file. Nothing is
//! downloaded and the system's clamd (if any) is left alone.
//!
//! The EICAR string itself appears nowhere in the source: [`eicar`] joins two halves at run time,
//! so no file of the repository trips a virus scanner.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{Address, Scanner, ScannerSettings};

/// The first 32 bytes of the EICAR string in hex, as ClamAV's `.ndb` format wants them.
pub const EICAR_HEX: &str = "58354f2150254041505b345c505a58353428505e2937434329377d2445494341";

/// The signature's name as clamd reports it (custom signatures get `.UNOFFICIAL`).
pub const EICAR_SIGNATURE: &str = "Genkan.Test.EICAR.UNOFFICIAL";

/// clamd's `StreamMaxLength` in the test configuration (4 MiB).
pub const STREAM_MAX_LENGTH: u64 = 4 * 1024 * 1024;

const CLAMD: &str = "/usr/sbin/clamd";

/// The 68-byte EICAR anti-virus test file.
pub fn eicar() -> Vec<u8> {
    let first = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR";
    let second = "-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    [first, second].concat().into_bytes()
}

/// A running test clamd; stopped and its folder removed when dropped.
pub struct Clamd {
    child: Option<Child>,
    dir: PathBuf,
    /// Its Unix socket.
    pub socket: PathBuf,
    /// Its TCP address on loopback.
    pub tcp: SocketAddr,
}

impl Clamd {
    /// Starts clamd and waits until it answers PING (at most 60 s; loading one signature takes
    /// about a second). Panics with clamd's own log when it cannot start.
    pub async fn start() -> Self {
        assert!(
            Path::new(CLAMD).exists(),
            "{CLAMD} is missing: install Debian's clamav-daemon (scripts/test does)"
        );
        let mut last_failure = String::new();
        // The TCP port is found free and then bound by clamd; another process can take it in
        // between, so a start that fails is tried again with a new port.
        for _ in 0..3 {
            match Self::try_start().await {
                Ok(clamd) => return clamd,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("the test clamd did not start: {last_failure}");
    }

    /// Settings for a scanner that talks to this clamd through its Unix socket.
    pub fn unix_settings(&self, max_bytes: u64) -> ScannerSettings {
        ScannerSettings {
            address: Address::Unix(self.socket.clone()),
            connect_timeout: Duration::from_secs(2),
            scan_timeout: Duration::from_secs(20),
            max_bytes,
        }
    }

    /// Settings for a scanner that talks to this clamd over TCP.
    pub fn tcp_settings(&self, max_bytes: u64) -> ScannerSettings {
        ScannerSettings {
            address: Address::Tcp(self.tcp.to_string()),
            ..self.unix_settings(max_bytes)
        }
    }

    /// clamd's log so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("clamd.log")).unwrap_or_default()
    }

    /// Stops clamd the way an administrator would (`SHUTDOWN`), and kills it if it lingers.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        #[cfg(unix)]
        if let Ok(mut socket) = tokio::net::UnixStream::connect(&self.socket).await {
            use tokio::io::AsyncWriteExt;
            let _ = socket.write_all(b"zSHUTDOWN\0").await;
        }
        for _ in 0..200 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    async fn try_start() -> Result<Self, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Short: a Unix socket path must fit in 108 bytes.
        let dir = std::env::temp_dir().join(format!("gk-clamd-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let database = dir.join("db");
        std::fs::create_dir_all(&database).map_err(|error| error.to_string())?;
        std::fs::write(
            database.join("genkan-test.ndb"),
            format!("Genkan.Test.EICAR:0:*:{EICAR_HEX}\n"),
        )
        .map_err(|error| error.to_string())?;
        let tcp = free_loopback_port().map_err(|error| error.to_string())?;
        let socket = dir.join("clamd.sock");
        // No `User` line: clamd then keeps the identity it was started with (root in CI
        // containers, the developer otherwise), which can read this folder either way.
        let config = format!(
            "Foreground yes\nLogFile {log}\nLocalSocket {socket}\nTCPSocket {port}\nTCPAddr 127.0.0.1\n\
             DatabaseDirectory {database}\nTemporaryDirectory {dir}\nStreamMaxLength {STREAM_MAX_LENGTH}\n\
             MaxThreads 4\nSelfCheck 0\n",
            log = dir.join("clamd.log").display(),
            socket = socket.display(),
            port = tcp.port(),
            database = database.display(),
            dir = dir.display(),
        );
        let config_path = dir.join("clamd.conf");
        std::fs::write(&config_path, config).map_err(|error| error.to_string())?;
        let child = Command::new(CLAMD)
            .arg(format!("--config-file={}", config_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("{CLAMD} could not run: {error}"))?;
        let mut clamd = Self {
            child: Some(child),
            dir,
            socket,
            tcp,
        };
        let scanner = Scanner::new(clamd.unix_settings(1));
        for _ in 0..2400 {
            if scanner.ping().await.is_ok() {
                return Ok(clamd);
            }
            let exited = clamd
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(format!("clamd exited ({status}):\n{}", clamd.log()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let log = clamd.log();
        clamd.stop().await;
        Err(format!("clamd did not answer PING within 60 s:\n{log}"))
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_loopback_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}
