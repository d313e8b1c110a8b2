//! macOS: `sw_vers`, `fdesetup status`, XProtect's bundles, `csrutil status` and the
//! application firewall. Detections are not collected: XProtect logs them only in the unified
//! log, in no documented form (docs/posture.md).

use posture::{Encryption, EncryptionState, OsFamily, OsInfo, Report, macos};

use super::{Context, Host, output_text};

const SOCKETFILTERFW: &str = "/usr/libexec/ApplicationFirewall/socketfilterfw";

pub(crate) async fn collect(host: &impl Host, context: &Context) -> Report {
    let mut problems = Vec::new();
    let os = match output_text(host, "sw_vers", &[]).await {
        Ok(text) => macos::parse_sw_vers(&text).map_err(|error| error.to_string()),
        Err(error) => Err(format!("sw_vers: {error}")),
    }
    .unwrap_or_else(|problem| {
        problems.push(problem);
        OsInfo {
            family: OsFamily::Macos,
            name: "macOS".to_owned(),
            version: "unknown".to_owned(),
        }
    });
    let disk_encryption = match output_text(host, "fdesetup", &["status"]).await {
        Ok(text) => macos::parse_fdesetup_status(&text).map_err(|error| error.to_string()),
        Err(error) => Err(format!("fdesetup status: {error}")),
    }
    .unwrap_or_else(|problem| {
        problems.push(problem.clone());
        Encryption {
            state: EncryptionState::Unknown,
            detail: problem,
        }
    });
    let mut bundles = Vec::new();
    for plist in macos::XPROTECT_PLISTS {
        if host.exists(plist) != Some(true) {
            continue;
        }
        match host
            .read_file(plist, 256 * 1024)
            .map_err(|error| format!("{plist}: {error}"))
            .and_then(|text| macos::parse_xprotect_version(&text).map_err(|e| e.to_string()))
        {
            Ok(version) => bundles.push(macos::XProtectBundle {
                version,
                modified_at: host.modified(plist),
            }),
            Err(problem) => problems.push(problem),
        }
    }
    let sip = match output_text(host, "csrutil", &["status"]).await {
        Ok(text) => macos::parse_csrutil_status(&text).map_err(|error| error.to_string()),
        Err(error) => Err(format!("csrutil status: {error}")),
    }
    .map_err(|problem| problems.push(problem))
    .ok();
    let antivirus = macos::xprotect(&bundles, sip);
    if antivirus.is_none() {
        problems.push("XProtect: no bundle found".to_owned());
    }
    let firewall = match output_text(host, SOCKETFILTERFW, &["--getglobalstate"]).await {
        Ok(text) => macos::parse_firewall_state(&text).map_err(|error| error.to_string()),
        Err(error) => Err(format!("socketfilterfw --getglobalstate: {error}")),
    }
    .map_err(|problem| problems.push(problem))
    .ok();
    Report {
        device_id: context.device_id.clone(),
        collected_at: context.now,
        os,
        hostname: host.hostname(),
        disk_encryption,
        antivirus,
        detections: Vec::new(),
        firewall,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::fake::{FakeHost, context, fixture};

    #[tokio::test]
    async fn a_sequoia_mac_with_both_xprotect_bundles() {
        let [old, new] = macos::XPROTECT_PLISTS;
        let host = FakeHost::default()
            .command("sw_vers", fixture("macos/sw_vers_sequoia.txt"))
            .command("fdesetup status", fixture("macos/fdesetup_on.txt"))
            .file(old, fixture("macos/xprotect_info_sonoma.plist"))
            .modified_at(old, "2026-10-01T00:00:00Z")
            .file(new, fixture("macos/xprotect_info_sequoia_primary.plist"))
            .modified_at(new, "2026-12-05T03:00:00Z")
            .command("csrutil status", fixture("macos/csrutil_enabled.txt"))
            .command(
                "/usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate",
                fixture("macos/socketfilterfw_on.txt"),
            );
        let report = collect(&host, &context()).await;
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.os.version, "15.1.1");
        assert_eq!(report.disk_encryption.state, EncryptionState::On);
        let antivirus = report.antivirus.clone().unwrap();
        assert_eq!(antivirus.signature_version.as_deref(), Some("5297"));
        assert_eq!(
            antivirus.signatures_updated_at,
            Some("2026-12-05T03:00:00Z".parse().unwrap())
        );
        assert_eq!(report.firewall, Some(true));
        let verdict = posture::evaluate(&Default::default(), &report, context().now);
        assert!(verdict.compliant, "{:?}", verdict.failures);
    }

    #[tokio::test]
    async fn filevault_off_and_no_xprotect() {
        let host = FakeHost::default()
            .command("sw_vers", fixture("macos/sw_vers_sonoma.txt"))
            .command("fdesetup status", fixture("macos/fdesetup_off.txt"));
        let report = collect(&host, &context()).await;
        assert_eq!(report.disk_encryption.state, EncryptionState::Off);
        assert_eq!(report.antivirus, None);
        assert!(
            report.problems.iter().any(|p| p.contains("XProtect")),
            "{:?}",
            report.problems
        );
    }
}
