//! `GET /_genkan/contacts/{id}/recording`: a call's recording, for administrators and
//! supervisors whose groups the policy gives `recording_playback`, with HTTP Range (one
//! range) so that a player can seek.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::contacts_page::may_search;
use crate::auth::Auth;

#[derive(Clone)]
struct Recordings {
    auth: Arc<Auth>,
    dir: PathBuf,
}

/// The route, serving files from `dir` (`<data_dir>/recordings`).
pub fn router(auth: Arc<Auth>, dir: PathBuf) -> Router {
    Router::new()
        .route("/_genkan/contacts/{id}/recording", get(recording))
        .with_state(Recordings { auth, dir })
}

async fn recording(
    State(state): State<Recordings>,
    UrlPath(id): UrlPath<i64>,
    headers: HeaderMap,
) -> Response {
    let Some(groups) = may_search(&state.auth, &headers) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    if !state
        .auth
        .has_capability(&groups, policy::Capability::RecordingPlayback)
    {
        return (
            StatusCode::FORBIDDEN,
            "the policy does not give your groups the `recording_playback` capability\n",
        )
            .into_response();
    }
    let auth = Arc::clone(&state.auth);
    let row = tokio::task::spawn_blocking(move || {
        auth.database()?.contact(id).map_err(anyhow::Error::from)
    })
    .await;
    let name = match row {
        Ok(Ok(Some(row))) => row.recording,
        Ok(Ok(None)) => None,
        Ok(Err(error)) => {
            tracing::error!("cannot read a contact record: {error:#}");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    // Only names the voice adapter writes (`<digits>.wav`), so a record can never point
    // outside the folder.
    let Some(name) = name.filter(|name| {
        name.strip_suffix(".wav")
            .is_some_and(|stem| !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()))
    }) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match serve(&state.dir.join(name), headers.get(header::RANGE)).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!("cannot serve a recording: {error}");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

async fn serve(path: &Path, range: Option<&header::HeaderValue>) -> std::io::Result<Response> {
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let wanted = match range.and_then(|value| value.to_str().ok()) {
        None => None,
        Some(text) => match byte_range(text, len) {
            Some(range) => Some(range),
            None => {
                return Ok((
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                )
                    .into_response());
            }
        },
    };
    let (start, end) = wanted.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    let mut body = vec![0u8; usize::try_from(count).unwrap_or(0)];
    file.seek(std::io::SeekFrom::Start(start)).await?;
    file.read_exact(&mut body).await?;
    let status = if wanted.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        body,
    )
        .into_response();
    if wanted.is_some()
        && let Ok(value) = format!("bytes {start}-{end}/{len}").parse()
    {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    Ok(response)
}

/// One `bytes=` range (`a-b`, `a-`, `-n`) inside a file of `len` bytes, clamped to its end;
/// `None` when it is malformed, names several ranges, or starts past the end.
fn byte_range(text: &str, len: u64) -> Option<(u64, u64)> {
    let spec = text.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = if first.is_empty() {
        let suffix: u64 = last.parse().ok().filter(|n| *n > 0)?;
        (len.saturating_sub(suffix), len - 1)
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            len - 1
        } else {
            last.parse::<u64>().ok()?.min(len - 1)
        };
        (start, end)
    };
    (start <= end && start < len).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges_are_read_as_rfc_9110_says_and_clamped_to_the_file() {
        assert_eq!(byte_range("bytes=0-43", 100), Some((0, 43)));
        assert_eq!(byte_range("bytes=50-", 100), Some((50, 99)));
        assert_eq!(byte_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=90-500", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=-500", 100), Some((0, 99)));
        for refused in [
            "bytes=100-",
            "bytes=5-2",
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=x-",
            "bytes=-0",
        ] {
            assert_eq!(byte_range(refused, 100), None, "{refused}");
        }
    }
}
