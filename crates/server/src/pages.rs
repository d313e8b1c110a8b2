//! genkan's own pages, served when no proxied route claims a request.
//!
//! Server-rendered HTML in Japanese and English: the user's `Accept-Language` picks, and
//! Japanese is the default because the first users are Japanese companies.
//! These pages are deliberately public (a landing page and a health check for load balancers);
//! they show nothing about the configuration.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use gateway::gate::{Identity, html_escape};

use crate::auth::{self, Auth};

/// The page shown for 502 and 504 unless the config names another; both languages at once,
/// because it is static and the proxy does not negotiate for it.
pub const UPSTREAM_ERROR_PAGE: &str = r#"<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>一時的に利用できません / Temporarily unavailable</title>
<style>body{font-family:system-ui,"Hiragino Sans","Yu Gothic UI",sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}p{line-height:1.7}.en{color:#555;border-top:1px solid #ddd;padding-top:1rem;margin-top:2rem}</style>
</head><body>
<h1>ただいまアプリケーションに接続できません</h1>
<p>しばらく待ってから、もう一度お試しください。解決しない場合は社内の管理者にご連絡ください。</p>
<div class="en" lang="en"><h1>The application cannot be reached right now</h1>
<p>Please try again in a moment. If this keeps happening, contact your administrator.</p></div>
</body></html>
"#;

/// Interface language of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 日本語
    Ja,
    /// English
    En,
}

impl Lang {
    /// Picks the language from `Accept-Language`: the first of `ja`/`en` by preference, else Japanese.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let Some(value) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
        else {
            return Self::Ja;
        };
        let mut choices: Vec<(f32, Self)> = value
            .split(',')
            .filter_map(|item| {
                let mut parts = item.trim().split(';');
                let tag = parts.next()?.trim().to_ascii_lowercase();
                let quality = parts
                    .find_map(|param| {
                        param
                            .trim()
                            .strip_prefix("q=")
                            .and_then(|q| q.parse::<f32>().ok())
                    })
                    .unwrap_or(1.0);
                let lang = if tag == "ja" || tag.starts_with("ja-") {
                    Self::Ja
                } else if tag == "en" || tag.starts_with("en-") {
                    Self::En
                } else {
                    return None;
                };
                Some((quality, lang))
            })
            .collect();
        // Stable sort keeps the header's order among equal weights.
        choices.sort_by(|a, b| b.0.total_cmp(&a.0));
        choices.first().map_or(Self::Ja, |(_, lang)| *lang)
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }
}

struct Text {
    title: &'static str,
    running: &'static str,
    explain: &'static str,
    not_found_title: &'static str,
    not_found: &'static str,
    signed_in_as: &'static str,
    sign_out: &'static str,
    sign_out_everywhere: &'static str,
    change_password: &'static str,
    account: &'static str,
    authenticator: &'static str,
}

fn text(lang: Lang) -> Text {
    match lang {
        Lang::Ja => Text {
            title: "genkan",
            running: "genkan は稼働しています。",
            explain: "社内アプリへの入口です。管理者がアプリを登録すると、ここから利用できるようになります。",
            not_found_title: "ページが見つかりません",
            not_found: "お探しのページはありません。アドレスをご確認ください。",
            signed_in_as: "サインイン中のユーザー",
            sign_out: "サインアウト",
            sign_out_everywhere: "すべての端末でサインアウト",
            change_password: "パスワードを変更",
            account: "アカウント",
            authenticator: "認証アプリを登録し直す",
        },
        Lang::En => Text {
            title: "genkan",
            running: "genkan is running.",
            explain: "This is the entrance to your company's apps. Once an administrator adds apps, they are reached from here.",
            not_found_title: "Page not found",
            not_found: "There is no page at this address. Please check it.",
            signed_in_as: "Signed in as",
            sign_out: "Sign out",
            sign_out_everywhere: "Sign out on every device",
            change_password: "Change password",
            account: "Account",
            authenticator: "Set up the authenticator app again",
        },
    }
}

/// The built-in app's routes.
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/_genkan/account", get(account))
        .route("/_genkan/health", get(health))
        .route(
            "/_genkan/login",
            get(auth::pages::login_form).post(auth::pages::login),
        )
        .route(
            "/_genkan/password",
            get(auth::pages::password_form).post(auth::pages::change_password),
        )
        .route("/_genkan/logout", axum::routing::post(auth::pages::logout))
        .route(
            "/_genkan/login/code",
            axum::routing::post(auth::second_factor::finish),
        )
        .route("/_genkan/admin", get(crate::admin::overview))
        .route(
            "/_genkan/admin/policy",
            get(crate::admin::policy_form).post(crate::admin::save_policy),
        )
        .route(
            "/_genkan/admin/users",
            axum::routing::post(crate::admin::add_user),
        )
        .route(
            "/_genkan/admin/user",
            axum::routing::post(crate::admin::user_action),
        )
        .route(
            "/_genkan/admin/groups",
            axum::routing::post(crate::admin::add_group),
        )
        .route(
            "/_genkan/admin/members",
            axum::routing::post(crate::admin::membership),
        )
        .route(
            "/_genkan/totp",
            get(auth::second_factor::enrol_form).post(auth::second_factor::enrol),
        )
        .fallback(not_found)
        .with_state(auth)
}

/// Who is signed in, with the forms to sign out; empty for nobody.
fn signed_in_block(
    auth: &Auth,
    identity: Option<Extension<Identity>>,
    headers: &HeaderMap,
    text: &Text,
) -> String {
    let signed_in = identity.and_then(|Extension(identity)| identity.user);
    let (Some(user), Some(session)) = (signed_in, auth.session(headers)) else {
        return String::new();
    };
    let csrf = html_escape(&session.row.csrf_token);
    format!(
        "<p>{}: <strong id=\"user\">{}</strong></p>\
<form method=\"post\" action=\"/_genkan/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\">{}</button> <button type=\"submit\" name=\"everywhere\" value=\"1\">{}</button></form>\
<p><a href=\"/_genkan/password\">{}</a> · <a href=\"/_genkan/totp\">{}</a></p>",
        text.signed_in_as,
        html_escape(&user),
        text.sign_out,
        text.sign_out_everywhere,
        text.change_password,
        text.authenticator,
    )
}

/// The signed-in person's own page: who they are, sign out, change password, authenticator app.
async fn account(
    State(auth): State<Arc<Auth>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let text = text(lang);
    let body = format!(
        "<h1>{}</h1>{}",
        text.account,
        signed_in_block(&auth, identity, &headers, &text)
    );
    page(lang, StatusCode::OK, text.account, &body)
}

async fn landing(
    State(auth): State<Arc<Auth>>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let text = text(lang);
    let body = format!(
        "<h1>{}</h1><p>{}</p>{}",
        text.running,
        text.explain,
        signed_in_block(&auth, identity, &headers, &text)
    );
    page(lang, StatusCode::OK, text.title, &body)
}

async fn health() -> Response {
    let mut response = (StatusCode::OK, "{\"status\":\"ok\"}\n").into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn not_found(headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    let text = text(lang);
    page(
        lang,
        StatusCode::NOT_FOUND,
        text.not_found_title,
        &format!("<h1>{}</h1><p>{}</p>", text.not_found_title, text.not_found),
    )
}

/// An error message for the top of a form, or nothing.
pub fn alert(message: Option<&str>) -> String {
    message.map_or_else(String::new, |text| {
        format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            html_escape(text)
        )
    })
}

/// A page in genkan's look: `body` is trusted HTML, `title` is escaped.
pub fn page(lang: Lang, status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
<style>body{{font-family:system-ui,\"Hiragino Sans\",\"Yu Gothic UI\",sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}\
h1{{font-size:1.4rem}}p{{line-height:1.7}}header{{font-weight:600;letter-spacing:.1em;color:#7a4b2a;margin-bottom:2rem}}\
form label{{display:block;margin:.8rem 0}}form input:not([type=hidden]){{display:block;width:100%;max-width:22rem;padding:.45rem;font-size:1rem;margin-top:.25rem;box-sizing:border-box}}\
button{{padding:.5rem 1.2rem;font-size:1rem;margin-top:.5rem}}.notice{{background:#eef6ee;padding:.5rem .8rem;border-radius:4px}}\
table{{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}}th,td{{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}}\
td.actions button{{padding:.2rem .5rem;font-size:.85rem;margin:0 .2rem .2rem 0}}form.inline label{{display:inline-block;margin-right:.8rem}}\
.error{{color:#a40000;background:#fbeaea;padding:.5rem .8rem;border-radius:4px}}</style>\
</head><body><header>玄関 genkan</header>{body}</body></html>\n",
        lang = lang.code(),
        title = html_escape(title),
    );
    html_response(
        status,
        html,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; media-src 'self'; form-action 'self'; frame-ancestors 'self'",
    )
}

/// The policy of pages that run genkan's own scripts (and talk back to genkan only).
pub(crate) const CSP_OWN_SCRIPTS: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'self'";

/// A finished HTML document as a response: never cached, under the given content policy.
pub(crate) fn html_response(status: StatusCode, html: String, csp: &'static str) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn language_follows_accept_language_with_japanese_default() {
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::Ja);
        assert_eq!(Lang::from_headers(&accept("en-US,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::from_headers(&accept("fr, en;q=0.5, ja;q=0.8")),
            Lang::Ja
        );
        assert_eq!(Lang::from_headers(&accept("de")), Lang::Ja);
        assert_eq!(Lang::from_headers(&accept("ja-JP")), Lang::Ja);
    }
}
