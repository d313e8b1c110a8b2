//! The webhook block's HTTP call: `POST` the `ContactFlowEvent` as JSON to the flow's URL and
//! read a flat string map back, all within the block's timeout (at most 8 s). Every failure —
//! no connection, a TLS error, a status other than 2xx, a body that is not a flat object, a
//! slow answer — is a [`WebhookFailure`], which the flow takes as the block's error branch: a
//! webhook can delay a contact by its timeout, never stop it.
//!
//! HTTPS servers are checked against the system's trusted CAs (Debian's `ca-certificates`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why the webhook's answer was not used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookFailure {
    /// The URL is not `http://host[:port]/path` or `https://…`.
    #[error("not a usable URL: {0}")]
    Url(String),
    /// No answer within the block's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting, TLS or HTTP failed.
    #[error("{0}")]
    Transport(String),
    /// The service answered with another status than 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is not a flat JSON object of strings (or is too large).
    #[error(transparent)]
    Answer(#[from] contact::webhook::WebhookError),
}

/// Calls the webhook at `url` with `event` and returns the attributes it answered.
pub async fn invoke(
    url: &str,
    event: &serde_json::Value,
    limit: Duration,
) -> Result<BTreeMap<String, String>, WebhookFailure> {
    match tokio::time::timeout(limit, exchange(url, event)).await {
        Ok(result) => result,
        Err(_) => Err(WebhookFailure::Timeout(limit)),
    }
}

async fn exchange(
    url: &str,
    event: &serde_json::Value,
) -> Result<BTreeMap<String, String>, WebhookFailure> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| WebhookFailure::Url(url.to_owned()))?;
    let secure = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(WebhookFailure::Url(url.to_owned())),
    };
    let host = uri
        .host()
        .ok_or_else(|| WebhookFailure::Url(url.to_owned()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let authority = uri
        .authority()
        .map_or_else(|| host.clone(), ToString::to_string);
    let path = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    let transport = |error: &dyn std::fmt::Display| WebhookFailure::Transport(error.to_string());
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|error| transport(&format!("cannot connect to {authority}: {error}")))?;
    let _ = tcp.set_nodelay(true);
    let body = Bytes::from(serde_json::to_vec(event).map_err(|error| transport(&error))?);
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, &authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("genkan/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body))
        .map_err(|error| transport(&error))?;
    let response = if secure {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| WebhookFailure::Url(url.to_owned()))?;
        let tls = tokio_rustls::TlsConnector::from(client_config())
            .connect(name, tcp)
            .await
            .map_err(|error| transport(&format!("TLS with {authority}: {error}")))?;
        send(tls, request).await?
    } else {
        send(tcp, request).await?
    };
    let status = response.status();
    // Read a little more than the limit, so that too large is told apart from cut short.
    let limit = contact::webhook::MAX_ANSWER_BYTES + 1;
    let bytes = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|_| WebhookFailure::Answer(contact::webhook::WebhookError::TooLarge))?
        .to_bytes();
    if !status.is_success() {
        return Err(WebhookFailure::Status(status.as_u16()));
    }
    Ok(contact::webhook::answer(&bytes)?)
}

async fn send<T>(
    io: T,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, WebhookFailure>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|error| WebhookFailure::Transport(error.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|error| WebhookFailure::Transport(error.to_string()))
}

/// TLS for webhooks: the system's trusted CAs, loaded once.
fn client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a system CA certificate could not be read");
        }
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!(
                "no system CA certificates: HTTPS webhooks will fail (install ca-certificates)"
            );
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| {
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            }),
        )
    }))
}
