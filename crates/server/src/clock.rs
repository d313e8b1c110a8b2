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
