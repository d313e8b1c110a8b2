//! The data directory: its layout, its permissions, and the self-signed certificate genkan makes
//! when the config names none.
//!
//! ```text
//! data/            0700
//!   genkan.db      SQLite database (WAL)
//!   tls/           self-signed.crt, self-signed.key (0600)
//!   logs/          access.log
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Utc};

/// Paths inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Creates the directory tree if needed, readable by genkan's user only.
    pub fn prepare(root: &Path) -> Result<Self> {
        for dir in [
            root.to_path_buf(),
            root.join("tls"),
            root.join("logs"),
            root.join("records"),
        ] {
            create_private_dir(&dir)?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.root.join("genkan.db")
    }

    /// Where records databases live, one SQLite file each.
    pub fn records(&self) -> PathBuf {
        self.root.join("records")
    }

    /// The device CA's folder (`devices/`, `0700`), made on first use.
    pub fn devices(&self) -> Result<PathBuf> {
        let dir = self.root.join("devices");
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// Self-signed certificate and key paths.
    pub fn self_signed(&self) -> (PathBuf, PathBuf) {
        (
            self.root.join("tls/self-signed.crt"),
            self.root.join("tls/self-signed.key"),
        )
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// Makes a file readable and writable by genkan's user only (the database holds personal data).
pub fn restrict_to_owner(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict permissions of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Returns the self-signed certificate's paths, making the certificate first if there is none.
/// Returns `true` as well when it was just made, so the caller can say so once.
pub fn ensure_self_signed(
    data: &DataDir,
    hostnames: &[String],
    now: DateTime<Utc>,
) -> Result<(PathBuf, PathBuf, bool)> {
    let (cert_path, key_path) = data.self_signed();
    if cert_path.exists()
        && key_path.exists()
        && gateway::tls::load_certified_key(&cert_path, &key_path).is_ok()
    {
        return Ok((cert_path, key_path, false));
    }
    let (cert_pem, key_pem) = make_self_signed(hostnames, now)?;
    write_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
    write_atomically(&cert_path, cert_pem.as_bytes(), 0o644)?;
    Ok((cert_path, key_path, true))
}

/// A one-year ECDSA P-256 certificate for `hostnames` (names or IP addresses), as PEM.
pub fn make_self_signed(hostnames: &[String], now: DateTime<Utc>) -> Result<(String, String)> {
    let key = rcgen::KeyPair::generate().context("cannot generate a key pair")?;
    let mut params = rcgen::CertificateParams::new(hostnames.to_vec())
        .context("unusable host name for the certificate")?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(
        rcgen::DnType::CommonName,
        hostnames.first().map_or("genkan", String::as_str),
    );
    name.push(rcgen::DnType::OrganizationName, "genkan self-signed");
    params.distinguished_name = name;
    let start = now - chrono::Duration::days(1);
    let end = now + chrono::Duration::days(365);
    params.not_before = rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .self_signed(&key)
        .context("cannot sign the certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a file so that readers see either the old or the whole new content, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let temp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(&temp)
        .with_context(|| format!("cannot write {}", temp.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", temp.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", temp.display()))?;
    std::fs::rename(&temp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_is_made_once_and_loads() {
        let root = std::env::temp_dir().join(format!("genkan-datadir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let data = DataDir::prepare(&root).unwrap();
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let now = DateTime::parse_from_rfc3339("2026-12-03T00:00:00Z")
            .unwrap()
            .to_utc();
        let (cert, key, made) = ensure_self_signed(&data, &names, now).unwrap();
        assert!(made);
        gateway::tls::load_certified_key(&cert, &key).unwrap();
        let (_, _, made_again) = ensure_self_signed(&data, &names, now).unwrap();
        assert!(!made_again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                std::fs::metadata(&root).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
