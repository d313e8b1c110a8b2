//! The `Store` trait: what the Data API, the SQL endpoint and the records page need from a
//! database, and the rules every implementation keeps (checked by [`crate::conformance`]).
//!
//! Synchronous on purpose: stores are called from blocking threads, and an SQLite connection is
//! synchronous anyway. A PostgreSQL store would implement the same trait.

use crate::Code;
use crate::layout::{FindByName, Layout, LayoutDefinition, SortRequest};
use crate::lease::Lease;

/// A value in a record or an SQL parameter or result.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// Empty.
    Null,
    /// Whole number.
    Integer(i64),
    /// Other number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes (container data).
    Blob(Vec<u8>),
}

/// Who is acting and when: every write is checked against leases held by other sessions.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// Account name.
    pub user: &'a str,
    /// Session (a lease held by this session does not block it).
    pub session: &'a str,
    /// Now, ms since the Unix epoch.
    pub now_ms: i64,
}

/// A 1-based offset and a limit, as FileMaker counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First record, 1-based.
    pub offset: u64,
    /// At most this many.
    pub limit: u64,
}

/// A request for records: all of the layout's table, or a find; sorted; one range; portal ranges.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// `None`: every record; `Some`: the find requests.
    pub find: Option<Vec<FindByName>>,
    /// Sort criteria.
    pub sort: Vec<SortRequest>,
    /// Range of the found set.
    pub range: Option<Range>,
    /// Portals to include with their ranges (`None`: all the layout's portals with the default).
    pub portals: Option<Vec<(String, Range)>>,
}

/// One record as the layout shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `recordId` (SQL `ROWID`).
    pub record_id: i64,
    /// `modId` (SQL `ROWMODID`).
    pub mod_id: i64,
    /// Field values in layout order.
    pub fields: Vec<(String, Datum)>,
    /// Portal rows in layout order.
    pub portals: Vec<PortalRows>,
}

/// The rows of one portal for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct PortalRows {
    /// Portal name.
    pub name: String,
    /// Related table.
    pub table: String,
    /// How many related rows exist.
    pub found: u64,
    /// The rows in the requested range (fields named `table::field`).
    pub rows: Vec<Record>,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq)]
pub struct FoundSet {
    /// Records in the table.
    pub total: u64,
    /// Records found.
    pub found: u64,
    /// The records in the range.
    pub records: Vec<Record>,
}

/// What a group may do to a table, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// SELECT.
    Read,
    /// INSERT, UPDATE, DELETE, TRUNCATE.
    Write,
    /// CREATE, ALTER, DROP, CREATE INDEX.
    Schema,
}

/// How bulk SQL writes treat records leased by others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BulkMode {
    /// All or nothing: one leased target record fails the statement, naming every such record.
    #[default]
    Atomic,
    /// Change the records that are free; report exactly which were skipped and why.
    SkipLocked,
}

/// One SQL statement with its `?` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// SQL text (one statement).
    pub sql: String,
    /// Positional parameters.
    pub params: Vec<Datum>,
}

/// What one statement did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatementOutcome {
    /// Result columns (queries).
    pub columns: Vec<String>,
    /// Result rows (queries).
    pub rows: Vec<Vec<Datum>>,
    /// Rows changed (writes).
    pub changes: u64,
    /// Records left alone because another session holds them ([`BulkMode::SkipLocked`]).
    pub skipped: Vec<Lease>,
    /// Leases taken by `SELECT … FOR UPDATE`.
    pub locked: Vec<Lease>,
}

/// Why a store operation failed; each maps to a FileMaker code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// A FileMaker-style failure with a detail for people.
    #[error("{detail}")]
    Fm {
        /// The code.
        code: Code,
        /// What exactly.
        detail: String,
    },
    /// Records are leased by other sessions; nothing was changed.
    #[error("{} record(s) in use by another user", .0.len())]
    Locked(Vec<Lease>),
    /// The modId given does not match the record's.
    #[error("record modification id is {current}, not {given}")]
    ModIdMismatch {
        /// What the client sent.
        given: i64,
        /// What the record has.
        current: i64,
    },
    /// The SQL engine refused a statement (syntax, constraint, permission).
    #[error("SQL error in statement {index}: {message}")]
    Sql {
        /// 1-based index of the statement.
        index: usize,
        /// The engine's message.
        message: String,
        /// A FileMaker code for it.
        code: Code,
    },
}

impl StoreError {
    /// Shorthand for [`StoreError::Fm`].
    pub fn fm(code: Code, detail: impl Into<String>) -> Self {
        Self::Fm {
            code,
            detail: detail.into(),
        }
    }

    /// The FileMaker code for this error.
    pub fn code(&self) -> Code {
        match self {
            Self::Fm { code, .. } | Self::Sql { code, .. } => *code,
            Self::Locked(_) => Code::RecordInUse,
            Self::ModIdMismatch { .. } => Code::ModIdMismatch,
        }
    }
}

/// Who may do what to which table; asked by the SQL engine for every table a statement touches.
pub trait Grants: Send + Sync {
    /// Whether `access` to `table` is allowed.
    fn allows(&self, access: Access, table: &str) -> bool;
}

/// A records database.
pub trait Store: Send + Sync {
    /// An SQL session: a connection that can hold a transaction across calls.
    type Session: Send;

    /// Names of the user tables.
    fn tables(&self) -> Result<Vec<String>, StoreError>;
    /// Every layout (each table's own, then the defined ones), resolved.
    fn layouts(&self) -> Result<Vec<Layout>, StoreError>;
    /// One layout (105 if there is none of that name).
    fn layout(&self, name: &str) -> Result<Layout, StoreError>;
    /// Adds or replaces a defined layout (checked against the tables first).
    fn define_layout(&self, definition: &LayoutDefinition) -> Result<Layout, StoreError>;

    /// Records of a layout: all or found, sorted, in range (401 when a find matches nothing).
    fn query(&self, layout: &Layout, query: &Query) -> Result<FoundSet, StoreError>;
    /// One record (101 if missing).
    fn record(
        &self,
        layout: &Layout,
        record_id: i64,
        portals: Option<&[(String, Range)]>,
    ) -> Result<Record, StoreError>;
    /// Creates a record; returns `(recordId, modId)`.
    fn create(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        fields: &[(String, Datum)],
    ) -> Result<(i64, i64), StoreError>;
    /// Changes the given fields; with `expected_mod_id` the change happens only if it matches.
    /// Returns the new modId.
    fn edit(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        record_id: i64,
        fields: &[(String, Datum)],
        expected_mod_id: Option<i64>,
    ) -> Result<i64, StoreError>;
    /// Deletes a record.
    fn delete(&self, actor: Actor<'_>, layout: &Layout, record_id: i64) -> Result<(), StoreError>;
    /// Copies a record; returns the copy's `(recordId, modId)`.
    fn duplicate(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        record_id: i64,
    ) -> Result<(i64, i64), StoreError>;

    /// Takes or renews the edit lease of a record.
    fn lock(
        &self,
        actor: Actor<'_>,
        table: &str,
        record_id: i64,
        ttl_ms: i64,
    ) -> Result<Lease, StoreError>;
    /// Releases a lease the actor's session holds.
    fn unlock(&self, actor: Actor<'_>, table: &str, record_id: i64) -> bool;
    /// Releases every lease of a session.
    fn release_session(&self, session: &str) -> usize;
    /// Gives the lease to the actor whoever holds it; returns the lease replaced.
    fn take_over(
        &self,
        actor: Actor<'_>,
        table: &str,
        record_id: i64,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError>;
    /// The live lease on a record.
    fn lease(&self, table: &str, record_id: i64, now_ms: i64) -> Option<Lease>;
    /// Every live lease; lapsed ones are dropped and returned second.
    fn leases(&self, now_ms: i64) -> (Vec<Lease>, Vec<Lease>);

    /// Opens an SQL session.
    fn session(&self) -> Result<Self::Session, StoreError>;
    /// Runs statements in the session: inside its open transaction if `BEGIN` started one,
    /// otherwise all of them in one transaction of their own. Any failure rolls that
    /// transaction back whole.
    fn execute(
        &self,
        session: &mut Self::Session,
        actor: Actor<'_>,
        statements: &[Statement],
        mode: BulkMode,
        grants: std::sync::Arc<dyn Grants>,
    ) -> Result<Vec<StatementOutcome>, StoreError>;
    /// Ends the session's transaction (rollback) and releases its leases.
    fn end_session(&self, session: &mut Self::Session, session_id: &str);
}
