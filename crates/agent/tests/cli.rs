//! The binary as an administrator uses it.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_genkan-agent"))
}

fn empty_state_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("genkan-agent-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[cfg(target_os = "linux")]
#[test]
fn collect_prints_this_machines_report_as_json() {
    let dir = empty_state_dir("collect");
    let output = agent()
        .args(["collect", "--state-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["os"]["family"], "linux");
    assert!(report["collected_at"].as_str().unwrap().ends_with('Z'));
    // Not enrolled: no device id, and nothing written.
    assert!(report.get("device_id").is_none());
    assert!(!dir.exists());
}

#[test]
fn run_before_enrolment_says_to_enrol() {
    let dir = empty_state_dir("run");
    let output = agent()
        .args(["run", "--once", "--state-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("genkan-agent enrol"), "{stderr}");
    assert!(!dir.exists(), "a run that cannot report creates nothing");
}

#[test]
fn enrol_refuses_a_plain_http_address() {
    let dir = empty_state_dir("http");
    let output = agent()
        .args([
            "enrol",
            "--server",
            "http://127.0.0.1:9",
            "--code",
            "X",
            "--state-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("https://"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_systemd_unit_runs_the_agent_confined() {
    let unit = include_str!("../genkan-agent.service");
    let settings: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#') && line.contains('='))
        .collect();
    for expected in [
        "ExecStart=/usr/local/bin/genkan-agent run",
        "StateDirectory=genkan-agent",
        "StateDirectoryMode=0700",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_NET_ADMIN",
    ] {
        assert!(settings.contains(&expected), "the unit lacks {expected}");
    }
    // The default state directory is the one the unit creates.
    assert!(unit.contains("--state-dir /var/lib/genkan-agent"));
}
