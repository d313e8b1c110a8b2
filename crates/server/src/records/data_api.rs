//! The FileMaker Data API under `/fmi/data/{v1,v2,vLatest}/…`.
//!
//! One handler reads the path itself rather than through the router, because real clients add
//! trailing slashes (`…/sessions/`), encode spaces in layout names as `%20`, and expect a
//! FileMaker envelope even for unknown paths. Every call other than productInfo, the database
//! list and logout must carry a token (`Authorization: Bearer …`, or the
//! `X-FM-Data-Access-Token` header); the policy then decides the request like any other route,
//! and the records grants decide what the account may do to the layout's table.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use gateway::gate::Identity;
use records::{Code, Store};
use serde_json::{Value, json};
use store_sqlite::RecordsDb;

use super::envelope::{fail, http_error, ok, store_error};
use super::{ApiSession, Records, fm_records};
use crate::auth::password_check::PasswordCheck;
use crate::clock;

/// Largest request body the Data API reads.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Everything a Data API call needs, read once from the request.
pub struct Call {
    /// The service.
    pub records: Arc<Records>,
    /// HTTP method.
    pub method: Method,
    /// Path segments after the version, percent-decoded, empty ones dropped.
    pub segments: Vec<String>,
    /// The raw query string.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Client address.
    pub source: IpAddr,
    /// The body.
    pub body: bytes::Bytes,
    path: String,
}

impl Call {
    /// A call from request parts (no path segments read yet).
    pub fn new(
        records: Arc<Records>,
        parts: http::request::Parts,
        body: bytes::Bytes,
        source: IpAddr,
    ) -> Self {
        Self {
            records,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            method: parts.method,
            headers: parts.headers,
            segments: Vec::new(),
            source,
            body,
        }
    }

    /// The body as JSON: an empty body is `{}`; anything else must be a JSON object (1710).
    pub fn json_body(&self) -> Result<serde_json::Map<String, Value>, Response> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Map::new());
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(_) => Err(fail(
                Code::ParameterInvalid,
                Some("the body must be a JSON object"),
            )),
            Err(error) => Err(fail(Code::InvalidJson, Some(&error.to_string()))),
        }
    }

    fn host(&self) -> &str {
        self.headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

/// Percent-decodes a path segment; `None` if it is not UTF-8 afterwards.
fn decode_segment(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

/// `ANY /fmi/data/*`
pub async fn handle(
    State(records): State<Arc<Records>>,
    identity: Option<Extension<Identity>>,
    request: Request<Body>,
) -> Response {
    let source = identity.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |Extension(identity)| {
        identity.source
    });
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return http_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::ParameterInvalid,
            "the body is larger than 8 MiB",
        );
    };
    let call = Call::new(records, parts, body, source);
    let Some(rest) = call.path.strip_prefix("/fmi/data/") else {
        return unknown_path();
    };
    let mut raw = rest.split('/').filter(|segment| !segment.is_empty());
    match raw.next() {
        Some("v1" | "v2" | "vLatest") => {}
        _ => return unknown_path(),
    }
    let Some(segments) = raw.map(decode_segment).collect::<Option<Vec<_>>>() else {
        return unknown_path();
    };
    let call = Call { segments, ..call };
    route(call).await
}

fn unknown_path() -> Response {
    http_error(
        StatusCode::NOT_FOUND,
        Code::Unknown,
        "no such Data API path: /fmi/data/{v1|v2|vLatest}/…",
    )
}

fn wrong_method() -> Response {
    http_error(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Unknown,
        "this path does not take that method",
    )
}

async fn route(call: Call) -> Response {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["productInfo"] if call.method == Method::GET => product_info(),
        ["databases"] if call.method == Method::GET => databases(&call).await,
        ["validateSession"] if call.method == Method::GET => match authenticate(&call, None) {
            Ok(_) => ok(json!({"isSessionInUse": true})),
            Err(response) => response,
        },
        ["databases", database, "sessions"] if call.method == Method::POST => {
            let database = (*database).to_owned();
            login(&call, &database).await
        }
        ["databases", _, "sessions", token] if call.method == Method::DELETE => {
            let now = clock::timestamp_now().as_millisecond();
            if call.records.close_session(token, now) {
                ok(json!({}))
            } else {
                fail(Code::InvalidToken, None)
            }
        }
        ["productInfo"]
        | ["databases"]
        | ["validateSession"]
        | ["databases", _, "sessions", ..] => wrong_method(),
        ["databases", database, ..] => {
            let database = (*database).to_owned();
            let session = match authenticate(&call, Some(&database)) {
                Ok(session) => session,
                Err(response) => return response,
            };
            if let Err(reason) = call.records.auth.permits(
                &session.user,
                &session.groups,
                call.source,
                call.method.as_str(),
                call.host(),
                &call.path,
            ) {
                return fail(Code::InsufficientPrivileges, Some(&reason));
            }
            let Some(db) = call.records.database(&database) else {
                return fail(
                    Code::UnableToOpenFile,
                    Some(&format!("no database `{database}`")),
                );
            };
            fm_records::dispatch(&call, &session, db).await
        }
        _ => unknown_path(),
    }
}

fn product_info() -> Response {
    ok(json!({"productInfo": {
        "name": "genkan FileMaker Data API",
        "buildDate": "12/03/2026",
        "version": env!("CARGO_PKG_VERSION"),
        "dateFormat": "MM/dd/yyyy",
        "timeFormat": "HH:mm:ss",
        "timeStampFormat": "MM/dd/yyyy HH:mm:ss",
    }}))
}

/// `GET /databases`: open to everyone, like FileMaker Server without "filter databases"; if
/// Basic credentials come along they must be right.
async fn databases(call: &Call) -> Response {
    if basic_credentials(&call.headers).is_some()
        && let Err(response) = check_basic(call).await
    {
        return response;
    }
    let names: Vec<Value> = call
        .records
        .database_names()
        .into_iter()
        .map(|name| json!({"name": name}))
        .collect();
    ok(json!({"databases": names}))
}

/// The name and password of a `Basic` Authorization header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Checks Basic credentials; the account must be able to sign in without a second factor
/// (programs cannot type one, so accounts that need one are refused here).
pub async fn check_basic(call: &Call) -> Result<(String, Vec<String>), Response> {
    let Some((user, password)) = basic_credentials(&call.headers) else {
        return Err(fail(
            Code::InvalidAccount,
            Some("send the account as Authorization: Basic"),
        ));
    };
    let source = call.source.to_string();
    let auth = Arc::clone(&call.records.auth);
    match auth.check_password(&user, password, &source).await {
        PasswordCheck::Accepted(row) => {
            if row.must_change_password || auth.requires_second_factor(&row.groups) {
                auth.audit(
                    "login_refused",
                    Some(&user),
                    Some(&source),
                    Some(&call.path),
                    "refused",
                    None,
                    "Data API: the account must change its password or use a second factor first",
                );
                return Err(fail(
                    Code::InvalidAccount,
                    Some(
                        "this account must sign in on the web page first (new password or second factor)",
                    ),
                ));
            }
            auth.login_succeeded(&user);
            Ok((row.name, row.groups))
        }
        PasswordCheck::SourceBlocked => Err(fail(Code::TooManyLogins, None)),
        PasswordCheck::Refused => Err(fail(Code::InvalidAccount, None)),
    }
}

async fn login(call: &Call, database: &str) -> Response {
    if let Err(response) = call.json_body() {
        return response;
    }
    let (user, groups) = match check_basic(call).await {
        Ok(account) => account,
        Err(response) => return response,
    };
    if let Err(reason) =
        call.records
            .auth
            .permits(&user, &groups, call.source, "POST", call.host(), &call.path)
    {
        return fail(Code::InsufficientPrivileges, Some(&reason));
    }
    if call.records.database(database).is_none() {
        return fail(
            Code::UnableToOpenFile,
            Some(&format!("no database `{database}`")),
        );
    }
    let now = clock::timestamp_now().as_millisecond();
    let opened = match call.records.open_session(&user, &groups, database, now) {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!("Data API session: {error:#}");
            return fail(Code::Unknown, None);
        }
    };
    let Some((token, _)) = opened else {
        return fail(Code::TooManySessions, None);
    };
    let source = call.source.to_string();
    call.records.auth.audit(
        "data_api_login",
        Some(&user),
        Some(&source),
        Some(database),
        "ok",
        None,
        "",
    );
    let mut response = ok(json!({"token": token}));
    if let Ok(value) = HeaderValue::from_str(&token) {
        response
            .headers_mut()
            .insert("X-FM-Data-Access-Token", value);
    }
    response
}

/// The token of a call: `Authorization: Bearer …`, else `X-FM-Data-Access-Token`.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    bearer.or_else(|| {
        headers
            .get("X-FM-Data-Access-Token")
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    })
}

/// The live session of the call's token (952 otherwise), for `database` if named.
fn authenticate(call: &Call, database: Option<&str>) -> Result<Arc<ApiSession>, Response> {
    let Some(token) = bearer_token(&call.headers) else {
        return Err(fail(
            Code::InvalidToken,
            Some("no token: log in with POST …/sessions and send Authorization: Bearer"),
        ));
    };
    let now = clock::timestamp_now().as_millisecond();
    let session = call
        .records
        .session(token, now)
        .ok_or_else(|| fail(Code::InvalidToken, None))?;
    if database.is_some_and(|database| database != session.database) {
        return Err(fail(
            Code::InvalidToken,
            Some("the token belongs to another database"),
        ));
    }
    Ok(session)
}

/// Runs blocking store work off the async threads.
pub async fn blocking(
    db: Arc<RecordsDb>,
    work: impl FnOnce(&RecordsDb) -> Response + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || work(&db)).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(%error, "records operation failed");
            fail(Code::Unknown, None)
        }
    }
}

/// The store's answer, or its error as the envelope says.
pub fn answer<T>(
    result: Result<T, records::StoreError>,
    shape: impl FnOnce(T) -> Value,
) -> Response {
    match result {
        Ok(value) => ok(shape(value)),
        Err(error) => store_error(&error),
    }
}

/// The layout of that name (105 if there is none).
pub fn layout_of(db: &RecordsDb, name: &str) -> Result<records::Layout, Response> {
    db.layout(name).map_err(|error| store_error(&error))
}
