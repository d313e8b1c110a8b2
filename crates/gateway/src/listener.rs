//! Accept loops for the HTTPS and HTTP listeners and the per-request pipeline:
//! route → proxy or built-in app → hardening → compression → access log.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, FixedOffset};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::{Layer, ServiceExt};
use tower_http::compression::CompressionLayer;

use crate::access_log::{Entry, LoggedBody};
use crate::compress::{ByAttachedPolicy, CompressionPolicy, settle_unsized_body};
use crate::gate::{
    ClientCertificate, Gatekeeper, Identity, Knock, Verdict, is_attachment, is_upload,
    refusal_response, set_identity_headers, sign_in_response, strip_identity_headers,
};
use crate::headers::HeaderPolicy;
use crate::idle::IdleTimeout;
use crate::proxy::{ClientSide, RequestBody, UpstreamClient, forward, upstream_client};
use crate::route::{Route, host_without_port, select};
use crate::scan::{self, Screened};
use crate::tls::CertStore;
use crate::{AccessLog, Body, Error, Limits, Settings, boxed, full};

/// Paths under this prefix always go to genkan's own pages, never to a proxied route.
pub const RESERVED_PREFIX: &str = "/_genkan/";

/// genkan's built-in apps (login, admin, agent desktop…): whatever no proxied route claims.
pub type LocalApp = tower::util::BoxCloneSyncService<Request<Incoming>, Response<Body>, Infallible>;

/// Returns the current local time; supplied by the server's clock module.
pub type Clock = fn() -> DateTime<FixedOffset>;

/// The reloadable part: settings plus one upstream client per route.
struct Active {
    settings: Settings,
    clients: Vec<UpstreamClient>,
    compression: Vec<Arc<CompressionPolicy>>,
}

impl Active {
    fn new(settings: Settings) -> Self {
        let clients = settings
            .routes
            .iter()
            .map(|route| upstream_client(route.connect_timeout))
            .collect();
        let compression = settings
            .routes
            .iter()
            .map(|route| Arc::new(route.compression.clone()))
            .collect();
        Self {
            settings,
            clients,
            compression,
        }
    }
}

/// The running front door. Shared by the listeners; [`FrontDoor::reload`] swaps its settings.
pub struct FrontDoor {
    active: ArcSwap<Active>,
    gate: Arc<dyn Gatekeeper>,
    certs: Arc<CertStore>,
    tls: TlsAcceptor,
    limits: Limits,
    access_log: AccessLog,
    local: LocalApp,
    clock: Clock,
}

/// Name of the route that served a response, carried out of the inner pipeline for the log.
#[derive(Clone)]
struct RouteName(String);

/// The signed-in user a response was for, carried out for the log's `$remote_user`.
#[derive(Clone)]
struct RemoteUser(String);

impl FrontDoor {
    /// Assembles the front door. `tls` must have been built around `certs`.
    pub fn new(
        settings: Settings,
        certs: Arc<CertStore>,
        tls: rustls::ServerConfig,
        limits: Limits,
        access_log: AccessLog,
        local: LocalApp,
        gate: Arc<dyn Gatekeeper>,
        clock: Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            active: ArcSwap::from_pointee(Active::new(settings)),
            gate,
            certs,
            tls: TlsAcceptor::from(Arc::new(tls)),
            limits,
            access_log,
            local,
            clock,
        })
    }

    /// Serves new requests with `settings`; requests in flight finish with the old ones.
    pub fn reload(&self, settings: Settings) {
        self.active.store(Arc::new(Active::new(settings)));
    }

    /// The certificate store, to swap the certificate on reload.
    pub fn certificates(&self) -> &CertStore {
        &self.certs
    }

    /// The access log, to reopen it after rotation.
    pub fn access_log(&self) -> &AccessLog {
        &self.access_log
    }

    /// Accepts TLS connections until `shutdown` turns true, then drains open requests for at
    /// most the configured grace period.
    pub async fn serve_https(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let builder = self.http_builder();
        let graceful = GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let door = Arc::clone(&self);
                        let builder = builder.clone();
                        let watcher = graceful.watcher();
                        tokio::spawn(async move { door.serve_tls_connection(tcp, peer, builder, watcher).await });
                    }
                    Err(error) => accept_failed(&error).await,
                },
                _ = shutdown.changed() => break,
            }
        }
        drop(listener);
        self.drain(graceful).await;
    }

    /// Answers every plain-HTTP request with a redirect to the same path over HTTPS.
    pub async fn serve_redirect(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(self.limits.max_header_bytes.max(8192));
        let builder = builder.http1_only();
        let graceful = GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let door = Arc::clone(&self);
                        let service = hyper::service::service_fn(move |request| {
                            let door = Arc::clone(&door);
                            async move { Ok::<_, Infallible>(door.redirect_to_https(&request, peer)) }
                        });
                        let connection = builder.serve_connection(TokioIo::new(tcp), service).into_owned();
                        let watched = graceful.watch(connection);
                        tokio::spawn(async move {
                            if let Err(error) = watched.await {
                                tracing::debug!(%error, "http connection ended with an error");
                            }
                        });
                    }
                    Err(error) => accept_failed(&error).await,
                },
                _ = shutdown.changed() => break,
            }
        }
        drop(listener);
        self.drain(graceful).await;
    }

    fn http_builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(self.limits.header_read_timeout)
            // hyper refuses buffers under 8 KiB; a larger head is answered with 431.
            .max_buf_size(self.limits.max_header_bytes.max(8192));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.limits.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
            .keep_alive_timeout(std::time::Duration::from_secs(20));
        builder
    }

    async fn serve_tls_connection(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        builder: auto::Builder<TokioExecutor>,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let _ = tcp.set_nodelay(true);
        let tls =
            match tokio::time::timeout(self.limits.handshake_timeout, self.tls.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
        // Verified against the device CA during the handshake (when one is configured); every
        // request on the connection carries it, so the gate and genkan's pages can see it.
        let client_certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| ClientCertificate(Arc::from(leaf.as_ref())));
        let idle = TokioIo::new(IdleTimeout::new(tls, self.limits.keepalive_timeout));
        let door = Arc::clone(&self);
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let door = Arc::clone(&door);
            if let Some(certificate) = &client_certificate {
                request.extensions_mut().insert(certificate.clone());
            }
            async move { Ok::<_, Infallible>(door.handle(request, peer).await) }
        });
        let connection = builder.serve_connection_with_upgrades(idle, service);
        if let Err(error) = watcher.watch(connection.into_owned()).await {
            tracing::debug!(%error, "https connection ended with an error");
        }
    }

    async fn drain(&self, graceful: GracefulShutdown) {
        let open = graceful.count();
        if open > 0 {
            tracing::info!(open, "draining connections");
        }
        if tokio::time::timeout(self.limits.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; closing the remaining connections");
        }
    }

    /// The whole pipeline for one HTTPS request.
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let entry = self.log_entry(&request, peer);
        let inner = {
            let door = Arc::clone(&self);
            tower::service_fn(move |request: Request<Incoming>| {
                let door = Arc::clone(&door);
                async move { Ok::<_, Infallible>(door.route(request, peer).await) }
            })
        };
        let compressed = CompressionLayer::new()
            .compress_when(ByAttachedPolicy)
            .layer(inner);
        let response = match compressed.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let route = response
            .extensions()
            .get::<RouteName>()
            .map(|RouteName(name)| name.clone());
        self.logged(response.map(boxed), entry, route)
    }

    /// The logged fields of a request, collected only when there is a log to write them to.
    fn log_entry<B>(&self, request: &Request<B>, peer: SocketAddr) -> Option<Entry> {
        self.access_log.is_on().then(|| {
            let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
            Entry::new(
                peer.ip().to_canonical().to_string(),
                request.method().clone(),
                target.to_owned(),
                request.version(),
                request.headers(),
                (self.clock)(),
            )
        })
    }

    /// Wraps the body so the request is logged when the body is done.
    fn logged(
        &self,
        response: Response<Body>,
        entry: Option<Entry>,
        route: Option<String>,
    ) -> Response<Body> {
        let Some(mut entry) = entry else {
            return response;
        };
        if let Some(route) = route {
            entry.route = route;
        }
        if let Some(RemoteUser(user)) = response.extensions().get::<RemoteUser>() {
            entry.remote_user = Some(user.clone());
        }
        let status = response.status();
        let (parts, body) = response.into_parts();
        let logged = LoggedBody::new(body, self.access_log.clone(), entry, status, self.clock);
        Response::from_parts(parts, boxed(logged))
    }

    async fn route(&self, mut request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let active = self.active.load_full();
        let Some(public_host) = public_host(&request) else {
            return Error::BadRequest("no Host").response(&active.settings.error_page);
        };
        let host = host_without_port(&public_host);
        // `/_genkan/` belongs to genkan's own pages (sign-in first of all), whatever the routes say.
        let path = request.uri().path();
        let local = path.starts_with(RESERVED_PREFIX)
            || active
                .settings
                .local_prefixes
                .iter()
                .any(|prefix| path.starts_with(prefix.as_str()));
        let index = if local {
            None
        } else {
            select(&active.settings.routes, &host, request.uri().path()).and_then(|route| {
                active
                    .settings
                    .routes
                    .iter()
                    .position(|candidate| std::ptr::eq(candidate, route))
            })
        };
        let route = index.map(|index| &active.settings.routes[index]);
        let header_policy = route.map_or(&active.settings.headers, |route| &route.headers);

        let client_certificate = request.extensions().get::<ClientCertificate>().cloned();
        let verdict = self.gate.judge(&Knock {
            source: peer.ip().to_canonical(),
            method: request.method(),
            host: &host,
            uri: request.uri(),
            headers: request.headers(),
            route: route.map(|route| route.name.as_str()),
            client_certificate: client_certificate
                .as_ref()
                .map(|certificate| &*certificate.0),
        });
        let (identity, exchange) = match verdict {
            Verdict::Pass {
                user,
                groups,
                exchange,
            } => (
                Identity {
                    user,
                    groups,
                    source: peer.ip().to_canonical(),
                },
                exchange,
            ),
            Verdict::SignIn => {
                let mut response =
                    sign_in_response(request.method(), request.uri(), request.headers());
                header_policy.apply(response.headers_mut());
                return response;
            }
            Verdict::Refuse { rule, reason } => {
                let mut response = refusal_response(request.headers(), rule.as_deref(), &reason);
                header_policy.apply(response.headers_mut());
                return response;
            }
        };
        strip_identity_headers(request.headers_mut());
        let remote_user = identity.user.clone();

        let mut response = match (index, route) {
            (Some(index), Some(route)) => {
                if !exchange.upload && is_upload(request.method(), request.headers()) {
                    self.gate
                        .file_refused(&identity, request.uri().path(), "upload");
                    return self.file_refusal(request.headers(), header_policy, "upload");
                }
                if route.identity_headers {
                    set_identity_headers(
                        request.headers_mut(),
                        identity.user.as_deref(),
                        &identity.groups,
                    );
                }
                let path = request.uri().path().to_owned();
                let request_headers = (!exchange.download).then(|| request.headers().clone());
                let request = match self.screen(&active, route, &identity, request).await {
                    Ok(request) => request,
                    Err(mut answer) => {
                        route.headers.apply(answer.headers_mut());
                        answer
                            .extensions_mut()
                            .insert(RouteName(route.name.clone()));
                        if let Some(user) = remote_user {
                            answer.extensions_mut().insert(RemoteUser(user));
                        }
                        return answer;
                    }
                };
                let response = self
                    .proxy(&active, index, route, request, peer, public_host)
                    .await;
                match request_headers {
                    Some(request_headers) if is_attachment(response.headers()) => {
                        self.gate.file_refused(&identity, &path, "download");
                        return self.file_refusal(&request_headers, header_policy, "download");
                    }
                    _ => response,
                }
            }
            _ => {
                request.extensions_mut().insert(identity);
                let mut response = match self.local.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                header_policy.apply(response.headers_mut());
                response
            }
        };
        if let Some(user) = remote_user {
            response.extensions_mut().insert(RemoteUser(user));
        }
        response
    }

    /// The refusal for a file the person's groups may not move through the gateway.
    fn file_refusal(
        &self,
        request_headers: &http::HeaderMap,
        header_policy: &HeaderPolicy,
        direction: &str,
    ) -> Response<Body> {
        let reason = format!("your groups may not {direction} files through genkan");
        let mut response = refusal_response(request_headers, Some("file-exchange"), &reason);
        header_policy.apply(response.headers_mut());
        response
    }

    /// Scans the body first when the route asks for it. `Err` is the answer the client gets
    /// instead of the upstream's (a virus, a scanner that cannot answer, a body too large).
    async fn screen(
        &self,
        active: &Active,
        route: &Route,
        identity: &Identity,
        request: Request<Incoming>,
    ) -> Result<Request<RequestBody>, Response<Body>> {
        let Some(scan) = &route.scan else {
            return Ok(request.map(RequestBody::Incoming));
        };
        let limit = self.limits.max_body_bytes;
        match scan::screen(scan, self.gate.as_ref(), identity, request, limit).await {
            Ok(Screened::Forward(request)) => Ok(request),
            Ok(Screened::Answer(answer)) => Err(answer),
            Err(error) => {
                tracing::warn!(route = %route.name, side = ?error.side(), %error, "request failed at the gateway");
                Err(error.response(&active.settings.error_page))
            }
        }
    }

    async fn proxy(
        &self,
        active: &Active,
        index: usize,
        route: &Route,
        request: Request<RequestBody>,
        peer: SocketAddr,
        public_host: String,
    ) -> Response<Body> {
        let side = ClientSide {
            peer,
            public_origin: format!("https://{public_host}"),
            public_host,
        };
        let mut response = match forward(
            route,
            &active.clients[index],
            request,
            &side,
            self.limits.max_body_bytes,
        )
        .await
        {
            Ok(response) => settle_unsized_body(response, &route.compression).await,
            Err(error) => {
                let cause = &error;
                tracing::warn!(route = %route.name, side = ?error.side(), retryable = error.retryable(), %cause, "request failed at the gateway");
                let page = route
                    .error_page
                    .as_ref()
                    .unwrap_or(&active.settings.error_page);
                let mut response = error.response(page);
                route.headers.apply(response.headers_mut());
                response
            }
        };
        response
            .extensions_mut()
            .insert(Arc::clone(&active.compression[index]));
        response
            .extensions_mut()
            .insert(RouteName(route.name.clone()));
        response
    }

    fn redirect_to_https(&self, request: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let active = self.active.load();
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let entry = self.log_entry(request, peer);
        let response = match public_host(request) {
            None => Error::BadRequest("no Host").response(&active.settings.error_page),
            Some(authority) => {
                let host = host_without_port(&authority);
                let port = active.settings.https_redirect_port;
                let location = if port == 443 {
                    format!("https://{host}{target}")
                } else {
                    format!("https://{host}:{port}{target}")
                };
                // 301 keeps old bookmarks working; 308 keeps a POST a POST.
                let status = if matches!(*request.method(), Method::GET | Method::HEAD) {
                    StatusCode::MOVED_PERMANENTLY
                } else {
                    StatusCode::PERMANENT_REDIRECT
                };
                match HeaderValue::from_str(&location) {
                    Ok(location) => {
                        let mut response = Response::new(full(""));
                        *response.status_mut() = status;
                        response.headers_mut().insert(header::LOCATION, location);
                        response
                    }
                    Err(_) => {
                        Error::BadRequest("unusable Host").response(&active.settings.error_page)
                    }
                }
            }
        };
        self.logged(response, entry, Some("http-redirect".into()))
    }
}

/// `host[:port]` the client addressed: the HTTP/2 `:authority`, else the `Host` header.
/// Characters that could smuggle a path or a second header are refused.
fn public_host<B>(request: &Request<B>) -> Option<String> {
    let authority = match request.uri().authority() {
        Some(authority) => authority.as_str().to_owned(),
        None => request
            .headers()
            .get(header::HOST)?
            .to_str()
            .ok()?
            .to_owned(),
    };
    let valid = !authority.is_empty()
        && authority.len() <= 255
        && authority
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-.:[]_".contains(&byte));
    valid.then_some(authority)
}

/// Accept errors (out of file descriptors, mostly) must not spin the loop or end the server.
async fn accept_failed(error: &std::io::Error) {
    tracing::warn!(%error, "accept failed; pausing briefly");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}
