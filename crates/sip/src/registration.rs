//! genkan registering itself with a carrier (RFC 3261 §10.2, genkan as the UAC): the
//! REGISTER that tells the carrier where to send calls, its answer to the carrier's digest
//! challenge, the refresh before the binding lapses, and the back-off after a refusal.
//!
//! Like the rest of the crate this is a state machine without sockets or a clock: the
//! driver asks [`Registration::due`] when to call [`Registration::poll`], sends the
//! request it returns through a client transaction, and feeds the final response (or the
//! transaction's timeout) back. Call-ID, tags, branches and cnonces come in from the
//! driver's random source.
//!
//! Choices a carrier's engineer would ask about:
//! - One Call-ID for the life of the registration and a CSeq that rises with every
//!   REGISTER (§10.2.4 asks for both, so the registrar can order refreshes).
//! - A refresh carries the last challenge's credentials with the next nonce-count, so a
//!   carrier that keeps its nonce valid takes it in one round trip; a new challenge is
//!   answered once. A challenge to credentials that answered a fresh challenge means the
//!   password is wrong (unless the carrier says `stale=true`): that is a failure, not a
//!   loop.
//! - The refresh is due halfway through a short binding and a minute before a long one
//!   lapses; after a failure the next try waits 30 s, doubling to 30 minutes (the
//!   bounds of RFC 5626 §4.5's back-off, without its jitter).
//! - 423 Interval Too Brief is answered at once with the carrier's Min-Expires.

use std::time::{Duration, Instant};

use crate::auth::{digest_response, ha1};
use crate::header::{Auth, AuthParam, CSeq, Contact, NameAddr, Via};
use crate::message::{Headers, Method, Request, Response};
use crate::uri::{SipUri, Uri};

/// The first wait after a failure.
const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// The longest wait after repeated failures.
const BACKOFF_MAX: Duration = Duration::from_secs(1800);
/// The shortest time between two REGISTERs that are not answers to a challenge or a 423,
/// so a carrier granting a second or two is not flooded.
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// Who registers where.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// The Request-URI: the carrier's registrar (`sip:carrier.example`).
    pub registrar: SipUri,
    /// The address of record registered (From and To): `sip:user@domain`.
    pub aor: SipUri,
    /// Where calls for the address of record are to be sent: genkan's own SIP address.
    pub contact: SipUri,
    /// Digest user name.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// The binding's lifetime asked for, in seconds.
    pub expires: u32,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("registrar", &self.registrar.to_string())
            .field("aor", &self.aor.to_string())
            .field("contact", &self.contact.to_string())
            .field("username", &self.username)
            .field("password", &"***")
            .field("expires", &self.expires)
            .finish()
    }
}

/// What a response (or the lack of one) did to the registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The carrier bound our contact for this long; the refresh is scheduled.
    Registered {
        /// The lifetime the carrier granted.
        expires: Duration,
    },
    /// A challenge or a 423 to answer: a new REGISTER is due now.
    Retry,
    /// Refused, or no answer: the next try waits `retry_in`.
    Failed {
        /// The status (0 when nothing came back).
        status: u16,
        /// Why, for the log.
        reason: String,
        /// When the next REGISTER goes.
        retry_in: Duration,
    },
    /// Not a final response to the REGISTER in flight: nothing changes.
    Ignored,
}

/// The last challenge, kept to answer it and to sign refreshes with.
#[derive(Debug, Clone)]
struct Challenge {
    proxy: bool,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    qop_auth: bool,
    /// Nonce-count of the last request signed with this nonce: 1 when that request answered
    /// the challenge as it came, more when it reused the nonce (a refresh, a 423 retry).
    count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// The next REGISTER goes at this time.
    Due(Instant),
    /// A REGISTER with this CSeq is out.
    Waiting { seq: u32 },
    /// Unregistered for good.
    Stopped,
}

/// One registration with one carrier.
#[derive(Debug)]
pub struct Registration {
    account: Account,
    call_id: String,
    from_tag: String,
    seq: u32,
    expires: u32,
    state: State,
    challenge: Option<Challenge>,
    /// Failures in a row, for the back-off.
    failures: u32,
    /// When the current binding lapses, if the carrier has one.
    bound_until: Option<Instant>,
}

impl Registration {
    /// A registration whose first REGISTER is due at `now`.
    pub fn new(account: Account, call_id: &str, from_tag: &str, now: Instant) -> Self {
        Self {
            expires: account.expires,
            account,
            call_id: call_id.into(),
            from_tag: from_tag.into(),
            seq: 0,
            state: State::Due(now),
            challenge: None,
            failures: 0,
            bound_until: None,
        }
    }

    /// When [`Registration::poll`] has a REGISTER to send; `None` while one is out or
    /// after [`Registration::unregister`].
    pub fn due(&self) -> Option<Instant> {
        match self.state {
            State::Due(at) => Some(at),
            State::Waiting { .. } | State::Stopped => None,
        }
    }

    /// Whether the carrier holds a live binding of ours at `now`.
    pub fn is_registered(&self, now: Instant) -> bool {
        self.bound_until.is_some_and(|until| until > now)
    }

    /// The account.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The REGISTER to send now, if one is due. `via` is the top Via (with a new branch)
    /// and `cnonce` a fresh client nonce for the digest.
    pub fn poll(&mut self, now: Instant, via: Via, cnonce: &str) -> Option<Request> {
        match self.state {
            State::Due(at) if at <= now => {}
            _ => return None,
        }
        let request = self.request(self.expires, via, cnonce);
        self.state = State::Waiting { seq: self.seq };
        Some(request)
    }

    /// A response to the REGISTER in flight.
    pub fn response(&mut self, response: &Response, now: Instant) -> Outcome {
        let State::Waiting { seq } = self.state else {
            return Outcome::Ignored;
        };
        if response.status < 200
            || response.headers.cseq.seq != seq
            || response.headers.cseq.method != Method::Register
            || response.headers.call_id != self.call_id
        {
            return Outcome::Ignored;
        }
        match response.status {
            200..=299 => {
                let granted = self.granted(response);
                if granted == 0 {
                    return self.failed(now, response.status, "the carrier granted 0 seconds");
                }
                let lifetime = Duration::from_secs(u64::from(granted));
                self.failures = 0;
                self.bound_until = Some(now + lifetime);
                self.state = State::Due(now + refresh_after(lifetime));
                Outcome::Registered { expires: lifetime }
            }
            401 | 407 => {
                let proxy = response.status == 407;
                let offered = if proxy {
                    &response.headers.proxy_authenticate
                } else {
                    &response.headers.www_authenticate
                };
                let Some(challenge) = offered.iter().find_map(|auth| read_challenge(auth, proxy))
                else {
                    return self.failed(now, response.status, "no Digest MD5 challenge");
                };
                let stale = offered.iter().any(|auth| {
                    auth.param("stale")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                });
                let answered_as_it_came = self
                    .challenge
                    .as_ref()
                    .is_some_and(|challenge| challenge.count == 1);
                if answered_as_it_came && !stale {
                    self.challenge = None;
                    return self.failed(
                        now,
                        response.status,
                        "the carrier refused our credentials",
                    );
                }
                self.challenge = Some(challenge);
                self.state = State::Due(now);
                Outcome::Retry
            }
            423 => {
                let minimum = response
                    .headers
                    .other("Min-Expires")
                    .next()
                    .and_then(|value| value.trim().parse::<u32>().ok());
                match minimum {
                    Some(minimum) if minimum > self.expires => {
                        self.expires = minimum;
                        self.state = State::Due(now);
                        Outcome::Retry
                    }
                    _ => self.failed(now, 423, "423 without a usable Min-Expires"),
                }
            }
            status => {
                let reason = format!("{status} {}", response.reason);
                self.failed(now, status, &reason)
            }
        }
    }

    /// The REGISTER in flight got no answer (timer F).
    pub fn timed_out(&mut self, now: Instant) -> Outcome {
        if !matches!(self.state, State::Waiting { .. }) {
            return Outcome::Ignored;
        }
        self.failed(now, 0, "no answer from the registrar")
    }

    /// The REGISTER that was due could not be sent (the registrar's name did not resolve):
    /// the next try waits, as after a refusal.
    pub fn unreachable(&mut self, now: Instant, reason: &str) -> Outcome {
        if !matches!(self.state, State::Due(_)) {
            return Outcome::Ignored;
        }
        self.failed(now, 0, reason)
    }

    /// The REGISTER that removes our binding (Expires 0), for a shutdown; nothing is
    /// sent after it. Best effort: a challenge to it is not answered.
    pub fn unregister(&mut self, via: Via, cnonce: &str) -> Request {
        let request = self.request(0, via, cnonce);
        self.state = State::Stopped;
        self.bound_until = None;
        request
    }

    fn request(&mut self, expires: u32, via: Via, cnonce: &str) -> Request {
        self.seq = self.seq.wrapping_add(1) % (1 << 31);
        let mut from = NameAddr::new(self.account.aor.clone());
        from.set_tag(&self.from_tag);
        let to = NameAddr::new(self.account.aor.clone());
        let cseq = CSeq {
            seq: self.seq,
            method: Method::Register,
        };
        let mut headers = Headers::new(from, to, &self.call_id, cseq);
        headers.via = vec![via];
        headers.max_forwards = Some(70);
        headers.contact = vec![Contact::Address(NameAddr::new(
            self.account.contact.clone(),
        ))];
        headers.expires = Some(expires);
        let uri = Uri::Sip(self.account.registrar.clone());
        if let Some(challenge) = self.challenge.as_mut() {
            challenge.count = challenge.count.wrapping_add(1);
            let credentials = credentials(&self.account, challenge, &uri.to_string(), cnonce);
            if challenge.proxy {
                headers.proxy_authorization.push(credentials);
            } else {
                headers.authorization.push(credentials);
            }
        }
        Request {
            method: Method::Register,
            uri,
            headers,
            body: Vec::new(),
        }
    }

    /// The lifetime in a 2xx: our Contact's `expires`, else the Expires header, else
    /// what we asked for (§10.2.4).
    fn granted(&self, response: &Response) -> u32 {
        let ours = response
            .headers
            .contact
            .iter()
            .find_map(|contact| match contact {
                Contact::Address(address) => match address.uri.as_sip() {
                    Some(uri) if same_contact(uri, &self.account.contact) => address
                        .param("expires")
                        .flatten()
                        .and_then(|value| value.trim().parse::<u32>().ok()),
                    _ => None,
                },
                Contact::Wildcard => None,
            });
        ours.or(response.headers.expires).unwrap_or(self.expires)
    }

    fn failed(&mut self, now: Instant, status: u16, reason: &str) -> Outcome {
        let exponent = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let retry_in = BACKOFF_BASE.saturating_mul(1 << exponent).min(BACKOFF_MAX);
        self.state = State::Due(now + retry_in);
        if self.bound_until.is_some_and(|until| until <= now) {
            self.bound_until = None;
        }
        Outcome::Failed {
            status,
            reason: reason.into(),
            retry_in,
        }
    }
}

/// Halfway through a binding of two minutes or less, a minute before a longer one lapses.
fn refresh_after(lifetime: Duration) -> Duration {
    let minute = Duration::from_secs(60);
    let after = if lifetime > 2 * minute {
        lifetime - minute
    } else {
        lifetime / 2
    };
    after.max(MIN_REFRESH)
}

/// Registrars may echo the Contact with other parameters or a canonical host case, so the
/// user, host and port decide.
fn same_contact(theirs: &SipUri, ours: &SipUri) -> bool {
    theirs.user == ours.user
        && theirs.host.eq_ignore_ascii_case(&ours.host)
        && theirs.port.unwrap_or(5060) == ours.port.unwrap_or(5060)
}

/// A Digest challenge we can answer: MD5 (or no algorithm), and `qop` absent or offering
/// `auth`.
fn read_challenge(auth: &Auth, proxy: bool) -> Option<Challenge> {
    if !auth.scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    if let Some(algorithm) = auth.param("algorithm")
        && !algorithm.eq_ignore_ascii_case("MD5")
    {
        return None;
    }
    let qop_auth = match auth.param("qop") {
        None => false,
        Some(options) => {
            if !options
                .split(',')
                .any(|option| option.trim().eq_ignore_ascii_case("auth"))
            {
                return None;
            }
            true
        }
    };
    Some(Challenge {
        proxy,
        realm: auth.param("realm")?.to_owned(),
        nonce: auth.param("nonce")?.to_owned(),
        opaque: auth.param("opaque").map(str::to_owned),
        qop_auth,
        count: 0,
    })
}

fn credentials(account: &Account, challenge: &Challenge, uri: &str, cnonce: &str) -> Auth {
    let secret = ha1(&account.username, &challenge.realm, &account.password);
    let nc = format!("{:08x}", challenge.count);
    let qop = challenge.qop_auth.then_some((nc.as_str(), cnonce));
    let response = digest_response(&secret, "REGISTER", uri, &challenge.nonce, qop);
    let quoted = |name: &str, value: &str| AuthParam {
        name: name.into(),
        value: value.into(),
        quoted: true,
    };
    let token = |name: &str, value: &str| AuthParam {
        name: name.into(),
        value: value.into(),
        quoted: false,
    };
    let mut params = vec![
        quoted("username", &account.username),
        quoted("realm", &challenge.realm),
        quoted("nonce", &challenge.nonce),
        quoted("uri", uri),
        quoted("response", &response),
        token("algorithm", "MD5"),
    ];
    if let Some(opaque) = &challenge.opaque {
        params.push(quoted("opaque", opaque));
    }
    if challenge.qop_auth {
        params.push(token("qop", "auth"));
        params.push(token("nc", &nc));
        params.push(quoted("cnonce", cnonce));
    }
    Auth {
        scheme: "Digest".into(),
        params,
    }
}

#[cfg(test)]
mod tests;
