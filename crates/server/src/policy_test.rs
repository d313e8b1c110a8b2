//! `genkan policy test`: ask the configured policy about one imagined request.
//!
//! Administrators use it to check a rule before relying on it ("can the contractor reach the
//! app at 18:01 from home?"). The answer names the deciding rule, and for a default deny, the
//! rules written for this person that did not match and why.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::config::Config;

/// The imagined request.
#[derive(Debug, clap::Args)]
pub struct Question {
    /// Configuration file holding the `[policy]`.
    #[arg(long)]
    pub config: PathBuf,
    /// User name; omit for a request from nobody signed in.
    #[arg(long)]
    pub user: Option<String>,
    /// Group of the user; repeat for several.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Request path.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Client address.
    #[arg(long = "from")]
    pub source: std::net::IpAddr,
    /// When, as RFC 3339 (`2026-12-03T18:01:00+09:00`).
    #[arg(long)]
    pub at: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Host the request is for.
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// Whether the device is compliant (`true`/`false`); omitted means not enrolled.
    #[arg(long)]
    pub device_compliant: Option<bool>,
}

/// Rules saved from the admin pages, when the config's data directory already has a database.
fn stored_policy(config: &Config) -> Result<Option<String>> {
    let database_path = config.data_dir.join("genkan.db");
    if !database_path.exists() {
        return Ok(None);
    }
    let data = crate::datadir::DataDir::prepare(&config.data_dir)?;
    Ok(crate::open_database(&data)?.stored_policy()?)
}

/// Empties the rules saved from the admin pages (when they no longer fit the config).
pub fn clear_stored(config_path: &std::path::Path) -> Result<String> {
    let config = Config::load(config_path)?;
    let data = crate::datadir::DataDir::prepare(&config.data_dir)?;
    let database = crate::open_database(&data)?;
    database.set_stored_policy("", &crate::clock::utc_now_text(), "cli")?;
    database.record_audit(&store_sqlite::AuditEvent {
        at: crate::clock::utc_now_text(),
        kind: "policy_changed".into(),
        actor: Some("cli".into()),
        source: None,
        subject: Some("stored policy".into()),
        outcome: "ok".into(),
        rule: None,
        detail: "cleared".into(),
    })?;
    Ok("cleared the policy rules saved from the admin pages\n".into())
}

/// The text printed: `allow` or `deny`, then the deciding rule and the reason.
pub fn answer(question: &Question) -> Result<String> {
    let config = Config::load(&question.config)?;
    let now: jiff::Timestamp = question.at.parse().with_context(|| {
        format!(
            "--at: `{}` is not an RFC 3339 time such as 2026-12-03T18:01:00+09:00",
            question.at
        )
    })?;
    let method = question.method.to_ascii_uppercase();
    let host = question.host.to_ascii_lowercase();
    let request = policy::Request {
        user: question.user.as_deref(),
        groups: &question.groups,
        source: question.source,
        method: &method,
        host: &host,
        path: &question.path,
        device_compliant: question.device_compliant,
        now,
    };
    let policy =
        crate::auth::effective_policy(&config.policy_document, stored_policy(&config)?.as_deref())?;
    let decision = policy.decide(&request);
    let mut out = String::new();
    out.push_str(if decision.allowed() {
        "allow\n"
    } else {
        "deny\n"
    });
    out.push_str(&format!(
        "rule: {}\n",
        decision.rule.as_deref().unwrap_or("(none: default deny)")
    ));
    out.push_str(&format!("reason: {}\n", decision.reason));
    for miss in &decision.near_misses {
        out.push_str(&format!("not matched: {miss}\n"));
    }
    let capabilities = policy.capabilities(&question.groups);
    if !capabilities.is_empty() {
        let names: Vec<&str> = capabilities
            .iter()
            .map(|capability| capability.name())
            .collect();
        out.push_str(&format!("capabilities: {}\n", names.join(", ")));
    }
    Ok(out)
}
