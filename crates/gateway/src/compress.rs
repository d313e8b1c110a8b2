//! Which responses get gzip or brotli.
//!
//! nginx's rule from the seed (`gzip on; gzip_types …`) with two corrections: formats that are
//! already compressed are never compressed again even when listed (the seed listed PNG and JPEG,
//! which only costs CPU), and bodies below a minimum size are sent as they are.
//! The encoding itself is negotiated from `Accept-Encoding` by tower-http's compression layer;
//! this module only decides whether a response qualifies.

use std::sync::Arc;

use http::{HeaderMap, Response, header};
use http_body::Body as HttpBody;
use tower_http::compression::predicate::Predicate;

/// Compression rules for one route (or for the built-in apps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressionPolicy {
    /// Media types (lower case, without parameters) that may be compressed.
    pub types: Vec<String>,
    /// Bodies smaller than this many bytes are not compressed.
    pub min_length: u64,
}

impl CompressionPolicy {
    /// Never compress.
    pub fn off() -> Self {
        Self {
            types: Vec::new(),
            min_length: u64::MAX,
        }
    }

    /// nginx's `gzip_types` default (`text/html`) plus the types a config lists.
    pub fn with_types<I: IntoIterator<Item = String>>(types: I, min_length: u64) -> Self {
        let mut all = vec!["text/html".to_owned()];
        for media_type in types {
            let media_type = media_type.trim().to_ascii_lowercase();
            if !all.contains(&media_type) {
                all.push(media_type);
            }
        }
        Self {
            types: all,
            min_length,
        }
    }

    /// Listed types that will be ignored because their content is compressed already.
    pub fn ignored_types(&self) -> Vec<&str> {
        self.types
            .iter()
            .map(String::as_str)
            .filter(|media_type| already_compressed(media_type))
            .collect()
    }

    /// Whether a response with these headers and this body size should be compressed.
    pub fn allows(&self, headers: &HeaderMap, exact_size: Option<u64>) -> bool {
        if headers.contains_key(header::CONTENT_ENCODING)
            || headers.contains_key(header::CONTENT_RANGE)
        {
            return false;
        }
        let Some(media_type) = media_type(headers) else {
            return false;
        };
        if already_compressed(&media_type) || !self.types.contains(&media_type) {
            return false;
        }
        let size = exact_size.or_else(|| {
            headers
                .get(header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
        });
        // An unknown size (an HTTP/1.0 upstream that closes to end the body) is compressed, as
        // nginx does; such bodies are usually pages, not tiny fragments.
        size.is_none_or(|size| size >= self.min_length)
    }
}

/// Media types whose bodies are already compressed.
fn already_compressed(media_type: &str) -> bool {
    let (kind, subtype) = media_type.split_once('/').unwrap_or((media_type, ""));
    match kind {
        "image" => subtype != "svg+xml" && subtype != "bmp" && subtype != "x-icon",
        "video" | "audio" => true,
        _ => matches!(
            media_type,
            "application/zip"
                | "application/gzip"
                | "application/x-gzip"
                | "application/x-7z-compressed"
                | "application/x-rar-compressed"
                | "application/x-bzip2"
                | "application/x-xz"
                | "application/zstd"
                | "font/woff"
                | "font/woff2"
                | "application/font-woff"
                | "application/font-woff2"
                | "text/event-stream"
        ),
    }
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let base = value.split(';').next()?.trim().to_ascii_lowercase();
    (!base.is_empty()).then_some(base)
}

/// tower-http predicate that reads the policy the gateway attached to the response.
///
/// A response without an attached policy is never compressed, so nothing is compressed by
/// accident (genkan's own pages carry CSRF tokens and stay uncompressed because of BREACH).
#[derive(Debug, Clone, Copy, Default)]
pub struct ByAttachedPolicy;

impl Predicate for ByAttachedPolicy {
    fn should_compress<B>(&self, response: &Response<B>) -> bool
    where
        B: HttpBody,
    {
        response
            .extensions()
            .get::<Arc<CompressionPolicy>>()
            .is_some_and(|policy| {
                policy.allows(response.headers(), response.body().size_hint().exact())
            })
    }
}

/// Reads the start of a body whose size is unknown (an HTTP/1.0 upstream ends bodies by closing),
/// so that the size rule can still be applied: a body that ends within `policy.min_length`
/// bytes becomes a sized body (and is then not compressed); a longer one is passed on unchanged
/// with the bytes already read in front.
pub async fn settle_unsized_body(
    response: Response<crate::Body>,
    policy: &CompressionPolicy,
) -> Response<crate::Body> {
    use http_body_util::BodyExt;
    if response.body().size_hint().exact().is_some() || !policy.allows(response.headers(), None) {
        return response;
    }
    let (mut parts, mut body) = response.into_parts();
    let mut prefix = bytes::BytesMut::new();
    let wanted = usize::try_from(policy.min_length).unwrap_or(usize::MAX);
    let outcome = loop {
        if prefix.len() >= wanted {
            break Ok(false);
        }
        match body.frame().await {
            None => break Ok(true),
            Some(Err(error)) => break Err(error),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    prefix.extend_from_slice(&data);
                }
            }
        }
    };
    let prefix = prefix.freeze();
    match outcome {
        Ok(true) => {
            parts.headers.insert(
                header::CONTENT_LENGTH,
                http::HeaderValue::from(prefix.len()),
            );
            Response::from_parts(parts, crate::full(prefix))
        }
        Ok(false) => Response::from_parts(
            parts,
            crate::boxed(Prefixed {
                prefix: Some(prefix),
                rest: Ok(body),
            }),
        ),
        Err(error) => Response::from_parts(
            parts,
            crate::boxed(Prefixed {
                prefix: Some(prefix),
                rest: Err(Some(error)),
            }),
        ),
    }
}

/// Bytes already read, followed by the rest of the body (or the error that cut it short).
struct Prefixed {
    prefix: Option<bytes::Bytes>,
    rest: Result<crate::Body, Option<crate::BoxError>>,
}

impl HttpBody for Prefixed {
    type Data = bytes::Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, crate::BoxError>>> {
        use std::task::Poll;
        if let Some(prefix) = self.prefix.take().filter(|prefix| !prefix.is_empty()) {
            return Poll::Ready(Some(Ok(http_body::Frame::data(prefix))));
        }
        match &mut self.rest {
            Ok(body) => std::pin::Pin::new(body).poll_frame(cx),
            Err(error) => Poll::Ready(error.take().map(Err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        headers
    }

    #[test]
    fn seed_types_compress_but_images_do_not() {
        let seed = CompressionPolicy::with_types(
            [
                "text/css",
                "application/javascript",
                "image/png",
                "application/octet-stream",
            ]
            .map(String::from),
            256,
        );
        assert_eq!(seed.ignored_types(), vec!["image/png"]);
        assert!(seed.allows(&headers("text/html; charset=shift_jis"), Some(4096)));
        assert!(seed.allows(&headers("text/css"), None));
        assert!(!seed.allows(&headers("image/png"), Some(4096)));
        assert!(!seed.allows(&headers("text/plain"), Some(4096)));
        assert!(!seed.allows(&headers("text/html"), Some(100)));
    }

    #[test]
    fn already_encoded_bodies_are_left_alone() {
        let policy = CompressionPolicy::with_types([], 0);
        let mut encoded = headers("text/html");
        encoded.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(!policy.allows(&encoded, Some(10_000)));
        assert!(!CompressionPolicy::off().allows(&headers("text/html"), Some(10_000)));
    }
}
