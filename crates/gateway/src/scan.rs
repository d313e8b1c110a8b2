//! Upload scanning: on a route that scans, a request body goes to clamd as it arrives and reaches
//! the upstream only once clamd has called it clean.
//!
//! Every body is scanned, not only those labelled `multipart/form-data`: the label is the
//! client's to choose, and a legacy app that reads the raw body stores whatever it is sent.
//! The body is held in memory while clamd looks at it (the scan limit bounds how much), so that
//! nothing of it is sent upstream before the verdict.
//!
//! Outcomes: clean → forwarded whole with `Content-Length`; infected → 403 and an audit entry
//! through [`Gatekeeper::virus_found`]; over the scan limit → 413 naming the limit; clamd
//! unreachable, slow or failing → 503 saying the scanner is unavailable, unless the route's
//! scanner is set to fail open, in which case the body is forwarded and a warning logged.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use virus_scan::{Scan, Scanner, Verdict};

use crate::gate::{Gatekeeper, Identity, html_escape, json_error};
use crate::proxy::RequestBody;
use crate::{Body, Error};

/// A route's scanner and what to do when it cannot answer.
#[derive(Debug, Clone)]
pub struct UploadScan {
    /// The clamd client.
    pub scanner: Scanner,
    /// Forward bodies unscanned (with a warning) when clamd cannot give a verdict, instead of
    /// refusing them with 503.
    pub fail_open: bool,
}

/// What the gateway does with a scanned request.
pub(crate) enum Screened {
    /// Send it on.
    Forward(Request<RequestBody>),
    /// Answer the client with this; the upstream is not contacted.
    Answer(Response<Body>),
}

/// Reads the body of `request`, feeding clamd as it arrives, and decides.
/// `body_limit` is the gateway's own limit (`limits.max_body_size`), checked as well.
pub(crate) async fn screen(
    scan: &UploadScan,
    gate: &dyn Gatekeeper,
    identity: &Identity,
    request: Request<Incoming>,
    body_limit: u64,
) -> Result<Screened, Error> {
    use http_body::Body as _;
    if request.body().is_end_stream() {
        return Ok(Screened::Forward(request.map(RequestBody::Incoming)));
    }
    let (parts, mut body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let scan_limit = scan.scanner.max_bytes();
    match declared_length(&parts.headers) {
        Some(length) if length > body_limit => {
            return Err(Error::BodyTooLarge { limit: body_limit });
        }
        Some(length) if length > scan_limit => {
            return Ok(Screened::Answer(too_large(&parts.headers, scan_limit)));
        }
        _ => {}
    }

    let mut pieces: Vec<Bytes> = Vec::new();
    let mut total: u64 = 0;
    // clamd is contacted at the first byte of data, not before: an empty body needs no scan.
    let mut scanning: Option<Scan> = None;
    let mut failure: Option<virus_scan::Error> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| Error::ClientBody(error.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        total = total.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
        if total > body_limit {
            return Err(Error::BodyTooLarge { limit: body_limit });
        }
        if total > scan_limit {
            return Ok(Screened::Answer(too_large(&parts.headers, scan_limit)));
        }
        if failure.is_none()
            && let Err(error) = feed(&scan.scanner, &mut scanning, &data).await
        {
            scanning = None;
            failure = Some(error);
        }
        // A body that is going to be refused is still read to its end (within the limits), so
        // that the client hears why rather than seeing the connection reset; it is not kept.
        if failure.is_none() || scan.fail_open {
            pieces.push(data);
        }
    }

    let verdict = match (scanning, failure) {
        (_, Some(error)) => Err(error),
        (Some(scanning), None) => scanning.finish().await,
        (None, None) => Ok(Verdict::Clean),
    };
    let bytes = join(pieces, total);
    match verdict {
        Ok(Verdict::Clean) => Ok(Screened::Forward(Request::from_parts(
            parts,
            RequestBody::Read(bytes),
        ))),
        Ok(Verdict::Infected { signature }) => {
            tracing::warn!(
                user = identity.user.as_deref().unwrap_or("-"),
                source = %identity.source,
                path,
                signature,
                bytes = total,
                "virus found in a request body; refused"
            );
            gate.virus_found(identity, &path, &signature);
            Ok(Screened::Answer(infected(&parts.headers, &signature)))
        }
        Err(virus_scan::Error::TooLarge { limit }) => {
            Ok(Screened::Answer(too_large(&parts.headers, limit)))
        }
        Err(error) if scan.fail_open => {
            tracing::warn!(path, %error, "virus scanner unavailable; forwarding the body unscanned (scan.fail_open)");
            gate.upload_unscanned(identity, &path, &error.to_string(), true);
            Ok(Screened::Forward(Request::from_parts(
                parts,
                RequestBody::Read(bytes),
            )))
        }
        Err(error) => Ok(Screened::Answer(unavailable(
            gate,
            identity,
            &path,
            &parts.headers,
            &error,
        ))),
    }
}

/// Sends one piece to clamd, opening the scan first if this is the first piece.
async fn feed(
    scanner: &Scanner,
    scanning: &mut Option<Scan>,
    data: &[u8],
) -> Result<(), virus_scan::Error> {
    let scan = match scanning {
        Some(scan) => scan,
        None => scanning.insert(scanner.begin().await?),
    };
    scan.feed(data).await
}

fn join(pieces: Vec<Bytes>, total: u64) -> Bytes {
    if pieces.len() == 1 {
        return pieces.into_iter().next().unwrap_or_default();
    }
    let mut joined = BytesMut::with_capacity(usize::try_from(total).unwrap_or(0));
    for piece in pieces {
        joined.extend_from_slice(&piece);
    }
    joined.freeze()
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The 503 for a body clamd could not judge, with its log line and audit entry.
fn unavailable(
    gate: &dyn Gatekeeper,
    identity: &Identity,
    path: &str,
    headers: &HeaderMap,
    error: &virus_scan::Error,
) -> Response<Body> {
    let hint = match error {
        virus_scan::Error::ClamdError(text) if text.contains("size limit") => {
            " (clamd's StreamMaxLength is below scan.max_body_size: raise it in clamd.conf or lower the limit)"
        }
        _ => "",
    };
    tracing::warn!(path, %error, "virus scanner unavailable; body refused{hint}");
    gate.upload_unscanned(identity, path, &error.to_string(), false);
    notice(
        headers,
        StatusCode::SERVICE_UNAVAILABLE,
        "GK-SCAN-002",
        (
            "ウイルス検査を利用できません",
            "ウイルス検査が利用できないため、送信されたデータを受け付けられませんでした。しばらくしてから、もう一度お試しください。".to_owned(),
        ),
        (
            "The virus scanner is unavailable",
            "The virus scanner is unavailable, so the upload was not accepted. Please try again later.".to_owned(),
        ),
    )
}

fn infected(headers: &HeaderMap, signature: &str) -> Response<Body> {
    notice(
        headers,
        StatusCode::FORBIDDEN,
        "GK-SCAN-001",
        (
            "ウイルスが見つかりました",
            format!(
                "送信されたデータからウイルス（{signature}）が見つかったため、受け付けませんでした。このことは記録されています。"
            ),
        ),
        (
            "A virus was found",
            format!(
                "The upload contains a virus ({signature}) and was not delivered. This has been recorded."
            ),
        ),
    )
}

fn too_large(headers: &HeaderMap, limit: u64) -> Response<Body> {
    let size = human_size(limit);
    notice(
        headers,
        StatusCode::PAYLOAD_TOO_LARGE,
        "GK-SCAN-003",
        (
            "データが大きすぎます",
            format!(
                "ウイルス検査できる大きさは {size} までです。これより大きいデータは受け付けられません。"
            ),
        ),
        (
            "Upload too large",
            format!(
                "Uploads are scanned for viruses and may be at most {size}; this one is larger."
            ),
        ),
    )
}

/// `20 MiB (20971520 bytes)`, or the bytes alone when the limit is not a whole number of KiB.
fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB ({bytes} bytes)", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB ({bytes} bytes)", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// A coded JSON error for programs, or a page in Japanese and English for browsers.
fn notice(
    headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    (title_ja, text_ja): (&str, String),
    (title_en, text_en): (&str, String),
) -> Response<Body> {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if !wants_html {
        return json_error(status, code, &text_en);
    }
    let page = format!(
        "<!doctype html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{} / {}</title><style>body{{font-family:system-ui,\"Hiragino Sans\",\"Yu Gothic UI\",sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}p{{line-height:1.7}}</style></head><body>\
<h1>{}</h1><p>{}</p><h1 lang=\"en\">{}</h1><p lang=\"en\">{}</p><p><small>{code}</small></p></body></html>\n",
        html_escape(title_ja),
        html_escape(title_en),
        html_escape(title_ja),
        html_escape(&text_ja),
        html_escape(title_en),
        html_escape(&text_en),
    );
    crate::gate::html_page(status, page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn text(response: Response<Body>) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn limits_are_stated_in_units_people_read() {
        assert_eq!(human_size(20 * 1024 * 1024), "20 MiB (20971520 bytes)");
        assert_eq!(human_size(64 * 1024), "64 KiB (65536 bytes)");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    #[test]
    fn programs_get_coded_json_and_browsers_a_page() {
        let program = infected(&HeaderMap::new(), "Eicar-Test-Signature");
        assert_eq!(program.status(), StatusCode::FORBIDDEN);
        let body = text(program);
        assert!(body.contains("\"GK-SCAN-001\""), "{body}");
        assert!(body.contains("Eicar-Test-Signature"), "{body}");

        let mut browser = HeaderMap::new();
        browser.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        let page = too_large(&browser, 1024 * 1024);
        assert_eq!(page.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = text(page);
        assert!(body.contains("1 MiB (1048576 bytes)"), "{body}");
        assert!(body.contains("ウイルス検査"), "{body}");

        let hostile = infected(&browser, "<script>x</script>");
        assert!(!text(hostile).contains("<script>"));
    }
}
