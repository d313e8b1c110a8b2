//! `GET /_genkan/supervisor`: the center now and today, for administrators and supervisors —
//! each agent's presence and load, each queue's waiting contacts and longest wait, today's
//! contacts per hour as a chart, and the service level (contacts answered within 20 seconds of
//! entering a queue, of all that entered one). The page refreshes itself every 10 seconds.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gateway::gate::html_escape as escape;
use store_sqlite::{ContactRow, ContactSearch};

use super::runtime::ContactCenter;
use crate::auth::Auth;
use crate::config::ContactSettings;
use crate::pages::{Lang, page};

/// Seconds within which an answer counts for the service level.
const SERVICE_LEVEL_SECONDS: i64 = 20;

#[derive(Clone)]
struct Supervisor {
    auth: Arc<Auth>,
    center: Arc<ContactCenter>,
    settings: Arc<ContactSettings>,
}

/// The supervisor route.
pub fn router(
    auth: Arc<Auth>,
    center: Arc<ContactCenter>,
    settings: Arc<ContactSettings>,
) -> Router {
    Router::new()
        .route("/_genkan/supervisor", get(overview))
        .with_state(Supervisor {
            auth,
            center,
            settings,
        })
}

/// Contacts per local hour, and the service level as (answered in time, queued).
fn today(rows: &[ContactRow], zone: &jiff::tz::TimeZone) -> ([usize; 24], usize, usize) {
    let mut hours = [0usize; 24];
    let (mut in_time, mut queued) = (0, 0);
    let parse = |text: &str| text.parse::<jiff::Timestamp>().ok();
    for row in rows {
        if let Some(at) = parse(&row.initiated_at) {
            hours[usize::from(zone.to_datetime(at).hour().unsigned_abs())] += 1;
        }
        if let Some(entered) = row.queued_at.as_deref().and_then(parse) {
            queued += 1;
            let answered = row.connected_at.as_deref().and_then(parse);
            if answered.is_some_and(|answered| {
                answered.duration_since(entered).as_secs() <= SERVICE_LEVEL_SECONDS
            }) {
                in_time += 1;
            }
        }
    }
    (hours, in_time, queued)
}

/// A bar chart of 24 hours.
fn chart(hours: &[usize; 24]) -> String {
    const BAR: usize = 26;
    const HEIGHT: usize = 140;
    let most = hours.iter().copied().max().unwrap_or(0).max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"contacts per hour\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"11\">",
        w = BAR * 24 + 20,
        h = HEIGHT + 54
    );
    for (hour, count) in hours.iter().enumerate() {
        let x = 10 + hour * BAR;
        let height = count * HEIGHT / most;
        let y = 24 + HEIGHT - height;
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{height}\" fill=\"#4f7cac\"><title>{hour}:00 {count}</title></rect>",
            x + 3,
            BAR - 6
        ));
        if *count > 0 {
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{count}</text>",
                x + BAR / 2,
                y.saturating_sub(3)
            ));
        }
        if hour % 3 == 0 {
            svg.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{hour}</text>",
                x + BAR / 2,
                HEIGHT + 42
            ));
        }
    }
    svg.push_str(&format!(
        "<line x1=\"10\" y1=\"{y}\" x2=\"{x}\" y2=\"{y}\" stroke=\"#888\"/></svg>",
        y = HEIGHT + 24,
        x = 10 + BAR * 24
    ));
    svg
}

async fn overview(State(state): State<Supervisor>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    let ja = lang == Lang::Ja;
    let title = if ja {
        "スーパーバイザー"
    } else {
        "Supervisor"
    };
    if super::contacts_page::may_search(&state.auth, &headers).is_none() {
        return super::contacts_page::not_overseer(lang, title);
    }
    let Some(snapshot) = state.center.snapshot().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let zone = state
        .settings
        .queues
        .values()
        .next()
        .map_or(jiff::tz::TimeZone::UTC, |hours| hours.zone.clone());
    let now = crate::clock::timestamp_now();
    let date = zone.to_datetime(now).date();
    let start = zone
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .unwrap_or(now);
    let end = date
        .tomorrow()
        .ok()
        .and_then(|tomorrow| {
            zone.to_timestamp(tomorrow.to_datetime(jiff::civil::Time::midnight()))
                .ok()
        })
        .unwrap_or(now);
    let search = ContactSearch {
        since: Some(crate::clock::utc_text(start)),
        until: Some(crate::clock::utc_text(end)),
        limit: 100_000,
        ..ContactSearch::default()
    };
    let auth = Arc::clone(&state.auth);
    let rows = tokio::task::spawn_blocking(move || {
        auth.database()?
            .search_contacts(&search)
            .map_err(anyhow::Error::from)
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default();
    let (hours, in_time, queued) = today(&rows, &zone);
    let level = if queued == 0 {
        "—".to_owned()
    } else {
        format!(
            "{:.0} % ({in_time} / {queued})",
            in_time as f64 * 100.0 / queued as f64
        )
    };
    let agent_rows: String = snapshot
        .agents
        .iter()
        .map(|agent| {
            format!(
                "<tr><td>{}</td><td>{:?}</td><td>{}</td></tr>",
                escape(&agent.name),
                agent.presence,
                agent.contacts
            )
        })
        .collect();
    let queue_rows: String = snapshot
        .queues
        .iter()
        .map(|queue| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&queue.name),
                queue.waiting,
                queue
                    .oldest_wait_seconds
                    .map_or_else(|| "—".to_owned(), |seconds| format!("{seconds} s"))
            )
        })
        .collect();
    let labels = if ja {
        [
            "エージェント",
            "状態",
            "対応中",
            "キュー",
            "待ち",
            "最長待ち",
            "本日の問い合わせ（時間別）",
            "サービスレベル（20 秒以内の応答）",
            "件",
        ]
    } else {
        [
            "Agent",
            "Presence",
            "Contacts",
            "Queue",
            "Waiting",
            "Longest wait",
            "Today's contacts per hour",
            "Service level (answered within 20 s)",
            "contacts",
        ]
    };
    let body = format!(
        "<style>body{{max-width:56rem}}</style><h1>{title}</h1>\
<table id=\"agents\"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{agent_rows}</tbody></table>\
<table id=\"queues\"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{queue_rows}</tbody></table>\
<h2>{}</h2><p id=\"today\">{} {}</p>{}<h2>{}</h2><p id=\"service-level\">{level}</p>",
        labels[0],
        labels[1],
        labels[2],
        labels[3],
        labels[4],
        labels[5],
        labels[6],
        rows.len(),
        labels[8],
        chart(&hours),
        labels[7],
    );
    let mut response = page(lang, StatusCode::OK, title, &body);
    response
        .headers_mut()
        .insert("refresh", HeaderValue::from_static("10"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(initiated: &str, queued: Option<&str>, connected: Option<&str>) -> ContactRow {
        ContactRow {
            id: 1,
            channel: "chat".into(),
            customer_address: String::new(),
            customer: None,
            customer_name: String::new(),
            queue: None,
            agent: None,
            initiated_at: initiated.into(),
            queued_at: queued.map(str::to_owned),
            connected_at: connected.map(str::to_owned),
            ended_at: initiated.into(),
            outcome: "Completed".into(),
            attributes: "{}".into(),
            notes: String::new(),
            transcript: "[]".into(),
            recording: None,
        }
    }

    #[test]
    fn hours_are_local_and_the_service_level_counts_answers_within_20_seconds() {
        let tokyo = jiff::tz::TimeZone::get("Asia/Tokyo").unwrap();
        let rows = [
            // 09:00 and 09:30 in Tokyo; answered after 10 s and after 45 s.
            row(
                "2026-12-04T00:00:00Z",
                Some("2026-12-04T00:00:05Z"),
                Some("2026-12-04T00:00:15Z"),
            ),
            row(
                "2026-12-04T00:30:00Z",
                Some("2026-12-04T00:30:00Z"),
                Some("2026-12-04T00:30:45Z"),
            ),
            // 14:00, queued and never answered; 15:00, closed before any queue.
            row("2026-12-04T05:00:00Z", Some("2026-12-04T05:00:00Z"), None),
            row("2026-12-04T06:00:00Z", None, None),
        ];
        let (hours, in_time, queued) = today(&rows, &tokyo);
        assert_eq!((hours[9], hours[14], hours[15], hours[0]), (2, 1, 1, 0));
        assert_eq!((in_time, queued), (1, 3));
        let svg = chart(&hours);
        assert_eq!(svg.matches("<rect ").count(), 24);
        assert!(svg.contains("<title>9:00 2</title>"));
    }
}
