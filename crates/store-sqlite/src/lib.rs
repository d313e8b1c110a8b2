//! genkan's embedded database: bundled SQLite in WAL mode, migrated on open.
//!
//! What it is: the storage adapter every other part of genkan reaches the SQLite file through.
//! It owns the connection settings (WAL, foreign keys, busy timeout) and the ordered list of
//! migrations in `migrations/`, applied in one transaction each so a crash mid-migration leaves
//! the previous version intact.
//!
//! What it is not: it holds no business rules. Records, users and contact history add their own
//! tables through new migrations here and their rules live in the core crates.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

mod contacts;
mod devices;
mod identity;
pub mod records;
mod sessions;
mod totp;

pub use contacts::{ContactRow, ContactSearch, CustomerRef};
pub use devices::{
    AlertRow, DetectionRow, DeviceRow, Enrolment, NewAlert, NewDevice, ReportRow, StoredReport,
};
pub use identity::{AuditEvent, GroupRow, UserRow};
pub use records::{RecordsDb, SqlSession};
pub use sessions::SessionRow;
pub use totp::TotpState;

/// The migrations, in order. The position in this list is the schema version it produces.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_foundation",
        include_str!("../migrations/0001_foundation.sql"),
    ),
    (
        "0002_identity",
        include_str!("../migrations/0002_identity.sql"),
    ),
    (
        "0003_sessions",
        include_str!("../migrations/0003_sessions.sql"),
    ),
    ("0004_totp", include_str!("../migrations/0004_totp.sql")),
    ("0005_policy", include_str!("../migrations/0005_policy.sql")),
    (
        "0006_contacts",
        include_str!("../migrations/0006_contacts.sql"),
    ),
    (
        "0007_devices",
        include_str!("../migrations/0007_devices.sql"),
    ),
    (
        "0008_device_renewal",
        include_str!("../migrations/0008_device_renewal.sql"),
    ),
];

/// Everything that can go wrong opening or migrating the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite refused an operation.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer genkan than this one.
    #[error(
        "the database is at schema version {found}, newer than this genkan knows ({known}); upgrade genkan"
    )]
    TooNew {
        /// Version found in the file.
        found: usize,
        /// Newest version this build knows.
        known: usize,
    },
    /// A name (user or group) is taken.
    #[error("{kind} `{name}` exists already")]
    Exists {
        /// `user` or `group`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A name (user or group) does not exist.
    #[error("no {kind} named `{name}`")]
    NotFound {
        /// `user` or `group`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A migration failed; the database stays at the version before it.
    #[error("migration {name} failed: {source}")]
    Migration {
        /// Which migration.
        name: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
}

/// An open, migrated database.
#[derive(Debug)]
pub struct Database {
    connection: Connection,
}

impl Database {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    /// `created_at` is written into the installation row the first time.
    pub fn open(path: &Path, created_at: &str) -> Result<Self, Error> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut database = Self { connection };
        database.migrate()?;
        database.connection.execute(
            "INSERT OR IGNORE INTO installation (id, created_at, genkan_version) VALUES (1, ?1, ?2)",
            (created_at, env!("CARGO_PKG_VERSION")),
        )?;
        Ok(database)
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> Result<usize, Error> {
        let version: i64 = self
            .connection
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        Ok(usize::try_from(version).unwrap_or(0))
    }

    /// The newest schema version this build knows.
    pub fn latest_version() -> usize {
        MIGRATIONS.len()
    }

    /// When this installation was first started.
    pub fn created_at(&self) -> Result<String, Error> {
        Ok(self.connection.query_row(
            "SELECT created_at FROM installation WHERE id = 1",
            [],
            |row| row.get(0),
        )?)
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let found = self.schema_version()?;
        if found > MIGRATIONS.len() {
            return Err(Error::TooNew {
                found,
                known: MIGRATIONS.len(),
            });
        }
        for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(found) {
            let version = index + 1;
            let apply = |connection: &mut Connection| -> Result<(), rusqlite::Error> {
                let transaction = connection.transaction()?;
                transaction.execute_batch(sql)?;
                transaction.pragma_update(None, "user_version", version as i64)?;
                transaction.commit()
            };
            apply(&mut self.connection).map_err(|source| Error::Migration { name, source })?;
            tracing::info!(migration = name, version, "database migrated");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_twice_migrates_once_and_keeps_the_installation_row() {
        let dir = std::env::temp_dir().join(format!("genkan-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("genkan.db");
        let _ = std::fs::remove_file(&path);
        {
            let db = Database::open(&path, "2026-12-03T00:00:00Z").unwrap();
            assert_eq!(db.schema_version().unwrap(), Database::latest_version());
        }
        let db = Database::open(&path, "2030-01-01T00:00:00Z").unwrap();
        assert_eq!(db.created_at().unwrap(), "2026-12-03T00:00:00Z");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = std::env::temp_dir().join(format!("genkan-store-new-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("genkan.db");
        let _ = std::fs::remove_file(&path);
        {
            let connection = Connection::open(&path).unwrap();
            connection.pragma_update(None, "user_version", 999).unwrap();
        }
        let error = Database::open(&path, "now").unwrap_err();
        assert!(matches!(error, Error::TooNew { found: 999, .. }), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
