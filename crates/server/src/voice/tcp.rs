//! SIP over TCP: an accept loop and one task per connection that frames the byte stream
//! with `sip::frame` and hands whole messages to the switch, which answers on the same
//! connection through the writer it was given. The switch also dials connections of its own
//! (to a phone registered over TCP whose connection has closed); their messages come back the
//! same way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sip::{Frame, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Connections open at once; more are closed at once.
const MAX_CONNECTIONS: usize = 1024;
/// A connection that sends nothing (not even a CRLF keep-alive) for this long is closed.
pub(crate) const IDLE: Duration = Duration::from_secs(300);
/// How long a connection genkan dials may take to open.
const CONNECT: Duration = Duration::from_secs(5);

/// What the connections tell the switch.
pub(crate) enum StreamEvent {
    /// A peer connected; what is sent on `writer` goes out on its connection.
    Opened {
        peer: SocketAddr,
        writer: UnboundedSender<Vec<u8>>,
    },
    /// One framed message.
    Message { peer: SocketAddr, bytes: Vec<u8> },
    /// The stream cannot be framed any more (no Content-Length, too large): answer if the
    /// head is readable; the connection is closed after.
    Unframeable {
        peer: SocketAddr,
        bytes: Vec<u8>,
        error: sip::Error,
    },
    /// The connection is gone.
    Closed { peer: SocketAddr },
    /// A connection the switch dialed could not be opened; what was queued on it is dropped.
    Unreachable { peer: SocketAddr },
}

/// Accepts connections until the switch stops listening.
pub(crate) async fn accept(listener: TcpListener, events: UnboundedSender<StreamEvent>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        tracing::warn!(%peer, "too many SIP TCP connections; closing a new one");
                        continue;
                    };
                    let events = events.clone();
                    tokio::spawn(async move {
                        connection(stream, peer, events).await;
                        drop(slot);
                    });
                }
                Err(error) => tracing::debug!(%error, "SIP TCP accept failed"),
            },
            () = events.closed() => return,
        }
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, events: UnboundedSender<StreamEvent>) {
    let (outgoing, queued) = unbounded_channel::<Vec<u8>>();
    if events
        .send(StreamEvent::Opened {
            peer,
            writer: outgoing,
        })
        .is_err()
    {
        return;
    }
    serve(stream, peer, queued, events).await;
}

/// Opens a connection to `peer` in a task of its own and serves it like an accepted one. The
/// switch made the channel and writes to it at once: what it queues is sent once the
/// connection is open, so a request need not wait for the handshake.
pub(crate) fn dial(
    peer: SocketAddr,
    queued: UnboundedReceiver<Vec<u8>>,
    events: UnboundedSender<StreamEvent>,
) {
    tokio::spawn(async move {
        let failure = match tokio::time::timeout(CONNECT, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => return serve(stream, peer, queued, events).await,
            Ok(Err(error)) => error.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        tracing::info!(%peer, failure, "cannot open a SIP TCP connection");
        let _ = events.send(StreamEvent::Unreachable { peer });
    });
}

/// Writes what the switch queues and frames what the peer sends, until either side ends.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    mut queued: UnboundedReceiver<Vec<u8>>,
    events: UnboundedSender<StreamEvent>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    // The writer ends when the switch drops its sender (after `Closed`), having sent what
    // was queued.
    tokio::spawn(async move {
        while let Some(bytes) = queued.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let limits = Limits::default();
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16_384];
    'read: loop {
        loop {
            match sip::frame(&buffer, &limits) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::KeepAlive(len)) => {
                    buffer.drain(..len.min(buffer.len()));
                }
                Ok(Frame::Message(len)) => {
                    let bytes: Vec<u8> = buffer.drain(..len.min(buffer.len())).collect();
                    if events.send(StreamEvent::Message { peer, bytes }).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let bytes = std::mem::take(&mut buffer);
                    let _ = events.send(StreamEvent::Unframeable { peer, bytes, error });
                    break 'read;
                }
            }
        }
        tokio::select! {
            read = tokio::time::timeout(IDLE, reader.read(&mut chunk)) => match read {
                Ok(Ok(0) | Err(_)) | Err(_) => break,
                Ok(Ok(len)) => buffer.extend_from_slice(&chunk[..len]),
            },
            () = events.closed() => return,
        }
    }
    let _ = events.send(StreamEvent::Closed { peer });
}
