//! The one-time-code step of signing in, and enrolling an authenticator app.
//!
//! After a correct password, a user with an app enrolled gets a code page carrying a pending
//! sign-in token (kept in memory for five minutes, never in a cookie). A code is accepted once:
//! its time step must be later than the last one accepted for that user, checked and recorded
//! in one database statement.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use gateway::gate::html_escape as escape;
use serde::Deserialize;

use super::pages::{Caller, finish_login, safe_next};
use super::{Auth, LOGIN_CSRF_COOKIE, constant_time_eq, cookie, random_token, totp};
use crate::pages::{Lang, page};

/// How long the code page waits after the password.
const PENDING_FOR: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// A sign-in waiting for its one-time code.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    user: String,
    next: Option<String>,
    must_change: bool,
    expires: jiff::Timestamp,
}

struct Words {
    code_title: &'static str,
    code_hint: &'static str,
    code: &'static str,
    confirm: &'static str,
    wrong_code: &'static str,
    enrol_title: &'static str,
    enrol_hint: &'static str,
    secret: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::Ja => Words {
            code_title: "確認コード",
            code_hint: "認証アプリに表示されている6桁のコードを入力してください。",
            code: "確認コード",
            confirm: "確認",
            wrong_code: "コードが違うか、すでに使われています。",
            enrol_title: "認証アプリの登録",
            enrol_hint: "認証アプリ（Google Authenticator、Microsoft Authenticator など）でこのQRコードを読み取り、表示された6桁のコードを入力してください。",
            secret: "QRコードを読み取れない場合はこのキーを入力してください",
        },
        Lang::En => Words {
            code_title: "Verification code",
            code_hint: "Enter the 6-digit code your authenticator app shows.",
            code: "Code",
            confirm: "Verify",
            wrong_code: "The code is wrong or has been used already.",
            enrol_title: "Set up your authenticator app",
            enrol_hint: "Scan this QR code with an authenticator app (Google Authenticator, Microsoft Authenticator, …) and enter the 6-digit code it shows.",
            secret: "If you cannot scan the code, type this key",
        },
    }
}

fn code_page(
    headers: &HeaderMap,
    pending: &str,
    csrf: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    let message = crate::pages::alert(message);
    let body = format!(
        "<h1>{title}</h1><p>{hint}</p>{message}<form method=\"post\" action=\"/_genkan/login/code\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"pending\" value=\"{pending}\">\
<label>{code}<input name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]{{6,7}}\" maxlength=\"7\" required autofocus></label>\
<button type=\"submit\">{confirm}</button></form>",
        title = w.code_title,
        hint = w.code_hint,
        code = w.code,
        confirm = w.confirm,
        csrf = escape(csrf),
        pending = escape(pending),
    );
    page(lang, status, w.code_title, &body)
}

/// After a correct password: remembers the sign-in and asks for the code.
pub(super) fn start(
    auth: &Auth,
    headers: &HeaderMap,
    user: &str,
    next: Option<&str>,
    csrf: &str,
) -> Response {
    let Ok(token) = random_token() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let must_change = auth
        .database()
        .ok()
        .and_then(|db| db.user(user).ok().flatten())
        .is_some_and(|row| row.must_change_password);
    let pending = PendingLogin {
        user: user.to_owned(),
        next: next.map(str::to_owned),
        must_change,
        expires: crate::clock::timestamp_now() + PENDING_FOR,
    };
    match auth.pending.lock() {
        Ok(mut map) => {
            let now = crate::clock::timestamp_now();
            map.retain(|_, pending| pending.expires > now);
            map.insert(token.clone(), pending);
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    code_page(headers, &token, csrf, None, StatusCode::OK)
}

/// The code form as posted.
#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    pending: String,
    code: String,
}

/// POST /_genkan/login/code
pub async fn finish(
    State(auth): State<Arc<Auth>>,
    axum::Extension(caller): Caller,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let w = words(Lang::from_headers(&headers));
    let source = caller.source.to_string();
    let csrf_ok = cookie(&headers, LOGIN_CSRF_COOKIE)
        .is_some_and(|expected| constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()));
    let now = crate::clock::timestamp_now();
    let pending = auth
        .pending
        .lock()
        .ok()
        .and_then(|map| map.get(&form.pending).cloned())
        .filter(|pending| pending.expires > now);
    let (true, Some(pending)) = (csrf_ok, pending) else {
        // A stale or forged code page starts over at the password.
        return Redirect::to("/_genkan/login").into_response();
    };
    let settings = auth.settings.load_full();
    let user_key = format!("user:{}", pending.user);
    let locked = auth
        .limiter
        .lock()
        .map(|mut limiter| {
            limiter.count(&user_key, now, settings.lockout) >= settings.max_failed_logins as usize
        })
        .unwrap_or(true);
    let unix = u64::try_from(now.as_second()).unwrap_or(0);
    let accepted = !locked
        && auth.database().ok().is_some_and(|db| {
            let Ok(state) = db.totp_state(&pending.user) else {
                return false;
            };
            let step = state
                .secret
                .as_deref()
                .and_then(|secret| totp::matching_step(secret, &form.code, unix));
            step.is_some_and(|step| db.accept_totp_step(&pending.user, step).unwrap_or(false))
        });
    if !accepted {
        if let Ok(mut limiter) = auth.limiter.lock() {
            limiter.fail(&user_key, now, settings.lockout);
        }
        auth.audit(
            "login_failed",
            Some(&pending.user),
            Some(&source),
            Some(&pending.user),
            "failed",
            None,
            "wrong or reused one-time code",
        );
        if let (true, Ok(mut map)) = (locked, auth.pending.lock()) {
            map.remove(&form.pending);
        }
        return code_page(
            &headers,
            &form.pending,
            &form.csrf,
            Some(w.wrong_code),
            StatusCode::UNAUTHORIZED,
        );
    }
    if let Ok(mut map) = auth.pending.lock() {
        map.remove(&form.pending);
    }
    if let Ok(mut limiter) = auth.limiter.lock() {
        limiter.clear(&user_key);
    }
    finish_login(
        &auth,
        &headers,
        &pending.user,
        &source,
        pending.must_change,
        pending.next.as_deref(),
    )
}

/// GET /_genkan/totp: a fresh secret and its QR code.
pub async fn enrol_form(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    let Some(session) = auth.session(&headers) else {
        return Redirect::to("/_genkan/login?next=/_genkan/totp").into_response();
    };
    let Ok(secret) = totp::new_secret() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if auth
        .database()
        .and_then(|db| Ok(db.set_totp_pending(&session.row.user, &secret)?))
        .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    enrol_page(
        &headers,
        &session.row.user,
        &session.row.csrf_token,
        &secret,
        None,
        StatusCode::OK,
    )
}

fn enrol_page(
    headers: &HeaderMap,
    user: &str,
    csrf: &str,
    secret: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    let Ok(svg) = totp::qr_svg(&totp::otpauth_url("genkan", user, secret)) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let message = crate::pages::alert(message);
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect();
    let body = format!(
        "<h1>{title}</h1><p>{hint}</p>{message}<div class=\"qr\">{svg}</div>\
<p>{secret_label}: <code id=\"totp-secret\">{secret}</code></p>\
<form method=\"post\" action=\"/_genkan/totp\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label>{code}<input name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"7\" required></label>\
<button type=\"submit\">{confirm}</button></form>",
        title = w.enrol_title,
        hint = w.enrol_hint,
        secret_label = w.secret,
        secret = grouped.join(" "),
        code = w.code,
        confirm = w.confirm,
        csrf = escape(csrf),
    );
    page(lang, status, w.enrol_title, &body)
}

/// The enrolment form as posted.
#[derive(Deserialize)]
pub struct EnrolForm {
    csrf: String,
    code: String,
}

/// POST /_genkan/totp
pub async fn enrol(
    State(auth): State<Arc<Auth>>,
    axum::Extension(caller): Caller,
    headers: HeaderMap,
    Form(form): Form<EnrolForm>,
) -> Response {
    let Some(session) = auth.session(&headers) else {
        return Redirect::to("/_genkan/login").into_response();
    };
    let w = words(Lang::from_headers(&headers));
    let user = session.row.user.clone();
    if let Some(refusal) = session.csrf_refusal(&form.csrf) {
        return refusal;
    }
    let unix = u64::try_from(crate::clock::timestamp_now().as_second()).unwrap_or(0);
    let Ok(state) = auth.database().and_then(|db| Ok(db.totp_state(&user)?)) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some(pending) = state.pending_secret else {
        return Redirect::to("/_genkan/totp").into_response();
    };
    let Some(step) = totp::matching_step(&pending, &form.code, unix) else {
        return enrol_page(
            &headers,
            &user,
            &session.row.csrf_token,
            &pending,
            Some(w.wrong_code),
            StatusCode::BAD_REQUEST,
        );
    };
    if auth
        .database()
        .and_then(|db| Ok(db.confirm_totp(&user, step)?))
        .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let source = caller.source.to_string();
    auth.audit(
        "totp_enrolled",
        Some(&user),
        Some(&source),
        Some(&user),
        "ok",
        None,
        "",
    );
    Redirect::to(&safe_next(Some("/_genkan/account"))).into_response()
}
