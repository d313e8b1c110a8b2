//! Alerts: a device's new detection or its fall out of compliance, recorded once (the database
//! deduplicates by key) and delivered by e-mail over SMTP and as a JSON webhook `POST`.
//!
//! Delivery runs in one task: raising an alert stores it and wakes the task, which sends what
//! is due and schedules failed channels again with a growing delay (30 s doubling up to an
//! hour, at most [`MAX_ATTEMPTS`] rounds). Every attempt is recorded with its outcome. The
//! SMTP password is never logged; error texts come from the SMTP server or the network.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use store_sqlite::{AlertRow, NewAlert};
use tokio::sync::{Notify, watch};

use crate::auth::Auth;
use crate::clock;
use crate::config::{AlertSettings, SmtpSettings};
use crate::devices::text;

/// Delivery rounds before an alert is given up (about five hours with the backoff).
pub const MAX_ATTEMPTS: u32 = 12;
/// Time allowed for one SMTP conversation or webhook call.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// An alert about to be raised.
#[derive(Debug, Clone)]
pub struct Alert {
    dedupe_key: String,
    kind: &'static str,
    device_id: Option<String>,
    subject: String,
    body: String,
    payload: serde_json::Value,
}

impl Alert {
    /// A detection a device listed for the first time.
    pub fn detection(
        device: &store_sqlite::DeviceRow,
        report: &posture::Report,
        detection: &posture::Detection,
    ) -> Self {
        let subject = format!(
            "[genkan] 脅威を検出 / Threat detected: {} on {} ({})",
            detection.threat, report.hostname, device.owner
        );
        let body = format!(
            "端末 {host}（{owner}、{id}）のウイルス対策ソフトが脅威を検出しました。\n\
             The antivirus on {host} ({owner}, {id}) detected a threat.\n\n\
             threat:   {threat}\npath:     {path}\naction:   {action:?}\ndetected: {detected}\nOS:       {os} {version}\n",
            host = report.hostname,
            owner = device.owner,
            id = device.id,
            threat = detection.threat,
            path = detection.path.as_deref().unwrap_or("-"),
            action = detection.action,
            detected = detection.detected_at.to_rfc3339(),
            os = report.os.name,
            version = report.os.version,
        );
        Self {
            dedupe_key: format!("detection:{}:{}", device.id, detection.id),
            kind: "detection",
            device_id: Some(device.id.clone()),
            subject,
            body,
            payload: serde_json::json!({
                "kind": "detection",
                "device_id": device.id,
                "owner": device.owner,
                "hostname": report.hostname,
                "detection": detection,
            }),
        }
    }

    /// A device whose report is not compliant when the one before was (or there was none).
    pub fn noncompliant(
        device: &store_sqlite::DeviceRow,
        report: &posture::Report,
        failures: &[posture::Failure],
        collected_at: &str,
    ) -> Self {
        let lines: Vec<String> = failures
            .iter()
            .map(|failure| format!("- {}\n  {}", failure.ja, failure.en))
            .collect();
        Self {
            dedupe_key: format!("noncompliant:{}:{collected_at}", device.id),
            kind: "noncompliant",
            device_id: Some(device.id.clone()),
            subject: format!(
                "[genkan] 端末が要件を満たしていません / Device not compliant: {} ({})",
                report.hostname, device.owner
            ),
            body: format!(
                "端末 {host}（{owner}、{id}）がセキュリティ要件を満たさなくなりました。\n\
                 The device {host} ({owner}, {id}) no longer meets the security requirements.\n\n{}\n",
                lines.join("\n"),
                host = report.hostname,
                owner = device.owner,
                id = device.id,
            ),
            payload: serde_json::json!({
                "kind": "noncompliant",
                "device_id": device.id,
                "owner": device.owner,
                "hostname": report.hostname,
                "collected_at": collected_at,
                "failures": failures,
            }),
        }
    }
}

impl Alert {
    /// A virus clamd found in a request body at the gateway (the upstream never saw it).
    /// Uploads retried within the same minute are one alert.
    pub fn virus_found(
        user: Option<&str>,
        source: &str,
        path: &str,
        signature: &str,
        at: &str,
    ) -> Self {
        let who = user.unwrap_or("-");
        let minute = at.get(..16).unwrap_or(at);
        Self {
            dedupe_key: format!("virus_found:{who}:{source}:{signature}:{path}:{minute}"),
            kind: "virus_found",
            device_id: None,
            subject: format!("[genkan] ウイルスを遮断 / Virus stopped: {signature} ({who})"),
            body: format!(
                "genkan がアップロードからウイルスを検出し、遮断しました（アプリには届いていません）。\n\
                 genkan stopped a virus in an upload; the app never received it.\n\n\
                 signature: {signature}\nuser:      {who}\nsource:    {source}\npath:      {path}\ntime:      {at}\n"
            ),
            payload: serde_json::json!({
                "kind": "virus_found",
                "user": user,
                "source": source,
                "path": path,
                "signature": signature,
                "at": at,
            }),
        }
    }
}

/// The alert sender.
pub struct Alerts {
    auth: Arc<Auth>,
    settings: ArcSwap<AlertSettings>,
    wake: Notify,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").finish_non_exhaustive()
    }
}

impl Alerts {
    /// A sender with these settings; [`Alerts::run`] delivers.
    pub fn new(auth: Arc<Auth>, settings: AlertSettings) -> Arc<Self> {
        Arc::new(Self {
            auth,
            settings: ArcSwap::from_pointee(settings),
            wake: Notify::new(),
        })
    }

    /// Applies reloaded `[alerts]` settings to the next delivery.
    pub fn reload(&self, settings: AlertSettings) {
        self.settings.store(Arc::new(settings));
    }

    /// Records the alert (once per key) and wakes the sender. Blocking: call off the runtime.
    pub fn raise(&self, alert: Alert) {
        let settings = self.settings.load();
        let row = NewAlert {
            dedupe_key: alert.dedupe_key,
            kind: alert.kind.to_owned(),
            device_id: alert.device_id,
            created_at: clock::utc_now_text(),
            subject: alert.subject,
            body: alert.body,
            payload: alert.payload.to_string(),
            email: settings.smtp.is_some(),
            webhook: settings.webhook_url.is_some(),
        };
        match self
            .auth
            .database()
            .and_then(|database| Ok(database.create_alert(&row)?))
        {
            Ok(Some(id)) => {
                tracing::warn!(alert = id, kind = row.kind, subject = %row.subject, "ALERT");
                self.wake.notify_one();
            }
            Ok(None) => tracing::debug!(key = row.dedupe_key, "alert raised before"),
            Err(error) => tracing::error!("alert not recorded: {error:#}"),
        }
    }

    /// Delivers due alerts until shutdown: when woken, and every 30 s for retries.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            self.deliver_due().await;
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn deliver_due(&self) {
        let now = clock::utc_now_text();
        let due = self
            .auth
            .database()
            .and_then(|database| Ok(database.due_alerts(&now, 20)?));
        let due = match due {
            Ok(due) => due,
            Err(error) => {
                tracing::error!("alerts not read: {error:#}");
                return;
            }
        };
        for alert in due {
            self.deliver(&alert).await;
        }
    }

    async fn deliver(&self, alert: &AlertRow) {
        let settings = self.settings.load_full();
        let mut email_pending = alert.email_pending;
        let mut webhook_pending = alert.webhook_pending;
        if email_pending {
            let outcome = match &settings.smtp {
                Some(smtp) => send_mail(smtp, alert).await,
                None => Err("no SMTP server is configured any more".to_owned()),
            };
            email_pending = outcome.is_err();
            self.record(alert.id, "email", outcome.err().as_deref());
        }
        if webhook_pending {
            let outcome = match &settings.webhook_url {
                Some(url) => call_webhook(url, alert).await,
                None => Err("no webhook is configured any more".to_owned()),
            };
            webhook_pending = outcome.is_err();
            self.record(alert.id, "webhook", outcome.err().as_deref());
        }
        let attempts = alert.attempts + 1;
        if (email_pending || webhook_pending) && attempts >= MAX_ATTEMPTS {
            tracing::error!(
                alert = alert.id,
                attempts,
                "alert given up after repeated failures"
            );
            email_pending = false;
            webhook_pending = false;
        }
        let next = clock::timestamp_now() + backoff(attempts);
        let rescheduled = self.auth.database().and_then(|database| {
            Ok(database.reschedule_alert(alert.id, email_pending, webhook_pending, &text(next))?)
        });
        if let Err(error) = rescheduled {
            tracing::error!("alert {} not rescheduled: {error:#}", alert.id);
        }
    }

    fn record(&self, alert_id: i64, channel: &str, error: Option<&str>) {
        if let Some(error) = error {
            tracing::warn!(alert = alert_id, channel, %error, "alert not delivered; will retry");
        }
        let recorded = self.auth.database().and_then(|database| {
            Ok(database.record_alert_attempt(alert_id, channel, &clock::utc_now_text(), error)?)
        });
        if let Err(error) = recorded {
            tracing::error!("alert attempt not recorded: {error:#}");
        }
    }
}

/// The wait before the next round: 30 s, doubled each time, at most an hour.
pub fn backoff(attempts: u32) -> jiff::SignedDuration {
    let seconds = 30u64
        .saturating_mul(1 << attempts.saturating_sub(1).min(7))
        .min(3600);
    jiff::SignedDuration::from_secs(i64::try_from(seconds).unwrap_or(3600))
}

async fn send_mail(smtp: &SmtpSettings, alert: &AlertRow) -> Result<(), String> {
    send_message(smtp, &alert.subject, &alert.body).await
}

/// Sends one plain-text e-mail with the configured server, to the configured recipients: the
/// alerts' way out, and what an administrator's test of the settings uses.
pub async fn send_message(smtp: &SmtpSettings, subject: &str, body: &str) -> Result<(), String> {
    let mut message = Message::builder()
        .from(smtp.from.clone())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &smtp.to {
        message = message.to(to.clone());
    }
    let message = message
        .body(body.to_owned())
        .map_err(|error| format!("the message cannot be built: {error}"))?;
    let builder = match (smtp.starttls, &smtp.ca_pem) {
        (true, None) => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|error| format!("SMTP server {}: {error}", smtp.host))?,
        (true, Some(pem)) => {
            // STARTTLS required, with the company's CA trusted beside the system's ones.
            let certificate =
                Certificate::from_pem(pem).map_err(|error| format!("smtp_ca_file: {error}"))?;
            let parameters = TlsParameters::builder(smtp.host.clone())
                .add_root_certificate(certificate)
                .build_rustls()
                .map_err(|error| format!("SMTP TLS settings: {error}"))?;
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                .tls(Tls::Required(parameters))
        }
        (false, _) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
    };
    let mut builder = builder.port(smtp.port).timeout(Some(SEND_TIMEOUT));
    if let Some((user, password)) = &smtp.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    let transport = builder.build();
    match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("SMTP {}:{}: {error}", smtp.host, smtp.port)),
        Err(_) => Err(format!(
            "SMTP {}:{}: no answer within {SEND_TIMEOUT:?}",
            smtp.host, smtp.port
        )),
    }
}

async fn call_webhook(url: &str, alert: &AlertRow) -> Result<(), String> {
    let payload: serde_json::Value = serde_json::from_str(&alert.payload)
        .unwrap_or_else(|_| serde_json::json!({ "subject": alert.subject }));
    let mut payload = payload;
    if let Some(object) = payload.as_object_mut() {
        object.insert("alert_id".into(), alert.id.into());
        object.insert("created_at".into(), alert.created_at.clone().into());
        object.insert("subject".into(), alert.subject.clone().into());
    }
    // The contact center's webhook client: same TLS (system CAs), same time limit handling.
    // It reads the answer as a flat object of strings; an alert needs only a 2xx, so an answer
    // of another shape still counts as delivered.
    match crate::center::webhook::invoke(url, &payload, SEND_TIMEOUT).await {
        Ok(_) | Err(crate::center::webhook::WebhookFailure::Answer(_)) => Ok(()),
        Err(error) => Err(format!("webhook: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_upload_is_one_virus_alert_within_a_minute() {
        let alert = |at: &str| {
            Alert::virus_found(
                Some("suzuki"),
                "203.0.113.7",
                "/upload",
                "Eicar-Test-Signature",
                at,
            )
            .dedupe_key
        };
        assert_eq!(
            alert("2026-12-04T10:00:01.000Z"),
            alert("2026-12-04T10:00:59.999Z")
        );
        assert_ne!(
            alert("2026-12-04T10:00:59.999Z"),
            alert("2026-12-04T10:01:00.000Z")
        );
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let seconds: Vec<i64> = (1..=10).map(|attempt| backoff(attempt).as_secs()).collect();
        assert_eq!(
            seconds,
            vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
        );
    }
}
