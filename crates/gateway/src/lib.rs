//! genkan's front door: the TLS listener and reverse proxy that replaces the seed's nginx.
//!
//! What it is: an adapter between the Internet and the company's apps.
//! It terminates TLS 1.2/1.3 with rustls (ECDHE and AEAD suites only), speaks HTTP/1.1 and HTTP/2
//! to clients, routes each request by host and path prefix either to a legacy upstream
//! (for example an IIS6 app on `http://127.0.0.1:8080`) or to genkan's own built-in apps,
//! hardens responses, compresses what is worth compressing, and writes an nginx-format access log.
//!
//! What it is not: it owns no sockets of its own choosing and reads no configuration files.
//! The `server` binary binds the listeners, loads the settings and hands both in; the gateway
//! only serves them. It holds no business rules: identity and policy decisions come from
//! elsewhere and are enforced here once they exist.
//!
//! Invariants:
//! - Nothing that arrives from the network can panic the process; every failure becomes a
//!   response with a status code (see [`error`]) or a closed connection.
//! - A request is either forwarded whole or answered by the gateway; a body over the limit is
//!   refused before a byte reaches the upstream when buffering is on.
//! - On a route that scans uploads, the upstream receives a body only after clamd called it clean
//!   (or could not answer and the route's scanner is set to fail open); see [`scan`].
//! - Settings and the certificate can be swapped while running ([`FrontDoor::reload`]); connections
//!   already open keep the settings they started with only for the request in flight.

pub mod access_log;
pub mod compress;
pub mod error;
pub mod gate;
pub mod headers;
mod idle;
mod listener;
pub mod proxy;
pub mod route;
pub mod scan;
pub mod settings;
pub mod tls;

pub use access_log::{AccessLog, AccessLogFormat};
pub use error::Error;
pub use gate::{FileExchange, Gatekeeper, Knock, OpenGate, Verdict};
pub use listener::{Clock, FrontDoor, LocalApp, RESERVED_PREFIX};
pub use scan::UploadScan;
pub use settings::{Limits, Settings};

/// The body type the gateway hands around: boxed so proxied, built-in and generated bodies mix.
pub type Body = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>;

/// Errors carried inside bodies; the boxing matches what hyper and tower use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Wraps any body in the gateway's [`Body`] type.
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt;
    body.map_err(Into::into).boxed_unsync()
}

/// A body made of one chunk of bytes.
pub fn full(bytes: impl Into<bytes::Bytes>) -> Body {
    boxed(http_body_util::Full::new(bytes.into()))
}
