//! macOS: `sw_vers`, `fdesetup status`, XProtect's `Info.plist`, `csrutil status` and the
//! application firewall's `socketfilterfw --getglobalstate`.
//!
//! These tools print English whatever the user's language, so the parsers read their words.
//! Detections are not read: XProtect and XProtect Remediator write them only to the unified log,
//! in a form Apple does not document, so there is no stable text to parse (see docs/posture.md).

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use crate::text::compare_versions;
use crate::{Antivirus, Encryption, EncryptionState, Error, OsFamily, OsInfo};

/// The product name reported for Apple's built-in malware protection.
pub const XPROTECT: &str = "XProtect";

/// Where XProtect's bundle lives: the first up to macOS 14, the second added (and updated
/// first) from macOS 15. The agent reads both and reports the higher version.
pub const XPROTECT_PLISTS: [&str; 2] = [
    "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist",
    "/var/protected/xprotect/XProtect.bundle/Contents/Info.plist",
];

const SW_VERS: &str = "sw_vers";
const FDESETUP: &str = "fdesetup status";
const PLIST: &str = "XProtect Info.plist";
const CSRUTIL: &str = "csrutil status";
const FIREWALL: &str = "socketfilterfw --getglobalstate";

/// `sw_vers`: `ProductName:\tmacOS`, `ProductVersion:\t14.4.1`, `BuildVersion:\t23E224`.
pub fn parse_sw_vers(text: &str) -> Result<OsInfo, Error> {
    if text.trim().is_empty() {
        return Err(Error::Empty { tool: SW_VERS });
    }
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "ProductName" if !value.is_empty() => name = Some(value.to_owned()),
            "ProductVersion" if !value.is_empty() => version = Some(value.to_owned()),
            _ => {}
        }
    }
    Ok(OsInfo {
        family: OsFamily::Macos,
        name: name.ok_or(Error::MissingField {
            tool: SW_VERS,
            field: "ProductName",
        })?,
        version: version.ok_or(Error::MissingField {
            tool: SW_VERS,
            field: "ProductVersion",
        })?,
    })
}

/// `fdesetup status`: "FileVault is On." or "FileVault is Off.", possibly followed by
/// "Encryption in progress: Percent completed = 35.2" (or decryption), which makes it partial.
pub fn parse_fdesetup_status(text: &str) -> Result<Encryption, Error> {
    if text.trim().is_empty() {
        return Err(Error::Empty { tool: FDESETUP });
    }
    let mut on = None;
    let mut progress = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("FileVault is On") {
            on = Some(true);
        } else if line.starts_with("FileVault is Off") {
            on = Some(false);
        } else if line.starts_with("Encryption in progress")
            || line.starts_with("Decryption in progress")
            || line.starts_with("Encryption paused")
            || line.starts_with("Decryption paused")
        {
            progress = Some(line.trim_end_matches('.').to_owned());
        }
    }
    let Some(on) = on else {
        return Err(Error::unrecognised(FDESETUP, text));
    };
    let base = if on {
        "FileVault is On"
    } else {
        "FileVault is Off"
    };
    Ok(match progress {
        Some(progress) => Encryption {
            state: EncryptionState::Partial,
            detail: format!("{base}; {progress}"),
        },
        None => Encryption {
            state: if on {
                EncryptionState::On
            } else {
                EncryptionState::Off
            },
            detail: base.to_owned(),
        },
    })
}

/// `CFBundleShortVersionString` from an XML property list (XProtect's `Info.plist`).
///
/// A small reader rather than a plist library: the agent needs one string from one file that
/// Apple writes as XML, and the pure crate stays without further dependencies.
pub fn parse_xprotect_version(plist: &str) -> Result<String, Error> {
    if plist.trim().is_empty() {
        return Err(Error::Empty { tool: PLIST });
    }
    let key = "<key>CFBundleShortVersionString</key>";
    let Some(at) = plist.find(key) else {
        return Err(Error::MissingField {
            tool: PLIST,
            field: "CFBundleShortVersionString",
        });
    };
    let rest = plist[at + key.len()..].trim_start();
    let value = rest
        .strip_prefix("<string>")
        .and_then(|rest| rest.split_once("</string>"))
        .map(|(value, _)| value.trim())
        .filter(|value| !value.is_empty() && !value.contains('<'));
    match value {
        Some(version) => Ok(version.to_owned()),
        None => Err(Error::BadValue {
            tool: PLIST,
            field: "CFBundleShortVersionString",
            value: crate::text::clip(rest, 60),
        }),
    }
}

/// One XProtect bundle the agent found: its version and when its `Info.plist` was written
/// (the signatures' date: the bundle is replaced whole on each update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XProtectBundle {
    /// `CFBundleShortVersionString`.
    pub version: String,
    /// The modification time of the bundle's `Info.plist`.
    pub modified_at: Option<DateTime<Utc>>,
}

/// XProtect's state from the bundles found and whether System Integrity Protection is on.
///
/// XProtect checks files when they are first opened and cannot be switched off while SIP is
/// on, so SIP stands for real-time protection. No bundle means no antivirus.
pub fn xprotect(bundles: &[XProtectBundle], sip_enabled: Option<bool>) -> Option<Antivirus> {
    let newest = bundles.iter().max_by(|a, b| {
        compare_versions(&a.version, &b.version).then(match (a.modified_at, b.modified_at) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        })
    })?;
    Some(Antivirus {
        product: XPROTECT.to_owned(),
        real_time_protection: sip_enabled,
        signature_version: Some(newest.version.clone()),
        signatures_updated_at: newest.modified_at,
    })
}

/// `csrutil status`: "System Integrity Protection status: enabled." (or "disabled.", or
/// "unknown (Custom Configuration)." which counts as not on).
pub fn parse_csrutil_status(text: &str) -> Result<bool, Error> {
    let Some((_, status)) = text
        .lines()
        .find_map(|line| line.split_once("System Integrity Protection status:"))
    else {
        return Err(if text.trim().is_empty() {
            Error::Empty { tool: CSRUTIL }
        } else {
            Error::unrecognised(CSRUTIL, text)
        });
    };
    Ok(status.trim().starts_with("enabled"))
}

/// `socketfilterfw --getglobalstate`: "Firewall is enabled. (State = 1)", "Firewall is
/// disabled. (State = 0)"; state 2 is "block all incoming", also on.
pub fn parse_firewall_state(text: &str) -> Result<bool, Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::Empty { tool: FIREWALL });
    }
    if let Some(state) = trimmed
        .split_once("(State = ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(number, _)| number.trim().parse::<u32>().ok())
    {
        return Ok(state > 0);
    }
    if trimmed.contains("Firewall is enabled") || trimmed.contains("blocking all") {
        return Ok(true);
    }
    if trimmed.contains("Firewall is disabled") {
        return Ok(false);
    }
    Err(Error::unrecognised(FIREWALL, text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn bundle(version: &str, modified: Option<&str>) -> XProtectBundle {
        XProtectBundle {
            version: version.into(),
            modified_at: modified.map(|text| text.parse().unwrap()),
        }
    }

    #[test]
    fn the_higher_xprotect_version_is_reported() {
        let antivirus = xprotect(
            &[
                bundle("5287", Some("2026-10-01T00:00:00Z")),
                bundle("5297", Some("2026-11-20T00:00:00Z")),
            ],
            Some(true),
        )
        .unwrap();
        assert_eq!(antivirus.signature_version.as_deref(), Some("5297"));
        assert_eq!(
            antivirus.signatures_updated_at,
            Some("2026-11-20T00:00:00Z".parse().unwrap())
        );
        assert_eq!(xprotect(&[], Some(true)), None);
    }

    #[test]
    fn sip_off_means_real_time_off() {
        let antivirus = xprotect(&[bundle("5297", None)], Some(false)).unwrap();
        assert_eq!(antivirus.real_time_protection, Some(false));
    }

    #[test]
    fn plist_with_an_empty_or_nested_value_is_an_error() {
        for plist in [
            "<key>CFBundleShortVersionString</key><string></string>",
            "<key>CFBundleShortVersionString</key><integer>5</integer>",
            "<key>CFBundleShortVersionString</key>",
        ] {
            assert!(parse_xprotect_version(plist).is_err(), "{plist}");
        }
    }

    #[test]
    fn firewall_words_without_state() {
        assert!(parse_firewall_state("Firewall is enabled.").unwrap());
        assert!(!parse_firewall_state("Firewall is disabled.").unwrap());
        assert!(
            parse_firewall_state("Firewall is blocking all non-essential incoming connections.")
                .unwrap()
        );
        assert!(parse_firewall_state("socketfilterfw: permission denied").is_err());
    }
}
