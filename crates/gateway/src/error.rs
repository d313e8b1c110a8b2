//! The gateway's one error type and its one mapping to HTTP.
//!
//! Failures are classified by side (client, upstream, internal) and by whether retrying could
//! help, so the access log and metrics can tell "the legacy app is down" from "a client sent
//! garbage". Causes go to the log; the client sees a status code and a short page only.

use std::path::PathBuf;

use http::StatusCode;

/// Which party a failure is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something the gateway refuses.
    Client,
    /// The upstream app could not be reached or did not answer in time.
    Upstream,
    /// The gateway itself failed (configuration, certificates, I/O on its own files).
    Internal,
}

/// Everything that can go wrong in the gateway.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadPem {
        /// The file that failed.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate file held no certificate, or a PEM block was malformed.
    #[error("{path} holds no usable certificate: {reason}")]
    BadCertificate {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A key file held no usable private key.
    #[error("{path} holds no usable private key: {reason}")]
    BadPrivateKey {
        /// The file that failed.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The private key does not belong to the first certificate of the chain.
    #[error("the private key {key} does not match the certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the TLS configuration.
    #[error("TLS configuration refused: {0}")]
    Tls(#[from] rustls::Error),
    /// The access log could not be opened.
    #[error("cannot open the access log {path}: {source}")]
    AccessLog {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting to the upstream failed (refused, unreachable, DNS).
    #[error("upstream {upstream} unreachable: {reason}")]
    UpstreamConnect {
        /// The upstream origin.
        upstream: String,
        /// The transport error.
        reason: String,
    },
    /// The upstream accepted the request but sent no response headers in time.
    #[error("upstream {upstream} did not answer within {seconds} s")]
    UpstreamTimeout {
        /// The upstream origin.
        upstream: String,
        /// The configured read timeout.
        seconds: u64,
    },
    /// The upstream answered with something that is not HTTP.
    #[error("upstream {upstream} sent an invalid response: {reason}")]
    UpstreamProtocol {
        /// The upstream origin.
        upstream: String,
        /// What was wrong.
        reason: String,
    },
    /// The request body is larger than the configured limit.
    #[error("request body over the limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// The client's request body could not be read (reset, malformed chunking).
    #[error("request body unreadable: {0}")]
    ClientBody(String),
    /// The request cannot be proxied as it stands (no Host, bad URI).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
}

impl Error {
    /// The status code the client receives for this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UpstreamConnect { .. } | Self::UpstreamProtocol { .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ClientBody(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::ReadPem { .. }
            | Self::BadCertificate { .. }
            | Self::BadPrivateKey { .. }
            | Self::KeyMismatch { .. }
            | Self::Tls(_)
            | Self::AccessLog { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Who the failure is attributed to.
    pub fn side(&self) -> Side {
        match self {
            Self::UpstreamConnect { .. }
            | Self::UpstreamTimeout { .. }
            | Self::UpstreamProtocol { .. } => Side::Upstream,
            Self::BodyTooLarge { .. } | Self::ClientBody(_) | Self::BadRequest(_) => Side::Client,
            Self::ReadPem { .. }
            | Self::BadCertificate { .. }
            | Self::BadPrivateKey { .. }
            | Self::KeyMismatch { .. }
            | Self::Tls(_)
            | Self::AccessLog { .. } => Side::Internal,
        }
    }

    /// Whether the same request could succeed if sent again later.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::UpstreamConnect { .. } | Self::UpstreamTimeout { .. }
        )
    }

    /// The response the client receives. `error_page` is the configured page for 502 and 504
    /// (nginx's `error_page 500 502 503 504 /50x.html`); other statuses get a one-line text.
    /// The cause is never included: it goes to the log.
    pub fn response(&self, error_page: &bytes::Bytes) -> http::Response<crate::Body> {
        use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
        let status = self.status();
        let (body, content_type) = match status {
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
                (crate::full(error_page.clone()), "text/html; charset=utf-8")
            }
            _ => (
                crate::full(format!(
                    "{} {}\n",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )),
                "text/plain; charset=utf-8",
            ),
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_map_to_gateway_statuses() {
        let connect = Error::UpstreamConnect {
            upstream: "http://127.0.0.1:8080".into(),
            reason: "refused".into(),
        };
        assert_eq!(connect.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(connect.side(), Side::Upstream);
        assert!(connect.retryable());

        let slow = Error::UpstreamTimeout {
            upstream: "http://127.0.0.1:8080".into(),
            seconds: 60,
        };
        assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);

        let big = Error::BodyTooLarge { limit: 10 };
        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(big.side(), Side::Client);
        assert!(!big.retryable());
    }
}
