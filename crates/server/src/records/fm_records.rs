//! The Data API calls inside one database: layouts and their metadata, records (list, get,
//! create, edit with modId, delete, duplicate), `_find`, globals, and genkan's edit leases
//! (`…/records/{id}/lock`, `…/locks`), which FileMaker clients never call but people's tools
//! and the records page do.

use std::sync::Arc;

use axum::http::Method;
use axum::response::Response;
use records::{Access, Code, Datum, Grants, Query, Range, Store};
use serde_json::{Map, Value, json};
use store_sqlite::RecordsDb;

use super::data_api::{Call, answer, blocking, layout_of};
use super::envelope::{datum_json, fail, json_datum, lease_json, ok, record_json, store_error};
use super::params::{self, Problem, pair, query_pairs};
use super::{ADMIN_GROUP, ApiSession, actor};
use crate::clock;

fn problem((code, detail): Problem) -> Response {
    fail(code, Some(&detail))
}

fn now_ms() -> i64 {
    clock::timestamp_now().as_millisecond()
}

/// Routes `…/databases/{db}/…` for a signed-in session.
pub async fn dispatch(call: &Call, session: &Arc<ApiSession>, db: Arc<RecordsDb>) -> Response {
    let rest: Vec<&str> = call.segments[2..].iter().map(String::as_str).collect();
    let method = &call.method;
    match (rest.as_slice(), method) {
        (["layouts"], &Method::GET) => {
            blocking(db, |db| {
                answer(db.layouts(), |layouts| {
                    let names: Vec<Value> = layouts
                        .iter()
                        .map(|layout| json!({"name": layout.name, "table": layout.table}))
                        .collect();
                    json!({"layouts": names})
                })
            })
            .await
        }
        (["scripts"], &Method::GET) => ok(json!({"scripts": []})),
        (["globals"], &Method::PATCH) => globals(call, session),
        (["locks"], &Method::GET) => {
            blocking(db, |db| {
                let (live, _) = db.leases(now_ms());
                ok(json!({"locks": live.iter().map(lease_json).collect::<Vec<_>>()}))
            })
            .await
        }
        (["layouts", layout], &Method::GET) => metadata(db, (*layout).to_owned()).await,
        (["layouts", layout, "records"], &Method::GET) => list(call, session, db, layout).await,
        (["layouts", layout, "records"], &Method::POST) => create(call, session, db, layout).await,
        (["layouts", layout, "_find"], &Method::POST) => find(call, session, db, layout).await,
        (["layouts", _, "script", name], &Method::GET) => fail(
            Code::ScriptMissing,
            Some(&format!("genkan runs no FileMaker scripts (`{name}`)")),
        ),
        (["layouts", layout, "records", id], _) => {
            let Some(id) = record_id(id) else {
                return fail(Code::RecordMissing, Some("recordId must be a number"));
            };
            match *method {
                Method::GET => get(call, session, db, layout, id).await,
                Method::PATCH => edit(call, session, db, layout, id).await,
                Method::DELETE => delete(call, session, db, layout, id).await,
                Method::POST => duplicate(call, session, db, layout, id).await,
                _ => wrong_method(),
            }
        }
        (["layouts", layout, "records", id, "lock"], _) => {
            let Some(id) = record_id(id) else {
                return fail(Code::RecordMissing, Some("recordId must be a number"));
            };
            lock(call, session, db, layout, id).await
        }
        (["layouts", _, "records", _, "containers", ..], _) => fail(
            Code::FieldCannotBeModified,
            Some("container fields are not supported by genkan yet"),
        ),
        (
            ["layouts"]
            | ["scripts"]
            | ["globals"]
            | ["locks"]
            | ["layouts", _]
            | ["layouts", _, "records"]
            | ["layouts", _, "_find"]
            | ["layouts", _, "script", _],
            _,
        ) => wrong_method(),
        _ => super::envelope::http_error(
            http::StatusCode::NOT_FOUND,
            Code::Unknown,
            "no such Data API path",
        ),
    }
}

fn wrong_method() -> Response {
    super::envelope::http_error(
        http::StatusCode::METHOD_NOT_ALLOWED,
        Code::Unknown,
        "this path does not take that method",
    )
}

fn record_id(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|id| *id > 0)
}

/// Scripts are FileMaker programs genkan does not run: asking for one is 104, not silence.
fn refuse_scripts(names: impl Iterator<Item = String>) -> Result<(), Response> {
    for name in names {
        if name == "script" || name.starts_with("script.") && !name.ends_with(".param") {
            return Err(fail(
                Code::ScriptMissing,
                Some("genkan runs no FileMaker scripts"),
            ));
        }
    }
    Ok(())
}

fn date_format(value: Option<&Value>) -> Result<(), Response> {
    match value {
        None => Ok(()),
        Some(Value::String(text)) if matches!(text.as_str(), "0" | "1" | "2") => Ok(()),
        Some(Value::Number(number)) if number.as_u64().is_some_and(|n| n <= 2) => Ok(()),
        Some(_) => Err(fail(
            Code::ParameterInvalid,
            Some("`dateformats` is 0, 1 or 2"),
        )),
    }
}

async fn metadata(db: Arc<RecordsDb>, layout: String) -> Response {
    blocking(db, move |db| {
        let layout = match layout_of(db, &layout) {
            Ok(layout) => layout,
            Err(response) => return response,
        };
        let field = |name: &str, kind: records::FieldKind| {
            let number = kind == records::FieldKind::Number;
            json!({
                "name": name,
                "type": "normal",
                "displayType": "editText",
                "result": if number { "number" } else { "text" },
                "global": false,
                "autoEnter": false,
                "fourDigitYear": false,
                "maxRepeat": 1,
                "maxCharacters": 0,
                "notEmpty": false,
                "numeric": number,
                "timeOfDay": false,
                "repetitionStart": 1,
                "repetitionEnd": 1,
            })
        };
        let fields: Vec<Value> = layout
            .fields
            .iter()
            .map(|f| field(&f.name, f.kind))
            .collect();
        let mut portals = Map::new();
        for portal in &layout.portals {
            let fields = portal
                .fields
                .iter()
                .map(|f| field(&f.name, f.kind))
                .collect();
            portals.insert(portal.name.clone(), Value::Array(fields));
        }
        ok(json!({
            "fieldMetaData": fields,
            "portalMetaData": portals,
            "valueLists": [],
            "table": layout.table,
        }))
    })
    .await
}

/// Found-set answer: `dataInfo` and `data`.
fn found_set_json(database: &str, layout: &records::Layout, found: &records::FoundSet) -> Value {
    json!({
        "dataInfo": {
            "database": database,
            "layout": layout.name,
            "table": layout.table,
            "totalRecordCount": found.total,
            "foundCount": found.found,
            "returnedCount": found.records.len(),
        },
        "data": found.records.iter().map(|record| record_json(record, database)).collect::<Vec<_>>(),
    })
}

/// The portals and ranges named in a URL query (`portal`, `_offset.P`, `_limit.P`).
fn query_portals(
    pairs: &[(String, String)],
    max_limit: u64,
) -> Result<Option<Vec<(String, Range)>>, Problem> {
    let Some(names) = pair(pairs, "portal") else {
        return Ok(None);
    };
    let names = params::portal_names(&Value::String(names.to_owned()))?;
    params::portal_ranges(
        &names,
        |key| pair(pairs, &format!("_{key}")).map(|text| Value::String(text.to_owned())),
        max_limit,
    )
    .map(Some)
}

/// The layout named by `layout.response` (same table only), else the request's layout.
fn response_layout(
    db: &RecordsDb,
    layout: records::Layout,
    other: Option<&str>,
) -> Result<records::Layout, Response> {
    let Some(other) = other else {
        return Ok(layout);
    };
    let other = layout_of(db, other)?;
    if other.table != layout.table {
        return Err(fail(
            Code::ParameterInvalid,
            Some("`layout.response` must show the same table"),
        ));
    }
    Ok(other)
}

async fn list(call: &Call, session: &ApiSession, db: Arc<RecordsDb>, layout: &str) -> Response {
    let pairs = match query_pairs(call.query.as_deref()) {
        Ok(pairs) => pairs,
        Err(issue) => return problem(issue),
    };
    if let Err(response) = refuse_scripts(pairs.iter().map(|(key, _)| key.clone())) {
        return response;
    }
    let max = call.records.settings().max_limit;
    let value = |name: &str| pair(&pairs, name).map(|text| Value::String(text.to_owned()));
    let (offset, limit) = (value("_offset"), value("_limit"));
    let range = params::range(
        offset.as_ref().map(|v| ("_offset", v)),
        limit.as_ref().map(|v| ("_limit", v)),
        max,
        100,
    );
    let sort = pair(&pairs, "_sort").map_or(Ok(Vec::new()), params::sort_text);
    let portals = query_portals(&pairs, max);
    let (range, sort, portals) = match (range, sort, portals) {
        (Ok(range), Ok(sort), Ok(portals)) => (range, sort, portals),
        (Err(issue), _, _) | (_, Err(issue), _) | (_, _, Err(issue)) => return problem(issue),
    };
    if let Err(response) = date_format(value("dateformats").as_ref()) {
        return response;
    }
    let response_name = pair(&pairs, "layout.response").map(str::to_owned);
    let (layout, database) = (layout.to_owned(), session.database.clone());
    let check = allowed_later(call, session);
    blocking(db, move |db| {
        let layout = match layout_of(db, &layout)
            .and_then(|layout| response_layout(db, layout, response_name.as_deref()))
        {
            Ok(layout) => layout,
            Err(response) => return response,
        };
        if let Err(response) = check(&layout.table, Access::Read) {
            return response;
        }
        let query = Query {
            find: None,
            sort,
            range: Some(range),
            portals,
        };
        answer(db.query(&layout, &query), |found| {
            found_set_json(&database, &layout, &found)
        })
    })
    .await
}

/// A grants check that can move into a blocking task.
fn allowed_later(
    call: &Call,
    session: &ApiSession,
) -> impl Fn(&str, Access) -> Result<(), Response> + Send + 'static {
    let grants = call.records.grants_for(&session.groups, &session.database);
    move |table: &str, access: Access| {
        if grants.allows(access, table) {
            Ok(())
        } else {
            let verb = if access == Access::Read {
                "read"
            } else {
                "change"
            };
            Err(fail(
                Code::InsufficientPrivileges,
                Some(&format!("your groups may not {verb} `{table}`")),
            ))
        }
    }
}

async fn find(call: &Call, session: &ApiSession, db: Arc<RecordsDb>, layout: &str) -> Response {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(response) => return response,
    };
    let pairs = match query_pairs(call.query.as_deref()) {
        Ok(pairs) => pairs,
        Err(issue) => return problem(issue),
    };
    if let Err(response) = refuse_scripts(body.keys().cloned()) {
        return response;
    }
    if let Err(response) = date_format(body.get("dateformats")) {
        return response;
    }
    let max = call.records.settings().max_limit;
    let parsed = (|| -> Result<Query, Problem> {
        let requests = params::find_requests(body.get("query"))?;
        let range = params::range(
            body.get("offset").map(|v| ("offset", v)),
            body.get("limit").map(|v| ("limit", v)),
            max,
            100,
        )?;
        let sort = body.get("sort").map_or(Ok(Vec::new()), params::sort)?;
        let portals = match body.get("portal") {
            Some(names) => {
                let names = params::portal_names(names)?;
                // Ranges may come in the body (`offset.P`) or, as @proofkit/fmdapi sends
                // them, in the URL query (`_offset.P`).
                let lookup = |key: &str| {
                    body.get(key).cloned().or_else(|| {
                        pair(&pairs, &format!("_{key}")).map(|text| Value::String(text.to_owned()))
                    })
                };
                Some(params::portal_ranges(&names, lookup, max)?)
            }
            None => query_portals(&pairs, max)?,
        };
        Ok(Query {
            find: Some(requests),
            sort,
            range: Some(range),
            portals,
        })
    })();
    let query = match parsed {
        Ok(query) => query,
        Err(issue) => return problem(issue),
    };
    let response_name = body
        .get("layout.response")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (layout, database) = (layout.to_owned(), session.database.clone());
    let check = allowed_later(call, session);
    blocking(db, move |db| {
        let layout = match layout_of(db, &layout)
            .and_then(|layout| response_layout(db, layout, response_name.as_deref()))
        {
            Ok(layout) => layout,
            Err(response) => return response,
        };
        if let Err(response) = check(&layout.table, Access::Read) {
            return response;
        }
        answer(db.query(&layout, &query), |found| {
            found_set_json(&database, &layout, &found)
        })
    })
    .await
}

async fn get(
    call: &Call,
    session: &ApiSession,
    db: Arc<RecordsDb>,
    layout: &str,
    id: i64,
) -> Response {
    let pairs = match query_pairs(call.query.as_deref()) {
        Ok(pairs) => pairs,
        Err(issue) => return problem(issue),
    };
    if let Err(response) = refuse_scripts(pairs.iter().map(|(key, _)| key.clone())) {
        return response;
    }
    let portals = match query_portals(&pairs, call.records.settings().max_limit) {
        Ok(portals) => portals,
        Err(issue) => return problem(issue),
    };
    let response_name = pair(&pairs, "layout.response").map(str::to_owned);
    let (layout, database) = (layout.to_owned(), session.database.clone());
    let check = allowed_later(call, session);
    blocking(db, move |db| {
        let layout = match layout_of(db, &layout)
            .and_then(|layout| response_layout(db, layout, response_name.as_deref()))
        {
            Ok(layout) => layout,
            Err(response) => return response,
        };
        if let Err(response) = check(&layout.table, Access::Read) {
            return response;
        }
        let total = db
            .query(
                &layout,
                &Query {
                    range: Some(Range {
                        offset: 1,
                        limit: 1,
                    }),
                    portals: Some(Vec::new()),
                    ..Query::default()
                },
            )
            .map_or(0, |found| found.total);
        answer(db.record(&layout, id, portals.as_deref()), |record| {
            json!({
                "dataInfo": {
                    "database": database,
                    "layout": layout.name,
                    "table": layout.table,
                    "totalRecordCount": total,
                    "foundCount": 1,
                    "returnedCount": 1,
                },
                "data": [record_json(&record, &database)],
            })
        })
    })
    .await
}

/// `fieldData` as name/value pairs; 958 if absent (when required), 960 for values that are
/// not text, numbers or null.
fn field_data(body: &Map<String, Value>, required: bool) -> Result<Vec<(String, Datum)>, Response> {
    let Some(value) = body.get("fieldData") else {
        if required {
            return Err(fail(Code::ParameterMissing, Some("`fieldData` is missing")));
        }
        return Ok(Vec::new());
    };
    let Value::Object(fields) = value else {
        return Err(fail(
            Code::ParameterInvalid,
            Some("`fieldData` must be an object"),
        ));
    };
    fields
        .iter()
        .map(|(name, value)| match json_datum(value) {
            Some(datum) => Ok((name.clone(), datum)),
            None => Err(fail(
                Code::ParameterInvalid,
                Some(&format!("field `{name}`: give text, a number or null")),
            )),
        })
        .collect()
}

/// Portal writes are not supported yet: refuse them rather than drop them silently.
fn refuse_portal_writes(body: &Map<String, Value>) -> Result<(), Response> {
    match body.get("portalData") {
        None => Ok(()),
        Some(Value::Object(portals)) if portals.is_empty() => Ok(()),
        Some(_) => Err(fail(
            Code::FieldCannotBeModified,
            Some(
                "writing portal rows through the Data API is not supported by genkan yet; write the related table's layout",
            ),
        )),
    }
}

async fn create(call: &Call, session: &ApiSession, db: Arc<RecordsDb>, layout: &str) -> Response {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(response) => return response,
    };
    let checks = refuse_scripts(body.keys().cloned())
        .and_then(|()| refuse_portal_writes(&body))
        .and_then(|()| date_format(body.get("dateformats")))
        .and_then(|()| field_data(&body, true));
    let fields = match checks {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let (layout, user, lease_id) = (
        layout.to_owned(),
        session.user.clone(),
        session.lease_id.clone(),
    );
    let check = allowed_later(call, session);
    blocking(db, move |db| {
        let layout = match layout_of(db, &layout) {
            Ok(layout) => layout,
            Err(response) => return response,
        };
        if let Err(response) = check(&layout.table, Access::Write) {
            return response;
        }
        let actor = records::Actor {
            user: &user,
            session: &lease_id,
            now_ms: now_ms(),
        };
        answer(
            db.create(actor, &layout, &fields),
            |(id, mod_id)| json!({"recordId": id.to_string(), "modId": mod_id.to_string()}),
        )
    })
    .await
}

fn mod_id(body: &Map<String, Value>) -> Result<Option<i64>, Response> {
    match body.get("modId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) if number.as_i64().is_some() => Ok(number.as_i64()),
        Some(Value::String(text)) if text.trim().parse::<i64>().is_ok() => {
            Ok(text.trim().parse::<i64>().ok())
        }
        Some(_) => Err(fail(
            Code::ParameterInvalid,
            Some("`modId` must be a number"),
        )),
    }
}

async fn edit(
    call: &Call,
    session: &Arc<ApiSession>,
    db: Arc<RecordsDb>,
    layout: &str,
    id: i64,
) -> Response {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(response) => return response,
    };
    let checks = refuse_scripts(body.keys().cloned())
        .and_then(|()| refuse_portal_writes(&body))
        .and_then(|()| date_format(body.get("dateformats")))
        .and_then(|()| Ok((field_data(&body, true)?, mod_id(&body)?)));
    let (fields, expected) = match checks {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let (layout, session) = (layout.to_owned(), Arc::clone(session));
    let check = allowed_later(call, &session);
    blocking(db, move |db| {
        let layout = match layout_of(db, &layout) {
            Ok(layout) => layout,
            Err(response) => return response,
        };
        if let Err(response) = check(&layout.table, Access::Write) {
            return response;
        }
        let actor = actor(&session, now_ms());
        let result = db.edit(actor, &layout, id, &fields, expected);
        if result.is_ok() {
            // An edit is a commit: the session's lease on the record, if any, ends with it.
            db.unlock(actor, &layout.table, id);
        }
        answer(result, |mod_id| json!({"modId": mod_id.to_string()}))
    })
    .await
}

async fn delete(
    call: &Call,
    session: &Arc<ApiSession>,
    db: Arc<RecordsDb>,
    layout: &str,
    id: i64,
) -> Response {
    let pairs = match query_pairs(call.query.as_deref()) {
        Ok(pairs) => pairs,
        Err(issue) => return problem(issue),
    };
    if let Err(response) = refuse_scripts(pairs.into_iter().map(|(key, _)| key)) {
        return response;
    }
    let (layout, session) = (layout.to_owned(), Arc::clone(session));
    let check = allowed_later(call, &session);
    blocking(db, move |db| {
        let layout = match layout_of(db, &layout) {
            Ok(layout) => layout,
            Err(response) => return response,
        };
        if let Err(response) = check(&layout.table, Access::Write) {
            return response;
        }
        let actor = actor(&session, now_ms());
        let result = db.delete(actor, &layout, id);
        if result.is_ok() {
            db.unlock(actor, &layout.table, id);
        }
        answer(result, |()| json!({}))
    })
    .await
}

async fn duplicate(
    call: &Call,
    session: &Arc<ApiSession>,
    db: Arc<RecordsDb>,
    layout: &str,
    id: i64,
) -> Response {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Err(response) = refuse_scripts(body.keys().cloned()) {
        return response;
    }
    let (layout, session) = (layout.to_owned(), Arc::clone(session));
    let check = allowed_later(call, &session);
    blocking(db, move |db| {
        let layout = match layout_of(db, &layout) {
            Ok(layout) => layout,
            Err(response) => return response,
        };
        if let Err(response) = check(&layout.table, Access::Write) {
            return response;
        }
        answer(
            db.duplicate(actor(&session, now_ms()), &layout, id),
            |(id, mod_id)| json!({"recordId": id.to_string(), "modId": mod_id.to_string()}),
        )
    })
    .await
}

/// `POST …/lock` takes or renews the lease (`{"takeOver": true}` moves it, for the admin
/// group), `DELETE` releases it, `GET` shows who holds it.
async fn lock(
    call: &Call,
    session: &Arc<ApiSession>,
    db: Arc<RecordsDb>,
    layout: &str,
    id: i64,
) -> Response {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(response) => return response,
    };
    let take_over = body
        .get("takeOver")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if take_over && !session.groups.iter().any(|group| group == ADMIN_GROUP) {
        return fail(
            Code::InsufficientPrivileges,
            Some("only the admin group may take over a lock"),
        );
    }
    let method = call.method.clone();
    let ttl = call.records.lease_ms();
    let (layout, session) = (layout.to_owned(), Arc::clone(session));
    let check = allowed_later(call, &session);
    blocking(db, move |db| {
        let layout = match layout_of(db, &layout) {
            Ok(layout) => layout,
            Err(response) => return response,
        };
        let access = if method == Method::GET {
            Access::Read
        } else {
            Access::Write
        };
        if let Err(response) = check(&layout.table, access) {
            return response;
        }
        if let Err(error) = db.record(&layout, id, Some(&[])) {
            return store_error(&error);
        }
        let actor = actor(&session, now_ms());
        match method {
            Method::GET => {
                let lease = db.lease(&layout.table, id, actor.now_ms);
                ok(json!({"lease": lease.as_ref().map(lease_json)}))
            }
            Method::POST if take_over => {
                answer(db.take_over(actor, &layout.table, id, ttl), |previous| {
                    let lease = db.lease(&layout.table, id, actor.now_ms);
                    json!({
                        "lease": lease.as_ref().map(lease_json),
                        "previous": previous.as_ref().map(lease_json),
                    })
                })
            }
            Method::POST => answer(
                db.lock(actor, &layout.table, id, ttl),
                |lease| json!({"lease": lease_json(&lease)}),
            ),
            Method::DELETE => {
                if db.unlock(actor, &layout.table, id) {
                    ok(json!({}))
                } else {
                    fail(
                        Code::RecordInUse,
                        Some("this session holds no lock on the record"),
                    )
                }
            }
            _ => wrong_method(),
        }
    })
    .await
}

/// `PATCH …/globals`: values kept for the session, gone at logout or expiry.
fn globals(call: &Call, session: &ApiSession) -> Response {
    let body = match call.json_body() {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(Value::Object(fields)) = body.get("globalFields") else {
        return fail(
            Code::ParameterMissing,
            Some("`globalFields` must be an object of \"Table::field\": value"),
        );
    };
    let mut values = Vec::new();
    for (name, value) in fields {
        match json_datum(value) {
            Some(datum) => values.push((name.clone(), datum_json(&datum))),
            None => {
                return fail(
                    Code::ParameterInvalid,
                    Some(&format!("global `{name}`: give text, a number or null")),
                );
            }
        }
    }
    let mut state = super::lock(&session.state);
    state.globals.extend(values);
    ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_refused_but_their_parameters_alone_are_not_a_request() {
        assert!(refuse_scripts(["script".to_owned()].into_iter()).is_err());
        assert!(refuse_scripts(["script.prerequest".to_owned()].into_iter()).is_err());
        assert!(
            refuse_scripts(["_limit".to_owned(), "script.param".to_owned()].into_iter()).is_ok()
        );
        assert_eq!(record_id("12"), Some(12));
        assert_eq!(record_id("0"), None);
        assert_eq!(record_id("1 OR 1=1"), None);
    }
}
