//! SQL statements from people and programs: `POST /api/sql` and `genkan sql`.
//!
//! Every statement runs under SQLite's authorizer, so what a group may read, write or reshape is
//! decided by the engine for every table the statement really touches (CTEs, subqueries and
//! triggers included), never by looking at the text. genkan's own tables are out of reach.
//!
//! Without `BEGIN`, a call's statements are one transaction on the writer: all or nothing.
//! `BEGIN` gives the session a connection of its own and a transaction that lasts until `COMMIT`
//! or `ROLLBACK` (or the session's end); rows taken with `SELECT … FOR UPDATE` stay leased to the
//! session until then. Reads before the session's first write see the latest committed data
//! (PostgreSQL's default, READ COMMITTED); the first write begins the SQLite transaction that
//! COMMIT ends. From then on SQLite's single-writer rule makes other writers wait (up to the busy
//! timeout), so keep explicit transactions short.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use records::{
    Access, Actor, BulkMode, Code, Datum, Grants, Holder, Lease, Leases, Statement,
    StatementOutcome, StoreError,
};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, params_from_iter};

use super::data::{from_ref, to_value};
use super::plan::{Plan, PlanError, plan};
use super::schema::{install_rules, is_internal};
use super::{Conn, RecordsDb, lock};

/// Rows one query may return; more is refused rather than held in memory.
pub(crate) const MAX_ROWS: usize = 100_000;

/// How long `FOR UPDATE` leases last without activity of the session.
pub(crate) const SQL_LEASE_MS: i64 = 5 * 60 * 1000;

/// An SQL session: a connection of its own while a transaction is open, and the leases its
/// `FOR UPDATE` queries took.
#[derive(Default)]
pub struct SqlSession {
    own: Option<Conn>,
    in_transaction: bool,
    /// Whether the SQLite transaction behind it has begun (at the session's first write).
    writing: bool,
    locked: Vec<(String, i64)>,
    /// Why the open transaction was rolled back behind the client's back (a failed statement,
    /// idle too long): until the client says ROLLBACK (or COMMIT, which reports it), every
    /// statement is refused, so nothing meant for the transaction runs outside it.
    aborted: Option<String>,
}

impl std::fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSession")
            .field("in_transaction", &self.in_transaction)
            .field("locked", &self.locked.len())
            .finish()
    }
}

impl SqlSession {
    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// Whether the session's transaction was rolled back and awaits the client's ROLLBACK.
    pub fn aborted(&self) -> Option<&str> {
        self.aborted.as_deref()
    }
}

/// What the authorizer saw: the reason for a refusal and the tables a statement reshaped.
#[derive(Default)]
struct Seen {
    refusal: Option<String>,
    reshaped: bool,
}

fn authorizer(
    grants: Arc<dyn Grants>,
    leases: Arc<Mutex<Leases>>,
    seen: Arc<Mutex<Seen>>,
    actor_session: String,
    now_ms: i64,
) -> impl for<'r> FnMut(AuthContext<'r>) -> Authorization + Send + 'static {
    move |context: AuthContext<'_>| {
        if context
            .accessor
            .is_some_and(|name| name.starts_with("genkan_"))
        {
            return Authorization::Allow;
        }
        let refuse = |reason: String| {
            lock(&seen).refusal = Some(reason);
            Authorization::Deny
        };
        let check = |access: Access, table: &str| {
            if is_internal(table) {
                return refuse(format!("`{table}` is internal to genkan"));
            }
            if grants.allows(access, table) {
                Authorization::Allow
            } else {
                refuse(format!(
                    "your groups may not {} `{table}`",
                    match access {
                        Access::Read => "read",
                        Access::Write => "change",
                        Access::Schema => "change the structure of",
                    }
                ))
            }
        };
        let schema_write = |table: &str| {
            table.eq_ignore_ascii_case("sqlite_master")
                || table.eq_ignore_ascii_case("sqlite_schema")
        };
        match context.action {
            AuthAction::Select | AuthAction::Recursive => Authorization::Allow,
            // SQLite reads and writes its schema table while carrying out a statement that
            // changes the schema (authorized first); direct access stays refused.
            AuthAction::Read { table_name, .. }
                if schema_write(table_name) && lock(&seen).reshaped =>
            {
                Authorization::Allow
            }
            AuthAction::Read { table_name, .. } => check(Access::Read, table_name),
            AuthAction::Insert { table_name }
            | AuthAction::Delete { table_name }
            | AuthAction::Update { table_name, .. } => {
                if schema_write(table_name) {
                    Authorization::Allow
                } else {
                    check(Access::Write, table_name)
                }
            }
            AuthAction::CreateTable { table_name }
            | AuthAction::CreateIndex { table_name, .. }
            | AuthAction::DropIndex { table_name, .. }
            | AuthAction::CreateView {
                view_name: table_name,
            }
            | AuthAction::DropView {
                view_name: table_name,
            }
            | AuthAction::Analyze { table_name } => {
                lock(&seen).reshaped = true;
                check(Access::Schema, table_name)
            }
            // Dropping or reshaping (renaming above all) a table whose records are leased
            // would let the leases stop guarding those rows: refused until they are released.
            AuthAction::DropTable { table_name } | AuthAction::AlterTable { table_name, .. } => {
                lock(&seen).reshaped = true;
                let held = lock(&leases).list(now_ms).into_iter().find(|lease| {
                    lease.table == table_name && lease.holder.session != actor_session
                });
                match held {
                    Some(lease) => refuse(format!(
                        "`{table_name}` has records being edited (record {} by {})",
                        lease.record_id, lease.holder.user
                    )),
                    None => check(Access::Schema, table_name),
                }
            }
            AuthAction::Function { function_name }
                if function_name.eq_ignore_ascii_case("genkan_may_write")
                    || function_name.eq_ignore_ascii_case("load_extension") =>
            {
                refuse(format!("function `{function_name}` is not available"))
            }
            AuthAction::Function { .. } => Authorization::Allow,
            AuthAction::Pragma { pragma_name, .. } => refuse(format!(
                "PRAGMA {pragma_name} is not available through genkan"
            )),
            AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
                refuse("transactions are BEGIN, COMMIT and ROLLBACK statements of their own".into())
            }
            _ => refuse("this kind of statement is not available through genkan".into()),
        }
    }
}

fn sql_error(index: usize, code: Code, message: impl Into<String>) -> StoreError {
    StoreError::Sql {
        index,
        message: message.into(),
        code,
    }
}

fn engine_error(index: usize, error: &rusqlite::Error, seen: &Mutex<Seen>) -> StoreError {
    if let Some(reason) = lock(seen).refusal.take() {
        return sql_error(index, Code::InsufficientPrivileges, reason);
    }
    let code = match super::data::code_of(error) {
        Code::Unknown => Code::SqlError,
        other => other,
    };
    sql_error(index, code, error.to_string())
}

struct Run<'a> {
    db: &'a RecordsDb,
    actor: Actor<'a>,
    mode: BulkMode,
    grants: Arc<dyn Grants>,
}

impl Run<'_> {
    fn statement(
        &self,
        conn: &mut Conn,
        index: usize,
        plan: &Plan,
        params: &[Datum],
        session: &mut SqlSession,
        reshaped: &mut bool,
    ) -> Result<StatementOutcome, StoreError> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        conn.act_for(self.actor);
        conn.connection
            .authorizer(Some(authorizer(
                Arc::clone(&self.grants),
                Arc::clone(&self.db.leases),
                Arc::clone(&seen),
                self.actor.session.to_owned(),
                self.actor.now_ms,
            )))
            .map_err(|error| engine_error(index, &error, &seen))?;
        let result = self.statement_authorized(conn, index, plan, params, session, &seen);
        let _ = conn
            .connection
            .authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        let connection = &conn.connection;
        if lock(&seen).reshaped && result.is_ok() {
            *reshaped = true;
            install_rules(connection, None)
                .map_err(|error| sql_error(index, Code::SqlError, error.to_string()))?;
        }
        result
    }

    /// A call of plain queries outside a transaction: on a read-only connection, in one read
    /// transaction (so its statements see one snapshot), never waiting for the writer. A
    /// statement wrongly taken for a query fails there as "readonly database" and changes
    /// nothing.
    fn queries(
        &self,
        plans: &[Plan],
        statements: &[Statement],
        session: &mut SqlSession,
    ) -> Result<Vec<StatementOutcome>, StoreError> {
        let mut reader = self.db.reader();
        // Not a `ReadSnapshot`: the statements below need the reader mutably.
        reader
            .connection
            .execute_batch("BEGIN")
            .map_err(|error| sql_error(1, Code::FileLocked, error.to_string()))?;
        let mut reshaped = false;
        let result = plans
            .iter()
            .zip(statements)
            .enumerate()
            .map(|(offset, (plan, statement))| {
                self.statement(
                    &mut reader,
                    offset + 1,
                    plan,
                    &statement.params,
                    session,
                    &mut reshaped,
                )
            })
            .collect();
        let _ = reader.connection.execute_batch("COMMIT");
        result
    }

    fn statement_authorized(
        &self,
        conn: &Conn,
        index: usize,
        plan: &Plan,
        params: &[Datum],
        session: &mut SqlSession,
        seen: &Mutex<Seen>,
    ) -> Result<StatementOutcome, StoreError> {
        let connection = &conn.connection;
        match plan {
            Plan::ForUpdate {
                sql,
                rowids_sql,
                skip_params,
                table,
            } => {
                let ids = rowids(
                    connection,
                    rowids_sql,
                    params.get(*skip_params..).unwrap_or(&[]),
                )
                .map_err(|error| engine_error(index, &error, seen))?;
                let locked = self.lease_all(table, &ids)?;
                session
                    .locked
                    .extend(ids.iter().map(|id| (table.clone(), *id)));
                let mut outcome = query(connection, sql, params)
                    .map_err(|error| engine_error(index, &error, seen))?;
                if outcome.rows.len() > MAX_ROWS {
                    return Err(too_many(index));
                }
                outcome.locked = locked;
                Ok(outcome)
            }
            Plan::Run { sql, .. } => {
                let mut statement = connection
                    .prepare(sql)
                    .map_err(|error| engine_error(index, &error, seen))?;
                let mut outcome = if statement.column_count() > 0 {
                    let outcome = rows(&mut statement, params)
                        .map_err(|error| engine_error(index, &error, seen))?;
                    if outcome.rows.len() > MAX_ROWS {
                        return Err(too_many(index));
                    }
                    outcome
                } else {
                    let values: Vec<_> = params.iter().map(to_value).collect();
                    let changes = statement
                        .execute(params_from_iter(&values))
                        .map_err(|error| engine_error(index, &error, seen))?;
                    StatementOutcome {
                        changes: changes as u64,
                        ..StatementOutcome::default()
                    }
                };
                let mut blocked = conn.take_blocked();
                let mut unique = HashSet::new();
                blocked.retain(|lease| unique.insert((lease.table.clone(), lease.record_id)));
                if !blocked.is_empty() {
                    match self.mode {
                        BulkMode::Atomic => return Err(StoreError::Locked(blocked)),
                        BulkMode::SkipLocked => outcome.skipped = blocked,
                    }
                }
                Ok(outcome)
            }
            Plan::Begin | Plan::Commit | Plan::Rollback => Err(sql_error(
                index,
                Code::ParameterInvalid,
                "transaction statements are handled by the session",
            )),
        }
    }

    /// Leases every row to the session, or none: a conflict names all rows held by others.
    fn lease_all(&self, table: &str, ids: &[i64]) -> Result<Vec<Lease>, StoreError> {
        let mut leases = self.db.leases();
        let now = self.actor.now_ms;
        let conflicts: Vec<Lease> = ids
            .iter()
            .filter_map(|id| {
                leases
                    .blocking(table, *id, self.actor.session, now)
                    .cloned()
            })
            .collect();
        if !conflicts.is_empty() {
            return Err(StoreError::Locked(conflicts));
        }
        let holder = Holder {
            user: self.actor.user.to_owned(),
            session: self.actor.session.to_owned(),
        };
        Ok(ids
            .iter()
            .filter_map(|id| leases.acquire(table, *id, &holder, now, SQL_LEASE_MS).ok())
            .collect())
    }
}

fn too_many(index: usize) -> StoreError {
    sql_error(
        index,
        Code::ParameterInvalid,
        format!("the query returns more than {MAX_ROWS} rows; add LIMIT/OFFSET"),
    )
}

fn rowids(connection: &Connection, sql: &str, params: &[Datum]) -> rusqlite::Result<Vec<i64>> {
    let values: Vec<_> = params.iter().map(to_value).collect();
    let mut statement = connection.prepare(sql)?;
    let ids = statement.query_map(params_from_iter(&values), |row| row.get::<_, i64>(0))?;
    ids.collect()
}

fn query(
    connection: &Connection,
    sql: &str,
    params: &[Datum],
) -> rusqlite::Result<StatementOutcome> {
    let mut statement = connection.prepare(sql)?;
    rows(&mut statement, params)
}

fn rows(
    statement: &mut rusqlite::Statement<'_>,
    params: &[Datum],
) -> rusqlite::Result<StatementOutcome> {
    let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let width = columns.len();
    let values: Vec<_> = params.iter().map(to_value).collect();
    let mut cursor = statement.query(params_from_iter(&values))?;
    let mut rows = Vec::new();
    while let Some(row) = cursor.next()? {
        if rows.len() > MAX_ROWS {
            break;
        }
        let mut values = Vec::with_capacity(width);
        for column in 0..width {
            values.push(from_ref(row.get_ref(column)?));
        }
        rows.push(values);
    }
    Ok(StatementOutcome {
        columns,
        rows,
        ..StatementOutcome::default()
    })
}

impl RecordsDb {
    /// Runs statements for the session (see the module documentation).
    pub fn execute_sql(
        &self,
        session: &mut SqlSession,
        actor: Actor<'_>,
        statements: &[Statement],
        mode: BulkMode,
        grants: Arc<dyn Grants>,
    ) -> Result<Vec<StatementOutcome>, StoreError> {
        let plans = statements
            .iter()
            .enumerate()
            .map(|(index, statement)| {
                plan(&statement.sql).map_err(|error| {
                    let code = match error {
                        PlanError::Refused(_) => Code::InsufficientPrivileges,
                        PlanError::Empty | PlanError::Several => Code::ParameterInvalid,
                    };
                    sql_error(index + 1, code, error.to_string())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let run = Run {
            db: self,
            actor,
            mode,
            grants,
        };
        let reads_only = !session.in_transaction
            && session.aborted.is_none()
            && plans
                .iter()
                .all(|plan| matches!(plan, Plan::Run { query: true, .. }));
        if reads_only {
            return run.queries(&plans, statements, session);
        }
        let mut outcomes = Vec::with_capacity(plans.len());
        let mut reshaped = false;
        let mut implicit: Option<std::sync::MutexGuard<'_, Conn>> = None;
        let mut autocommit_leases: Vec<(String, i64)> = Vec::new();
        let result = (|| -> Result<(), StoreError> {
            for (offset, (plan, statement)) in plans.iter().zip(statements).enumerate() {
                let index = offset + 1;
                if let Some(reason) = session.aborted.clone() {
                    match plan {
                        Plan::Rollback => {
                            session.aborted = None;
                            outcomes.push(StatementOutcome::default());
                            continue;
                        }
                        Plan::Commit => {
                            session.aborted = None;
                            return Err(sql_error(
                                index,
                                Code::FileLocked,
                                format!(
                                    "nothing was committed: the transaction had been rolled back ({reason})"
                                ),
                            ));
                        }
                        _ => {
                            return Err(sql_error(
                                index,
                                Code::FileLocked,
                                format!(
                                    "the transaction was rolled back ({reason}); send ROLLBACK, then start again"
                                ),
                            ));
                        }
                    }
                }
                match plan {
                    Plan::Begin => {
                        if session.in_transaction {
                            return Err(sql_error(
                                index,
                                Code::ParameterInvalid,
                                "a transaction is already open",
                            ));
                        }
                        if let Some(writer) = implicit.take() {
                            writer.connection.execute_batch("COMMIT").map_err(|error| {
                                sql_error(index, Code::SqlError, error.to_string())
                            })?;
                        }
                        if session.own.is_none() {
                            session.own = Some(self.new_connection().map_err(|error| {
                                sql_error(index, Code::Unknown, error.to_string())
                            })?);
                        }
                        session.in_transaction = true;
                        session.writing = false;
                        outcomes.push(StatementOutcome::default());
                    }
                    Plan::Commit | Plan::Rollback => {
                        if !session.in_transaction {
                            return Err(sql_error(
                                index,
                                Code::ParameterInvalid,
                                "no transaction is open",
                            ));
                        }
                        let verb = if *plan == Plan::Commit {
                            "COMMIT"
                        } else {
                            "ROLLBACK"
                        };
                        if let Some(own) = session.own.as_ref().filter(|_| session.writing) {
                            own.connection.execute_batch(verb).map_err(|error| {
                                sql_error(index, Code::FileLocked, error.to_string())
                            })?;
                        }
                        session.in_transaction = false;
                        session.writing = false;
                        self.release(actor.session, std::mem::take(&mut session.locked));
                        outcomes.push(StatementOutcome::default());
                    }
                    _ => {
                        let before = session.locked.len();
                        let outcome = if session.in_transaction {
                            let reads_only = matches!(
                                plan,
                                Plan::ForUpdate { .. } | Plan::Run { query: true, .. }
                            );
                            if !reads_only && !session.writing {
                                if let Some(own) = &session.own {
                                    own.connection.execute_batch("BEGIN IMMEDIATE").map_err(
                                        |error| {
                                            sql_error(index, Code::FileLocked, error.to_string())
                                        },
                                    )?;
                                }
                                session.writing = true;
                            }
                            let mut own = session.own.take();
                            let outcome = match &mut own {
                                Some(conn) => run.statement(
                                    conn,
                                    index,
                                    plan,
                                    &statement.params,
                                    session,
                                    &mut reshaped,
                                ),
                                None => Err(sql_error(
                                    index,
                                    Code::Unknown,
                                    "the session lost its connection",
                                )),
                            };
                            session.own = own;
                            outcome?
                        } else {
                            if implicit.is_none() {
                                let writer = self.writer();
                                writer.connection.execute_batch("BEGIN IMMEDIATE").map_err(
                                    |error| sql_error(index, Code::FileLocked, error.to_string()),
                                )?;
                                implicit = Some(writer);
                            }
                            let writer = implicit
                                .as_mut()
                                .ok_or_else(|| sql_error(index, Code::Unknown, "no writer"))?;
                            let outcome = run.statement(
                                writer,
                                index,
                                plan,
                                &statement.params,
                                session,
                                &mut reshaped,
                            );
                            autocommit_leases.extend(session.locked.drain(before..));
                            outcome?
                        };
                        outcomes.push(outcome);
                    }
                }
            }
            if let Some(writer) = implicit.take() {
                writer.connection.execute_batch("COMMIT").map_err(|error| {
                    sql_error(statements.len(), Code::FileLocked, error.to_string())
                })?;
            }
            Ok(())
        })();
        if let Some(writer) = implicit.take() {
            let _ = writer.connection.execute_batch("ROLLBACK");
        }
        self.release(actor.session, autocommit_leases);
        if let (Err(error), true) = (&result, session.in_transaction) {
            let reason = match error {
                StoreError::Sql { index, .. } => format!("statement {index} of that call failed"),
                _ => "a statement failed".to_owned(),
            };
            self.abort_sql_session(session, actor.session, &reason);
        }
        if reshaped {
            self.schema_changed();
        }
        result.map(|()| outcomes)
    }

    fn release(&self, session_id: &str, taken: Vec<(String, i64)>) {
        if taken.is_empty() {
            return;
        }
        let mut leases = self.leases();
        for (table, id) in taken {
            leases.release(&table, id, session_id);
        }
    }

    /// Rolls back the session's open transaction, releases its leases, and refuses what the
    /// client sends next until it says ROLLBACK (an idle transaction holds SQLite's one write
    /// lock, so it cannot be allowed to stay open).
    pub fn abort_sql_session(&self, session: &mut SqlSession, session_id: &str, reason: &str) {
        if session.in_transaction {
            self.end_sql_session(session, session_id);
            session.aborted = Some(reason.to_owned());
        }
    }

    /// Rolls back the session's open transaction and releases its `FOR UPDATE` leases.
    pub fn end_sql_session(&self, session: &mut SqlSession, session_id: &str) {
        if session.writing
            && let Some(own) = &session.own
        {
            let _ = own.connection.execute_batch("ROLLBACK");
        }
        session.in_transaction = false;
        session.writing = false;
        session.own = None;
        self.release(session_id, std::mem::take(&mut session.locked));
    }
}
