//! Re-INVITEs inside an answered call, on either leg (the carrier's or the agent's phone):
//! hold and resume (RFC 3264 §8.4, RFC 6337 §5), and session refreshes.
//!
//! genkan answers from the same port with the codec already in use and the mirrored
//! direction; an offer of `sendonly`, `inactive` or the old `c=0.0.0.0` puts that leg on
//! hold in the media (it is sent silence, and the other leg and the recording get silence
//! in its place), and `sendrecv` takes it off. An offer that changes nothing gets our
//! description back with the same `o=` version; one that changes something gets the next
//! version. A re-INVITE without an offer is answered with ours (`sendrecv`) and the peer's
//! answer, in its ACK, decides the hold.
//!
//! What genkan cannot follow it refuses with 488, which leaves the session as it was
//! (RFC 3261 §14.2): moving the media to another address or port, or a codec other than
//! the one in use (the bridge's legs are set up once).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use contact::ContactId;
use media::Side;
use sip::sdp::{self, Codec, Direction, Local};
use sip::{DialogId, Output, Request, Transport};

use super::Call;
use crate::clock;
use crate::voice::switch::Switch;

/// One leg's side of the SDP exchange, as the next re-INVITE needs it.
pub(in crate::voice) struct Session {
    /// What we last said on this leg (the answer to the carrier, the offer to the phone).
    sdp: String,
    /// What wrote it: our port, the codec in use, and the `o=` version.
    local: Local,
    /// Where the leg's audio goes.
    remote: SocketAddr,
    /// We sent an offer in a 200 (a re-INVITE came without one); its answer is in the ACK.
    awaiting_answer: bool,
}

impl Session {
    /// A leg just answered: `sdp` is our description in that exchange, with version 1.
    pub(super) fn new(
        address: IpAddr,
        port: u16,
        session_id: u64,
        codec: Codec,
        sdp: String,
        remote: SocketAddr,
    ) -> Self {
        Self {
            sdp,
            local: Local {
                address,
                port,
                session_id,
                version: 1,
                // Only the codec in use: the bridge cannot switch laws mid-call.
                codecs: vec![codec],
                ptime: 20,
            },
            remote,
            awaiting_answer: false,
        }
    }

    /// Answers a re-INVITE's offer: our description and whether the leg is now on hold,
    /// or why it cannot be answered.
    fn answer(&mut self, body: &[u8]) -> Result<(String, bool), &'static str> {
        let offer = sdp::parse(body).map_err(|_| "malformed SDP")?;
        let audio = offer.audio().map_err(|_| "no audio stream")?;
        // 0.0.0.0 is RFC 2543's hold, not a new address.
        if !audio.address.is_unspecified()
            && SocketAddr::new(audio.address, audio.port) != self.remote
        {
            return Err("the offer moves the media");
        }
        let answer = sdp::answer_update(&offer, &mut self.local, &self.sdp)
            .map_err(|_| "the offer drops the codec in use")?;
        self.sdp.clone_from(&answer.sdp);
        self.awaiting_answer = false;
        Ok((answer.sdp, audio.direction.is_hold()))
    }

    /// Our offer for a re-INVITE that came without one.
    fn offer(&mut self) -> String {
        let offer = sdp::offer_update(&mut self.local, Direction::SendRecv, &self.sdp);
        self.sdp.clone_from(&offer);
        self.awaiting_answer = true;
        offer
    }
}

/// Both legs' sessions and the call's time on hold.
#[derive(Default)]
pub(in crate::voice) struct Holds {
    pub(super) trunk: Option<Session>,
    pub(super) phone: Option<Session>,
    /// Holds begun, on either leg.
    count: u32,
    /// Time on hold of holds that ended, summed over the legs.
    total: Duration,
    /// Since when each leg (customer, agent) is on hold.
    held_since: [Option<Instant>; 2],
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Customer => 0,
        Side::Agent => 1,
    }
}

impl Holds {
    fn session(&mut self, side: Side) -> Option<&mut Session> {
        match side {
            Side::Customer => self.trunk.as_mut(),
            Side::Agent => self.phone.as_mut(),
        }
    }

    /// Moves a leg on or off hold; `true` when that changed something. A leg without an SDP
    /// session (a browser softphone) is held from the desk.
    fn set(&mut self, side: Side, held: bool, now: Instant) -> bool {
        let since = &mut self.held_since[side_index(side)];
        match (*since, held) {
            (None, true) => {
                *since = Some(now);
                self.count += 1;
                true
            }
            (Some(start), false) => {
                *since = None;
                self.total += now.saturating_duration_since(start);
                true
            }
            _ => false,
        }
    }

    /// `call.hold_count` and `call.hold_seconds` for the call record, when there was a
    /// hold (a hold still on at the end counts up to now).
    pub(super) fn record(&self, details: &mut BTreeMap<String, String>, now: Instant) {
        if self.count == 0 {
            return;
        }
        let ongoing = self
            .held_since
            .iter()
            .flatten()
            .map(|since| now.saturating_duration_since(*since))
            .sum::<Duration>();
        details.insert("call.hold_count".into(), self.count.to_string());
        details.insert(
            "call.hold_seconds".into(),
            format!("{:.1}", (self.total + ongoing).as_secs_f64()),
        );
    }
}

impl Switch {
    /// The call and leg an in-dialog request belongs to: its Call-ID and both tags must
    /// name an established dialog, as for BYE.
    fn leg_of(&self, request: &Request) -> Option<(ContactId, Side)> {
        let id = DialogId::of_request(request)?;
        let contact = *self.by_call_id.get(&request.headers.call_id)?;
        let call = self.calls.get(&contact)?;
        if call
            .trunk_dialog
            .as_ref()
            .is_some_and(|dialog| dialog.id == id)
        {
            return Some((contact, Side::Customer));
        }
        let phone = call.phone.as_ref().and_then(|phone| phone.dialog.as_ref());
        phone
            .is_some_and(|dialog| dialog.id == id)
            .then_some((contact, Side::Agent))
    }

    /// A re-INVITE: 481 outside an established dialog, 500 when its CSeq goes backwards,
    /// 488 for what genkan cannot follow, else 200 with our description.
    pub(in crate::voice) fn reinvite(
        &mut self,
        transaction: sip::TransactionId,
        request: &Request,
    ) -> Vec<Output> {
        let Some((contact, side)) = self.leg_of(request) else {
            let response = sip::response_to(request, 481, "Call/Transaction Does Not Exist");
            return self.respond(transaction, response);
        };
        let transport = match (side, self.calls.get(&contact)) {
            (Side::Customer, Some(call)) => call.trunk_transport,
            (Side::Agent, Some(call)) => call
                .phone
                .as_ref()
                .map_or(Transport::Udp, |phone| phone.route.transport),
            (_, None) => Transport::Udp,
        };
        let our_contact = self.our_contact(transport);
        let now = clock::instant_now();
        let Some(call) = self.calls.get_mut(&contact) else {
            return Vec::new();
        };
        let dialog = match side {
            Side::Customer => call.trunk_dialog.as_mut(),
            Side::Agent => call.phone.as_mut().and_then(|phone| phone.dialog.as_mut()),
        };
        if let Some(Err(error)) = dialog.map(|dialog| dialog.receive(request)) {
            tracing::debug!(%contact, %error, "re-INVITE refused");
            let response = sip::response_to(request, 500, "Server Internal Error");
            return self.respond(transaction, response);
        }
        let Some(session) = call.hold.session(side) else {
            // A dialog with no session yet cannot happen; refuse rather than guess.
            let response = sip::response_to(request, 488, "Not Acceptable Here");
            return self.respond(transaction, response);
        };
        let (body, held) = if request.body.is_empty() {
            (session.offer(), None)
        } else {
            match session.answer(&request.body) {
                Ok((answer, held)) => (answer, Some(held)),
                Err(why) => {
                    tracing::info!(%contact, ?side, why, "re-INVITE not taken");
                    let response = sip::response_to(request, 488, "Not Acceptable Here");
                    return self.respond(transaction, response);
                }
            }
        };
        if let Some(held) = held {
            hold(call, side, held, now);
        }
        // The To tag is the dialog's, copied from the request.
        let mut ok = sip::response_to(request, 200, "OK");
        ok.headers.contact = vec![our_contact];
        ok.headers.content_type = Some("application/sdp".into());
        ok.body = body.into_bytes();
        self.respond(transaction, ok)
    }

    /// An ACK in a call: when it answers the offer genkan made in a re-INVITE's 200, its
    /// direction decides the hold.
    pub(in crate::voice) fn ack(&mut self, request: &Request) -> Vec<Output> {
        let Some((contact, side)) = self.leg_of(request) else {
            return Vec::new();
        };
        let Some(call) = self.calls.get_mut(&contact) else {
            return Vec::new();
        };
        let Some(session) = call
            .hold
            .session(side)
            .filter(|session| session.awaiting_answer)
        else {
            return Vec::new();
        };
        session.awaiting_answer = false;
        match sdp::parse(&request.body).and_then(|answer| answer.audio()) {
            Ok(audio) => hold(call, side, audio.direction.is_hold(), clock::instant_now()),
            // The leg stays as it was; the peer broke the offer/answer exchange, not the call.
            Err(error) => tracing::info!(%contact, ?side, %error, "ACK without a usable answer"),
        }
        Vec::new()
    }
}

/// Puts a leg on hold or off it, in the media and in the call's hold time.
pub(super) fn hold(call: &mut Call, side: Side, held: bool, now: Instant) {
    if call.hold.set(side, held, now) {
        tracing::info!(contact = %call.contact, ?side, held, "hold");
        if let Some(media) = &call.media {
            media.hold(side, held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let remote = SocketAddr::from(([192, 0, 2, 7], 40_000));
        let address = IpAddr::from([192, 0, 2, 1]);
        Session::new(address, 20_000, 7, Codec::Pcmu, String::new(), remote)
    }

    #[allow(clippy::disallowed_methods)] // an origin only; every time is origin + offset
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn hold_time_is_counted_per_hold_and_summed_over_the_legs() {
        let t0 = origin();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut holds = Holds {
            trunk: Some(session()),
            phone: Some(session()),
            ..Holds::default()
        };
        let mut details = BTreeMap::new();
        holds.record(&mut details, at(0));
        assert!(details.is_empty(), "a call never held says nothing");
        assert!(holds.set(Side::Agent, true, at(1000)));
        // A repeated hold offer (a refresh while held) is not a new hold.
        assert!(!holds.set(Side::Agent, true, at(1500)));
        assert!(holds.set(Side::Agent, false, at(3000)));
        assert!(!holds.set(Side::Agent, false, at(3500)));
        // The carrier holds and is still held at the end.
        assert!(holds.set(Side::Customer, true, at(4000)));
        holds.record(&mut details, at(4500));
        assert_eq!(details["call.hold_count"], "2");
        assert_eq!(details["call.hold_seconds"], "2.5");
        // A leg without an SDP session (a browser softphone, held from the desk) counts too.
        holds.phone = None;
        assert!(holds.set(Side::Agent, true, at(5000)));
        assert!(holds.set(Side::Agent, false, at(5500)));
        let mut details = BTreeMap::new();
        holds.record(&mut details, at(6000));
        assert_eq!(details["call.hold_count"], "3");
        assert_eq!(details["call.hold_seconds"], "4.5");
    }

    #[test]
    fn offers_that_move_the_media_or_drop_the_codec_are_refused() {
        let offer = |address: &str, port: u16, formats: &str, direction: &str| {
            format!(
                "v=0\r\no=p 1 2 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n\
                 m=audio {port} RTP/AVP {formats}\r\na={direction}\r\n"
            )
        };
        let mut leg = session();
        assert_eq!(
            leg.answer(offer("192.0.2.8", 40_000, "0", "sendonly").as_bytes()),
            Err("the offer moves the media")
        );
        assert_eq!(
            leg.answer(offer("192.0.2.7", 40_002, "0", "sendonly").as_bytes()),
            Err("the offer moves the media")
        );
        assert_eq!(
            leg.answer(offer("192.0.2.7", 40_000, "8", "sendonly").as_bytes()),
            Err("the offer drops the codec in use")
        );
        assert_eq!(leg.answer(b"not sdp"), Err("malformed SDP"));
        let (answer, held) = leg
            .answer(offer("0.0.0.0", 40_000, "0", "sendrecv").as_bytes())
            .unwrap();
        assert!(held);
        assert!(answer.contains("a=recvonly\r\n"), "{answer}");
        assert!(
            answer.contains("o=genkan 7 2 IN IP4 192.0.2.1\r\n"),
            "{answer}"
        );
        let (answer, held) = leg
            .answer(offer("192.0.2.7", 40_000, "0", "sendrecv").as_bytes())
            .unwrap();
        assert!(!held);
        assert!(answer.contains("o=genkan 7 3 "), "{answer}");
        assert!(!leg.awaiting_answer);
        let offer = leg.offer();
        assert!(offer.contains("m=audio 20000 RTP/AVP 0 101\r\n"), "{offer}");
        assert!(leg.awaiting_answer);
    }
}
