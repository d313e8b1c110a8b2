//! Enrolment, reporting and the queue against the stand-in server on loopback.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use posture::{Encryption, EncryptionState, OsFamily, OsInfo, Report};

use super::TempDir;
use super::server::TestServer;
use crate::collect::fake::{FakeHost, fixture};
use crate::enrol::{Enrolment, enrol};
use crate::run::Agent;
use crate::state::StateDir;

/// Every test here finishes in seconds; this only turns a hang into a failure.
const LIMIT: Duration = Duration::from_secs(60);

fn base() -> DateTime<Utc> {
    "2026-12-09T00:00:00Z".parse().unwrap()
}

fn report(device_id: &str, minute: i64) -> Report {
    Report {
        device_id: Some(device_id.to_owned()),
        collected_at: base() + TimeDelta::minutes(minute),
        os: OsInfo {
            family: OsFamily::Linux,
            name: "Debian GNU/Linux 12 (bookworm)".into(),
            version: "12".into(),
        },
        hostname: "fake-host".into(),
        disk_encryption: Encryption {
            state: EncryptionState::On,
            detail: "test".into(),
        },
        antivirus: None,
        detections: Vec::new(),
        firewall: Some(true),
        problems: Vec::new(),
    }
}

fn times(minutes: impl IntoIterator<Item = i64>) -> Vec<String> {
    minutes
        .into_iter()
        .map(|minute| (base() + TimeDelta::minutes(minute)).to_rfc3339())
        .collect()
}

fn linux_host() -> FakeHost {
    FakeHost::default()
        .file("/etc/os-release", fixture("linux/os-release_debian12.txt"))
        .command(
            "lsblk -J -o NAME,TYPE,FSTYPE,MOUNTPOINTS",
            fixture("linux/lsblk_ubuntu_luks_lvm.json"),
        )
}

/// Enrols a fresh state directory with `code` against `server`.
async fn enrolled(server: &TestServer, dir: &TempDir, code: &str) -> StateDir {
    let ca_file = dir.path().join("server-ca.pem");
    std::fs::write(&ca_file, &server.https_ca_pem).unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let enrolment = Enrolment {
        server: &server.url(),
        code,
        ca_file: Some(&ca_file),
        force: false,
    };
    let device = enrol(&state, &linux_host(), &enrolment).await.unwrap();
    assert_eq!(device.report_interval_seconds, 120);
    state
}

#[tokio::test]
async fn enrol_then_reports_queued_during_an_outage_arrive_once_in_order() {
    tokio::time::timeout(LIMIT, async {
        let mut server = TestServer::start(&["ONE-TIME-1"]).await;
        let dir = TempDir::new("e2e-outage");
        let state = enrolled(&server, &dir, "ONE-TIME-1").await;
        #[cfg(unix)]
        for name in [
            "key.pem",
            "cert.pem",
            "ca.pem",
            "server-ca.pem",
            "device.json",
        ] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(state.path(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }

        let agent = Agent::load(&state).unwrap();
        assert_eq!(agent.device_id(), "dev-1");
        agent.enqueue(&report("dev-1", 0)).unwrap();
        let delivery = agent.deliver().await.unwrap();
        assert_eq!((delivery.sent, delivery.remaining), (1, 0));
        assert_eq!(delivery.next_report_seconds, Some(60));

        // Down: connections refused. Every report stays queued.
        server.stop().await;
        for minute in 1..=3 {
            agent.enqueue(&report("dev-1", minute)).unwrap();
            let delivery = agent.deliver().await.unwrap();
            assert_eq!(delivery.sent, 0);
            assert_eq!(delivery.remaining, usize::try_from(minute).unwrap());
            assert!(delivery.error.is_some());
        }
        // Up but overloaded: a 503 keeps the queue too.
        server.restart().await;
        server.books.lock().unwrap().accept_budget = Some(0);
        agent.enqueue(&report("dev-1", 4)).unwrap();
        let delivery = agent.deliver().await.unwrap();
        assert_eq!((delivery.sent, delivery.remaining), (0, 4));
        assert!(delivery.error.unwrap().contains("503"));

        // Back: everything arrives, oldest first, each once.
        server.books.lock().unwrap().accept_budget = None;
        agent.enqueue(&report("dev-1", 5)).unwrap();
        let delivery = agent.deliver().await.unwrap();
        assert_eq!((delivery.sent, delivery.remaining), (5, 0));
        assert_eq!(server.accepted_times(), times(0..=5));
        assert!(
            server
                .books
                .lock()
                .unwrap()
                .accepted
                .iter()
                .all(|(device, _)| device == "dev-1")
        );
        assert_eq!(std::fs::read_dir(state.path("queue")).unwrap().count(), 0);

        // Nothing is sent twice: a delivery with an empty queue sends nothing.
        let delivery = agent.deliver().await.unwrap();
        assert_eq!(delivery.sent, 0);
        assert_eq!(server.accepted_times().len(), 6);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_batch_cut_short_resumes_after_the_last_accepted_report() {
    tokio::time::timeout(LIMIT, async {
        let server = TestServer::start(&["ONE-TIME-2"]).await;
        let dir = TempDir::new("e2e-partial");
        let state = enrolled(&server, &dir, "ONE-TIME-2").await;
        let agent = Agent::load(&state).unwrap();
        for minute in 0..5 {
            agent.enqueue(&report("dev-1", minute)).unwrap();
        }
        server.books.lock().unwrap().accept_budget = Some(2);
        let delivery = agent.deliver().await.unwrap();
        assert_eq!((delivery.sent, delivery.remaining), (2, 3));
        server.books.lock().unwrap().accept_budget = None;
        let delivery = agent.deliver().await.unwrap();
        assert_eq!((delivery.sent, delivery.remaining), (3, 0));
        assert_eq!(server.accepted_times(), times(0..5));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_collected_report_goes_out_with_the_device_certificate() {
    tokio::time::timeout(LIMIT, async {
        let server = TestServer::start(&["ONE-TIME-3"]).await;
        let dir = TempDir::new("e2e-collect");
        let state = enrolled(&server, &dir, "ONE-TIME-3").await;
        let agent = Agent::load(&state).unwrap();
        let delivery = agent.report_once(&linux_host()).await.unwrap();
        assert_eq!((delivery.sent, delivery.remaining), (1, 0));
        let books = server.books.lock().unwrap();
        let (device, report) = &books.accepted[0];
        assert_eq!(device, "dev-1");
        assert_eq!(report.device_id.as_deref(), Some("dev-1"));
        assert_eq!(report.os.name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(report.disk_encryption.state, EncryptionState::On);
        assert_eq!(books.unauthenticated, 0);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_used_code_and_a_second_enrolment_are_refused() {
    tokio::time::timeout(LIMIT, async {
        let server = TestServer::start(&["ONE-TIME-4"]).await;
        let dir = TempDir::new("e2e-replay");
        let state = enrolled(&server, &dir, "ONE-TIME-4").await;
        let ca_file = dir.path().join("server-ca.pem");
        let mut enrolment = Enrolment {
            server: &server.url(),
            code: "ONE-TIME-4",
            ca_file: Some(&ca_file),
            force: false,
        };
        let error = enrol(&state, &linux_host(), &enrolment).await.unwrap_err();
        assert!(
            error.to_string().contains("already enrolled as dev-1"),
            "{error:#}"
        );
        enrolment.force = true;
        let error = enrol(&state, &linux_host(), &enrolment).await.unwrap_err();
        assert!(error.to_string().contains("403"), "{error:#}");
        // The refused attempt left the first identity in place.
        assert_eq!(state.device().unwrap().device_id, "dev-1");
        Agent::load(&state).unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_server_with_an_untrusted_certificate_is_refused() {
    tokio::time::timeout(LIMIT, async {
        let server = TestServer::start(&["ONE-TIME-5"]).await;
        let other = TestServer::start(&[]).await;
        let dir = TempDir::new("e2e-untrusted");
        let ca_file = dir.path().join("other-ca.pem");
        std::fs::write(&ca_file, &other.https_ca_pem).unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let enrolment = Enrolment {
            server: &server.url(),
            code: "ONE-TIME-5",
            ca_file: Some(&ca_file),
            force: false,
        };
        let error = enrol(&state, &linux_host(), &enrolment).await.unwrap_err();
        assert!(format!("{error:#}").contains("TLS"), "{error:#}");
        assert!(state.device().is_err());
        // The handshake failed before the code was sent: it is still unused.
        assert!(server.books.lock().unwrap().codes.contains("ONE-TIME-5"));
    })
    .await
    .unwrap();
}
