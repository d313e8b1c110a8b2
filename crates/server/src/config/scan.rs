//! The `[scan]` settings, checked: how to reach clamd, how long to wait, how much to scan.

use std::path::Path;
use std::time::Duration;

use gateway::UploadScan;
use virus_scan::{Address, Scanner, ScannerSettings};

use super::{ConfigError, ScanFile, duration, size};

/// Default scan limit: below the `StreamMaxLength 25M` of Debian's generated clamd.conf, with
/// room to spare, so that clamd never cuts a stream off that genkan accepted.
pub(super) const DEFAULT_MAX_BODY: u64 = 20 * 1024 * 1024;

/// `[scan]`, checked; `None` when the file has no such section.
pub(super) fn scan_settings(
    file: Option<ScanFile>,
    base: &Path,
) -> Result<Option<UploadScan>, ConfigError> {
    let Some(file) = file else {
        return Ok(None);
    };
    let text = file.clamd.ok_or_else(|| {
        ConfigError::new(
            "scan.clamd",
            "missing: name clamd's socket (\"/run/clamav/clamd.ctl\") or address (\"127.0.0.1:3310\")",
        )
    })?;
    let address = match Address::parse(&text) {
        // Relative socket paths are read from the config file's folder, like every other path.
        Some(Address::Unix(path)) => Address::Unix(base.join(path)),
        Some(tcp) => tcp,
        None => {
            return Err(ConfigError::new(
                "scan.clamd",
                format!(
                    "`{text}` is neither a socket path (with a /) nor host:port such as \"127.0.0.1:3310\""
                ),
            ));
        }
    };
    let span = |key: &str, text: &Option<String>, default: Duration| match text {
        None => Ok(default),
        Some(text) => duration(key, text).and_then(|value| {
            if value.is_zero() {
                Err(ConfigError::new(key, "must be longer than zero"))
            } else {
                Ok(value)
            }
        }),
    };
    let connect_timeout = span(
        "scan.connect_timeout",
        &file.connect_timeout,
        Duration::from_secs(2),
    )?;
    let scan_timeout = span(
        "scan.scan_timeout",
        &file.scan_timeout,
        Duration::from_secs(60),
    )?;
    let max_bytes = match &file.max_body_size {
        None => DEFAULT_MAX_BODY,
        Some(text) => {
            let bytes = size("scan.max_body_size", text)?;
            // clamd's chunk lengths and its own limit are 32-bit; nothing near 4 GiB is sane.
            if bytes == 0 || bytes >= 4 * 1024 * 1024 * 1024 {
                return Err(ConfigError::new(
                    "scan.max_body_size",
                    "must be more than 0 and less than 4g (and below clamd's StreamMaxLength)",
                ));
            }
            bytes
        }
    };
    Ok(Some(UploadScan {
        scanner: Scanner::new(ScannerSettings {
            address,
            connect_timeout,
            scan_timeout,
            max_bytes,
        }),
        fail_open: file.fail_open.unwrap_or(false),
    }))
}

/// Whether a route scans, from its `scan_uploads` and the `[scan]` section.
///
/// With `[scan]` configured every route scans unless it says `scan_uploads = false`: a route
/// added later and forgotten would otherwise let files past the scanner without anyone noticing,
/// while the opposite mistake only costs a scan.
pub(super) fn route_scan(
    key: &str,
    scan_uploads: Option<bool>,
    scan: Option<&UploadScan>,
) -> Result<Option<UploadScan>, ConfigError> {
    match (scan_uploads, scan) {
        (Some(true), None) => Err(ConfigError::new(
            key,
            "needs a [scan] section that names clamd",
        )),
        (Some(false), _) | (None, None) => Ok(None),
        (Some(true) | None, Some(scan)) => Ok(Some(scan.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Environment, parse};
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_file(
            parse(text)?,
            Path::new("/etc/genkan"),
            &Environment::default(),
        )
    }

    #[test]
    fn scanning_is_on_for_every_route_once_clamd_is_named() {
        let config = load(
            "[scan]\nclamd = \"/run/clamav/clamd.ctl\"\n\
             [[route]]\nupstream = \"http://127.0.0.1:8080\"\n\
             [[route]]\npath = \"/public/\"\nupstream = \"http://127.0.0.1:8081\"\nscan_uploads = false\n",
        )
        .unwrap();
        let routes = &config.gateway.routes;
        let scan = routes[0].scan.as_ref().expect("route 0 scans");
        let settings = scan.scanner.settings();
        assert_eq!(
            settings.address,
            Address::Unix("/run/clamav/clamd.ctl".into())
        );
        assert_eq!(settings.max_bytes, DEFAULT_MAX_BODY);
        assert_eq!(settings.connect_timeout, Duration::from_secs(2));
        assert_eq!(settings.scan_timeout, Duration::from_secs(60));
        assert!(!scan.fail_open);
        assert!(routes[1].scan.is_none());

        let unscanned = load("[[route]]\nupstream = \"http://127.0.0.1:8080\"\n").unwrap();
        assert!(unscanned.gateway.routes[0].scan.is_none());
    }

    #[test]
    fn every_scan_key_is_read() {
        let config = load(
            "[scan]\nclamd = \"run/clamd.sock\"\nconnect_timeout = \"500ms\"\nscan_timeout = \"2m\"\n\
             max_body_size = \"8m\"\nfail_open = true\n\
             [[route]]\nupstream = \"http://127.0.0.1:8080\"\nscan_uploads = true\n",
        )
        .unwrap();
        let scan = config.gateway.routes[0].scan.as_ref().unwrap();
        let settings = scan.scanner.settings();
        assert_eq!(
            settings.address,
            Address::Unix("/etc/genkan/run/clamd.sock".into())
        );
        assert_eq!(settings.connect_timeout, Duration::from_millis(500));
        assert_eq!(settings.scan_timeout, Duration::from_secs(120));
        assert_eq!(settings.max_bytes, 8 * 1024 * 1024);
        assert!(scan.fail_open);
        let tcp = load("[scan]\nclamd = \"127.0.0.1:3310\"\n").unwrap();
        assert!(tcp.gateway.routes.is_empty());
    }

    #[test]
    fn mistakes_name_their_key() {
        let cases = [
            ("[scan]\nfail_open = true\n", "scan.clamd"),
            ("[scan]\nclamd = \"clamd\"\n", "scan.clamd"),
            ("[scan]\nclamd = \"127.0.0.1:0\"\n", "scan.clamd"),
            (
                "[scan]\nclamd = \"/run/c.sock\"\nmax_body_size = \"0\"\n",
                "scan.max_body_size",
            ),
            (
                "[scan]\nclamd = \"/run/c.sock\"\nmax_body_size = \"4g\"\n",
                "scan.max_body_size",
            ),
            (
                "[scan]\nclamd = \"/run/c.sock\"\nscan_timeout = \"0s\"\n",
                "scan.scan_timeout",
            ),
            (
                "[scan]\nclamd = \"/run/c.sock\"\nconnect_timeout = \"soon\"\n",
                "scan.connect_timeout",
            ),
            (
                "[scan]\nclamd = \"/run/c.sock\"\nfail_closed = true\n",
                "fail_closed",
            ),
            (
                "[[route]]\nupstream = \"http://127.0.0.1:8080\"\nscan_uploads = true\n",
                "route[0].scan_uploads",
            ),
        ];
        for (text, key) in cases {
            match load(text) {
                Ok(_) => panic!("accepted: {text}"),
                Err(error) => assert_eq!(error.key, key, "{text}: {error}"),
            }
        }
    }

    #[test]
    fn the_upload_scan_example_scans_its_route_through_a_socket() {
        let text = include_str!("../../../../examples/upload-scan.toml");
        let config = load(text).unwrap();
        let route = &config.gateway.routes[0];
        assert_eq!(route.upstream.origin(), "http://127.0.0.1:8080");
        let scan = route.scan.as_ref().expect("the example's route scans");
        assert!(matches!(
            scan.scanner.settings().address,
            Address::Unix(ref path) if path.is_absolute()
        ));
        assert!(!scan.fail_open);
    }
}
