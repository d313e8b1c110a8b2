//! genkan's device CA: made once in the data directory, it signs the certificate requests of
//! enrolling agents, and the gateway trusts it for client certificates.
//!
//! ```text
//! data/devices/ca.key   0600  ECDSA P-256, PKCS#8
//! data/devices/ca.crt   0644
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Datelike, Timelike, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::datadir::write_atomically;

/// A chrono time as rcgen's (the `time` crate's) to the second: midnight of the day plus the
/// seconds since.
macro_rules! instant {
    ($at:expr) => {{
        let at: DateTime<Utc> = $at;
        rcgen::date_time_ymd(at.year(), at.month() as u8, at.day() as u8)
            + Duration::from_secs(u64::from(at.num_seconds_from_midnight()))
    }};
}

/// The CA's key and certificate.
pub struct DeviceCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

impl std::fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCa").finish_non_exhaustive()
    }
}

/// A certificate issued to a device.
#[derive(Debug, Clone)]
pub struct Issued {
    /// PEM, for the agent.
    pub pem: String,
    /// DER, whose SHA-256 identifies the device on every connection.
    pub der: Vec<u8>,
    /// The end of its validity.
    pub not_after: DateTime<Utc>,
}

impl DeviceCa {
    /// Loads the CA from `dir`, making it the first time. A half-made CA (a key without its
    /// certificate) is made again: no certificate was issued under it.
    pub fn load_or_create(dir: &Path, now: DateTime<Utc>) -> Result<Self> {
        let key_path = dir.join("ca.key");
        let cert_path = dir.join("ca.crt");
        if key_path.exists() && cert_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path)
                .with_context(|| format!("cannot read {}", key_path.display()))?;
            let cert_pem = std::fs::read_to_string(&cert_path)
                .with_context(|| format!("cannot read {}", cert_path.display()))?;
            let key = KeyPair::from_pem(&key_pem)
                .with_context(|| format!("{} is not a usable key", key_path.display()))?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
                .with_context(|| format!("{} is not a usable CA", cert_path.display()))?;
            return Self::new(issuer, cert_pem);
        }
        let key = KeyPair::generate().context("cannot generate the device CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "genkan device CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = instant!(now - chrono::Duration::days(1));
        params.not_after = instant!(now + chrono::Duration::days(20 * 365));
        let cert = params
            .self_signed(&key)
            .context("cannot sign the device CA")?;
        let cert_pem = cert.pem();
        write_atomically(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_atomically(&cert_path, cert_pem.as_bytes(), 0o644)?;
        Self::new(Issuer::new(params, key), cert_pem)
    }

    fn new(issuer: Issuer<'static, KeyPair>, pem: String) -> Result<Self> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|error| anyhow!("the device CA certificate: {error}"))?;
        Ok(Self { issuer, pem, der })
    }

    /// The CA certificate in PEM, for the agents.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The roots the gateway checks client certificates against.
    pub fn roots(&self) -> Result<Arc<rustls::RootCertStore>> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.der.clone())
            .map_err(|error| anyhow!("the device CA certificate: {error}"))?;
        Ok(Arc::new(roots))
    }

    /// Signs an agent's certificate request for `device_id`. Only the request's public key is
    /// used: the name, the extensions and the validity are genkan's.
    pub fn sign(
        &self,
        csr_pem: &str,
        device_id: &str,
        now: DateTime<Utc>,
        validity: Duration,
    ) -> Result<Issued> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .context("the certificate request cannot be read")?;
        let (params, not_after) = device_params(device_id, now, validity)?;
        csr.params = params;
        let cert = csr
            .signed_by(&self.issuer)
            .context("cannot sign the device certificate")?;
        Ok(Issued {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            not_after,
        })
    }

    /// A new certificate for the key of a device's current one (`presented`, the DER the
    /// device showed in its TLS handshake, which has already checked it against this CA):
    /// the same device, a new validity, so an agent that keeps reporting never runs out.
    pub fn renew(
        &self,
        presented: &[u8],
        device_id: &str,
        now: DateTime<Utc>,
        validity: Duration,
    ) -> Result<Issued> {
        let (_, certificate) = x509_parser::parse_x509_certificate(presented)
            .map_err(|error| anyhow!("the device certificate cannot be read: {error}"))?;
        let key =
            rcgen::SubjectPublicKeyInfo::from_der(certificate.tbs_certificate.subject_pki.raw)
                .context("the device certificate's key cannot be read")?;
        let (params, not_after) = device_params(device_id, now, validity)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("cannot sign the renewed device certificate")?;
        Ok(Issued {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            not_after,
        })
    }
}

/// What genkan puts in every device certificate, whatever the request asked for.
fn device_params(
    device_id: &str,
    now: DateTime<Utc>,
    validity: Duration,
) -> Result<(CertificateParams, DateTime<Utc>)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, device_id);
    params.subject_alt_names = vec![SanType::URI(
        format!("urn:genkan:device:{device_id}").try_into()?,
    )];
    // rustls' client verifier refuses a certificate whose usages lack client authentication.
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.is_ca = IsCa::ExplicitNoCa;
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|error| anyhow!("no randomness: {error}"))?;
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let not_after =
        now + chrono::Duration::from_std(validity).unwrap_or_else(|_| chrono::Duration::days(90));
    // An hour back: a device whose clock is a little behind can use it at once.
    params.not_before = instant!(now - chrono::Duration::hours(1));
    params.not_after = instant!(not_after);
    Ok((params, not_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_made_once_and_signs_client_certificates() {
        let dir = std::env::temp_dir().join(format!("genkan-device-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = crate::clock::utc_now();
        let ca = DeviceCa::load_or_create(&dir, now).unwrap();
        let again = DeviceCa::load_or_create(&dir, now).unwrap();
        assert_eq!(ca.pem(), again.pem(), "made once, then loaded");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let issued = again
            .sign(&csr, "dev-0123", now, Duration::from_secs(86_400))
            .unwrap();
        // The gateway's verifier accepts it as a client certificate.
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            ca.roots().unwrap(),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let leaf = CertificateDer::from(issued.der);
        verifier
            .verify_client_cert(&leaf, &[], rustls::pki_types::UnixTime::now())
            .unwrap();
        assert!(
            DeviceCa::load_or_create(&dir, now)
                .unwrap()
                .sign("garbage", "d", now, Duration::from_secs(60))
                .is_err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
