//! Sign-in, sessions and the gate: who is asking, and may they.
//!
//! [`Auth`] is the server's [`gateway::Gatekeeper`]. For each request it reads the session
//! cookie, checks the session's age, and asks the policy; the gateway then passes the request,
//! sends the browser to sign in, or shows a refusal. The sign-in pages themselves are in
//! `auth/pages.rs`.
//!
//! Secrets: the session cookie holds 32 random bytes; the database holds only their SHA-256.
//! Tokens and CSRF values are compared in constant time. Nothing here logs a token, a password
//! or a cookie.

mod limiter;
pub mod pages;
pub mod password_check;
pub mod second_factor;
pub mod totp;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Result, anyhow};
use arc_swap::ArcSwap;
use gateway::{Gatekeeper, Knock, Verdict};
use http::HeaderMap;
use store_sqlite::{AuditEvent, Database, SessionRow};

use crate::clock;
use crate::config::IdentitySettings;
pub use limiter::Limiter;

/// The hash a password for an unknown user is checked against, so that the answer takes as long
/// as for a real one. It hashes a random value nobody kept, with the same Argon2id parameters;
/// a constant spares a 19 MiB, 25 ms hash at every start.
pub const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$kPY1v4EuXOINpacJxn7EyA$46GaJcbb9nomrv4vgNgu+krTwYigg3Xv7om3Z6ISEP4";

/// Name of the session cookie; `__Host-` makes browsers insist on Secure, Path=/ and no Domain.
pub const SESSION_COOKIE: &str = "__Host-genkan_session";
/// Name of the cookie that carries the sign-in form's CSRF value before there is a session.
pub const LOGIN_CSRF_COOKIE: &str = "__Host-genkan_login_csrf";

/// Paths anyone may open: the sign-in pages, the health check, and static assets.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/_genkan/login"
            | "/_genkan/login/code"
            | "/_genkan/health"
            | "/_genkan/password"
            | "/_genkan/logout"
            | "/_genkan/totp"
            // Customers chatting are not genkan users: the chat is deliberately public.
            | "/_genkan/chat"
            | "/_genkan/chat/ws"
            // Agents have no session: the enrolment code or the client certificate is the
            // credential, checked by the handlers in devices.rs.
            | posture::ENROL_PATH
            | posture::REPORT_PATH
    ) || path.starts_with("/_genkan/static/")
        || is_self_authenticating(path)
}

/// Paths whose handlers authenticate each request themselves (Data API tokens, API bearer
/// tokens) and then ask [`Auth::permits`]: programs cannot follow a sign-in page.
fn is_self_authenticating(path: &str) -> bool {
    path.starts_with("/fmi/data/") || path == "/api/sql" || path.starts_with("/api/sql/")
}

/// The policy in force: the config's rules, then those saved from the admin pages.
pub fn effective_policy(
    config: &policy::PolicyDocument,
    stored: Option<&str>,
) -> Result<policy::Policy, policy::Error> {
    let stored: policy::PolicyDocument = match stored {
        Some(text) if !text.trim().is_empty() => {
            toml::from_str(text).map_err(|error: toml::de::Error| policy::Error {
                location: "stored policy".into(),
                problem: error.to_string().trim_end().to_owned(),
            })?
        }
        _ => policy::PolicyDocument::default(),
    };
    crate::config::compile_policy(&config.merged(&stored)?)
}

/// A session found for a request.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie token, hex.
    pub token_hash: String,
    /// The stored row.
    pub row: SessionRow,
}

impl Session {
    /// The refusal for a form whose CSRF value is not this session's; `None` when it matches.
    pub fn csrf_refusal(&self, given: &str) -> Option<axum::response::Response> {
        let matches = constant_time_eq(self.row.csrf_token.as_bytes(), given.as_bytes());
        (!matches).then(|| {
            gateway::gate::json_error(
                http::StatusCode::FORBIDDEN,
                "GK-AUTH-002",
                "missing or wrong CSRF value",
            )
            .map(axum::body::Body::new)
        })
    }
}

/// Identity, sessions and policy, shared by the gate and the sign-in pages.
pub struct Auth {
    database: Mutex<Database>,
    settings: ArcSwap<IdentitySettings>,
    policy: ArcSwap<policy::Policy>,
    /// The config's `[policy]`, kept to merge with rules saved from the admin pages.
    config_policy: ArcSwap<policy::PolicyDocument>,
    limiter: Mutex<Limiter>,
    /// Sign-ins that passed the password and wait for their one-time code, by token.
    pending: Mutex<std::collections::BTreeMap<String, second_factor::PendingLogin>>,
    /// How recent a device's last report must be, in seconds; 0 while `[devices]` is off
    /// (client certificates then count for nothing).
    device_freshness: std::sync::atomic::AtomicU64,
    /// Where virus alerts go, once the alert sender runs (it holds the `Auth`, hence `Weak`).
    alerts: std::sync::OnceLock<std::sync::Weak<crate::alerts::Alerts>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// Wraps the database and settings.
    pub fn new(
        database: Database,
        settings: IdentitySettings,
        config_policy: policy::PolicyDocument,
    ) -> Result<Self> {
        let stored = database.stored_policy()?;
        let policy = effective_policy(&config_policy, stored.as_deref()).map_err(|error| {
            anyhow!(
                "the policy rules saved in the admin pages no longer fit the config ({error}); \
                 fix the config, or remove them with `genkan policy clear-stored`"
            )
        })?;
        Ok(Self {
            database: Mutex::new(database),
            settings: ArcSwap::from_pointee(settings),
            policy: ArcSwap::from_pointee(policy),
            config_policy: ArcSwap::from_pointee(config_policy),
            limiter: Mutex::new(Limiter::default()),
            pending: Mutex::new(std::collections::BTreeMap::new()),
            device_freshness: std::sync::atomic::AtomicU64::new(0),
            alerts: std::sync::OnceLock::new(),
        })
    }

    /// Hands the gate the alert sender, for viruses stopped at the gateway.
    pub fn set_alerts(&self, alerts: &Arc<crate::alerts::Alerts>) {
        let _ = self.alerts.set(Arc::downgrade(alerts));
    }

    /// Sets how recent a device's last report must be for the device to count as compliant.
    pub fn set_device_freshness(&self, freshness: Duration) {
        self.device_freshness
            .store(freshness.as_secs(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The state of the device a request's client certificate names, for `user`.
    fn device_state(
        &self,
        certificate: Option<&[u8]>,
        user: Option<&str>,
        now: jiff::Timestamp,
    ) -> crate::devices::DeviceState {
        let freshness = self
            .device_freshness
            .load(std::sync::atomic::Ordering::Relaxed);
        let (Some(certificate), true) = (certificate, freshness > 0) else {
            return crate::devices::DeviceState::Absent;
        };
        match self.database() {
            Ok(database) => crate::devices::assess(
                &database,
                certificate,
                user,
                now,
                Duration::from_secs(freshness),
            ),
            Err(_) => crate::devices::DeviceState::Absent,
        }
    }

    /// Applies reloaded settings and the config's policy (with the stored rules after it).
    /// When the two no longer fit together the running policy stays, and the error says why.
    pub fn reload(
        &self,
        settings: IdentitySettings,
        config_policy: policy::PolicyDocument,
    ) -> Result<()> {
        let stored = self.database()?.stored_policy()?;
        let policy = effective_policy(&config_policy, stored.as_deref())
            .map_err(|error| anyhow!("policy not reloaded: {error}"))?;
        self.settings.store(Arc::new(settings));
        self.policy.store(Arc::new(policy));
        self.config_policy.store(Arc::new(config_policy));
        Ok(())
    }

    /// The policy rules saved from the admin pages, as TOML.
    pub fn stored_policy(&self) -> Result<String> {
        Ok(self.database()?.stored_policy()?.unwrap_or_default())
    }

    /// Checks and saves policy rules from the admin pages; they apply to the next request.
    /// On an error nothing changes and the error names the rule and field.
    pub fn save_policy(&self, text: &str, actor: &str, source: Option<&str>) -> Result<(), String> {
        let policy = effective_policy(&self.config_policy.load(), Some(text))
            .map_err(|error| error.to_string())?;
        let saved = self.database().and_then(|database| {
            Ok(database.set_stored_policy(text, &clock::utc_now_text(), actor)?)
        });
        if let Err(error) = saved {
            return Err(format!("{error:#}"));
        }
        self.policy.store(Arc::new(policy));
        self.audit(
            "policy_changed",
            Some(actor),
            source,
            Some("stored policy"),
            "ok",
            None,
            "",
        );
        Ok(())
    }

    /// The policy now in force.
    pub fn policy(&self) -> Arc<policy::Policy> {
        self.policy.load_full()
    }

    /// The database, for the sign-in and administration pages. Held briefly: every request waits on it.
    pub fn database(&self) -> Result<MutexGuard<'_, Database>> {
        self.database
            .lock()
            .map_err(|_| anyhow!("the database lock was poisoned"))
    }

    /// Appends to the audit trail; a failure is logged, never fatal to the request.
    pub fn audit(
        &self,
        kind: &str,
        actor: Option<&str>,
        source: Option<&str>,
        subject: Option<&str>,
        outcome: &str,
        rule: Option<&str>,
        detail: &str,
    ) {
        let event = AuditEvent {
            at: clock::utc_now_text(),
            kind: kind.into(),
            actor: actor.map(Into::into),
            source: source.map(Into::into),
            subject: subject.map(Into::into),
            outcome: outcome.into(),
            rule: rule.map(Into::into),
            detail: detail.into(),
        };
        let written = self
            .database()
            .and_then(|database| Ok(database.record_audit(&event)?));
        if let Err(error) = written {
            tracing::error!(kind, "audit event not written: {error:#}");
        }
    }

    /// The valid session a request's cookie names, if any. Expired sessions are removed.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let token = cookie(headers, SESSION_COOKIE)?;
        if token.len() != 64 || !token.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let token_hash = sha256_hex(token.as_bytes());
        let database = self.database().ok()?;
        let row = database.session(&token_hash).ok()??;
        let settings = self.settings.load();
        let now = clock::timestamp_now();
        let age = |text: &str| {
            text.parse::<jiff::Timestamp>()
                .ok()
                .map(|then| now.duration_since(then))
        };
        let idle = age(&row.last_seen_at)?;
        let lived = age(&row.created_at)?;
        let too_old = |span: jiff::SignedDuration, limit: Duration| {
            span.as_secs() < 0 || span.unsigned_abs() > limit
        };
        if row.user_disabled
            || too_old(idle, settings.session_idle_timeout)
            || too_old(lived, settings.session_lifetime)
        {
            let _ = database.delete_session(&token_hash);
            return None;
        }
        // Writing on every request would make reads wait on writes; a quarter of the idle
        // timeout (at most a minute) is precision enough.
        let touch_after = (settings.session_idle_timeout / 4).min(Duration::from_secs(60));
        if idle.unsigned_abs() >= touch_after {
            let _ = database.touch_session(&token_hash, &clock::utc_now_text());
        }
        Some(Session { token_hash, row })
    }

    /// Deletes audit events older than the retention and sessions past their idle timeout or
    /// lifetime. Run at start and every hour.
    pub fn housekeeping(&self, now: jiff::Timestamp) {
        let settings = self.settings.load();
        let before = |span: Duration| {
            let then =
                now - jiff::SignedDuration::try_from(span).unwrap_or(jiff::SignedDuration::MAX);
            then.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        };
        let outcome = self.database().and_then(|database| {
            let events = database.prune_audit(&before(settings.audit_retention))?;
            let sessions = database.prune_sessions(
                &before(settings.session_idle_timeout),
                &before(settings.session_lifetime),
            )?;
            Ok((events, sessions))
        });
        match outcome {
            Ok((events, sessions)) if events + sessions > 0 => {
                tracing::info!(
                    events,
                    sessions,
                    "removed expired audit events and sessions"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!("housekeeping failed: {error:#}"),
        }
    }

    /// Which files may cross the gateway for members of `groups`.
    fn file_exchange(&self, groups: &[String]) -> gateway::FileExchange {
        let policy = self.policy.load();
        if !policy.restricts_capabilities() {
            return gateway::FileExchange::OPEN;
        }
        let granted = policy.capabilities(groups);
        gateway::FileExchange {
            upload: granted.contains(&policy::Capability::Upload),
            download: granted.contains(&policy::Capability::Download),
        }
    }

    /// Whether the policy lets members of `groups` use `capability` (everything is allowed
    /// while the policy has no `capabilities` table).
    pub fn has_capability(&self, groups: &[String], capability: policy::Capability) -> bool {
        let policy = self.policy.load();
        !policy.restricts_capabilities() || policy.capabilities(groups).contains(&capability)
    }

    /// Whether any of these groups requires a second factor (programs that sign in with a
    /// password alone are refused for such accounts).
    pub fn requires_second_factor(&self, groups: &[String]) -> bool {
        let settings = self.settings.load();
        groups
            .iter()
            .any(|group| settings.totp_required_groups.contains(group))
    }

    /// Whether the user belongs to a group that requires a one-time-password app and has none.
    pub fn needs_totp(&self, row: &SessionRow) -> bool {
        !row.totp_enrolled
            && row
                .groups
                .iter()
                .any(|group| self.settings.load().totp_required_groups.contains(group))
    }

    /// Whether the policy lets this user make this request (for handlers that authenticate
    /// by themselves); refusals are audited like the gate's. `Err` carries the reason.
    pub fn permits(
        &self,
        user: &str,
        groups: &[String],
        source: std::net::IpAddr,
        method: &str,
        host: &str,
        path: &str,
    ) -> Result<(), String> {
        let decision = self.policy.load().decide(&policy::Request {
            user: Some(user),
            groups,
            source,
            method,
            host,
            path,
            device_compliant: None,
            now: clock::timestamp_now(),
        });
        if decision.allowed() {
            return Ok(());
        }
        let source = source.to_string();
        self.audit(
            "access_denied",
            Some(user),
            Some(&source),
            Some(path),
            "denied",
            decision.rule.as_deref(),
            &decision.reason,
        );
        Err(decision.reason)
    }

    fn judge_at(&self, knock: &Knock<'_>, now: jiff::Timestamp) -> Verdict {
        let session = self.session(knock.headers);
        let (user, groups) = match &session {
            Some(session) => (Some(session.row.user.clone()), session.row.groups.clone()),
            None => (None, Vec::new()),
        };
        let path = knock.uri.path();
        if is_public(path) {
            let exchange = self.file_exchange(&groups);
            return Verdict::Pass {
                user,
                groups,
                exchange,
            };
        }
        if session.as_ref().is_some_and(|session| {
            session.row.must_change_password || self.needs_totp(&session.row)
        }) {
            // The sign-in page sends such a user on to change their password or enrol an app.
            return Verdict::SignIn;
        }
        let method = knock.method.as_str();
        let device = self.device_state(knock.client_certificate, user.as_deref(), now);
        let mut request = policy::Request {
            user: user.as_deref(),
            groups: &groups,
            source: knock.source,
            method,
            host: knock.host,
            path,
            device_compliant: device.compliant(),
            now,
        };
        let policy = self.policy.load();
        let mut decision = policy.decide(&request);
        if decision.allowed() {
            let exchange = self.file_exchange(&groups);
            return Verdict::Pass {
                user,
                groups,
                exchange,
            };
        }
        if user.is_none() {
            return Verdict::SignIn;
        }
        // When a compliant device would have been let in, the device is what to fix: say what.
        if device.compliant() != Some(true) {
            request.device_compliant = Some(true);
            if policy.decide(&request).allowed() {
                decision.reason = format!("{} — {}", decision.reason, device.what_to_fix());
            }
        }
        let source = knock.source.to_string();
        self.audit(
            "access_denied",
            user.as_deref(),
            Some(&source),
            Some(path),
            "denied",
            decision.rule.as_deref(),
            &decision.reason,
        );
        Verdict::Refuse {
            rule: decision.rule,
            reason: decision.reason,
        }
    }
}

impl Gatekeeper for Auth {
    fn judge(&self, knock: &Knock<'_>) -> Verdict {
        self.judge_at(knock, clock::timestamp_now())
    }

    fn file_refused(
        &self,
        identity: &gateway::gate::Identity,
        path: &str,
        direction: &'static str,
    ) {
        let source = identity.source.to_string();
        self.audit(
            "file_refused",
            identity.user.as_deref(),
            Some(&source),
            Some(path),
            "denied",
            Some("file-exchange"),
            direction,
        );
    }

    fn virus_found(&self, identity: &gateway::gate::Identity, path: &str, signature: &str) {
        let source = identity.source.to_string();
        self.audit(
            "virus_found",
            identity.user.as_deref(),
            Some(&source),
            Some(path),
            "denied",
            Some("upload-scan"),
            signature,
        );
        self.alert_virus_found(identity, path, signature);
    }

    fn upload_unscanned(
        &self,
        identity: &gateway::gate::Identity,
        path: &str,
        reason: &str,
        forwarded: bool,
    ) {
        let source = identity.source.to_string();
        self.audit(
            "upload_unscanned",
            identity.user.as_deref(),
            Some(&source),
            Some(path),
            if forwarded { "forwarded" } else { "denied" },
            Some("upload-scan"),
            reason,
        );
    }
}

impl Auth {
    /// Tells the people who must know that a virus was stopped at the gateway.
    ///
    /// The alert goes by e-mail and webhook as `[alerts]` says (deduplicated per person,
    /// signature and path within a minute, retried); the audit row written by `virus_found` is
    /// the record either way.
    fn alert_virus_found(&self, identity: &gateway::gate::Identity, path: &str, signature: &str) {
        tracing::warn!(
            user = identity.user.as_deref().unwrap_or("-"),
            source = %identity.source,
            path,
            signature,
            "ALERT: virus stopped at the gateway"
        );
        if let Some(alerts) = self.alerts.get().and_then(std::sync::Weak::upgrade) {
            alerts.raise(crate::alerts::Alert::virus_found(
                identity.user.as_deref(),
                &identity.source.to_string(),
                path,
                signature,
                &clock::utc_now_text(),
            ));
        }
    }
}

/// A cookie's value from the request's `Cookie` headers. Malformed pairs are skipped.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// 32 random bytes as 64 hex characters.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| anyhow!("no randomness from the OS: {error}"))?;
    Ok(hex(&bytes))
}

/// SHA-256 as hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Compares two secrets without revealing, by timing, where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn cookies_are_found_and_garbage_is_skipped() {
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            HeaderValue::from_static("junk; a=1;;=x; __Host-genkan_session=abc"),
        );
        headers.append(http::header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn tokens_are_random_hex_and_compare_in_constant_time() {
        let token = random_token().unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, random_token().unwrap());
        assert!(constant_time_eq(token.as_bytes(), token.clone().as_bytes()));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
