//! The configuration file exactly as written: serde structs whose doc comments are the
//! reference for every key (kept in step with `docs/config.md` by a test).

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// The configuration file as written. Every table refuses keys it does not know.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Format version of this file; only `1` exists.
    pub version: Option<u32>,
    /// Where genkan keeps its database, certificates and logs. Default `data` (relative to the
    /// config file's folder, or to the working directory without a file).
    pub data_dir: Option<PathBuf>,
    /// HTTPS listener address. Default `0.0.0.0:8443`.
    pub listen_https: Option<String>,
    /// Plain-HTTP listener that redirects to HTTPS, or `"off"`. Default `0.0.0.0:8080`.
    pub listen_http: Option<String>,
    /// Port named in HTTP→HTTPS redirects when the public port differs from the listener's
    /// (port forwarding on the router). Default: the HTTPS listener's port.
    pub https_redirect_port: Option<u16>,
    /// `human` or `json` for the diagnostic log on standard error. Default `human`.
    pub log_format: Option<String>,
    /// Diagnostic log filter (`info`, `debug`, `gateway=debug,info`…). Default `info`.
    pub log_level: Option<String>,
    /// Page shown when an upstream is down (502) or slow (504). Default: genkan's own page.
    pub error_page: Option<PathBuf>,
    /// Certificates and TLS session settings.
    #[serde(default)]
    pub tls: TlsFile,
    /// Size and time limits for clients.
    #[serde(default)]
    pub limits: LimitsFile,
    /// The access log.
    #[serde(default)]
    pub access_log: AccessLogFile,
    /// Response hardening headers for every response (routes may override).
    #[serde(default)]
    pub headers: HeadersFile,
    /// Response compression for proxied routes.
    #[serde(default)]
    pub compression: CompressionFile,
    /// Proxied routes, `[[route]]` tables.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteFile>,
    /// Access policy: `[policy]` with `[[policy.rule]]` tables (see the `policy` crate).
    #[serde(default)]
    pub policy: policy::PolicyDocument,
    /// Sign-in, sessions, lockout and the audit trail.
    #[serde(default)]
    pub identity: IdentityFile,
    /// Records databases, the FileMaker Data API and SQL.
    #[serde(default)]
    pub records: RecordsFile,
    /// The contact center: queues, agents, flows.
    #[serde(default)]
    pub contact: ContactFile,
    /// Virus scanning of request bodies with clamd; without it nothing is scanned.
    pub scan: Option<ScanFile>,
    /// Enrolled devices (`genkan-agent`) and their compliance; without it genkan asks no
    /// client for a certificate and enrols nothing.
    pub devices: Option<DevicesFile>,
    /// Where device alerts go (e-mail, webhook).
    #[serde(default)]
    pub alerts: AlertsFile,
    /// SIP trunks, agents' SIP phones, RTP and call recording; without it genkan takes no calls.
    pub voice: Option<super::VoiceFile>,
}

/// `[devices]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesFile {
    /// How often agents report. Default `"5m"`. A device whose last report is older than three
    /// intervals counts as not compliant.
    pub report_interval: Option<String>,
    /// Validity of the client certificates issued at enrolment. Default `"90d"`.
    pub certificate_validity: Option<String>,
    /// Reports older than this are deleted (the device's current state stays). Default `"400d"`.
    pub report_retention: Option<String>,
    /// The system disk must be encrypted. Default true.
    pub require_encryption: Option<bool>,
    /// An antivirus with real-time protection must be on. Default true.
    pub require_real_time: Option<bool>,
    /// Antivirus signatures at most this many days old; 0 turns the rule off. Default 7.
    pub max_signature_age_days: Option<u32>,
    /// Let devices with unresolved detections count as compliant. Default false.
    pub allow_active_threats: Option<bool>,
}

/// `[alerts]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    /// SMTP server for alert e-mail; without it no e-mail is sent.
    pub smtp_host: Option<String>,
    /// SMTP port. Default 587.
    pub smtp_port: Option<u16>,
    /// Require STARTTLS (checked against the system's CAs). Default true; `false` only for a
    /// relay on the same machine.
    pub smtp_starttls: Option<bool>,
    /// PEM file of a CA to trust for the SMTP server as well as the system's (an office mail
    /// server with a certificate from the company's own CA), relative to this file.
    pub smtp_ca_file: Option<PathBuf>,
    /// SMTP user name for AUTH; without it no AUTH is attempted.
    pub smtp_user: Option<String>,
    /// SMTP password (prefer `smtp_password_file`).
    pub smtp_password: Option<String>,
    /// File holding the SMTP password (relative to this file); one trailing newline is ignored.
    pub smtp_password_file: Option<PathBuf>,
    /// Sender address, e.g. `"genkan <genkan@example.jp>"`. Required with `smtp_host`.
    pub mail_from: Option<String>,
    /// Recipients. Required with `smtp_host`.
    #[serde(default)]
    pub mail_to: Vec<String>,
    /// URL that receives each alert as a JSON `POST`.
    pub webhook_url: Option<String>,
}

/// `[scan]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanFile {
    /// clamd's Unix socket (a path, e.g. `/run/clamav/clamd.ctl`) or `host:port`. Required.
    pub clamd: Option<String>,
    /// Time to connect to clamd and send it the command. Default `"2s"`.
    pub connect_timeout: Option<String>,
    /// Time clamd has to take each piece of a body, and to answer once it has all. Default `"60s"`.
    pub scan_timeout: Option<String>,
    /// Largest body scanned, e.g. `"20m"`; larger is refused with 413. Keep it below clamd's
    /// `StreamMaxLength`. Default `"20m"`.
    pub max_body_size: Option<String>,
    /// Forward bodies unscanned, with a warning, when clamd cannot give a verdict (instead of
    /// refusing them with 503). Default false.
    pub fail_open: Option<bool>,
}

/// `[contact]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactFile {
    /// Region national phone numbers are read in (ISO 3166 code). Default `"JP"`.
    pub region: Option<String>,
    /// How long an offer rings before it goes to the next agent. Default `"20s"`.
    pub offer_timeout: Option<String>,
    /// After-contact work ends by itself after this long. Default `"2m"`.
    pub wrap_up_timeout: Option<String>,
    /// The flow every contact starts in. Default `"inbound"` (the seed's flow).
    pub main_flow: Option<String>,
    /// Flow files (TOML, relative to this file). Default: the seed's flows for the first queue.
    #[serde(default)]
    pub flows: Vec<PathBuf>,
    /// `[[contact.queue]]` tables.
    #[serde(default, rename = "queue")]
    pub queues: Vec<ContactQueueFile>,
    /// `[[contact.agent]]` tables.
    #[serde(default, rename = "agent")]
    pub agents: Vec<ContactAgentFile>,
    /// `[contact.customers]`: where the customer lookup and the screen pop find customers.
    pub customers: Option<ContactCustomersFile>,
}

/// `[contact.customers]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactCustomersFile {
    /// Records database (a `[[records.database]]`).
    pub database: String,
    /// Layout of the customers table.
    pub layout: String,
    /// Fields holding phone numbers.
    #[serde(default)]
    pub phone_fields: Vec<String>,
    /// Fields holding e-mail addresses.
    #[serde(default)]
    pub email_fields: Vec<String>,
    /// Field with the customer's name.
    pub name_field: String,
    /// Field with the login name of the customer's agent.
    pub assigned_agent_field: Option<String>,
}

/// `[[contact.queue]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactQueueFile {
    /// The queue's name.
    pub name: String,
    /// Time zone the hours are read in. Default `"Asia/Tokyo"`.
    pub time_zone: Option<String>,
    /// Days it is open (`"mon"` … `"sun"`). Default every day.
    pub days: Option<Vec<String>>,
    /// Opening time (`"09:00"`). With `close`; both absent means all day.
    pub open: Option<String>,
    /// Closing time (`"18:00"`; `"24:00"` is midnight).
    pub close: Option<String>,
    /// Days closed whatever the weekday (`"2026-12-31"`).
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// `[[contact.agent]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactAgentFile {
    /// The agent's user name.
    pub name: String,
    /// Queues the agent answers.
    pub queues: Vec<String>,
    /// Chats at once. Default `3`.
    pub max_chats: Option<usize>,
}

/// `[records]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsFile {
    /// Extra plain-HTTP listener for the Data API and SQL, loopback addresses only (FileMaker
    /// Server's internal port is `127.0.0.1:3000`). Default: none (HTTPS listener only).
    pub data_api_listen: Option<String>,
    /// A Data API token ends after this long without use. Default `"15m"`.
    pub session_idle_timeout: Option<String>,
    /// Data API sessions open at once (more is refused with 956). Default `1000`.
    pub max_sessions: Option<usize>,
    /// An SQL transaction (`BEGIN` over `/api/sql`) idle this long is rolled back: it holds the
    /// database's one write lock. Default `"30s"`.
    pub transaction_idle_timeout: Option<String>,
    /// How long an edit lease lasts without renewal. Default `"2m"`.
    pub lease_duration: Option<String>,
    /// Largest `limit` a Data API request may ask for. Default `10000`.
    pub max_limit: Option<u64>,
    /// `[[records.database]]` tables.
    #[serde(default, rename = "database")]
    pub databases: Vec<RecordsDatabaseFile>,
    /// `[[records.layout]]` tables.
    #[serde(default, rename = "layout")]
    pub layouts: Vec<RecordsLayoutFile>,
    /// `[[records.grant]]` tables.
    #[serde(default, rename = "grant")]
    pub grants: Vec<RecordsGrantFile>,
    /// `[[records.account]]` tables.
    #[serde(default, rename = "account")]
    pub accounts: Vec<RecordsAccountFile>,
}

/// `[[records.database]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsDatabaseFile {
    /// The database's name in Data API paths (letters, digits, `_`, `-`).
    pub name: String,
    /// SQL file run once, when the database file is first created (tables, first rows).
    pub setup_sql: Option<PathBuf>,
}

/// `[[records.layout]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsLayoutFile {
    /// Database the layout belongs to.
    pub database: String,
    /// Layout name.
    pub name: String,
    /// Table it shows.
    pub table: String,
    /// Fields shown; default all.
    pub fields: Option<Vec<String>>,
    /// `[[records.layout.portal]]` tables.
    #[serde(default, rename = "portal")]
    pub portals: Vec<RecordsPortalFile>,
}

/// `[[records.layout.portal]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsPortalFile {
    /// Portal name (the key in `portalData`).
    pub name: String,
    /// Related table.
    pub table: String,
    /// Column of the related table holding the key.
    pub foreign_key: String,
    /// Column of the layout's table it matches. Default `ROWID` (the recordId).
    pub local_key: Option<String>,
    /// Related fields shown; default all.
    pub fields: Option<Vec<String>>,
}

/// `[[records.grant]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsGrantFile {
    /// Group the grant is for.
    pub group: String,
    /// Database.
    pub database: String,
    /// Tables, or `["*"]` for all.
    pub tables: Vec<String>,
    /// `read`, `write` (includes read) or `schema` (includes write).
    pub access: String,
}

/// `[[records.account]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsAccountFile {
    /// Account name; created as a genkan user at start if no user has it (never changed after).
    pub name: String,
    /// Its password (for demos and test rigs: prefer `genkan user add`).
    pub password: String,
    /// Groups it is put in when created.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `[tls]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM file with the certificate and its chain (leaf first). Without it, genkan makes and
    /// keeps a self-signed certificate in the data directory.
    pub certificate: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: Option<PathBuf>,
    /// Sessions kept for resumption (nginx `shared:SSL:1m` ≈ 4000). Default 4096.
    pub session_cache: Option<usize>,
    /// Names the self-signed certificate is made for. Default `localhost` and loopback addresses.
    pub hostnames: Option<Vec<String>>,
}

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Largest request head, e.g. `"16k"`; larger is answered 431. At least `8k`.
    pub max_header_size: Option<String>,
    /// Largest request body, e.g. `"64m"`; larger is answered 413.
    pub max_body_size: Option<String>,
    /// Time to receive a whole request head, e.g. `"10s"`.
    pub header_timeout: Option<String>,
    /// Time to complete the TLS handshake.
    pub handshake_timeout: Option<String>,
    /// Idle time after which a connection is closed.
    pub keepalive_timeout: Option<String>,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_grace: Option<String>,
}

/// `[access_log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogFile {
    /// File (relative to the data directory) or `"off"`. Default `logs/access.log`.
    pub path: Option<String>,
    /// `main` (nginx's `log_format main`) or `json`. Default `main`.
    pub format: Option<String>,
}

/// `[headers]` and `[route.headers]`: an empty string switches a header off.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersFile {
    /// Default `max-age=31536000`.
    pub strict_transport_security: Option<String>,
    /// Default `SAMEORIGIN`.
    pub x_frame_options: Option<String>,
    /// Default `nosniff`.
    pub x_content_type_options: Option<String>,
    /// Default `strict-origin-when-cross-origin`.
    pub referrer_policy: Option<String>,
    /// Default off; legacy apps with inline scripts need a policy written for them.
    pub content_security_policy: Option<String>,
    /// Default off. The seed sent `1; mode=block`; current browsers ignore it or are harmed by it.
    pub x_xss_protection: Option<String>,
    /// Upstream response headers to drop. Default `X-Powered-By`, `X-AspNet-Version`,
    /// `X-AspNetMvc-Version`; `Server` is always dropped.
    pub hide: Option<Vec<String>>,
}

/// `[compression]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionFile {
    /// Compress proxied responses at all. Default true.
    pub enabled: Option<bool>,
    /// Media types compressed besides `text/html` (nginx `gzip_types`). Already-compressed
    /// formats (PNG, JPEG, ZIP…) are ignored even when listed.
    pub types: Option<Vec<String>>,
    /// Smallest body compressed, in bytes. Default 1024.
    pub min_length: Option<u64>,
}

/// `[identity]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    /// A session unused this long ends. Default `"2h"`.
    pub session_idle_timeout: Option<String>,
    /// A session ends this long after sign-in, used or not. Default `"12h"`.
    pub session_lifetime: Option<String>,
    /// Failed sign-ins for one account before it is locked. Default 5.
    pub max_failed_logins: Option<u32>,
    /// Failed sign-ins from one address before it is refused. Default 20.
    pub max_failed_logins_per_source: Option<u32>,
    /// How long a lockout (and the failure count) lasts. Default `"15m"`.
    pub lockout: Option<String>,
    /// How long audit events are kept. Default `"400d"`.
    pub audit_retention: Option<String>,
    /// Members of these groups must use a one-time-password app. Default `["admin"]`.
    pub totp_required_groups: Option<Vec<String>>,
}

/// `[[route]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// Name in logs. Default `route-N`.
    pub name: Option<String>,
    /// Host this route serves (`*.example.jp` for subdomains); any host when absent.
    pub host: Option<String>,
    /// Path prefix. Default `/`.
    pub path: Option<String>,
    /// `http://host:port[/base/]` of the app. Required.
    pub upstream: Option<String>,
    /// `upstream` (nginx default: the upstream's own host:port), `client`, or a literal host.
    pub upstream_host: Option<String>,
    /// Send X-Forwarded-For/-Proto/-Host. Default true.
    pub forwarded_headers: Option<bool>,
    /// Buffer request bodies and send Content-Length. Default true.
    pub buffer_request_body: Option<bool>,
    /// Pass WebSocket upgrades. Default true.
    pub websockets: Option<bool>,
    /// Default `"5s"`.
    pub connect_timeout: Option<String>,
    /// Time for the upstream to start answering. Default `"60s"`.
    pub read_timeout: Option<String>,
    /// Page for 502/504 on this route.
    pub error_page: Option<PathBuf>,
    /// Compress this route's responses (with the global types). Default true.
    pub compression: Option<bool>,
    /// Header overrides for this route.
    #[serde(default)]
    pub headers: HeadersFile,
    /// Send `X-Genkan-User` and `X-Genkan-Groups` to the upstream. Default false.
    pub identity_headers: Option<bool>,
    /// Scan request bodies with clamd before the upstream sees them. Default true when `[scan]`
    /// is configured, and then only `false` turns it off.
    pub scan_uploads: Option<bool>,
}

/// Parses TOML, turning serde's message (which names unknown keys and their position) into a
/// [`ConfigError`].
pub fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|error: toml::de::Error| {
        let key = unknown_key(error.message()).unwrap_or_else(|| "(syntax)".into());
        ConfigError::new(key, error.to_string().trim_end().to_owned())
    })
}

fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    /// Every key of the file format is documented in docs/config.md.
    #[test]
    fn every_key_is_in_the_reference() {
        let source = include_str!("file.rs");
        let reference = include_str!("../../../../docs/config.md");
        let code = source.split("#[cfg(test)]").next().unwrap();
        let mut checked = 0;
        // The name in the file: a `rename = "…"` on the line above wins over the field's name.
        let mut renamed: Option<&str> = None;
        for line in code.lines() {
            if let Some((_, rest)) = line.split_once("rename = \"") {
                renamed = rest.split('"').next();
                continue;
            }
            let Some(rest) = line.trim().strip_prefix("pub ") else {
                continue;
            };
            let Some((field, _)) = rest.split_once(':') else {
                continue;
            };
            let name = renamed.take().unwrap_or(field);
            if name.contains(' ') || name.contains('(') {
                continue;
            }
            // Tables appear as headings (`[tls]`, `[[route]]`), keys in backquotes.
            let table = if name == "routes" {
                "[[route]]".to_owned()
            } else {
                format!("[{name}]")
            };
            let key = format!("`{name}`");
            assert!(
                reference.contains(&key) || reference.contains(&table),
                "docs/config.md does not describe {key}"
            );
            checked += 1;
        }
        assert!(
            checked > 30,
            "only {checked} keys found; the test lost track of the structs"
        );
    }
}
