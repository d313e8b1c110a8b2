//! Server-side digest authentication: MD5 with `qop=auth` (RFC 2617, RFC 7616), which
//! is what carriers, SIP phones and sipp speak.
//!
//! Nonces are stateless: each carries its issue time, caller-supplied random bytes and an
//! HMAC-SHA-256 tag under a server secret, so any nonce we issued can be checked (and
//! found stale) without a table. A bounded table remembers the highest nonce-count seen
//! per nonce, so a captured request cannot be replayed with the same `nc` while the
//! nonce is fresh. Nothing here reads the clock or an RNG: `now` and `random` come in.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::header::{Auth, AuthParam};
use crate::message::Request;
use crate::uri::Uri;

/// Issues and checks nonces, and verifies credentials.
pub struct Nonces {
    secret: [u8; 32],
    lifetime: Duration,
    /// Highest nonce-count seen per nonce, with the nonce's issue time (Unix seconds).
    counts: BTreeMap<String, (u64, u32)>,
    max_tracked: usize,
}

/// What [`Nonces::verify`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are right and the nonce is fresh.
    Valid {
        /// The authenticated user.
        username: String,
    },
    /// The credentials were computed correctly with a nonce that has expired (or comes
    /// from a clock that has since moved back): challenge again with `stale=true`, and
    /// the client retries without asking its user.
    Stale,
    /// No Digest credentials for our realm: challenge.
    Missing,
    /// Wrong password, unknown user, forged or replayed nonce, malformed credentials.
    /// The reason is for the log, not for the peer.
    Invalid(&'static str),
}

impl Nonces {
    /// `secret` comes from the server's RNG at start-up; `lifetime` is how long a nonce
    /// stays fresh (a few minutes is usual).
    pub fn new(secret: [u8; 32], lifetime: Duration) -> Self {
        Self {
            secret,
            lifetime,
            counts: BTreeMap::new(),
            max_tracked: 10_000,
        }
    }

    /// A new nonce: 80 hex digits of issue time, the caller's random bytes, and a tag.
    pub fn issue(&self, now: SystemTime, random: [u8; 16]) -> String {
        let mut body = [0u8; 24];
        body[..8].copy_from_slice(&unix_seconds(now).to_be_bytes());
        body[8..].copy_from_slice(&random);
        let mut nonce = hex(&body);
        nonce.push_str(&hex(&self.tag(&body)));
        nonce
    }

    /// A WWW-Authenticate (or Proxy-Authenticate) value with a new nonce.
    pub fn challenge(&self, realm: &str, now: SystemTime, random: [u8; 16], stale: bool) -> Auth {
        let param = |name: &str, value: &str, quoted: bool| AuthParam {
            name: name.into(),
            value: value.into(),
            quoted,
        };
        let mut params = vec![
            param("realm", realm, true),
            param("nonce", &self.issue(now, random), true),
            param("algorithm", "MD5", false),
            param("qop", "auth", true),
        ];
        if stale {
            params.push(param("stale", "TRUE", false));
        }
        Auth {
            scheme: "Digest".into(),
            params,
        }
    }

    /// Checks the request's Authorization for `realm`. `ha1` looks a user up and returns
    /// the hex MD5 of `user:realm:password` (see [`ha1`]), so stored passwords can stay
    /// hashed. The comparison of responses takes the same time whatever they contain.
    pub fn verify(
        &mut self,
        request: &Request,
        realm: &str,
        ha1: impl FnOnce(&str) -> Option<String>,
        now: SystemTime,
    ) -> Verdict {
        let credentials = request.headers.authorization.iter().find(|auth| {
            auth.scheme.eq_ignore_ascii_case("Digest") && auth.param("realm") == Some(realm)
        });
        let Some(credentials) = credentials else {
            return Verdict::Missing;
        };
        let field = |name| credentials.param(name);
        let (Some(username), Some(nonce), Some(uri), Some(response)) = (
            field("username"),
            field("nonce"),
            field("uri"),
            field("response"),
        ) else {
            return Verdict::Invalid("credentials lack username, nonce, uri or response");
        };
        if field("algorithm").is_some_and(|algorithm| !algorithm.eq_ignore_ascii_case("MD5")) {
            return Verdict::Invalid("unsupported algorithm");
        }
        let Some(issued) = self.issued_at(nonce) else {
            return Verdict::Invalid("not a nonce we issued");
        };
        if !uri_matches(uri, request) {
            return Verdict::Invalid("digest uri differs from the Request-URI");
        }
        let Some(ha1) = ha1(username) else {
            return Verdict::Invalid("unknown user");
        };
        let ha2 = md5_hex(&format!("{}:{uri}", request.method));
        let (expected, count) = match field("qop") {
            None => (md5_hex(&format!("{ha1}:{nonce}:{ha2}")), None),
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (field("nc"), field("cnonce")) else {
                    return Verdict::Invalid("qop=auth without nc or cnonce");
                };
                let Some(count) = parse_nc(nc) else {
                    return Verdict::Invalid("malformed nc");
                };
                let text = format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}");
                (md5_hex(&text), Some(count))
            }
            Some(_) => return Verdict::Invalid("unsupported qop"),
        };
        let response = response.to_ascii_lowercase();
        if !bool::from(expected.as_bytes().ct_eq(response.as_bytes())) {
            return Verdict::Invalid("wrong response");
        }
        let now_seconds = unix_seconds(now);
        let lifetime = self.lifetime.as_secs();
        if issued > now_seconds || now_seconds - issued > lifetime {
            return Verdict::Stale;
        }
        if let Some(count) = count
            && !self.record_count(nonce, issued, count, now_seconds)
        {
            return Verdict::Invalid("nonce count replayed");
        }
        Verdict::Valid {
            username: username.into(),
        }
    }

    fn tag(&self, body: &[u8]) -> [u8; 16] {
        // HMAC takes keys of any length, so this never fails; an unkeyed fallback would
        // be a hole, so a failure yields a tag no nonce can match.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret) else {
            return [0xff; 16];
        };
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    /// The issue time of a nonce we made, or `None` for anything else.
    fn issued_at(&self, nonce: &str) -> Option<u64> {
        let bytes = unhex(nonce)?;
        let (body, tag) = bytes.split_at_checked(24)?;
        if tag.len() != 16 || !bool::from(self.tag(body).ct_eq(tag)) {
            return None;
        }
        let mut seconds = [0u8; 8];
        seconds.copy_from_slice(&body[..8]);
        Some(u64::from_be_bytes(seconds))
    }

    /// Records a nonce-count; false if it is not above the highest already seen.
    fn record_count(&mut self, nonce: &str, issued: u64, count: u32, now: u64) -> bool {
        if let Some((_, highest)) = self.counts.get_mut(nonce) {
            if count <= *highest {
                return false;
            }
            *highest = count;
            return true;
        }
        if self.counts.len() >= self.max_tracked {
            let lifetime = self.lifetime.as_secs();
            self.counts
                .retain(|_, (issued, _)| now.saturating_sub(*issued) <= lifetime);
        }
        if self.counts.len() >= self.max_tracked {
            // Still full of fresh nonces: forget the oldest rather than grow without bound.
            let oldest = self
                .counts
                .iter()
                .min_by_key(|(_, (issued, _))| *issued)
                .map(|(nonce, _)| nonce.clone());
            if let Some(oldest) = oldest {
                self.counts.remove(&oldest);
            }
        }
        self.counts.insert(nonce.into(), (issued, count));
        true
    }
}

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nonces")
            .field("secret", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .field("tracked", &self.counts.len())
            .finish()
    }
}

/// The hex MD5 of `username:realm:password`, what a registrar can store instead of the
/// password.
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    md5_hex(&format!("{username}:{realm}:{password}"))
}

/// A client's `response` value for the given challenge fields, for tests and for the
/// server's own registrations towards a carrier.
pub fn digest_response(
    ha1: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

fn uri_matches(digest_uri: &str, request: &Request) -> bool {
    match Uri::parse(digest_uri) {
        Ok(uri) => uri == request.uri,
        Err(_) => digest_uri == request.uri.to_string(),
    }
}

fn parse_nc(text: &str) -> Option<u32> {
    if text.len() != 8 {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn md5_hex(text: &str) -> String {
    hex(&Md5::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transport;
    use crate::message::Message;
    use crate::parse::parse;

    const REALM: &str = "genkan.example";

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    fn register(authorization: &str) -> Request {
        let text = format!(
            "REGISTER sip:genkan.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKr\r\n\
             From: <sip:agent1@genkan.example>;tag=a\r\nTo: <sip:agent1@genkan.example>\r\n\
             Call-ID: reg1\r\nCSeq: 2 REGISTER\r\nAuthorization: {authorization}\r\nContent-Length: 0\r\n\r\n"
        );
        match parse(text.as_bytes(), Transport::Udp).unwrap() {
            Message::Request(request) => request,
            Message::Response(_) => panic!("response"),
        }
    }

    fn credentials(nonce: &str, nc: &str, password: &str) -> String {
        let ha1 = ha1("agent1", REALM, password);
        let response = digest_response(
            &ha1,
            "REGISTER",
            "sip:genkan.example",
            nonce,
            Some((nc, "c0ffee")),
        );
        format!(
            r#"Digest username="agent1", realm="{REALM}", nonce="{nonce}", uri="sip:genkan.example", response="{response}", algorithm=MD5, qop=auth, nc={nc}, cnonce="c0ffee""#
        )
    }

    fn lookup(user: &str) -> Option<String> {
        (user == "agent1").then(|| ha1("agent1", REALM, "secret"))
    }

    #[test]
    fn a_correct_response_is_valid_once_per_nonce_count() {
        let mut nonces = Nonces::new([7; 32], Duration::from_secs(300));
        let nonce = nonces.issue(at(0), [1; 16]);
        assert_eq!(nonce.len(), 80);
        let first = register(&credentials(&nonce, "00000001", "secret"));
        let valid = Verdict::Valid {
            username: "agent1".into(),
        };
        assert_eq!(nonces.verify(&first, REALM, lookup, at(10)), valid);
        assert_eq!(
            nonces.verify(&first, REALM, lookup, at(11)),
            Verdict::Invalid("nonce count replayed")
        );
        let second = register(&credentials(&nonce, "00000002", "secret"));
        assert_eq!(nonces.verify(&second, REALM, lookup, at(12)), valid);
    }

    #[test]
    fn wrong_passwords_forged_nonces_and_old_nonces_are_told_apart() {
        let mut nonces = Nonces::new([7; 32], Duration::from_secs(300));
        let nonce = nonces.issue(at(0), [1; 16]);
        let wrong = register(&credentials(&nonce, "00000001", "guess"));
        assert_eq!(
            nonces.verify(&wrong, REALM, lookup, at(1)),
            Verdict::Invalid("wrong response")
        );
        let other_server = Nonces::new([8; 32], Duration::from_secs(300)).issue(at(0), [1; 16]);
        let forged = register(&credentials(&other_server, "00000001", "secret"));
        assert_eq!(
            nonces.verify(&forged, REALM, lookup, at(1)),
            Verdict::Invalid("not a nonce we issued")
        );
        let late = register(&credentials(&nonce, "00000001", "secret"));
        assert_eq!(nonces.verify(&late, REALM, lookup, at(301)), Verdict::Stale);
        let stranger =
            register(&credentials(&nonce, "00000001", "secret").replace("agent1", "agent9"));
        assert_eq!(
            nonces.verify(&stranger, REALM, lookup, at(1)),
            Verdict::Invalid("unknown user")
        );
        let other_realm = register(&credentials(&nonce, "00000001", "secret"));
        assert_eq!(
            nonces.verify(&other_realm, "elsewhere", lookup, at(1)),
            Verdict::Missing
        );
    }

    #[test]
    fn challenges_quote_what_rfc_2617_quotes() {
        let nonces = Nonces::new([7; 32], Duration::from_secs(300));
        let challenge = nonces.challenge(REALM, at(0), [2; 16], true).to_string();
        assert!(
            challenge.starts_with(r#"Digest realm="genkan.example", nonce=""#),
            "{challenge}"
        );
        assert!(
            challenge.ends_with(r#"", algorithm=MD5, qop="auth", stale=TRUE"#),
            "{challenge}"
        );
        assert!(!format!("{nonces:?}").contains("7, 7"));
    }

    #[test]
    fn the_rfc_2617_worked_example_gives_its_response() {
        // The example in RFC 2617 §3.5 (an HTTP GET), a fixed point any MD5 digest agrees on.
        let ha1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        let response = digest_response(
            &ha1,
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }
}
