//! The back-to-back user agent: a carrier's INVITE becomes a voice contact; the center's offer
//! rings the agent's phone with genkan's own INVITE; the phone's answer answers the carrier;
//! BYE, CANCEL, rejection and silence on either side end or re-route the call. What happens
//! next is always the contact center's decision; this file only translates.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use contact::{ContactId, Event};
use media::{LegConfig, PlayoutConfig};
use sip::auth::Verdict;
use sip::sdp::{self, Codec, Direction, Local};
use sip::{
    CSeq, Contact, Dialog, Headers, Message, Method, NameAddr, Output, Request, Response, SipUri,
    TransactionId, Transport, Via,
};
use tokio::net::UdpSocket;

use super::media::{Leg, MediaHandle, MediaSummary};
use super::switch::{REALM, Switch, with_tag};
use super::{random, token};
use crate::center::runtime::{CallRecord, VoiceCommand};
use crate::clock;

mod announce;
mod hold;
mod reach;
mod softphone;

pub(in crate::voice) use reach::Route;

/// One call through genkan.
pub(crate) struct Call {
    contact: ContactId,
    caller: String,
    /// The carrier's INVITE, its server transaction, where it came from, our To tag.
    trunk_invite: Request,
    trunk_transaction: TransactionId,
    trunk_source: SocketAddr,
    /// UDP, or TCP on the carrier's connection.
    trunk_transport: Transport,
    trunk_tag: String,
    trunk_answer: sdp::Answer,
    /// Once answered, the carrier leg's dialog.
    trunk_dialog: Option<Dialog>,
    /// RTP sockets of the carrier leg and the phone leg until the media task takes them.
    customer_socket: Option<UdpSocket>,
    phone_socket: Option<UdpSocket>,
    phone_port: u16,
    session_id: u64,
    phone: Option<PhoneLeg>,
    /// The agent whose browser softphone holds the call.
    softphone: Option<String>,
    media: Option<MediaHandle>,
    recording: bool,
    details: BTreeMap<String, String>,
    /// When the prompts queued for the caller will have played (the center's hang-up waits).
    prompt_until: Option<std::time::Instant>,
    /// The queued prompt asks for a key: the flow's next words cut it short.
    asking: bool,
    /// Each answered leg's SDP session, for re-INVITEs, and the call's time on hold.
    hold: hold::Holds,
}

/// genkan's call to an agent's phone.
struct PhoneLeg {
    agent: String,
    transaction: TransactionId,
    invite: Request,
    /// Where its requests go, and over what.
    route: Route,
    ringing: bool,
    dialog: Option<Dialog>,
    ack: Option<Request>,
}

/// How a call ended, for the center.
enum Ending {
    CustomerLeft,
    AgentEnded(String),
    /// The center ended it: it has nothing more to hear.
    Center,
}

impl Switch {
    /// A new INVITE: admit it as a trunk call or refuse it.
    pub(super) fn trunk_invite(
        &mut self,
        transaction: TransactionId,
        request: Request,
        source: SocketAddr,
        transport: Transport,
    ) -> Vec<Output> {
        let trunk = match self.admit(&request, source) {
            Ok(trunk) => trunk,
            Err(Some(stale)) => return self.challenge(transaction, &request, stale),
            Err(None) => {
                let response = with_tag(sip::response_to(&request, 403, "Forbidden"), &request);
                return self.respond(transaction, response);
            }
        };
        let offer = sdp::parse(&request.body);
        let Some((customer_socket, phone_socket)) = self.ports.pair() else {
            tracing::warn!("no free RTP ports in voice.rtp_ports");
            let response = with_tag(
                sip::response_to(&request, 503, "Service Unavailable"),
                &request,
            );
            return self.respond(transaction, response);
        };
        let port = |socket: &UdpSocket| socket.local_addr().map_or(0, |addr| addr.port());
        let session_id = u64::from(u32::from_be_bytes(random()));
        let local = self.local_sdp(port(&customer_socket), session_id);
        let Ok(answer) = offer.and_then(|offer| sdp::answer(&offer, &local)) else {
            let response = with_tag(
                sip::response_to(&request, 488, "Not Acceptable Here"),
                &request,
            );
            return self.respond(transaction, response);
        };
        let caller = request
            .headers
            .from
            .uri
            .as_sip()
            .and_then(|uri| uri.user.as_deref())
            // A number is short; anything longer is not one, and is not stored whole.
            .map(|user| user.chars().take(64).collect::<String>())
            .unwrap_or_else(|| "anonymous".into());
        let contact = self.center.start_call(&caller);
        tracing::info!(%contact, trunk, "trunk call");
        let mut details = BTreeMap::new();
        details.insert("call.trunk".into(), trunk);
        details.insert("call.setup_at".into(), clock::utc_now_text());
        self.by_call_id
            .insert(request.headers.call_id.clone(), contact);
        self.by_transaction.insert(transaction, contact);
        let call = Call {
            contact,
            caller,
            phone_port: port(&phone_socket),
            trunk_invite: request,
            trunk_transaction: transaction,
            trunk_source: source,
            trunk_transport: transport,
            trunk_tag: token(),
            trunk_answer: answer,
            trunk_dialog: None,
            customer_socket: Some(customer_socket),
            phone_socket: Some(phone_socket),
            session_id,
            phone: None,
            softphone: None,
            media: None,
            recording: self.settings.recordings,
            details,
            prompt_until: None,
            asking: false,
            hold: hold::Holds::default(),
        };
        self.calls.insert(contact, call);
        Vec::new()
    }

    /// The trunk an INVITE comes from: `Ok(name)`, or `Err(Some(stale))` to challenge, or
    /// `Err(None)` to refuse.
    fn admit(&mut self, request: &Request, source: SocketAddr) -> Result<String, Option<bool>> {
        let ip = source.ip();
        let trunks: Vec<_> = self
            .settings
            .trunks
            .iter()
            .filter(|trunk| {
                let listed = trunk.allow.iter().any(|block| block.contains(ip));
                let registrar = self.carriers.trunk_at(ip) == Some(trunk.name.as_str());
                // No `allow`, credentials: the carrier may call from anywhere, with digest.
                let anywhere = trunk.allow.is_empty() && trunk.credentials.is_some();
                listed || registrar || anywhere
            })
            .collect();
        if let Some(open) = trunks.iter().find(|trunk| trunk.credentials.is_none()) {
            return Ok(open.name.clone());
        }
        if trunks.is_empty() {
            tracing::info!(%source, "INVITE from an address no trunk allows");
            return Err(None);
        }
        let verdict = self.nonces.verify(
            request,
            REALM,
            |user| {
                trunks.iter().find_map(|trunk| {
                    let (name, password) = trunk.credentials.as_ref()?;
                    (name == user).then(|| sip::auth::ha1(name, REALM, password.expose()))
                })
            },
            clock::system_now(),
        );
        match verdict {
            Verdict::Valid { username } => Ok(trunks
                .iter()
                .find(|trunk| {
                    trunk
                        .credentials
                        .as_ref()
                        .is_some_and(|(name, _)| *name == username)
                })
                .map_or(username.clone(), |trunk| trunk.name.clone())),
            Verdict::Missing => Err(Some(false)),
            Verdict::Stale => Err(Some(true)),
            Verdict::Invalid(reason) => {
                tracing::info!(%source, reason, "trunk INVITE refused");
                Err(None)
            }
        }
    }

    /// What the center asks.
    pub(super) fn command(&mut self, command: VoiceCommand) {
        let outputs = match command {
            VoiceCommand::Offer { contact, agent } => self.ring(contact, &agent),
            VoiceCommand::Withdrawn { contact, agent } => self.withdraw(contact, &agent),
            VoiceCommand::Connect { contact, agent } => self.connect_softphone(contact, &agent),
            VoiceCommand::Say { contact, text } => self.say(contact, &text, false),
            VoiceCommand::AskInput { contact, prompt } => self.say(contact, &prompt, true),
            VoiceCommand::Recording { contact, on } => {
                if let Some(call) = self.calls.get_mut(&contact) {
                    call.recording = on;
                }
                Vec::new()
            }
            VoiceCommand::Ended { contact } => self.center_ended(contact),
        };
        self.drive(outputs);
    }

    /// Rings the agent's phone, if they have one registered and no softphone (else their
    /// desk has the offer, and rings).
    fn ring(&mut self, contact: ContactId, agent: &str) -> Vec<Output> {
        if self.softphones.has(agent) {
            return self.ring_softphone(contact);
        }
        let now = clock::instant_now();
        let Some(binding) = self.registrar.lookup(agent, now).cloned() else {
            return Vec::new();
        };
        let idle = |call: &Call| call.phone.is_none();
        if !self.calls.get(&contact).is_some_and(idle) {
            return Vec::new();
        }
        let Some(route) = self.route_for_offer(contact, agent, binding.reach) else {
            return Vec::new();
        };
        let public = self.public;
        let Some(call) = self.calls.get(&contact) else {
            return Vec::new();
        };
        let host = host(public.ip());
        let local = self.local_sdp(call.phone_port, call.session_id);
        let mut from = NameAddr::new(SipUri::new(Some(&call.caller), &host, Some(public.port())));
        from.set_tag(&token());
        let to = NameAddr::new(SipUri::new(Some(agent), &host, Some(public.port())));
        let call_id = format!("{}{}", token(), token());
        let cseq = CSeq {
            seq: 1,
            method: Method::Invite,
        };
        let mut headers = Headers::new(from, to, &call_id, cseq);
        headers.via = vec![self.via(route.transport)];
        headers.max_forwards = Some(70);
        headers.contact = vec![self.our_contact(route.transport)];
        headers.content_type = Some("application/sdp".into());
        let invite = Request {
            method: Method::Invite,
            uri: binding.contact,
            headers,
            body: sdp::offer(&local, Direction::SendRecv).into_bytes(),
        };
        match self
            .transactions
            .request(invite.clone(), route.to, route.transport, now)
        {
            Ok((transaction, outputs)) => {
                self.by_transaction.insert(transaction, contact);
                self.by_call_id.insert(call_id, contact);
                if let Some(call) = self.calls.get_mut(&contact) {
                    call.phone = Some(PhoneLeg {
                        agent: agent.to_owned(),
                        transaction,
                        invite,
                        route,
                        ringing: false,
                        dialog: None,
                        ack: None,
                    });
                }
                outputs
            }
            Err(error) => {
                tracing::warn!(%contact, %error, "cannot call the agent's phone");
                self.center.event(Event::Reject {
                    agent: agent.to_owned(),
                    contact,
                });
                Vec::new()
            }
        }
    }

    /// The offer stopped ringing (timeout, customer left): cancel the phone's INVITE.
    fn withdraw(&mut self, contact: ContactId, agent: &str) -> Vec<Output> {
        let Some(call) = self.calls.get_mut(&contact) else {
            return Vec::new();
        };
        let ringing = call
            .phone
            .as_ref()
            .is_some_and(|phone| phone.agent == agent && phone.dialog.is_none());
        if !ringing {
            return Vec::new();
        }
        let phone = call.phone.take();
        phone
            .map(|phone| self.cancel_phone(phone))
            .unwrap_or_default()
    }

    fn cancel_phone(&mut self, phone: PhoneLeg) -> Vec<Output> {
        self.by_call_id.remove(&phone.invite.headers.call_id);
        self.by_transaction.remove(&phone.transaction);
        let cancel = sip::cancel_for(&phone.invite);
        let route = phone.route;
        self.abandoned
            .insert(phone.transaction, (phone.invite, route));
        match self
            .transactions
            .request(cancel, route.to, route.transport, clock::instant_now())
        {
            Ok((_, outputs)) => outputs,
            Err(error) => {
                tracing::debug!(%error, "cannot send CANCEL");
                Vec::new()
            }
        }
    }

    /// A response to one of our requests (only INVITE responses matter).
    pub(super) fn response(
        &mut self,
        transaction: TransactionId,
        response: &Response,
    ) -> Vec<Output> {
        if response.headers.cseq.method != Method::Invite {
            return Vec::new();
        }
        if let Some((invite, route)) = self.abandoned.get(&transaction).cloned() {
            // A phone that answered after we gave up: acknowledge, then hang up.
            if (200..300).contains(&response.status)
                && let Ok(mut dialog) = Dialog::as_uac(&invite, response)
            {
                let ack = dialog.ack(invite.headers.cseq.seq, self.via(route.transport));
                self.send_via(&Message::Request(ack), route.to, route.transport);
                self.abandoned.remove(&transaction);
                return self.request_in(&mut dialog, Method::Bye, route.to, route.transport);
            }
            if response.status >= 200 {
                self.abandoned.remove(&transaction);
            }
            return Vec::new();
        }
        let Some(&contact) = self.by_transaction.get(&transaction) else {
            return Vec::new();
        };
        let Some(call) = self.calls.get_mut(&contact) else {
            return Vec::new();
        };
        let Some(phone) = call
            .phone
            .as_mut()
            .filter(|phone| phone.transaction == transaction)
        else {
            return Vec::new();
        };
        match response.status {
            100 => Vec::new(),
            101..=199 if phone.ringing => Vec::new(),
            101..=199 => {
                phone.ringing = true;
                call.details
                    .insert("call.ringing_at".into(), clock::utc_now_text());
                // A carrier answered for the flow's prompts is past ringing (its INVITE
                // transaction has its final response; a 180 now would be out of place).
                if call.trunk_dialog.is_some() {
                    return Vec::new();
                }
                let ringing = sip::response_to(&call.trunk_invite, 180, "Ringing")
                    .with_to_tag(&call.trunk_tag);
                let trunk = call.trunk_transaction;
                self.respond(trunk, ringing)
            }
            200..=299 => self.answered(contact, response),
            _ => {
                tracing::info!(%contact, status = response.status, "the agent's phone declined");
                self.phone_failed(transaction, "declined")
            }
        }
    }

    /// The phone's INVITE failed (a 4xx–6xx, or no answer at all): the center re-routes.
    pub(super) fn phone_failed(&mut self, transaction: TransactionId, why: &str) -> Vec<Output> {
        let Some(contact) = self.by_transaction.remove(&transaction) else {
            return Vec::new();
        };
        let Some(call) = self.calls.get_mut(&contact) else {
            return Vec::new();
        };
        let Some(phone) = call.phone.take_if(|phone| phone.transaction == transaction) else {
            return Vec::new();
        };
        tracing::debug!(%contact, why, "phone leg failed");
        self.by_call_id.remove(&phone.invite.headers.call_id);
        self.center.event(Event::Reject {
            agent: phone.agent,
            contact,
        });
        Vec::new()
    }

    /// The phone answered: acknowledge it, answer the carrier, bridge the media.
    fn answered(&mut self, contact: ContactId, response: &Response) -> Vec<Output> {
        let Some(route) = self
            .calls
            .get(&contact)
            .and_then(|call| call.phone.as_ref())
            .map(|phone| phone.route)
        else {
            return Vec::new();
        };
        let via = self.via(route.transport);
        let Some(call) = self.calls.get_mut(&contact) else {
            return Vec::new();
        };
        let Some(phone) = call.phone.as_mut() else {
            return Vec::new();
        };
        if let Some(ack) = &phone.ack {
            // A retransmitted 200: the ACK was lost.
            let ack = Message::Request(ack.clone());
            self.send_via(&ack, route.to, route.transport);
            return Vec::new();
        }
        let remote = sdp::parse(&response.body).and_then(|answer| answer.audio());
        let Ok(dialog) = Dialog::as_uac(&phone.invite, response) else {
            tracing::info!(%contact, "the phone's 200 does not make a dialog");
            return Vec::new();
        };
        let ack = dialog.ack(phone.invite.headers.cseq.seq, via);
        phone.ack = Some(ack.clone());
        phone.dialog = Some(dialog);
        let agent = phone.agent.clone();
        self.send_via(&Message::Request(ack), route.to, route.transport);
        let Ok(remote) = remote else {
            tracing::info!(%contact, "the phone answered without usable audio");
            let call = self.calls.remove(&contact);
            return call
                .map(|call| self.finish(call, Ending::AgentEnded(agent)))
                .unwrap_or_default();
        };
        let Some(call) = self.calls.get_mut(&contact) else {
            return Vec::new();
        };
        call.details
            .insert("call.answered_at".into(), clock::utc_now_text());
        let phone_socket = call.phone_socket.take();
        let recording = call
            .recording
            .then(|| (self.recordings.clone(), call.contact.0));
        // The carrier may have been answered already, for the flow's prompts.
        let outputs = self.answer_trunk(contact);
        let public = self.settings.public_address;
        if let (Some(call), Some(socket)) = (self.calls.get_mut(&contact), phone_socket) {
            let codec = remote.codecs.first().copied().unwrap_or(Codec::Pcmu);
            let agent_leg = Leg::udp(
                socket,
                SocketAddr::new(remote.address, remote.port),
                leg_config(codec, remote.telephone_event),
            );
            let offer = call.phone.as_ref().map(|phone| &phone.invite.body);
            call.hold.phone = Some(hold::Session::new(
                public,
                call.phone_port,
                call.session_id,
                codec,
                String::from_utf8_lossy(offer.map_or(&[][..], Vec::as_slice)).into_owned(),
                SocketAddr::new(remote.address, remote.port),
            ));
            call.prompt_until = None;
            call.asking = false;
            if let Some(media) = &call.media {
                media.connect_agent(agent_leg, recording);
            }
        }
        self.center.event(Event::Accept { agent, contact });
        outputs
    }

    /// BYE from either leg.
    pub(super) fn bye(&mut self, transaction: TransactionId, request: &Request) -> Vec<Output> {
        let call_id = &request.headers.call_id;
        // Only a BYE naming an established dialog (Call-ID and both tags) ends a call, so a
        // stranger who learnt a Call-ID cannot hang it up.
        let dialog = sip::DialogId::of_request(request);
        let in_dialog = |call: &Call| {
            let trunk = call.trunk_dialog.as_ref().map(|dialog| &dialog.id);
            let phone = call.phone.as_ref().and_then(|phone| phone.dialog.as_ref());
            dialog.is_some()
                && (trunk == dialog.as_ref() || phone.map(|dialog| &dialog.id) == dialog.as_ref())
        };
        let contact = self.by_call_id.get(call_id).copied();
        let Some(contact) =
            contact.filter(|contact| self.calls.get(contact).is_some_and(in_dialog))
        else {
            let response = sip::response_to(request, 481, "Call/Transaction Does Not Exist");
            return self.respond(transaction, response);
        };
        let mut outputs = self.respond(transaction, sip::response_to(request, 200, "OK"));
        let Some(mut call) = self.calls.remove(&contact) else {
            return outputs;
        };
        let ending = if *call_id == call.trunk_invite.headers.call_id {
            call.trunk_dialog = None; // that leg is over
            Ending::CustomerLeft
        } else {
            let agent = call
                .phone
                .as_ref()
                .map(|phone| phone.agent.clone())
                .unwrap_or_default();
            if let Some(phone) = &mut call.phone {
                phone.dialog = None;
            }
            Ending::AgentEnded(agent)
        };
        outputs.extend(self.finish(call, ending));
        outputs
    }

    /// The carrier cancelled before the answer (the layer has sent 487).
    pub(super) fn trunk_cancelled(&mut self, invite: TransactionId) -> Vec<Output> {
        let Some(contact) = self.by_transaction.get(&invite).copied() else {
            return Vec::new();
        };
        match self.calls.remove(&contact) {
            Some(call) if call.trunk_transaction == invite => {
                tracing::info!(%contact, "caller cancelled");
                self.finish(call, Ending::CustomerLeft)
            }
            Some(call) => {
                self.calls.insert(contact, call);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// The carrier never acknowledged our 200: end the call.
    pub(super) fn trunk_no_ack(&mut self, transaction: TransactionId) -> Vec<Output> {
        let Some(contact) = self.by_transaction.get(&transaction).copied() else {
            return Vec::new();
        };
        match self.calls.remove(&contact) {
            Some(call) => self.finish(call, Ending::CustomerLeft),
            None => Vec::new(),
        }
    }

    /// Shutdown: every call ends (BYE to answered legs, CANCEL to ringing phones, 480 to
    /// unanswered carriers); the center is stopping too, so it is not told.
    pub(super) fn hang_up_all(&mut self) {
        let calls: Vec<Call> = std::mem::take(&mut self.calls).into_values().collect();
        for call in calls {
            let outputs = self.finish(call, Ending::Center);
            self.drive(outputs);
        }
    }

    /// Ends what is left of a call's legs, stops its media, and tells the center (record
    /// first, then the event) unless the center ended it.
    fn finish(&mut self, mut call: Call, ending: Ending) -> Vec<Output> {
        let mut outputs = Vec::new();
        self.by_call_id.remove(&call.trunk_invite.headers.call_id);
        self.by_transaction.remove(&call.trunk_transaction);
        if call.softphone.take().is_some() {
            self.softphones.detach(call.contact);
        }
        if let Some(phone) = call.phone.take() {
            self.by_call_id.remove(&phone.invite.headers.call_id);
            self.by_transaction.remove(&phone.transaction);
            match phone.dialog {
                Some(mut dialog) => {
                    let route = self.reroute(&phone.agent, phone.route);
                    outputs.extend(self.request_in(
                        &mut dialog,
                        Method::Bye,
                        route.to,
                        route.transport,
                    ));
                }
                None if !matches!(ending, Ending::AgentEnded(_)) => {
                    let phone = PhoneLeg {
                        dialog: None,
                        ..phone
                    };
                    outputs.extend(self.cancel_phone(phone));
                }
                None => {}
            }
        }
        let customer_left = matches!(ending, Ending::CustomerLeft);
        match call.trunk_dialog.take() {
            Some(mut dialog) => {
                outputs.extend(self.request_in(
                    &mut dialog,
                    Method::Bye,
                    call.trunk_source,
                    call.trunk_transport,
                ));
            }
            // Unanswered: refuse the INVITE unless the carrier is the one who gave up.
            None if !customer_left && call.media.is_none() => {
                let response = sip::response_to(&call.trunk_invite, 480, "Temporarily Unavailable")
                    .with_to_tag(&call.trunk_tag);
                outputs.extend(self.respond(call.trunk_transaction, response));
            }
            None => {}
        }
        call.details
            .insert("call.ended_at".into(), clock::utc_now_text());
        call.hold.record(&mut call.details, clock::instant_now());
        let center = std::sync::Arc::clone(&self.center);
        let contact = call.contact;
        let event = match ending {
            Ending::CustomerLeft => Some(Event::CustomerLeft { contact }),
            Ending::AgentEnded(agent) => Some(Event::AgentEnded { agent, contact }),
            Ending::Center => None,
        };
        let details = call.details;
        match call.media.take() {
            Some(media) => {
                let done = media.stop();
                tokio::spawn(async move {
                    let summary = done.await.unwrap_or_default();
                    center.call_record(contact, call_record(details, &summary));
                    if let Some(event) = event {
                        center.event(event);
                    }
                });
            }
            None => {
                center.call_record(contact, call_record(details, &MediaSummary::default()));
                if let Some(event) = event {
                    center.event(event);
                }
            }
        }
        outputs
    }

    /// Sends a request in a dialog (BYE) through a client transaction.
    fn request_in(
        &mut self,
        dialog: &mut Dialog,
        method: Method,
        to: SocketAddr,
        transport: Transport,
    ) -> Vec<Output> {
        let request = dialog.request(method, self.via(transport));
        match self
            .transactions
            .request(request, to, transport, clock::instant_now())
        {
            Ok((_, outputs)) => outputs,
            Err(error) => {
                tracing::debug!(%error, "cannot send an in-dialog request");
                Vec::new()
            }
        }
    }

    pub(super) fn via(&self, transport: Transport) -> Via {
        let branch = format!("z9hG4bK{}", token());
        let mut via = Via::new(
            transport,
            &host(self.public.ip()),
            Some(self.public.port()),
            &branch,
        );
        via.set_param("rport", None);
        via
    }

    fn our_contact(&self, transport: Transport) -> Contact {
        let mut uri = SipUri::new(
            Some("genkan"),
            &host(self.public.ip()),
            Some(self.public.port()),
        );
        if transport.is_reliable() {
            uri.params.push(sip::Param::new("transport", "tcp"));
        }
        Contact::Address(NameAddr::new(uri))
    }

    fn local_sdp(&self, port: u16, session_id: u64) -> Local {
        Local {
            address: self.settings.public_address,
            port,
            session_id,
            version: 1,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            ptime: 20,
        }
    }
}

pub(super) fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn media_codec(codec: Codec) -> media::Codec {
    match codec {
        Codec::Pcmu => media::Codec::Pcmu,
        Codec::Pcma => media::Codec::Pcma,
    }
}

fn leg_config(codec: Codec, telephone_event: Option<u8>) -> LegConfig {
    let [a, b, c, d, e, f, g, h, ..] = random::<10>();
    LegConfig {
        codec: media_codec(codec),
        telephone_event,
        ssrc: u32::from_be_bytes([a, b, c, d]),
        first_sequence: u16::from_be_bytes([e, f]) & 0x7fff,
        first_timestamp: u32::from_be_bytes([g, h, a, e]),
        playout: PlayoutConfig::default(),
    }
}

/// The call's times and media numbers as `call.…` attributes of its contact record.
fn call_record(mut details: BTreeMap<String, String>, summary: &MediaSummary) -> CallRecord {
    if summary.recording.is_some() || summary.customer.sent > 0 {
        for (side, stats) in [("customer", &summary.customer), ("agent", &summary.agent)] {
            let receive = &stats.receive;
            let mut put = |name: &str, value: String| {
                details.insert(format!("call.{side}.{name}"), value);
            };
            put("packets_received", receive.received.to_string());
            put("packets_expected", receive.expected.to_string());
            put("packets_lost", receive.lost.to_string());
            put(
                "jitter_ms",
                format!("{:.1}", receive.jitter.as_secs_f64() * 1000.0),
            );
            put("packets_sent", stats.sent.to_string());
        }
    }
    let recording = summary.recording.as_ref().map(|(name, duration)| {
        details.insert(
            "call.recording_seconds".into(),
            format!("{:.1}", duration.as_secs_f64()),
        );
        name.clone()
    });
    CallRecord { recording, details }
}
