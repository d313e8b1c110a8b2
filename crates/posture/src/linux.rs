//! Linux: `/etc/os-release`, `lsblk`'s JSON, ClamAV's version line and logs, and the three
//! common firewall front ends (ufw, firewalld, a hand-written nftables ruleset).
//!
//! The agent runs these tools with `LC_ALL=C`: ufw and systemctl translate their words.

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value;

use crate::text::{clip, ctime, field, fingerprint, json, loose_text};
use crate::{
    Antivirus, Detection, Encryption, EncryptionState, Error, OsFamily, OsInfo, ThreatAction,
};

const OS_RELEASE: &str = "os-release";
const LSBLK: &str = "lsblk";
const CLAMAV: &str = "clamdscan --version";
const UFW: &str = "ufw status";
const SYSTEMCTL: &str = "systemctl is-active";

/// `/etc/os-release`: `PRETTY_NAME` (else `NAME`) and `VERSION_ID` (else `VERSION`, else
/// `BUILD_ID`, which rolling distributions such as Arch use).
pub fn parse_os_release(text: &str) -> Result<OsInfo, Error> {
    if text.trim().is_empty() {
        return Err(Error::Empty { tool: OS_RELEASE });
    }
    let mut pairs = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::unrecognised(OS_RELEASE, line));
        };
        pairs.push((key.trim(), unquote(value.trim())));
    }
    let lookup = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(name, value)| *name == key && !value.is_empty())
            .map(|(_, value)| value.clone())
    };
    let name = lookup("PRETTY_NAME")
        .or_else(|| lookup("NAME"))
        .ok_or(Error::MissingField {
            tool: OS_RELEASE,
            field: "NAME",
        })?;
    let version = lookup("VERSION_ID")
        .or_else(|| lookup("VERSION"))
        .or_else(|| lookup("BUILD_ID"))
        .unwrap_or_else(|| "unknown".to_owned());
    Ok(OsInfo {
        family: OsFamily::Linux,
        name,
        version,
    })
}

/// A shell-style value as os-release(5) allows: bare, 'single' or "double" quoted with
/// backslash escapes.
fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_owned();
    }
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// `lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINT`: the root file system is encrypted when the
/// device mounted at `/` has a `crypt` device (dm-crypt, LUKS) among its ancestors or is one.
///
/// A device under several parents (LVM over two disks, RAID) appears once under each; root is
/// on when every appearance is under a crypt device and partial when only some are. No device
/// at `/` (containers, ZFS, network roots) is unknown. `MOUNTPOINTS` (an array, util-linux 2.37
/// and later) is read as well as `MOUNTPOINT`.
pub fn parse_lsblk(text: &str) -> Result<Encryption, Error> {
    let value = json(LSBLK, text)?;
    let devices = field(&value, "blockdevices")
        .and_then(Value::as_array)
        .ok_or(Error::MissingField {
            tool: LSBLK,
            field: "blockdevices",
        })?;
    let mut found = Vec::new();
    let mut path = Vec::new();
    for device in devices {
        walk(device, &mut path, &mut found, 0);
    }
    if found.is_empty() {
        return Ok(Encryption {
            state: EncryptionState::Unknown,
            detail: "no block device is mounted at / (container, ZFS or network root?)".into(),
        });
    }
    let encrypted = found.iter().filter(|root| root.crypt.is_some()).count();
    let state = match encrypted {
        0 => EncryptionState::Off,
        n if n == found.len() => EncryptionState::On,
        _ => EncryptionState::Partial,
    };
    let detail = found
        .iter()
        .map(|root| match &root.crypt {
            Some(crypt) => format!("/ is on {} inside {crypt}", root.device),
            None => format!("/ is on {}, not inside a crypt device", root.device),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Encryption { state, detail })
}

struct RootDevice {
    device: String,
    crypt: Option<String>,
}

/// Device trees are a few levels deep; the limit only guards against hostile input.
const MAX_DEPTH: usize = 32;

/// `path` holds the labels of the device's ancestors and itself, each marked crypt or not.
fn walk(device: &Value, path: &mut Vec<(String, bool)>, found: &mut Vec<RootDevice>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let name = field(device, "name")
        .and_then(loose_text)
        .unwrap_or_default();
    let kind = field(device, "type")
        .and_then(loose_text)
        .unwrap_or_default();
    let label = match field(device, "fstype").and_then(loose_text) {
        Some(fstype) => format!("{name} ({kind}, {fstype})"),
        None => format!("{name} ({kind})"),
    };
    path.push((label.clone(), kind == "crypt"));
    if mounted_at_root(device) {
        let crypt = path
            .iter()
            .rev()
            .find(|(_, is_crypt)| *is_crypt)
            .map(|(label, _)| label.clone());
        found.push(RootDevice {
            device: label,
            crypt,
        });
    }
    if let Some(children) = field(device, "children").and_then(Value::as_array) {
        for child in children {
            walk(child, path, found, depth + 1);
        }
    }
    path.pop();
}

fn mounted_at_root(device: &Value) -> bool {
    let single = field(device, "mountpoint").and_then(Value::as_str) == Some("/");
    let many = field(device, "mountpoints")
        .and_then(Value::as_array)
        .is_some_and(|points| points.iter().any(|point| point.as_str() == Some("/")));
    single || many
}

/// ClamAV's version line, as `clamdscan --version` (the running daemon's) or `clamscan
/// --version` (the files on disk) print it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClamVersion {
    /// The engine version, "1.4.3".
    pub engine: String,
    /// The signature database version (the daily database's number), when one is loaded.
    pub signature_version: Option<String>,
    /// When that database was built.
    pub signatures_built_at: Option<DateTime<Utc>>,
}

/// `ClamAV 1.4.3/27500/Tue Dec  1 08:00:00 2026`, or `ClamAV 1.4.3` with no database. The
/// date is in the machine's local time, at `local_offset`.
pub fn parse_clamav_version(text: &str, local_offset: FixedOffset) -> Result<ClamVersion, Error> {
    let line = text.lines().map(str::trim).find(|line| !line.is_empty());
    let Some(line) = line else {
        return Err(Error::Empty { tool: CLAMAV });
    };
    let Some(rest) = line.strip_prefix("ClamAV ") else {
        return Err(Error::unrecognised(CLAMAV, line));
    };
    let mut parts = rest.splitn(3, '/');
    let engine = parts.next().unwrap_or_default().trim().to_owned();
    if engine.is_empty() || !engine.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(Error::unrecognised(CLAMAV, line));
    }
    let signature_version = parts.next().map(str::trim).map(str::to_owned);
    if let Some(version) = &signature_version
        && (version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(Error::BadValue {
            tool: CLAMAV,
            field: "signature version",
            value: version.clone(),
        });
    }
    let signatures_built_at = match parts.next() {
        None => None,
        Some(date) => Some(ctime(date, local_offset).ok_or_else(|| Error::BadValue {
            tool: CLAMAV,
            field: "signature date",
            value: date.trim().to_owned(),
        })?),
    };
    Ok(ClamVersion {
        engine,
        signature_version,
        signatures_built_at,
    })
}

/// ClamAV's state: the version line and whether on-access scanning (`clamonacc`) runs.
pub fn clamav(version: &ClamVersion, on_access: Option<bool>) -> Antivirus {
    Antivirus {
        product: format!("ClamAV {}", version.engine),
        real_time_protection: on_access,
        signature_version: version.signature_version.clone(),
        signatures_updated_at: version.signatures_built_at,
    }
}

/// Detections in ClamAV's output: clamd's and clamonacc's log files (`<ctime> -> <what>:
/// <Sig> FOUND` with `LogTime yes`, Debian's default) and clamscan's output (`<path>: <Sig>
/// FOUND`, followed by `<path>: Removed.` or `<path>: moved to '…'` when it acted).
///
/// Lines without a time get `fallback` (the agent passes the log file's modification time).
/// A stream (`instream(…)`, `fd[…]`) is not a file on this disk: clamd gave its verdict to the
/// program that sent the data, so it is recorded as blocked. Other lines are ignored; this
/// never fails, because a log holds many kinds of line.
pub fn parse_clamav_log(
    text: &str,
    local_offset: FixedOffset,
    fallback: DateTime<Utc>,
) -> Vec<Detection> {
    let mut detections: Vec<Detection> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        let (at, message) = match line.split_once(" -> ") {
            Some((time, message)) => match ctime(time, local_offset) {
                Some(at) => (at, message),
                None => (fallback, line),
            },
            None => (fallback, line),
        };
        if let Some(subject) = message.strip_suffix(" FOUND") {
            let Some((what, threat)) = subject.rsplit_once(": ") else {
                continue;
            };
            let threat = threat.trim();
            if threat.is_empty() || what.is_empty() {
                continue;
            }
            let stream = what.starts_with("instream(") || what.starts_with("fd[");
            detections.push(Detection {
                id: format!("clamav:{}", fingerprint(line)),
                detected_at: at,
                threat: clip(threat, 200),
                path: (!stream).then(|| what.to_owned()),
                action: if stream {
                    ThreatAction::Blocked
                } else {
                    ThreatAction::Reported
                },
            });
        } else if let Some(what) = message.strip_suffix(": Removed.") {
            resolve(&mut detections, what, ThreatAction::Removed);
        } else if let Some((what, _)) = message.split_once(": moved to '") {
            resolve(&mut detections, what, ThreatAction::Quarantined);
        }
    }
    detections
}

/// Marks the latest detection of `path` with what clamscan then did to it.
fn resolve(detections: &mut [Detection], path: &str, action: ThreatAction) {
    if let Some(detection) = detections
        .iter_mut()
        .rev()
        .find(|detection| detection.path.as_deref() == Some(path))
    {
        detection.action = action;
    }
}

/// `ufw status`: "Status: active" or "Status: inactive". Run as non-root it says
/// "ERROR: You need to be root to run this script", which is an error.
pub fn parse_ufw_status(text: &str) -> Result<bool, Error> {
    for line in text.lines() {
        if let Some(status) = line.trim().strip_prefix("Status:") {
            return match status.trim() {
                "active" => Ok(true),
                "inactive" => Ok(false),
                other => Err(Error::BadValue {
                    tool: UFW,
                    field: "Status",
                    value: other.to_owned(),
                }),
            };
        }
    }
    Err(if text.trim().is_empty() {
        Error::Empty { tool: UFW }
    } else {
        Error::unrecognised(UFW, text)
    })
}

/// `systemctl is-active UNIT`: "active" (and "reloading", "activating") is running;
/// "inactive", "failed", "deactivating" and "unknown" (no such unit) are not.
pub fn parse_is_active(text: &str) -> Result<bool, Error> {
    match text.trim() {
        "active" | "reloading" | "activating" | "refreshing" => Ok(true),
        "inactive" | "failed" | "deactivating" | "unknown" | "maintenance" => Ok(false),
        "" => Err(Error::Empty { tool: SYSTEMCTL }),
        other => Err(Error::unrecognised(SYSTEMCTL, other)),
    }
}

/// `nft list ruleset`: whether some chain on the input hook filters anything, that is has a
/// drop or reject policy or at least one rule. Empty input chains with an accept policy (what
/// Debian's default nftables.conf and Docker leave) do not count.
pub fn nft_filters_input(ruleset: &str) -> bool {
    let mut depth = 0usize;
    // (depth of the chain's contents, hooks input, has a filtering policy, rule count)
    let mut chain: Option<(usize, bool, bool, usize)> = None;
    for line in ruleset.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((inner, hooks_input, policy, rules)) = chain.as_mut() {
            if depth == *inner {
                if line.starts_with("type ") {
                    *hooks_input |= line.contains("hook input");
                    *policy |= line.contains("policy drop") || line.contains("policy reject");
                } else if line != "}" && !line.starts_with("comment ") {
                    *rules += 1;
                }
            }
        } else if line.starts_with("chain ") && line.ends_with('{') {
            chain = Some((depth + 1, false, false, 0));
        }
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        depth = (depth + opens).saturating_sub(closes);
        if let Some((inner, hooks_input, policy, rules)) = chain
            && depth < inner
        {
            if hooks_input && (policy || rules > 0) {
                return true;
            }
            chain = None;
        }
    }
    false
}

/// The firewall from several checks: on when any says on, off when all that could answer say
/// off, `None` when none could answer.
pub fn combine_firewall(checks: &[Option<bool>]) -> Option<bool> {
    if checks.contains(&Some(true)) {
        Some(true)
    } else if checks.contains(&Some(false)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn jst() -> FixedOffset {
        FixedOffset::east_opt(9 * 3600).unwrap()
    }

    #[test]
    fn os_release_quotes_and_fallbacks() {
        let os = parse_os_release("NAME='Arch Linux'\nBUILD_ID=rolling\n# c\n").unwrap();
        assert_eq!(
            (os.name.as_str(), os.version.as_str()),
            ("Arch Linux", "rolling")
        );
        let os = parse_os_release("PRETTY_NAME=\"Say \\\"hi\\\"\"\nVERSION_ID=1\n").unwrap();
        assert_eq!(os.name, "Say \"hi\"");
        assert!(parse_os_release("VERSION_ID=1").is_err());
        assert!(parse_os_release("garbage without equals").is_err());
    }

    #[test]
    fn lsblk_partial_when_root_spans_plain_and_encrypted_devices() {
        let text = r#"{"blockdevices":[
          {"name":"sda","type":"disk","children":[{"name":"sda1_crypt","type":"crypt","children":[
            {"name":"vg-root","type":"lvm","fstype":"ext4","mountpoint":"/"}]}]},
          {"name":"sdb","type":"disk","children":[
            {"name":"vg-root","type":"lvm","fstype":"ext4","mountpoint":"/"}]}]}"#;
        assert_eq!(parse_lsblk(text).unwrap().state, EncryptionState::Partial);
    }

    #[test]
    fn lsblk_crypt_device_mounted_directly() {
        let text = r#"{"blockdevices":[{"name":"vda","type":"disk","children":[
            {"name":"vda2","type":"part","fstype":"crypto_LUKS","children":[
              {"name":"root","type":"crypt","fstype":"ext4","mountpoints":["/"]}]}]}]}"#;
        let encryption = parse_lsblk(text).unwrap();
        assert_eq!(encryption.state, EncryptionState::On);
        assert!(
            encryption.detail.contains("root (crypt, ext4)"),
            "{}",
            encryption.detail
        );
    }

    #[test]
    fn lsblk_depth_is_bounded() {
        let nested = |levels: usize| {
            let mut text = String::from(r#"{"name":"x","type":"crypt","mountpoint":"/"}"#);
            for _ in 0..levels {
                text = format!(r#"{{"name":"d","type":"disk","children":[{text}]}}"#);
            }
            format!(r#"{{"blockdevices":[{text}]}}"#)
        };
        // Deeper than the walk goes, within what serde_json reads: not found.
        assert_eq!(
            parse_lsblk(&nested(40)).unwrap().state,
            EncryptionState::Unknown
        );
        assert_eq!(parse_lsblk(&nested(3)).unwrap().state, EncryptionState::On);
        // Deeper than serde_json reads: an error, not a stack overflow.
        assert!(parse_lsblk(&nested(1000)).is_err());
    }

    #[test]
    fn clamav_version_errors() {
        assert!(matches!(
            parse_clamav_version("", jst()),
            Err(Error::Empty { .. })
        ));
        assert!(parse_clamav_version("clamdscan: command not found", jst()).is_err());
        assert!(parse_clamav_version("ClamAV 1.4.3/x/Tue Dec  1 08:00:00 2026", jst()).is_err());
        assert!(parse_clamav_version("ClamAV 1.4.3/27500/yesterday", jst()).is_err());
        assert!(parse_clamav_version("ClamAV /27500", jst()).is_err());
    }

    #[test]
    fn nft_chain_with_accept_policy_and_no_rules_is_not_filtering() {
        let ruleset = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n";
        assert!(!nft_filters_input(ruleset));
        let ruleset = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t}\n}\n";
        assert!(nft_filters_input(ruleset));
        let ruleset = "table ip nat {\n\tchain POSTROUTING {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmasquerade\n\t}\n}\n";
        assert!(!nft_filters_input(ruleset));
        assert!(!nft_filters_input(""));
        assert!(!nft_filters_input("}}}}{{"));
    }

    #[test]
    fn firewall_combination() {
        assert_eq!(
            combine_firewall(&[None, Some(false), Some(true)]),
            Some(true)
        );
        assert_eq!(combine_firewall(&[None, Some(false)]), Some(false));
        assert_eq!(combine_firewall(&[None, None]), None);
    }

    #[test]
    fn is_active_words() {
        assert!(parse_is_active("active\n").unwrap());
        assert!(!parse_is_active("inactive\n").unwrap());
        assert!(!parse_is_active("unknown").unwrap());
        assert!(parse_is_active("").is_err());
        assert!(parse_is_active("Failed to connect to bus").is_err());
    }
}
