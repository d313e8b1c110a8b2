//! The desk's softphone signalling: the page posts its WebRTC offer and gets genkan's answer
//! (one round trip: genkan is ICE-lite and learns the browser's address from its checks, so
//! no candidates are exchanged); turning the phone off closes the connection.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Web, agent_of, same_origin};
use crate::voice::Softphones;

/// An SDP offer is a few kilobytes; anything far larger is not one.
const MAX_OFFER_BYTES: usize = 32 * 1024;

#[derive(Deserialize)]
struct Offer {
    sdp: String,
}

fn refused(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Why a request is refused, for [`refused`].
type Refusal = (StatusCode, &'static str);

/// The signed-in agent behind a request from the desk's own script (a page of another site
/// cannot post JSON with the agent's cookie and this origin).
fn desk_agent(web: &Web, headers: &HeaderMap, uri: &Uri) -> Result<String, Refusal> {
    if !same_origin(headers, uri) {
        return Err((StatusCode::FORBIDDEN, "wrong origin"));
    }
    agent_of(web, headers).ok_or((StatusCode::FORBIDDEN, "not an agent"))
}

/// The desk's agent and the softphones (when `[voice]` is configured).
fn desk_phone<'web>(
    web: &'web Web,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(String, &'web Softphones), Refusal> {
    let agent = desk_agent(web, headers, uri)?;
    let softphones = web
        .softphones
        .as_ref()
        .ok_or((StatusCode::NOT_FOUND, "no [voice] configured"))?;
    Ok((agent, softphones))
}

/// `POST /_genkan/desk/softphone`: `{"sdp": offer}` → `{"sdp": answer}`.
pub(super) async fn offer(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (agent, softphones) = match desk_phone(&web, &headers, &uri) {
        Ok(found) => found,
        Err((status, message)) => return refused(status, message),
    };
    if body.len() > MAX_OFFER_BYTES {
        return refused(StatusCode::PAYLOAD_TOO_LARGE, "offer too large");
    }
    let Ok(offer) = serde_json::from_slice::<Offer>(&body) else {
        return refused(StatusCode::BAD_REQUEST, "expected {\"sdp\": \"…\"}");
    };
    match softphones.connect(&agent, offer.sdp).await {
        Ok(answer) => {
            let body = serde_json::json!({ "sdp": answer }).to_string();
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response()
        }
        Err(crate::voice::OfferRefused::Stopped) => {
            refused(StatusCode::SERVICE_UNAVAILABLE, "voice is stopping")
        }
        Err(error) => refused(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}

#[derive(Deserialize)]
struct Hold {
    contact: u64,
    on: bool,
}

/// `POST /_genkan/desk/softphone/hold`: `{"contact": id, "on": true|false}` for a call on the
/// agent's softphone; the caller hears silence while it is on.
pub(super) async fn hold(
    State(web): State<Web>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (agent, softphones) = match desk_phone(&web, &headers, &uri) {
        Ok(found) => found,
        Err((status, message)) => return refused(status, message),
    };
    let Ok(hold) = serde_json::from_slice::<Hold>(&body) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "expected {\"contact\": 1, \"on\": true}",
        );
    };
    if softphones
        .hold(&agent, contact::ContactId(hold.contact), hold.on)
        .await
    {
        StatusCode::NO_CONTENT.into_response()
    } else {
        refused(StatusCode::CONFLICT, "not a call on your phone")
    }
}

/// `DELETE /_genkan/desk/softphone`: the agent turned their phone off.
pub(super) async fn close(State(web): State<Web>, headers: HeaderMap, uri: Uri) -> Response {
    let agent = match desk_agent(&web, &headers, &uri) {
        Ok(agent) => agent,
        Err((status, message)) => return refused(status, message),
    };
    if let Some(softphones) = &web.softphones {
        softphones.close(&agent);
    }
    StatusCode::NO_CONTENT.into_response()
}
