//! Enrolment codes, device rows and certificate renewal, reports and alerts on a real database.

use super::*;

fn database(name: &str) -> (Database, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("genkan-devices-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut db = Database::open(&dir.join("genkan.db"), "2026-12-01T00:00:00.000Z").unwrap();
    db.add_user("yamada", "h", false, &[], "2026-12-01T00:00:00.000Z")
        .unwrap();
    (db, dir)
}

fn device(id: &str, sha: &str) -> NewDevice {
    NewDevice {
        id: id.into(),
        certificate_sha256: sha.into(),
        certificate_not_after: "2027-03-01T00:00:00.000Z".into(),
        hostname: "YAMADA-NB".into(),
        os_family: "windows".into(),
        os_name: "Microsoft Windows 11 Pro".into(),
        os_version: "10.0.22631".into(),
    }
}

fn report(device_id: &str, collected_at: &str, compliant: bool) -> ReportRow {
    ReportRow {
        device_id: device_id.into(),
        collected_at: collected_at.into(),
        received_at: collected_at.into(),
        hostname: "YAMADA-NB2".into(),
        os_family: "windows".into(),
        os_name: "Microsoft Windows 11 Pro".into(),
        os_version: "10.0.22631".into(),
        compliant,
        failures: if compliant {
            "[]".into()
        } else {
            r#"[{"code":"encryption_off"}]"#.into()
        },
        report: "{}".into(),
    }
}

#[test]
fn a_code_enrols_once_before_it_expires_for_its_user() {
    let (mut db, dir) = database("codes");
    let now = "2026-12-02T00:00:00.000Z";
    db.create_enrolment_code("hash-1", "yamada", "admin", now, "2026-12-03T00:00:00.000Z")
        .unwrap();
    db.create_enrolment_code("hash-2", "yamada", "admin", now, "2026-12-02T01:00:00.000Z")
        .unwrap();
    assert!(matches!(
        db.create_enrolment_code("hash-3", "nobody", "admin", now, now),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        db.enrol_device("hash-1", now, &device("dev-a", "sha-a"))
            .unwrap(),
        Enrolment::Enrolled {
            owner: "yamada".into()
        }
    );
    assert_eq!(
        db.enrol_device("hash-1", now, &device("dev-b", "sha-b"))
            .unwrap(),
        Enrolment::Used
    );
    assert_eq!(
        db.enrol_device(
            "hash-2",
            "2026-12-02T01:00:00.000Z",
            &device("dev-c", "sha-c")
        )
        .unwrap(),
        Enrolment::Expired
    );
    assert_eq!(
        db.enrol_device("nope", now, &device("dev-d", "sha-d"))
            .unwrap(),
        Enrolment::Unknown
    );
    let devices = db.devices().unwrap();
    assert_eq!(devices.len(), 1, "refused codes registered nothing");
    assert_eq!(devices[0].owner, "yamada");
    assert_eq!(
        db.device_by_certificate("sha-a").unwrap().unwrap().id,
        "dev-a"
    );
    assert!(db.device_by_certificate("sha-b").unwrap().is_none());

    // Renewal: both certificates are the device's until it shows the new one.
    db.set_next_device_certificate("dev-a", "sha-a2", "2027-06-01T00:00:00.000Z", "PEM")
        .unwrap();
    assert_eq!(
        db.device_by_certificate("sha-a").unwrap().unwrap().id,
        "dev-a"
    );
    let renewed = db.device_by_certificate("sha-a2").unwrap().unwrap();
    assert_eq!(renewed.certificate_sha256, "sha-a");
    assert_eq!(renewed.next_certificate_sha256.as_deref(), Some("sha-a2"));
    assert!(!db.promote_device_certificate("dev-a", "sha-other").unwrap());
    assert!(db.promote_device_certificate("dev-a", "sha-a2").unwrap());
    assert!(
        db.device_by_certificate("sha-a").unwrap().is_none(),
        "the old one is no more"
    );
    let row = db.device_by_certificate("sha-a2").unwrap().unwrap();
    assert_eq!(row.certificate_not_after, "2027-06-01T00:00:00.000Z");
    assert_eq!(row.next_certificate_sha256, None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reports_are_deduplicated_and_only_the_newest_is_current() {
    let (mut db, dir) = database("reports");
    let now = "2026-12-02T00:00:00.000Z";
    db.create_enrolment_code("h", "yamada", "admin", now, "2026-12-03T00:00:00.000Z")
        .unwrap();
    db.enrol_device("h", now, &device("dev-a", "sha-a"))
        .unwrap();
    let first = report("dev-a", "2026-12-02T00:05:00.000Z", true);
    assert_eq!(
        db.store_report(&first).unwrap(),
        StoredReport::Stored {
            previously_compliant: None,
            current: true
        }
    );
    assert_eq!(db.store_report(&first).unwrap(), StoredReport::Duplicate);
    let failing = report("dev-a", "2026-12-02T00:10:00.000Z", false);
    assert_eq!(
        db.store_report(&failing).unwrap(),
        StoredReport::Stored {
            previously_compliant: Some(true),
            current: true
        }
    );
    // A report that waited in the agent's queue arrives after a newer one.
    let late = report("dev-a", "2026-12-02T00:07:00.000Z", true);
    assert_eq!(
        db.store_report(&late).unwrap(),
        StoredReport::Stored {
            previously_compliant: Some(false),
            current: false
        }
    );
    let row = db.device("dev-a").unwrap().unwrap();
    assert_eq!(row.compliant, Some(false));
    assert_eq!(row.hostname, "YAMADA-NB2");
    assert_eq!(
        row.last_collected_at.as_deref(),
        Some("2026-12-02T00:10:00.000Z")
    );
    assert_eq!(db.report_count("dev-a").unwrap(), 3);
    assert_eq!(
        db.prune_device_reports("2026-12-02T00:08:00.000Z").unwrap(),
        2
    );
    assert_eq!(db.report_count("dev-a").unwrap(), 1);
    assert!(db.revoke_device("dev-a", "admin", now).unwrap());
    assert!(!db.revoke_device("dev-a", "admin", now).unwrap());
    assert!(db.device("dev-a").unwrap().unwrap().revoked_at.is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn detections_and_alerts_happen_once_and_attempts_are_kept() {
    let (mut db, dir) = database("alerts");
    let now = "2026-12-02T00:00:00.000Z";
    db.create_enrolment_code("h", "yamada", "admin", now, "2026-12-03T00:00:00.000Z")
        .unwrap();
    db.enrol_device("h", now, &device("dev-a", "sha-a"))
        .unwrap();
    let detection = DetectionRow {
        device_id: "dev-a".into(),
        detection_id: "defender:1".into(),
        first_seen_at: now.into(),
        detected_at: now.into(),
        threat: "Virus:DOS/EICAR_Test_File".into(),
        path: Some("C:\\eicar.com".into()),
        action: "quarantined".into(),
    };
    assert!(db.record_detection(&detection).unwrap());
    assert!(!db.record_detection(&detection).unwrap());
    assert_eq!(db.device_detections("dev-a").unwrap().len(), 1);
    let alert = NewAlert {
        dedupe_key: "detection:dev-a:defender:1".into(),
        kind: "detection".into(),
        device_id: Some("dev-a".into()),
        created_at: now.into(),
        subject: "s".into(),
        body: "b".into(),
        payload: "{}".into(),
        email: true,
        webhook: true,
    };
    let id = db.create_alert(&alert).unwrap().unwrap();
    assert_eq!(db.create_alert(&alert).unwrap(), None);
    assert_eq!(db.due_alerts(now, 10).unwrap().len(), 1);
    db.record_alert_attempt(id, "email", now, None).unwrap();
    db.record_alert_attempt(id, "webhook", now, Some("connection refused"))
        .unwrap();
    db.reschedule_alert(id, false, true, "2026-12-02T00:01:00.000Z")
        .unwrap();
    assert!(db.due_alerts(now, 10).unwrap().is_empty());
    let due = db.due_alerts("2026-12-02T00:01:00.000Z", 10).unwrap();
    assert_eq!(
        (
            due[0].email_pending,
            due[0].webhook_pending,
            due[0].attempts
        ),
        (false, true, 1)
    );
    db.reschedule_alert(id, false, false, now).unwrap();
    assert!(
        db.due_alerts("2027-01-01T00:00:00.000Z", 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.alert_attempts(id).unwrap(),
        vec![
            ("email".into(), "sent".into(), String::new()),
            (
                "webhook".into(),
                "failed".into(),
                "connection refused".into()
            )
        ]
    );
    assert_eq!(db.recent_alerts(5).unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
