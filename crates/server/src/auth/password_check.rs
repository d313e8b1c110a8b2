//! The password check every sign-in path shares (the sign-in page, the Data API's Basic login):
//! the failure limiter per address and per account, a decoy hash for unknown names so timing
//! does not tell them apart, Argon2 off the request threads, and the audit of every failure.

use std::sync::Arc;

use store_sqlite::UserRow;

use super::Auth;
use crate::identity::{MAX_PASSWORD_LEN, verify_password};

/// What the check decided.
#[derive(Debug)]
pub enum PasswordCheck {
    /// The password is right and the account may sign in (a second factor may still be due).
    Accepted(UserRow),
    /// Too many failures from this address: not even checked.
    SourceBlocked,
    /// Wrong name or password, disabled or locked account (the person is not told which).
    Refused,
}

impl Auth {
    /// Checks a name and password from `source`; audits and counts failures.
    pub async fn check_password(
        self: &Arc<Self>,
        user: &str,
        password: String,
        source: &str,
    ) -> PasswordCheck {
        let settings = self.settings.load_full();
        let now = crate::clock::timestamp_now();
        let (source_key, user_key) = (format!("source:{source}"), format!("user:{user}"));
        let (source_failures, user_failures) = match self.limiter.lock() {
            Ok(mut limiter) => (
                limiter.count(&source_key, now, settings.lockout),
                limiter.count(&user_key, now, settings.lockout),
            ),
            Err(_) => return PasswordCheck::Refused,
        };
        if source_failures >= settings.max_failed_logins_per_source as usize {
            self.audit(
                "login_refused",
                Some(user),
                Some(source),
                Some(user),
                "refused",
                None,
                "too many failures from this address",
            );
            return PasswordCheck::SourceBlocked;
        }
        let locked = user_failures >= settings.max_failed_logins as usize;
        let well_formed =
            !user.is_empty() && user.len() <= 64 && password.len() <= MAX_PASSWORD_LEN;
        let stored = if well_formed {
            self.database()
                .ok()
                .and_then(|db| db.user(user).ok().flatten())
        } else {
            None
        };
        let hash = stored.as_ref().map_or_else(
            || super::DECOY_HASH.to_owned(),
            |row| row.password_hash.clone(),
        );
        // Argon2 takes tens of milliseconds of CPU: keep it off the request threads.
        let matches = crate::identity::on_hashing_thread(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        match stored {
            Some(row) if matches && !locked && !row.disabled => PasswordCheck::Accepted(row),
            stored => {
                let reason = match (&stored, locked) {
                    (_, true) => "account locked",
                    (None, _) => "unknown user",
                    (Some(row), _) if row.disabled => "user disabled",
                    _ => "wrong password",
                };
                if let Ok(mut limiter) = self.limiter.lock() {
                    limiter.fail(&source_key, now, settings.lockout);
                    if !locked {
                        limiter.fail(&user_key, now, settings.lockout);
                        if user_failures + 1 == settings.max_failed_logins as usize {
                            self.audit(
                                "lockout",
                                Some(user),
                                Some(source),
                                Some(user),
                                "locked",
                                None,
                                "too many failed sign-ins",
                            );
                        }
                    }
                }
                self.audit(
                    "login_failed",
                    Some(user),
                    Some(source),
                    Some(user),
                    "failed",
                    None,
                    reason,
                );
                PasswordCheck::Refused
            }
        }
    }

    /// Forgets the account's counted failures after a complete sign-in.
    pub fn login_succeeded(&self, user: &str) {
        if let Ok(mut limiter) = self.limiter.lock() {
            limiter.clear(&format!("user:{user}"));
        }
    }
}
