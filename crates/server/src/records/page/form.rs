//! The form view of one record: its fields, who holds its edit lease, its portals, and the
//! Edit / Save / Cancel / Take over buttons.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gateway::gate::html_escape as escape;
use records::{
    Access, Actor, Code, Datum, FieldKind, Grants, Layout, Lease, Range, Record, Store, StoreError,
};
use store_sqlite::RecordsDb;

use super::words::{Words, words};
use super::{
    Viewer, blocking, explain, local_time, lock_text, now_ms, records_page, refused, segment,
    text_of,
};
use crate::pages::{Lang, alert};
use crate::records::Records;

/// `GET /_genkan/records/{database}/{layout}/{id}`: the form view.
pub async fn form(
    State(records): State<Arc<Records>>,
    Path((database, layout_name, id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let notice = match query.as_deref() {
        Some("saved=1") => Some(Notice::Saved),
        _ => None,
    };
    show_form(
        &records,
        &headers,
        &database,
        &layout_name,
        &id,
        notice,
        None,
    )
    .await
}

/// What to tell the person above the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    Saved,
}

#[allow(clippy::too_many_arguments)]
async fn show_form(
    records: &Arc<Records>,
    headers: &HeaderMap,
    database: &str,
    layout_name: &str,
    id: &str,
    notice: Option<Notice>,
    problem: Option<String>,
) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    let Some(viewer) = Viewer::from(records, headers) else {
        return refused(lang, StatusCode::UNAUTHORIZED, w.sign_in_first);
    };
    let (Some(db), Ok(record_id)) = (records.database(database), id.parse::<i64>()) else {
        return refused(lang, StatusCode::NOT_FOUND, w.no_such_record);
    };
    let looked_up = {
        let (db, layout_name) = (Arc::clone(&db), layout_name.to_owned());
        blocking(move || {
            let layout = db.layout(&layout_name)?;
            let record = db.record(&layout, record_id, None)?;
            let lease = db.lease(&layout.table, record_id, now_ms());
            Ok::<_, StoreError>((layout, record, lease))
        })
        .await
    };
    let (layout, record, lease) = match looked_up {
        Some(Ok(parts)) => parts,
        Some(Err(_)) => return refused(lang, StatusCode::NOT_FOUND, w.no_such_record),
        None => return refused(lang, StatusCode::INTERNAL_SERVER_ERROR, w.failed),
    };
    if !viewer.may(records, database, Access::Read, &layout.table) {
        return refused(lang, StatusCode::FORBIDDEN, w.not_allowed);
    }
    let may_write = viewer.may(records, database, Access::Write, &layout.table);
    let editing = lease
        .as_ref()
        .is_some_and(|lease| lease.holder.session == viewer.lease_id);
    let held_by_other = lease.as_ref().filter(|_| !editing);
    let base = format!(
        "/_genkan/records/{}/{}",
        segment(database),
        segment(&layout.name)
    );
    let mut body = format!(
        "<nav class=\"crumbs\"><a href=\"/_genkan/records\">{}</a> › {} › <a href=\"{base}\">{}</a> › {}</nav>\
<h1>{} <span class=\"muted\">#{}</span></h1>",
        w.title,
        escape(database),
        escape(&layout.name),
        record.record_id,
        escape(&layout.name),
        record.record_id,
    );
    if notice == Some(Notice::Saved) {
        body.push_str(&format!("<p class=\"notice\" id=\"saved\">{}</p>", w.saved));
    }
    body.push_str(&alert(problem.as_deref()));
    match (held_by_other, editing) {
        (Some(lease), _) => body.push_str(&format!(
            "<p class=\"error\" id=\"lock\"><span class=\"badge\">{}</span>{}</p>",
            w.lock,
            escape(&lock_text(&w, lease))
        )),
        (None, true) => body.push_str(&format!(
            "<p class=\"notice\" id=\"lock\" data-template=\"{}\" data-lost=\"{}\">{}</p>",
            escape(w.you_are_editing),
            escape(w.lease_lost),
            w.you_are_editing.replace(
                "{until}",
                &local_time(lease.as_ref().map_or(0, |l| l.expires_ms))
            )
        )),
        (None, false) => {}
    }
    let csrf = escape(&viewer.session.row.csrf_token);
    body.push_str(&format!(
        "<form method=\"post\" action=\"{base}/{id}\"{lease}><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"modId\" value=\"{mod_id}\"><dl class=\"record\">",
        id = record.record_id,
        mod_id = record.mod_id,
        lease = if editing {
            format!(
                " data-lease=\"{base}/{}/lease\" data-renew-seconds=\"{}\"",
                record.record_id,
                (records.lease_ms() / 3000).clamp(1, 60)
            )
        } else {
            String::new()
        },
    ));
    for (name, value) in &record.fields {
        body.push_str(&format!(
            "<dt><label for=\"f-{name}\">{name}</label></dt><dd><input id=\"f-{name}\" name=\"f.{name}\" value=\"{value}\"{readonly}></dd>",
            name = escape(name),
            value = escape(&text_of(value)),
            readonly = if editing { "" } else { " readonly" },
        ));
    }
    body.push_str(&format!(
        "</dl><p class=\"muted\">modId {}</p><p>",
        record.mod_id
    ));
    let button = |action: &str, label: &str| {
        format!("<button type=\"submit\" name=\"action\" value=\"{action}\">{label}</button> ")
    };
    if editing {
        body.push_str(&button("save", w.save));
        body.push_str(&button("cancel", w.cancel));
    } else if may_write && held_by_other.is_none() {
        body.push_str(&button("edit", w.edit));
    } else if may_write && viewer.is_admin() {
        body.push_str(&button("takeover", w.take_over));
    }
    body.push_str("</p></form>");
    body.push_str(&portals_html(&w, &db, &layout, record_id).await);
    if editing {
        body.push_str("<script type=\"module\" src=\"/_genkan/static/records-lease.js\"></script>");
    }
    records_page(lang, StatusCode::OK, &layout.name, &body)
}

async fn portals_html(w: &Words, db: &Arc<RecordsDb>, layout: &Layout, record_id: i64) -> String {
    if layout.portals.is_empty() {
        return String::new();
    }
    let wanted: Vec<(String, Range)> = layout
        .portals
        .iter()
        .map(|portal| {
            (
                portal.name.clone(),
                Range {
                    offset: 1,
                    limit: 100,
                },
            )
        })
        .collect();
    let (db, layout) = (Arc::clone(db), layout.clone());
    let Some(Ok(record)) = blocking(move || db.record(&layout, record_id, Some(&wanted))).await
    else {
        return String::new();
    };
    let mut html = String::new();
    for portal in &record.portals {
        html.push_str(&format!(
            "<h2>{} <span class=\"muted\">({})</span></h2>",
            escape(&portal.name),
            w.related.replace("{count}", &portal.found.to_string())
        ));
        let Some(first) = portal.rows.first() else {
            continue;
        };
        html.push_str("<table><thead><tr>");
        for (name, _) in &first.fields {
            let short = name
                .split_once("::")
                .map_or(name.as_str(), |(_, field)| field);
            html.push_str(&format!("<th>{}</th>", escape(short)));
        }
        html.push_str("</tr></thead><tbody>");
        for row in &portal.rows {
            html.push_str("<tr>");
            for (_, value) in &row.fields {
                html.push_str(&format!("<td>{}</td>", escape(&text_of(value))));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table>");
    }
    html
}

/// `POST /_genkan/records/{database}/{layout}/{id}`: edit (take the lease), save, cancel,
/// take over. The form's fields arrive as `f.<name>`.
pub async fn act(
    State(records): State<Arc<Records>>,
    Path((database, layout_name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let w = words(lang);
    let Some(viewer) = Viewer::from(&records, &headers) else {
        return refused(lang, StatusCode::UNAUTHORIZED, w.sign_in_first);
    };
    let value = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    };
    if let Some(refusal) = viewer.session.csrf_refusal(value("csrf")) {
        return refusal;
    }
    let (Some(db), Ok(record_id)) = (records.database(&database), id.parse::<i64>()) else {
        return refused(lang, StatusCode::NOT_FOUND, w.no_such_record);
    };
    let action = value("action").to_owned();
    let expected_mod_id = value("modId").parse::<i64>().ok();
    let submitted: Vec<(String, String)> = form
        .iter()
        .filter_map(|(key, value)| Some((key.strip_prefix("f.")?.to_owned(), value.clone())))
        .collect();
    let ttl = records.lease_ms();
    let grants = records.grants_for(&viewer.session.row.groups, &database);
    let is_admin = viewer.is_admin();
    let (user, lease_id) = (viewer.session.row.user.clone(), viewer.lease_id.clone());
    let layout_for_work = layout_name.clone();
    let outcome = blocking(move || -> Result<bool, StoreError> {
        let layout = db.layout(&layout_for_work)?;
        if !grants.allows(Access::Write, &layout.table) {
            return Err(StoreError::fm(
                Code::InsufficientPrivileges,
                "your groups may not change this table",
            ));
        }
        let actor = Actor {
            user: &user,
            session: &lease_id,
            now_ms: now_ms(),
        };
        match action.as_str() {
            "edit" => {
                db.record(&layout, record_id, Some(&[]))?;
                db.lock(actor, &layout.table, record_id, ttl).map(|_| false)
            }
            "takeover" if is_admin => db
                .take_over(actor, &layout.table, record_id, ttl)
                .map(|_| false),
            "cancel" => {
                db.unlock(actor, &layout.table, record_id);
                Ok(false)
            }
            "save" => {
                let current = db.record(&layout, record_id, None)?;
                let changes = changed_fields(&layout, &current, &submitted);
                db.edit(actor, &layout, record_id, &changes, expected_mod_id)?;
                db.unlock(actor, &layout.table, record_id);
                Ok(true)
            }
            _ => Err(StoreError::fm(Code::ParameterInvalid, "unknown action")),
        }
    })
    .await;
    let location = format!(
        "/_genkan/records/{}/{}/{record_id}",
        segment(&database),
        segment(&layout_name)
    );
    match outcome {
        Some(Ok(saved)) => {
            let target = if saved {
                format!("{location}?saved=1")
            } else {
                location
            };
            (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response()
        }
        Some(Err(error)) => {
            let message = explain(&w, &error);
            show_form(
                &records,
                &headers,
                &database,
                &layout_name,
                &id,
                None,
                Some(message),
            )
            .await
        }
        None => refused(lang, StatusCode::INTERNAL_SERVER_ERROR, w.failed),
    }
}

/// The submitted fields whose text differs from the record's, typed by the field: a number
/// field takes a number (or empty for none), anything else is text.
fn changed_fields(
    layout: &Layout,
    current: &Record,
    submitted: &[(String, String)],
) -> Vec<(String, Datum)> {
    submitted
        .iter()
        .filter_map(|(name, text)| {
            let field = layout.field(name)?;
            let (_, now) = current.fields.iter().find(|(field, _)| field == name)?;
            if &text_of(now) == text {
                return None;
            }
            let value = match field.kind {
                FieldKind::Number if text.trim().is_empty() => Datum::Null,
                FieldKind::Number => match text.trim().parse::<i64>() {
                    Ok(integer) => Datum::Integer(integer),
                    Err(_) => text
                        .trim()
                        .parse::<f64>()
                        .map_or_else(|_| Datum::Text(text.clone()), Datum::Real),
                },
                FieldKind::Text => Datum::Text(text.clone()),
            };
            Some((name.clone(), value))
        })
        .collect()
}

/// `POST /_genkan/records/{database}/{layout}/{id}/lease`: the heartbeat. Renews the lease
/// this browser session holds (CSRF value in `X-CSRF-Token`) and says until when, as JSON.
pub async fn renew(
    State(records): State<Arc<Records>>,
    Path((database, layout_name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let w = words(lang);
    let reply = |status: StatusCode, body: serde_json::Value| {
        (
            status,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_TYPE, "application/json"),
            ],
            body.to_string(),
        )
            .into_response()
    };
    let Some(viewer) = Viewer::from(&records, &headers) else {
        return reply(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"message": w.sign_in_first}),
        );
    };
    let given = headers
        .get("X-CSRF-Token")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if let Some(refusal) = viewer.session.csrf_refusal(given) {
        return refusal;
    }
    let (Some(db), Ok(record_id)) = (records.database(&database), id.parse::<i64>()) else {
        return reply(
            StatusCode::NOT_FOUND,
            serde_json::json!({"message": w.no_such_record}),
        );
    };
    let ttl = records.lease_ms();
    let (user, lease_id) = (viewer.session.row.user.clone(), viewer.lease_id.clone());
    let renewed = blocking(move || -> Result<Lease, StoreError> {
        let layout = db.layout(&layout_name)?;
        let actor = Actor {
            user: &user,
            session: &lease_id,
            now_ms: now_ms(),
        };
        // Only a lease this session still holds is renewed; a lapsed one is not taken again
        // behind the person's back.
        match db.lease(&layout.table, record_id, actor.now_ms) {
            Some(lease) if lease.holder.session == lease_id => {
                db.lock(actor, &layout.table, record_id, ttl)
            }
            Some(lease) => Err(StoreError::Locked(vec![lease])),
            None => Err(StoreError::fm(Code::RecordInUse, "the lease has lapsed")),
        }
    })
    .await;
    match renewed {
        Some(Ok(lease)) => reply(
            StatusCode::OK,
            serde_json::json!({"until": local_time(lease.expires_ms)}),
        ),
        Some(Err(StoreError::Locked(leases))) => reply(
            StatusCode::CONFLICT,
            serde_json::json!({"message": leases.first().map(|lease| lock_text(&w, lease))}),
        ),
        Some(Err(_)) => reply(
            StatusCode::CONFLICT,
            serde_json::json!({"message": w.lease_lost}),
        ),
        None => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"message": w.failed}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_fields_are_written_with_their_type() {
        use records::Field;
        let layout = Layout {
            name: "t".into(),
            table: "t".into(),
            fields: vec![
                Field {
                    name: "name".into(),
                    kind: FieldKind::Text,
                },
                Field {
                    name: "age".into(),
                    kind: FieldKind::Number,
                },
            ],
            portals: vec![],
        };
        let current = Record {
            record_id: 1,
            mod_id: 0,
            fields: vec![
                ("name".into(), Datum::Text("Sato".into())),
                ("age".into(), Datum::Integer(30)),
            ],
            portals: vec![],
        };
        let submitted = vec![
            ("name".to_owned(), "Sato".to_owned()),
            ("age".to_owned(), "31".to_owned()),
            ("ROWID".to_owned(), "9".to_owned()),
        ];
        assert_eq!(
            changed_fields(&layout, &current, &submitted),
            [("age".to_owned(), Datum::Integer(31))]
        );
    }
}
