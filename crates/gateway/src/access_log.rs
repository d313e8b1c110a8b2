//! The access log: one line per request, in nginx's `main` format (the seed's `log_format main`)
//! or as JSON lines.
//!
//! Lines are formatted on the request's task and written by one thread that owns the file, so a
//! slow disk never holds a request, and `SIGUSR1` can make it reopen the file after logrotate
//! moved it. A line is written when the response body is finished or abandoned, so
//! `$body_bytes_sent` is what really went out.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, FixedOffset};
use http::{HeaderMap, Method, StatusCode, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::Error;

/// Output format of the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"`
    NginxMain,
    /// One JSON object per line with the same fields and a few more (host, route, duration).
    Json,
}

enum Message {
    Line(String),
    Reopen,
}

/// Handle to the access log; cheap to clone, and a no-op when logging is off.
#[derive(Clone)]
pub struct AccessLog {
    sink: Option<mpsc::Sender<Message>>,
    format: AccessLogFormat,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("on", &self.sink.is_some())
            .field("format", &self.format)
            .finish()
    }
}

impl AccessLog {
    /// Opens (appending) the log file and starts its writer thread.
    pub fn open(path: &Path, format: AccessLogFormat) -> Result<Self, Error> {
        let file = open_append(path)?;
        let (sender, receiver) = mpsc::channel();
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(&path, file, &receiver))
            .map_err(|source| Error::AccessLog {
                path: PathBuf::from("(writer thread)"),
                source,
            })?;
        Ok(Self {
            sink: Some(sender),
            format,
        })
    }

    /// A log that records nothing (`access_log off`).
    pub fn off() -> Self {
        Self {
            sink: None,
            format: AccessLogFormat::NginxMain,
        }
    }

    /// Whether lines are written at all.
    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Asks the writer to close and reopen the file (after logrotate renamed it).
    pub fn reopen(&self) {
        if let Some(sink) = &self.sink {
            let _ = sink.send(Message::Reopen);
        }
    }

    /// Writes one finished request.
    pub fn record(
        &self,
        entry: &Entry,
        status: StatusCode,
        body_bytes_sent: u64,
        finished: DateTime<FixedOffset>,
    ) {
        let Some(sink) = &self.sink else { return };
        let line = match self.format {
            AccessLogFormat::NginxMain => entry.nginx_main(status, body_bytes_sent, finished),
            AccessLogFormat::Json => entry.json(status, body_bytes_sent, finished),
        };
        let _ = sink.send(Message::Line(line));
    }
}

fn open_append(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    options.open(path).map_err(|source| Error::AccessLog {
        path: path.to_owned(),
        source,
    })
}

fn write_loop(path: &Path, file: File, receiver: &mpsc::Receiver<Message>) {
    let mut out = BufWriter::new(file);
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        // Drain what is queued before flushing, so a burst costs one write system call.
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => {
                    if let Err(error) = out.write_all(line.as_bytes()) {
                        tracing::warn!(%error, path = %path.display(), "access log write failed");
                    }
                }
                Message::Reopen => {
                    let _ = out.flush();
                    match open_append(path) {
                        Ok(file) => out = BufWriter::new(file),
                        Err(error) => {
                            tracing::warn!(%error, "access log reopen failed; keeping the old file")
                        }
                    }
                }
            }
            next = receiver.try_recv().ok();
        }
        if let Err(error) = out.flush() {
            tracing::warn!(%error, path = %path.display(), "access log flush failed");
        }
    }
}

/// What is known about a request when it arrives.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Client address without port (`$remote_addr`).
    pub remote_addr: String,
    /// Authenticated user, when identity knows one (`$remote_user`).
    pub remote_user: Option<String>,
    /// Request method.
    pub method: Method,
    /// Path and query as requested.
    pub target: String,
    /// Protocol version.
    pub version: Version,
    /// `Host` or `:authority`.
    pub host: String,
    /// `Referer`.
    pub referer: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `X-Forwarded-For` as the client sent it.
    pub forwarded_for: Option<String>,
    /// Which route served it (`-` for built-in apps).
    pub route: String,
    /// When the request arrived, for the duration field of JSON lines.
    pub started: DateTime<FixedOffset>,
}

impl Entry {
    /// Collects the logged fields from a request head.
    pub fn new(
        remote_addr: String,
        method: Method,
        target: String,
        version: Version,
        headers: &HeaderMap,
        started: DateTime<FixedOffset>,
    ) -> Self {
        let text = |name: http::header::HeaderName| {
            headers
                .get(name)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        Self {
            remote_addr,
            remote_user: None,
            method,
            target,
            version,
            host: text(http::header::HOST).unwrap_or_default(),
            referer: text(http::header::REFERER),
            user_agent: text(http::header::USER_AGENT),
            forwarded_for: headers
                .get("x-forwarded-for")
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
            route: "-".into(),
            started,
        }
    }

    fn request_line(&self) -> String {
        format!(
            "{} {} {}",
            self.method,
            self.target,
            version_text(self.version)
        )
    }

    /// The line in nginx's `main` format, with nginx's escaping of quotes and non-ASCII bytes.
    pub fn nginx_main(
        &self,
        status: StatusCode,
        body_bytes_sent: u64,
        finished: DateTime<FixedOffset>,
    ) -> String {
        let field =
            |value: &Option<String>| value.as_deref().map_or_else(|| "-".to_owned(), escape);
        format!(
            "{} - {} [{}] \"{}\" {} {} \"{}\" \"{}\" \"{}\"\n",
            self.remote_addr,
            field(&self.remote_user),
            finished.format("%d/%b/%Y:%H:%M:%S %z"),
            escape(&self.request_line()),
            status.as_u16(),
            body_bytes_sent,
            field(&self.referer),
            field(&self.user_agent),
            field(&self.forwarded_for),
        )
    }

    /// The same facts as a JSON object on one line.
    pub fn json(
        &self,
        status: StatusCode,
        body_bytes_sent: u64,
        finished: DateTime<FixedOffset>,
    ) -> String {
        let duration_ms = (finished - self.started).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        let mut line = serde_json::json!({
            "time": finished.to_rfc3339(),
            "remote_addr": self.remote_addr,
            "remote_user": self.remote_user,
            "method": self.method.as_str(),
            "target": self.target,
            "protocol": version_text(self.version),
            "host": self.host,
            "status": status.as_u16(),
            "body_bytes_sent": body_bytes_sent,
            "referer": self.referer,
            "user_agent": self.user_agent,
            "x_forwarded_for": self.forwarded_for,
            "route": self.route,
            "duration_ms": duration_ms,
        })
        .to_string();
        line.push('\n');
        line
    }
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// nginx's log escaping: `"`, `\` and bytes outside printable ASCII become `\xHH`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte == b'"' || byte == b'\\' || !(0x20..0x7f).contains(&byte) {
            out.push_str(&format!("\\x{byte:02X}"));
        } else {
            out.push(byte as char);
        }
    }
    out
}

/// A response body that counts what it sends and logs the request when it is done or dropped.
pub struct LoggedBody<B> {
    inner: B,
    sent: u64,
    pending: Option<(AccessLog, Entry, StatusCode)>,
    clock: fn() -> DateTime<FixedOffset>,
}

impl<B> LoggedBody<B> {
    /// Wraps `inner`; `clock` supplies the finishing time (the server's clock module).
    pub fn new(
        inner: B,
        log: AccessLog,
        entry: Entry,
        status: StatusCode,
        clock: fn() -> DateTime<FixedOffset>,
    ) -> Self {
        Self {
            inner,
            sent: 0,
            pending: Some((log, entry, status)),
            clock,
        }
    }

    fn finish(&mut self) {
        if let Some((log, entry, status)) = self.pending.take() {
            log.record(&entry, status, self.sent, (self.clock)());
        }
    }
}

impl<B> Drop for LoggedBody<B> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<B> HttpBody for LoggedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    #[test]
    fn main_format_matches_the_seed_log_format() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "referer",
            HeaderValue::from_static("https://gw.example.jp/"),
        );
        headers.insert(
            "user-agent",
            HeaderValue::from_static("Mozilla/5.0 \"quoted\""),
        );
        let entry = Entry::new(
            "203.0.113.7".into(),
            Method::GET,
            "/fmi/iwp/cgi?-db=顧客".into(),
            Version::HTTP_11,
            &headers,
            at("2026-12-03T09:00:00+09:00"),
        );
        let line = entry.nginx_main(StatusCode::OK, 1234, at("2026-12-03T09:00:01+09:00"));
        assert_eq!(
            line,
            "203.0.113.7 - - [03/Dec/2026:09:00:01 +0900] \"GET /fmi/iwp/cgi?-db=\\xE9\\xA1\\xA7\\xE5\\xAE\\xA2 HTTP/1.1\" 200 1234 \"https://gw.example.jp/\" \"Mozilla/5.0 \\x22quoted\\x22\" \"-\"\n"
        );
    }

    #[test]
    fn json_lines_carry_route_and_duration() {
        let mut entry = Entry::new(
            "127.0.0.1".into(),
            Method::POST,
            "/login".into(),
            Version::HTTP_2,
            &HeaderMap::new(),
            at("2026-12-03T09:00:00+09:00"),
        );
        entry.route = "legacy".into();
        let line = entry.json(
            StatusCode::BAD_GATEWAY,
            10,
            at("2026-12-03T09:00:00.250+09:00"),
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["status"], 502);
        assert_eq!(value["protocol"], "HTTP/2.0");
        assert_eq!(value["route"], "legacy");
        assert_eq!(value["duration_ms"], 250.0);
    }
}
