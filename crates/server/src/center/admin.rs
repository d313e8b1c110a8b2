//! `GET /_genkan/admin/flows`: the contact center as configured, for administrators: each
//! queue's agents, and each flow with its diagram. Flows are checked when the configuration is
//! read, so what is shown here is what would run.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use gateway::gate::{Identity, html_escape as escape};

use crate::auth::Auth;
use crate::config::ContactSettings;
use crate::pages::{Lang, page};

/// What the page needs.
#[derive(Clone)]
struct FlowsPage {
    auth: Arc<Auth>,
    contact: Arc<ContactSettings>,
}

/// The admin route for the configured contact center.
pub fn router(auth: Arc<Auth>, contact: Arc<ContactSettings>) -> Router {
    Router::new()
        .route("/_genkan/admin/flows", get(flows))
        .with_state(FlowsPage { auth, contact })
}

async fn flows(
    State(state): State<FlowsPage>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
) -> Response {
    let identity = identity.map(|Extension(identity)| identity);
    if crate::admin::administrator(&state.auth, &headers, identity.as_ref()).is_none() {
        return crate::admin::not_admin(&headers);
    }
    let lang = Lang::from_headers(&headers);
    let (title, queues, agents, start, not_running) = match lang {
        Lang::Ja => (
            "問い合わせフロー",
            "キュー",
            "エージェント",
            "開始ブロック",
            "チャットは /_genkan/chat、エージェント画面は /_genkan/desk です。電話はまだ受けられません。",
        ),
        Lang::En => (
            "Contact flows",
            "Queues",
            "Agents",
            "starts at",
            "Chats come in on /_genkan/chat; agents work on /_genkan/desk. Calls are not taken yet.",
        ),
    };
    let contact = &state.contact;
    let queue_rows: String = contact
        .queues
        .keys()
        .map(|queue| {
            let names: Vec<String> = contact
                .agents
                .iter()
                .filter(|agent| agent.queues.contains(queue))
                .map(|agent| escape(&agent.name))
                .collect();
            format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(queue),
                names.join(", ")
            )
        })
        .collect();
    let diagrams: String = contact
        .flows
        .iter()
        .map(|flow| {
            format!(
                "<h2>{name}</h2><p>{start}: <code>{first}</code></p><div class=\"diagram\">{svg}</div>",
                name = escape(&flow.name),
                first = escape(&flow.start),
                svg = contact::diagram::diagram(flow),
            )
        })
        .collect();
    let body = format!(
        "<h1>{title}</h1><p class=\"notice\">{not_running}</p>\
<table><thead><tr><th>{queues}</th><th>{agents}</th></tr></thead><tbody>{queue_rows}</tbody></table>\
{diagrams}"
    );
    page(lang, StatusCode::OK, title, &body)
}
