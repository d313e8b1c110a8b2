//! The bootstrap configuration: the TOML file, the environment overrides and the defaults, turned
//! into typed values once at start (and again on `SIGHUP`).
//!
//! Only what must be known before the database is open lives here: listeners, certificates, the
//! data directory, limits, and the proxied routes. Every error names the key it is about.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use gateway::compress::CompressionPolicy;

use gateway::{AccessLogFormat, Limits, Settings};

use crate::pages;

mod contact;
mod devices;
mod file;
mod identity;
mod records;
mod routes;
mod scan;
mod voice;

use routes::{header_policy, route_settings};

pub use contact::{AgentSettings, ContactSettings};
pub use devices::{AlertSettings, DeviceSettings, Secret, SmtpSettings};
pub use file::{
    AccessLogFile, AlertsFile, CompressionFile, ConfigFile, ContactFile, DevicesFile, HeadersFile,
    IdentityFile, LimitsFile, RecordsFile, RouteFile, ScanFile, TlsFile, parse,
};
pub use identity::{IdentitySettings, compile_policy};
pub use records::{AccountSettings, DatabaseSettings, Grant, RecordsSettings, valid_database_name};
pub use voice::{Cidr, SipAgentSettings, SipPassword, TrunkSettings, VoiceFile, VoiceSettings};

/// A configuration problem, naming the key (as written in the file) and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    /// Dotted key, e.g. `route[0].upstream` or `tls.certificate`.
    pub key: String,
    /// What is wrong, in words an administrator can act on.
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// How the diagnostic log is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// JSON objects.
    Json,
}

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// Files named in the config.
    Files {
        /// Certificate chain.
        certificate: PathBuf,
        /// Private key.
        private_key: PathBuf,
    },
    /// A self-signed certificate kept in the data directory.
    SelfSigned {
        /// Names it is valid for.
        hostnames: Vec<String>,
    },
}

/// The access log's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Not written.
    Off,
    /// Written to this file.
    File {
        /// Absolute path.
        path: PathBuf,
        /// Line format.
        format: AccessLogFormat,
    },
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory (absolute or relative to the working directory).
    pub data_dir: PathBuf,
    /// HTTPS listener.
    pub listen_https: SocketAddr,
    /// HTTP redirect listener.
    pub listen_http: Option<SocketAddr>,
    /// Port used in redirects; `None` means the HTTPS listener's bound port.
    pub https_redirect_port: Option<u16>,
    /// Certificate source.
    pub tls: TlsSource,
    /// Resumption cache size.
    pub session_cache_entries: usize,
    /// Client limits.
    pub limits: Limits,
    /// Access log.
    pub access_log: AccessLogTarget,
    /// Diagnostic log format.
    pub log_format: LogFormat,
    /// Diagnostic log filter.
    pub log_level: String,
    /// Gateway settings; `https_redirect_port` is filled in once the listener is bound.
    pub gateway: Settings,
    /// The compiled access policy.
    pub policy: std::sync::Arc<policy::Policy>,
    /// The `[policy]` section as written, to merge with the rules stored from the admin pages.
    pub policy_document: policy::PolicyDocument,
    /// Sign-in and session settings.
    pub identity: IdentitySettings,
    /// Records databases and the Data API.
    pub records: RecordsSettings,
    /// The contact center, when `[[contact.queue]]` is configured.
    pub contact: Option<ContactSettings>,
    /// The virus scanner, when `[scan]` is configured: the routes that scan carry a copy, and
    /// genkan's own upload paths use this one.
    pub scan: Option<gateway::UploadScan>,
    /// Enrolled devices, when `[devices]` is configured.
    pub devices: Option<DeviceSettings>,
    /// Where device alerts go.
    pub alerts: AlertSettings,
    /// SIP trunks and phones, when `[voice]` is configured.
    pub voice: Option<VoiceSettings>,
    /// The file this came from, for reloads.
    pub source: Option<PathBuf>,
}

impl Config {
    /// Reads and checks a configuration file, then applies `GENKAN_*` environment overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::new("(file)", format!("cannot read {}: {error}", path.display()))
        })?;
        let file = parse(&text)?;
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut config = Self::from_file(file, &base, &Environment::from_process())?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// The embedded default, with `GENKAN_*` environment overrides.
    pub fn embedded_default() -> Result<Self, ConfigError> {
        Self::from_file(
            ConfigFile::default(),
            Path::new("."),
            &Environment::from_process(),
        )
    }

    /// Checks a parsed file. Relative paths are taken from `base` (the config file's folder).
    pub fn from_file(
        file: ConfigFile,
        base: &Path,
        env: &Environment,
    ) -> Result<Self, ConfigError> {
        if let Some(version) = file.version.filter(|version| *version != 1) {
            return Err(ConfigError::new(
                "version",
                format!("unknown version {version}; this genkan reads version 1"),
            ));
        }
        let data_dir = match env.data_dir.clone() {
            Some(dir) => dir,
            None => base.join(file.data_dir.unwrap_or_else(|| PathBuf::from("data"))),
        };
        let listen_https = socket_addr(
            "listen_https",
            env.listen_https
                .as_deref()
                .or(file.listen_https.as_deref())
                .unwrap_or("0.0.0.0:8443"),
        )?;
        let listen_http = match env
            .listen_http
            .as_deref()
            .or(file.listen_http.as_deref())
            .unwrap_or("0.0.0.0:8080")
        {
            "off" => None,
            text => Some(socket_addr("listen_http", text)?),
        };
        let tls = match (file.tls.certificate, file.tls.private_key) {
            (Some(certificate), Some(private_key)) => {
                let certificate = base.join(certificate);
                let private_key = base.join(private_key);
                check_certificate(&certificate, &private_key)?;
                TlsSource::Files {
                    certificate,
                    private_key,
                }
            }
            (None, None) => TlsSource::SelfSigned {
                hostnames: file.tls.hostnames.unwrap_or_else(|| {
                    ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()
                }),
            },
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "tls.private_key",
                    "missing: tls.certificate needs its key",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "tls.certificate",
                    "missing: tls.private_key needs its certificate",
                ));
            }
        };
        let limits = limits(&file.limits)?;
        let access_log = match file.access_log.path.as_deref().unwrap_or("logs/access.log") {
            "off" => AccessLogTarget::Off,
            path => AccessLogTarget::File {
                path: data_dir.join(path),
                format: match file.access_log.format.as_deref().unwrap_or("main") {
                    "main" => AccessLogFormat::NginxMain,
                    "json" => AccessLogFormat::Json,
                    other => {
                        return Err(ConfigError::new(
                            "access_log.format",
                            format!("`{other}` is not `main` or `json`"),
                        ));
                    }
                },
            },
        };
        let log_format = match env
            .log_format
            .as_deref()
            .or(file.log_format.as_deref())
            .unwrap_or("human")
        {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::new(
                    "log_format",
                    format!("`{other}` is not `human` or `json`"),
                ));
            }
        };
        let global_headers = file.headers;
        let headers = header_policy("headers", &HeadersFile::default(), &global_headers)?;
        let compression_types = file.compression.types.clone().unwrap_or_default();
        let min_length = file.compression.min_length.unwrap_or(1024);
        let compression = if file.compression.enabled.unwrap_or(true) {
            CompressionPolicy::with_types(compression_types, min_length)
        } else {
            CompressionPolicy::off()
        };
        for ignored in compression.ignored_types() {
            tracing::warn!(
                media_type = ignored,
                "compression.types lists an already-compressed format; it will not be compressed"
            );
        }
        let error_page = match &file.error_page {
            Some(path) => read_page("error_page", &base.join(path))?,
            None => Bytes::from_static(pages::UPSTREAM_ERROR_PAGE.as_bytes()),
        };
        let identity = identity::identity_settings(&file.identity)?;
        let records = records::records_settings(file.records, base)?;
        let record_databases: Vec<String> = records
            .databases
            .iter()
            .map(|database| database.name.clone())
            .collect();
        let contact = contact::contact_settings(file.contact, base, &record_databases)?;
        let contact_agents: Vec<String> = contact
            .iter()
            .flat_map(|settings| settings.agents.iter().map(|agent| agent.name.clone()))
            .collect();
        let voice = voice::voice_settings(file.voice, &contact_agents)?;
        let local_prefixes = if records.databases.is_empty() {
            Vec::new()
        } else {
            vec!["/fmi/data/".to_owned(), "/api/sql".to_owned()]
        };
        let policy_document = file.policy;
        let policy = compile_policy(&policy_document)
            .map_err(|error| ConfigError::new(error.location, error.problem))?;
        let scan = scan::scan_settings(file.scan, base)?;
        let devices = devices::device_settings(file.devices)?;
        let alerts = devices::alert_settings(file.alerts, base)?;
        let routes = file
            .routes
            .into_iter()
            .enumerate()
            .map(|(index, route)| {
                route_settings(
                    index,
                    route,
                    base,
                    &global_headers,
                    &compression,
                    scan.as_ref(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            data_dir,
            listen_https,
            listen_http,
            https_redirect_port: file.https_redirect_port,
            tls,
            session_cache_entries: file.tls.session_cache.unwrap_or(4096),
            limits,
            access_log,
            log_format,
            log_level: env
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            gateway: Settings {
                routes,
                headers,
                compression: CompressionPolicy::off(),
                error_page,
                https_redirect_port: file.https_redirect_port.unwrap_or(listen_https.port()),
                local_prefixes,
            },
            policy: std::sync::Arc::new(policy),
            policy_document,
            identity,
            records,
            contact,
            scan,
            devices,
            alerts,
            voice,
            source: None,
        })
    }
}

/// Overrides taken from `GENKAN_*` environment variables (set by service managers and tests).
#[derive(Debug, Default, Clone)]
pub struct Environment {
    /// `GENKAN_DATA_DIR`
    pub data_dir: Option<PathBuf>,
    /// `GENKAN_LISTEN_HTTPS`
    pub listen_https: Option<String>,
    /// `GENKAN_LISTEN_HTTP`
    pub listen_http: Option<String>,
    /// `GENKAN_LOG_FORMAT`
    pub log_format: Option<String>,
    /// `GENKAN_LOG`
    pub log_level: Option<String>,
}

impl Environment {
    /// Reads the variables of this process.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Self {
            data_dir: var("GENKAN_DATA_DIR").map(PathBuf::from),
            listen_https: var("GENKAN_LISTEN_HTTPS"),
            listen_http: var("GENKAN_LISTEN_HTTP"),
            log_format: var("GENKAN_LOG_FORMAT"),
            log_level: var("GENKAN_LOG"),
        }
    }
}

fn socket_addr(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|_| {
        ConfigError::new(
            key,
            format!("`{text}` is not an address:port such as \"0.0.0.0:443\" or \"[::]:443\""),
        )
    })
}

fn check_certificate(certificate: &Path, private_key: &Path) -> Result<(), ConfigError> {
    match gateway::tls::load_certified_key(certificate, private_key) {
        Ok(_) => Ok(()),
        Err(
            error @ (gateway::Error::BadPrivateKey { .. } | gateway::Error::KeyMismatch { .. }),
        ) => Err(ConfigError::new("tls.private_key", error.to_string())),
        Err(gateway::Error::ReadPem { path, source }) if path == private_key => {
            Err(ConfigError::new(
                "tls.private_key",
                format!("cannot read {}: {source}", path.display()),
            ))
        }
        Err(error) => Err(ConfigError::new("tls.certificate", error.to_string())),
    }
}

/// Parses `"10s"`, `"1m30s"`, `"500ms"`.
pub fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text).map_err(|error| {
        ConfigError::new(
            key,
            format!("`{text}` is not a duration such as \"10s\" or \"5m\" ({error})"),
        )
    })
}

/// Parses a size the way nginx does: bytes, or a number with `k`, `m` or `g` (powers of 1024).
pub fn size(key: &str, text: &str) -> Result<u64, ConfigError> {
    let trimmed = text.trim();
    let (digits, unit) = match trimmed.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => trimmed.split_at(at),
        None => (trimmed, ""),
    };
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => {
            return Err(ConfigError::new(
                key,
                format!("`{text}` is not a size such as \"16k\" or \"64m\""),
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(multiplier))
        .ok_or_else(|| {
            ConfigError::new(
                key,
                format!("`{text}` is not a size such as \"16k\" or \"64m\""),
            )
        })
}

fn limits(file: &LimitsFile) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    if let Some(text) = &file.max_header_size {
        let bytes = size("limits.max_header_size", text)?;
        if !(8192..=1024 * 1024).contains(&bytes) {
            return Err(ConfigError::new(
                "limits.max_header_size",
                "must be between 8k and 1m",
            ));
        }
        limits.max_header_bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    if let Some(text) = &file.max_body_size {
        limits.max_body_bytes = size("limits.max_body_size", text)?;
    }
    let timeouts = [
        (
            "limits.header_timeout",
            &file.header_timeout,
            &mut limits.header_read_timeout,
        ),
        (
            "limits.handshake_timeout",
            &file.handshake_timeout,
            &mut limits.handshake_timeout,
        ),
        (
            "limits.keepalive_timeout",
            &file.keepalive_timeout,
            &mut limits.keepalive_timeout,
        ),
        (
            "limits.shutdown_grace",
            &file.shutdown_grace,
            &mut limits.shutdown_grace,
        ),
    ];
    for (key, text, slot) in timeouts {
        if let Some(text) = text {
            let value = duration(key, text)?;
            if value.is_zero() {
                return Err(ConfigError::new(key, "must be longer than zero"));
            }
            *slot = value;
        }
    }
    Ok(limits)
}

pub(super) fn read_page(key: &str, path: &Path) -> Result<Bytes, ConfigError> {
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|error| ConfigError::new(key, format!("cannot read {}: {error}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_file(
            parse(text)?,
            Path::new("/etc/genkan"),
            &Environment::default(),
        )
    }

    #[test]
    fn empty_file_gives_the_embedded_default() {
        let config = load("").unwrap();
        assert_eq!(config.listen_https, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(config.listen_http, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(config.data_dir, PathBuf::from("/etc/genkan/data"));
        assert!(matches!(config.tls, TlsSource::SelfSigned { .. }));
        assert_eq!(
            config.access_log,
            AccessLogTarget::File {
                path: "/etc/genkan/data/logs/access.log".into(),
                format: AccessLogFormat::NginxMain
            }
        );
        assert!(config.gateway.routes.is_empty());
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = load("listen_htps = \"0.0.0.0:443\"").unwrap_err();
        assert_eq!(error.key, "listen_htps");
        let error = load("[[route]]\nupstream = \"http://127.0.0.1:8080\"\nproxy_pass = \"x\"")
            .unwrap_err();
        assert_eq!(error.key, "proxy_pass");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("listen_https = \"0.0.0.0:99999\"", "listen_https"),
            ("listen_http = \"localhost\"", "listen_http"),
            ("version = 2", "version"),
            ("[limits]\nmax_body_size = \"ten\"", "limits.max_body_size"),
            (
                "[limits]\nmax_header_size = \"1k\"",
                "limits.max_header_size",
            ),
            (
                "[limits]\nheader_timeout = \"soon\"",
                "limits.header_timeout",
            ),
            ("[access_log]\nformat = \"combined\"", "access_log.format"),
            ("[[route]]\npath = \"/\"", "route[0].upstream"),
            ("[[route]]\nupstream = \"ftp://x\"", "route[0].upstream"),
            (
                "[[route]]\nupstream = \"https://127.0.0.1\"",
                "route[0].upstream",
            ),
            (
                "[[route]]\nupstream = \"http://127.0.0.1:8080\"\npath = \"app\"",
                "route[0].path",
            ),
            (
                "[[route]]\nupstream = \"http://127.0.0.1:8080\"\nhost = \"https://x\"",
                "route[0].host",
            ),
            (
                "[tls]\ncertificate = \"/nonexistent/fullchain.pem\"\nprivate_key = \"/nonexistent/privkey.pem\"",
                "tls.certificate",
            ),
            (
                "[tls]\ncertificate = \"/nonexistent/fullchain.pem\"",
                "tls.private_key",
            ),
            (
                "[headers]\nx_frame_options = \"DENY\\nX-Evil: 1\"",
                "headers.x_frame_options",
            ),
        ];
        for (text, key) in cases {
            match load(text) {
                Ok(_) => panic!("accepted: {text}"),
                Err(error) => assert_eq!(error.key, key, "{text}: {error}"),
            }
        }
    }

    #[test]
    fn the_seed_translation_parses() {
        let text = include_str!("../../../examples/legacy-tls-proxy.toml");
        let file = parse(text).unwrap();
        assert!(file.data_dir.is_some());
        assert_eq!(file.listen_https.as_deref(), Some("0.0.0.0:443"));
        assert_eq!(file.listen_http.as_deref(), Some("0.0.0.0:80"));
        assert_eq!(
            file.routes[0].upstream.as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }

    #[test]
    fn route_headers_override_global_ones() {
        let config = load(
            "[headers]\nx_xss_protection = \"1; mode=block\"\n[[route]]\nupstream = \"http://127.0.0.1:8080/app/\"\n[route.headers]\nx_frame_options = \"\"\n",
        )
        .unwrap();
        let route = &config.gateway.routes[0];
        let names: Vec<_> = route
            .headers
            .set
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert!(names.contains(&"x-xss-protection"));
        assert!(!names.contains(&"x-frame-options"));
        assert_eq!(route.upstream.base_path.as_deref(), Some("/app/"));
        let bare = load("[[route]]\nupstream = \"http://127.0.0.1:8080\"\n[[route]]\nupstream = \"http://127.0.0.1:8080/\"\n").unwrap();
        assert_eq!(bare.gateway.routes[0].upstream.base_path, None);
        assert_eq!(
            bare.gateway.routes[1].upstream.base_path.as_deref(),
            Some("/")
        );
        assert_eq!(route.upstream_host, gateway::route::UpstreamHost::Upstream);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(size("k", "16k").unwrap(), 16384);
        assert_eq!(size("k", "64M").unwrap(), 64 << 20);
        assert_eq!(size("k", "100").unwrap(), 100);
        assert!(size("k", "99999999999999999999g").is_err());
        assert_eq!(duration("k", "1m30s").unwrap(), Duration::from_secs(90));
    }
}
