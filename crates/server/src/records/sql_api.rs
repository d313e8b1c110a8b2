//! `POST /api/sql`: SQL statements with parameters, run as one transaction (or inside the
//! session's open `BEGIN`), answered in the Data API's envelope with FileMaker codes.
//!
//! Who is asking: a Data API token (`Authorization: Bearer`; the session's SQL transaction and
//! `FOR UPDATE` leases carry over between calls), `Authorization: Basic` for one call (a
//! transaction may not outlive it), or a browser session with its CSRF value in `X-CSRF-Token`
//! (the records page). The policy then decides the request, and the SQL engine's authorizer
//! applies the records grants to every table each statement touches.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use gateway::gate::Identity;
use records::{Actor, BulkMode, Code, Datum, Statement, StatementOutcome, Store, StoreError};
use serde_json::{Map, Value, json};
use store_sqlite::SqlSession;

use super::data_api::{Call, bearer_token, check_basic};
use super::envelope::{fail, http_error, lease_json, ok, store_error};
use super::{ApiSession, Records};
use crate::clock;

/// Statements one call may carry.
const MAX_STATEMENTS: usize = 100_000;
/// Largest body read (an import sends many rows at once).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Who runs the statements and where their SQL session lives.
enum Caller {
    /// A Data API session.
    Token(Arc<ApiSession>),
    /// One call with a password: a session of its own that ends with the call.
    OneCall {
        user: String,
        groups: Vec<String>,
        lease_id: String,
    },
    /// A browser session (the records page).
    Browser {
        user: String,
        groups: Vec<String>,
        lease_id: String,
        sql: Arc<Mutex<SqlSession>>,
    },
}

impl Caller {
    fn user(&self) -> &str {
        match self {
            Self::Token(session) => &session.user,
            Self::OneCall { user, .. } | Self::Browser { user, .. } => user,
        }
    }

    fn groups(&self) -> &[String] {
        match self {
            Self::Token(session) => &session.groups,
            Self::OneCall { groups, .. } | Self::Browser { groups, .. } => groups,
        }
    }

    fn lease_id(&self) -> &str {
        match self {
            Self::Token(session) => &session.lease_id,
            Self::OneCall { lease_id, .. } | Self::Browser { lease_id, .. } => lease_id,
        }
    }
}

/// What the body asks for.
struct Batch {
    database: Option<String>,
    statements: Vec<Statement>,
    mode: BulkMode,
}

fn parse_params(value: Option<&Value>, index: usize) -> Result<Vec<Datum>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(format!("statement {index}: `params` must be an array"));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Null => Ok(Datum::Null),
            Value::Bool(flag) => Ok(Datum::Integer(i64::from(*flag))),
            Value::String(text) => Ok(Datum::Text(text.clone())),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => Ok(Datum::Integer(integer)),
                None => number
                    .as_f64()
                    .map(Datum::Real)
                    .ok_or_else(|| format!("statement {index}: a number is out of range")),
            },
            _ => Err(format!(
                "statement {index}: parameters are text, numbers, booleans or null"
            )),
        })
        .collect()
}

fn parse_batch(body: &Map<String, Value>) -> Result<Batch, (Code, String)> {
    let invalid = |text: String| (Code::ParameterInvalid, text);
    let database = match body.get("database") {
        None => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err(invalid("`database` must be a string".into())),
    };
    let mode = match body.get("mode").map(Value::as_str) {
        None | Some(Some("atomic")) => BulkMode::Atomic,
        Some(Some("skip_locked")) => BulkMode::SkipLocked,
        Some(_) => return Err(invalid("`mode` is \"atomic\" or \"skip_locked\"".into())),
    };
    let mut statements = Vec::new();
    match (body.get("sql"), body.get("statements")) {
        (Some(Value::String(sql)), None) => statements.push(Statement {
            sql: sql.clone(),
            params: parse_params(body.get("params"), 1).map_err(invalid)?,
        }),
        (None, Some(Value::Array(items))) => {
            if items.len() > MAX_STATEMENTS {
                return Err(invalid(format!(
                    "at most {MAX_STATEMENTS} statements per call"
                )));
            }
            for (offset, item) in items.iter().enumerate() {
                let index = offset + 1;
                let (sql, params) = match item {
                    Value::String(sql) => (sql.clone(), Vec::new()),
                    Value::Object(object) => match object.get("sql") {
                        Some(Value::String(sql)) => (
                            sql.clone(),
                            parse_params(object.get("params"), index).map_err(invalid)?,
                        ),
                        _ => {
                            return Err(invalid(format!(
                                "statement {index}: `sql` must be a string"
                            )));
                        }
                    },
                    _ => {
                        return Err(invalid(format!(
                            "statement {index}: give {{\"sql\": …, \"params\": […]}} or a string"
                        )));
                    }
                };
                statements.push(Statement { sql, params });
            }
        }
        (None, None) => {
            return Err((
                Code::ParameterMissing,
                "give `sql` (one statement) or `statements` (a list)".into(),
            ));
        }
        _ => {
            return Err(invalid(
                "give either `sql` (a string) or `statements` (a list), not both".into(),
            ));
        }
    }
    if statements.is_empty() {
        return Err((Code::ParameterMissing, "`statements` is empty".into()));
    }
    Ok(Batch {
        database,
        statements,
        mode,
    })
}

/// An SQL value as JSON: numbers as numbers, NULL as null, bytes as hex text.
fn sql_json(datum: &Datum) -> Value {
    match datum {
        Datum::Null => Value::Null,
        Datum::Integer(number) => Value::from(*number),
        Datum::Real(number) => serde_json::Number::from_f64(*number)
            .map_or_else(|| Value::String(number.to_string()), Value::Number),
        Datum::Text(text) => Value::String(text.clone()),
        Datum::Blob(bytes) => {
            Value::String(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
        }
    }
}

fn outcome_json(outcome: &StatementOutcome) -> Value {
    let mut object = Map::new();
    if !outcome.columns.is_empty() {
        object.insert("columns".into(), json!(outcome.columns));
        let rows: Vec<Value> = outcome
            .rows
            .iter()
            .map(|row| Value::Array(row.iter().map(sql_json).collect()))
            .collect();
        object.insert("rows".into(), Value::Array(rows));
    }
    object.insert("changes".into(), json!(outcome.changes));
    if !outcome.skipped.is_empty() {
        object.insert(
            "skipped".into(),
            Value::Array(
                outcome
                    .skipped
                    .iter()
                    .map(|lease| {
                        let mut entry = lease_json(lease);
                        if let Value::Object(map) = &mut entry {
                            map.insert("reason".into(), json!("record in use by another user"));
                        }
                        entry
                    })
                    .collect(),
            ),
        );
    }
    if !outcome.locked.is_empty() {
        object.insert(
            "locked".into(),
            Value::Array(outcome.locked.iter().map(lease_json).collect()),
        );
    }
    Value::Object(object)
}

async fn caller(records: &Arc<Records>, call: &Call) -> Result<(Caller, String), Response> {
    let now = clock::timestamp_now().as_millisecond();
    if let Some(token) = bearer_token(&call.headers) {
        let session = records
            .session(token, now)
            .ok_or_else(|| fail(Code::InvalidToken, None))?;
        let database = session.database.clone();
        return Ok((Caller::Token(session), database));
    }
    let is_basic = call
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.len() > 6 && value[..6].eq_ignore_ascii_case("basic "));
    if is_basic {
        let (user, groups) = check_basic(call).await?;
        let lease_id = format!(
            "sql-{}",
            crate::auth::random_token()
                .map_err(|_| fail(Code::Unknown, None))?
                .get(..16)
                .unwrap_or("")
        );
        return Ok((
            Caller::OneCall {
                user,
                groups,
                lease_id,
            },
            String::new(),
        ));
    }
    if let Some(session) = records.auth.session(&call.headers) {
        let given = call
            .headers
            .get("X-CSRF-Token")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if session.csrf_refusal(given).is_some() {
            return Err(http_error(
                StatusCode::FORBIDDEN,
                Code::InsufficientPrivileges,
                "missing or wrong X-CSRF-Token",
            ));
        }
        let sql = records.web_sql_session(&session.token_hash);
        return Ok((
            Caller::Browser {
                user: session.row.user.clone(),
                groups: session.row.groups.clone(),
                lease_id: format!("web-{}", &session.token_hash[..16]),
                sql,
            },
            String::new(),
        ));
    }
    Err(fail(
        Code::InvalidToken,
        Some("sign in: a Data API token (Bearer), Basic credentials or a browser session"),
    ))
}

/// `POST /api/sql`
pub async fn handle(
    State(records): State<Arc<Records>>,
    identity: Option<Extension<Identity>>,
    request: Request<Body>,
) -> Response {
    let source = identity.map_or(
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        |Extension(identity)| identity.source,
    );
    let (parts, body) = request.into_parts();
    if parts.method != http::Method::POST {
        return http_error(StatusCode::METHOD_NOT_ALLOWED, Code::Unknown, "use POST");
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return http_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::ParameterInvalid,
            "the body is larger than 64 MiB",
        );
    };
    let call = Call::new(Arc::clone(&records), parts, body, source);
    let (caller, token_database) = match caller(&records, &call).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let host = call
        .headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if let Err(reason) = records.auth.permits(
        caller.user(),
        caller.groups(),
        source,
        "POST",
        host,
        "/api/sql",
    ) {
        return fail(Code::InsufficientPrivileges, Some(&reason));
    }
    if !records
        .auth
        .has_capability(caller.groups(), policy::Capability::Sql)
    {
        return fail(
            Code::InsufficientPrivileges,
            Some("the policy does not give your groups the `sql` capability"),
        );
    }
    let body = match call.json_body() {
        Ok(body) => body,
        Err(response) => return response,
    };
    let batch = match parse_batch(&body) {
        Ok(batch) => batch,
        Err((code, detail)) => return fail(code, Some(&detail)),
    };
    let database = match (&caller, batch.database.as_deref()) {
        (Caller::Token(_), Some(named)) if named != token_database => {
            return fail(
                Code::InvalidToken,
                Some("the token belongs to another database"),
            );
        }
        (Caller::Token(_), _) => token_database,
        (_, Some(named)) => named.to_owned(),
        (_, None) => match records.database_names().as_slice() {
            [only] => only.clone(),
            _ => return fail(Code::ParameterMissing, Some("name the `database`")),
        },
    };
    let Some(db) = records.database(&database) else {
        return fail(
            Code::UnableToOpenFile,
            Some(&format!("no database `{database}`")),
        );
    };
    let grants = records.grants_for(caller.groups(), &database);
    let count = batch.statements.len();
    let span =
        tracing::info_span!("sql", user = %caller.user(), database = %database, statements = count);
    let result = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let now_ms = clock::timestamp_now().as_millisecond();
        let actor = Actor { user: caller.user(), session: caller.lease_id(), now_ms };
        let run = |sql: &mut SqlSession| db.execute(sql, actor, &batch.statements, batch.mode, grants.clone());
        match &caller {
            Caller::Token(session) => {
                let mut state = super::lock(&session.state);
                let result = run(&mut state.sql);
                (result, state.sql.in_transaction())
            }
            Caller::Browser { sql, .. } => {
                let mut sql = super::lock(sql);
                let result = run(&mut sql);
                (result, sql.in_transaction())
            }
            Caller::OneCall { lease_id, .. } => {
                let mut sql = SqlSession::default();
                let mut result = run(&mut sql);
                if sql.in_transaction() {
                    db.end_session(&mut sql, lease_id);
                    result = Err(StoreError::fm(
                        Code::ParameterInvalid,
                        "BEGIN without COMMIT: a transaction across calls needs a Data API token (Bearer); nothing was kept",
                    ));
                }
                (result, false)
            }
        }
    })
    .await;
    match result {
        Ok((Ok(outcomes), in_transaction)) => ok(json!({
            "results": outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
            "inTransaction": in_transaction,
        })),
        Ok((Err(error), _)) => sql_error(&error),
        Err(error) => {
            tracing::error!(%error, "SQL call failed");
            fail(Code::Unknown, None)
        }
    }
}

fn sql_error(error: &StoreError) -> Response {
    match error {
        StoreError::Sql {
            index,
            message,
            code,
        } => super::envelope::fail_with(
            *code,
            json!({"statement": index}),
            &format!("statement {index}: {message}"),
        ),
        other => store_error(other),
    }
}
