//! What the contact center's event loop tells agents' desks, customers' chats and supervisors.

use std::collections::BTreeMap;

use contact::{Channel, Presence};
use serde::Serialize;

/// A past contact as the agent's screen shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PastContact {
    /// Id.
    pub id: i64,
    /// `voice` or `chat`.
    pub channel: String,
    /// When it began.
    pub at: String,
    /// Who took it.
    pub agent: Option<String>,
    /// How it ended.
    pub outcome: String,
    /// The agent's notes.
    pub notes: String,
    /// What was written in the chat (the first lines of a long one).
    pub transcript: Vec<TranscriptLine>,
}

/// One line of a chat's transcript, as the contact record keeps it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TranscriptLine {
    /// When (UTC, RFC 3339).
    pub at: String,
    /// `customer`, `center` or the agent's name.
    pub from: String,
    /// The text.
    pub text: String,
}

/// What an agent's desktop is told.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToAgent {
    /// The agent's presence.
    Presence {
        /// Now.
        presence: Presence,
    },
    /// A contact rings, with the customer's record and history (the screen pop).
    Offer {
        /// Contact id.
        contact: u64,
        /// Voice or chat.
        channel: Channel,
        /// Number or address.
        from: String,
        /// The customer's record id, if found.
        record_id: Option<i64>,
        /// The customer's fields, in layout order.
        customer: Vec<(String, String)>,
        /// Contact attributes.
        attributes: BTreeMap<String, String>,
        /// Past contacts, newest first.
        history: Vec<PastContact>,
        /// For a customer nobody knew: the fields of the form that creates their record.
        new_customer: Vec<String>,
    },
    /// The "new customer" form made this record; the contact is theirs now.
    CustomerCreated {
        /// Contact id.
        contact: u64,
        /// The new record's id.
        record_id: i64,
        /// Its fields, in layout order.
        customer: Vec<(String, String)>,
    },
    /// Something the agent asked for did not happen.
    Problem {
        /// Contact id.
        contact: u64,
        /// What went wrong, for the agent.
        message: String,
    },
    /// The offer stopped ringing.
    Withdrawn {
        /// Contact id.
        contact: u64,
        /// Why.
        reason: String,
    },
    /// Connected to the customer.
    Connected {
        /// Contact id.
        contact: u64,
    },
    /// A chat message from the customer.
    Message {
        /// Contact id.
        contact: u64,
        /// The text.
        text: String,
    },
    /// The contact ended; wrap-up until the time given.
    Ended {
        /// Contact id.
        contact: u64,
    },
    /// After-contact work until then.
    WrapUp {
        /// Contact id.
        contact: u64,
        /// RFC 3339.
        until: String,
    },
    /// Another tab of the same agent took over; this one is no longer told anything.
    Replaced,
}

/// What a customer's chat is told.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToCustomer {
    /// A message from the center (a flow's prompt) or the agent.
    Message {
        /// `center` or `agent`.
        from: String,
        /// The text.
        text: String,
    },
    /// Choose one of these.
    Choice {
        /// The question.
        prompt: String,
        /// The answers.
        choices: Vec<String>,
    },
    /// Waiting for an agent.
    Waiting,
    /// An agent joined.
    Connected,
    /// The chat is over.
    Ended,
}

/// One agent as the supervisor sees them.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// Name.
    pub name: String,
    /// Presence now.
    pub presence: Presence,
    /// Contacts held (ringing, connected, wrapping up).
    pub contacts: usize,
}

/// One queue as the supervisor sees it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueView {
    /// Name.
    pub name: String,
    /// Contacts waiting (or ringing) in it.
    pub waiting: usize,
    /// Seconds the longest-waiting one has waited.
    pub oldest_wait_seconds: Option<i64>,
}

/// The center right now.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Agents.
    pub agents: Vec<AgentView>,
    /// Queues.
    pub queues: Vec<QueueView>,
}
