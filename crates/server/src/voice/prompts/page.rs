//! `/_genkan/admin/prompts`: every text the configured flows say on a call (say blocks and
//! get-input prompts), the WAV that plays it with its length and rate, and a form per text to
//! upload a new one; `/_genkan/admin/prompts/{file}` plays a file back. Administrators only.
//!
//! The form is `multipart/form-data`, the one way a plain HTML form sends a file without
//! script; the session's CSRF value travels as one of its fields.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use contact::flow::Block;
use gateway::gate::{Identity, html_escape as escape};

use super::{MAX_BYTES, PromptLibrary, Refusal, plain_file_name};
use crate::auth::{Auth, Session};
use crate::config::ContactSettings;
use crate::pages::{Lang, page};

/// The page, and where its forms post.
pub(crate) const PATH: &str = "/_genkan/admin/prompts";

#[derive(Clone)]
struct PromptsPage {
    auth: Arc<Auth>,
    contact: Arc<ContactSettings>,
    library: Arc<PromptLibrary>,
}

/// The page's routes. The upload route takes bodies up to the largest WAV plus room for the
/// form's other fields (axum's default limit is 2 MB).
pub(crate) fn router(
    auth: Arc<Auth>,
    contact: Arc<ContactSettings>,
    library: Arc<PromptLibrary>,
) -> Router {
    Router::new()
        .route(
            PATH,
            get(show)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_BYTES + 64 * 1024)),
        )
        .route("/_genkan/admin/prompts/{file}", get(play))
        .with_state(PromptsPage {
            auth,
            contact,
            library,
        })
}

struct Words {
    title: &'static str,
    intro: &'static str,
    formats: &'static str,
    text: &'static str,
    said_in: &'static str,
    file: &'static str,
    missing: &'static str,
    upload: &'static str,
    uploaded: &'static str,
    from_config: &'static str,
    not_in_flow: &'static str,
    none: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::Ja => Words {
            title: "音声ガイダンス",
            intro: "通話でフローが話す文ごとに、WAV ファイルを 1 つ再生します。アップロードしたファイルは次に再生するときから使われます（通話中の音声はそのままです）。",
            formats: "16 ビット PCM または 8 ビット µ-law、モノラルかステレオ、8・16・22.05・44.1・48 kHz（8 kHz に変換します）。5 分、20 MB まで。",
            text: "文",
            said_in: "ブロック",
            file: "ファイル",
            missing: "なし（短い信号音が鳴ります）",
            upload: "アップロード",
            uploaded: "アップロードしました",
            from_config: "設定ファイルの [voice.prompt_files] で指定。変更はそちらで。",
            not_in_flow: "（どのフローにもない文）",
            none: "フローに say / get_input ブロックがありません。",
        },
        Lang::En => Words {
            title: "Voice prompts",
            intro: "Each text a flow says on a call plays one WAV file. An upload plays from the next time its text is said; a prompt already playing on a call finishes unchanged.",
            formats: "16-bit PCM or 8-bit µ-law, mono or stereo, at 8, 16, 22.05, 44.1 or 48 kHz (resampled to 8 kHz); at most 5 minutes and 20 MB.",
            text: "Text",
            said_in: "Blocks",
            file: "File",
            missing: "missing (a short tone plays)",
            upload: "Upload",
            uploaded: "Uploaded",
            from_config: "Set by [voice.prompt_files] in the config; change it there.",
            not_in_flow: "(no flow says this)",
            none: "No flow has a say or get_input block.",
        },
    }
}

/// What every configured flow says on a call, each text once, with where it is said
/// (`flow / block`).
fn flow_texts(contact: &ContactSettings) -> BTreeMap<String, Vec<String>> {
    let mut texts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for flow in &contact.flows {
        for (name, block) in &flow.blocks {
            let text = match block {
                Block::Say { text, .. } => text,
                Block::GetInput { prompt, .. } => prompt,
                _ => continue,
            };
            texts
                .entry(text.clone())
                .or_default()
                .push(format!("{} / {name}", flow.name));
        }
    }
    texts
}

/// `GET /_genkan/admin/prompts`
async fn show(
    State(state): State<PromptsPage>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
) -> Response {
    let identity = identity.map(|Extension(identity)| identity);
    match crate::admin::administrator(&state.auth, &headers, identity.as_ref()) {
        Some((session, _)) => render(&state, &headers, &session, None, StatusCode::OK),
        None => crate::admin::not_admin(&headers),
    }
}

/// `POST /_genkan/admin/prompts` (multipart: `csrf`, `text`, `file`).
async fn upload(
    State(state): State<PromptsPage>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let identity = identity.map(|Extension(identity)| identity);
    // Checked before a byte of the body is read.
    let Some((session, actor)) =
        crate::admin::administrator(&state.auth, &headers, identity.as_ref())
    else {
        return crate::admin::not_admin(&headers);
    };
    let lang = Lang::from_headers(&headers);
    let (mut csrf, mut text, mut bytes) = (String::new(), String::new(), Vec::new());
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                let status = error.status();
                return refuse(&state, &headers, &session, &form_refusal(&error), status);
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let value = match field.bytes().await {
            Ok(value) => value,
            Err(error) => {
                let status = error.status();
                return refuse(&state, &headers, &session, &form_refusal(&error), status);
            }
        };
        match name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&value).into_owned(),
            "text" => text = String::from_utf8_lossy(&value).into_owned(),
            "file" => bytes = value.to_vec(),
            _ => {}
        }
    }
    if let Some(refusal) = session.csrf_refusal(&csrf) {
        return refusal;
    }
    let installed = if flow_texts(&state.contact).contains_key(&text) {
        let library = Arc::clone(&state.library);
        let text = text.clone();
        // Decoding and fsync block: off the async workers.
        tokio::task::spawn_blocking(move || library.install(&text, &bytes))
            .await
            .unwrap_or_else(|error| Err(Refusal::Io(std::io::Error::other(error))))
    } else {
        Err(Refusal::UnknownText)
    };
    let (outcome, detail) = match &installed {
        Ok(file) => ("ok", file.clone()),
        Err(refusal) => ("refused", refusal.message(Lang::En)),
    };
    state.auth.audit(
        "prompt_uploaded",
        Some(&actor.name),
        actor.source.as_deref(),
        Some(&text),
        outcome,
        None,
        &detail,
    );
    match installed {
        Ok(file) => {
            tracing::info!(file, text, "prompt uploaded");
            let w = words(lang);
            let message = format!(
                "{}: {} → <code>{}</code>",
                w.uploaded,
                escape(&text),
                escape(&file)
            );
            render(
                &state,
                &headers,
                &session,
                Some((true, message)),
                StatusCode::OK,
            )
        }
        Err(refusal) => {
            let status = if refusal.is_server_error() {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            refuse(&state, &headers, &session, &refusal, status)
        }
    }
}

/// A body over the route's limit is a file too large; anything else is a broken form.
fn form_refusal(error: &MultipartError) -> Refusal {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Refusal::TooLarge
    } else {
        Refusal::Form(error.body_text())
    }
}

fn refuse(
    state: &PromptsPage,
    headers: &HeaderMap,
    session: &Session,
    refusal: &Refusal,
    status: StatusCode,
) -> Response {
    let message = escape(&refusal.message(Lang::from_headers(headers)));
    render(state, headers, session, Some((false, message)), status)
}

/// `GET /_genkan/admin/prompts/{file}`: only a file some text plays right now, so the route
/// serves nothing else from the folder (nor outside it).
async fn play(
    State(state): State<PromptsPage>,
    identity: Option<Extension<Identity>>,
    UrlPath(file): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let identity = identity.map(|Extension(identity)| identity);
    if crate::admin::administrator(&state.auth, &headers, identity.as_ref()).is_none() {
        return crate::admin::not_admin(&headers);
    }
    let current = state.library.current();
    let known = current.entries().any(|(_, entry)| entry.file == file);
    if !known || !plain_file_name(&file) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::read(state.library.folder().join(&file)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "audio/wav"),
                (header::CACHE_CONTROL, "private, no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, file, "cannot serve a prompt");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

fn render(
    state: &PromptsPage,
    headers: &HeaderMap,
    session: &Session,
    message: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    let lang = Lang::from_headers(headers);
    let w = words(lang);
    let csrf = escape(&session.row.csrf_token);
    let current = state.library.current();
    let mut texts: Vec<(String, Vec<String>)> = flow_texts(&state.contact).into_iter().collect();
    // Texts mapped in the config or uploaded earlier that no flow says now: shown, so a
    // mapping left behind by an edited flow is noticed.
    for (text, _) in current.entries() {
        if !texts.iter().any(|(known, _)| known == text) {
            texts.push((text.clone(), Vec::new()));
        }
    }
    let mut body = format!(
        "<h1>{}</h1><p>{}</p><p><small>{}</small></p>",
        w.title, w.intro, w.formats
    );
    if let Some((ok, text)) = message {
        let class = if ok { "notice" } else { "error" };
        let _ = write!(body, "<p class=\"{class}\" role=\"status\">{text}</p>");
    }
    if texts.is_empty() {
        let _ = write!(body, "<p>{}</p>", w.none);
    }
    let _ = write!(
        body,
        "<table id=\"prompts\"><thead><tr><th>{}</th><th>{}</th></tr></thead><tbody>",
        w.text, w.file
    );
    for (text, places) in &texts {
        let entry = current.entry(text);
        let places = if places.is_empty() {
            w.not_in_flow.to_owned()
        } else {
            format!("{}: {}", w.said_in, escape(&places.join(", ")))
        };
        let sound = match entry {
            Some(entry) => match &entry.sound {
                Ok(sound) => format!(
                    "<a class=\"file\" href=\"{PATH}/{href}\">{file}</a><br>\
<span class=\"length\">{seconds:.1} s</span> · <span class=\"rate\">{rate} Hz</span><br>\
<audio controls preload=\"none\" src=\"{PATH}/{href}\"></audio>",
                    href = escape(&percent_encode(&entry.file)),
                    file = escape(&entry.file),
                    seconds = sound.seconds,
                    rate = sound.rate,
                ),
                Err(error) => format!(
                    "<span class=\"missing\">{}</span><br><small>{}: {}</small>",
                    w.missing,
                    escape(&entry.file),
                    escape(error)
                ),
            },
            None => format!("<span class=\"missing\">{}</span>", w.missing),
        };
        let form = if state.library.configured(text) {
            format!("<p><small>{}</small></p>", w.from_config)
        } else {
            format!(
                "<form method=\"post\" action=\"{PATH}\" enctype=\"multipart/form-data\" class=\"upload\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"text\" value=\"{text}\">\
<input type=\"file\" name=\"file\" accept=\".wav,audio/wav,audio/x-wav\" required>\
<button>{upload}</button></form>",
                text = escape(text),
                upload = w.upload,
            )
        };
        let _ = write!(
            body,
            "<tr><td><strong class=\"text\">{}</strong><br><small>{places}</small></td>\
<td>{sound}{form}</td></tr>",
            escape(text)
        );
    }
    body.push_str("</tbody></table>");
    page(lang, status, w.title, &body)
}

/// A file name as one URL path segment.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
