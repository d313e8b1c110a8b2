//! Routes: which upstream serves a request, and how URLs translate between the public side and
//! the upstream side.
//!
//! Matching follows nginx's prefix locations: among the routes whose host matches, the longest
//! path prefix wins, and a route naming the host beats one that accepts any host.
//! Translation follows `proxy_pass` with a URI: the matched prefix is replaced by the upstream's
//! base path, and `proxy_redirect default` reverses that for `Location` and `Refresh`.

use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme};

use crate::compress::CompressionPolicy;
use crate::headers::HeaderPolicy;
use crate::scan::UploadScan;

/// Which `Host` header the upstream receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamHost {
    /// The upstream's own authority, as nginx sends by default (`127.0.0.1:8080`).
    Upstream,
    /// The host the client asked for.
    Client,
    /// A fixed value.
    Fixed(String),
}

/// Where a route sends its requests: `http://host:port/base/`.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http` (TLS to upstreams is not offered yet; they live on loopback or the LAN).
    pub scheme: Scheme,
    /// `host:port` of the upstream.
    pub authority: Authority,
    /// Path that replaces the route's prefix; `None` forwards the path unchanged.
    pub base_path: Option<String>,
}

impl Upstream {
    /// `http://host:port`, without a trailing slash.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// One proxied route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name used in logs and error messages.
    pub name: String,
    /// Lower-case host without port; `*.example.com` matches subdomains; `None` matches any host.
    pub host: Option<String>,
    /// Path prefix, starting with `/`.
    pub path_prefix: String,
    /// Where requests go.
    pub upstream: Upstream,
    /// Which `Host` the upstream sees.
    pub upstream_host: UpstreamHost,
    /// Send `X-Forwarded-For/-Proto/-Host` (client-supplied values are replaced, never trusted).
    pub forwarded_headers: bool,
    /// Read the whole request body first and send it with `Content-Length` (IIS6 needs this).
    pub buffer_request_body: bool,
    /// Allow WebSocket upgrades through this route.
    pub websockets: bool,
    /// Time allowed to open a connection to the upstream.
    pub connect_timeout: Duration,
    /// Time allowed for the upstream to start answering.
    pub read_timeout: Duration,
    /// Response headers added or removed on the way out.
    pub headers: HeaderPolicy,
    /// Which responses are compressed.
    pub compression: CompressionPolicy,
    /// Page shown when this route's upstream is down (502) or slow (504).
    pub error_page: Option<Bytes>,
    /// Tell the upstream who the user is in `X-Genkan-User` and `X-Genkan-Groups`.
    pub identity_headers: bool,
    /// Scan request bodies with clamd before the upstream sees them; `None`: not scanned.
    pub scan: Option<UploadScan>,
}

impl Route {
    fn host_matches(&self, host: &str) -> Option<u8> {
        match &self.host {
            None => Some(0),
            Some(pattern) => match pattern.strip_prefix("*.") {
                Some(suffix) => {
                    let matches = host.len() > suffix.len() + 1
                        && host.ends_with(suffix)
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.';
                    matches.then_some(1)
                }
                None => (pattern == host).then_some(2),
            },
        }
    }

    /// The upstream path and query for a public path and query.
    pub fn upstream_path(&self, path_and_query: &str) -> String {
        match &self.upstream.base_path {
            None => path_and_query.to_owned(),
            Some(base) => {
                let rest = path_and_query
                    .strip_prefix(self.path_prefix.as_str())
                    .unwrap_or(path_and_query);
                format!("{base}{rest}")
            }
        }
    }

    /// Rewrites a `Location` or `Refresh` URL the upstream sent so it points at the public side.
    ///
    /// `public_origin` is `https://host[:port]` as the client reached us. Absolute URLs on the
    /// upstream's origin are mapped back (reversing the base path), and so are `http://` URLs on
    /// the public host, which an upstream that sees the client's Host tends to produce.
    /// Anything else (relative URLs, other sites) is left alone.
    pub fn rewrite_redirect(
        &self,
        url: &str,
        public_origin: &str,
        public_host: &str,
    ) -> Option<String> {
        let upstream_origin = self.upstream.origin();
        let plain_public = format!("http://{public_host}");
        let rest = strip_prefix_ignore_case(url, &upstream_origin)
            .or_else(|| strip_prefix_ignore_case(url, &plain_public))?;
        // The origin must end here, not continue as a longer host name or port.
        if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
            return None;
        }
        let public_path = match &self.upstream.base_path {
            Some(base) => {
                let without_base = rest.strip_prefix(base.as_str())?;
                format!("{}{without_base}", self.path_prefix)
            }
            None if rest.is_empty() => "/".to_owned(),
            None => rest.to_owned(),
        };
        Some(format!("{public_origin}{public_path}"))
    }
}

/// Rewrites the `url=` part of a `Refresh` header (`5; url=http://…`).
pub fn rewrite_refresh(
    route: &Route,
    value: &str,
    public_origin: &str,
    public_host: &str,
) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let at = lower.find("url=")? + 4;
    let (head, url) = value.split_at(at);
    let rewritten = route.rewrite_redirect(url.trim(), public_origin, public_host)?;
    Some(format!("{head}{rewritten}"))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Picks the route for a host (lower case, no port) and path, or `None` for built-in apps.
pub fn select<'a>(routes: &'a [Route], host: &str, path: &str) -> Option<&'a Route> {
    routes
        .iter()
        .filter(|route| path.starts_with(route.path_prefix.as_str()))
        .filter_map(|route| route.host_matches(host).map(|rank| (rank, route)))
        .max_by_key(|(rank, route)| (*rank, route.path_prefix.len()))
        .map(|(_, route)| route)
}

/// Host part of a `Host` header or authority, lower-cased, without the port.
pub fn host_without_port(authority: &str) -> String {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // IPv6 literal: keep the brackets, drop the port after them.
        match rest.find(']') {
            Some(end) => &authority[..end + 2],
            None => authority,
        }
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    };
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(
        name: &str,
        host: Option<&str>,
        prefix: &str,
        upstream: &str,
        base: Option<&str>,
    ) -> Route {
        Route {
            name: name.into(),
            host: host.map(Into::into),
            path_prefix: prefix.into(),
            upstream: Upstream {
                scheme: Scheme::HTTP,
                authority: upstream.parse().unwrap(),
                base_path: base.map(Into::into),
            },
            upstream_host: UpstreamHost::Upstream,
            forwarded_headers: true,
            buffer_request_body: true,
            websockets: true,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            headers: HeaderPolicy::default(),
            compression: CompressionPolicy::off(),
            error_page: None,
            identity_headers: false,
            scan: None,
        }
    }

    #[test]
    fn longest_prefix_wins_and_named_host_beats_any_host() {
        let routes = vec![
            route("any-root", None, "/", "127.0.0.1:8080", None),
            route("any-api", None, "/api/", "127.0.0.1:8081", None),
            route(
                "named-root",
                Some("fm.example.jp"),
                "/",
                "127.0.0.1:8082",
                None,
            ),
            route("wild", Some("*.example.jp"), "/", "127.0.0.1:8083", None),
        ];
        let pick = |host: &str, path: &str| select(&routes, host, path).map(|r| r.name.as_str());
        assert_eq!(pick("other.test", "/index.asp"), Some("any-root"));
        assert_eq!(pick("other.test", "/api/x"), Some("any-api"));
        assert_eq!(pick("fm.example.jp", "/api/x"), Some("named-root"));
        assert_eq!(pick("a.example.jp", "/"), Some("wild"));
        assert_eq!(pick("example.jp", "/"), Some("any-root"));
        assert!(select(&routes[1..2], "x", "/other").is_none());
    }

    #[test]
    fn base_path_replaces_prefix_both_ways() {
        let legacy = route("legacy", None, "/legacy/", "127.0.0.1:8080", Some("/app/"));
        assert_eq!(legacy.upstream_path("/legacy/a.asp?x=1"), "/app/a.asp?x=1");
        assert_eq!(
            legacy.rewrite_redirect(
                "http://127.0.0.1:8080/app/login.asp",
                "https://gw.example.jp",
                "gw.example.jp"
            ),
            Some("https://gw.example.jp/legacy/login.asp".into())
        );
        // Outside the base path there is no public URL to map to.
        assert_eq!(
            legacy.rewrite_redirect(
                "http://127.0.0.1:8080/other",
                "https://gw.example.jp",
                "gw.example.jp"
            ),
            None
        );
    }

    #[test]
    fn redirects_are_rewritten_like_proxy_redirect_default() {
        let iis = route("iis", None, "/", "127.0.0.1:8080", None);
        let public = "https://gw.example.jp:8443";
        let host = "gw.example.jp:8443";
        assert_eq!(
            iis.rewrite_redirect("http://127.0.0.1:8080/fmi/iwp?x=1", public, host),
            Some("https://gw.example.jp:8443/fmi/iwp?x=1".into())
        );
        assert_eq!(
            iis.rewrite_redirect("HTTP://127.0.0.1:8080", public, host),
            Some(format!("{public}/"))
        );
        assert_eq!(
            iis.rewrite_redirect("http://gw.example.jp:8443/a", public, host),
            Some(format!("{public}/a"))
        );
        assert_eq!(
            iis.rewrite_redirect("http://127.0.0.1:80800/a", public, host),
            None
        );
        assert_eq!(iis.rewrite_redirect("/relative", public, host), None);
        assert_eq!(
            iis.rewrite_redirect("https://elsewhere.test/", public, host),
            None
        );
        assert_eq!(
            rewrite_refresh(&iis, "5; URL=http://127.0.0.1:8080/next", public, host),
            Some("5; URL=https://gw.example.jp:8443/next".into())
        );
    }

    #[test]
    fn host_port_is_dropped() {
        assert_eq!(host_without_port("Example.JP:8443"), "example.jp");
        assert_eq!(host_without_port("example.jp"), "example.jp");
        assert_eq!(host_without_port("[::1]:8443"), "[::1]");
    }
}
