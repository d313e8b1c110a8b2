//! Sessions as rows: created at sign-in, looked up on every request, removed at sign-out.

use rusqlite::{OptionalExtension, params};

use crate::{Database, Error};

/// A session with what the gate needs about its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The user's name.
    pub user: String,
    /// The user's groups, sorted.
    pub groups: Vec<String>,
    /// Whether the user has been disabled since signing in.
    pub user_disabled: bool,
    /// Whether the user must choose a new password before anything else.
    pub must_change_password: bool,
    /// Whether the user has a one-time-password app enrolled.
    pub totp_enrolled: bool,
    /// Token that forms of this session must echo.
    pub csrf_token: String,
    /// When the session began (RFC 3339 UTC).
    pub created_at: String,
    /// When it was last used (RFC 3339 UTC).
    pub last_seen_at: String,
}

impl Database {
    /// Starts a session for `user`.
    pub fn create_session(
        &self,
        token_hash: &str,
        user: &str,
        csrf_token: &str,
        now: &str,
        source: &str,
        user_agent: &str,
    ) -> Result<(), Error> {
        let changed = self.connection.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, source, user_agent) \
             SELECT ?1, id, ?3, ?4, ?4, ?5, ?6 FROM users WHERE name = ?2",
            params![token_hash, user, csrf_token, now, source, user_agent],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                kind: "user",
                name: user.to_owned(),
            });
        }
        Ok(())
    }

    /// The session with this token hash, if any.
    pub fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, Error> {
        let row = self
            .connection
            .prepare_cached(
                "SELECT u.name, u.disabled, u.must_change_password, s.csrf_token, s.created_at, s.last_seen_at, \
                 u.totp_secret IS NOT NULL, \
                 (SELECT group_concat(name, ',') FROM (SELECT g.name AS name FROM groups g JOIN memberships m ON m.group_id = g.id \
                   WHERE m.user_id = u.id ORDER BY g.name)) \
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
            )?
            .query_row([token_hash], |row| {
                let groups: Option<String> = row.get(7)?;
                Ok(SessionRow {
                    user: row.get(0)?,
                    user_disabled: row.get(1)?,
                    must_change_password: row.get(2)?,
                    totp_enrolled: row.get(6)?,
                    csrf_token: row.get(3)?,
                    created_at: row.get(4)?,
                    last_seen_at: row.get(5)?,
                    groups: groups
                        .map(|text| text.split(',').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
            })
            .optional()?;
        Ok(row)
    }

    /// Records that the session was used now.
    pub fn touch_session(&self, token_hash: &str, now: &str) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash, now])?;
        Ok(())
    }

    /// Ends one session.
    pub fn delete_session(&self, token_hash: &str) -> Result<(), Error> {
        self.connection
            .execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
        Ok(())
    }

    /// Ends every session of a user ("sign out everywhere", password change, disabling).
    pub fn delete_sessions_of(&self, user: &str) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
            [user],
        )?)
    }

    /// Removes sessions last used before `idle_before` or begun before `started_before`.
    pub fn prune_sessions(&self, idle_before: &str, started_before: &str) -> Result<usize, Error> {
        Ok(self.connection.execute(
            "DELETE FROM sessions WHERE last_seen_at < ?1 OR created_at < ?2",
            params![idle_before, started_before],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_carry_the_user_and_groups_and_end_everywhere() {
        let dir = std::env::temp_dir().join(format!("genkan-sessions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut db = Database::open(&dir.join("genkan.db"), "2026-12-03T00:00:00.000Z").unwrap();
        let now = "2026-12-03T09:00:00.000Z";
        db.add_user(
            "suzuki",
            "h",
            false,
            &["contractor".to_owned(), "agent".to_owned()],
            now,
        )
        .unwrap();
        db.create_session("hash-a", "suzuki", "csrf-a", now, "203.0.113.7", "Firefox")
            .unwrap();
        db.create_session("hash-b", "suzuki", "csrf-b", now, "203.0.113.8", "Edge")
            .unwrap();
        assert!(matches!(
            db.create_session("hash-c", "nobody", "c", now, "x", ""),
            Err(Error::NotFound { .. })
        ));
        let session = db.session("hash-a").unwrap().unwrap();
        assert_eq!(session.user, "suzuki");
        assert_eq!(
            session.groups,
            vec!["agent".to_owned(), "contractor".to_owned()]
        );
        assert_eq!(session.csrf_token, "csrf-a");
        db.touch_session("hash-a", "2026-12-03T10:00:00.000Z")
            .unwrap();
        assert_eq!(
            db.session("hash-a").unwrap().unwrap().last_seen_at,
            "2026-12-03T10:00:00.000Z"
        );
        assert_eq!(
            db.prune_sessions("2026-12-03T09:30:00.000Z", "2000-01-01T00:00:00.000Z")
                .unwrap(),
            1
        );
        assert!(db.session("hash-b").unwrap().is_none());
        assert_eq!(db.delete_sessions_of("suzuki").unwrap(), 1);
        assert!(db.session("hash-a").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
