//! The gate every request passes before it reaches an app: identity and policy.
//!
//! The gateway does not know how people sign in or where sessions live; the server implements
//! [`Gatekeeper`] and the gateway acts on its [`Verdict`]. Requests for the sign-in pages
//! themselves are let through by the gatekeeper (they are deliberately public).

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Uri};

use crate::{Body, full};

/// Headers genkan uses to tell upstreams who the user is. Whatever a client sends under these
/// names is removed before the request goes anywhere, so an upstream can trust them.
pub const IDENTITY_HEADERS: [&str; 2] = ["x-genkan-user", "x-genkan-groups"];

/// What the gate sees of a request.
#[derive(Debug)]
pub struct Knock<'a> {
    /// Client address.
    pub source: IpAddr,
    /// Method.
    pub method: &'a Method,
    /// Host without port, lower case.
    pub host: &'a str,
    /// Request URI (path and query).
    pub uri: &'a Uri,
    /// Request headers (cookies are read from here).
    pub headers: &'a HeaderMap,
    /// Name of the proxied route, or `None` for genkan's own pages.
    pub route: Option<&'a str>,
    /// The leaf certificate (DER) the client presented in the TLS handshake, if any. The
    /// handshake has verified it against the device CA; which device it is, and whether that
    /// device still counts, is for the gatekeeper to say.
    pub client_certificate: Option<&'a [u8]>,
}

/// The client certificate of the connection a request came on (leaf, DER), in the request's
/// extensions for genkan's own pages. Never forwarded to upstreams.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub std::sync::Arc<[u8]>);

/// The gate's answer.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Let it through; `user` is who it is (for the access log and identity headers).
    Pass {
        /// Signed-in user, if any.
        user: Option<String>,
        /// The user's groups.
        groups: Vec<String>,
        /// Which files may cross the gateway for this person.
        exchange: FileExchange,
    },
    /// Nobody is signed in and the request needs someone.
    SignIn,
    /// Signed in (or not), and the policy refuses.
    Refuse {
        /// The deciding rule, if one decided.
        rule: Option<String>,
        /// Why, safe to show the person refused.
        reason: String,
    },
}

/// Whether files may be sent to apps (uploads) and received from them (attachments): the seed's
/// "file exchange per group", enforced at the gateway so it holds for legacy apps too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileExchange {
    /// File uploads (`multipart/form-data` or `application/octet-stream` bodies) may pass.
    pub upload: bool,
    /// Responses sent as attachments (`Content-Disposition: attachment`) may pass.
    pub download: bool,
}

impl FileExchange {
    /// Both directions open.
    pub const OPEN: Self = Self {
        upload: true,
        download: true,
    };
}

/// Decides whether a request may proceed. Implemented by the server.
pub trait Gatekeeper: Send + Sync {
    /// Judges one request. Must be quick: it runs on every request.
    fn judge(&self, knock: &Knock<'_>) -> Verdict;

    /// Told when the gateway refused a file in either direction, for the audit trail.
    fn file_refused(&self, _identity: &Identity, _path: &str, _direction: &'static str) {}

    /// Told when clamd found a virus in a request body; the body was refused and the upstream
    /// never saw it. For the audit trail and alerts.
    fn virus_found(&self, _identity: &Identity, _path: &str, _signature: &str) {}

    /// Told when a body on a scanning route could not be scanned (clamd unreachable, slow or
    /// failing): `forwarded` says whether it went on unscanned (`fail_open`) or was refused.
    fn upload_unscanned(&self, _identity: &Identity, _path: &str, _reason: &str, _forwarded: bool) {
    }
}

/// Whether a request carries a file upload.
pub fn is_upload(method: &Method, headers: &HeaderMap) -> bool {
    let carries_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    carries_body
        && (content_type.starts_with("multipart/form-data")
            || content_type.starts_with("application/octet-stream"))
}

/// Whether a response hands the browser a file to save. Read as bytes: legacy apps put raw
/// Shift_JIS or UTF-8 file names in the header, and such a header must not slip through.
pub fn is_attachment(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONTENT_DISPOSITION)
        .iter()
        .any(|value| {
            let bytes = value.as_bytes();
            let start = bytes
                .iter()
                .position(|byte| !byte.is_ascii_whitespace())
                .unwrap_or(bytes.len());
            bytes[start..]
                .get(..10)
                .is_some_and(|word| word.eq_ignore_ascii_case(b"attachment"))
        })
}

/// Who a request that passed the gate is from; put in the request's extensions for genkan's
/// own pages.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Signed-in user, if any.
    pub user: Option<String>,
    /// The user's groups.
    pub groups: Vec<String>,
    /// The client's address.
    pub source: IpAddr,
}

/// A gate that lets everything through, for deployments and tests that put no identity in front.
#[derive(Debug, Default)]
pub struct OpenGate;

impl Gatekeeper for OpenGate {
    fn judge(&self, _knock: &Knock<'_>) -> Verdict {
        Verdict::Pass {
            user: None,
            groups: Vec::new(),
            exchange: FileExchange::OPEN,
        }
    }
}

/// Removes identity headers a client tried to set.
pub fn strip_identity_headers(headers: &mut HeaderMap) {
    for name in IDENTITY_HEADERS {
        headers.remove(name);
    }
}

/// Sets identity headers for an upstream that asked for them.
pub fn set_identity_headers(headers: &mut HeaderMap, user: Option<&str>, groups: &[String]) {
    let Some(user) = user else { return };
    if let Ok(value) = HeaderValue::from_str(user) {
        headers.insert(HeaderName::from_static(IDENTITY_HEADERS[0]), value);
    }
    if let Ok(value) = HeaderValue::from_str(&groups.join(",")) {
        headers.insert(HeaderName::from_static(IDENTITY_HEADERS[1]), value);
    }
}

/// The answer to a request that needs someone signed in: a redirect to the sign-in page for a
/// browser, a coded 401 for a program.
pub fn sign_in_response(method: &Method, uri: &Uri, headers: &HeaderMap) -> Response<Body> {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && (method == Method::GET || method == Method::HEAD) {
        let next = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let location = format!("/_genkan/login?next={}", percent_encode(next));
        let mut response = Response::new(full(""));
        *response.status_mut() = StatusCode::SEE_OTHER;
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    json_error(StatusCode::UNAUTHORIZED, "GK-AUTH-001", "sign in first")
}

/// The answer to a refused request: a page that names the deciding rule and nothing else.
pub fn refusal_response(headers: &HeaderMap, rule: Option<&str>, reason: &str) -> Response<Body> {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if !wants_html {
        return json_error(StatusCode::FORBIDDEN, "GK-AUTH-003", reason);
    }
    let rule_line = rule.map_or_else(String::new, |rule| {
        format!("<p>規則 / rule: <code>{}</code></p>", html_escape(rule))
    });
    let page = format!(
        "<!doctype html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>アクセスできません / Access denied</title><style>body{{font-family:system-ui,\"Hiragino Sans\",\"Yu Gothic UI\",sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}p{{line-height:1.7}}code{{background:#f3f0ea;padding:0 .3em}}</style></head><body>\
<h1>このページへのアクセスは許可されていません</h1><p>アクセス規則により拒否されました。必要な場合は社内の管理者にご相談ください。</p>\
<h1 lang=\"en\">You may not open this page</h1><p lang=\"en\">An access rule refused the request: {}</p>{rule_line}\
<p><a href=\"/_genkan/login\">サインイン / Sign in</a></p></body></html>\n",
        html_escape(reason)
    );
    html_page(StatusCode::FORBIDDEN, page)
}

/// One of the gateway's own HTML pages (refusals), never cached.
pub(crate) fn html_page(status: StatusCode, page: String) -> Response<Body> {
    let mut response = Response::new(full(page));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A coded JSON error, the shape genkan's own APIs use.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_sent_to_sign_in_and_programs_get_401() {
        let uri: Uri = "/fmi/iwp?x=1&y=%E6%97%A5".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml"),
        );
        let browser = sign_in_response(&Method::GET, &uri, &headers);
        assert_eq!(browser.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            browser.headers()["location"],
            "/_genkan/login?next=/fmi/iwp%3Fx%3D1%26y%3D%25E6%2597%25A5"
        );
        let program = sign_in_response(&Method::POST, &uri, &HeaderMap::new());
        assert_eq!(program.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn forged_identity_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert("x-genkan-user", HeaderValue::from_static("admin"));
        headers.insert("X-Genkan-Groups", HeaderValue::from_static("admin"));
        strip_identity_headers(&mut headers);
        assert!(headers.is_empty());
        set_identity_headers(
            &mut headers,
            Some("suzuki"),
            &["contractor".to_owned(), "staff".to_owned()],
        );
        assert_eq!(headers["x-genkan-groups"], "contractor,staff");
    }

    #[test]
    fn uploads_and_attachments_are_recognised() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=x"),
        );
        assert!(is_upload(&Method::POST, &headers));
        assert!(!is_upload(&Method::GET, &headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(!is_upload(&Method::POST, &headers));
        let mut response = HeaderMap::new();
        assert!(!is_attachment(&response));
        response.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_bytes("Attachment; filename=\"顧客.csv\"".as_bytes()).unwrap(),
        );
        assert!(is_attachment(&response));
        response.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("inline"),
        );
        assert!(!is_attachment(&response));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
