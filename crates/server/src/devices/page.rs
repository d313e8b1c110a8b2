//! `/_genkan/admin/devices`: every enrolled device with its owner, OS, last report and
//! compliance (or what fails), its detections, and recent alerts. Administrators and
//! supervisors see it; administrators also make enrolment codes and revoke devices, with the
//! session's CSRF value on every form.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use gateway::gate::{Identity, html_escape as escape};
use serde::Deserialize;

use super::{CODE_LIFETIME, Devices, new_code, normalise_code, text};
use crate::auth::{Session, sha256_hex};
use crate::clock;
use crate::pages::{Lang, page};

/// The page.
pub const PATH: &str = "/_genkan/admin/devices";
/// Makes an enrolment code.
pub const CODE_PATH: &str = "/_genkan/admin/devices/code";
/// Revokes a device.
pub const REVOKE_PATH: &str = "/_genkan/admin/devices/revoke";

struct Words {
    title: &'static str,
    owner: &'static str,
    host: &'static str,
    os: &'static str,
    last_report: &'static str,
    state: &'static str,
    detections: &'static str,
    compliant: &'static str,
    no_report: &'static str,
    revoked: &'static str,
    revoke: &'static str,
    new_code: &'static str,
    for_user: &'static str,
    make: &'static str,
    code_shown_once: &'static str,
    alerts: &'static str,
    none: &'static str,
    only: &'static str,
    done: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::Ja => Words {
            title: "端末",
            owner: "所有者",
            host: "ホスト名",
            os: "OS",
            last_report: "最終報告",
            state: "状態",
            detections: "検出",
            compliant: "要件を満たしています",
            no_report: "報告なし",
            revoked: "失効",
            revoke: "失効させる",
            new_code: "登録コードを発行",
            for_user: "ユーザー名",
            make: "発行",
            code_shown_once: "登録コード（この画面でのみ表示されます。24 時間以内に一度だけ使えます）",
            alerts: "最近のアラート",
            none: "なし",
            only: "管理者とスーパーバイザーだけが見られます。",
            done: "変更しました。",
        },
        Lang::En => Words {
            title: "Devices",
            owner: "Owner",
            host: "Host name",
            os: "OS",
            last_report: "Last report",
            state: "State",
            detections: "Detections",
            compliant: "compliant",
            no_report: "no report yet",
            revoked: "revoked",
            revoke: "Revoke",
            new_code: "Make an enrolment code",
            for_user: "User name",
            make: "Make",
            code_shown_once: "Enrolment code (shown only here; it works once, within 24 hours)",
            alerts: "Recent alerts",
            none: "none",
            only: "For administrators and supervisors.",
            done: "Done.",
        },
    }
}

/// The session of an administrator or supervisor, and whether it is an administrator's.
fn viewer(devices: &Devices, headers: &HeaderMap) -> Option<(Session, bool)> {
    let session = devices.auth.session(headers)?;
    let admin = session.row.groups.iter().any(|group| group == "admin");
    let supervisor = session.row.groups.iter().any(|group| group == "supervisor");
    (admin || supervisor).then_some((session, admin))
}

fn refused(headers: &HeaderMap) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    page(
        lang,
        StatusCode::FORBIDDEN,
        w.title,
        &format!("<p>{}</p>", w.only),
    )
}

/// `GET /_genkan/admin/devices`
pub async fn show(State(devices): State<Arc<Devices>>, headers: HeaderMap) -> Response {
    match viewer(&devices, &headers) {
        Some((session, admin)) => render(&devices, &headers, &session, admin, None, StatusCode::OK),
        None => refused(&headers),
    }
}

/// The code form.
#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    user: String,
}

/// `POST /_genkan/admin/devices/code`: a one-time code for a user, shown once.
pub async fn make_code(
    State(devices): State<Arc<Devices>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let Some((session, true)) = viewer(&devices, &headers) else {
        return refused(&headers);
    };
    if let Some(refusal) = session.csrf_refusal(&form.csrf) {
        return refusal;
    }
    let source = identity.map(|Extension(identity)| identity.source.to_string());
    let user = form.user.trim().to_owned();
    let now = clock::timestamp_now();
    let expires =
        now + jiff::SignedDuration::try_from(CODE_LIFETIME).unwrap_or(jiff::SignedDuration::ZERO);
    let made = new_code().and_then(|code| {
        let hash = sha256_hex(normalise_code(&code).as_bytes());
        devices.auth.database()?.create_enrolment_code(
            &hash,
            &user,
            &session.row.user,
            &text(now),
            &text(expires),
        )?;
        Ok(code)
    });
    let w = words(Lang::from_headers(&headers));
    match made {
        Ok(code) => {
            devices.auth.audit(
                "enrolment_code_made",
                Some(&session.row.user),
                source.as_deref(),
                Some(&user),
                "ok",
                None,
                "",
            );
            let message = format!(
                "{}: <code id=\"enrolment-code\">{}</code> ({})",
                w.code_shown_once,
                escape(&code),
                escape(&user)
            );
            render(
                &devices,
                &headers,
                &session,
                true,
                Some((true, message)),
                StatusCode::OK,
            )
        }
        Err(error) => render(
            &devices,
            &headers,
            &session,
            true,
            Some((false, escape(&format!("{error:#}")))),
            StatusCode::BAD_REQUEST,
        ),
    }
}

/// The revoke form.
#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    device: String,
}

/// `POST /_genkan/admin/devices/revoke`: from the next request on, the device's certificate
/// counts for nothing.
pub async fn revoke(
    State(devices): State<Arc<Devices>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Response {
    let Some((session, true)) = viewer(&devices, &headers) else {
        return refused(&headers);
    };
    if let Some(refusal) = session.csrf_refusal(&form.csrf) {
        return refusal;
    }
    let source = identity.map(|Extension(identity)| identity.source.to_string());
    let revoked = devices.auth.database().and_then(|database| {
        Ok(database.revoke_device(&form.device, &session.row.user, &clock::utc_now_text())?)
    });
    let w = words(Lang::from_headers(&headers));
    match revoked {
        Ok(true) => {
            devices.auth.audit(
                "device_revoked",
                Some(&session.row.user),
                source.as_deref(),
                Some(&form.device),
                "ok",
                None,
                "",
            );
            render(
                &devices,
                &headers,
                &session,
                true,
                Some((true, w.done.to_owned())),
                StatusCode::OK,
            )
        }
        Ok(false) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            tracing::error!("revoking failed: {error:#}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn render(
    devices: &Devices,
    headers: &HeaderMap,
    session: &Session,
    admin: bool,
    message: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    let loaded = devices.auth.database().and_then(|database| {
        let rows = database.devices()?;
        let mut with_detections = Vec::with_capacity(rows.len());
        for row in rows {
            let detections = database.device_detections(&row.id)?;
            with_detections.push((row, detections));
        }
        Ok((with_detections, database.recent_alerts(20)?))
    });
    let Ok((rows, alerts)) = loaded else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let csrf = escape(&session.row.csrf_token);
    let hidden = format!("<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">");
    let mut body = format!("<h1>{}</h1>", w.title);
    if let Some((ok, text)) = message {
        let class = if ok { "notice" } else { "error" };
        let _ = write!(body, "<p class=\"{class}\" role=\"status\">{text}</p>");
    }
    let _ = write!(
        body,
        "<table id=\"devices\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>{}</tr>",
        w.owner,
        w.host,
        w.os,
        w.last_report,
        w.state,
        w.detections,
        if admin { "<th></th>" } else { "" }
    );
    for (row, detections) in &rows {
        let state = if row.revoked_at.is_some() {
            format!("<strong>{}</strong>", w.revoked)
        } else {
            match row.compliant {
                None => w.no_report.to_owned(),
                Some(true) => format!("<span class=\"compliant\">{}</span>", w.compliant),
                Some(false) => {
                    let failures: Vec<posture::Failure> =
                        serde_json::from_str(&row.failures).unwrap_or_default();
                    let items: String = failures
                        .iter()
                        .map(|failure| {
                            format!("<li>{}</li>", escape(failure.text(posture_lang(lang))))
                        })
                        .collect();
                    format!("<ul class=\"failures\">{items}</ul>")
                }
            }
        };
        let detections = if detections.is_empty() {
            w.none.to_owned()
        } else {
            let items: String = detections
                .iter()
                .map(|detection| {
                    format!(
                        "<li>{} ({}, {}) {}</li>",
                        escape(&detection.threat),
                        escape(&detection.action),
                        escape(&detection.detected_at),
                        escape(detection.path.as_deref().unwrap_or(""))
                    )
                })
                .collect();
            format!("<ul>{items}</ul>")
        };
        let action = if admin && row.revoked_at.is_none() {
            format!(
                "<td class=\"actions\"><form method=\"post\" action=\"{REVOKE_PATH}\">{hidden}\
<input type=\"hidden\" name=\"device\" value=\"{}\"><button>{}</button></form></td>",
                escape(&row.id),
                w.revoke
            )
        } else if admin {
            "<td></td>".to_owned()
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr id=\"{id}\"><td>{owner}</td><td>{host}<br><small>{id}</small></td><td>{os} {version}</td><td>{seen}</td><td>{state}</td><td>{detections}</td>{action}</tr>",
            id = escape(&row.id),
            owner = escape(&row.owner),
            host = escape(&row.hostname),
            os = escape(&row.os_name),
            version = escape(&row.os_version),
            seen = escape(row.last_seen_at.as_deref().unwrap_or("-")),
        );
    }
    body.push_str("</table>");
    if admin {
        let _ = write!(
            body,
            "<h2>{}</h2><form method=\"post\" action=\"{CODE_PATH}\" class=\"inline\">{hidden}\
<label>{} <input name=\"user\" required autocomplete=\"off\"></label><button>{}</button></form>",
            w.new_code, w.for_user, w.make
        );
    }
    let _ = write!(body, "<h2>{}</h2><ul id=\"alerts\">", w.alerts);
    if alerts.is_empty() {
        let _ = write!(body, "<li>{}</li>", w.none);
    }
    for alert in &alerts {
        let _ = write!(
            body,
            "<li>{} {}</li>",
            escape(&alert.created_at),
            escape(&alert.subject)
        );
    }
    body.push_str("</ul>");
    page(lang, status, w.title, &body)
}

fn posture_lang(lang: Lang) -> posture::Lang {
    match lang {
        Lang::Ja => posture::Lang::Ja,
        Lang::En => posture::Lang::En,
    }
}
