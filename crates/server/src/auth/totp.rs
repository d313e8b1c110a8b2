//! Time-based one-time passwords (RFC 6238): SHA-1, 6 digits, 30-second steps, one step of
//! clock skew either way — the settings every authenticator app supports.

use anyhow::{Result, anyhow};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// A new random 160-bit secret, as base32 for storing and for typing into an app.
pub fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|error| anyhow!("no randomness from the OS: {error}"))?;
    Ok(Secret::from(bytes.to_vec()).to_base32())
}

fn totp(secret_base32: &str) -> Result<Totp> {
    let secret = Secret::try_from_base32(secret_base32)
        .map_err(|error| anyhow!("unusable secret: {error:?}"))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .map_err(|error| anyhow!("unusable secret: {error:?}"))
}

/// The time step a code is valid for at `unix_seconds`, if it is valid at all.
pub fn matching_step(secret_base32: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    totp(secret_base32).ok()?.check(&code, unix_seconds)
}

/// The code for `unix_seconds` (tests and the benchmark use it to play the authenticator app).
pub fn code_at(secret_base32: &str, unix_seconds: u64) -> Result<String> {
    Ok(totp(secret_base32)?.generate(unix_seconds).to_string())
}

/// The `otpauth://` URL an authenticator app reads from the QR code.
pub fn otpauth_url(issuer: &str, user: &str, secret_base32: &str) -> String {
    let label = gateway::gate::percent_encode(&format!("{issuer}:{user}"));
    let issuer = gateway::gate::percent_encode(issuer);
    format!(
        "otpauth://totp/{label}?secret={secret_base32}&issuer={issuer}&algorithm=SHA1&digits=6&period=30"
    )
}

/// The URL as a QR code in SVG, to put straight into the page.
pub fn qr_svg(url: &str) -> Result<String> {
    let code = qrcode::QrCode::new(url.as_bytes())
        .map_err(|error| anyhow!("cannot make a QR code: {error}"))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vector_and_skew() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", T = 59 s -> 94287082 (8 digits);
        // the 6-digit code is its last six digits.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        assert_eq!(code_at(&secret, 59).unwrap(), "287082");
        assert_eq!(matching_step(&secret, "287082", 59), Some(1));
        assert_eq!(
            matching_step(&secret, "287 082", 75),
            Some(1),
            "one step of skew is allowed"
        );
        assert_eq!(matching_step(&secret, "287082", 130), None);
        assert_eq!(matching_step(&secret, "28708", 59), None);
        assert_eq!(matching_step(&secret, "+28708", 59), None);
    }

    #[test]
    fn enrolment_material() {
        let secret = new_secret().unwrap();
        assert_eq!(secret.len(), 32);
        let url = otpauth_url("genkan", "suzuki", &secret);
        assert!(
            url.starts_with("otpauth://totp/genkan%3Asuzuki?secret="),
            "{url}"
        );
        let svg = qr_svg(&url).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}
