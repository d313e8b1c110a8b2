//! Enrolment: a new key pair, a certificate request, the one-time code; genkan answers with the
//! device's certificate, which the agent keeps with its key in the state directory.

use std::path::Path;

use anyhow::{Context, Result, bail};
use posture::{ENROL_PATH, EnrolRequest, EnrolResponse};
use rcgen::{CertificateParams, DnType, KeyPair};

use crate::client::{self, Client, Identity, ServerAddress};
use crate::collect::{self, Host};
use crate::state::{Device, StateDir};

/// What `genkan-agent enrol` was given.
pub(crate) struct Enrolment<'a> {
    pub(crate) server: &'a str,
    pub(crate) code: &'a str,
    pub(crate) ca_file: Option<&'a Path>,
    pub(crate) force: bool,
}

/// Enrols this device and stores its identity; returns what was stored.
pub(crate) async fn enrol(
    state: &StateDir,
    host: &impl Host,
    enrolment: &Enrolment<'_>,
) -> Result<Device> {
    let server = ServerAddress::parse(enrolment.server)?;
    let code = enrolment.code.trim();
    if code.is_empty() {
        bail!("the enrolment code is empty");
    }
    let _lock = state.lock()?;
    if let Ok(existing) = state.device()
        && !enrolment.force
    {
        bail!(
            "this device is already enrolled as {} with {}; add --force to replace that",
            existing.device_id,
            existing.server
        );
    }
    let server_ca = match enrolment.ca_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let roots = match &server_ca {
        Some(pem) => client::roots_from_pem(pem, "the --ca-file")?,
        None => client::system_roots()?,
    };

    // The OS and host name come from a whole collection: a few seconds, and a collector
    // that cannot run shows up now rather than after the device is registered.
    let report = collect::collect(host, None).await;
    let key = KeyPair::generate().context("generating the device key")?;
    let mut params = CertificateParams::new(Vec::<String>::new())
        .context("preparing the certificate request")?;
    params
        .distinguished_name
        .push(DnType::CommonName, report.hostname.clone());
    let csr_pem = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .context("writing the certificate request")?;
    let request = EnrolRequest {
        code: code.to_owned(),
        csr_pem,
        hostname: report.hostname,
        os: report.os,
    };

    let client = Client::new(server, roots, None)?;
    let mut connection = client.connect().await?;
    let body = serde_json::to_vec(&request).context("writing the enrolment request")?;
    let answer = connection.post_json(ENROL_PATH, body).await?;
    if !answer.status.is_success() {
        bail!(
            "genkan refused the enrolment ({}): {}",
            answer.status,
            client::snippet(&answer.body)
        );
    }
    let response: EnrolResponse = serde_json::from_slice(&answer.body)
        .with_context(|| format!("reading genkan's answer: {}", client::snippet(&answer.body)))?;
    // Refuse to store an identity that could not be used.
    let key_pem = key.serialize_pem();
    Identity::from_pem(response.certificate_pem.as_bytes(), key_pem.as_bytes())
        .context("genkan's certificate")?;
    client::roots_from_pem(response.ca_pem.as_bytes(), "genkan's device CA")?;

    state.ensure()?;
    state.write_private("key.pem", key_pem.as_bytes())?;
    state.write_private("cert.pem", response.certificate_pem.as_bytes())?;
    state.write_private("ca.pem", response.ca_pem.as_bytes())?;
    match &server_ca {
        Some(pem) => state.write_private("server-ca.pem", pem)?,
        None => match std::fs::remove_file(state.path("server-ca.pem")) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).context("removing the old server-ca.pem"),
        },
    }
    let device = Device {
        server: enrolment.server.trim().to_owned(),
        device_id: response.device_id,
        report_interval_seconds: response.report_interval_seconds,
    };
    // Written last: its presence is what "enrolled" means.
    let json = serde_json::to_vec_pretty(&device).context("writing device.json")?;
    state.write_private("device.json", &json)?;
    Ok(device)
}
