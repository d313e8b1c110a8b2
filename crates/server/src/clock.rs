//! The one place the server reads the wall clock. Everything else receives time as a value.

use chrono::{DateTime, FixedOffset, Local, Utc};

/// Local time with its offset, for nginx-style log lines.
pub fn local_now() -> DateTime<FixedOffset> {
    Local::now().fixed_offset()
}

/// UTC time, for records written to the database.
pub fn utc_now() -> DateTime<Utc> {
    Utc::now()
}

/// UTC time as stored in the database: RFC 3339 with milliseconds and `Z`, so that text
/// order is time order.
pub fn utc_now_text() -> String {
    utc_now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time as contact records store it: RFC 3339 UTC to the second (`2026-12-04T01:10:00Z`),
/// so that text order is time order.
pub fn utc_text(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now, for policy decisions and session ages.
pub fn timestamp_now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// The monotonic clock, for the voice path's transaction timers and media ticks.
#[allow(clippy::disallowed_methods)] // this module is the one place that reads the clock
pub fn instant_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Wall time as `SystemTime`, for digest nonces.
#[allow(clippy::disallowed_methods)] // this module is the one place that reads the clock
pub fn system_now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}
