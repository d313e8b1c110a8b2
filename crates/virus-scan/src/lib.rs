//! A client for clamd, ClamAV's scanning daemon: genkan asks it whether data carries a virus.
//!
//! What it is: an adapter to one outside system. It speaks clamd's NUL-terminated commands
//! (`zINSTREAM`, `zPING`, `zVERSION`) over TCP (`host:port`) or a Unix socket, one connection per
//! command, and turns every answer into a [`Verdict`] or an [`Error`].
//! A scan can be fed piece by piece as a request body arrives ([`Scanner::begin`], [`Scan::feed`],
//! [`Scan::finish`]), so clamd has seen the data by the time the last byte is in.
//!
//! What it is not: a policy. Whether an unavailable scanner refuses or lets data through, and
//! what happens to infected data, is the caller's decision; this crate only reports.
//!
//! Invariants:
//! - Nothing clamd sends (or fails to send) can panic it: every reply is read with a size cap
//!   and a deadline, and anything unexpected is [`Error::Protocol`].
//! - No more than `max_bytes` are ever sent in one scan; the caller learns [`Error::TooLarge`]
//!   before clamd does. Keep `max_bytes` below clamd's `StreamMaxLength`, or clamd cuts the
//!   stream off and the scan ends in [`Error::ClamdError`].
//! - Every network step has a deadline: connecting and sending the command within
//!   `connect_timeout`, each piece of data and the final answer within `scan_timeout`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[cfg(any(test, feature = "test-support"))]
pub mod testing;

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `host:port` (clamd's `TCPAddr` and `TCPSocket`).
    Tcp(String),
    /// A Unix socket path (clamd's `LocalSocket`).
    Unix(PathBuf),
}

impl Address {
    /// Reads a socket path (anything containing `/`) or `host:port` (`127.0.0.1:3310`,
    /// `[::1]:3310`, `clamd.lan:3310`). `None` when the text is neither.
    pub fn parse(text: &str) -> Option<Self> {
        if text.contains('/') {
            return Some(Self::Unix(PathBuf::from(text)));
        }
        let (host, port) = text.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let host_ok = !host.is_empty() && !host.contains(char::is_whitespace);
        (host_ok && port != 0).then(|| Self::Tcp(text.to_owned()))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(host_port) => f.write_str(host_port),
            Self::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How to reach clamd and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerSettings {
    /// Where clamd listens.
    pub address: Address,
    /// Time to connect and send a command.
    pub connect_timeout: Duration,
    /// Time clamd has to take each piece of data, and to answer once all of it was sent.
    pub scan_timeout: Duration,
    /// Most bytes one scan may carry.
    pub max_bytes: u64,
}

/// What clamd found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing.
    Clean,
    /// A signature matched.
    Infected {
        /// The signature's name as clamd reports it (`Win.Test.EICAR_HDB-1`).
        signature: String,
    },
}

/// Everything that can keep a scan from giving a verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// clamd could not be reached, or the connection broke.
    #[error("clamd at {address} is unavailable: {reason}")]
    Unavailable {
        /// Where it was expected.
        address: String,
        /// The transport error.
        reason: String,
    },
    /// clamd did not accept, take data or answer in time.
    #[error("clamd at {address} did not {step} within {timeout:?}")]
    Timeout {
        /// Where it was expected.
        address: String,
        /// What it did not do (`accept the connection`, `take the data`, `answer`).
        step: &'static str,
        /// The deadline that passed.
        timeout: Duration,
    },
    /// The data is larger than this scanner's `max_bytes`; nothing more was sent.
    #[error("more than the scan limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// clamd answered with an error (`INSTREAM size limit exceeded`, out of memory…).
    #[error("clamd reported an error: {0}")]
    ClamdError(String),
    /// clamd answered something this client does not understand.
    #[error("clamd sent an unexpected answer: {0:?}")]
    Protocol(String),
}

/// A client for one clamd. Cheap to clone: it holds settings, not connections.
#[derive(Debug, Clone)]
pub struct Scanner {
    settings: ScannerSettings,
}

/// Pieces of data larger than this are sent as several chunks, so that each timed write is short.
const CHUNK: usize = 1 << 20;
/// clamd's answers are one short line; anything longer is not clamd talking.
const MAX_REPLY: usize = 4096;

impl Scanner {
    /// A scanner for the clamd `settings` names. Nothing is contacted yet.
    pub fn new(settings: ScannerSettings) -> Self {
        Self { settings }
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &ScannerSettings {
        &self.settings
    }

    /// Most bytes one scan may carry.
    pub fn max_bytes(&self) -> u64 {
        self.settings.max_bytes
    }

    /// Asks clamd whether it is alive.
    pub async fn ping(&self) -> Result<(), Error> {
        let mut connection = self.command(b"zPING\0").await?;
        let reply =
            read_reply(&mut connection, &self.address(), self.settings.scan_timeout).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(Error::Protocol(reply))
        }
    }

    /// clamd's version line (`ClamAV 1.4.6/27000/…`; without the database part when only
    /// custom signatures are loaded).
    pub async fn version(&self) -> Result<String, Error> {
        let mut connection = self.command(b"zVERSION\0").await?;
        let reply =
            read_reply(&mut connection, &self.address(), self.settings.scan_timeout).await?;
        if reply.starts_with("ClamAV ") {
            Ok(reply)
        } else {
            Err(Error::Protocol(reply))
        }
    }

    /// Scans data held whole. Over `max_bytes`, clamd is not contacted at all.
    pub async fn scan(&self, data: &[u8]) -> Result<Verdict, Error> {
        if u64::try_from(data.len()).unwrap_or(u64::MAX) > self.settings.max_bytes {
            return Err(Error::TooLarge {
                limit: self.settings.max_bytes,
            });
        }
        let mut scan = self.begin().await?;
        scan.feed(data).await?;
        scan.finish().await
    }

    /// Opens a scan to be fed piece by piece.
    pub async fn begin(&self) -> Result<Scan, Error> {
        let connection = self.command(b"zINSTREAM\0").await?;
        Ok(Scan {
            connection,
            address: self.address(),
            scan_timeout: self.settings.scan_timeout,
            max_bytes: self.settings.max_bytes,
            sent: 0,
        })
    }

    fn address(&self) -> String {
        self.settings.address.to_string()
    }

    /// Connects and sends `command`, both within the connect timeout.
    async fn command(&self, command: &[u8]) -> Result<Connection, Error> {
        let address = self.address();
        let attempt = async {
            let mut connection = connect(&self.settings.address).await?;
            connection.write_all(command).await?;
            Ok::<_, std::io::Error>(connection)
        };
        match tokio::time::timeout(self.settings.connect_timeout, attempt).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(Error::Unavailable {
                address,
                reason: error.to_string(),
            }),
            Err(_) => Err(Error::Timeout {
                address,
                step: "accept the connection",
                timeout: self.settings.connect_timeout,
            }),
        }
    }
}

/// A scan in progress: `feed` it, then `finish` it. Dropping it abandons the scan (clamd sees
/// the connection close and forgets the data).
pub struct Scan {
    connection: Connection,
    address: String,
    scan_timeout: Duration,
    max_bytes: u64,
    sent: u64,
}

impl fmt::Debug for Scan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scan")
            .field("address", &self.address)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Scan {
    /// Sends the next piece of data. Refuses, without sending anything, a piece that would take
    /// the scan over its limit.
    pub async fn feed(&mut self, data: &[u8]) -> Result<(), Error> {
        let total = u64::try_from(data.len())
            .ok()
            .and_then(|length| self.sent.checked_add(length));
        match total {
            Some(total) if total <= self.max_bytes => {}
            _ => {
                return Err(Error::TooLarge {
                    limit: self.max_bytes,
                });
            }
        }
        for piece in data.chunks(CHUNK) {
            let length = u32::try_from(piece.len()).unwrap_or(u32::MAX);
            self.write(&length.to_be_bytes()).await?;
            self.write(piece).await?;
            self.sent += u64::from(length);
        }
        Ok(())
    }

    /// Bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Ends the data and waits for clamd's verdict.
    pub async fn finish(mut self) -> Result<Verdict, Error> {
        self.write(&0u32.to_be_bytes()).await?;
        let reply = read_reply(&mut self.connection, &self.address, self.scan_timeout).await?;
        stream_verdict(&reply)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match tokio::time::timeout(self.scan_timeout, self.connection.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.after_broken_write(&error).await),
            Err(_) => Err(Error::Timeout {
                address: self.address.clone(),
                step: "take the data",
                timeout: self.scan_timeout,
            }),
        }
    }

    /// clamd closes the connection after saying why (`INSTREAM size limit exceeded. ERROR`);
    /// that reason, when it can still be read, says more than the broken pipe does.
    async fn after_broken_write(&mut self, error: &std::io::Error) -> Error {
        let patience = self.scan_timeout.min(Duration::from_secs(1));
        match read_reply(&mut self.connection, &self.address, patience).await {
            Ok(reply) => match stream_verdict(&reply) {
                Err(error @ Error::ClamdError(_)) => error,
                _ => Error::Protocol(reply),
            },
            Err(_) => Error::Unavailable {
                address: self.address.clone(),
                reason: error.to_string(),
            },
        }
    }
}

/// A byte stream to clamd, whichever kind of socket carries it.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}
type Connection = Box<dyn Stream>;

async fn connect(address: &Address) -> std::io::Result<Connection> {
    match address {
        Address::Tcp(host_port) => {
            let stream = tokio::net::TcpStream::connect(host_port.as_str()).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
        }
        #[cfg(unix)]
        Address::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        #[cfg(not(unix))]
        Address::Unix(_) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "Unix sockets are not available here; give clamd's host:port",
        )),
    }
}

/// Reads one NUL-terminated answer (or what came before the connection closed), at most
/// [`MAX_REPLY`] bytes, within `timeout`.
async fn read_reply(
    connection: &mut Connection,
    address: &str,
    timeout: Duration,
) -> Result<String, Error> {
    let reading = async {
        let mut reply = Vec::new();
        let mut buffer = [0u8; 512];
        loop {
            let read = connection.read(&mut buffer).await?;
            if read == 0 {
                return Ok::<_, std::io::Error>(reply);
            }
            let piece = &buffer[..read];
            if let Some(end) = piece.iter().position(|&byte| byte == 0) {
                reply.extend_from_slice(&piece[..end]);
                return Ok(reply);
            }
            reply.extend_from_slice(piece);
            if reply.len() > MAX_REPLY {
                return Ok(reply);
            }
        }
    };
    let reply = match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => {
            return Err(Error::Unavailable {
                address: address.to_owned(),
                reason: error.to_string(),
            });
        }
        Err(_) => {
            return Err(Error::Timeout {
                address: address.to_owned(),
                step: "answer",
                timeout,
            });
        }
    };
    if reply.is_empty() {
        return Err(Error::Unavailable {
            address: address.to_owned(),
            reason: "the connection closed without an answer".into(),
        });
    }
    if reply.len() > MAX_REPLY {
        let start = String::from_utf8_lossy(&reply[..64]).into_owned();
        return Err(Error::Protocol(format!(
            "{start}… (over {MAX_REPLY} bytes)"
        )));
    }
    Ok(String::from_utf8_lossy(&reply).trim_end().to_owned())
}

/// Reads an INSTREAM answer: `stream: OK`, `stream: <signature> FOUND`, `<text> ERROR`.
fn stream_verdict(reply: &str) -> Result<Verdict, Error> {
    let text = reply.strip_prefix("stream:").map_or(reply, str::trim_start);
    if text == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(signature) = text.strip_suffix(" FOUND") {
        let signature = signature.trim();
        if !signature.is_empty() {
            return Ok(Verdict::Infected {
                signature: signature.to_owned(),
            });
        }
    }
    if let Some(message) = text.strip_suffix("ERROR") {
        let message = message.trim().trim_end_matches('.').trim();
        return Err(Error::ClamdError(if message.is_empty() {
            "unspecified error".to_owned()
        } else {
            message.to_owned()
        }));
    }
    Err(Error::Protocol(reply.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Clamd, EICAR_SIGNATURE, STREAM_MAX_LENGTH, eicar};

    #[test]
    fn addresses_are_paths_or_host_and_port() {
        assert_eq!(
            Address::parse("/run/clamav/clamd.ctl"),
            Some(Address::Unix("/run/clamav/clamd.ctl".into()))
        );
        assert_eq!(
            Address::parse("127.0.0.1:3310"),
            Some(Address::Tcp("127.0.0.1:3310".into()))
        );
        assert_eq!(
            Address::parse("[::1]:3310"),
            Some(Address::Tcp("[::1]:3310".into()))
        );
        for bad in [
            "clamd",
            "127.0.0.1",
            "127.0.0.1:0",
            ":3310",
            "host:99999",
            "",
        ] {
            assert_eq!(Address::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_instream_answer_is_read_without_panicking() {
        let infected = |name: &str| Verdict::Infected {
            signature: name.to_owned(),
        };
        assert_eq!(stream_verdict("stream: OK").ok(), Some(Verdict::Clean));
        assert_eq!(
            stream_verdict("stream: Win.Test.EICAR_HDB-1 FOUND").ok(),
            Some(infected("Win.Test.EICAR_HDB-1"))
        );
        assert!(matches!(
            stream_verdict("INSTREAM size limit exceeded. ERROR"),
            Err(Error::ClamdError(text)) if text == "INSTREAM size limit exceeded"
        ));
        assert!(matches!(
            stream_verdict("stream: ERROR"),
            Err(Error::ClamdError(text)) if text == "unspecified error"
        ));
        for garbage in [
            "",
            "stream:",
            "stream:  FOUND",
            "PONG",
            "UNKNOWN COMMAND",
            "OK OK",
            "\u{fffd}",
        ] {
            assert!(
                matches!(stream_verdict(garbage), Err(Error::Protocol(_))),
                "{garbage:?}"
            );
        }
    }

    #[tokio::test]
    async fn nothing_listening_is_unavailable_not_a_hang() {
        let dir = std::env::temp_dir().join(format!("gk-noclamd-{}", std::process::id()));
        let scanner = Scanner::new(ScannerSettings {
            address: Address::Unix(dir.join("clamd.sock")),
            connect_timeout: Duration::from_secs(2),
            scan_timeout: Duration::from_secs(2),
            max_bytes: 1024,
        });
        assert!(matches!(
            scanner.scan(b"hello").await,
            Err(Error::Unavailable { .. })
        ));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let scanner = Scanner::new(ScannerSettings {
            address: Address::Tcp(port.to_string()),
            ..scanner.settings().clone()
        });
        assert!(matches!(
            scanner.ping().await,
            Err(Error::Unavailable { .. })
        ));
    }

    #[tokio::test]
    async fn a_peer_that_never_answers_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(socket);
        });
        let scanner = Scanner::new(ScannerSettings {
            address: Address::Tcp(address.to_string()),
            connect_timeout: Duration::from_secs(2),
            scan_timeout: Duration::from_millis(300),
            max_bytes: 1024,
        });
        let result = scanner.scan(b"hello").await;
        assert!(
            matches!(result, Err(Error::Timeout { step: "answer", .. })),
            "{result:?}"
        );
        held.abort();
    }

    #[tokio::test]
    async fn garbage_from_the_peer_is_a_protocol_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for answer in [
                &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
                &[b'x'; 10_000][..],
            ] {
                let (mut socket, _) = listener.accept().await.unwrap();
                // Read the command first: closing with it unread would reset the connection.
                let mut command = [0u8; 6];
                socket.read_exact(&mut command).await.unwrap();
                let _ = socket.write_all(answer).await;
            }
        });
        let scanner = Scanner::new(ScannerSettings {
            address: Address::Tcp(address.to_string()),
            connect_timeout: Duration::from_secs(2),
            scan_timeout: Duration::from_secs(2),
            max_bytes: 1024,
        });
        for _ in 0..2 {
            let result = scanner.ping().await;
            assert!(matches!(result, Err(Error::Protocol(_))), "{result:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clamd_over_its_unix_socket_and_tcp() {
        let clamd = Clamd::start().await;
        for settings in [clamd.unix_settings(1 << 20), clamd.tcp_settings(1 << 20)] {
            let scanner = Scanner::new(settings);
            scanner.ping().await.unwrap();
            let version = scanner.version().await.unwrap();
            assert!(version.starts_with("ClamAV 1."), "{version}");

            assert_eq!(
                scanner.scan(b"an ordinary letter").await.unwrap(),
                Verdict::Clean
            );
            assert_eq!(scanner.scan(b"").await.unwrap(), Verdict::Clean);
            assert_eq!(
                scanner.scan(&eicar()).await.unwrap(),
                Verdict::Infected {
                    signature: EICAR_SIGNATURE.to_owned()
                },
                "{}",
                clamd.log()
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scan_fed_in_pieces_finds_a_virus_split_across_them() {
        let clamd = Clamd::start().await;
        let scanner = Scanner::new(clamd.unix_settings(1 << 20));
        let mut data = vec![b'.'; 100_000];
        data.extend_from_slice(&eicar());
        data.extend(std::iter::repeat_n(b'.', 100_000));
        let mut scan = scanner.begin().await.unwrap();
        // Pieces of 7 bytes and an empty one: EICAR is cut in the middle, and an empty piece
        // must not end the stream early.
        scan.feed(&data[..100_030]).await.unwrap();
        scan.feed(b"").await.unwrap();
        for piece in data[100_030..].chunks(7) {
            scan.feed(piece).await.unwrap();
        }
        assert_eq!(scan.bytes_sent(), 200_068);
        assert!(matches!(
            scan.finish().await.unwrap(),
            Verdict::Infected { .. }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn data_over_the_limit_is_refused_before_clamd_sees_it() {
        let clamd = Clamd::start().await;
        let scanner = Scanner::new(clamd.unix_settings(1000));
        assert!(matches!(
            scanner.scan(&[b'a'; 1001]).await,
            Err(Error::TooLarge { limit: 1000 })
        ));
        let mut scan = scanner.begin().await.unwrap();
        scan.feed(&[b'a'; 600]).await.unwrap();
        assert!(matches!(
            scan.feed(&[b'a'; 401]).await,
            Err(Error::TooLarge { limit: 1000 })
        ));
        assert_eq!(scan.bytes_sent(), 600);
        // Exactly at the limit is fine.
        assert_eq!(scanner.scan(&[b'a'; 1000]).await.unwrap(), Verdict::Clean);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_limit_above_clamds_own_is_reported_as_clamds_error() {
        let clamd = Clamd::start().await;
        let scanner = Scanner::new(clamd.unix_settings(4 * STREAM_MAX_LENGTH));
        let big = vec![b'a'; usize::try_from(2 * STREAM_MAX_LENGTH).unwrap()];
        let result = scanner.scan(&big).await;
        assert!(
            matches!(&result, Err(Error::ClamdError(text)) if text.contains("size limit")),
            "{result:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_clamd_is_unavailable() {
        let mut clamd = Clamd::start().await;
        let scanner = Scanner::new(clamd.unix_settings(1024));
        scanner.ping().await.unwrap();
        clamd.stop().await;
        assert!(matches!(
            scanner.scan(b"hello").await,
            Err(Error::Unavailable { .. })
        ));
        let tcp = Scanner::new(clamd.tcp_settings(1024));
        assert!(matches!(tcp.ping().await, Err(Error::Unavailable { .. })));
    }
}
