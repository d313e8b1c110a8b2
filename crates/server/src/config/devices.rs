//! The `[devices]` and `[alerts]` settings, checked: report interval, certificate validity,
//! the compliance rules, and where alerts go.

use std::path::Path;
use std::time::Duration;

use super::{AlertsFile, ConfigError, DevicesFile, duration};

/// `[devices]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSettings {
    /// How often agents report.
    pub report_interval: Duration,
    /// Validity of the issued client certificates.
    pub certificate_validity: Duration,
    /// Reports older than this are deleted.
    pub report_retention: Duration,
    /// The rules a report is judged by.
    pub compliance: posture::CompliancePolicy,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        Self {
            report_interval: Duration::from_secs(300),
            certificate_validity: Duration::from_secs(90 * 86_400),
            report_retention: Duration::from_secs(400 * 86_400),
            compliance: posture::CompliancePolicy::default(),
        }
    }
}

impl DeviceSettings {
    /// A device whose last report is older than this counts as not compliant: three missed
    /// reports are a stopped agent, not a slow network.
    pub fn freshness(&self) -> Duration {
        self.report_interval * 3
    }
}

/// A secret from the config: shown as `***` in `Debug`, so it never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `[alerts]`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSettings {
    /// E-mail, when `smtp_host` is set.
    pub smtp: Option<SmtpSettings>,
    /// The webhook URL, when set.
    pub webhook_url: Option<String>,
}

/// How alert e-mail is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Whether STARTTLS is required.
    pub starttls: bool,
    /// AUTH user and password, when configured.
    pub credentials: Option<(String, Secret)>,
    /// A CA certificate (PEM) trusted for the server besides the system's, when configured.
    pub ca_pem: Option<Vec<u8>>,
    /// Sender.
    pub from: lettre::message::Mailbox,
    /// Recipients.
    pub to: Vec<lettre::message::Mailbox>,
}

pub(super) fn device_settings(
    file: Option<DevicesFile>,
) -> Result<Option<DeviceSettings>, ConfigError> {
    let Some(file) = file else {
        return Ok(None);
    };
    let defaults = DeviceSettings::default();
    let span = |key: &str, text: &Option<String>, default: Duration| match text {
        None => Ok(default),
        Some(text) => duration(key, text).and_then(|value| {
            if value < Duration::from_secs(30) {
                Err(ConfigError::new(key, "must be at least 30s"))
            } else {
                Ok(value)
            }
        }),
    };
    let report_interval = span(
        "devices.report_interval",
        &file.report_interval,
        defaults.report_interval,
    )?;
    if report_interval > Duration::from_secs(86_400) {
        return Err(ConfigError::new(
            "devices.report_interval",
            "must be at most 24h (the agent's own bound)",
        ));
    }
    let rules = posture::CompliancePolicy::default();
    Ok(Some(DeviceSettings {
        report_interval,
        certificate_validity: span(
            "devices.certificate_validity",
            &file.certificate_validity,
            defaults.certificate_validity,
        )?,
        report_retention: span(
            "devices.report_retention",
            &file.report_retention,
            defaults.report_retention,
        )?,
        compliance: posture::CompliancePolicy {
            require_encryption: file.require_encryption.unwrap_or(rules.require_encryption),
            require_real_time: file.require_real_time.unwrap_or(rules.require_real_time),
            max_signature_age_days: file
                .max_signature_age_days
                .unwrap_or(rules.max_signature_age_days),
            allow_active_threats: file
                .allow_active_threats
                .unwrap_or(rules.allow_active_threats),
        },
    }))
}

pub(super) fn alert_settings(file: AlertsFile, base: &Path) -> Result<AlertSettings, ConfigError> {
    let webhook_url = match file.webhook_url {
        None => None,
        Some(url) => {
            let uri: http::Uri = url.parse().map_err(|_| {
                ConfigError::new("alerts.webhook_url", format!("`{url}` is not a URL"))
            })?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(ConfigError::new(
                    "alerts.webhook_url",
                    "must be an http:// or https:// URL with a host",
                ));
            }
            Some(url)
        }
    };
    let Some(host) = file.smtp_host else {
        let stray = [
            ("alerts.mail_from", file.mail_from.is_some()),
            ("alerts.mail_to", !file.mail_to.is_empty()),
            ("alerts.smtp_user", file.smtp_user.is_some()),
        ];
        if let Some((key, _)) = stray.iter().find(|(_, set)| *set) {
            return Err(ConfigError::new(*key, "needs alerts.smtp_host"));
        }
        return Ok(AlertSettings {
            smtp: None,
            webhook_url,
        });
    };
    let mailbox = |key: &str, text: &str| {
        text.parse::<lettre::message::Mailbox>().map_err(|error| {
            ConfigError::new(key, format!("`{text}` is not an e-mail address ({error})"))
        })
    };
    let from = mailbox(
        "alerts.mail_from",
        file.mail_from.as_deref().ok_or_else(|| {
            ConfigError::new("alerts.mail_from", "missing: needed with smtp_host")
        })?,
    )?;
    if file.mail_to.is_empty() {
        return Err(ConfigError::new(
            "alerts.mail_to",
            "missing: name at least one recipient",
        ));
    }
    let to = file
        .mail_to
        .iter()
        .map(|text| mailbox("alerts.mail_to", text))
        .collect::<Result<Vec<_>, _>>()?;
    let password = match (file.smtp_password, file.smtp_password_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "alerts.smtp_password",
                "give smtp_password or smtp_password_file, not both",
            ));
        }
        (Some(password), None) => Some(Secret(password)),
        (None, Some(path)) => {
            let path = base.join(path);
            let text = std::fs::read_to_string(&path).map_err(|error| {
                ConfigError::new(
                    "alerts.smtp_password_file",
                    format!("cannot read {}: {error}", path.display()),
                )
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            Some(Secret(text.strip_suffix('\r').unwrap_or(text).to_owned()))
        }
        (None, None) => None,
    };
    let credentials = match (file.smtp_user, password) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new(
                "alerts.smtp_user",
                "needs smtp_password or smtp_password_file",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new("alerts.smtp_password", "needs smtp_user"));
        }
    };
    let starttls = file.smtp_starttls.unwrap_or(true);
    if credentials.is_some() && !starttls {
        return Err(ConfigError::new(
            "alerts.smtp_user",
            "AUTH needs smtp_starttls = true: the password would cross the network in the clear",
        ));
    }
    let ca_pem = match file.smtp_ca_file {
        None => None,
        Some(_) if !starttls => {
            return Err(ConfigError::new(
                "alerts.smtp_ca_file",
                "needs smtp_starttls = true (without TLS no certificate is checked)",
            ));
        }
        Some(path) => {
            let path = base.join(path);
            let pem = std::fs::read(&path).map_err(|error| {
                ConfigError::new(
                    "alerts.smtp_ca_file",
                    format!("cannot read {}: {error}", path.display()),
                )
            })?;
            lettre::transport::smtp::client::Certificate::from_pem(&pem).map_err(|error| {
                ConfigError::new(
                    "alerts.smtp_ca_file",
                    format!("{} holds no PEM certificate ({error})", path.display()),
                )
            })?;
            Some(pem)
        }
    };
    Ok(AlertSettings {
        smtp: Some(SmtpSettings {
            host,
            port: file.smtp_port.unwrap_or(587),
            starttls,
            credentials,
            ca_pem,
            from,
            to,
        }),
        webhook_url,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Environment, parse};
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_file(
            parse(text)?,
            Path::new("/etc/genkan"),
            &Environment::default(),
        )
    }

    #[test]
    fn devices_and_alerts_are_read_and_checked() {
        let config = load(
            "[devices]\nreport_interval = \"2m\"\nmax_signature_age_days = 3\n\
             [alerts]\nsmtp_host = \"mail.example.jp\"\nsmtp_user = \"genkan\"\nsmtp_password = \"s3cret\"\n\
             mail_from = \"genkan <genkan@example.jp>\"\nmail_to = [\"it@example.jp\"]\n\
             webhook_url = \"https://hooks.example.jp/genkan\"\n",
        )
        .unwrap();
        let devices = config.devices.unwrap();
        assert_eq!(devices.freshness(), Duration::from_secs(360));
        assert_eq!(devices.compliance.max_signature_age_days, 3);
        assert!(devices.compliance.require_encryption);
        let smtp = config.alerts.smtp.unwrap();
        assert_eq!((smtp.port, smtp.starttls), (587, true));
        assert!(
            !format!("{smtp:?}").contains("s3cret"),
            "the password is not printable"
        );
        assert!(load("").unwrap().devices.is_none());
    }

    #[test]
    fn mistakes_name_their_key() {
        for (text, key) in [
            ("[devices]\nreport_intervall = \"5m\"\n", "report_intervall"),
            (
                "[devices]\nreport_interval = \"5s\"\n",
                "devices.report_interval",
            ),
            ("[alerts]\nmail_to = [\"a@example.jp\"]\n", "alerts.mail_to"),
            (
                "[alerts]\nsmtp_host = \"h\"\nmail_to = [\"a@example.jp\"]\n",
                "alerts.mail_from",
            ),
            (
                "[alerts]\nsmtp_host = \"h\"\nmail_from = \"not an address\"\nmail_to = [\"a@example.jp\"]\n",
                "alerts.mail_from",
            ),
            (
                "[alerts]\nwebhook_url = \"ftp://x/\"\n",
                "alerts.webhook_url",
            ),
            (
                "[alerts]\nsmtp_host = \"h\"\nmail_from = \"a@example.jp\"\nmail_to = [\"a@example.jp\"]\nsmtp_user = \"u\"\n",
                "alerts.smtp_user",
            ),
        ] {
            let error = load(text).unwrap_err();
            assert_eq!(error.key, key, "{text}: {error}");
        }
    }
}
