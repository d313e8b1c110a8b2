//! A device certificate near its end is renewed at a report, for the same key: the agent keeps
//! the new one and shows it next time, and from then on only the new one is the device's.

use http::StatusCode;

use crate::devices::{agent, enrol, enrolment_code, post_json, send, windows_report};
use crate::harness::{Genkan, TempDir};
use crate::identity::{Browser, PASSWORD, add_user};

fn database(genkan: &Genkan) -> store_sqlite::Database {
    store_sqlite::Database::open(&genkan.dir.0.join("data/genkan.db"), "unused").unwrap()
}

/// SHA-256 (hex) of the DER of the certificate in a PEM file, as genkan knows devices by.
fn certificate_sha256(pem: &[u8]) -> String {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(pem).unwrap();
    ring::digest::digest(&ring::digest::SHA256, der.as_ref())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_its_end_is_renewed_and_the_old_one_retired() {
    let genkan = Genkan::start(
        "[identity]\ntotp_required_groups = []\n[devices]\nreport_interval = \"5m\"\ncertificate_validity = \"90d\"\n",
    )
    .await;
    add_user(&genkan, "kanri", &["admin"], Some(PASSWORD));
    add_user(&genkan, "yamada", &[], Some(PASSWORD));
    let mut admin = Browser::new(&genkan);
    admin.sign_in("kanri", PASSWORD).await;
    let code = enrolment_code(&mut admin, "yamada").await;
    let state = TempDir::new("agent-renewal");
    let (status, output) = enrol(&genkan, &code, &state).await;
    assert_eq!(status, Some(0), "enrolment failed: {output}");
    let first = std::fs::read(state.0.join("cert.pem")).unwrap();
    let key = std::fs::read(state.0.join("key.pem")).unwrap();
    let device: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.0.join("device.json")).unwrap()).unwrap();
    let device_id = device["device_id"].as_str().unwrap().to_owned();

    // A fresh certificate is not renewed.
    let (status, output) = agent(&["run", "--once"], &state.0).await;
    assert_eq!(status, Some(0), "{output}");
    assert_eq!(std::fs::read(state.0.join("cert.pem")).unwrap(), first);

    // Ten days left of ninety: the next report brings a new certificate for the same key.
    let in_ten_days = (chrono::Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    // Written beside genkan as another process would (WAL lets both in).
    let updated = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             db = sqlite3.connect(sys.argv[1])\n\
             db.execute('UPDATE devices SET certificate_not_after = ? WHERE id = ?', sys.argv[2:4])\n\
             db.commit()",
        ])
        .arg(genkan.dir.0.join("data/genkan.db"))
        .args([&in_ten_days, &device_id])
        .status()
        .unwrap();
    assert!(updated.success());
    let (status, output) = agent(&["run", "--once"], &state.0).await;
    assert_eq!(status, Some(0), "{output}");
    let second = std::fs::read(state.0.join("cert.pem")).unwrap();
    assert_ne!(second, first, "the agent keeps the renewed certificate");
    let row = database(&genkan).device(&device_id).unwrap().unwrap();
    assert_eq!(row.certificate_sha256, certificate_sha256(&first));
    assert_eq!(
        row.next_certificate_sha256.as_deref(),
        Some(certificate_sha256(&second).as_str())
    );
    // Until the device shows the new one, the old one still works (a lost answer costs nothing).
    let report = serde_json::to_vec(&windows_report(&device_id, false)).unwrap();
    let with_first = send(
        &genkan,
        Some((&first, &key)),
        post_json(posture::REPORT_PATH, report.clone()),
    )
    .await
    .unwrap();
    assert_eq!(with_first.status(), StatusCode::OK);

    // The agent's next report uses the new certificate: it becomes the only one.
    let (status, output) = agent(&["run", "--once"], &state.0).await;
    assert_eq!(status, Some(0), "{output}");
    let row = database(&genkan).device(&device_id).unwrap().unwrap();
    assert_eq!(row.certificate_sha256, certificate_sha256(&second));
    assert_eq!(row.next_certificate_sha256, None);
    assert!(
        row.certificate_not_after > in_ten_days,
        "{}",
        row.certificate_not_after
    );
    let with_first = send(
        &genkan,
        Some((&first, &key)),
        post_json(posture::REPORT_PATH, report),
    )
    .await
    .unwrap();
    assert_eq!(
        with_first.status(),
        StatusCode::FORBIDDEN,
        "the retired certificate is no longer the device's"
    );
}
