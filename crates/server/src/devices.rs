//! Enrolled devices: the agents' two endpoints, the device state the gate asks for on every
//! request, and (in `devices/page.rs`) the administrators' devices page.
//!
//! Enrolment (`POST /_genkan/api/devices/enrol`, public): a one-time code an administrator made
//! for a user, and a certificate request; genkan signs it with its device CA (`devices/ca.rs`)
//! and registers the device to that user. Reports (`POST /_genkan/api/devices/report`) arrive
//! over TLS with that certificate; the device is the one whose certificate's SHA-256 is on
//! record, whatever the body says. Every report is stored, judged with `posture::evaluate`,
//! and its new detections or a fall out of compliance raise alerts (`alerts.rs`).

pub mod ca;
pub mod page;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gateway::gate::{ClientCertificate, Identity, json_error};
use posture::{ENROL_PATH, EnrolRequest, EnrolResponse, REPORT_PATH, Report, ReportAccepted};
use store_sqlite::{Database, DetectionRow, Enrolment, NewDevice, ReportRow, StoredReport};

use crate::alerts::{Alert, Alerts};
use crate::auth::{Auth, Limiter, sha256_hex};
use crate::clock;
use crate::config::DeviceSettings;
use ca::DeviceCa;

/// Largest report body accepted (a report with 200 detections is well under 100 KiB).
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// Largest enrolment body accepted.
const MAX_ENROL_BYTES: usize = 64 * 1024;
/// How long an enrolment code lasts.
pub const CODE_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Refused enrolments from one address within [`FAILURE_WINDOW`] before it is refused outright.
const MAX_FAILURES_PER_SOURCE: usize = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The device registry's running parts.
pub struct Devices {
    auth: Arc<Auth>,
    ca: DeviceCa,
    settings: ArcSwap<DeviceSettings>,
    alerts: Arc<Alerts>,
    failures: Mutex<Limiter>,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices").finish_non_exhaustive()
    }
}

impl Devices {
    /// Assembles the registry around the CA and the shared database.
    pub fn new(
        auth: Arc<Auth>,
        ca: DeviceCa,
        settings: DeviceSettings,
        alerts: Arc<Alerts>,
    ) -> Arc<Self> {
        auth.set_device_freshness(settings.freshness());
        Arc::new(Self {
            auth,
            ca,
            settings: ArcSwap::from_pointee(settings),
            alerts,
            failures: Mutex::new(Limiter::default()),
        })
    }

    /// Applies reloaded `[devices]` settings to the next report and request.
    pub fn reload(&self, settings: DeviceSettings) {
        self.auth.set_device_freshness(settings.freshness());
        self.settings.store(Arc::new(settings));
    }

    /// Deletes reports past the retention. Run with the hourly housekeeping.
    pub fn housekeeping(&self, now: jiff::Timestamp) {
        let retention = self.settings.load().report_retention;
        let before =
            now - jiff::SignedDuration::try_from(retention).unwrap_or(jiff::SignedDuration::MAX);
        let pruned = self
            .auth
            .database()
            .and_then(|database| Ok(database.prune_device_reports(&text(before))?));
        match pruned {
            Ok(0) => {}
            Ok(reports) => tracing::info!(reports, "removed old device reports"),
            Err(error) => tracing::warn!("device housekeeping failed: {error:#}"),
        }
    }
}

/// The agents' endpoints and the devices page.
pub fn router(devices: Arc<Devices>) -> Router {
    Router::new()
        .route(ENROL_PATH, post(enrol))
        .route(REPORT_PATH, post(report))
        .route(page::PATH, axum::routing::get(page::show))
        .route(page::CODE_PATH, post(page::make_code))
        .route(page::REVOKE_PATH, post(page::revoke))
        .with_state(devices)
}

/// What the gate knows of the device a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceState {
    /// No certificate, or one of a device that is unknown, revoked or another user's.
    Absent,
    /// Enrolled, the user's, and its latest report is compliant and recent.
    Compliant,
    /// Enrolled and the user's, but failing: what to fix, in English and Japanese.
    Failing(Vec<(String, String)>),
}

impl DeviceState {
    /// The policy's `device_compliant`.
    pub fn compliant(&self) -> Option<bool> {
        match self {
            Self::Absent => None,
            Self::Compliant => Some(true),
            Self::Failing(_) => Some(false),
        }
    }

    /// What the person must do to reach a page that needs a compliant device.
    pub fn what_to_fix(&self) -> String {
        match self {
            Self::Absent | Self::Compliant => "このページには genkan に登録済みでセキュリティ要件を満たす端末（genkan-agent）が必要です。 \
                 / This page needs a device enrolled with genkan (genkan-agent) that meets the security requirements."
                .to_owned(),
            Self::Failing(fixes) => {
                let lines: Vec<String> = fixes
                    .iter()
                    .map(|(en, ja)| format!("{ja} / {en}"))
                    .collect();
                format!(
                    "この端末はセキュリティ要件を満たしていません / This device does not meet the security requirements: {}",
                    lines.join(" ")
                )
            }
        }
    }
}

/// The state of the device whose certificate is `certificate` (DER), for `user`.
pub fn assess(
    database: &Database,
    certificate: &[u8],
    user: Option<&str>,
    now: jiff::Timestamp,
    freshness: Duration,
) -> DeviceState {
    let Some(user) = user else {
        return DeviceState::Absent;
    };
    let row = match database.device_by_certificate(&sha256_hex(certificate)) {
        Ok(Some(row)) => row,
        Ok(None) => return DeviceState::Absent,
        Err(error) => {
            tracing::warn!("device lookup failed: {error}");
            return DeviceState::Absent;
        }
    };
    if row.revoked_at.is_some() || !row.owner.eq_ignore_ascii_case(user) {
        return DeviceState::Absent;
    }
    let seen = row
        .last_seen_at
        .as_deref()
        .and_then(|at| at.parse::<jiff::Timestamp>().ok());
    let fresh = seen.is_some_and(|seen| {
        let age = now.duration_since(seen);
        age.as_secs() >= -60 && age.unsigned_abs() <= freshness
    });
    if !fresh {
        let minutes = freshness.as_secs() / 60;
        return DeviceState::Failing(vec![(
            format!(
                "genkan has had no report from this device for over {minutes} minutes; make sure genkan-agent is running and can reach genkan."
            ),
            format!(
                "この端末から {minutes} 分以上報告が届いていません。genkan-agent が動いていて genkan に接続できることを確認してください。"
            ),
        )]);
    }
    if row.compliant == Some(true) {
        return DeviceState::Compliant;
    }
    let failures: Vec<posture::Failure> = serde_json::from_str(&row.failures).unwrap_or_default();
    DeviceState::Failing(
        failures
            .into_iter()
            .map(|failure| (failure.en, failure.ja))
            .collect(),
    )
}

/// `POST /_genkan/api/devices/enrol`
async fn enrol(
    State(devices): State<Arc<Devices>>,
    identity: Option<Extension<Identity>>,
    body: Body,
) -> Response {
    let source = identity.map_or_else(
        || "-".to_owned(),
        |Extension(identity)| identity.source.to_string(),
    );
    let now = clock::timestamp_now();
    let blocked = devices
        .failures
        .lock()
        .map(|mut limiter| limiter.count(&source, now, FAILURE_WINDOW) >= MAX_FAILURES_PER_SOURCE)
        .unwrap_or(true);
    if blocked {
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "GK-DEV-006",
            "too many refused enrolments from this address; try again later",
        )
        .map(Body::new);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ENROL_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "GK-DEV-001",
            "the request is too large",
        );
    };
    let Ok(request) = serde_json::from_slice::<EnrolRequest>(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            "GK-DEV-002",
            "not an enrolment request",
        );
    };
    let worker = Arc::clone(&devices);
    let source_for_worker = source.clone();
    let outcome =
        tokio::task::spawn_blocking(move || worker.enrol_blocking(&request, &source_for_worker))
            .await
            .unwrap_or_else(|error| {
                Err(Refusal::Internal(anyhow::anyhow!(
                    "enrolment stopped: {error}"
                )))
            });
    match outcome {
        Ok(response) => json(&response),
        Err(Refusal::Code(why)) => {
            if let Ok(mut limiter) = devices.failures.lock() {
                limiter.fail(&source, now, FAILURE_WINDOW);
            }
            error(StatusCode::FORBIDDEN, "GK-DEV-003", why)
        }
        Err(Refusal::BadRequest(why)) => error(StatusCode::BAD_REQUEST, "GK-DEV-002", why),
        Err(Refusal::Internal(cause)) => {
            tracing::error!("enrolment failed: {cause:#}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "GK-DEV-004",
                "enrolment failed; see genkan's log",
            )
        }
    }
}

enum Refusal {
    Code(&'static str),
    BadRequest(&'static str),
    Internal(anyhow::Error),
}

impl Devices {
    fn enrol_blocking(
        &self,
        request: &EnrolRequest,
        source: &str,
    ) -> Result<EnrolResponse, Refusal> {
        let settings = self.settings.load();
        let code_hash = sha256_hex(normalise_code(&request.code).as_bytes());
        let device_id = format!("dev-{}", random_hex(8).map_err(Refusal::Internal)?);
        let now = clock::utc_now();
        // Signed before the code is used, so that a request genkan cannot sign does not use up
        // the code; the certificate is thrown away if the code is refused.
        let issued = self
            .ca
            .sign(
                &request.csr_pem,
                &device_id,
                now,
                settings.certificate_validity,
            )
            .map_err(|_| Refusal::BadRequest("the certificate request cannot be read"))?;
        let device = NewDevice {
            id: device_id.clone(),
            certificate_sha256: sha256_hex(&issued.der),
            certificate_not_after: chrono_text(issued.not_after),
            hostname: bounded(&request.hostname, 255),
            os_family: os_family(request.os.family).to_owned(),
            os_name: bounded(&request.os.name, 255),
            os_version: bounded(&request.os.version, 64),
        };
        let outcome = self
            .auth
            .database()
            .and_then(|mut database| {
                Ok(database.enrol_device(&code_hash, &chrono_text(now), &device)?)
            })
            .map_err(Refusal::Internal)?;
        let refused = |why: &'static str, detail: &str| {
            self.auth.audit(
                "device_enrolment",
                None,
                Some(source),
                None,
                "denied",
                None,
                detail,
            );
            Err(Refusal::Code(why))
        };
        match outcome {
            Enrolment::Enrolled { owner } => {
                self.auth.audit(
                    "device_enrolment",
                    Some(&owner),
                    Some(source),
                    Some(&device_id),
                    "ok",
                    None,
                    &device.hostname,
                );
                Ok(EnrolResponse {
                    device_id,
                    certificate_pem: issued.pem,
                    ca_pem: self.ca.pem().to_owned(),
                    report_interval_seconds: interval_seconds(&settings),
                })
            }
            Enrolment::Unknown => refused("unknown enrolment code", "unknown code"),
            Enrolment::Used => refused("this enrolment code was used already", "code used before"),
            Enrolment::Expired => refused("this enrolment code has expired", "code expired"),
        }
    }
}

/// `POST /_genkan/api/devices/report`
async fn report(
    State(devices): State<Arc<Devices>>,
    identity: Option<Extension<Identity>>,
    certificate: Option<Extension<ClientCertificate>>,
    body: Body,
) -> Response {
    let source = identity.map_or_else(
        || "-".to_owned(),
        |Extension(identity)| identity.source.to_string(),
    );
    let Some(Extension(ClientCertificate(certificate))) = certificate else {
        return error(
            StatusCode::UNAUTHORIZED,
            "GK-DEV-005",
            "a device certificate is needed",
        );
    };
    let found = devices
        .auth
        .database()
        .and_then(|database| Ok(database.device_by_certificate(&sha256_hex(&certificate))?));
    let device = match found {
        Ok(Some(device)) if device.revoked_at.is_none() => device,
        Ok(found) => {
            let subject = found.as_ref().map(|device| device.id.as_str());
            let detail = if found.is_some() {
                "revoked device"
            } else {
                "unknown certificate"
            };
            devices.auth.audit(
                "device_report",
                None,
                Some(&source),
                subject,
                "denied",
                None,
                detail,
            );
            return error(
                StatusCode::FORBIDDEN,
                "GK-DEV-003",
                "this device is not enrolled (or was revoked)",
            );
        }
        Err(cause) => {
            tracing::error!("device lookup failed: {cause:#}");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "GK-DEV-004",
                "try again later",
            );
        }
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REPORT_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "GK-DEV-001",
            "the report is larger than 1 MiB",
        );
    };
    let Ok(report) = serde_json::from_slice::<Report>(&bytes) else {
        return error(StatusCode::BAD_REQUEST, "GK-DEV-002", "not a report");
    };
    let worker = Arc::clone(&devices);
    let stored = tokio::task::spawn_blocking(move || {
        worker.store(&device, &report)?;
        Ok(match worker.renewal(&device, &certificate) {
            Ok(renewed) => renewed,
            Err(cause) => {
                // The report is stored; the certificate is renewed at a later report.
                tracing::warn!(device = %device.id, "device certificate not renewed: {cause:#}");
                None
            }
        })
    })
    .await
    .unwrap_or_else(|error| Err(anyhow::anyhow!("storing stopped: {error}")));
    let renewed_certificate_pem = match stored {
        Ok(renewed) => renewed,
        Err(cause) => {
            tracing::error!("report not stored: {cause:#}");
            // Not 4xx: the agent keeps the report and sends it again.
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "GK-DEV-004",
                "try again later",
            );
        }
    };
    json(&ReportAccepted {
        next_report_seconds: interval_seconds(&devices.settings.load()),
        renewed_certificate_pem,
    })
}

impl Devices {
    /// A device that shows its renewed certificate has it made its only one; a device whose
    /// certificate has less than a third of its validity left gets a new one for the same key
    /// (the same one again at every report until it shows it, in case it could not keep it).
    fn renewal(
        &self,
        device: &store_sqlite::DeviceRow,
        presented: &[u8],
    ) -> anyhow::Result<Option<String>> {
        let database = self.auth.database()?;
        let presented_sha256 = sha256_hex(presented);
        if presented_sha256 != device.certificate_sha256 {
            database.promote_device_certificate(&device.id, &presented_sha256)?;
            return Ok(None);
        }
        let validity = self.settings.load().certificate_validity;
        let now = clock::utc_now();
        let ends: chrono::DateTime<chrono::Utc> =
            device.certificate_not_after.parse().map_err(|error| {
                anyhow::anyhow!("the stored certificate end cannot be read: {error}")
            })?;
        let left = (ends - now).to_std().unwrap_or_default();
        if left > validity / 3 {
            return Ok(None);
        }
        if let Some(pem) = &device.next_certificate_pem {
            // Issued before and not shown yet (the answer was lost, or not kept): the same one.
            return Ok(Some(pem.clone()));
        }
        let issued = self.ca.renew(presented, &device.id, now, validity)?;
        database.set_next_device_certificate(
            &device.id,
            &sha256_hex(&issued.der),
            &chrono_text(issued.not_after),
            &issued.pem,
        )?;
        tracing::info!(device = %device.id, "device certificate renewed");
        Ok(Some(issued.pem))
    }

    /// Judges and stores one report, and raises the alerts it calls for.
    fn store(&self, device: &store_sqlite::DeviceRow, report: &Report) -> anyhow::Result<()> {
        let settings = self.settings.load();
        let now = clock::utc_now();
        let compliance = posture::evaluate(&settings.compliance, report, now);
        let failures = serde_json::to_string(&compliance.failures)?;
        let collected_at = chrono_text(report.collected_at);
        let row = ReportRow {
            device_id: device.id.clone(),
            collected_at: collected_at.clone(),
            received_at: chrono_text(now),
            hostname: bounded(&report.hostname, 255),
            os_family: os_family(report.os.family).to_owned(),
            os_name: bounded(&report.os.name, 255),
            os_version: bounded(&report.os.version, 64),
            compliant: compliance.compliant,
            failures,
            report: serde_json::to_string(report)?,
        };
        let mut alerts = Vec::new();
        {
            let mut database = self.auth.database()?;
            let StoredReport::Stored {
                previously_compliant,
                current,
            } = database.store_report(&row)?
            else {
                return Ok(());
            };
            for detection in &report.detections {
                let new = database.record_detection(&DetectionRow {
                    device_id: device.id.clone(),
                    detection_id: bounded(&detection.id, 512),
                    first_seen_at: row.received_at.clone(),
                    detected_at: chrono_text(detection.detected_at),
                    threat: bounded(&detection.threat, 512),
                    path: detection.path.as_deref().map(|path| bounded(path, 2048)),
                    action: action(detection.action),
                })?;
                if new {
                    alerts.push(Alert::detection(device, report, detection));
                }
            }
            if current && !compliance.compliant && previously_compliant != Some(false) {
                alerts.push(Alert::noncompliant(
                    device,
                    report,
                    &compliance.failures,
                    &collected_at,
                ));
            }
        }
        for alert in alerts {
            self.alerts.raise(alert);
        }
        Ok(())
    }
}

/// What the admin pages show for a code: letters and digits people can read aloud, in three
/// groups of four (60 bits: with single use, a day's life and the failure limit, enough).
pub fn new_code() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let letters: Vec<char> = bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect();
    Ok(letters
        .chunks(4)
        .map(|chunk| chunk.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// The form a code is hashed in: upper case, without separators, so `k7qx 29md…` works too.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|character| character.to_ascii_uppercase())
        .collect()
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn interval_seconds(settings: &DeviceSettings) -> u32 {
    u32::try_from(settings.report_interval.as_secs()).unwrap_or(u32::MAX)
}

/// Text from an agent, cut to a sane length on a character boundary.
fn bounded(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

fn os_family(family: posture::OsFamily) -> &'static str {
    match family {
        posture::OsFamily::Windows => "windows",
        posture::OsFamily::Macos => "macos",
        posture::OsFamily::Linux => "linux",
    }
}

fn action(action: posture::ThreatAction) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A chrono time in the database's text form.
pub fn chrono_text(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A jiff time in the database's text form.
pub fn text(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_error(status, code, message).map(Body::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_readable_and_forgive_case_and_separators() {
        let code = new_code().unwrap();
        assert_eq!(code.len(), 14);
        assert_ne!(code, new_code().unwrap());
        assert!(!code.contains(['0', 'O', '1', 'I']));
        assert_eq!(
            normalise_code(&code.to_lowercase().replace('-', " ")),
            code.replace('-', "")
        );
    }

    #[test]
    fn the_denial_text_says_what_to_fix() {
        let failing = DeviceState::Failing(vec![(
            "Turn on BitLocker.".into(),
            "BitLocker を有効にしてください。".into(),
        )]);
        assert_eq!(failing.compliant(), Some(false));
        let text = failing.what_to_fix();
        assert!(
            text.contains("Turn on BitLocker.") && text.contains("BitLocker を有効に"),
            "{text}"
        );
        assert!(DeviceState::Absent.what_to_fix().contains("genkan-agent"));
        assert_eq!(DeviceState::Absent.compliant(), None);
    }
}
