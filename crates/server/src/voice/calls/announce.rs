//! The flow's voice blocks on a call: say and get-input play a prompt to the caller, keys
//! come back from the media task as `Input`, and a hang-up the center asks for waits until
//! the caller has heard what was queued.
//!
//! The carrier's INVITE is answered (200 with genkan's SDP) when the flow first plays
//! something, as Amazon Connect answers at the start of its flow: early media (183) would
//! leave the call unanswered for as long as the caller listens to a menu, and some carriers
//! cut unanswered calls or do not pass their audio. The cost is that a caller who only hears
//! "nobody is available" is billed for a short answered call.

use std::net::SocketAddr;
use std::time::Duration;

use contact::ContactId;
use sip::{Dialog, Output};

use super::hold::Session;
use super::{Call, Ending, leg_config, media_codec};
use crate::clock;
use crate::voice::media::{self, Leg};
use crate::voice::switch::Switch;

/// Time after the last prompt frame before the BYE, so the frames in flight arrive first.
const AFTER_PROMPT: Duration = Duration::from_millis(200);

impl Switch {
    /// Plays what the flow says to the caller, answering the carrier first if needed.
    /// `asking`: it is a get-input prompt, which a key or the flow's next words cut short.
    pub(super) fn say(&mut self, contact: ContactId, text: &str, asking: bool) -> Vec<Output> {
        let outputs = self.answer_trunk(contact);
        let prompt = self.prompts.get(text);
        let Some(call) = self.calls.get_mut(&contact) else {
            return outputs;
        };
        // No media: the call could not be answered. No phone socket left: an agent is on the
        // line, and the conversation is theirs.
        if call.media.is_none() || call.phone_socket.is_none() {
            return outputs;
        }
        let now = clock::instant_now();
        // After a question the flow moved on (a key, or the timeout): what follows starts now.
        let interrupt = call.asking;
        if interrupt {
            call.prompt_until = None;
        }
        call.asking = asking;
        let frames = prompt.frames(media_codec(call.trunk_answer.codec)).clone();
        let length = Duration::from_millis(20 * frames.len() as u64);
        let start = call
            .prompt_until
            .filter(|until| *until > now)
            .unwrap_or(now);
        call.prompt_until = Some(start + length);
        if let Some(media) = &call.media {
            if interrupt {
                media.stop_prompt();
            }
            media.play(frames);
        }
        outputs
    }

    /// Answers the carrier's INVITE and starts the call's media with the caller's leg alone,
    /// unless that has happened already.
    pub(super) fn answer_trunk(&mut self, contact: ContactId) -> Vec<Output> {
        let Some(call) = self.calls.get(&contact) else {
            return Vec::new();
        };
        let our_contact = self.our_contact(call.trunk_transport);
        let center = std::sync::Arc::clone(&self.center);
        let public = self.settings.public_address;
        let Some(call) = self.calls.get_mut(&contact) else {
            return Vec::new();
        };
        let Some(socket) = call.customer_socket.take() else {
            return Vec::new();
        };
        let port = socket.local_addr().map_or(0, |address| address.port());
        let mut ok = sip::response_to(&call.trunk_invite, 200, "OK").with_to_tag(&call.trunk_tag);
        ok.headers.contact = vec![our_contact];
        ok.headers.content_type = Some("application/sdp".into());
        ok.body = call.trunk_answer.sdp.clone().into_bytes();
        call.trunk_dialog = Dialog::as_uas(&call.trunk_invite, &ok).ok();
        let customer = Leg::udp(
            socket,
            SocketAddr::new(
                call.trunk_answer.remote.address,
                call.trunk_answer.remote.port,
            ),
            leg_config(call.trunk_answer.codec, call.trunk_answer.telephone_event),
        );
        call.hold.trunk = Some(Session::new(
            public,
            port,
            call.session_id,
            call.trunk_answer.codec,
            call.trunk_answer.sdp.clone(),
            SocketAddr::new(
                call.trunk_answer.remote.address,
                call.trunk_answer.remote.port,
            ),
        ));
        call.media = Some(media::start(customer, contact, center));
        let trunk = call.trunk_transaction;
        self.respond(trunk, ok)
    }

    /// The center ended the contact: hang up now, or once the caller has heard the prompts
    /// still queued (the seed's "nobody available" is said just before the end).
    pub(super) fn center_ended(&mut self, contact: ContactId) -> Vec<Output> {
        let now = clock::instant_now();
        let playing = self
            .calls
            .get(&contact)
            .and_then(|call: &Call| call.prompt_until)
            .filter(|until| *until > now);
        if let Some(until) = playing {
            let wake = self.wake.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(tokio::time::Instant::from_std(until + AFTER_PROMPT))
                    .await;
                let _ = wake.send(contact);
            });
            return Vec::new();
        }
        match self.calls.remove(&contact) {
            Some(call) => self.finish(call, Ending::Center),
            None => {
                // Not a call of ours (or over already): the center's row need not wait for a
                // record that will never come.
                self.center
                    .call_record(contact, crate::center::runtime::CallRecord::default());
                Vec::new()
            }
        }
    }

    /// A hang-up that waited for its prompt is due (the call may be gone already).
    pub(crate) fn prompt_played(&mut self, contact: ContactId) {
        let outputs = match self.calls.remove(&contact) {
            Some(call) => self.finish(call, Ending::Center),
            None => Vec::new(),
        };
        self.drive(outputs);
    }
}
