//! Forwarding one request to a route's upstream and bringing its answer back.
//!
//! The defaults reproduce what the seed's nginx did for the IIS6 + FileMaker Web Companion app
//! (Host is the upstream's own authority, `Location`/`Refresh` are mapped back to the public
//! origin, the body is buffered and sent with `Content-Length`), and each can be changed per route.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::headers::{is_upgrade, strip_hop_by_hop};
use crate::route::{Route, UpstreamHost, rewrite_refresh};
use crate::{Body, Error, boxed, full};

/// Pooled HTTP/1.1 client for one route's upstream.
pub type UpstreamClient = Client<HttpConnector, Body>;

/// Builds the keep-alive client a route uses.
pub fn upstream_client(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(50))
        .pool_max_idle_per_host(128)
        // Old servers were written against browsers that sent `Content-Type`, not `content-type`.
        .http1_title_case_headers(true)
        .set_host(false)
        .build(connector)
}

/// What the gateway knows about the client side of a request.
#[derive(Debug, Clone)]
pub struct ClientSide {
    /// The client's address.
    pub peer: SocketAddr,
    /// `host[:port]` as the client addressed us.
    pub public_host: String,
    /// `https://host[:port]`.
    pub public_origin: String,
}

/// A request body on its way upstream: still arriving from the client, or already read whole
/// (because it had to be scanned first).
#[derive(Debug)]
pub enum RequestBody {
    /// Streamed from the client (or buffered here, as the route says).
    Incoming(Incoming),
    /// Read and checked; sent with `Content-Length`.
    Read(Bytes),
}

/// Sends `request` to the route's upstream and returns the response to give the client.
pub async fn forward(
    route: &Route,
    client: &UpstreamClient,
    mut request: Request<RequestBody>,
    side: &ClientSide,
    max_body_bytes: u64,
) -> Result<Response<Body>, Error> {
    let client_version = request.version();
    let upgrade =
        route.websockets && client_version == Version::HTTP_11 && is_upgrade(request.headers());
    let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let uri = Uri::builder()
        .scheme(route.upstream.scheme.clone())
        .authority(route.upstream.authority.clone())
        .path_and_query(route.upstream_path(path_and_query))
        .build()
        .map_err(|_| Error::BadRequest("the path cannot be forwarded"))?;
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));

    let (mut parts, body) = request.into_parts();
    let upgrade_protocol = parts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    if let (true, Some(protocol)) = (upgrade, upgrade_protocol) {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol);
    }
    set_upstream_host(route, side, &mut parts.headers)?;
    if route.forwarded_headers {
        set_forwarded(side, &mut parts.headers)?;
    }
    parts.uri = uri;
    parts.version = Version::HTTP_11;

    let read = match body {
        RequestBody::Read(bytes) => Ok(bytes),
        RequestBody::Incoming(body) if route.buffer_request_body && !upgrade => {
            Ok(read_body_limited(body, &parts.headers, max_body_bytes).await?)
        }
        RequestBody::Incoming(body) => Err(body),
    };
    let body = match read {
        Ok(bytes) => {
            if !bytes.is_empty() || method_carries_body(&parts.method) {
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            }
            full(bytes)
        }
        Err(streamed) => {
            refuse_declared_oversize(&parts.headers, max_body_bytes)?;
            boxed(Limited::new(
                streamed,
                usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
            ))
        }
    };

    let upstream = route.upstream.origin();
    let sent = tokio::time::timeout(
        route.read_timeout,
        client.request(Request::from_parts(parts, body)),
    )
    .await;
    let mut response = match sent {
        Err(_) => {
            return Err(Error::UpstreamTimeout {
                upstream,
                seconds: route.read_timeout.as_secs(),
            });
        }
        Ok(Err(error)) if error.is_connect() => {
            return Err(Error::UpstreamConnect {
                upstream,
                reason: error_chain(&error),
            });
        }
        Ok(Err(error)) => {
            return Err(Error::UpstreamProtocol {
                upstream,
                reason: error_chain(&error),
            });
        }
        Ok(Ok(response)) => response,
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(Error::UpstreamProtocol {
                upstream,
                reason: "switched protocols without being asked".into(),
            });
        };
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(tunnel(client_upgrade, upstream_upgrade));
        let (parts, body) = response.into_parts();
        return Ok(Response::from_parts(parts, boxed(body)));
    }

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    rewrite_redirects(route, side, &mut parts.headers);
    route.headers.apply(&mut parts.headers);
    parts.version = client_version;
    Ok(Response::from_parts(parts, boxed(body)))
}

fn set_upstream_host(
    route: &Route,
    side: &ClientSide,
    headers: &mut http::HeaderMap,
) -> Result<(), Error> {
    let host = match &route.upstream_host {
        UpstreamHost::Upstream => route.upstream.authority.as_str(),
        UpstreamHost::Client => side.public_host.as_str(),
        UpstreamHost::Fixed(host) => host.as_str(),
    };
    let value = HeaderValue::from_str(host).map_err(|_| Error::BadRequest("unusable Host"))?;
    headers.insert(header::HOST, value);
    Ok(())
}

/// Client-supplied forwarding headers are replaced: the gateway is the edge, so anything a
/// client claims about its own address is a lie until proven otherwise.
fn set_forwarded(side: &ClientSide, headers: &mut http::HeaderMap) -> Result<(), Error> {
    let peer_ip = side.peer.ip().to_canonical().to_string();
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_str(&peer_ip).map_err(|_| Error::BadRequest("peer"))?,
    );
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    let host =
        HeaderValue::from_str(&side.public_host).map_err(|_| Error::BadRequest("unusable Host"))?;
    headers.insert("x-forwarded-host", host);
    headers.remove("forwarded");
    Ok(())
}

fn method_carries_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn refuse_declared_oversize(headers: &http::HeaderMap, limit: u64) -> Result<(), Error> {
    match declared_length(headers) {
        Some(length) if length > limit => Err(Error::BodyTooLarge { limit }),
        _ => Ok(()),
    }
}

/// Reads a whole body, refusing it as soon as it passes `limit` bytes.
pub async fn read_body_limited(
    body: Incoming,
    headers: &http::HeaderMap,
    limit: u64,
) -> Result<Bytes, Error> {
    refuse_declared_oversize(headers, limit)?;
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(Error::BodyTooLarge { limit })
        }
        Err(error) => Err(Error::ClientBody(error.to_string())),
    }
}

fn rewrite_redirects(route: &Route, side: &ClientSide, headers: &mut http::HeaderMap) {
    let text = |headers: &http::HeaderMap, name| {
        headers
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
            .map(str::to_owned)
    };
    let location = text(headers, header::LOCATION)
        .and_then(|url| route.rewrite_redirect(&url, &side.public_origin, &side.public_host))
        .and_then(|url| HeaderValue::from_str(&url).ok());
    if let Some(value) = location {
        headers.insert(header::LOCATION, value);
    }
    let refresh = text(headers, header::REFRESH)
        .and_then(|value| rewrite_refresh(route, &value, &side.public_origin, &side.public_host))
        .and_then(|value| HeaderValue::from_str(&value).ok());
    if let Some(value) = refresh {
        headers.insert(header::REFRESH, value);
    }
}

async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (client, upstream) = tokio::join!(client, upstream);
    let (Ok(client), Ok(upstream)) = (client, upstream) else {
        tracing::debug!("upgrade abandoned before both sides switched");
        return;
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, "upgraded connection ended");
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
