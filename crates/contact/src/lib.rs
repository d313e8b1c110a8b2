//! genkan's contact-center core: contacts on voice and chat, agents and their presence, queues
//! with longest-idle routing and a queue per agent, hours of operation, and flows as data.
//!
//! What it is: a state machine. [`Center::handle`] takes one [`Event`] (a chat started, a
//! lookup answered, an agent accepted, a second passed) and the time, changes its state, and
//! returns [`Command`]s for the adapters to carry out (say this, look that up, offer this
//! contact to that agent, the contact ended). The same events in the same order give the same
//! commands, which is how the routing traces are tested.
//!
//! What it is not: I/O. Looking customers up, calling webhooks, WebSockets, SIP and the
//! contact records' storage belong to the server; the core never reads the clock (time comes
//! in with every event) or a time-zone database (zones come in with the hours).
//!
//! Invariants (tested by the property tests): a contact is offered to at most one agent at a
//! time; no agent is offered a contact while not Available or without room for it; every
//! contact ends exactly once, in one terminal outcome.

mod agent;
mod center;
pub mod diagram;
pub mod flow;
mod hours;
pub mod webhook;

pub use agent::{Agent, Presence, Status};
pub use center::{Center, Command, Contact, Customer, Event, Outcome, Settings, Stage};
pub use flow::{Block, Flow, FlowProblem};
pub use hours::Hours;

use serde::Serialize;

/// A contact's id, given by the adapter that saw it begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ContactId(pub u64);

impl std::fmt::Display for ContactId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "contact-{}", self.0)
    }
}

/// How the customer reaches the center.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Channel {
    /// A phone call.
    Voice,
    /// A chat in the widget or the chat page.
    Chat,
}

/// Why the center refused an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// No contact has that id (or it has ended).
    #[error("{0} does not exist or has ended")]
    NoSuchContact(ContactId),
    /// A contact with that id exists already.
    #[error("{0} exists already")]
    DuplicateContact(ContactId),
    /// No agent has that name.
    #[error("no agent `{0}`")]
    NoSuchAgent(String),
    /// The event does not fit the contact's or agent's state (a stale click, a late answer).
    #[error("{0}")]
    OutOfTurn(String),
    /// The center's configuration is unsound.
    #[error("{0}")]
    Config(String),
}
