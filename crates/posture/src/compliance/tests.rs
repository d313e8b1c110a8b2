#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::{Encryption, OsInfo};

fn now() -> DateTime<Utc> {
    "2026-12-10T12:00:00Z".parse().unwrap()
}

/// A Windows report that passes the default policy.
fn healthy() -> Report {
    Report {
        device_id: Some("d1".into()),
        collected_at: now(),
        os: OsInfo {
            family: OsFamily::Windows,
            name: "Microsoft Windows 11 Pro".into(),
            version: "10.0.22631".into(),
        },
        hostname: "PC-01".into(),
        disk_encryption: Encryption {
            state: EncryptionState::On,
            detail: "BitLocker on C:: protection On, FullyEncrypted".into(),
        },
        antivirus: Some(Antivirus {
            product: "Microsoft Defender Antivirus".into(),
            real_time_protection: Some(true),
            signature_version: Some("1.403.1234.0".into()),
            signatures_updated_at: Some(now() - TimeDelta::hours(5)),
        }),
        detections: Vec::new(),
        firewall: Some(true),
        problems: Vec::new(),
    }
}

fn codes(report: &Report, policy: &CompliancePolicy) -> Vec<FailureCode> {
    evaluate(policy, report, now())
        .failures
        .iter()
        .map(|failure| failure.code)
        .collect()
}

fn detection(action: ThreatAction) -> Detection {
    Detection {
        id: "defender:1".into(),
        detected_at: now() - TimeDelta::days(1),
        threat: "Virus:DOS/EICAR_Test_File".into(),
        path: Some(r"C:\Users\tanaka\Downloads\eicar.com".into()),
        action,
    }
}

#[test]
fn defaults_are_the_issues_policy() {
    let policy = CompliancePolicy::default();
    assert!(policy.require_encryption);
    assert!(policy.require_real_time);
    assert_eq!(policy.max_signature_age_days, 7);
    assert!(!policy.allow_active_threats);
}

#[test]
fn a_healthy_device_is_compliant() {
    let verdict = evaluate(&CompliancePolicy::default(), &healthy(), now());
    assert!(verdict.compliant);
    assert!(verdict.failures.is_empty());
}

#[test]
fn encryption_off_says_what_to_turn_on_for_each_os() {
    let mut report = healthy();
    report.disk_encryption.state = EncryptionState::Off;
    let verdict = evaluate(&CompliancePolicy::default(), &report, now());
    assert!(!verdict.compliant);
    assert_eq!(verdict.failures[0].code, FailureCode::EncryptionOff);
    assert!(
        verdict.failures[0]
            .text(Lang::En)
            .starts_with("Turn on BitLocker for drive C:")
    );
    assert!(
        verdict.failures[0]
            .text(Lang::Ja)
            .contains("ドライブ C: の BitLocker")
    );

    report.os.family = OsFamily::Macos;
    let verdict = evaluate(&CompliancePolicy::default(), &report, now());
    assert!(verdict.failures[0].en.contains("FileVault"));
    report.os.family = OsFamily::Linux;
    let verdict = evaluate(&CompliancePolicy::default(), &report, now());
    assert!(verdict.failures[0].en.contains("LUKS"));
}

#[test]
fn partial_and_unknown_encryption_have_their_own_codes() {
    let mut report = healthy();
    report.disk_encryption.state = EncryptionState::Partial;
    report.disk_encryption.detail = "52% encrypted".into();
    let verdict = evaluate(&CompliancePolicy::default(), &report, now());
    assert_eq!(verdict.failures[0].code, FailureCode::EncryptionPartial);
    assert!(verdict.failures[0].en.contains("52% encrypted"));
    report.disk_encryption.state = EncryptionState::Unknown;
    assert_eq!(
        codes(&report, &CompliancePolicy::default()),
        [FailureCode::EncryptionUnknown]
    );
}

#[test]
fn encryption_rule_can_be_switched_off() {
    let mut report = healthy();
    report.disk_encryption.state = EncryptionState::Off;
    let policy = CompliancePolicy {
        require_encryption: false,
        ..CompliancePolicy::default()
    };
    assert!(evaluate(&policy, &report, now()).compliant);
}

#[test]
fn real_time_off_and_unknown() {
    let mut report = healthy();
    report.antivirus.as_mut().unwrap().real_time_protection = Some(false);
    assert_eq!(
        codes(&report, &CompliancePolicy::default()),
        [FailureCode::RealTimeOff]
    );
    report.antivirus.as_mut().unwrap().real_time_protection = None;
    assert_eq!(
        codes(&report, &CompliancePolicy::default()),
        [FailureCode::RealTimeUnknown]
    );
    let policy = CompliancePolicy {
        require_real_time: false,
        ..CompliancePolicy::default()
    };
    assert!(evaluate(&policy, &report, now()).compliant);
}

#[test]
fn no_antivirus_fails_once_and_only_when_a_rule_needs_one() {
    let mut report = healthy();
    report.antivirus = None;
    assert_eq!(
        codes(&report, &CompliancePolicy::default()),
        [FailureCode::NoAntivirus]
    );
    let policy = CompliancePolicy {
        require_real_time: false,
        max_signature_age_days: 0,
        ..CompliancePolicy::default()
    };
    assert!(evaluate(&policy, &report, now()).compliant);
}

#[test]
fn signatures_exactly_the_limit_old_pass_and_a_second_more_fails() {
    let policy = CompliancePolicy::default();
    let mut report = healthy();
    report.antivirus.as_mut().unwrap().signatures_updated_at = Some(now() - TimeDelta::days(7));
    assert!(evaluate(&policy, &report, now()).compliant);
    report.antivirus.as_mut().unwrap().signatures_updated_at =
        Some(now() - TimeDelta::days(7) - TimeDelta::seconds(1));
    let verdict = evaluate(&policy, &report, now());
    assert_eq!(verdict.failures[0].code, FailureCode::SignaturesOutdated);
    assert!(
        verdict.failures[0].en.contains("7 days old"),
        "{}",
        verdict.failures[0].en
    );
    assert!(
        verdict.failures[0].ja.contains("7 日前"),
        "{}",
        verdict.failures[0].ja
    );
}

#[test]
fn signatures_from_the_future_pass_and_zero_turns_the_rule_off() {
    let mut report = healthy();
    report.antivirus.as_mut().unwrap().signatures_updated_at = Some(now() + TimeDelta::days(2));
    assert!(evaluate(&CompliancePolicy::default(), &report, now()).compliant);
    report.antivirus.as_mut().unwrap().signatures_updated_at = Some(now() - TimeDelta::days(400));
    let policy = CompliancePolicy {
        max_signature_age_days: 0,
        ..CompliancePolicy::default()
    };
    assert!(evaluate(&policy, &report, now()).compliant);
}

#[test]
fn an_unknown_signature_date_fails() {
    let mut report = healthy();
    report.antivirus.as_mut().unwrap().signatures_updated_at = None;
    assert_eq!(
        codes(&report, &CompliancePolicy::default()),
        [FailureCode::SignatureDateUnknown]
    );
}

#[test]
fn age_is_measured_at_now_not_at_collection() {
    let mut report = healthy();
    report.collected_at = now() - TimeDelta::days(10);
    report.antivirus.as_mut().unwrap().signatures_updated_at = Some(now() - TimeDelta::days(11));
    assert_eq!(
        codes(&report, &CompliancePolicy::default()),
        [FailureCode::SignaturesOutdated]
    );
}

#[test]
fn unresolved_detections_are_active_threats() {
    for action in [
        ThreatAction::Reported,
        ThreatAction::Allowed,
        ThreatAction::Failed,
        ThreatAction::Unknown,
    ] {
        let mut report = healthy();
        report.detections = vec![detection(action)];
        assert_eq!(
            codes(&report, &CompliancePolicy::default()),
            [FailureCode::ActiveThreat],
            "{action:?}"
        );
    }
}

#[test]
fn resolved_detections_are_not_active() {
    for action in [
        ThreatAction::Removed,
        ThreatAction::Quarantined,
        ThreatAction::Cleaned,
        ThreatAction::Blocked,
        ThreatAction::Gone,
    ] {
        let mut report = healthy();
        report.detections = vec![detection(action)];
        assert!(
            evaluate(&CompliancePolicy::default(), &report, now()).compliant,
            "{action:?}"
        );
        assert_eq!(active_threats(&report).count(), 0);
    }
}

#[test]
fn active_threat_message_names_threat_and_path_and_counts_the_rest() {
    let mut report = healthy();
    report.detections = (0..5).map(|_| detection(ThreatAction::Failed)).collect();
    let verdict = evaluate(&CompliancePolicy::default(), &report, now());
    let failure = &verdict.failures[0];
    assert!(
        failure
            .en
            .contains(r"Virus:DOS/EICAR_Test_File (C:\Users\tanaka\Downloads\eicar.com)")
    );
    assert!(failure.en.contains("+2"), "{}", failure.en);
    assert!(failure.en.contains("could not remove it"), "{}", failure.en);
    assert!(failure.ja.contains("管理者に連絡"), "{}", failure.ja);
}

#[test]
fn active_threats_can_be_allowed_by_policy() {
    let mut report = healthy();
    report.detections = vec![detection(ThreatAction::Reported)];
    let policy = CompliancePolicy {
        allow_active_threats: true,
        ..CompliancePolicy::default()
    };
    assert!(evaluate(&policy, &report, now()).compliant);
}

#[test]
fn failures_come_in_rule_order() {
    let mut report = healthy();
    report.disk_encryption.state = EncryptionState::Off;
    report.antivirus.as_mut().unwrap().real_time_protection = Some(false);
    report.antivirus.as_mut().unwrap().signatures_updated_at = Some(now() - TimeDelta::days(30));
    report.detections = vec![detection(ThreatAction::Reported)];
    assert_eq!(
        codes(&report, &CompliancePolicy::default()),
        [
            FailureCode::EncryptionOff,
            FailureCode::RealTimeOff,
            FailureCode::SignaturesOutdated,
            FailureCode::ActiveThreat
        ]
    );
}

#[test]
fn codes_are_stable_strings_on_the_wire() {
    let all = [
        FailureCode::EncryptionOff,
        FailureCode::EncryptionPartial,
        FailureCode::EncryptionUnknown,
        FailureCode::NoAntivirus,
        FailureCode::RealTimeOff,
        FailureCode::RealTimeUnknown,
        FailureCode::SignaturesOutdated,
        FailureCode::SignatureDateUnknown,
        FailureCode::ActiveThreat,
    ];
    for code in all {
        assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
    }
    assert_eq!(
        FailureCode::SignaturesOutdated.as_str(),
        "signatures_outdated"
    );
}

#[test]
fn policy_reads_with_missing_fields_defaulted() {
    let policy: CompliancePolicy =
        serde_json::from_str(r#"{"max_signature_age_days": 3}"#).unwrap();
    assert_eq!(policy.max_signature_age_days, 3);
    assert!(policy.require_encryption);
}
