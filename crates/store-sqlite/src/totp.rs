//! One-time-password secrets per user (the one in use, the one being enrolled, and the last
//! accepted time step, for replay protection), and the policy rules stored from the admin pages.

use rusqlite::{OptionalExtension, params};

use crate::{Database, Error};

/// A user's one-time-password state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpState {
    /// Base32 secret in use, if enrolled.
    pub secret: Option<String>,
    /// Base32 secret shown for enrolment and not yet confirmed with a code.
    pub pending_secret: Option<String>,
    /// The last time step a code was accepted for.
    pub last_step: u64,
}

impl Database {
    /// The one-time-password state of a user.
    pub fn totp_state(&self, user: &str) -> Result<TotpState, Error> {
        let state = self
            .connection
            .query_row(
                "SELECT totp_secret, totp_pending_secret, totp_last_step FROM users WHERE name = ?1",
                [user],
                |row| {
                    let last: i64 = row.get(2)?;
                    Ok(TotpState {
                        secret: row.get(0)?,
                        pending_secret: row.get(1)?,
                        last_step: u64::try_from(last).unwrap_or(0),
                    })
                },
            )
            .optional()?;
        state.ok_or_else(|| Error::NotFound {
            kind: "user",
            name: user.to_owned(),
        })
    }

    /// Stores a secret being enrolled (replacing an earlier unconfirmed one).
    pub fn set_totp_pending(&self, user: &str, secret: &str) -> Result<(), Error> {
        let changed = self.connection.execute(
            "UPDATE users SET totp_pending_secret = ?2 WHERE name = ?1",
            params![user, secret],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                kind: "user",
                name: user.to_owned(),
            });
        }
        Ok(())
    }

    /// Makes the pending secret the one in use, recording the step its confirming code used.
    pub fn confirm_totp(&self, user: &str, step: u64) -> Result<(), Error> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let changed = self.connection.execute(
            "UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, totp_last_step = ?2 \
             WHERE name = ?1 AND totp_pending_secret IS NOT NULL",
            params![user, step],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                kind: "pending one-time-password secret of user",
                name: user.to_owned(),
            });
        }
        Ok(())
    }

    /// Accepts time step `step` for `user` only if it is later than any accepted before;
    /// returns whether it was. One statement, so two requests with the same code cannot both win.
    pub fn accept_totp_step(&self, user: &str, step: u64) -> Result<bool, Error> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let changed = self.connection.execute(
            "UPDATE users SET totp_last_step = ?2 WHERE name = ?1 AND totp_last_step < ?2",
            params![user, step],
        )?;
        Ok(changed == 1)
    }

    /// Removes a user's one-time-password enrolment (a lost phone).
    pub fn clear_totp(&self, user: &str) -> Result<(), Error> {
        let changed = self.connection.execute(
            "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL WHERE name = ?1",
            [user],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                kind: "user",
                name: user.to_owned(),
            });
        }
        Ok(())
    }
}

impl Database {
    /// The policy TOML edited in the admin pages, if any was saved.
    pub fn stored_policy(&self) -> Result<Option<String>, Error> {
        Ok(self
            .connection
            .query_row("SELECT toml FROM stored_policy WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// Saves the policy TOML edited in the admin pages.
    pub fn set_stored_policy(&self, toml: &str, now: &str, by: &str) -> Result<(), Error> {
        self.connection.execute(
            "INSERT INTO stored_policy (id, toml, updated_at, updated_by) VALUES (1, ?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET toml = excluded.toml, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            params![toml, now, by],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_confirmation_and_replay_refusal() {
        let dir = std::env::temp_dir().join(format!("genkan-totp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut db = Database::open(&dir.join("genkan.db"), "2026-12-03T00:00:00.000Z").unwrap();
        db.add_user("suzuki", "h", false, &[], "2026-12-03T00:00:00.000Z")
            .unwrap();
        assert!(matches!(
            db.confirm_totp("suzuki", 1),
            Err(Error::NotFound { .. })
        ));
        db.set_totp_pending("suzuki", "JBSWY3DPEHPK3PXP").unwrap();
        db.confirm_totp("suzuki", 100).unwrap();
        let state = db.totp_state("suzuki").unwrap();
        assert_eq!(state.secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
        assert_eq!(state.pending_secret, None);
        assert!(
            !db.accept_totp_step("suzuki", 100).unwrap(),
            "a step was accepted twice"
        );
        assert!(db.accept_totp_step("suzuki", 101).unwrap());
        db.clear_totp("suzuki").unwrap();
        assert_eq!(db.stored_policy().unwrap(), None);
        db.set_stored_policy("[[rule]]", "now", "admin").unwrap();
        db.set_stored_policy("[[rule]]\nname = \"x\"", "later", "admin")
            .unwrap();
        assert_eq!(
            db.stored_policy().unwrap().as_deref(),
            Some("[[rule]]\nname = \"x\"")
        );
        assert_eq!(db.totp_state("suzuki").unwrap().secret, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
