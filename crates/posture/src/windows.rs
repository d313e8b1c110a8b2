//! Windows: the JSON of PowerShell cmdlets, piped through `ConvertTo-Json`.
//!
//! The `Get-*` cmdlets are used rather than `manage-bde` or `netsh` because their property
//! names are the same in every display language, while those tools print localised labels
//! (Japanese Windows prints Japanese). Values vary instead: PowerShell 5 prints enums as numbers
//! and dates as `"\/Date(ms)\/"`, PowerShell 7 prints ISO dates, and a cmdlet with one result
//! prints an object where several print an array. Each parser accepts all of these.
//!
//! The agent runs the cmdlets with UTF-8 console output (PowerShell 5 otherwise writes in the
//! ANSI code page, CP932 on Japanese Windows), so these parsers only ever see UTF-8 text.

use std::collections::BTreeMap;

use chrono::FixedOffset;
use serde_json::Value;

use crate::text::{field, json, loose_bool, loose_i64, loose_text, one_or_many, powershell_date};
use crate::{
    Antivirus, Detection, Encryption, EncryptionState, Error, OsFamily, OsInfo, ThreatAction,
};

/// The product name reported for Microsoft Defender.
pub const DEFENDER: &str = "Microsoft Defender Antivirus";

const OS_TOOL: &str = "Get-CimInstance Win32_OperatingSystem";
const STATUS_TOOL: &str = "Get-MpComputerStatus";
const THREAT_TOOL: &str = "Get-MpThreat";
const DETECTION_TOOL: &str = "Get-MpThreatDetection";
const BITLOCKER_TOOL: &str = "Get-BitLockerVolume";
const FIREWALL_TOOL: &str = "Get-NetFirewallProfile";

/// `Get-CimInstance Win32_OperatingSystem | ConvertTo-Json`: `Caption` and `Version`.
pub fn parse_os(text: &str) -> Result<OsInfo, Error> {
    let value = json(OS_TOOL, text)?;
    let object = single(OS_TOOL, &value)?;
    let name = required_text(OS_TOOL, object, "Caption")?;
    let version = required_text(OS_TOOL, object, "Version")?;
    Ok(OsInfo {
        family: OsFamily::Windows,
        name,
        version,
    })
}

/// `Get-MpComputerStatus | ConvertTo-Json`: Defender's state.
///
/// Real-time protection counts as on only when both `RealTimeProtectionEnabled` and
/// `AntivirusEnabled` are true: in passive mode (another product is primary) Defender keeps the
/// first flag but scans nothing.
pub fn parse_defender_status(text: &str, local_offset: FixedOffset) -> Result<Antivirus, Error> {
    let value = json(STATUS_TOOL, text)?;
    let object = single(STATUS_TOOL, &value)?;
    let real_time = optional_bool(STATUS_TOOL, object, "RealTimeProtectionEnabled")?;
    let enabled = optional_bool(STATUS_TOOL, object, "AntivirusEnabled")?;
    if real_time.is_none() && enabled.is_none() {
        return Err(Error::MissingField {
            tool: STATUS_TOOL,
            field: "RealTimeProtectionEnabled",
        });
    }
    let real_time_protection = match (real_time, enabled) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    };
    let signatures_updated_at = match field(object, "AntivirusSignatureLastUpdated") {
        None => None,
        Some(date) => Some(
            powershell_date(date, local_offset).ok_or_else(|| Error::BadValue {
                tool: STATUS_TOOL,
                field: "AntivirusSignatureLastUpdated",
                value: shown(date),
            })?,
        ),
    };
    Ok(Antivirus {
        product: DEFENDER.to_owned(),
        real_time_protection,
        signature_version: field(object, "AntivirusSignatureVersion").and_then(loose_text),
        signatures_updated_at,
    })
}

/// `Get-MpThreat | ConvertTo-Json`: threat names by `ThreatID`, because
/// `Get-MpThreatDetection` carries only the number. No output means no threats.
pub fn parse_threat_names(text: &str) -> Result<BTreeMap<i64, String>, Error> {
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let value = json(THREAT_TOOL, text)?;
    let mut names = BTreeMap::new();
    for threat in one_or_many(&value) {
        let id = required_i64(THREAT_TOOL, threat, "ThreatID")?;
        let name = required_text(THREAT_TOOL, threat, "ThreatName")?;
        names.insert(id, name);
    }
    Ok(names)
}

/// `Get-MpThreatDetection | ConvertTo-Json`: Defender's detection history. No output means
/// no detections; one detection prints as an object, several as an array.
///
/// The action comes from `ThreatStatusID` (the threat's current state, which Defender updates
/// when a later scan or the user deals with it); names come from [`parse_threat_names`].
pub fn parse_detections(
    text: &str,
    names: &BTreeMap<i64, String>,
    local_offset: FixedOffset,
) -> Result<Vec<Detection>, Error> {
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        return Ok(Vec::new());
    }
    let value = json(DETECTION_TOOL, text)?;
    let mut detections = Vec::new();
    for item in one_or_many(&value) {
        let detection_id = required_text(DETECTION_TOOL, item, "DetectionID")?;
        let threat_id = required_i64(DETECTION_TOOL, item, "ThreatID")?;
        let when = field(item, "InitialDetectionTime").ok_or(Error::MissingField {
            tool: DETECTION_TOOL,
            field: "InitialDetectionTime",
        })?;
        let detected_at = powershell_date(when, local_offset).ok_or_else(|| Error::BadValue {
            tool: DETECTION_TOOL,
            field: "InitialDetectionTime",
            value: shown(when),
        })?;
        let threat = names
            .get(&threat_id)
            .cloned()
            .unwrap_or_else(|| format!("ThreatID {threat_id}"));
        detections.push(Detection {
            id: format!(
                "defender:{}",
                detection_id.trim_matches(|c| c == '{' || c == '}')
            ),
            detected_at,
            threat,
            path: field(item, "Resources").and_then(first_resource),
            action: detection_action(item),
        });
    }
    detections.sort_by(|a, b| a.detected_at.cmp(&b.detected_at).then(a.id.cmp(&b.id)));
    Ok(detections)
}

/// `Get-BitLockerVolume -MountPoint C: | ConvertTo-Json`.
///
/// On means protection is on (`ProtectionStatus` 1, "On"): a fully encrypted volume with
/// protection suspended keeps its key in the clear on the disk, so it counts as off.
pub fn parse_bitlocker(text: &str) -> Result<Encryption, Error> {
    let value = json(BITLOCKER_TOOL, text)?;
    let object = single(BITLOCKER_TOOL, &value)?;
    let mount = field(object, "MountPoint")
        .and_then(loose_text)
        .unwrap_or_else(|| "C:".to_owned());
    let protection = enum_value(
        BITLOCKER_TOOL,
        object,
        "ProtectionStatus",
        &["Off", "On", "Unknown"],
    )?;
    let volume = enum_value(
        BITLOCKER_TOOL,
        object,
        "VolumeStatus",
        &[
            "FullyDecrypted",
            "FullyEncrypted",
            "EncryptionInProgress",
            "DecryptionInProgress",
            "EncryptionPaused",
            "DecryptionPaused",
        ],
    )?;
    let percent = field(object, "EncryptionPercentage").and_then(loose_text);
    let method = field(object, "EncryptionMethod").and_then(encryption_method);
    let state = match (protection.as_str(), volume.as_str()) {
        ("Unknown", _) => EncryptionState::Unknown,
        (
            _,
            "EncryptionInProgress"
            | "DecryptionInProgress"
            | "EncryptionPaused"
            | "DecryptionPaused",
        ) => EncryptionState::Partial,
        ("On", _) => EncryptionState::On,
        _ => EncryptionState::Off,
    };
    let mut detail = format!("BitLocker on {mount}: protection {protection}, {volume}");
    if let Some(percent) = percent.filter(|_| state == EncryptionState::Partial) {
        detail.push_str(&format!(" ({percent}% encrypted)"));
    }
    if let Some(method) = method.filter(|method| method != "None") {
        detail.push_str(&format!(", {method}"));
    }
    if protection == "Off" && volume == "FullyEncrypted" {
        detail.push_str("; protection is suspended");
    }
    Ok(Encryption { state, detail })
}

/// `Get-NetFirewallProfile | ConvertTo-Json`: on only when every profile (Domain, Private,
/// Public) is enabled, since Windows picks the profile by network and a laptop meets all three.
pub fn parse_firewall(text: &str) -> Result<bool, Error> {
    let value = json(FIREWALL_TOOL, text)?;
    let profiles = one_or_many(&value);
    if profiles.is_empty() {
        return Err(Error::Empty {
            tool: FIREWALL_TOOL,
        });
    }
    let mut all_on = true;
    for profile in profiles {
        let enabled = field(profile, "Enabled").ok_or(Error::MissingField {
            tool: FIREWALL_TOOL,
            field: "Enabled",
        })?;
        // GpoBoolean: 0 False, 1 True, 2 NotConfigured (which Windows treats as on).
        let on = match enabled {
            Value::String(text) if text.eq_ignore_ascii_case("NotConfigured") => true,
            other if loose_i64(other) == Some(2) => true,
            other => loose_bool(other).ok_or_else(|| Error::BadValue {
                tool: FIREWALL_TOOL,
                field: "Enabled",
                value: shown(other),
            })?,
        };
        all_on &= on;
    }
    Ok(all_on)
}

/// A JSON value for an error message, cut short: a report's problems stay readable.
fn shown(value: &Value) -> String {
    crate::text::clip(&value.to_string(), 120)
}

fn single<'a>(tool: &'static str, value: &'a Value) -> Result<&'a Value, Error> {
    match value {
        Value::Object(_) => Ok(value),
        Value::Array(items) => match items.as_slice() {
            [only @ Value::Object(_)] => Ok(only),
            _ => Err(Error::Json {
                tool,
                reason: format!("expected one object, found {} items", items.len()),
            }),
        },
        _ => Err(Error::Json {
            tool,
            reason: "expected an object".to_owned(),
        }),
    }
}

fn required_text(tool: &'static str, object: &Value, name: &'static str) -> Result<String, Error> {
    field(object, name)
        .and_then(loose_text)
        .filter(|text| !text.is_empty())
        .ok_or(Error::MissingField { tool, field: name })
}

fn required_i64(tool: &'static str, object: &Value, name: &'static str) -> Result<i64, Error> {
    let value = field(object, name).ok_or(Error::MissingField { tool, field: name })?;
    loose_i64(value).ok_or_else(|| Error::BadValue {
        tool,
        field: name,
        value: shown(value),
    })
}

fn optional_bool(
    tool: &'static str,
    object: &Value,
    name: &'static str,
) -> Result<Option<bool>, Error> {
    field(object, name)
        .map(|value| {
            loose_bool(value).ok_or_else(|| Error::BadValue {
                tool,
                field: name,
                value: shown(value),
            })
        })
        .transpose()
}

/// A PowerShell enum printed as its number (PowerShell 5, 7) or its name (`-EnumsAsStrings`,
/// or formatted output), returned as the name.
fn enum_value(
    tool: &'static str,
    object: &Value,
    name: &'static str,
    names: &[&str],
) -> Result<String, Error> {
    let value = field(object, name).ok_or(Error::MissingField { tool, field: name })?;
    let bad = || Error::BadValue {
        tool,
        field: name,
        value: shown(value),
    };
    if let Value::String(text) = value
        && let Some(known) = names
            .iter()
            .find(|known| known.eq_ignore_ascii_case(text.trim()))
    {
        return Ok((*known).to_owned());
    }
    let index = loose_i64(value).ok_or_else(bad)?;
    usize::try_from(index)
        .ok()
        .and_then(|index| names.get(index))
        .map(|known| (*known).to_owned())
        .ok_or_else(bad)
}

fn encryption_method(value: &Value) -> Option<String> {
    const METHODS: &[&str] = &[
        "None",
        "Aes128Diffuser",
        "Aes256Diffuser",
        "Aes128",
        "Aes256",
        "Hardware",
        "XtsAes128",
        "XtsAes256",
    ];
    match value {
        Value::String(text) => Some(text.trim().to_owned()),
        other => loose_i64(other)
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| METHODS.get(index))
            .map(|name| (*name).to_owned()),
    }
}

/// The first resource of a detection as a path: Defender writes `file:_C:\…`,
/// `containerfile:_C:\…`, `process:_pid:1234,ProcessStart:…`.
fn first_resource(resources: &Value) -> Option<String> {
    let first = one_or_many(resources).into_iter().find_map(loose_text)?;
    let path = match first.split_once(":_") {
        Some((_, rest)) => rest.to_owned(),
        None => first,
    };
    (!path.is_empty()).then_some(path)
}

/// The state of a detection, from `ThreatStatusID` (MSFT_MpThreatDetection): 1 detected,
/// 2 cleaned, 3 quarantined, 4 removed, 5 allowed, 6 blocked, 102–107 an action that failed.
/// Without it, `ActionSuccess` and `CleaningActionID` (2 quarantine, 3 remove, 6 allow,
/// 9 no action, 10 block) say what was tried and whether it worked.
fn detection_action(item: &Value) -> ThreatAction {
    if let Some(status) = field(item, "ThreatStatusID").and_then(loose_i64) {
        return match status {
            1 => ThreatAction::Reported,
            2 => ThreatAction::Cleaned,
            3 => ThreatAction::Quarantined,
            4 => ThreatAction::Removed,
            5 => ThreatAction::Allowed,
            6 => ThreatAction::Blocked,
            102..=107 => ThreatAction::Failed,
            _ => ThreatAction::Unknown,
        };
    }
    let success = field(item, "ActionSuccess").and_then(loose_bool);
    let tried = field(item, "CleaningActionID").and_then(loose_i64);
    match (success, tried) {
        (Some(false), Some(9)) => ThreatAction::Reported,
        (Some(false), _) => ThreatAction::Failed,
        (Some(true), Some(1)) => ThreatAction::Cleaned,
        (Some(true), Some(2)) => ThreatAction::Quarantined,
        (Some(true), Some(3)) => ThreatAction::Removed,
        (Some(true), Some(6)) => ThreatAction::Allowed,
        (Some(true), Some(9)) => ThreatAction::Reported,
        (Some(true), Some(10)) => ThreatAction::Blocked,
        _ => ThreatAction::Unknown,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn bitlocker_states_as_numbers_and_names() {
        let cases = [
            (
                r#"{"ProtectionStatus":1,"VolumeStatus":1}"#,
                EncryptionState::On,
            ),
            (
                r#"{"ProtectionStatus":"On","VolumeStatus":"FullyEncrypted"}"#,
                EncryptionState::On,
            ),
            (
                r#"{"ProtectionStatus":0,"VolumeStatus":0}"#,
                EncryptionState::Off,
            ),
            (
                r#"{"ProtectionStatus":0,"VolumeStatus":1}"#,
                EncryptionState::Off,
            ),
            (
                r#"{"ProtectionStatus":0,"VolumeStatus":2}"#,
                EncryptionState::Partial,
            ),
            (
                r#"{"ProtectionStatus":"Off","VolumeStatus":"EncryptionPaused"}"#,
                EncryptionState::Partial,
            ),
            (
                r#"{"ProtectionStatus":2,"VolumeStatus":1}"#,
                EncryptionState::Unknown,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_bitlocker(text).unwrap().state, expected, "{text}");
        }
    }

    #[test]
    fn bitlocker_out_of_range_values_are_errors() {
        assert!(matches!(
            parse_bitlocker(r#"{"ProtectionStatus":7,"VolumeStatus":1}"#),
            Err(Error::BadValue {
                field: "ProtectionStatus",
                ..
            })
        ));
        assert!(matches!(
            parse_bitlocker(r#"{"ProtectionStatus":-1,"VolumeStatus":1}"#),
            Err(Error::BadValue { .. })
        ));
        assert!(matches!(
            parse_bitlocker(r#"{"ProtectionStatus":1}"#),
            Err(Error::MissingField {
                field: "VolumeStatus",
                ..
            })
        ));
    }

    #[test]
    fn suspended_protection_is_said_in_the_detail() {
        let encryption =
            parse_bitlocker(r#"{"MountPoint":"C:","ProtectionStatus":0,"VolumeStatus":1}"#)
                .unwrap();
        assert!(
            encryption.detail.contains("suspended"),
            "{}",
            encryption.detail
        );
    }

    #[test]
    fn detection_action_falls_back_to_action_success() {
        let item = serde_json::json!({"ActionSuccess": true, "CleaningActionID": 2});
        assert_eq!(detection_action(&item), ThreatAction::Quarantined);
        let item = serde_json::json!({"ActionSuccess": false, "CleaningActionID": 3});
        assert_eq!(detection_action(&item), ThreatAction::Failed);
        assert_eq!(
            detection_action(&serde_json::json!({})),
            ThreatAction::Unknown
        );
    }

    #[test]
    fn firewall_not_configured_counts_as_on() {
        assert!(
            parse_firewall(r#"[{"Name":"Domain","Enabled":2},{"Name":"Public","Enabled":1}]"#)
                .unwrap()
        );
        assert!(
            !parse_firewall(r#"[{"Name":"Domain","Enabled":1},{"Name":"Public","Enabled":0}]"#)
                .unwrap()
        );
        assert!(parse_firewall("[]").is_err());
    }
}
