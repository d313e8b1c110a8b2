//! Users, groups, memberships and the audit trail, as rows. Names are compared without regard
//! to ASCII case, so `Suzuki` and `suzuki` are one account. Rules about what a valid name or
//! password is live with the caller.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Database, Error};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Login name.
    pub name: String,
    /// PHC string of the password hash (never the password).
    pub password_hash: String,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// The password was set by someone else and must be changed at next sign-in.
    pub must_change_password: bool,
    /// A one-time-password app is enrolled.
    pub totp_enrolled: bool,
    /// Groups, by name, sorted.
    pub groups: Vec<String>,
}

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Member names, sorted.
    pub members: Vec<String>,
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// RFC 3339 UTC time.
    pub at: String,
    /// What happened: `login`, `login_failed`, `lockout`, `access_denied`, `user_added`…
    pub kind: String,
    /// Who did it (user name, or `cli`).
    pub actor: Option<String>,
    /// Where from (client address).
    pub source: Option<String>,
    /// What it was about (user, group, path).
    pub subject: Option<String>,
    /// `ok`, `denied`, `failed`.
    pub outcome: String,
    /// The policy rule that decided, if any.
    pub rule: Option<String>,
    /// Anything else, as text.
    pub detail: String,
}

fn exists_or<'a>(kind: &'static str, name: &'a str) -> impl FnOnce(rusqlite::Error) -> Error + 'a {
    move |error| match error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Error::Exists {
                kind,
                name: name.to_owned(),
            }
        }
        other => Error::Sqlite(other),
    }
}

impl Database {
    /// Number of users.
    pub fn user_count(&self) -> Result<u64, Error> {
        let count: i64 = self
            .connection
            .query_row("SELECT count(*) FROM users", [], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Adds a user with a password hash, in the given groups, all or nothing.
    pub fn add_user(
        &mut self,
        name: &str,
        password_hash: &str,
        must_change: bool,
        groups: &[String],
        now: &str,
    ) -> Result<(), Error> {
        let transaction = self.connection.transaction()?;
        transaction
            .execute(
                "INSERT INTO users (name, password_hash, must_change_password, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![name, password_hash, must_change, now],
            )
            .map_err(exists_or("user", name))?;
        for group in groups {
            add_member_in(&transaction, group, name)?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Replaces a user's password hash.
    pub fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        must_change: bool,
        now: &str,
    ) -> Result<(), Error> {
        let changed = self.connection.execute(
            "UPDATE users SET password_hash = ?2, must_change_password = ?3, updated_at = ?4 WHERE name = ?1",
            params![name, password_hash, must_change, now],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                kind: "user",
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Disables or re-enables a user.
    pub fn set_disabled(&self, name: &str, disabled: bool, now: &str) -> Result<(), Error> {
        let changed = self.connection.execute(
            "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE name = ?1",
            params![name, disabled, now],
        )?;
        if changed == 0 {
            return Err(Error::NotFound {
                kind: "user",
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// One user with their groups.
    pub fn user(&self, name: &str) -> Result<Option<UserRow>, Error> {
        let row = self
            .connection
            .query_row(
                "SELECT name, password_hash, disabled, must_change_password, totp_secret IS NOT NULL FROM users WHERE name = ?1",
                [name],
                |row| {
                    Ok(UserRow {
                        name: row.get(0)?,
                        password_hash: row.get(1)?,
                        disabled: row.get(2)?,
                        must_change_password: row.get(3)?,
                        totp_enrolled: row.get(4)?,
                        groups: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut row) = row else { return Ok(None) };
        row.groups = self.groups_of(&row.name)?;
        Ok(Some(row))
    }

    /// All users, by name.
    pub fn users(&self) -> Result<Vec<UserRow>, Error> {
        let names: Vec<String> = self
            .connection
            .prepare("SELECT name FROM users ORDER BY name")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        names
            .iter()
            .filter_map(|name| self.user(name).transpose())
            .collect()
    }

    fn groups_of(&self, user: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .connection
            .prepare(
                "SELECT g.name FROM groups g JOIN memberships m ON m.group_id = g.id JOIN users u ON u.id = m.user_id \
                 WHERE u.name = ?1 ORDER BY g.name",
            )?
            .query_map([user], |row| row.get(0))?
            .collect::<Result<_, _>>()?)
    }

    /// Adds a group.
    pub fn add_group(&self, name: &str, description: &str, now: &str) -> Result<(), Error> {
        self.connection
            .execute(
                "INSERT INTO groups (name, description, created_at) VALUES (?1, ?2, ?3)",
                params![name, description, now],
            )
            .map_err(exists_or("group", name))?;
        Ok(())
    }

    /// Puts a user in a group (nothing happens if they are in it already).
    pub fn add_member(&self, group: &str, user: &str) -> Result<(), Error> {
        add_member_in(&self.connection, group, user)
    }

    /// Takes a user out of a group.
    pub fn remove_member(&self, group: &str, user: &str) -> Result<(), Error> {
        let (group_id, user_id) = ids(&self.connection, group, user)?;
        self.connection.execute(
            "DELETE FROM memberships WHERE user_id = ?1 AND group_id = ?2",
            params![user_id, group_id],
        )?;
        Ok(())
    }

    /// All groups with their members.
    pub fn groups(&self) -> Result<Vec<GroupRow>, Error> {
        let rows: Vec<(String, String)> = self
            .connection
            .prepare("SELECT name, description FROM groups ORDER BY name")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut members = self.connection.prepare(
            "SELECT u.name FROM users u JOIN memberships m ON m.user_id = u.id JOIN groups g ON g.id = m.group_id \
             WHERE g.name = ?1 ORDER BY u.name",
        )?;
        rows.into_iter()
            .map(|(name, description)| {
                let members = members
                    .query_map([&name], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(GroupRow {
                    name,
                    description,
                    members,
                })
            })
            .collect()
    }

    /// Appends one event to the audit trail.
    pub fn record_audit(&self, event: &AuditEvent) -> Result<(), Error> {
        self.connection.execute(
            "INSERT INTO audit_events (at, kind, actor, source, subject, outcome, rule, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![event.at, event.kind, event.actor, event.source, event.subject, event.outcome, event.rule, event.detail],
        )?;
        Ok(())
    }

    /// Audit events at or after `since` (RFC 3339), oldest first.
    pub fn audit_since(&self, since: &str) -> Result<Vec<AuditEvent>, Error> {
        Ok(self
            .connection
            .prepare(
                "SELECT at, kind, actor, source, subject, outcome, rule, detail FROM audit_events WHERE at >= ?1 ORDER BY id",
            )?
            .query_map([since], |row| {
                Ok(AuditEvent {
                    at: row.get(0)?,
                    kind: row.get(1)?,
                    actor: row.get(2)?,
                    source: row.get(3)?,
                    subject: row.get(4)?,
                    outcome: row.get(5)?,
                    rule: row.get(6)?,
                    detail: row.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    /// Deletes audit events older than `before` (RFC 3339); returns how many.
    pub fn prune_audit(&self, before: &str) -> Result<usize, Error> {
        Ok(self
            .connection
            .execute("DELETE FROM audit_events WHERE at < ?1", [before])?)
    }
}

fn ids(connection: &Connection, group: &str, user: &str) -> Result<(i64, i64), Error> {
    let group_id: Option<i64> = connection
        .query_row("SELECT id FROM groups WHERE name = ?1", [group], |row| {
            row.get(0)
        })
        .optional()?;
    let group_id = group_id.ok_or_else(|| Error::NotFound {
        kind: "group",
        name: group.to_owned(),
    })?;
    let user_id: Option<i64> = connection
        .query_row("SELECT id FROM users WHERE name = ?1", [user], |row| {
            row.get(0)
        })
        .optional()?;
    let user_id = user_id.ok_or_else(|| Error::NotFound {
        kind: "user",
        name: user.to_owned(),
    })?;
    Ok((group_id, user_id))
}

fn add_member_in(connection: &Connection, group: &str, user: &str) -> Result<(), Error> {
    let (group_id, user_id) = ids(connection, group, user)?;
    connection.execute(
        "INSERT OR IGNORE INTO memberships (user_id, group_id) VALUES (?1, ?2)",
        params![user_id, group_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(tag: &str) -> (Database, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("genkan-identity-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (
            Database::open(&dir.join("genkan.db"), "2026-12-03T00:00:00Z").unwrap(),
            dir,
        )
    }

    #[test]
    fn users_groups_and_memberships_round_trip() {
        let (mut db, dir) = database("roundtrip");
        let now = "2026-12-03T00:00:00Z";
        db.add_user(
            "suzuki",
            "$argon2id$x",
            true,
            &["contractor".to_owned()],
            now,
        )
        .unwrap();
        assert!(matches!(
            db.add_user("SUZUKI", "h", false, &[], now),
            Err(Error::Exists { .. })
        ));
        // A missing group undoes the whole insert.
        assert!(matches!(
            db.add_user("tanaka", "h", false, &["nosuch".to_owned()], now),
            Err(Error::NotFound { .. })
        ));
        assert!(db.user("tanaka").unwrap().is_none());
        db.add_group("accounting", "経理", now).unwrap();
        db.add_member("accounting", "Suzuki").unwrap();
        let user = db.user("suzuki").unwrap().unwrap();
        assert_eq!(
            user.groups,
            vec!["accounting".to_owned(), "contractor".to_owned()]
        );
        assert!(user.must_change_password);
        db.remove_member("contractor", "suzuki").unwrap();
        db.set_disabled("suzuki", true, now).unwrap();
        let user = db.user("suzuki").unwrap().unwrap();
        assert!(user.disabled);
        assert_eq!(user.groups, vec!["accounting".to_owned()]);
        let groups = db.groups().unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["accounting", "admin", "agent", "contractor", "supervisor"]
        );
        assert!(matches!(
            db.set_password("nobody", "h", false, now),
            Err(Error::NotFound { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn audit_trail_appends_and_prunes() {
        let (db, dir) = database("audit");
        for (at, kind) in [
            ("2026-12-01T00:00:00Z", "login"),
            ("2026-12-03T00:00:00Z", "access_denied"),
        ] {
            db.record_audit(&AuditEvent {
                at: at.into(),
                kind: kind.into(),
                actor: Some("suzuki".into()),
                source: Some("203.0.113.7".into()),
                subject: Some("/fmi/iwp".into()),
                outcome: "ok".into(),
                rule: None,
                detail: String::new(),
            })
            .unwrap();
        }
        assert_eq!(db.audit_since("2026-12-02T00:00:00Z").unwrap().len(), 1);
        assert_eq!(db.prune_audit("2026-12-02T00:00:00Z").unwrap(), 1);
        assert_eq!(
            db.audit_since("2000-01-01T00:00:00Z").unwrap()[0].kind,
            "access_denied"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
