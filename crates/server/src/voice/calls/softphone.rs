//! Calls answered in the browser: an agent whose desk has a softphone is rung on the desk
//! (the offer and its screen pop), not on a SIP phone; the desk's accept comes back from the
//! center as `Connect`, which answers the carrier and bridges the call to the browser.

use contact::ContactId;
use sip::Output;
use sip::sdp::Codec;

use media::Side;

use super::{Ending, hold, leg_config};
use crate::clock;
use crate::voice::media::{Leg, Wire};
use crate::voice::softphone::ToSwitch;
use crate::voice::switch::Switch;

impl Switch {
    /// The center offered the call to an agent with a softphone: the desk rings, and the
    /// carrier hears that it does.
    pub(super) fn ring_softphone(&mut self, contact: ContactId) -> Vec<Output> {
        let Some(call) = self.calls.get_mut(&contact) else {
            return Vec::new();
        };
        call.details
            .entry("call.ringing_at".into())
            .or_insert_with(clock::utc_now_text);
        // Answered already for the flow's prompts: its INVITE has had its final response.
        if call.trunk_dialog.is_some() || call.media.is_some() {
            return Vec::new();
        }
        let ringing =
            sip::response_to(&call.trunk_invite, 180, "Ringing").with_to_tag(&call.trunk_tag);
        let trunk = call.trunk_transaction;
        self.respond(trunk, ringing)
    }

    /// The agent accepted on their desk: answer the carrier and bridge the call to their
    /// softphone. An agent with no softphone (and no SIP phone ringing) holds the contact
    /// without audio; that is the center's business, not a call failure.
    pub(super) fn connect_softphone(&mut self, contact: ContactId, agent: &str) -> Vec<Output> {
        let Some(call) = self.calls.get(&contact) else {
            return Vec::new();
        };
        if call.phone.is_some() || call.softphone.is_some() {
            return Vec::new(); // the call is a SIP phone's, or bridged already
        }
        let Some(browser) = self.softphones.attach(agent, contact) else {
            tracing::info!(%contact, agent, "accepted at a desk with no phone: no audio");
            return Vec::new();
        };
        let recording = call.recording.then(|| (self.recordings.clone(), contact.0));
        let outputs = self.answer_trunk(contact);
        let Some(call) = self.calls.get_mut(&contact) else {
            return outputs;
        };
        call.softphone = Some(agent.to_owned());
        // Nobody else will use the phone leg's port; without it, the flow's prompts know an
        // agent is on the line.
        call.phone_socket = None;
        call.prompt_until = None;
        call.asking = false;
        call.details
            .insert("call.answered_at".into(), clock::utc_now_text());
        call.details
            .insert("call.agent_phone".into(), "browser".into());
        if let Some(media) = &call.media {
            let leg = Leg {
                wire: Wire::Browser(browser),
                config: leg_config(Codec::Pcmu, None),
            };
            media.connect_agent(leg, recording);
        }
        tracing::info!(%contact, agent, "call bridged to the browser softphone");
        outputs
    }

    /// What the softphones' task tells: a softphone gone, or a hold from the desk.
    pub(crate) fn softphone_note(&mut self, note: ToSwitch) {
        match note {
            ToSwitch::Gone { agent, contact } => self.softphone_gone(&agent, contact),
            ToSwitch::Hold {
                agent,
                contact,
                on,
                reply,
            } => {
                let call = self
                    .calls
                    .get_mut(&contact)
                    .filter(|call| call.softphone.as_deref() == Some(agent.as_str()));
                let theirs = call.is_some();
                if let Some(call) = call {
                    hold::hold(call, Side::Agent, on, clock::instant_now());
                }
                let _ = reply.send(theirs);
            }
        }
    }

    /// The agent's softphone went away during the call: that is their hang-up.
    fn softphone_gone(&mut self, agent: &str, contact: ContactId) {
        let theirs = self
            .calls
            .get(&contact)
            .is_some_and(|call| call.softphone.as_deref() == Some(agent));
        if !theirs {
            return;
        }
        let outputs = match self.calls.remove(&contact) {
            Some(call) => self.finish(call, Ending::AgentEnded(agent.to_owned())),
            None => Vec::new(),
        };
        self.drive(outputs);
    }
}
