//! Upstreams that behave like the seed's legacy stack.
//!
//! `Iis6` answers like IIS 6 with classic ASP did: HTTP/1.0, `Server: Microsoft-IIS/6.0`,
//! no `Content-Length` (the body ends when the connection closes), absolute redirects built
//! from the Host it was sent, and no patience for chunked request bodies.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub head: String,
    pub body: Vec<u8>,
}

impl Seen {
    /// Value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

pub struct Iis6 {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

pub const PAGE_LEN: usize = 4096;

impl Iis6 {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let _ = serve(stream, addr, record).await;
                });
            }
        });
        Self { addr, seen }
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the upstream saw no request")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn serve(
    mut stream: TcpStream,
    own: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 65536 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut request = Seen {
        head,
        body: buffer[head_end..].to_vec(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"))
    {
        seen.lock().unwrap().push(request);
        return respond(
            &mut stream,
            "411 Length Required",
            "text/html",
            b"chunked bodies not accepted",
            &[],
        )
        .await;
    }
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while request.body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
    seen.lock().unwrap().push(request.clone());
    let path = request
        .head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let own_origin = format!("http://{own}");
    match path.split('?').next().unwrap_or("/") {
        "/echo" => {
            let body = format!(
                "method={}\npath={}\nhost={}\nx-forwarded-for={}\nx-forwarded-proto={}\nx-forwarded-host={}\ncontent-length={}\nbody={}\n",
                request.head.split_whitespace().next().unwrap_or(""),
                path,
                request.header("host").unwrap_or_default(),
                request.header("x-forwarded-for").unwrap_or_default(),
                request.header("x-forwarded-proto").unwrap_or_default(),
                request.header("x-forwarded-host").unwrap_or_default(),
                request.header("content-length").unwrap_or_default(),
                String::from_utf8_lossy(&request.body),
            );
            respond(&mut stream, "200 OK", "text/plain", body.as_bytes(), &[]).await
        }
        "/redirect" => {
            let location = format!("Location: {own_origin}/login.asp?from=redirect");
            let refresh = format!("Refresh: 0; URL={own_origin}/next.asp");
            respond(
                &mut stream,
                "302 Object Moved",
                "text/html",
                b"moved",
                &[&location, &refresh],
            )
            .await
        }
        "/page.html" => {
            respond(
                &mut stream,
                "200 OK",
                "text/html; charset=shift_jis",
                &page(PAGE_LEN),
                &[],
            )
            .await
        }
        "/image.png" => respond(&mut stream, "200 OK", "image/png", &page(PAGE_LEN), &[]).await,
        "/report.csv" => {
            let disposition = "Content-Disposition: attachment; filename=\"customers.csv\"";
            respond(
                &mut stream,
                "200 OK",
                "text/csv",
                b"id,name\n1,Suzuki\n",
                &[disposition],
            )
            .await
        }
        "/tiny.html" => respond(&mut stream, "200 OK", "text/html", b"<p>tiny</p>", &[]).await,
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            respond(&mut stream, "200 OK", "text/plain", b"finally", &[]).await
        }
        "/error" => {
            respond(
                &mut stream,
                "500 Internal Server Error",
                "text/html",
                b"IIS says: script error",
                &[],
            )
            .await
        }
        _ => respond(&mut stream, "404 Not Found", "text/html", b"not here", &[]).await,
    }
}

fn page(len: usize) -> Vec<u8> {
    b"<p>legacy page</p>\n"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    extra: &[&str],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.0 {status}\r\nServer: Microsoft-IIS/6.0\r\nX-Powered-By: ASP.NET\r\nContent-Type: {content_type}\r\n"
    );
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// A WebSocket upstream that answers each text message in upper case.
pub async fn websocket_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = socket.next().await {
                    if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                        let upper = text.to_uppercase();
                        if socket.send(upper.into()).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A listener that accepts connections and never answers (for 504).
pub async fn black_hole() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// An address where nothing listens (for 502).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}
