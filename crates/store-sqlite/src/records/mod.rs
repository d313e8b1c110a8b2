//! A records database: one SQLite file holding user tables (real SQL tables with the system
//! columns `ROWID` and `ROWMODID`), genkan's layout definitions, and the triggers that keep
//! every write honest.
//!
//! Two triggers per user table carry the rules so that no write path can forget them:
//! - before an UPDATE or DELETE of a row, `genkan_may_write(table, rowid)` asks the lease table
//!   whether another session holds the record; if so the row is left alone (`RAISE(IGNORE)`)
//!   and the call notes it, so the caller can fail the whole statement (301, naming every
//!   held record) or report exactly what it skipped;
//! - after an UPDATE that did not itself raise `ROWMODID`, the trigger raises it, so the
//!   modification count grows whichever path changed the row. genkan's own writes raise it in
//!   the statement, which spares the second pass.
//!
//! `genkan_may_write` exists only on genkan's connections: a program that opens the file
//! directly can read it but not change user tables behind the leases' back.
//!
//! Connections: one writer (SQLite has one writer at a time) and a few readers (WAL lets them
//! read while it writes). SQL sessions with an open transaction get a connection of their own.

mod data;
mod exec;
pub mod plan;
mod schema;
mod store_impl;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use records::{Actor, Lease, Leases};
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

pub use exec::SqlSession;
use schema::Schema;

/// What the trigger function needs to know about the connection's current caller.
#[derive(Debug, Default)]
pub(crate) struct Caller {
    session: String,
    now_ms: i64,
    /// Records a statement left alone because another session holds them.
    blocked: Vec<Lease>,
}

/// A connection with its caller slot.
pub(crate) struct Conn {
    pub(crate) connection: Connection,
    caller: Arc<Mutex<Caller>>,
}

impl Conn {
    /// Sets who the following statements act for, and forgets earlier blocked records.
    pub(crate) fn act_for(&self, actor: Actor<'_>) {
        let mut caller = lock(&self.caller);
        actor.session.clone_into(&mut caller.session);
        caller.now_ms = actor.now_ms;
        caller.blocked.clear();
    }

    /// Takes the records the last statements left alone.
    pub(crate) fn take_blocked(&self) -> Vec<Lease> {
        std::mem::take(&mut lock(&self.caller).blocked)
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind, still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An open records database.
pub struct RecordsDb {
    name: String,
    path: PathBuf,
    writer: Mutex<Conn>,
    readers: ReaderPool,
    leases: Arc<Mutex<Leases>>,
    schema: Mutex<Option<Arc<Schema>>>,
    busy_timeout: Duration,
}

impl std::fmt::Debug for RecordsDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsDb")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

const INTERNAL_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS genkan_layout (
    name TEXT PRIMARY KEY,
    table_name TEXT NOT NULL,
    fields TEXT
);
CREATE TABLE IF NOT EXISTS genkan_portal (
    layout TEXT NOT NULL REFERENCES genkan_layout(name) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    foreign_key TEXT NOT NULL,
    local_key TEXT,
    fields TEXT,
    PRIMARY KEY (layout, name)
);
";

/// The read connections. Whoever waits is woken when any reader comes back, rather than queueing
/// on one connection's mutex while the others go to newcomers (which, under load, let some
/// requests wait for seconds).
struct ReaderPool {
    free: Mutex<Vec<Conn>>,
    returned: Condvar,
}

/// A reader taken from the pool; it goes back when dropped.
pub(crate) struct ReaderGuard<'a> {
    pool: &'a ReaderPool,
    conn: Option<Conn>,
}

impl std::ops::Deref for ReaderGuard<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Present from creation until drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for ReaderGuard<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for ReaderGuard<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            lock(&self.pool.free).push(conn);
            self.pool.returned.notify_one();
        }
    }
}

impl RecordsDb {
    /// Opens (creating if needed) the database `name` at `path`, with `readers` read connections.
    pub fn open(name: &str, path: &Path, readers: usize) -> Result<Self, crate::Error> {
        let leases = Arc::new(Mutex::new(Leases::new()));
        let busy_timeout = Duration::from_secs(5);
        let writer = open_connection(path, &leases, false, busy_timeout)?;
        writer.connection.execute_batch(INTERNAL_SCHEMA)?;
        let readers = (0..readers.max(1))
            .map(|_| open_connection(path, &leases, true, busy_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        let readers = ReaderPool {
            free: Mutex::new(readers),
            returned: Condvar::new(),
        };
        let db = Self {
            name: name.to_owned(),
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers,
            leases,
            schema: Mutex::new(None),
            busy_timeout,
        };
        {
            let writer = lock(&db.writer);
            schema::install_rules(&writer.connection, None)?;
        }
        Ok(db)
    }

    /// Whether the setup SQL has not run yet (a new database).
    pub fn needs_setup(&self) -> Result<bool, crate::Error> {
        let writer = self.writer();
        let version: i64 = writer
            .connection
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        Ok(version == 0)
    }

    /// Runs the configured setup SQL (tables, first rows) in one transaction, gives the new
    /// tables their system column and triggers, and marks the database as set up; on any error
    /// nothing of it stays and the next start tries again.
    pub fn run_setup(&self, sql: &str) -> Result<(), crate::Error> {
        let writer = self.writer();
        let connection = &writer.connection;
        connection.execute_batch("BEGIN IMMEDIATE")?;
        let result = connection
            .execute_batch(sql)
            .and_then(|()| schema::install_rules(connection, None))
            .and_then(|()| connection.pragma_update(None, "user_version", 1));
        match result {
            Ok(()) => connection.execute_batch("COMMIT")?,
            Err(error) => {
                let _ = connection.execute_batch("ROLLBACK");
                return Err(error.into());
            }
        }
        drop(writer);
        self.schema_changed();
        Ok(())
    }

    /// Marks the database as set up without setup SQL.
    pub fn mark_set_up(&self) -> Result<(), crate::Error> {
        self.writer()
            .connection
            .pragma_update(None, "user_version", 1)?;
        Ok(())
    }

    /// The database's name (the Data API's `{database}`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Conn> {
        lock(&self.writer)
    }

    /// A free reader, waiting for the first one given back when all are busy.
    pub(crate) fn reader(&self) -> ReaderGuard<'_> {
        let mut free = lock(&self.readers.free);
        loop {
            if let Some(conn) = free.pop() {
                return ReaderGuard {
                    pool: &self.readers,
                    conn: Some(conn),
                };
            }
            free = self
                .readers
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub(crate) fn leases(&self) -> MutexGuard<'_, Leases> {
        lock(&self.leases)
    }

    pub(crate) fn new_connection(&self) -> Result<Conn, crate::Error> {
        open_connection(&self.path, &self.leases, false, self.busy_timeout)
    }

    /// The schema (tables, columns, layouts), read again after any change to it.
    pub(crate) fn schema(&self) -> Result<Arc<Schema>, crate::Error> {
        let mut cached = lock(&self.schema);
        if let Some(schema) = cached.as_ref() {
            return Ok(Arc::clone(schema));
        }
        let schema = {
            let reader = self.reader();
            Arc::new(Schema::read(&reader.connection)?)
        };
        *cached = Some(Arc::clone(&schema));
        Ok(schema)
    }

    pub(crate) fn schema_changed(&self) {
        *lock(&self.schema) = None;
    }
}

fn open_connection(
    path: &Path,
    leases: &Arc<Mutex<Leases>>,
    read_only: bool,
    busy_timeout: Duration,
) -> Result<Conn, crate::Error> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let connection = Connection::open_with_flags(path, flags)?;
    if !read_only {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
    }
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.busy_timeout(busy_timeout)?;
    register_find_functions(&connection)?;
    let caller = Arc::new(Mutex::new(Caller::default()));
    let (slot, table) = (Arc::clone(&caller), Arc::clone(leases));
    connection.create_scalar_function(
        "genkan_may_write",
        2,
        FunctionFlags::SQLITE_UTF8,
        move |context| {
            let table_name: String = context.get(0)?;
            let record_id: i64 = context.get(1)?;
            let mut caller = lock(&slot);
            let held = lock(&table)
                .blocking(&table_name, record_id, &caller.session, caller.now_ms)
                .cloned();
            Ok(match held {
                Some(lease) => {
                    caller.blocked.push(lease);
                    0
                }
                None => 1,
            })
        },
    )?;
    Ok(Conn { connection, caller })
}

/// Registers the SQL functions the records core's find conditions call
/// ([`records::find::WORDS_FUNCTION`]) on a connection.
pub fn register_find_functions(connection: &Connection) -> rusqlite::Result<()> {
    connection.create_scalar_function(
        records::find::WORDS_FUNCTION,
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |context| {
            let text = match context.get_raw(0) {
                rusqlite::types::ValueRef::Null => return Ok(None),
                rusqlite::types::ValueRef::Integer(number) => number.to_string(),
                rusqlite::types::ValueRef::Real(number) => number.to_string(),
                rusqlite::types::ValueRef::Text(bytes) | rusqlite::types::ValueRef::Blob(bytes) => {
                    String::from_utf8_lossy(bytes).into_owned()
                }
            };
            Ok(Some(records::find::fold_words(&text)))
        },
    )
}
