//! Windows: PowerShell's `Get-*` cmdlets through `ConvertTo-Json` (their property names are not
//! localised, unlike `manage-bde`'s labels). Needs administrator rights for BitLocker, which
//! the service has as LocalSystem.

use posture::{Encryption, EncryptionState, OsFamily, OsInfo, Report, windows};

use super::{Context, Host, keep_recent, output_text};

/// Windows PowerShell 5.1 ships with every supported Windows; `pwsh` (7) may not be there.
const POWERSHELL: &str = "powershell.exe";

/// The script for one cmdlet pipeline. PowerShell 5 writes to a pipe in the ANSI code page
/// (CP932 on Japanese Windows) unless told otherwise; UTF-8 keeps Japanese paths intact.
pub(crate) fn script(pipeline: &str) -> String {
    format!("[Console]::OutputEncoding = [System.Text.Encoding]::UTF8; {pipeline} | ConvertTo-Json")
}

async fn powershell(host: &impl Host, pipeline: &str) -> Result<String, String> {
    let script = script(pipeline);
    output_text(
        host,
        POWERSHELL,
        &["-NoProfile", "-NonInteractive", "-Command", &script],
    )
    .await
    .map_err(|error| format!("{pipeline}: {error}"))
}

pub(crate) async fn collect(host: &impl Host, context: &Context) -> Report {
    let mut problems = Vec::new();
    let os = match powershell(host, "Get-CimInstance Win32_OperatingSystem").await {
        Ok(text) => windows::parse_os(&text).map_err(|error| error.to_string()),
        Err(error) => Err(error),
    }
    .unwrap_or_else(|problem| {
        problems.push(problem);
        OsInfo {
            family: OsFamily::Windows,
            name: "Windows".to_owned(),
            version: "unknown".to_owned(),
        }
    });
    let disk_encryption = match powershell(host, "Get-BitLockerVolume -MountPoint C:").await {
        Ok(text) => windows::parse_bitlocker(&text).map_err(|error| error.to_string()),
        Err(error) => Err(error),
    }
    .unwrap_or_else(|problem| {
        problems.push(problem.clone());
        Encryption {
            state: EncryptionState::Unknown,
            detail: problem,
        }
    });
    let antivirus = match powershell(host, "Get-MpComputerStatus").await {
        Ok(text) => windows::parse_defender_status(&text, context.local_offset)
            .map_err(|error| error.to_string()),
        Err(error) => Err(error),
    }
    .map_err(|problem| problems.push(problem))
    .ok();
    let mut detections = Vec::new();
    if antivirus.is_some() {
        // Names are a nicety: without them a detection is named by its ThreatID.
        let names = match powershell(host, "Get-MpThreat").await {
            Ok(text) => windows::parse_threat_names(&text).unwrap_or_else(|error| {
                problems.push(error.to_string());
                Default::default()
            }),
            Err(error) => {
                problems.push(error);
                Default::default()
            }
        };
        match powershell(host, "Get-MpThreatDetection").await {
            Ok(text) => match windows::parse_detections(&text, &names, context.local_offset) {
                Ok(found) => detections = found,
                Err(error) => problems.push(error.to_string()),
            },
            Err(error) => problems.push(error),
        }
        keep_recent(&mut detections);
    }
    let firewall = match powershell(host, "Get-NetFirewallProfile").await {
        Ok(text) => windows::parse_firewall(&text).map_err(|error| error.to_string()),
        Err(error) => Err(error),
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
        detections,
        firewall,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use posture::ThreatAction;

    use super::*;
    use crate::collect::fake::{FakeHost, context, fixture};

    fn line(pipeline: &str) -> String {
        format!(
            "{POWERSHELL} -NoProfile -NonInteractive -Command {}",
            script(pipeline)
        )
    }

    #[tokio::test]
    async fn a_japanese_windows_laptop_with_a_failed_removal() {
        let host = FakeHost::default()
            .command(
                &line("Get-CimInstance Win32_OperatingSystem"),
                fixture("windows/os_ja_ps7.json"),
            )
            .command(
                &line("Get-BitLockerVolume -MountPoint C:"),
                fixture("windows/bitlocker_encrypting_ja_ps7.json"),
            )
            .command(
                &line("Get-MpComputerStatus"),
                fixture("windows/mpcomputerstatus_ps7_ja.json"),
            )
            .command(
                &line("Get-MpThreat"),
                fixture("windows/mpthreat_many_ja.json"),
            )
            .command(
                &line("Get-MpThreatDetection"),
                fixture("windows/mpthreatdetection_many_ja.json"),
            )
            .command(
                &line("Get-NetFirewallProfile"),
                fixture("windows/firewall_public_off_ps7.json"),
            );
        let report = collect(&host, &context()).await;
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.os.name, "Microsoft Windows 11 Pro");
        assert_eq!(report.disk_encryption.state, EncryptionState::Partial);
        assert_eq!(report.antivirus.unwrap().real_time_protection, Some(false));
        assert_eq!(report.detections.len(), 2);
        assert_eq!(report.detections[0].action, ThreatAction::Failed);
        assert_eq!(report.firewall, Some(false));

        let verdict = posture::evaluate(
            &posture::CompliancePolicy::default(),
            &collect(&host, &context()).await,
            context().now,
        );
        let codes: Vec<&str> = verdict.failures.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "encryption_partial",
                "real_time_off",
                "signatures_outdated",
                "active_threat"
            ]
        );
    }

    #[tokio::test]
    async fn no_detections_prints_nothing() {
        let host = FakeHost::default()
            .command(
                &line("Get-MpComputerStatus"),
                fixture("windows/mpcomputerstatus_ps5.json"),
            )
            .command(&line("Get-MpThreat"), "")
            .command(&line("Get-MpThreatDetection"), "");
        let report = collect(&host, &context()).await;
        assert!(report.detections.is_empty());
        assert!(report.antivirus.is_some());
        // The cmdlets that are missing here are named.
        let problems = report.problems.join("\n");
        assert!(
            problems.contains("Get-BitLockerVolume -MountPoint C:: not installed"),
            "{problems}"
        );
    }

    #[tokio::test]
    async fn a_cmdlet_error_on_standard_error_is_a_problem() {
        let host = FakeHost::default().command_error(
            &line("Get-BitLockerVolume -MountPoint C:"),
            "Get-BitLockerVolume : アクセスが拒否されました。",
        );
        let report = collect(&host, &context()).await;
        assert_eq!(report.disk_encryption.state, EncryptionState::Unknown);
        assert!(
            report
                .disk_encryption
                .detail
                .contains("アクセスが拒否されました")
        );
    }
}
