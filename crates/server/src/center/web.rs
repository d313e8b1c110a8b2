//! The contact center in the browser: the agent desktop (`/_genkan/desk`, signed-in agents
//! only) and the customer chat page (`/_genkan/chat`, deliberately public), each a small page
//! with an ES module talking JSON over a WebSocket to the event loop.
//!
//! WebSockets are only accepted from pages of this origin (the `Origin` header must name the
//! host the request came to), so another site cannot open a desk in an agent's name. Chat
//! messages are limited in size and rate; an agent's second tab takes over and the first is
//! told so.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contact::{ContactId, Event, Status};
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument;

use super::runtime::{ContactCenter, ToAgent, ToCustomer};
use crate::auth::Auth;
use crate::config::ContactSettings;
use crate::pages::Lang;
use crate::voice::Softphones;

mod softphone;

/// Longest chat message, in characters.
const MAX_MESSAGE_CHARS: usize = 2_000;
/// Messages a chat may send per ten seconds.
const MESSAGES_PER_TEN_SECONDS: usize = 20;
/// A socket's read buffer and the output gathered before a write: small, because a center holds
/// thousands of sockets whose messages are short (the library's 128 KiB each made 10,000 chats
/// take 2 GiB); larger messages still arrive, the buffer grows for them.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024;
/// Output a socket may hold unsent before it is closed, so a reader that stopped reading cannot
/// make genkan keep its messages without end.
const MAX_UNSENT_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
struct Web {
    center: Arc<ContactCenter>,
    auth: Arc<Auth>,
    settings: Arc<ContactSettings>,
    /// The browser softphones, when `[voice]` is configured.
    softphones: Option<Softphones>,
}

/// The desk and chat routes.
pub fn router(
    center: Arc<ContactCenter>,
    auth: Arc<Auth>,
    settings: Arc<ContactSettings>,
    softphones: Option<Softphones>,
) -> Router {
    Router::new()
        .route("/_genkan/desk", get(desk_page))
        .route("/_genkan/desk/ws", get(desk_socket))
        .route(
            "/_genkan/desk/softphone",
            axum::routing::post(softphone::offer).delete(softphone::close),
        )
        .route(
            "/_genkan/desk/softphone/hold",
            axum::routing::post(softphone::hold),
        )
        .route("/_genkan/chat", get(chat_page))
        .route("/_genkan/chat/ws", get(chat_socket))
        .route(
            "/_genkan/static/desk.js",
            get(|| script(include_str!("web/desk.js"))),
        )
        .route(
            "/_genkan/static/softphone.js",
            get(|| script(include_str!("web/softphone.js"))),
        )
        .route(
            "/_genkan/static/chat.js",
            get(|| script(include_str!("web/chat.js"))),
        )
        .route(
            "/_genkan/static/widget.js",
            get(|| script(include_str!("web/widget.js"))),
        )
        .merge(simulated_calls())
        .with_state(Web {
            center,
            auth,
            settings,
            softphones,
        })
}

async fn script(text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

/// A page with one module script; the CSP lets it talk to this origin only.
fn app_page(lang: Lang, title: &str, body: &str, module: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
<style>{STYLE}</style><script type=\"module\" src=\"/_genkan/static/{module}\"></script></head>\
<body><header>玄関 genkan</header>{body}</body></html>\n",
        lang = lang.code(),
        title = gateway::gate::html_escape(title),
    );
    crate::pages::html_response(StatusCode::OK, html, crate::pages::CSP_OWN_SCRIPTS)
}

const STYLE: &str = "body{font-family:system-ui,\"Hiragino Sans\",\"Yu Gothic UI\",sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
header{font-weight:600;letter-spacing:.1em;color:#7a4b2a;margin-bottom:1.2rem}h1{font-size:1.3rem}\
button{padding:.4rem 1rem;font-size:1rem;margin:.2rem .3rem .2rem 0}input,textarea{font-size:1rem;padding:.4rem;box-sizing:border-box}\
.card{border:1px solid #ccc;border-radius:6px;padding:.8rem 1rem;margin:.8rem 0;background:#fff}.offer{border-color:#c77d00;background:#fff8ea}\
.log{height:14rem;overflow-y:auto;border:1px solid #ddd;border-radius:4px;padding:.5rem;background:#fafafa;margin:.5rem 0}\
.line{margin:.2rem 0}.from-agent,.me{color:#1d4e89}.from-customer{color:#222}.from-center{color:#6b4e16;font-style:italic}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #eee;padding:.25rem .4rem;text-align:left;vertical-align:top}\
.log.call-log{height:auto;min-height:1.5rem}.log.call-log:empty{display:none}.ringing{color:#c77d00;font-weight:600;margin-right:.5rem}.phone-off{display:block;color:#555;margin-bottom:.5rem}.status{font-weight:600}.problem{color:#a11}.phone{border-color:#7a4b2a}.call-controls button[aria-pressed=true]{background:#f3d9b1}\
.audio-stats{font-size:.85rem;color:#555;margin-left:.5rem}.muted{color:#666}.row{display:flex;gap:.5rem}.row input{flex:1}";

/// The softphone's part of the desk (desk.js drives it).
const PHONE: &str = "<section class=\"card phone\" id=\"phone\"><p><span class=\"status\" id=\"phone-state\" data-state=\"off\">電話: オフ / Phone: off</span> \
<button id=\"phone-on\">電話をオンにする / Turn phone on</button><button id=\"phone-off\" hidden>電話をオフにする / Turn phone off</button></p>\
<p class=\"problem\" id=\"phone-problem\" role=\"alert\" hidden></p><audio id=\"phone-audio\" autoplay></audio></section>";

fn words(lang: Lang) -> (&'static str, &'static str, &'static str) {
    match lang {
        Lang::Ja => (
            "エージェント画面",
            "チャットでのお問い合わせ",
            "このページはエージェントとして登録された人だけが使えます。",
        ),
        Lang::En => (
            "Agent desktop",
            "Chat with us",
            "This page is for people registered as agents.",
        ),
    }
}

/// The signed-in user, if they are a configured agent.
fn agent_of(web: &Web, headers: &HeaderMap) -> Option<String> {
    let session = web.auth.session(headers)?;
    let name = session.row.user;
    web.settings
        .agents
        .iter()
        .any(|agent| agent.name == name)
        .then_some(name)
}

/// Whether a WebSocket comes from a page of this origin.
fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok());
    // The `Host` header on HTTP/1.1, the `:authority` (in the URI) on HTTP/2.
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(http::uri::Authority::as_str));
    matches!((origin, host), (Some(origin), Some(host)) if origin == format!("https://{host}"))
}

async fn desk_page(State(web): State<Web>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    let (title, _, only_agents) = words(lang);
    let Some(agent) = agent_of(&web, &headers) else {
        return crate::pages::page(
            lang,
            StatusCode::FORBIDDEN,
            title,
            &format!("<p>{only_agents}</p>"),
        );
    };
    let body = format!(
        "<h1>{title}</h1><p><span id=\"me\">{agent}</span> — <span class=\"status\" id=\"presence\">…</span></p>\
<p id=\"switch\"><button data-status=\"Available\">受付可 / Available</button><button data-status=\"Away\">離席 / Away</button>\
<button data-status=\"Offline\">オフライン / Offline</button></p><p class=\"muted\" id=\"connection\"></p>\
{phone}<div id=\"offers\"></div><div id=\"contacts\"></div>",
        agent = gateway::gate::html_escape(&agent),
        phone = if web.softphones.is_some() { PHONE } else { "" },
    );
    app_page(lang, title, &body, "desk.js")
}

async fn chat_page(headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    let (_, title, _) = words(lang);
    let (name, email, start, send, leave) = match lang {
        Lang::Ja => (
            "お名前",
            "メールアドレス",
            "チャットを始める",
            "送信",
            "終了",
        ),
        Lang::En => ("Name", "E-mail", "Start chat", "Send", "Leave"),
    };
    let body = format!(
        "<h1>{title}</h1><form id=\"start\" class=\"card\"><p><label>{name}<br><input id=\"name\" maxlength=\"100\" required></label></p>\
<p><label>{email}<br><input id=\"email\" type=\"email\" maxlength=\"200\" required></label></p><button type=\"submit\">{start}</button></form>\
<div id=\"chat\" hidden><div class=\"log\" id=\"log\" aria-live=\"polite\"></div><form id=\"say\" class=\"row\">\
<input id=\"text\" maxlength=\"{MAX_MESSAGE_CHARS}\" autocomplete=\"off\"><button type=\"submit\">{send}</button>\
<button type=\"button\" id=\"leave\">{leave}</button></form><p class=\"muted\" id=\"state\"></p></div>"
    );
    app_page(lang, title, &body, "chat.js")
}

async fn desk_socket(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers, &uri) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some(agent) = agent_of(&web, &headers) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    upgrade
        .max_message_size(64 * 1024)
        .read_buffer_size(SOCKET_BUFFER_BYTES)
        .write_buffer_size(SOCKET_BUFFER_BYTES)
        .max_write_buffer_size(MAX_UNSENT_BYTES)
        .on_upgrade(move |socket| desk(web.center, agent, socket))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromDesk {
    Status {
        status: String,
    },
    Accept {
        contact: u64,
    },
    Reject {
        contact: u64,
    },
    Message {
        contact: u64,
        text: String,
    },
    End {
        contact: u64,
    },
    Notes {
        contact: u64,
        notes: String,
    },
    CreateCustomer {
        contact: u64,
        fields: Vec<(String, String)>,
    },
}

async fn desk(center: Arc<ContactCenter>, agent: String, mut socket: WebSocket) {
    let desk = center.agent_desk(&agent);
    let generation = desk.generation;
    let mut messages = desk.messages;
    run_desk(&center, &agent, &mut messages, &mut socket)
        .instrument(tracing::info_span!("desk", %agent))
        .await;
    center.desk_closed(&agent, generation);
}

async fn run_desk(
    center: &ContactCenter,
    agent: &str,
    messages: &mut tokio::sync::mpsc::UnboundedReceiver<ToAgent>,
    socket: &mut WebSocket,
) {
    let agent = agent.to_owned();
    loop {
        tokio::select! {
            message = messages.recv() => {
                let Some(message) = message else { return };
                let replaced = matches!(message, ToAgent::Replaced);
                let Ok(text) = serde_json::to_string(&message) else { continue };
                if socket.send(Message::Text(text.into())).await.is_err() || replaced {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(incoming)) = incoming else { return };
                let Message::Text(text) = incoming else { continue };
                let Ok(request) = serde_json::from_str::<FromDesk>(&text) else { continue };
                match request {
                    FromDesk::Status { status } => {
                        let status = match status.as_str() {
                            "Available" => Status::Available,
                            "Away" => Status::Away,
                            _ => Status::Offline,
                        };
                        center.event(Event::AgentStatus { agent: agent.clone(), status });
                    }
                    FromDesk::Accept { contact } => center.event(Event::Accept { agent: agent.clone(), contact: ContactId(contact) }),
                    FromDesk::Reject { contact } => center.event(Event::Reject { agent: agent.clone(), contact: ContactId(contact) }),
                    FromDesk::Message { contact, text } => {
                        let text: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
                        if !text.trim().is_empty() {
                            center.agent_says(&agent, ContactId(contact), &text);
                        }
                    }
                    FromDesk::End { contact } => center.event(Event::AgentEnded { agent: agent.clone(), contact: ContactId(contact) }),
                    FromDesk::CreateCustomer { contact, fields } => {
                        center.create_customer(&agent, ContactId(contact), fields);
                    }
                    FromDesk::Notes { contact, notes } => {
                        let notes: String = notes.chars().take(10_000).collect();
                        center.wrap_up(&agent, ContactId(contact), &notes);
                    }
                }
            }
        }
    }
}

async fn chat_socket(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers, &uri) {
        return StatusCode::FORBIDDEN.into_response();
    }
    upgrade
        .max_message_size(16 * 1024)
        .read_buffer_size(SOCKET_BUFFER_BYTES)
        .write_buffer_size(SOCKET_BUFFER_BYTES)
        .max_write_buffer_size(MAX_UNSENT_BYTES)
        .on_upgrade(move |socket| chat(web.center, socket))
}

async fn chat(center: Arc<ContactCenter>, mut socket: WebSocket) {
    // The first message starts the chat: {"type":"start","name":…,"email":…}.
    let first = tokio::time::timeout(Duration::from_secs(60), socket.recv()).await;
    let Ok(Some(Ok(Message::Text(text)))) = first else {
        return;
    };
    let Ok(start) = serde_json::from_str::<Value>(&text) else {
        return;
    };
    let field = |name: &str, limit: usize| -> String {
        start
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .chars()
            .take(limit)
            .collect()
    };
    let (name, email) = (field("name", 100), field("email", 200));
    if start.get("type").and_then(Value::as_str) != Some("start") || email.is_empty() {
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    let attributes = BTreeMap::from([("name".to_owned(), name)]);
    let (contact, mut messages) = center.start_chat(&email, attributes);
    run_chat(&center, contact, &mut messages, &mut socket)
        .instrument(tracing::info_span!("chat", %contact))
        .await;
}

async fn run_chat(
    center: &ContactCenter,
    contact: ContactId,
    messages: &mut tokio::sync::mpsc::UnboundedReceiver<ToCustomer>,
    socket: &mut WebSocket,
) {
    let mut sent: std::collections::VecDeque<tokio::time::Instant> =
        std::collections::VecDeque::new();
    loop {
        tokio::select! {
            message = messages.recv() => {
                let Some(message) = message else { return };
                let ended = message == ToCustomer::Ended;
                let Ok(text) = serde_json::to_string(&message) else { continue };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    center.event(Event::CustomerLeft { contact });
                    return;
                }
                if ended {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(incoming)) = incoming else {
                    center.event(Event::CustomerLeft { contact });
                    return;
                };
                let Message::Text(text) = incoming else { continue };
                let Ok(request) = serde_json::from_str::<Value>(&text) else { continue };
                match request.get("type").and_then(Value::as_str) {
                    Some("message") => {
                        let now = tokio::time::Instant::now();
                        while sent.front().is_some_and(|at| now.duration_since(*at) > Duration::from_secs(10)) {
                            sent.pop_front();
                        }
                        if sent.len() >= MESSAGES_PER_TEN_SECONDS {
                            let notice = serde_json::json!({"type": "limited"}).to_string();
                            let _ = socket.send(Message::Text(notice.into())).await;
                            continue;
                        }
                        sent.push_back(now);
                        let text: String = request
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .chars()
                            .take(MAX_MESSAGE_CHARS)
                            .collect();
                        if !text.trim().is_empty() {
                            center.customer_says(contact, &text);
                        }
                    }
                    Some("input") => {
                        if let Some(value) = request.get("value").and_then(Value::as_str) {
                            center.event(Event::Input { contact, value: value.chars().take(100).collect() });
                        }
                    }
                    Some("leave") => {
                        center.event(Event::CustomerLeft { contact });
                    }
                    _ => {}
                }
            }
        }
    }
}

/// `POST /_genkan/test/call` `{"from": "+81…"}` and `POST /_genkan/test/call/{id}/hangup`: a
/// simulated inbound call, so that routing, the screen pop and contact records for calls are
/// exercised before genkan speaks SIP. Debug builds only (a release build has no such route),
/// for signed-in agents, from pages of this origin with the `X-Genkan-Test` header.
#[cfg(debug_assertions)]
fn simulated_calls() -> Router<Web> {
    use axum::extract::Path;
    use axum::routing::post;

    fn allowed(web: &Web, headers: &HeaderMap, uri: &Uri) -> bool {
        same_origin(headers, uri)
            && headers.contains_key("x-genkan-test")
            && agent_of(web, headers).is_some()
    }
    async fn call(
        State(web): State<Web>,
        headers: HeaderMap,
        uri: Uri,
        body: axum::body::Bytes,
    ) -> Response {
        if !allowed(&web, &headers, &uri) {
            return StatusCode::FORBIDDEN.into_response();
        }
        let from = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|value| value.get("from").and_then(Value::as_str).map(str::to_owned));
        let Some(from) = from.filter(|from| !from.trim().is_empty() && from.len() <= 40) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let contact = web.center.start_call(&from);
        let body = serde_json::json!({"contact": contact.0}).to_string();
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
    async fn hang_up(
        State(web): State<Web>,
        headers: HeaderMap,
        uri: Uri,
        Path(id): Path<u64>,
    ) -> Response {
        if !allowed(&web, &headers, &uri) {
            return StatusCode::FORBIDDEN.into_response();
        }
        web.center.event(Event::CustomerLeft {
            contact: ContactId(id),
        });
        StatusCode::NO_CONTENT.into_response()
    }
    Router::new()
        .route("/_genkan/test/call", post(call))
        .route("/_genkan/test/call/{id}/hangup", post(hang_up))
}

/// Release builds take no simulated calls.
#[cfg(not(debug_assertions))]
fn simulated_calls() -> Router<Web> {
    Router::new()
}
