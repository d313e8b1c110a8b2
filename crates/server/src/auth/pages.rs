//! The sign-in, password-change and sign-out pages.
//!
//! Every form carries a CSRF value: before sign-in, one kept in a `__Host-` cookie (double
//! submit); after, the session's own. Every failure to sign in gets the same answer, whether
//! the user does not exist, the password is wrong or the account is locked, and takes as long.

use std::sync::Arc;

use axum::Extension;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::password_check::PasswordCheck;
use super::{
    Auth, LOGIN_CSRF_COOKIE, SESSION_COOKIE, constant_time_eq, cookie, random_token, sha256_hex,
};
use crate::identity::{check_password, hash_password, verify_password};
use crate::pages::{Lang, page};

/// Who is asking, as the gateway's gate saw it.
pub type Caller = Extension<gateway::gate::Identity>;

pub(super) struct Words {
    sign_in: &'static str,
    user: &'static str,
    password: &'static str,
    failed: &'static str,
    too_many: &'static str,
    change_title: &'static str,
    change_hint: &'static str,
    current: &'static str,
    new: &'static str,
    again: &'static str,
    save: &'static str,
    mismatch: &'static str,
    wrong_current: &'static str,
    expired_form: &'static str,
}

pub(super) fn words(lang: Lang) -> Words {
    match lang {
        Lang::Ja => Words {
            sign_in: "サインイン",
            user: "ユーザー名",
            password: "パスワード",
            failed: "ユーザー名またはパスワードが違うか、現在サインインできません。",
            too_many: "試行回数が多すぎます。しばらく待ってからお試しください。",
            change_title: "パスワードの変更",
            change_hint: "続けるには新しいパスワード（12文字以上）を設定してください。",
            current: "現在のパスワード",
            new: "新しいパスワード",
            again: "新しいパスワード（確認）",
            save: "変更する",
            mismatch: "新しいパスワードが一致しないか、短すぎます（12文字以上）。",
            wrong_current: "現在のパスワードが違います。",
            expired_form: "フォームの有効期限が切れました。もう一度お試しください。",
        },
        Lang::En => Words {
            sign_in: "Sign in",
            user: "User name",
            password: "Password",
            failed: "Wrong user name or password, or signing in is not possible right now.",
            too_many: "Too many attempts. Please wait a while and try again.",
            change_title: "Change your password",
            change_hint: "Choose a new password (at least 12 characters) to continue.",
            current: "Current password",
            new: "New password",
            again: "New password again",
            save: "Change",
            mismatch: "The new passwords differ or are too short (at least 12 characters).",
            wrong_current: "The current password is wrong.",
            expired_form: "The form has expired. Please try again.",
        },
    }
}

use gateway::gate::html_escape as escape;

/// Where to go after signing in: only paths on this site, never another origin.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") =>
        {
            next.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub(super) fn cookie_header(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age.map_or_else(String::new, |seconds| format!("; Max-Age={seconds}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("genkan=; Max-Age=0"))
}

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// GET /_genkan/login
pub async fn login_form(
    State(auth): State<Arc<Auth>>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Response {
    if let Some(session) = auth.session(&headers) {
        let target = if session.row.must_change_password {
            "/_genkan/password".to_owned()
        } else if auth.needs_totp(&session.row) {
            "/_genkan/totp".to_owned()
        } else {
            safe_next(query.next.as_deref())
        };
        return Redirect::to(&target).into_response();
    }
    login_page(&headers, query.next.as_deref(), None, StatusCode::OK)
}

fn login_page(
    headers: &HeaderMap,
    next: Option<&str>,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    let Ok(csrf) = random_token() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let message = crate::pages::alert(message);
    let body = format!(
        "<h1>{title}</h1>{message}<form method=\"post\" action=\"/_genkan/login\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"next\" value=\"{next}\">\
<label>{user}<input name=\"user\" autocomplete=\"username\" maxlength=\"64\" required autofocus></label>\
<label>{password}<input name=\"password\" type=\"password\" autocomplete=\"current-password\" maxlength=\"256\" required></label>\
<button type=\"submit\">{title}</button></form>",
        title = w.sign_in,
        user = w.user,
        password = w.password,
        next = escape(&safe_next(next)),
    );
    let mut response = page(lang, status, w.sign_in, &body);
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(LOGIN_CSRF_COOKIE, &csrf, Some(3600)),
    );
    response
}

/// The sign-in form as posted.
#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// POST /_genkan/login
pub async fn login(
    State(auth): State<Arc<Auth>>,
    Extension(caller): Caller,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let w = words(lang);
    let source = caller.source.to_string();
    let csrf_ok = cookie(&headers, LOGIN_CSRF_COOKIE)
        .is_some_and(|expected| constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()));
    if !csrf_ok {
        auth.audit(
            "login_failed",
            None,
            Some(&source),
            None,
            "refused",
            None,
            "missing or wrong CSRF value",
        );
        return login_page(
            &headers,
            form.next.as_deref(),
            Some(w.expired_form),
            StatusCode::FORBIDDEN,
        );
    }
    let user = form.user.trim().to_ascii_lowercase();
    let stored = match auth.check_password(&user, form.password, &source).await {
        PasswordCheck::Accepted(row) => row,
        PasswordCheck::SourceBlocked => {
            return login_page(
                &headers,
                form.next.as_deref(),
                Some(w.too_many),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        PasswordCheck::Refused => {
            return login_page(
                &headers,
                form.next.as_deref(),
                Some(w.failed),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    if stored.totp_enrolled {
        // The password was right; the one-time code decides. Failures there count as well.
        return super::second_factor::start(
            &auth,
            &headers,
            &user,
            form.next.as_deref(),
            &form.csrf,
        );
    }
    auth.login_succeeded(&user);
    let must_change = stored.must_change_password;
    finish_login(
        &auth,
        &headers,
        &user,
        &source,
        must_change,
        form.next.as_deref(),
    )
}

/// Starts a session for a user who has proved who they are, and sends them on.
pub(super) fn finish_login(
    auth: &Auth,
    headers: &HeaderMap,
    user: &str,
    source: &str,
    must_change: bool,
    next: Option<&str>,
) -> Response {
    let (Ok(token), Ok(csrf)) = (random_token(), random_token()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let user_agent: String = user_agent.chars().take(200).collect();
    let created = auth.database().and_then(|db| {
        Ok(db.create_session(
            &sha256_hex(token.as_bytes()),
            user,
            &csrf,
            &crate::clock::utc_now_text(),
            source,
            &user_agent,
        )?)
    });
    if let Err(error) = created {
        tracing::error!("cannot create a session: {error:#}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    auth.audit(
        "login",
        Some(user),
        Some(source),
        Some(user),
        "ok",
        None,
        "",
    );
    let target = if must_change {
        "/_genkan/password".to_owned()
    } else {
        safe_next(next)
    };
    let mut response = Redirect::to(&target).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, &token, None),
    );
    headers.append(
        header::SET_COOKIE,
        cookie_header(LOGIN_CSRF_COOKIE, "", Some(0)),
    );
    response
}

/// GET /_genkan/password
pub async fn password_form(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    match auth.session(&headers) {
        Some(session) => password_page(&headers, &session.row.csrf_token, None, StatusCode::OK),
        None => Redirect::to("/_genkan/login?next=/_genkan/password").into_response(),
    }
}

fn password_page(
    headers: &HeaderMap,
    csrf: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    let message = crate::pages::alert(message);
    let body = format!(
        "<h1>{title}</h1><p>{hint}</p>{message}<form method=\"post\" action=\"/_genkan/password\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label>{current}<input name=\"current\" type=\"password\" autocomplete=\"current-password\" maxlength=\"256\" required></label>\
<label>{new}<input name=\"new\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\" maxlength=\"256\" required></label>\
<label>{again}<input name=\"again\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\" maxlength=\"256\" required></label>\
<button type=\"submit\">{save}</button></form>",
        title = w.change_title,
        hint = w.change_hint,
        current = w.current,
        new = w.new,
        again = w.again,
        save = w.save,
        csrf = escape(csrf),
    );
    page(lang, status, w.change_title, &body)
}

/// The password form as posted.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    again: String,
}

/// POST /_genkan/password
pub async fn change_password(
    State(auth): State<Arc<Auth>>,
    Extension(caller): Caller,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let Some(session) = auth.session(&headers) else {
        return Redirect::to("/_genkan/login").into_response();
    };
    let w = words(Lang::from_headers(&headers));
    let csrf = session.row.csrf_token.clone();
    if !constant_time_eq(csrf.as_bytes(), form.csrf.as_bytes()) {
        return password_page(&headers, &csrf, Some(w.expired_form), StatusCode::FORBIDDEN);
    }
    if form.new != form.again || check_password(&form.new).is_err() {
        return password_page(&headers, &csrf, Some(w.mismatch), StatusCode::BAD_REQUEST);
    }
    let user = session.row.user.clone();
    let stored = auth
        .database()
        .ok()
        .and_then(|db| db.user(&user).ok().flatten());
    let Some(stored) = stored else {
        return Redirect::to("/_genkan/login").into_response();
    };
    let current = form.current;
    let new = form.new;
    let outcome = crate::identity::on_hashing_thread(move || {
        verify_password(&current, &stored.password_hash)
            .then(|| hash_password(&new).ok())
            .flatten()
    })
    .await
    .flatten();
    let source = caller.source.to_string();
    let Some(hash) = outcome else {
        auth.audit(
            "password_change_failed",
            Some(&user),
            Some(&source),
            Some(&user),
            "failed",
            None,
            "wrong current password",
        );
        return password_page(
            &headers,
            &csrf,
            Some(w.wrong_current),
            StatusCode::UNAUTHORIZED,
        );
    };
    let saved = auth.database().and_then(|db| {
        db.set_password(&user, &hash, false, &crate::clock::utc_now_text())?;
        // Other sessions were opened with the old password: end them, keep this one.
        let kept = db.session(&session.token_hash)?;
        db.delete_sessions_of(&user)?;
        if let Some(kept) = kept {
            db.create_session(
                &session.token_hash,
                &user,
                &kept.csrf_token,
                &kept.created_at,
                &source,
                "",
            )?;
        }
        Ok(())
    });
    if let Err(error) = saved {
        tracing::error!("cannot change a password: {error:#}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    auth.audit(
        "password_changed",
        Some(&user),
        Some(&source),
        Some(&user),
        "ok",
        None,
        "",
    );
    Redirect::to("/").into_response()
}

/// The sign-out form as posted.
#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
    everywhere: Option<String>,
}

/// POST /_genkan/logout
pub async fn logout(
    State(auth): State<Arc<Auth>>,
    Extension(caller): Caller,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let Some(session) = auth.session(&headers) else {
        return Redirect::to("/_genkan/login").into_response();
    };
    if let Some(refusal) = session.csrf_refusal(&form.csrf) {
        return refusal;
    }
    let everywhere = form.everywhere.is_some();
    let ended = auth.database().and_then(|db| {
        if everywhere {
            db.delete_sessions_of(&session.row.user)?;
        } else {
            db.delete_session(&session.token_hash)?;
        }
        Ok(())
    });
    if let Err(error) = ended {
        tracing::error!("cannot end a session: {error:#}");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let source = caller.source.to_string();
    let detail = if everywhere { "everywhere" } else { "" };
    auth.audit(
        "logout",
        Some(&session.row.user),
        Some(&source),
        Some(&session.row.user),
        "ok",
        None,
        detail,
    );
    let mut response = Redirect::to("/_genkan/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, "", Some(0)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/fmi/iwp?x=1")), "/fmi/iwp?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
