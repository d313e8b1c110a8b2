//! Agents: what they chose (Offline, Available, Away), what they hold (a call, chats, an offer,
//! wrap-ups), and the presence everyone else sees, derived from both.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::Serialize;

use crate::{Channel, ContactId};

/// The state an agent sets with the presence switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// Signed out of the desktop: no contacts.
    Offline,
    /// Ready for contacts.
    Available,
    /// Signed in but taking no new contacts (break, meeting, or a missed offer).
    Away,
}

/// What others see of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Presence {
    /// Signed out.
    Offline,
    /// Ready and holding nothing.
    Available,
    /// Ringing or talking or chatting.
    OnContact,
    /// Writing up a finished contact.
    AfterContactWork,
    /// Signed in, taking no contacts.
    Away,
}

/// One agent and what they hold.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Login name (the identity users' name).
    pub name: String,
    /// What the agent chose.
    pub status: Status,
    /// Queues the agent answers, in the order the routing profile lists them.
    pub queues: Vec<String>,
    /// Chats at once.
    pub max_chats: usize,
    /// Since when the agent has been free: the longest-idle agent is offered first.
    pub idle_since: Timestamp,
    pub(crate) offered: Option<ContactId>,
    pub(crate) call: Option<ContactId>,
    pub(crate) chats: BTreeSet<ContactId>,
    pub(crate) wrap_ups: BTreeMap<ContactId, (Channel, Timestamp)>,
}

impl Agent {
    /// A signed-out agent answering `queues`.
    pub fn new(name: &str, queues: &[&str], max_chats: usize, now: Timestamp) -> Self {
        Self {
            name: name.to_owned(),
            status: Status::Offline,
            queues: queues.iter().map(|queue| (*queue).to_owned()).collect(),
            max_chats: max_chats.max(1),
            idle_since: now,
            offered: None,
            call: None,
            chats: BTreeSet::new(),
            wrap_ups: BTreeMap::new(),
        }
    }

    /// The presence others see.
    pub fn presence(&self) -> Presence {
        match self.status {
            Status::Offline => Presence::Offline,
            _ if self.offered.is_some() || self.call.is_some() || !self.chats.is_empty() => {
                Presence::OnContact
            }
            _ if !self.wrap_ups.is_empty() => Presence::AfterContactWork,
            Status::Available => Presence::Available,
            Status::Away => Presence::Away,
        }
    }

    /// Contacts held (a call, chats, an offer, wrap-ups): fewer is offered first.
    pub fn load(&self) -> usize {
        usize::from(self.offered.is_some())
            + usize::from(self.call.is_some())
            + self.chats.len()
            + self.wrap_ups.len()
    }

    /// Whether a contact on `channel` may be offered now: Available, no offer ringing, and room.
    /// A call needs the agent free of everything; chats share the agent up to `max_chats`, and
    /// never beside a call or a call's wrap-up.
    pub fn can_take(&self, channel: Channel) -> bool {
        if self.status != Status::Available || self.offered.is_some() || self.call.is_some() {
            return false;
        }
        let call_wrap_up = self
            .wrap_ups
            .values()
            .any(|(channel, _)| *channel == Channel::Voice);
        match channel {
            Channel::Voice => self.chats.is_empty() && self.wrap_ups.is_empty(),
            Channel::Chat => {
                !call_wrap_up && self.chats.len() + self.wrap_ups.len() < self.max_chats
            }
        }
    }

    /// Contacts the agent is connected to.
    pub fn contacts(&self) -> impl Iterator<Item = ContactId> + '_ {
        self.call.iter().copied().chain(self.chats.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_and_capacity_follow_what_the_agent_holds() {
        let now: Timestamp = "2026-12-04T00:00:00Z".parse().unwrap();
        let mut agent = Agent::new("agent1", &["support"], 2, now);
        assert_eq!(agent.presence(), Presence::Offline);
        assert!(!agent.can_take(Channel::Chat));
        agent.status = Status::Available;
        assert_eq!(agent.presence(), Presence::Available);
        assert!(agent.can_take(Channel::Voice) && agent.can_take(Channel::Chat));
        agent.chats.insert(ContactId(1));
        assert_eq!(agent.presence(), Presence::OnContact);
        assert!(!agent.can_take(Channel::Voice), "no call beside a chat");
        assert!(agent.can_take(Channel::Chat), "a second chat fits");
        agent.wrap_ups.insert(ContactId(2), (Channel::Chat, now));
        assert!(
            !agent.can_take(Channel::Chat),
            "a wrap-up holds a chat slot"
        );
        agent.chats.clear();
        assert_eq!(agent.presence(), Presence::AfterContactWork);
        agent.wrap_ups.clear();
        agent.wrap_ups.insert(ContactId(3), (Channel::Voice, now));
        assert!(
            !agent.can_take(Channel::Chat),
            "nothing during a call's wrap-up"
        );
        agent.wrap_ups.clear();
        agent.status = Status::Away;
        assert_eq!(agent.presence(), Presence::Away);
        assert!(!agent.can_take(Channel::Chat));
    }
}
