//! `GET /_genkan/contacts`: contact records for administrators and supervisors, searched by
//! day, agent, queue, outcome and words; `GET /_genkan/contacts.csv` the same search as a CSV
//! file (UTF-8 with a byte-order mark, for Excel), for groups the policy gives `export`.
//! Recorded calls show a player for `recordings.rs`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gateway::gate::html_escape as escape;
use serde::Deserialize;
use store_sqlite::{ContactRow, ContactSearch};

use crate::auth::Auth;
use crate::pages::{Lang, page};

/// Rows shown or exported at most.
const LIMIT: u32 = 5_000;

/// The search as the form sends it.
#[derive(Debug, Default, Deserialize)]
struct Filters {
    /// First day (`2026-12-01`), inclusive, UTC.
    from: Option<String>,
    /// Last day, inclusive.
    to: Option<String>,
    agent: Option<String>,
    queue: Option<String>,
    outcome: Option<String>,
    text: Option<String>,
}

impl Filters {
    fn search(&self) -> ContactSearch {
        let given = |value: &Option<String>| {
            value
                .as_ref()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let day = |value: &Option<String>| {
            given(value).and_then(|text| text.parse::<jiff::civil::Date>().ok())
        };
        ContactSearch {
            since: day(&self.from).map(|date| format!("{date}T00:00:00Z")),
            until: day(&self.to)
                .and_then(|date| date.tomorrow().ok())
                .map(|date| format!("{date}T00:00:00Z")),
            agent: given(&self.agent),
            queue: given(&self.queue),
            outcome: given(&self.outcome),
            text: given(&self.text),
            limit: LIMIT,
        }
    }

    fn query_string(&self) -> String {
        let pairs = [
            ("from", &self.from),
            ("to", &self.to),
            ("agent", &self.agent),
            ("queue", &self.queue),
            ("outcome", &self.outcome),
            ("text", &self.text),
        ];
        pairs
            .iter()
            .filter_map(|(name, value)| {
                value
                    .as_ref()
                    .filter(|value| !value.is_empty())
                    .map(|value| format!("{name}={}", gateway::gate::percent_encode(value)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// The contact search routes.
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/_genkan/contacts", get(search_page))
        .route("/_genkan/contacts.csv", get(export))
        .with_state(auth)
}

/// Administrators and supervisors.
pub(super) fn may_search(auth: &Auth, headers: &HeaderMap) -> Option<Vec<String>> {
    let session = auth.session(headers)?;
    let groups = session.row.groups;
    groups
        .iter()
        .any(|group| group == "admin" || group == "supervisor")
        .then_some(groups)
}

/// The page for anyone who is neither administrator nor supervisor.
pub(super) fn not_overseer(lang: Lang, title: &str) -> Response {
    let only = match lang {
        Lang::Ja => "管理者とスーパーバイザーだけが見られます。",
        Lang::En => "For administrators and supervisors.",
    };
    page(
        lang,
        StatusCode::FORBIDDEN,
        title,
        &format!("<p>{only}</p>"),
    )
}

async fn rows(auth: Arc<Auth>, search: ContactSearch) -> Result<Vec<ContactRow>, Response> {
    tokio::task::spawn_blocking(move || {
        auth.database()?
            .search_contacts(&search)
            .map_err(anyhow::Error::from)
    })
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?
    .map_err(|error| {
        tracing::error!("contact search failed: {error:#}");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })
}

/// `2026-12-03T02:00:00Z` as `2026-12-03 02:00 UTC`.
fn shown_time(stored: &str) -> String {
    match stored.get(..16) {
        Some(minutes) if stored.ends_with('Z') => format!("{} UTC", minutes.replace('T', " ")),
        _ => stored.to_owned(),
    }
}

async fn search_page(
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let ja = lang == Lang::Ja;
    let title = if ja {
        "問い合わせ履歴"
    } else {
        "Contacts"
    };
    if may_search(&auth, &headers).is_none() {
        return not_overseer(lang, title);
    }
    let found = match rows(Arc::clone(&auth), filters.search()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let value = |field: &Option<String>| escape(field.as_deref().unwrap_or(""));
    let labels = if ja {
        [
            "開始日",
            "終了日",
            "エージェント",
            "キュー",
            "結果",
            "語句",
            "検索",
            "CSV で書き出す",
            "日時",
            "種別",
            "お客様",
            "メモ",
            "件",
        ]
    } else {
        [
            "From",
            "To",
            "Agent",
            "Queue",
            "Outcome",
            "Words",
            "Search",
            "Export CSV",
            "Time",
            "Channel",
            "Customer",
            "Notes",
            "contacts",
        ]
    };
    let body_rows: String = found
        .iter()
        .map(|row| {
            let customer = if row.customer_name.is_empty() {
                escape(&row.customer_address)
            } else {
                format!("{} ({})", escape(&row.customer_name), escape(&row.customer_address))
            };
            // A recorded call plays in the page (the route checks `recording_playback`).
            let audio = match &row.recording {
                Some(_) => format!(
                    "<br><audio controls preload=\"none\" src=\"/_genkan/contacts/{}/recording\"></audio>",
                    row.id
                ),
                None => String::new(),
            };
            format!(
                "<tr><td>{}</td><td>{}{audio}</td><td>{customer}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&shown_time(&row.initiated_at)),
                escape(&row.channel),
                escape(row.agent.as_deref().unwrap_or("")),
                escape(row.queue.as_deref().unwrap_or("")),
                escape(&row.outcome),
                escape(&row.notes),
            )
        })
        .collect();
    let body = format!(
        "<style>body{{max-width:72rem}}td{{white-space:pre-wrap}}</style><h1>{title}</h1><form method=\"get\" action=\"/_genkan/contacts\" class=\"inline\">\
<label>{l0}<input type=\"date\" name=\"from\" value=\"{from}\"></label><label>{l1}<input type=\"date\" name=\"to\" value=\"{to}\"></label>\
<label>{l2}<input name=\"agent\" value=\"{agent}\"></label><label>{l3}<input name=\"queue\" value=\"{queue}\"></label>\
<label>{l4}<input name=\"outcome\" value=\"{outcome}\" list=\"outcomes\"></label><label>{l5}<input name=\"text\" value=\"{text}\"></label>\
<datalist id=\"outcomes\"><option>Completed<option>Abandoned<option>NoAgentAvailable<option>OutOfHours<option>EndedByFlow<option>Error</datalist>\
<button type=\"submit\">{l6}</button></form><p><a id=\"csv\" href=\"/_genkan/contacts.csv?{query}\">{l7}</a></p>\
<p id=\"count\">{count} {l12}</p><table id=\"contacts\"><thead><tr><th>{l8}</th><th>{l9}</th><th>{l10}</th><th>{l2}</th><th>{l3}</th><th>{l4}</th><th>{l11}</th></tr></thead><tbody>{body_rows}</tbody></table>",
        l0 = labels[0],
        l1 = labels[1],
        l2 = labels[2],
        l3 = labels[3],
        l4 = labels[4],
        l5 = labels[5],
        l6 = labels[6],
        l7 = labels[7],
        l8 = labels[8],
        l9 = labels[9],
        l10 = labels[10],
        l11 = labels[11],
        l12 = labels[12],
        from = value(&filters.from),
        to = value(&filters.to),
        agent = value(&filters.agent),
        queue = value(&filters.queue),
        outcome = value(&filters.outcome),
        text = value(&filters.text),
        query = escape(&filters.query_string()),
        count = found.len(),
    );
    page(lang, StatusCode::OK, title, &body)
}

async fn export(
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    let Some(groups) = may_search(&auth, &headers) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    if !auth.has_capability(&groups, policy::Capability::Export) {
        return (
            StatusCode::FORBIDDEN,
            "the policy does not give your groups the `export` capability\n",
        )
            .into_response();
    }
    let found = match rows(Arc::clone(&auth), filters.search()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let header_row = [
        "id",
        "channel",
        "customer_address",
        "customer_name",
        "customer_record_id",
        "queue",
        "agent",
        "initiated_at",
        "connected_at",
        "ended_at",
        "outcome",
        "notes",
        "transcript",
    ];
    let mut result = writer.write_record(header_row);
    for row in &found {
        if result.is_err() {
            break;
        }
        result = writer.write_record([
            row.id.to_string(),
            row.channel.clone(),
            row.customer_address.clone(),
            row.customer_name.clone(),
            row.customer
                .as_ref()
                .map(|c| c.record_id.to_string())
                .unwrap_or_default(),
            row.queue.clone().unwrap_or_default(),
            row.agent.clone().unwrap_or_default(),
            row.initiated_at.clone(),
            row.connected_at.clone().unwrap_or_default(),
            row.ended_at.clone(),
            row.outcome.clone(),
            row.notes.clone(),
            row.transcript.clone(),
        ]);
    }
    let (Ok(()), Ok(bytes)) = (result, writer.into_inner()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"contacts.csv\""),
    );
    response
}
