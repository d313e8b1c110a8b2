//! Linux: os-release, lsblk, ClamAV (clamdscan/clamscan, clamonacc, clamd's logs) and the
//! firewall front ends (ufw, firewalld, nftables).

use posture::{Encryption, EncryptionState, OsFamily, OsInfo, Report, ThreatAction, linux};

use super::{Context, Host, LOG_TAIL_BYTES, keep_recent, output_text};

/// clamd's and clamonacc's logs where Debian, Ubuntu and Fedora packages put them.
const CLAMAV_LOGS: [&str; 2] = [
    "/var/log/clamav/clamav.log",
    "/var/log/clamav/clamonacc.log",
];

pub(crate) async fn collect(host: &impl Host, context: &Context) -> Report {
    let mut problems = Vec::new();
    let os = os(host, &mut problems);
    let disk_encryption = disk_encryption(host, &mut problems).await;
    let antivirus = antivirus(host, context, &mut problems).await;
    let detections = if antivirus.is_some() {
        detections(host, context, &mut problems)
    } else {
        Vec::new()
    };
    let firewall = firewall(host, &mut problems).await;
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

fn os(host: &impl Host, problems: &mut Vec<String>) -> OsInfo {
    let text = host
        .read_file("/etc/os-release", 64 * 1024)
        .or_else(|_| host.read_file("/usr/lib/os-release", 64 * 1024));
    let parsed = match text {
        Ok(text) => linux::parse_os_release(&text).map_err(|error| error.to_string()),
        Err(error) => Err(format!("os-release: {error}")),
    };
    parsed.unwrap_or_else(|problem| {
        problems.push(problem);
        OsInfo {
            family: OsFamily::Linux,
            name: "Linux".to_owned(),
            version: "unknown".to_owned(),
        }
    })
}

async fn disk_encryption(host: &impl Host, problems: &mut Vec<String>) -> Encryption {
    // MOUNTPOINTS lists every mount of a device (btrfs subvolumes: /home and /); lsblk older
    // than util-linux 2.37 knows only MOUNTPOINT.
    let mut text = output_text(host, "lsblk", &["-J", "-o", "NAME,TYPE,FSTYPE,MOUNTPOINTS"]).await;
    if text.is_err() {
        text = output_text(host, "lsblk", &["-J", "-o", "NAME,TYPE,FSTYPE,MOUNTPOINT"]).await;
    }
    let parsed = match text {
        Ok(text) => linux::parse_lsblk(&text).map_err(|error| error.to_string()),
        Err(error) => Err(format!("lsblk: {error}")),
    };
    parsed.unwrap_or_else(|problem| {
        let encryption = Encryption {
            state: EncryptionState::Unknown,
            detail: problem.clone(),
        };
        problems.push(problem);
        encryption
    })
}

async fn antivirus(
    host: &impl Host,
    context: &Context,
    problems: &mut Vec<String>,
) -> Option<posture::Antivirus> {
    // clamdscan asks the running daemon (the signatures actually in use); clamscan reads the
    // database files.
    let mut version = None;
    let mut failures = Vec::new();
    for program in ["clamdscan", "clamscan"] {
        match output_text(host, program, &["--version"]).await {
            Ok(text) => match linux::parse_clamav_version(&text, context.local_offset) {
                Ok(parsed) => {
                    version = Some(parsed);
                    break;
                }
                Err(error) => failures.push(error.to_string()),
            },
            Err(error) => failures.push(format!("{program}: {error}")),
        }
    }
    let Some(version) = version else {
        problems.push(format!("no antivirus found ({})", failures.join("; ")));
        return None;
    };
    let on_access = match output_text(host, "systemctl", &["is-active", "clamav-clamonacc"]).await {
        Ok(text) => match linux::parse_is_active(&text) {
            Ok(active) => Some(active),
            Err(error) => {
                problems.push(error.to_string());
                None
            }
        },
        Err(error) => {
            problems.push(format!("systemctl is-active clamav-clamonacc: {error}"));
            None
        }
    };
    Some(linux::clamav(&version, on_access))
}

fn detections(
    host: &impl Host,
    context: &Context,
    problems: &mut Vec<String>,
) -> Vec<posture::Detection> {
    let mut detections = Vec::new();
    for log in CLAMAV_LOGS {
        if host.exists(log) != Some(true) {
            continue;
        }
        match host.read_file(log, LOG_TAIL_BYTES) {
            Ok(text) => {
                let fallback = host.modified(log).unwrap_or(context.now);
                detections.extend(linux::parse_clamav_log(
                    &text,
                    context.local_offset,
                    fallback,
                ));
            }
            Err(error) => problems.push(format!("{log}: {error}")),
        }
    }
    // ClamAV only reports; a file that is no longer there has been dealt with by someone.
    for detection in &mut detections {
        if detection.action == ThreatAction::Reported
            && let Some(path) = &detection.path
            && host.exists(path) == Some(false)
        {
            detection.action = ThreatAction::Gone;
        }
    }
    keep_recent(&mut detections);
    detections
}

async fn firewall(host: &impl Host, problems: &mut Vec<String>) -> Option<bool> {
    let mut answers = Vec::new();
    let mut failures = Vec::new();
    match output_text(host, "ufw", &["status"]).await {
        Ok(text) => match linux::parse_ufw_status(&text) {
            Ok(active) => answers.push(Some(active)),
            Err(error) => failures.push(error.to_string()),
        },
        Err(error) => failures.push(format!("ufw status: {error}")),
    }
    match output_text(host, "systemctl", &["is-active", "firewalld"]).await {
        Ok(text) => match linux::parse_is_active(&text) {
            Ok(active) => answers.push(Some(active)),
            Err(error) => failures.push(error.to_string()),
        },
        Err(error) => failures.push(format!("systemctl is-active firewalld: {error}")),
    }
    match output_text(host, "nft", &["list", "ruleset"]).await {
        Ok(text) => answers.push(Some(linux::nft_filters_input(&text))),
        Err(error) => failures.push(format!("nft list ruleset: {error}")),
    }
    let firewall = linux::combine_firewall(&answers);
    // When some front end answered, the others being absent is normal (one is enough).
    if firewall.is_none() {
        problems.push(format!("firewall unknown ({})", failures.join("; ")));
    }
    firewall
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::fake::{FakeHost, context, fixture};

    fn debian_with_clamav() -> FakeHost {
        FakeHost::default()
            .file("/etc/os-release", fixture("linux/os-release_debian12.txt"))
            .command(
                "lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINTS",
                fixture("linux/lsblk_ubuntu_luks_lvm.json"),
            )
            .command(
                "clamdscan --version",
                fixture("linux/clamdscan_version.txt"),
            )
            .command_failing("systemctl is-active clamav-clamonacc", "inactive\n")
            .file("/var/log/clamav/clamav.log", fixture("linux/clamd.log"))
            .existing("/home/tanaka/Downloads/eicar.com")
            .command("ufw status", fixture("linux/ufw_active.txt"))
            .command_failing("systemctl is-active firewalld", "inactive\n")
    }

    #[tokio::test]
    async fn a_debian_desktop_with_clamav() {
        let report = collect(&debian_with_clamav(), &context()).await;
        assert_eq!(report.os.name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(report.hostname, "fake-host");
        assert_eq!(report.disk_encryption.state, EncryptionState::On);
        let antivirus = report.antivirus.unwrap();
        assert_eq!(antivirus.product, "ClamAV 1.4.3");
        assert_eq!(antivirus.real_time_protection, Some(false));
        assert_eq!(antivirus.signature_version.as_deref(), Some("27500"));
        assert_eq!(report.detections.len(), 3);
        // The file still there stays reported; the one not found is gone.
        assert_eq!(report.detections[0].action, ThreatAction::Reported);
        assert_eq!(report.detections[2].action, ThreatAction::Gone);
        assert_eq!(report.firewall, Some(true));
        // nft is absent, but ufw answered: not a problem.
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[tokio::test]
    async fn old_lsblk_falls_back_to_mountpoint() {
        let host = FakeHost::default()
            .file(
                "/etc/os-release",
                fixture("linux/os-release_ubuntu2404.txt"),
            )
            .command_error(
                "lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINTS",
                "lsblk: unknown column: MOUNTPOINTS",
            )
            .command(
                "lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINT",
                fixture("linux/lsblk_debian_plain.json"),
            );
        let report = collect(&host, &context()).await;
        assert_eq!(report.disk_encryption.state, EncryptionState::Off);
    }

    #[tokio::test]
    async fn missing_tools_become_problems() {
        let report = collect(&FakeHost::default(), &context()).await;
        assert_eq!(report.os.family, OsFamily::Linux);
        assert_eq!(report.disk_encryption.state, EncryptionState::Unknown);
        assert_eq!(report.antivirus, None);
        assert_eq!(report.firewall, None);
        let problems = report.problems.join("\n");
        for expected in [
            "os-release",
            "lsblk",
            "no antivirus found",
            "clamscan: not installed",
            "firewall unknown",
        ] {
            assert!(problems.contains(expected), "{expected} in {problems}");
        }
    }
}
