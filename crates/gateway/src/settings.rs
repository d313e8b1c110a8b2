//! Typed gateway settings: what the server's config file turns into once parsed and checked.
//!
//! Everything here is already valid (addresses parsed, header values legal, files read), so the
//! request path never has to handle a configuration error.

use std::time::Duration;

use bytes::Bytes;

use crate::compress::CompressionPolicy;
use crate::headers::HeaderPolicy;
use crate::route::Route;

/// All settings that can change on reload.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Proxied routes; requests matching none go to genkan's built-in apps.
    pub routes: Vec<Route>,
    /// Response headers for built-in apps and generated pages.
    pub headers: HeaderPolicy,
    /// Compression for responses that no route governs.
    pub compression: CompressionPolicy,
    /// Page shown for 502 and 504 when the route names none.
    pub error_page: Bytes,
    /// The port HTTP requests are redirected to (the public HTTPS port).
    pub https_redirect_port: u16,
    /// Path prefixes that always go to genkan's built-in apps, whatever the routes say (as
    /// `/_genkan/` does): the records Data API and SQL endpoint when records are served.
    pub local_prefixes: Vec<String>,
}

/// Limits that protect the gateway from slow or oversized clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request head (request line plus headers) accepted; larger gets 431.
    pub max_header_bytes: usize,
    /// Largest request body accepted; larger gets 413.
    pub max_body_bytes: u64,
    /// Time a client has to send a complete request head (slowloris guard).
    pub header_read_timeout: Duration,
    /// Time a client has to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    pub keepalive_timeout: Duration,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(65),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
