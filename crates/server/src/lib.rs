//! The `genkan` server: reads the configuration once, prepares the data directory, opens the
//! database, binds the listeners and hands them to the gateway; then waits for signals.
//!
//! What it is: the one place with sockets, files, the clock and signal handling. Startup is one
//! linear function ([`start`]); configuration is read into an immutable [`config::Config`] and
//! passed down, never kept in a global.
//!
//! What it is not: a home for business rules. Routing, TLS policy and logging formats live in
//! `gateway`; storage in `store-sqlite`.

pub mod accounts;
pub mod accounts_cli;
pub mod admin;
pub mod alerts;
pub mod auth;
pub mod center;
pub mod clock;
pub mod config;
pub mod datadir;
pub mod devices;
pub mod identity;
pub mod pages;
pub mod policy_test;
pub mod records;
pub mod records_cli;
pub mod service;
pub mod telemetry;
pub mod voice;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use gateway::tls::CertStore;
use gateway::{AccessLog, FrontDoor, LocalApp};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::config::{AccessLogTarget, Config, TlsSource};
use crate::datadir::DataDir;

/// A started server. Dropping it does not stop it; call [`Running::shutdown`].
pub struct Running {
    /// Where HTTPS is served (the real port when the config asked for port 0).
    pub https_addr: SocketAddr,
    /// Where the HTTP redirect listener is, if on.
    pub http_addr: Option<SocketAddr>,
    /// The data directory in use.
    pub data_dir: PathBuf,
    /// Whether this start made a new self-signed certificate.
    pub made_self_signed: bool,
    /// Where the plain-HTTP loopback Data API listener is, if on.
    pub data_api_addr: Option<SocketAddr>,
    initial_admin_password: Option<String>,
    config: Config,
    door: Arc<FrontDoor>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    auth: Arc<auth::Auth>,
    devices: Option<Arc<devices::Devices>>,
    alerts: Arc<alerts::Alerts>,
}

/// Prepares everything and starts serving; returns once the listeners are bound.
pub async fn start(config: Config) -> Result<Running> {
    let data = DataDir::prepare(&config.data_dir)?;
    let mut database = open_database(&data)?;
    let initial_admin_password = identity::bootstrap_admin(&mut database)?;
    let (certified, made_self_signed) = load_certificate(&config, &data)?;
    let certs = Arc::new(CertStore::new(certified));
    // With `[devices]`, the handshake asks for (and accepts no other than) device certificates.
    let device_ca = match &config.devices {
        Some(_) => Some(devices::ca::DeviceCa::load_or_create(
            &data.devices()?,
            clock::utc_now(),
        )?),
        None => None,
    };
    let device_roots = device_ca.as_ref().map(|ca| ca.roots()).transpose()?;
    let tls = gateway::tls::server_config_with_devices(
        Arc::clone(&certs),
        config.session_cache_entries,
        device_roots,
    )?;
    let access_log = open_access_log(&config)?;

    let https = TcpListener::bind(config.listen_https)
        .await
        .with_context(|| format!("listen_https: cannot listen on {}", config.listen_https))?;
    let https_addr = https.local_addr()?;
    let http = match config.listen_http {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen_http: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let http_addr = http.as_ref().map(TcpListener::local_addr).transpose()?;

    let settings = settings_for(&config, https_addr);
    let auth = Arc::new(auth::Auth::new(
        database,
        config.identity.clone(),
        config.policy_document.clone(),
    )?);
    let records = if config.records.databases.is_empty() {
        None
    } else {
        let opened =
            records::Records::open(config.records.clone(), &data.records(), Arc::clone(&auth))?;
        for database in opened.database_names() {
            datadir::restrict_to_owner(&records::database_path(&data.records(), &database))?;
        }
        Some(Arc::new(opened))
    };
    let data_api = match config.records.data_api_listen {
        Some(addr) if records.is_some() => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("records.data_api_listen: cannot listen on {addr}"))?,
        ),
        _ => None,
    };
    let data_api_addr = data_api.as_ref().map(TcpListener::local_addr).transpose()?;
    let contact_center = start_contact_center(&config, &auth, records.as_ref())?;
    let voice = match (&config.voice, &contact_center) {
        (Some(settings), Some((center, _))) => {
            Some(voice::Voice::bind(settings, Arc::clone(center), data.root()).await?)
        }
        (Some(_), None) => anyhow::bail!("voice: calls need a contact center ([[contact.queue]])"),
        (None, _) => None,
    };
    let alerts = alerts::Alerts::new(Arc::clone(&auth), config.alerts.clone());
    auth.set_alerts(&alerts);
    let devices = match (device_ca, &config.devices) {
        (Some(ca), Some(settings)) => Some(devices::Devices::new(
            Arc::clone(&auth),
            ca,
            settings.clone(),
            Arc::clone(&alerts),
        )),
        _ => None,
    };
    let local = built_in_apps(
        Arc::clone(&auth),
        records.clone(),
        contact_center,
        devices.clone(),
        voice.as_ref(),
    );
    let door = FrontDoor::new(
        settings,
        certs,
        tls,
        config.limits.clone(),
        access_log,
        local,
        Arc::clone(&auth) as Arc<dyn gateway::Gatekeeper>,
        clock::local_now,
    );

    auth.housekeeping(clock::timestamp_now());
    if let Some(scan) = &config.scan {
        tokio::spawn(report_scanner(scan.scanner.clone()));
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(
        Arc::clone(&door).serve_https(https, shutdown_rx.clone()),
    )];
    if let Some(http) = http {
        tasks.push(tokio::spawn(
            Arc::clone(&door).serve_redirect(http, shutdown_rx.clone()),
        ));
    }
    if let (Some(listener), Some(records)) = (data_api, &records) {
        tasks.push(tokio::spawn(records::serve_plain(
            listener,
            Arc::clone(records),
            shutdown_rx.clone(),
        )));
    }
    if let Some(records) = &records {
        tasks.push(tokio::spawn(records::housekeeping_loop(
            Arc::clone(records),
            shutdown_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(Arc::clone(&alerts).run(shutdown_rx.clone())));
    if let Some(devices) = &devices {
        devices.housekeeping(clock::timestamp_now());
    }
    if let Some(voice) = voice {
        tasks.push(voice.spawn(shutdown_rx.clone()));
    }
    tasks.push(tokio::spawn(hourly_housekeeping(
        Arc::clone(&auth),
        devices.clone(),
        shutdown_rx,
    )));
    tracing::info!(%https_addr, ?http_addr, data_dir = %data.root().display(), "genkan started");
    Ok(Running {
        https_addr,
        http_addr,
        data_dir: data.root().to_owned(),
        made_self_signed,
        data_api_addr,
        initial_admin_password,
        config,
        door,
        shutdown,
        tasks,
        auth,
        devices,
        alerts,
    })
}

impl Running {
    /// The first administrator's generated password, if this start made the account. It can be
    /// taken once, to be shown once; it is never logged.
    pub fn take_initial_admin_password(&mut self) -> Option<String> {
        self.initial_admin_password.take()
    }

    /// Re-reads the config file (if the server was started from one) and the certificate, and
    /// applies them to new requests. Listener and data-directory changes need a restart.
    /// On any error the running settings stay as they were.
    pub fn reload(&mut self) -> Result<()> {
        let fresh = match &self.config.source {
            Some(path) => {
                Config::load(path).with_context(|| format!("{} not reloaded", path.display()))?
            }
            None => self.config.clone(),
        };
        if fresh.listen_https != self.config.listen_https
            || fresh.listen_http != self.config.listen_http
            || fresh.data_dir != self.config.data_dir
        {
            tracing::warn!("listener or data_dir changes take effect only after a restart");
        }
        if format!("{:?}", fresh.records) != format!("{:?}", self.config.records) {
            tracing::warn!("[records] changes take effect only after a restart");
        }
        if format!("{:?}", fresh.contact) != format!("{:?}", self.config.contact) {
            tracing::warn!("[contact] changes take effect only after a restart");
        }
        if format!("{:?}", fresh.voice) != format!("{:?}", self.config.voice) {
            tracing::warn!("[voice] changes take effect only after a restart");
        }
        if fresh.devices.is_some() != self.config.devices.is_some() {
            tracing::warn!("turning [devices] on or off takes effect only after a restart");
        }
        let data = DataDir::prepare(&self.config.data_dir)?;
        let (certified, _) = load_certificate(&fresh, &data)?;
        // The policy can refuse to reload (stored rules that no longer fit); check it first so
        // that a refused reload changes nothing at all.
        self.auth
            .reload(fresh.identity.clone(), fresh.policy_document.clone())?;
        self.door.certificates().replace(certified);
        if let (Some(devices), Some(settings)) = (&self.devices, &fresh.devices) {
            devices.reload(settings.clone());
        }
        self.alerts.reload(fresh.alerts.clone());
        self.door.reload(settings_for(&fresh, self.https_addr));
        self.config = Config {
            listen_https: self.config.listen_https,
            listen_http: self.config.listen_http,
            data_dir: self.config.data_dir.clone(),
            ..fresh
        };
        tracing::info!("configuration and certificate reloaded");
        Ok(())
    }

    /// Reopens the access log (after logrotate moved it).
    pub fn reopen_logs(&self) {
        self.door.access_log().reopen();
        tracing::info!("access log reopened");
    }

    /// Stops accepting, lets requests in flight finish (up to the grace period), and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Serves until SIGTERM or SIGINT, reloading on SIGHUP and reopening logs on SIGUSR1.
    /// Tells systemd about each state when run under it.
    #[cfg(unix)]
    pub async fn serve_until_signalled(mut self) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let mut user1 = signal(SignalKind::user_defined1())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        notify_systemd(&[sd_notify::NotifyState::Ready]);
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    notify_systemd(&[sd_notify::NotifyState::Reloading]);
                    if let Err(error) = self.reload() {
                        tracing::error!("{error:#}");
                    }
                    notify_systemd(&[sd_notify::NotifyState::Ready]);
                }
                _ = user1.recv() => self.reopen_logs(),
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
            }
        }
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
        tracing::info!("shutting down; draining requests in flight");
        self.shutdown().await;
        Ok(())
    }

    /// Serves until Ctrl+C (platforms without Unix signals).
    #[cfg(not(unix))]
    pub async fn serve_until_signalled(self) -> Result<()> {
        tokio::signal::ctrl_c().await?;
        self.shutdown().await;
        Ok(())
    }
}

#[cfg(unix)]
fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "could not notify systemd");
    }
}

/// Opens (creating and migrating) the database in the data directory, readable by genkan only.
pub fn open_database(data: &DataDir) -> Result<store_sqlite::Database> {
    let database = store_sqlite::Database::open(&data.database(), &clock::utc_now_text())
        .with_context(|| format!("cannot open the database {}", data.database().display()))?;
    datadir::restrict_to_owner(&data.database())?;
    Ok(database)
}

/// Says at start whether clamd answers, so that a scanner that is down shows in the log before
/// the first upload is refused.
async fn report_scanner(scanner: virus_scan::Scanner) {
    let address = scanner.settings().address.to_string();
    match scanner.version().await {
        Ok(version) => tracing::info!(clamd = %address, %version, "virus scanner answers"),
        Err(error) => tracing::warn!(
            %error,
            "virus scanner not answering: bodies on scanning routes are refused (503) until it does, \
             or forwarded unscanned if scan.fail_open is set"
        ),
    }
}

/// Prunes old audit events, sessions and device reports every hour until shutdown.
async fn hourly_housekeeping(
    auth: Arc<auth::Auth>,
    devices: Option<Arc<devices::Devices>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(3600));
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let auth = Arc::clone(&auth);
                let devices = devices.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    auth.housekeeping(clock::timestamp_now());
                    if let Some(devices) = devices {
                        devices.housekeeping(clock::timestamp_now());
                    }
                })
                .await;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// The contact center's event loop, when `[contact]` configures one.
fn start_contact_center(
    config: &Config,
    auth: &Arc<auth::Auth>,
    records: Option<&Arc<records::Records>>,
) -> Result<
    Option<(
        Arc<center::runtime::ContactCenter>,
        Arc<config::ContactSettings>,
    )>,
> {
    let Some(settings) = &config.contact else {
        return Ok(None);
    };
    let customers = match &settings.customers {
        None => None,
        Some((database, source)) => {
            let served = records
                .and_then(|records| records.database(database))
                .with_context(|| {
                    format!("contact.customers.database: `{database}` is not served")
                })?;
            Some(center::runtime::Customers {
                database: served,
                source: source.clone(),
            })
        }
    };
    let center = settings
        .center(clock::timestamp_now())
        .map_err(|error| anyhow::anyhow!("contact: {error}"))?;
    let log: Arc<dyn center::runtime::ContactLog> = Arc::clone(auth) as _;
    let running = center::runtime::ContactCenter::start(center, customers, log)?;
    Ok(Some((running, Arc::new(settings.clone()))))
}

/// genkan's own pages as the gateway's fallback service.
fn built_in_apps(
    auth: Arc<auth::Auth>,
    records: Option<Arc<records::Records>>,
    contact: Option<(
        Arc<center::runtime::ContactCenter>,
        Arc<config::ContactSettings>,
    )>,
    devices: Option<Arc<devices::Devices>>,
    voice: Option<&voice::Voice>,
) -> LocalApp {
    let mut router = pages::router(Arc::clone(&auth));
    if let Some(devices) = devices {
        router = router.merge(devices::router(devices));
    }
    if let Some(records) = records {
        router = router.merge(records::router(records));
    }
    if let Some((running, settings)) = contact {
        router = router
            .merge(center::admin::router(
                Arc::clone(&auth),
                Arc::clone(&settings),
            ))
            .merge(center::contacts_page::router(Arc::clone(&auth)))
            .merge(center::supervisor::router(
                Arc::clone(&auth),
                Arc::clone(&running),
                Arc::clone(&settings),
            ))
            .merge(center::web::router(
                running,
                Arc::clone(&auth),
                Arc::clone(&settings),
                voice.map(|voice| voice.softphones.clone()),
            ));
        if let Some(voice) = voice {
            router = router
                .merge(voice.prompts_page(Arc::clone(&auth), Arc::clone(&settings)))
                .merge(center::recordings::router(auth, voice.recordings.clone()));
        }
    }
    let service = ServiceExt::<http::Request<hyper::body::Incoming>>::map_response(
        router,
        |response: axum::response::Response| response.map(gateway::boxed),
    );
    LocalApp::new(service)
}

fn settings_for(config: &Config, https_addr: SocketAddr) -> gateway::Settings {
    let mut settings = config.gateway.clone();
    if config.https_redirect_port.is_none() {
        settings.https_redirect_port = https_addr.port();
    }
    settings
}

fn load_certificate(config: &Config, data: &DataDir) -> Result<(rustls::sign::CertifiedKey, bool)> {
    let (cert, key, made) = match &config.tls {
        TlsSource::Files {
            certificate,
            private_key,
        } => (certificate.clone(), private_key.clone(), false),
        TlsSource::SelfSigned { hostnames } => {
            datadir::ensure_self_signed(data, hostnames, clock::utc_now())?
        }
    };
    let certified = gateway::tls::load_certified_key(&cert, &key).context("tls.certificate")?;
    Ok((certified, made))
}

fn open_access_log(config: &Config) -> Result<AccessLog> {
    Ok(match &config.access_log {
        AccessLogTarget::Off => AccessLog::off(),
        AccessLogTarget::File { path, format } => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).with_context(|| {
                    format!("access_log.path: cannot create {}", parent.display())
                })?;
            }
            AccessLog::open(path, *format).context("access_log.path")?
        }
    })
}
