//! The Data API's envelope and its one mapping from errors to HTTP: every answer is
//! `{"response": {...}, "messages": [{"code": "<n>", "message": "..."}]}`, `response` an object
//! even on errors (python-fmrest reads it unconditionally), codes as strings.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use records::{Code, Datum, Lease, Record, StoreError};
use serde_json::{Map, Value, json};

/// A successful answer.
pub fn ok(response: Value) -> Response {
    reply(StatusCode::OK, response, Code::Ok, None)
}

/// A FileMaker error with FileMaker's text, or a more precise one.
pub fn fail(code: Code, detail: Option<&str>) -> Response {
    reply(status_of(code), json!({}), code, detail)
}

/// A FileMaker error whose `response` carries details (which statement failed).
pub fn fail_with(code: Code, response: Value, detail: &str) -> Response {
    reply(status_of(code), response, code, Some(detail))
}

/// An HTTP-level error (unknown path, wrong method, body too large) in the envelope.
pub fn http_error(status: StatusCode, code: Code, detail: &str) -> Response {
    reply(status, json!({}), code, Some(detail))
}

fn status_of(code: Code) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

// Every caller builds the value for this call only; taking it by value reads naturally there.
#[allow(clippy::needless_pass_by_value)]
fn reply(status: StatusCode, response: Value, code: Code, detail: Option<&str>) -> Response {
    let message = match detail {
        Some(detail) if !detail.is_empty() && code != Code::Ok => {
            format!("{}: {detail}", code.message())
        }
        _ => code.message().to_owned(),
    };
    let body = json!({
        "response": response,
        "messages": [{"code": code.number().to_string(), "message": message}],
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// A lease as clients see it.
pub fn lease_json(lease: &Lease) -> Value {
    json!({
        "table": lease.table,
        "recordId": lease.record_id.to_string(),
        "lockedBy": lease.holder.user,
        "since": time_text(lease.since_ms),
        "expires": time_text(lease.expires_ms),
    })
}

/// Milliseconds since the epoch as RFC 3339 UTC.
pub fn time_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(
        |_| ms.to_string(),
        |time| {
            time.round(jiff::Unit::Second)
                .map_or_else(|_| time.to_string(), |time| time.to_string())
        },
    )
}

/// A store error as a Data API answer; lock conflicts list every held record and its holder.
pub fn store_error(error: &StoreError) -> Response {
    match error {
        StoreError::Locked(leases) => {
            let names: Vec<String> = leases
                .iter()
                .take(20)
                .map(|lease| {
                    format!(
                        "record {} locked by {} since {}",
                        lease.record_id,
                        lease.holder.user,
                        time_text(lease.since_ms)
                    )
                })
                .collect();
            let more = if leases.len() > 20 {
                format!(" and {} more", leases.len() - 20)
            } else {
                String::new()
            };
            reply(
                status_of(Code::RecordInUse),
                json!({"lockedRecords": leases.iter().map(lease_json).collect::<Vec<_>>()}),
                Code::RecordInUse,
                Some(&format!("{}{more}", names.join("; "))),
            )
        }
        other => fail(other.code(), Some(&other.to_string())),
    }
}

/// A value as the Data API sends it: numbers as numbers, empty as `""`.
pub fn datum_json(datum: &Datum) -> Value {
    match datum {
        Datum::Null | Datum::Blob(_) => Value::String(String::new()),
        Datum::Integer(number) => Value::from(*number),
        Datum::Real(number) => serde_json::Number::from_f64(*number)
            .map_or_else(|| Value::String(number.to_string()), Value::Number),
        Datum::Text(text) => Value::String(text.clone()),
    }
}

/// A JSON value from a client as a field value; objects, arrays and booleans are refused.
pub fn json_datum(value: &Value) -> Option<Datum> {
    match value {
        Value::Null => Some(Datum::Null),
        Value::String(text) => Some(Datum::Text(text.clone())),
        Value::Number(number) => Some(match number.as_i64() {
            Some(integer) => Datum::Integer(integer),
            None => Datum::Real(number.as_f64()?),
        }),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A record in the Data API's shape.
pub fn record_json(record: &Record, database: &str) -> Value {
    let mut field_data = Map::new();
    for (name, value) in &record.fields {
        field_data.insert(name.clone(), datum_json(value));
    }
    let mut portal_data = Map::new();
    let mut portal_info = Vec::new();
    for portal in &record.portals {
        let rows: Vec<Value> = portal
            .rows
            .iter()
            .map(|row| {
                let mut object = Map::new();
                object.insert("recordId".into(), Value::String(row.record_id.to_string()));
                for (name, value) in &row.fields {
                    object.insert(name.clone(), datum_json(value));
                }
                object.insert("modId".into(), Value::String(row.mod_id.to_string()));
                Value::Object(object)
            })
            .collect();
        portal_info.push(json!({
            "portalObjectName": portal.name,
            "database": database,
            "table": portal.table,
            "foundCount": portal.found,
            "returnedCount": rows.len(),
        }));
        portal_data.insert(portal.name.clone(), Value::Array(rows));
    }
    let mut object = Map::new();
    object.insert("fieldData".into(), Value::Object(field_data));
    object.insert("portalData".into(), Value::Object(portal_data));
    object.insert(
        "recordId".into(),
        Value::String(record.record_id.to_string()),
    );
    object.insert("modId".into(), Value::String(record.mod_id.to_string()));
    if !portal_info.is_empty() {
        object.insert("portalDataInfo".into(), Value::Array(portal_info));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_the_envelope_and_statuses_clients_read() {
        let response = fail(Code::InvalidToken, None);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = fail(Code::NoRecordsMatch, None);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(json_datum(&json!(true)), None);
        assert_eq!(json_datum(&json!(4)), Some(Datum::Integer(4)));
        assert_eq!(datum_json(&Datum::Null), json!(""));
        assert_eq!(time_text(0), "1970-01-01T00:00:00Z");
    }
}
