//! Response hardening and the hop-by-hop rules of a proxy.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers set on, and removed from, every response of a route.
#[derive(Debug, Clone, Default)]
pub struct HeaderPolicy {
    /// Set, replacing whatever the upstream sent (`add_header` that cannot be doubled).
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Removed from upstream responses (`proxy_hide_header`): version banners and the like.
    pub hide: Vec<HeaderName>,
}

impl HeaderPolicy {
    /// The hardening genkan applies when the config says nothing.
    pub fn hardened_default() -> Self {
        let set = [
            ("strict-transport-security", "max-age=31536000"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "strict-origin-when-cross-origin"),
        ]
        .into_iter()
        .map(|(name, value)| {
            (
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            )
        })
        .collect();
        Self {
            set,
            hide: default_hidden(),
        }
    }

    /// Applies the policy to a response's headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        // `server_tokens off` hid only nginx's version; genkan sends no banner at all and
        // drops the upstream's (IIS6 announces itself and its ASP.NET version).
        headers.remove(header::SERVER);
        for name in &self.hide {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// Headers that reveal the upstream's software and version.
pub fn default_hidden() -> Vec<HeaderName> {
    ["x-powered-by", "x-aspnet-version", "x-aspnetmvc-version"]
        .into_iter()
        .map(HeaderName::from_static)
        .collect()
}

/// Removes the hop-by-hop headers of RFC 9110 §7.6.1, including any named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Whether the request asks to switch protocols (WebSocket) over HTTP/1.1.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardening_replaces_banners_and_sets_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SERVER,
            HeaderValue::from_static("Microsoft-IIS/6.0"),
        );
        headers.insert("x-powered-by", HeaderValue::from_static("ASP.NET"));
        headers.insert("x-frame-options", HeaderValue::from_static("ALLOWALL"));
        HeaderPolicy::hardened_default().apply(&mut headers);
        assert!(headers.get(header::SERVER).is_none());
        assert!(headers.get("x-powered-by").is_none());
        assert_eq!(headers["x-frame-options"], "SAMEORIGIN");
        assert_eq!(headers["strict-transport-security"], "max-age=31536000");
        assert_eq!(headers.get_all("x-frame-options").iter().count(), 1);
    }

    #[test]
    fn hop_by_hop_headers_and_connection_tokens_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn upgrade_needs_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!is_upgrade(&headers));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_upgrade(&headers));
    }
}
