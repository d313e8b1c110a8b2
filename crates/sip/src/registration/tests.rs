//! The registration against this crate's own registrar side ([`Nonces`]), in simulated
//! time: what a carrier would check is checked by the same code genkan's phones meet.

use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::Transport;
use crate::auth::{Nonces, Verdict};
use crate::message::{Message, response_to};

const REALM: &str = "carrier.test";
const PASSWORD: &str = "carrier-secret";

fn account(password: &str) -> Account {
    Account {
        registrar: SipUri::new(None, "192.0.2.10", Some(5070)),
        aor: SipUri::new(Some("0312345678"), "carrier.test", None),
        contact: SipUri::new(Some("0312345678"), "198.51.100.7", Some(5060)),
        username: "0312345678".into(),
        password: password.into(),
        expires: 600,
    }
}

fn via(n: u32) -> Via {
    Via::new(
        Transport::Udp,
        "198.51.100.7",
        Some(5060),
        &format!("z9hG4bKtest{n}"),
    )
}

/// The carrier's side: a digest registrar with one account.
struct Carrier {
    nonces: Nonces,
    wall: SystemTime,
    random: u8,
}

impl Carrier {
    fn new() -> Self {
        Self {
            nonces: Nonces::new([7; 32], Duration::from_secs(300)),
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            random: 0,
        }
    }

    fn challenge(&mut self, request: &Request, stale: bool) -> Response {
        self.random += 1;
        let auth = self
            .nonces
            .challenge(REALM, self.wall, [self.random; 16], stale);
        let mut response = response_to(request, 401, "Unauthorized").with_to_tag("c1");
        response.headers.www_authenticate.push(auth);
        response
    }

    fn verify(&mut self, request: &Request) -> Verdict {
        self.nonces.verify(
            request,
            REALM,
            |user| (user == "0312345678").then(|| ha1(user, REALM, PASSWORD)),
            self.wall,
        )
    }

    /// What a registrar answers: a challenge until the credentials are right, then 200
    /// with our Contact and the lifetime granted.
    fn answer(&mut self, request: &Request, granted: u32) -> Response {
        match self.verify(request) {
            Verdict::Valid { .. } => ok(request, granted),
            Verdict::Stale => self.challenge(request, true),
            Verdict::Missing | Verdict::Invalid(_) => self.challenge(request, false),
        }
    }
}

fn ok(request: &Request, granted: u32) -> Response {
    let mut response = response_to(request, 200, "OK").with_to_tag("c1");
    let Some(Contact::Address(contact)) = request.headers.contact.first() else {
        panic!("a REGISTER without Contact");
    };
    let mut contact = contact.clone();
    contact
        .params
        .push(crate::Param::new("expires", &granted.to_string()));
    response.headers.contact.push(Contact::Address(contact));
    response
}

/// The start of simulated time: every instant below is this plus an offset.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Goes through one challenge; returns the registration waiting for the answer to its
/// signed REGISTER, that REGISTER, and the time.
fn challenged(carrier: &mut Carrier) -> (Registration, Request, Instant) {
    let now = origin();
    let mut registration = Registration::new(account(PASSWORD), "reg-1@genkan", "t1", now);
    let first = registration.poll(now, via(1), "cn1").expect("due at start");
    assert!(first.headers.authorization.is_empty());
    let challenge = carrier.answer(&first, 600);
    assert_eq!(challenge.status, 401);
    assert_eq!(registration.response(&challenge, now), Outcome::Retry);
    assert_eq!(registration.due(), Some(now));
    let signed = registration
        .poll(now, via(2), "cn2")
        .expect("answer at once");
    assert_eq!(signed.headers.cseq.seq, first.headers.cseq.seq + 1);
    assert_eq!(signed.headers.call_id, first.headers.call_id);
    assert!(registration.due().is_none(), "waiting for the answer");
    (registration, signed, now)
}

/// Registered for ten minutes.
fn registered(carrier: &mut Carrier) -> (Registration, Instant) {
    let (mut registration, signed, now) = challenged(carrier);
    let answer = carrier.answer(&signed, 600);
    assert_eq!(answer.status, 200, "the carrier took our credentials");
    assert_eq!(
        registration.response(&answer, now),
        Outcome::Registered { expires: secs(600) }
    );
    (registration, now)
}

#[test]
fn a_challenge_is_answered_and_the_refresh_is_due_a_minute_before_the_binding_lapses() {
    let mut carrier = Carrier::new();
    let (mut registration, signed, now) = challenged(&mut carrier);
    let credentials = &signed.headers.authorization[0];
    assert_eq!(credentials.param("qop"), Some("auth"));
    assert_eq!(credentials.param("nc"), Some("00000001"));
    assert_eq!(credentials.param("cnonce"), Some("cn2"));
    assert_eq!(credentials.param("uri"), Some("sip:192.0.2.10:5070"));
    assert_eq!(signed.headers.expires, Some(600));
    let answer = carrier.answer(&signed, 600);
    assert_eq!(answer.status, 200);
    assert_eq!(
        registration.response(&answer, now),
        Outcome::Registered { expires: secs(600) }
    );
    assert!(registration.is_registered(now));
    assert_eq!(registration.due(), Some(now + secs(540)));
    assert!(registration.poll(now + secs(539), via(9), "x").is_none());
}

#[test]
fn a_refresh_signs_with_the_next_nonce_count_and_is_taken_in_one_round_trip() {
    let mut carrier = Carrier::new();
    let (mut registration, now) = registered(&mut carrier);
    let later = now + secs(540);
    let refresh = registration
        .poll(later, via(3), "cn3")
        .expect("refresh due");
    assert_eq!(
        refresh.headers.authorization[0].param("nc"),
        Some("00000002")
    );
    assert_eq!(refresh.headers.cseq.seq, 3);
    let answer = carrier.answer(&refresh, 600);
    assert_eq!(answer.status, 200, "the carrier took the reused nonce");
    assert_eq!(
        registration.response(&answer, later),
        Outcome::Registered { expires: secs(600) }
    );
}

#[test]
fn a_stale_or_new_nonce_on_a_refresh_is_answered_not_counted_as_a_wrong_password() {
    let mut carrier = Carrier::new();
    let (mut registration, now) = registered(&mut carrier);
    let later = now + secs(540);
    let refresh = registration.poll(later, via(3), "cn3").unwrap();
    // A carrier that forgot its nonces challenges without `stale`.
    let challenge = carrier.challenge(&refresh, false);
    assert_eq!(registration.response(&challenge, later), Outcome::Retry);
    let answer = registration.poll(later, via(4), "cn4").unwrap();
    assert_eq!(
        answer.headers.authorization[0].param("nc"),
        Some("00000001")
    );
    let stale = carrier.challenge(&answer, true);
    assert_eq!(
        registration.response(&stale, later),
        Outcome::Retry,
        "stale=true is not a refusal"
    );
}

#[test]
fn a_wrong_password_fails_once_per_try_and_backs_off_doubling_to_half_an_hour() {
    let mut carrier = Carrier::new();
    let mut now = origin();
    let mut registration = Registration::new(account("wrong-password"), "r@g", "t", now);
    let mut waits = Vec::new();
    for round in 0..8 {
        let first = registration.poll(now, via(round * 2), "a").expect("due");
        let challenge = carrier.answer(&first, 600);
        assert_eq!(registration.response(&challenge, now), Outcome::Retry);
        let signed = registration
            .poll(now, via(round * 2 + 1), "b")
            .expect("due");
        assert!(matches!(carrier.verify(&signed), Verdict::Invalid(_)));
        let refusal = carrier.answer(&signed, 600);
        let Outcome::Failed {
            status, retry_in, ..
        } = registration.response(&refusal, now)
        else {
            panic!("a refused password must fail, not loop");
        };
        assert_eq!(status, 401);
        assert_eq!(registration.due(), Some(now + retry_in));
        assert!(registration.poll(now, via(99), "c").is_none());
        waits.push(retry_in.as_secs());
        now += retry_in;
    }
    assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1800, 1800]);
    assert!(!registration.is_registered(now));
}

#[test]
fn interval_too_brief_is_answered_with_the_carriers_minimum() {
    let now = origin();
    let mut registration = Registration::new(account(PASSWORD), "r@g", "t", now);
    let first = registration.poll(now, via(1), "a").unwrap();
    let mut brief = response_to(&first, 423, "Interval Too Brief");
    brief
        .headers
        .other
        .push(("Min-Expires".into(), "1800".into()));
    assert_eq!(registration.response(&brief, now), Outcome::Retry);
    let second = registration.poll(now, via(2), "b").unwrap();
    assert_eq!(second.headers.expires, Some(1800));
    let mut useless = response_to(&second, 423, "Interval Too Brief");
    useless
        .headers
        .other
        .push(("Min-Expires".into(), "60".into()));
    assert!(matches!(
        registration.response(&useless, now),
        Outcome::Failed { status: 423, .. }
    ));
}

#[test]
fn no_answer_and_refusals_back_off_and_a_success_resets_the_back_off() {
    let mut now = origin();
    let mut registration = Registration::new(account(PASSWORD), "r@g", "t", now);
    registration.poll(now, via(1), "a").unwrap();
    assert_eq!(
        registration.timed_out(now),
        Outcome::Failed {
            status: 0,
            reason: "no answer from the registrar".into(),
            retry_in: secs(30)
        }
    );
    assert_eq!(
        registration.timed_out(now),
        Outcome::Ignored,
        "nothing in flight"
    );
    assert!(matches!(
        registration.unreachable(now + secs(30), "no such host"),
        Outcome::Failed { status: 0, retry_in, .. } if retry_in == secs(60)
    ));
    now += secs(30);
    now += secs(60);
    let second = registration.poll(now, via(2), "b").unwrap();
    assert_eq!(
        registration.unreachable(now, "x"),
        Outcome::Ignored,
        "in flight"
    );
    let unavailable = response_to(&second, 503, "Service Unavailable");
    assert!(matches!(
        registration.response(&unavailable, now),
        Outcome::Failed { status: 503, retry_in, .. } if retry_in == secs(120)
    ));
    now += secs(120);
    let third = registration.poll(now, via(3), "c").unwrap();
    // The carrier grants a short binding through the Expires header alone.
    let mut accepted = response_to(&third, 200, "OK");
    accepted.headers.expires = Some(90);
    assert_eq!(
        registration.response(&accepted, now),
        Outcome::Registered { expires: secs(90) }
    );
    assert_eq!(registration.due(), Some(now + secs(45)), "halfway");
    now += secs(45);
    registration.poll(now, via(4), "d").unwrap();
    assert!(matches!(
        registration.timed_out(now),
        Outcome::Failed { retry_in, .. } if retry_in == secs(30)
    ));
    assert!(
        registration.is_registered(now),
        "the old binding has not lapsed yet"
    );
    assert!(!registration.is_registered(now + secs(45)));
}

#[test]
fn provisional_and_foreign_responses_change_nothing_and_zero_seconds_is_a_failure() {
    let now = origin();
    let mut registration = Registration::new(account(PASSWORD), "r@g", "t", now);
    let request = registration.poll(now, via(1), "a").unwrap();
    assert_eq!(
        registration.response(&response_to(&request, 100, "Trying"), now),
        Outcome::Ignored
    );
    let mut other_call = response_to(&request, 200, "OK");
    other_call.headers.call_id = "someone-else".into();
    assert_eq!(registration.response(&other_call, now), Outcome::Ignored);
    let mut old = response_to(&request, 200, "OK");
    old.headers.cseq.seq += 5;
    assert_eq!(registration.response(&old, now), Outcome::Ignored);
    assert!(matches!(
        registration.response(&ok(&request, 0), now),
        Outcome::Failed { status: 200, .. }
    ));
}

#[test]
fn the_register_prints_and_parses_back_and_unregistering_asks_for_zero_seconds() {
    let now = origin();
    let mut registration = Registration::new(account(PASSWORD), "r@g", "t", now);
    let request = registration.poll(now, via(1), "a").unwrap();
    let bytes = Message::Request(request.clone()).to_bytes();
    let parsed = crate::parse(&bytes, Transport::Udp).expect("our REGISTER parses");
    assert_eq!(parsed, Message::Request(request.clone()));
    assert_eq!(request.headers.from.tag(), Some("t"));
    assert_eq!(request.headers.to.tag(), None);
    assert_eq!(request.uri.to_string(), "sip:192.0.2.10:5070");
    assert_eq!(
        request.headers.to.uri.to_string(),
        "sip:0312345678@carrier.test"
    );
    let goodbye = registration.unregister(via(2), "b");
    assert_eq!(goodbye.headers.expires, Some(0));
    assert_eq!(registration.due(), None);
    assert!(format!("{:?}", registration.account()).contains("***"));
    assert!(!format!("{:?}", registration.account()).contains(PASSWORD));
}
