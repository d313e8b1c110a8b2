//! Reporting: collect, queue, deliver the queue oldest first; then wait the interval genkan
//! asked for, with jitter so that a hundred PCs switched on at nine do not report in step.

use std::fs::File;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http::StatusCode;
use posture::{REPORT_PATH, Report, ReportAccepted};
use rustls::RootCertStore;

use crate::client::{self, Client, Connection, Identity, ServerAddress};
use crate::collect::{self, Host};
use crate::queue::{self, Queue};
use crate::state::{Device, StateDir};

/// Bounds on the interval whatever genkan answers: a broken server must neither make agents
/// hammer it nor silence them for days.
const MIN_INTERVAL_SECONDS: u32 = 30;
const MAX_INTERVAL_SECONDS: u32 = 86_400;

/// An enrolled agent, holding the state directory's lock while it lives.
pub(crate) struct Agent {
    device: Device,
    state: StateDir,
    /// Replaced when genkan renews the device's certificate; cloned out before any await.
    client: std::sync::RwLock<std::sync::Arc<Client>>,
    queue: Queue,
    _lock: File,
}

/// The HTTPS client with the device's current certificate and key from the state directory.
fn client_for(state: &StateDir, device: &Device) -> Result<Client> {
    let server = ServerAddress::parse(&device.server)?;
    let roots = trust_anchors(state)?;
    let cert = state.read_text("cert.pem")?;
    let key = state.read_text("key.pem")?;
    let identity = Identity::from_pem(cert.as_bytes(), key.as_bytes())?;
    Client::new(server, roots, Some(identity))
}

/// What one delivery attempt did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// Reports genkan accepted (and that were removed from the queue).
    pub(crate) sent: usize,
    /// Reports genkan refused as malformed (moved to `rejected/`).
    pub(crate) rejected: usize,
    /// Reports still queued.
    pub(crate) remaining: usize,
    /// The interval genkan asked for in its last answer.
    pub(crate) next_report_seconds: Option<u32>,
    /// Why delivery stopped early (unreachable, refused, timed out).
    pub(crate) error: Option<String>,
}

impl Agent {
    /// Loads the enrolment and identity from the state directory.
    pub(crate) fn load(state: &StateDir) -> Result<Self> {
        let device = state.device()?;
        let lock = state.lock()?;
        let client = client_for(state, &device)?;
        let queue = queue::open_in(state.root())?;
        Ok(Self {
            device,
            state: state.clone(),
            client: std::sync::RwLock::new(std::sync::Arc::new(client)),
            queue,
            _lock: lock,
        })
    }

    fn current_client(&self) -> std::sync::Arc<Client> {
        match self.client.read() {
            Ok(client) => std::sync::Arc::clone(&client),
            Err(poisoned) => std::sync::Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Checks that the renewed certificate goes with the device's key, stores it (atomically)
    /// and uses it from the next connection on.
    fn take_renewed_certificate(&self, pem: &str) -> Result<()> {
        let key = self.state.read_text("key.pem")?;
        Identity::from_pem(pem.as_bytes(), key.as_bytes())
            .context("the renewed certificate does not go with this device's key")?;
        self.state.write_private("cert.pem", pem.as_bytes())?;
        let client = client_for(&self.state, &self.device)?;
        match self.client.write() {
            Ok(mut current) => *current = std::sync::Arc::new(client),
            Err(poisoned) => *poisoned.into_inner() = std::sync::Arc::new(client),
        }
        Ok(())
    }

    pub(crate) fn device_id(&self) -> &str {
        &self.device.device_id
    }

    /// Puts a report in the queue (on disk, atomically) before any attempt to send it.
    pub(crate) fn enqueue(&self, report: &Report) -> Result<()> {
        let json = serde_json::to_vec(report).context("writing the report")?;
        let dropped = self.queue.push(&json)?;
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "queue full: dropped the oldest undelivered reports"
            );
        }
        Ok(())
    }

    /// Sends queued reports oldest first until the queue is empty or genkan cannot take the
    /// next. A report leaves the queue only after a 2xx. `Err` is for local failures (the
    /// queue unreadable); network failures are in [`Delivery::error`].
    pub(crate) async fn deliver(&self) -> Result<Delivery> {
        let mut delivery = Delivery::default();
        let entries = self.queue.list()?;
        let mut connection: Option<Connection> = None;
        for (index, entry) in entries.iter().enumerate() {
            let body = self.queue.read(entry)?;
            // The server may close a connection between two posts; open another then.
            let mut reusable = connection.take();
            if let Some(open) = reusable.as_mut()
                && !open.is_usable().await
            {
                reusable = None;
            }
            let mut open = match reusable {
                Some(open) => open,
                None => match self.current_client().connect().await {
                    Ok(fresh) => fresh,
                    Err(error) => {
                        delivery.error = Some(format!("{error:#}"));
                        delivery.remaining = entries.len() - index;
                        return Ok(delivery);
                    }
                },
            };
            let answer = open.post_json(REPORT_PATH, body).await;
            connection = Some(open);
            match answer {
                Ok(answer) if answer.status.is_success() => {
                    self.queue.remove(entry)?;
                    delivery.sent += 1;
                    // An answer without the expected body still means delivered.
                    let accepted = serde_json::from_slice::<ReportAccepted>(&answer.body).ok();
                    delivery.next_report_seconds = accepted
                        .as_ref()
                        .map(|accepted| accepted.next_report_seconds);
                    if let Some(pem) =
                        accepted.and_then(|accepted| accepted.renewed_certificate_pem)
                    {
                        // Kept for the next connection; the old one stays valid until genkan
                        // sees the new one, so a failure here costs nothing but a retry.
                        match self.take_renewed_certificate(&pem) {
                            Ok(()) => tracing::info!("genkan renewed this device's certificate"),
                            Err(error) => {
                                tracing::warn!("the renewed certificate was not kept: {error:#}");
                            }
                        }
                    }
                }
                Ok(answer) if is_malformed(answer.status) => {
                    let kept = self.queue.reject(entry)?;
                    delivery.rejected += 1;
                    tracing::warn!(
                        status = %answer.status,
                        answer = %client::snippet(&answer.body),
                        kept = %kept.display(),
                        "genkan refused a report as malformed; it will not be sent again"
                    );
                }
                Ok(answer) => {
                    delivery.error = Some(format!(
                        "genkan answered {}: {}",
                        answer.status,
                        client::snippet(&answer.body)
                    ));
                    delivery.remaining = entries.len() - index;
                    return Ok(delivery);
                }
                Err(error) => {
                    delivery.error = Some(format!("{error:#}"));
                    delivery.remaining = entries.len() - index;
                    return Ok(delivery);
                }
            }
        }
        Ok(delivery)
    }

    /// Collects a report, queues it and delivers the queue.
    pub(crate) async fn report_once(&self, host: &impl Host) -> Result<Delivery> {
        let report = collect::collect(host, Some(self.device.device_id.clone())).await;
        for problem in &report.problems {
            tracing::debug!(%problem, "collector problem (sent in the report)");
        }
        self.enqueue(&report)?;
        let delivery = self.deliver().await?;
        log(&delivery);
        Ok(delivery)
    }

    /// Reports until `shutdown` completes.
    pub(crate) async fn run_forever(
        &self,
        host: &impl Host,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let mut shutdown = std::pin::pin!(shutdown);
        tracing::info!(device_id = self.device_id(), "reporting to genkan");
        loop {
            let round = async {
                let seconds = match self.report_once(host).await {
                    Ok(delivery) => delivery.next_report_seconds,
                    // A full or broken disk: say so and try again next round.
                    Err(error) => {
                        tracing::error!(error = format!("{error:#}"), "could not queue the report");
                        None
                    }
                };
                let seconds = seconds.unwrap_or(self.device.report_interval_seconds);
                tokio::time::sleep(jittered(seconds, random_u32())).await;
            };
            tokio::select! {
                () = round => {}
                () = &mut shutdown => {
                    tracing::info!("stopping");
                    return Ok(());
                }
            }
        }
    }
}

/// Trust for genkan's HTTPS certificate: the CA given at enrolment (else the system's), plus
/// genkan's device CA, which belongs to the same server.
fn trust_anchors(state: &StateDir) -> Result<RootCertStore> {
    let mut roots = match std::fs::read(state.path("server-ca.pem")) {
        Ok(pem) => client::roots_from_pem(&pem, "server-ca.pem")?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            client::system_roots().unwrap_or_else(|_| RootCertStore::empty())
        }
        Err(error) => return Err(error).context("reading server-ca.pem"),
    };
    let device_ca = state.read_text("ca.pem")?;
    client::add_pem_roots(&mut roots, device_ca.as_bytes(), "ca.pem")?;
    if roots.is_empty() {
        bail!("no CA to trust genkan's certificate with; enrol again with --ca-file");
    }
    Ok(roots)
}

/// A request genkan will never accept, however often it is sent: set aside rather than block
/// the queue. Refusals of the device itself (401, 403) are not: the reports stay until an
/// administrator sorts the device out.
fn is_malformed(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY
    )
}

fn log(delivery: &Delivery) {
    match &delivery.error {
        None => tracing::info!(sent = delivery.sent, "reports delivered"),
        Some(error) => tracing::warn!(
            sent = delivery.sent,
            queued = delivery.remaining,
            %error,
            "genkan unreachable; reports stay queued"
        ),
    }
}

/// The wait before the next report: the interval, bounded, within ±10 %.
fn jittered(seconds: u32, random: u32) -> Duration {
    let base = f64::from(seconds.clamp(MIN_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS));
    let fraction = f64::from(random) / f64::from(u32::MAX);
    Duration::from_secs_f64(base * (0.9 + 0.2 * fraction))
}

fn random_u32() -> u32 {
    // Without the OS's randomness the agents lose only their spread, not their reports.
    getrandom::u32().unwrap_or(u32::MAX / 2)
}

/// Completes on Ctrl-C or (on Unix) SIGTERM, which systemd sends to stop the service.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent_and_bounds_hold() {
        assert_eq!(jittered(300, 0), Duration::from_secs(270));
        assert_eq!(jittered(300, u32::MAX), Duration::from_secs(330));
        let middle = jittered(300, u32::MAX / 2).as_secs_f64();
        assert!((299.0..301.0).contains(&middle), "{middle}");
        assert_eq!(jittered(1, 0), Duration::from_secs(27));
        assert_eq!(jittered(u32::MAX, u32::MAX), Duration::from_secs(95_040));
    }

    #[test]
    fn only_malformed_requests_are_set_aside() {
        assert!(is_malformed(StatusCode::BAD_REQUEST));
        assert!(is_malformed(StatusCode::UNPROCESSABLE_ENTITY));
        assert!(!is_malformed(StatusCode::UNAUTHORIZED));
        assert!(!is_malformed(StatusCode::FORBIDDEN));
        assert!(!is_malformed(StatusCode::SERVICE_UNAVAILABLE));
    }
}
