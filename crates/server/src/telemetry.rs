//! The diagnostic log: tracing to standard error (journald on Linux), human or JSON.
//! Separate from the access log, which is a record of requests, not of genkan's own behaviour.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Called once by `main`.
#[allow(clippy::disallowed_methods)]
pub fn init(format: LogFormat, filter: &str) {
    let filter =
        EnvFilter::try_new(with_quiet_tls(filter)).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// rustls warns once per connection about things any client can send (an IP address as the
/// server name, for one), which would let anyone write a log line per connection; its messages
/// show only from `error` up unless the filter names rustls itself.
fn with_quiet_tls(filter: &str) -> String {
    if filter.contains("rustls") {
        filter.to_owned()
    } else {
        format!("{filter},rustls=error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_is_quiet_unless_asked_for() {
        assert_eq!(with_quiet_tls("info"), "info,rustls=error");
        assert_eq!(with_quiet_tls("info,rustls=debug"), "info,rustls=debug");
        EnvFilter::try_new(with_quiet_tls("gateway=debug,info")).unwrap();
    }
}
