//! The one place the agent reads the wall clock. Everything else receives time as a value.

use chrono::{DateTime, FixedOffset, Local, Offset, Utc};

/// Now, for a report's `collected_at`.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The machine's current offset from UTC, for tools that print local times (ClamAV, and
/// PowerShell dates without an offset).
pub(crate) fn local_offset() -> FixedOffset {
    Local::now().offset().fix()
}
