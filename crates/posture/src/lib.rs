//! Endpoint posture for genkan: what a staff PC reports about itself, and whether that is enough.
//!
//! What it is: three things the agent (`genkan-agent`) and the server share.
//! - The wire types ([`EnrolRequest`], [`EnrolResponse`], [`Report`], [`ReportAccepted`]): JSON
//!   over HTTPS, times in RFC 3339 UTC.
//! - One parser per OS tool ([`windows`], [`macos`], [`linux`]): each takes the text the tool
//!   printed and returns the report's pieces, or an [`Error`] naming the tool and what was wrong.
//!   The agent runs the tools; the parsers only read text, so they are tested on recorded outputs
//!   of all three systems on any machine.
//! - The compliance rules ([`evaluate`]): a report, a [`CompliancePolicy`] and the time in, a
//!   verdict with a coded failure and a sentence saying what to fix (Japanese and English) out.
//!
//! What it is not: it runs no command, opens no file and reads no clock. Times that tools print
//! in local time are converted with an offset the caller passes in; "now" comes in as a value.
//!
//! Invariants:
//! - No parser panics, whatever the input; bad input is an [`Error`].
//! - The wire names are fixed: the server and agents of different versions meet on them. New
//!   fields are added as optional; unknown fields are ignored on input.

#![warn(missing_docs)]

pub mod compliance;
pub mod linux;
pub mod macos;
mod text;
pub mod windows;
mod wire;

pub use compliance::{
    Compliance, CompliancePolicy, Failure, FailureCode, Lang, active_threats, evaluate,
};
pub use wire::{
    Antivirus, DEFAULT_REPORT_INTERVAL_SECONDS, Detection, ENROL_PATH, Encryption, EncryptionState,
    EnrolRequest, EnrolResponse, OsFamily, OsInfo, REPORT_PATH, Report, ReportAccepted,
    ThreatAction,
};

/// Why a tool's output could not be read.
///
/// Every variant names the tool (as the agent runs it), so a report's `problems` line says
/// which collector to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The tool printed nothing where it always prints something.
    #[error("{tool}: printed nothing")]
    Empty {
        /// The tool, as the agent runs it.
        tool: &'static str,
    },
    /// The output was meant to be JSON and is not, or not of the expected shape.
    #[error("{tool}: not the JSON expected ({reason})")]
    Json {
        /// The tool, as the agent runs it.
        tool: &'static str,
        /// What the JSON reader or the shape check said.
        reason: String,
    },
    /// A field the parser needs is absent.
    #[error("{tool}: {field} is missing")]
    MissingField {
        /// The tool, as the agent runs it.
        tool: &'static str,
        /// The field, as the tool names it.
        field: &'static str,
    },
    /// A field is present with a value the parser does not know.
    #[error("{tool}: {field} has an unexpected value {value:?}")]
    BadValue {
        /// The tool, as the agent runs it.
        tool: &'static str,
        /// The field, as the tool names it.
        field: &'static str,
        /// The value, as printed.
        value: String,
    },
    /// The text does not have the form the tool prints.
    #[error("{tool}: unexpected output {text:?}")]
    Unrecognised {
        /// The tool, as the agent runs it.
        tool: &'static str,
        /// The start of the text (at most 120 characters).
        text: String,
    },
}

impl Error {
    /// An [`Error::Unrecognised`] quoting at most the first 120 characters of the text, so a
    /// report never carries a whole log file in its problems.
    pub(crate) fn unrecognised(tool: &'static str, text: &str) -> Self {
        Self::Unrecognised {
            tool,
            text: text::clip(text.trim(), 120),
        }
    }
}
