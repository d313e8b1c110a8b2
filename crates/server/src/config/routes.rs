//! Proxied routes and response headers as the config file gives them, checked into the
//! gateway's typed settings with errors that name the key.

use std::path::Path;
use std::time::Duration;

use gateway::compress::CompressionPolicy;
use gateway::headers::HeaderPolicy;
use gateway::route::{Route, Upstream, UpstreamHost};
use http::header::{HeaderName, HeaderValue};

use super::{ConfigError, HeadersFile, RouteFile, duration, read_page};

pub(super) fn header_policy(
    key: &str,
    route: &HeadersFile,
    global: &HeadersFile,
) -> Result<HeaderPolicy, ConfigError> {
    let pick = |route: &Option<String>,
                global: &Option<String>,
                default: Option<&str>|
     -> Option<String> {
        route
            .clone()
            .or_else(|| global.clone())
            .or_else(|| default.map(String::from))
    };
    let wanted = [
        (
            "strict_transport_security",
            "strict-transport-security",
            pick(
                &route.strict_transport_security,
                &global.strict_transport_security,
                Some("max-age=31536000"),
            ),
        ),
        (
            "x_frame_options",
            "x-frame-options",
            pick(
                &route.x_frame_options,
                &global.x_frame_options,
                Some("SAMEORIGIN"),
            ),
        ),
        (
            "x_content_type_options",
            "x-content-type-options",
            pick(
                &route.x_content_type_options,
                &global.x_content_type_options,
                Some("nosniff"),
            ),
        ),
        (
            "referrer_policy",
            "referrer-policy",
            pick(
                &route.referrer_policy,
                &global.referrer_policy,
                Some("strict-origin-when-cross-origin"),
            ),
        ),
        (
            "content_security_policy",
            "content-security-policy",
            pick(
                &route.content_security_policy,
                &global.content_security_policy,
                None,
            ),
        ),
        (
            "x_xss_protection",
            "x-xss-protection",
            pick(&route.x_xss_protection, &global.x_xss_protection, None),
        ),
    ];
    let mut set = Vec::new();
    for (field, name, value) in wanted {
        let Some(value) = value.filter(|value| !value.is_empty()) else {
            continue;
        };
        let value = HeaderValue::from_str(&value).map_err(|_| {
            ConfigError::new(
                format!("{key}.{field}"),
                "contains characters not allowed in a header",
            )
        })?;
        set.push((HeaderName::from_static(name), value));
    }
    let hide = match route.hide.as_ref().or(global.hide.as_ref()) {
        None => gateway::headers::default_hidden(),
        Some(names) => names
            .iter()
            .map(|name| {
                HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                    ConfigError::new(
                        format!("{key}.hide"),
                        format!("`{name}` is not a header name"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(HeaderPolicy { set, hide })
}

pub(super) fn route_settings(
    index: usize,
    file: RouteFile,
    base: &Path,
    global_headers: &HeadersFile,
    compression: &CompressionPolicy,
    scan: Option<&gateway::UploadScan>,
) -> Result<Route, ConfigError> {
    let key = |field: &str| format!("route[{index}].{field}");
    let upstream_text = file.upstream.ok_or_else(|| {
        ConfigError::new(
            key("upstream"),
            "missing: every route needs an upstream such as \"http://127.0.0.1:8080\"",
        )
    })?;
    let upstream = upstream(&key("upstream"), &upstream_text)?;
    let path_prefix = file.path.unwrap_or_else(|| "/".into());
    if !path_prefix.starts_with('/') {
        return Err(ConfigError::new(
            key("path"),
            format!("`{path_prefix}` must start with /"),
        ));
    }
    let host = match file.host {
        None => None,
        Some(host) if host.is_empty() || host.contains(['/', ':', ' ']) => {
            return Err(ConfigError::new(
                key("host"),
                format!("`{host}` is not a host name (no scheme, port or path)"),
            ));
        }
        Some(host) => Some(host.to_ascii_lowercase()),
    };
    let upstream_host = match file.upstream_host.as_deref() {
        None | Some("upstream") => UpstreamHost::Upstream,
        Some("client") => UpstreamHost::Client,
        Some(literal) if HeaderValue::from_str(literal).is_ok() && !literal.is_empty() => {
            UpstreamHost::Fixed(literal.to_owned())
        }
        Some(other) => {
            return Err(ConfigError::new(
                key("upstream_host"),
                format!("`{other}` is not `upstream`, `client` or a host"),
            ));
        }
    };
    let error_page = match &file.error_page {
        Some(path) => Some(read_page(&key("error_page"), &base.join(path))?),
        None => None,
    };
    Ok(Route {
        name: file.name.unwrap_or_else(|| format!("route-{index}")),
        host,
        path_prefix,
        upstream,
        upstream_host,
        forwarded_headers: file.forwarded_headers.unwrap_or(true),
        buffer_request_body: file.buffer_request_body.unwrap_or(true),
        websockets: file.websockets.unwrap_or(true),
        connect_timeout: file
            .connect_timeout
            .as_deref()
            .map_or(Ok(Duration::from_secs(5)), |text| {
                duration(&key("connect_timeout"), text)
            })?,
        read_timeout: file
            .read_timeout
            .as_deref()
            .map_or(Ok(Duration::from_secs(60)), |text| {
                duration(&key("read_timeout"), text)
            })?,
        headers: header_policy(&key("headers"), &file.headers, global_headers)?,
        compression: if file.compression.unwrap_or(true) {
            compression.clone()
        } else {
            CompressionPolicy::off()
        },
        error_page,
        identity_headers: file.identity_headers.unwrap_or(false),
        scan: super::scan::route_scan(&key("scan_uploads"), file.scan_uploads, scan)?,
    })
}

fn upstream(key: &str, text: &str) -> Result<Upstream, ConfigError> {
    let uri: http::Uri = text.parse().map_err(|_| {
        ConfigError::new(
            key,
            format!("`{text}` is not a URL such as \"http://127.0.0.1:8080\""),
        )
    })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(ConfigError::new(
                key,
                "https upstreams are not supported yet; use http on loopback or the LAN",
            ));
        }
        _ => {
            return Err(ConfigError::new(
                key,
                format!("`{text}` must start with http://"),
            ));
        }
    }
    let Some(authority) = uri.authority().cloned() else {
        return Err(ConfigError::new(key, format!("`{text}` names no host")));
    };
    if uri.query().is_some() {
        return Err(ConfigError::new(
            key,
            "an upstream URL cannot carry a query",
        ));
    }
    // As with nginx's proxy_pass, any path after the host, even a lone "/", replaces the
    // route's prefix; no path at all forwards the request path unchanged.
    let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let base_path = after_scheme.contains('/').then(|| uri.path().to_owned());
    Ok(Upstream {
        scheme: http::uri::Scheme::HTTP,
        authority,
        base_path,
    })
}
