//! The JSON the agent and the server exchange.
//!
//! Enrolment: the agent posts an [`EnrolRequest`] to [`ENROL_PATH`] (no client certificate; the
//! one-time code is the credential) and gets an [`EnrolResponse`] with its certificate.
//! Reporting: the agent posts a [`Report`] to [`REPORT_PATH`] over TLS with that certificate
//! and gets a [`ReportAccepted`]. The server knows the device from the certificate; the
//! report's `device_id` is only a cross-check.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where the agent posts its enrolment (public: the one-time code is the credential).
pub const ENROL_PATH: &str = "/_genkan/api/devices/enrol";
/// Where the agent posts reports (TLS with the client certificate the enrolment issued).
pub const REPORT_PATH: &str = "/_genkan/api/devices/report";
/// The report interval when the server names none.
pub const DEFAULT_REPORT_INTERVAL_SECONDS: u32 = 300;

/// The agent's first request: a one-time code from the admin pages and a certificate request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// The one-time enrolment code an administrator created for this device.
    pub code: String,
    /// A PKCS#10 certificate signing request in PEM; the key never leaves the device.
    pub csr_pem: String,
    /// The device's host name, as the OS knows it.
    pub hostname: String,
    /// The operating system, so the registry can show it before the first report.
    pub os: OsInfo,
}

/// The server's answer to a successful enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    /// The device's identifier in genkan's registry.
    pub device_id: String,
    /// The device's client certificate in PEM, signed by genkan's device CA.
    pub certificate_pem: String,
    /// genkan's device CA certificate in PEM (the issuer of `certificate_pem`).
    pub ca_pem: String,
    /// How often the agent reports.
    #[serde(default = "default_interval")]
    pub report_interval_seconds: u32,
}

/// What a device says about itself at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The identifier the enrolment gave, when the agent has one (`collect` before enrolment
    /// has none). The server trusts the client certificate, not this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// When the agent collected this report (RFC 3339, UTC). Unique per device: a server that
    /// sees the same device and time twice is seeing a resent report.
    pub collected_at: DateTime<Utc>,
    /// The operating system.
    pub os: OsInfo,
    /// The host name.
    pub hostname: String,
    /// Encryption of the system disk (BitLocker on C:, FileVault, LUKS under `/`).
    pub disk_encryption: Encryption,
    /// The antivirus product the agent reads on this OS, or `None` when there is none.
    pub antivirus: Option<Antivirus>,
    /// Detections the antivirus still lists (Defender's history, ClamAV's log).
    #[serde(default)]
    pub detections: Vec<Detection>,
    /// Whether the host firewall filters incoming traffic; `None` when it could not be read.
    pub firewall: Option<bool>,
    /// Collector errors in plain words (a tool missing, an output not understood).
    #[serde(default)]
    pub problems: Vec<String>,
}

/// The operating system of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// Which of the three systems genkan's agent runs on.
    pub family: OsFamily,
    /// The product name, e.g. "Microsoft Windows 11 Pro", "macOS", "Debian GNU/Linux 12 (bookworm)".
    pub name: String,
    /// The version, e.g. "10.0.22631", "14.4.1", "12".
    pub version: String,
}

/// The operating systems the agent runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OsFamily {
    /// Windows 10 and later.
    Windows,
    /// macOS.
    Macos,
    /// Linux distributions.
    Linux,
}

/// The encryption of the system disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// On, off, partly done, or unknown.
    pub state: EncryptionState,
    /// What the tool said, in words, e.g. "BitLocker on C:: protection on, fully encrypted".
    pub detail: String,
}

/// Whether the system disk is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionState {
    /// Encrypted and protected.
    On,
    /// Not encrypted, or encrypted with protection suspended.
    Off,
    /// Encryption (or decryption) is under way or paused part-way.
    Partial,
    /// The agent could not tell.
    Unknown,
}

/// The antivirus product's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Antivirus {
    /// The product, e.g. "Microsoft Defender Antivirus", "XProtect", "ClamAV 1.4.3".
    pub product: String,
    /// Whether files are scanned as they are opened; `None` when it could not be read.
    pub real_time_protection: Option<bool>,
    /// The signature (definitions) version, e.g. "1.403.1234.0", "5297", "27500".
    pub signature_version: Option<String>,
    /// When the signatures were built or installed (RFC 3339, UTC).
    pub signatures_updated_at: Option<DateTime<Utc>>,
}

/// One threat the antivirus found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    /// Stable across reports, so the server alerts once per detection ("defender:{GUID}",
    /// "clamav:<hash of the log line>").
    pub id: String,
    /// When the antivirus first detected it (RFC 3339, UTC).
    pub detected_at: DateTime<Utc>,
    /// The threat's name, e.g. "Virus:DOS/EICAR_Test_File", "Eicar-Test-Signature".
    pub threat: String,
    /// The file, when the detection was of a file.
    pub path: Option<String>,
    /// What became of it.
    pub action: ThreatAction,
}

/// What became of a detected threat.
///
/// Removed, quarantined, cleaned, blocked and gone are the resolved outcomes; a detection with
/// any other action is an active threat (see [`crate::active_threats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThreatAction {
    /// The antivirus deleted the file.
    Removed,
    /// The antivirus moved the file to quarantine.
    Quarantined,
    /// The antivirus repaired the file.
    Cleaned,
    /// The antivirus stopped it before it reached the disk or ran.
    Blocked,
    /// The file is no longer at its path (checked by the agent; ClamAV only reports).
    Gone,
    /// A user or administrator allowed the threat to stay.
    Allowed,
    /// Detected and reported; nothing was done about it.
    Reported,
    /// The antivirus tried to act and failed.
    Failed,
    /// Anything else, including actions a newer agent knows and this code does not.
    #[serde(other)]
    Unknown,
}

impl ThreatAction {
    /// Whether the threat has been dealt with.
    pub fn is_resolved(self) -> bool {
        match self {
            Self::Removed | Self::Quarantined | Self::Cleaned | Self::Blocked | Self::Gone => true,
            Self::Allowed | Self::Reported | Self::Failed | Self::Unknown => false,
        }
    }
}

/// The server's answer to a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAccepted {
    /// When the agent should report next, in seconds from now.
    #[serde(default = "default_interval")]
    pub next_report_seconds: u32,
    /// A new client certificate (PEM) for the device's key, sent when the current one nears its
    /// end: the agent uses it from its next request on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_certificate_pem: Option<String>,
}

fn default_interval() -> u32 {
    DEFAULT_REPORT_INTERVAL_SECONDS
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn report() -> Report {
        Report {
            device_id: Some("dev-1".into()),
            collected_at: "2026-12-01T08:00:00Z".parse().unwrap(),
            os: OsInfo {
                family: OsFamily::Macos,
                name: "macOS".into(),
                version: "14.4.1".into(),
            },
            hostname: "mba".into(),
            disk_encryption: Encryption {
                state: EncryptionState::Partial,
                detail: "FileVault is On; encryption 35.2% done".into(),
            },
            antivirus: Some(Antivirus {
                product: "XProtect".into(),
                real_time_protection: Some(true),
                signature_version: Some("5297".into()),
                signatures_updated_at: Some("2026-11-28T01:02:03Z".parse().unwrap()),
            }),
            detections: vec![Detection {
                id: "clamav:1".into(),
                detected_at: "2026-11-30T00:00:00Z".parse().unwrap(),
                threat: "Eicar-Test-Signature".into(),
                path: None,
                action: ThreatAction::Reported,
            }],
            firewall: None,
            problems: vec!["socketfilterfw: not found".into()],
        }
    }

    #[test]
    fn report_has_the_agreed_names_and_rfc3339_utc_times() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["collected_at"], "2026-12-01T08:00:00Z");
        assert_eq!(json["os"]["family"], "macos");
        assert_eq!(json["disk_encryption"]["state"], "partial");
        assert_eq!(json["antivirus"]["real_time_protection"], true);
        assert_eq!(
            json["antivirus"]["signatures_updated_at"],
            "2026-11-28T01:02:03Z"
        );
        assert_eq!(json["detections"][0]["action"], "reported");
        assert_eq!(json["firewall"], serde_json::Value::Null);
        assert_eq!(json["problems"][0], "socketfilterfw: not found");
    }

    #[test]
    fn report_round_trips() {
        let text = serde_json::to_string(&report()).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), report());
    }

    #[test]
    fn a_newer_agents_fields_and_actions_are_accepted() {
        let mut json = serde_json::to_value(report()).unwrap();
        json["agent_version"] = "9.9".into();
        json["detections"][0]["action"] = "sandboxed".into();
        let parsed: Report = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.detections[0].action, ThreatAction::Unknown);
    }

    #[test]
    fn an_offset_time_is_read_as_the_same_instant_in_utc() {
        let mut json = serde_json::to_value(report()).unwrap();
        json["collected_at"] = "2026-12-01T17:00:00+09:00".into();
        let parsed: Report = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.collected_at, report().collected_at);
    }

    #[test]
    fn interval_defaults_when_the_server_names_none() {
        let response: EnrolResponse =
            serde_json::from_str(r#"{"device_id":"d","certificate_pem":"c","ca_pem":"a"}"#)
                .unwrap();
        assert_eq!(response.report_interval_seconds, 300);
        let accepted: ReportAccepted = serde_json::from_str("{}").unwrap();
        assert_eq!(accepted.next_report_seconds, 300);
    }

    #[test]
    fn resolved_actions() {
        assert!(ThreatAction::Quarantined.is_resolved());
        assert!(ThreatAction::Gone.is_resolved());
        assert!(!ThreatAction::Allowed.is_resolved());
        assert!(!ThreatAction::Failed.is_resolved());
        assert!(!ThreatAction::Unknown.is_resolved());
    }
}
