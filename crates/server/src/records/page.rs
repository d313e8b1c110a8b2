//! The records page: FileMaker WebDirect's role in the browser. A list of databases and their
//! layouts, a list view with find and sort, and a form view whose Edit button takes the edit
//! lease, so everyone else sees who is editing the record and since when.
//!
//! Plain server-rendered HTML and forms (no script is needed). Every change is a POST with the
//! session's CSRF value and goes through the same store calls as the Data API, so grants,
//! leases and the modId check hold here as they do there. The browser session is the lease
//! holder: a second window of the same person signs in separately and does not share it.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gateway::gate::html_escape as escape;
use records::{
    Access, Code, Datum, FindByName, Grants, Layout, Lease, Query, Range, SortRequest, Store,
    StoreError,
};

use super::{ADMIN_GROUP, Records};
use crate::auth::Session;
use crate::clock;
use crate::pages::{Lang, alert, page};

/// Records shown per page of the list view.
const PAGE_SIZE: u64 = 50;

mod form;
mod words;

pub use form::{act, form, renew};
use words::{Words, words};

/// Who is using the page: the browser session, its lease name and its grants in a database.
struct Viewer {
    session: Session,
    lease_id: String,
}

impl Viewer {
    fn from(records: &Records, headers: &HeaderMap) -> Option<Self> {
        let session = records.auth.session(headers)?;
        let lease_id = format!("web-{}", &session.token_hash[..16]);
        Some(Self { session, lease_id })
    }

    fn is_admin(&self) -> bool {
        self.session
            .row
            .groups
            .iter()
            .any(|group| group == ADMIN_GROUP)
    }

    fn may(&self, records: &Records, database: &str, access: Access, table: &str) -> bool {
        records
            .grants_for(&self.session.row.groups, database)
            .allows(access, table)
    }
}

fn now_ms() -> i64 {
    clock::timestamp_now().as_millisecond()
}

/// A time for people: local Japanese time, to the second.
fn local_time(ms: i64) -> String {
    let Ok(time) = jiff::Timestamp::from_millisecond(ms) else {
        return ms.to_string();
    };
    match time.in_tz("Asia/Tokyo") {
        Ok(zoned) => zoned.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

fn text_of(datum: &Datum) -> String {
    match datum {
        Datum::Null => String::new(),
        Datum::Integer(number) => number.to_string(),
        Datum::Real(number) => number.to_string(),
        Datum::Text(text) => text.clone(),
        Datum::Blob(bytes) => format!("({} bytes)", bytes.len()),
    }
}

fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn query_value(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)])
        .map(|pair| pair[2..].to_owned())
        .unwrap_or_default()
}

fn records_page(lang: Lang, status: StatusCode, title: &str, body: &str) -> Response {
    // The list view needs more width than genkan's forms.
    let body = format!(
        "<style>body{{max-width:76rem}}td.lock{{color:#7a4b2a;white-space:nowrap}}\
nav.crumbs{{margin-bottom:1rem}}form.find input{{display:inline-block;width:auto;max-width:12rem;margin-left:.35rem}}\
form.find label{{display:inline-block;margin:.2rem .8rem .2rem 0}}.muted{{color:#666}}\
dl.record dt{{font-weight:600;margin-top:.6rem}}dl.record dd{{margin-left:0}}dl.record input{{width:100%;max-width:36rem;padding:.4rem;font-size:1rem;box-sizing:border-box}}dl.record input[readonly]{{background:#f4f4f4;border:1px solid #ccc}}.badge{{display:inline-block;background:#7a4b2a;color:#fff;border-radius:3px;padding:0 .35rem;margin-right:.35rem;font-size:.8rem}}</style>{body}"
    );
    let mut response = page(lang, status, title, &body);
    // The form view's one script (the lease heartbeat) comes from genkan itself.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::pages::CSP_OWN_SCRIPTS),
    );
    response
}

/// `GET /_genkan/static/records-lease.js`: the lease heartbeat of the form view.
pub async fn lease_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("page/lease.js"),
    )
        .into_response()
}

fn refused(lang: Lang, status: StatusCode, message: &str) -> Response {
    let w = words(lang);
    records_page(
        lang,
        status,
        w.title,
        &format!(
            "<h1>{}</h1>{}<p><a href=\"/_genkan/records\">{}</a></p>",
            w.title,
            alert(Some(message)),
            w.back_to_list
        ),
    )
}

/// What a store failure means to a person, in their language.
fn explain(w: &Words, error: &StoreError) -> String {
    match error {
        StoreError::Locked(leases) => leases
            .iter()
            .map(|lease| lock_text(w, lease))
            .collect::<Vec<_>>()
            .join(" "),
        StoreError::ModIdMismatch { .. } => w.changed_meanwhile.to_owned(),
        other => format!("{} ({} {})", other, w.code, other.code().number()),
    }
}

fn lock_text(w: &Words, lease: &Lease) -> String {
    w.locked_by
        .replace("{user}", &lease.holder.user)
        .replace("{since}", &local_time(lease.since_ms))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::error!(%error, "records page work failed");
            None
        }
    }
}

/// `GET /_genkan/records`: every database and the layouts the person may read.
pub async fn overview(State(records): State<Arc<Records>>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    let w = words(lang);
    let Some(viewer) = Viewer::from(&records, &headers) else {
        return refused(lang, StatusCode::UNAUTHORIZED, w.sign_in_first);
    };
    let listing = {
        let records = Arc::clone(&records);
        blocking(move || {
            records
                .database_names()
                .into_iter()
                .filter_map(|name| {
                    let db = records.database(&name)?;
                    Some((name, db.layouts().unwrap_or_default()))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default()
    };
    let mut body = format!("<h1>{}</h1>", w.title);
    let mut shown = 0;
    for (database, layouts) in listing {
        let readable: Vec<&Layout> = layouts
            .iter()
            .filter(|layout| viewer.may(&records, &database, Access::Read, &layout.table))
            .collect();
        if readable.is_empty() {
            continue;
        }
        shown += 1;
        body.push_str(&format!(
            "<h2>{}</h2><table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            escape(&database),
            w.layout,
            w.table,
            w.fields
        ));
        for layout in readable {
            body.push_str(&format!(
                "<tr><td><a href=\"/_genkan/records/{}/{}\">{}</a></td><td>{}</td><td class=\"muted\">{}</td></tr>",
                segment(&database),
                segment(&layout.name),
                escape(&layout.name),
                escape(&layout.table),
                escape(
                    &layout
                        .fields
                        .iter()
                        .map(|field| field.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        body.push_str("</tbody></table>");
    }
    if shown == 0 {
        body.push_str(&format!("<p>{}</p>", w.nothing_to_show));
    }
    records_page(lang, StatusCode::OK, w.title, &body)
}

/// The list view's parameters: find criteria per field (`q.<field>`), omit, sort and page.
#[derive(Debug, Default)]
struct ListParams {
    criteria: Vec<(String, String)>,
    omit: bool,
    sort: Option<(String, bool)>,
    page: u64,
}

impl ListParams {
    fn read(query: Option<&str>) -> Self {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
        let mut params = Self {
            page: 1,
            ..Self::default()
        };
        let mut descending = false;
        for (key, value) in pairs {
            match key.as_str() {
                "omit" => params.omit = value == "1",
                "sort" if !value.is_empty() => params.sort = Some((value, false)),
                "order" => descending = value == "descend",
                "page" => params.page = value.parse().unwrap_or(1).max(1),
                _ => {
                    if let Some(field) = key.strip_prefix("q.")
                        && !value.trim().is_empty()
                    {
                        params.criteria.push((field.to_owned(), value));
                    }
                }
            }
        }
        if let Some((_, order)) = params.sort.as_mut() {
            *order = descending;
        }
        params
    }

    /// The query string for the same find with another sort or page.
    fn link(&self, sort: Option<(&str, bool)>, page: u64) -> String {
        let mut parts: Vec<String> = self
            .criteria
            .iter()
            .map(|(field, value)| format!("q.{}={}", query_value(field), query_value(value)))
            .collect();
        if self.omit {
            parts.push("omit=1".into());
        }
        if let Some((field, descending)) = sort {
            parts.push(format!("sort={}", query_value(field)));
            if descending {
                parts.push("order=descend".into());
            }
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        parts.join("&")
    }
}

/// `GET /_genkan/records/{database}/{layout}`: the list view.
pub async fn list(
    State(records): State<Arc<Records>>,
    Path((database, layout_name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let w = words(lang);
    let Some(viewer) = Viewer::from(&records, &headers) else {
        return refused(lang, StatusCode::UNAUTHORIZED, w.sign_in_first);
    };
    let Some(db) = records.database(&database) else {
        return refused(lang, StatusCode::NOT_FOUND, w.no_such_layout);
    };
    let params = ListParams::read(query.as_deref());
    let find = (!params.criteria.is_empty()).then(|| FindByName {
        criteria: params.criteria.clone(),
        omit: params.omit,
    });
    let sort: Vec<SortRequest> = params
        .sort
        .iter()
        .map(|(field, descending)| SortRequest {
            field: field.clone(),
            order: if *descending { "descend" } else { "ascend" }.to_owned(),
        })
        .collect();
    let range = Range {
        offset: (params.page - 1) * PAGE_SIZE + 1,
        limit: PAGE_SIZE,
    };
    let looked_up = {
        let db = Arc::clone(&db);
        let layout_name = layout_name.clone();
        blocking(move || {
            let layout = db.layout(&layout_name)?;
            let query = Query {
                find: find.map(|request| find_requests(&layout, request)),
                sort,
                range: Some(range),
                portals: Some(Vec::new()),
            };
            let found = db.query(&layout, &query);
            let now = now_ms();
            let leases: Vec<Option<Lease>> = found.as_ref().map_or_else(
                |_| Vec::new(),
                |found| {
                    found
                        .records
                        .iter()
                        .map(|record| db.lease(&layout.table, record.record_id, now))
                        .collect()
                },
            );
            Ok::<_, StoreError>((layout, found, leases))
        })
        .await
    };
    let Some(looked_up) = looked_up else {
        return refused(lang, StatusCode::INTERNAL_SERVER_ERROR, w.failed);
    };
    let Ok((layout, found, leases)) = looked_up else {
        return refused(lang, StatusCode::NOT_FOUND, w.no_such_layout);
    };
    if !viewer.may(&records, &database, Access::Read, &layout.table) {
        return refused(lang, StatusCode::FORBIDDEN, w.not_allowed);
    }
    let base = format!(
        "/_genkan/records/{}/{}",
        segment(&database),
        segment(&layout.name)
    );
    let mut body = format!(
        "<nav class=\"crumbs\"><a href=\"/_genkan/records\">{}</a> › {} › {}</nav><h1>{}</h1>",
        w.title,
        escape(&database),
        escape(&layout.name),
        escape(&layout.name),
    );
    body.push_str(&find_form(&w, &layout, &params, &base));
    match found {
        Ok(found) => body.push_str(&list_table(&w, &layout, &params, &base, &found, &leases)),
        Err(error) if error.code() == Code::NoRecordsMatch => {
            body.push_str(&format!("<p id=\"no-match\">{}</p>", w.no_match));
        }
        Err(error) => body.push_str(&alert(Some(&explain(&w, &error)))),
    }
    records_page(lang, StatusCode::OK, &layout.name, &body)
}

/// The find requests for the form: its one request, or, with "omit" ticked, every record
/// minus the request's matches (FileMaker's Omit checkbox). "Every record" is the first
/// field's `*` (not empty) ORed with `=` (empty).
fn find_requests(layout: &Layout, request: FindByName) -> Vec<FindByName> {
    if !request.omit {
        return vec![request];
    }
    let Some(first) = layout.fields.first() else {
        return vec![request];
    };
    let all = |criterion: &str| FindByName {
        criteria: vec![(first.name.clone(), criterion.to_owned())],
        omit: false,
    };
    vec![all("*"), all("="), request]
}

fn find_form(w: &Words, layout: &Layout, params: &ListParams, base: &str) -> String {
    let mut form = format!("<form class=\"find\" method=\"get\" action=\"{base}\">");
    for field in &layout.fields {
        let value = params
            .criteria
            .iter()
            .find(|(name, _)| name == &field.name)
            .map_or("", |(_, value)| value.as_str());
        form.push_str(&format!(
            "<label>{name}<input name=\"q.{name}\" value=\"{value}\"></label>",
            name = escape(&field.name),
            value = escape(value),
        ));
    }
    form.push_str(&format!(
        "<label><input type=\"checkbox\" name=\"omit\" value=\"1\"{}> {}</label>\
<button type=\"submit\">{}</button> <a href=\"{base}\">{}</a>\
<p class=\"muted\">{}</p></form>",
        if params.omit { " checked" } else { "" },
        w.omit,
        w.find,
        w.show_all,
        w.operators,
    ));
    form
}

fn list_table(
    w: &Words,
    layout: &Layout,
    params: &ListParams,
    base: &str,
    found: &records::FoundSet,
    leases: &[Option<Lease>],
) -> String {
    let first = (params.page - 1) * PAGE_SIZE + 1;
    let last = first + found.records.len() as u64 - 1;
    let mut html = format!(
        "<p id=\"counts\">{}</p><table id=\"records\"><thead><tr><th>recordId</th>",
        w.counts
            .replace("{found}", &found.found.to_string())
            .replace("{total}", &found.total.to_string())
            .replace("{first}", &first.min(found.found).to_string())
            .replace("{last}", &last.to_string())
    );
    for field in &layout.fields {
        let descending = matches!(&params.sort, Some((name, false)) if name == &field.name);
        let marker = match &params.sort {
            Some((name, false)) if name == &field.name => " ▲",
            Some((name, true)) if name == &field.name => " ▼",
            _ => "",
        };
        html.push_str(&format!(
            "<th><a href=\"{base}?{}\">{}</a>{marker}</th>",
            escape(&params.link(Some((&field.name, descending)), 1)),
            escape(&field.name)
        ));
    }
    html.push_str(&format!("<th>{}</th></tr></thead><tbody>", w.lock));
    for (record, lease) in found.records.iter().zip(leases) {
        html.push_str(&format!(
            "<tr data-record=\"{id}\"><td><a href=\"{base}/{id}\">{id}</a></td>",
            id = record.record_id
        ));
        for (_, value) in &record.fields {
            html.push_str(&format!("<td>{}</td>", escape(&text_of(value))));
        }
        let lock = lease.as_ref().map_or_else(String::new, |lease| {
            format!(
                "<span class=\"badge\">{}</span>{}",
                w.lock,
                escape(&lock_text(w, lease))
            )
        });
        html.push_str(&format!("<td class=\"lock\">{lock}</td></tr>"));
    }
    html.push_str("</tbody></table><p>");
    let sort = params
        .sort
        .as_ref()
        .map(|(field, descending)| (field.as_str(), *descending));
    if params.page > 1 {
        html.push_str(&format!(
            "<a href=\"{base}?{}\">{}</a> ",
            escape(&params.link(sort, params.page - 1)),
            w.previous
        ));
    }
    if last < found.found {
        html.push_str(&format!(
            "<a href=\"{base}?{}\" id=\"next\">{}</a>",
            escape(&params.link(sort, params.page + 1)),
            w.next
        ));
    }
    html.push_str("</p>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parameters_round_trip_through_links() {
        let params = ListParams::read(Some(
            "q.name=%E4%BD%90%E8%97%A4&q.note=&omit=1&sort=phone&order=descend&page=3",
        ));
        assert_eq!(params.criteria, [("name".to_owned(), "佐藤".to_owned())]);
        assert!(params.omit);
        assert_eq!(params.sort, Some(("phone".to_owned(), true)));
        assert_eq!(params.page, 3);
        let again = ListParams::read(Some(&params.link(Some(("phone", true)), 3)));
        assert_eq!(again.criteria, params.criteria);
        assert_eq!(again.sort, params.sort);
        assert_eq!(again.page, 3);
    }
}
