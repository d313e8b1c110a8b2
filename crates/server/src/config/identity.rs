//! The `[identity]` settings and the access policy as the config file gives them.

use std::time::Duration;

use super::{ConfigError, IdentityFile, duration};

/// Sign-in and session settings, checked.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// Idle time after which a session ends.
    pub session_idle_timeout: Duration,
    /// Age at which a session ends.
    pub session_lifetime: Duration,
    /// Failures before an account is locked.
    pub max_failed_logins: u32,
    /// Failures before a source address is refused.
    pub max_failed_logins_per_source: u32,
    /// Length of a lockout and of the failure-counting window.
    pub lockout: Duration,
    /// How long audit events are kept.
    pub audit_retention: Duration,
    /// Groups whose members must use a one-time-password app.
    pub totp_required_groups: Vec<String>,
}

pub(super) fn identity_settings(file: &IdentityFile) -> Result<IdentitySettings, ConfigError> {
    let span = |key: &str, text: &Option<String>, default: u64| -> Result<Duration, ConfigError> {
        match text {
            None => Ok(Duration::from_secs(default)),
            Some(text) => {
                let value = duration(key, text)?;
                if value.is_zero() {
                    return Err(ConfigError::new(key, "must be longer than zero"));
                }
                Ok(value)
            }
        }
    };
    let count = |key: &str, value: Option<u32>, default: u32| -> Result<u32, ConfigError> {
        match value {
            Some(0) => Err(ConfigError::new(key, "must be at least 1")),
            Some(value) => Ok(value),
            None => Ok(default),
        }
    };
    Ok(IdentitySettings {
        session_idle_timeout: span(
            "identity.session_idle_timeout",
            &file.session_idle_timeout,
            2 * 3600,
        )?,
        session_lifetime: span(
            "identity.session_lifetime",
            &file.session_lifetime,
            12 * 3600,
        )?,
        max_failed_logins: count("identity.max_failed_logins", file.max_failed_logins, 5)?,
        max_failed_logins_per_source: count(
            "identity.max_failed_logins_per_source",
            file.max_failed_logins_per_source,
            20,
        )?,
        lockout: span("identity.lockout", &file.lockout, 15 * 60)?,
        audit_retention: span(
            "identity.audit_retention",
            &file.audit_retention,
            400 * 86400,
        )?,
        totp_required_groups: file
            .totp_required_groups
            .clone()
            .unwrap_or_else(|| vec!["admin".to_owned()]),
    })
}

/// Compiles a policy document, adding the default rule when it has none, with time zones
/// from the system's database.
pub fn compile_policy(document: &policy::PolicyDocument) -> Result<policy::Policy, policy::Error> {
    policy::Policy::compile(&policy_or_default(document.clone()), &|name| {
        jiff::tz::db().get(name).ok()
    })
}

/// The policy used when the config writes no rules: anyone signed in may reach everything,
/// which is what the seed's VPN gave; nobody anonymous reaches anything.
fn policy_or_default(mut document: policy::PolicyDocument) -> policy::PolicyDocument {
    if document.rules.is_empty() {
        document.rules.push(policy::document::RuleDocument {
            name: Some("signed-in-users".into()),
            allow: Some(policy::document::MatchDocument {
                authenticated: Some(true),
                ..Default::default()
            }),
            deny: None,
        });
    }
    document
}
