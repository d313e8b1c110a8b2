//! The center: contacts moving through flows into queues and to agents.
//!
//! Each [`Event`] is handled in three steps: the event itself (a flow step, an accept, a
//! timeout), then routing (every queued contact that an agent can take now is offered, the
//! agent's own queue first, then the longest-waiting contacts to the longest-idle agents), then
//! presence (a [`Command::Presence`] for every agent whose presence changed).

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::agent::{Agent, Presence, Status};
use crate::flow::Flow;
use crate::{Channel, ContactError, ContactId, Hours};

mod steps;

/// Flow steps one event may run before the flow is taken to loop.
const MAX_STEPS: usize = 200;

/// Timing rules.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long an offer rings before it is withdrawn and the agent set Away (missed).
    pub offer_timeout: SignedDuration,
    /// After-contact work: how long an agent may write up before being free again.
    pub wrap_up_timeout: SignedDuration,
    /// The flow every contact starts in.
    pub main_flow: String,
}

/// The customer a lookup found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    /// The record's id in the customers table.
    pub record_id: i64,
    /// Display name.
    pub name: String,
    /// Login name of the agent who looks after them, if any.
    pub assigned_agent: Option<String>,
}

/// Where a contact is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Stage {
    /// Running flow blocks.
    InFlow,
    /// Waiting for the customer lookup.
    LookingUp,
    /// Waiting for a webhook, until the deadline.
    CallingWebhook {
        /// When the error branch is taken.
        until: Timestamp,
    },
    /// Waiting for a key or a choice, until the deadline.
    WaitingForInput {
        /// When `no_match` is taken.
        until: Timestamp,
    },
    /// In a queue (or an agent's own queue), waiting for an agent.
    Queued,
    /// Ringing at one agent.
    Offered {
        /// The agent.
        agent: String,
        /// When the offer is withdrawn.
        until: Timestamp,
    },
    /// Talking or chatting with an agent.
    Connected {
        /// The agent.
        agent: String,
    },
}

/// How a contact ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// An agent handled it.
    Completed,
    /// The customer left before an agent answered.
    Abandoned,
    /// The flow found nobody available and said so.
    NoAgentAvailable,
    /// Out of hours: the flow said so.
    OutOfHours,
    /// The flow ended it another way.
    EndedByFlow,
    /// The flow could not go on (a loop, a missing block).
    Error,
}

/// One contact.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    /// Id.
    pub id: ContactId,
    /// Voice or chat.
    pub channel: Channel,
    /// Caller's number, or the chat's e-mail or phone.
    pub from: String,
    /// Where it is.
    pub stage: Stage,
    /// Contact attributes (flow-set, webhook answers, `customer.*`).
    pub attributes: BTreeMap<String, String>,
    /// The customer, when a lookup found one.
    pub customer: Option<Customer>,
    /// The queue it is (or was) in.
    pub queue: Option<String>,
    /// The agent whose own queue it waits in.
    pub wanted_agent: Option<String>,
    /// The agent who took it.
    pub agent: Option<String>,
    /// Whether the call is being recorded.
    pub recording: bool,
    /// Flow run when the agent ends the contact.
    pub disconnect_flow: Option<String>,
    /// When it began.
    pub initiated: Timestamp,
    /// When it entered a queue.
    pub queued: Option<Timestamp>,
    /// When an agent accepted it.
    pub connected: Option<Timestamp>,
    /// When it ended.
    pub ended: Option<Timestamp>,
    /// How it ended.
    pub outcome: Option<Outcome>,
    at: (String, String),
    declined_by: BTreeSet<String>,
    pending: Option<Outcome>,
}

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// An agent used the presence switch (or signed in or out).
    AgentStatus {
        /// Agent.
        agent: String,
        /// New status.
        status: Status,
    },
    /// A call came in or a chat started.
    ContactStarted {
        /// Its id.
        contact: ContactId,
        /// Voice or chat.
        channel: Channel,
        /// Caller's number, chat e-mail or phone.
        from: String,
        /// Attributes given at the start (the chat form's fields).
        attributes: BTreeMap<String, String>,
    },
    /// The customer lookup answered.
    CustomerFound {
        /// Contact.
        contact: ContactId,
        /// The customer, or `None` for an unknown caller.
        customer: Option<Customer>,
    },
    /// The customer lookup failed.
    LookupFailed {
        /// Contact.
        contact: ContactId,
    },
    /// The webhook answered a flat string map.
    WebhookAnswered {
        /// Contact.
        contact: ContactId,
        /// Its answer.
        attributes: BTreeMap<String, String>,
    },
    /// The webhook failed (HTTP error, garbage, refused connection).
    WebhookFailed {
        /// Contact.
        contact: ContactId,
    },
    /// The customer pressed keys or chose.
    Input {
        /// Contact.
        contact: ContactId,
        /// Keys or choice.
        value: String,
    },
    /// The agent accepted the offer.
    Accept {
        /// Agent.
        agent: String,
        /// Contact.
        contact: ContactId,
    },
    /// The agent rejected the offer.
    Reject {
        /// Agent.
        agent: String,
        /// Contact.
        contact: ContactId,
    },
    /// The customer hung up or closed the chat.
    CustomerLeft {
        /// Contact.
        contact: ContactId,
    },
    /// The agent ended the contact.
    AgentEnded {
        /// Agent.
        agent: String,
        /// Contact.
        contact: ContactId,
    },
    /// The agent finished the write-up.
    WrapUpDone {
        /// Agent.
        agent: String,
        /// Contact.
        contact: ContactId,
    },
    /// Time passed: offers, inputs, webhooks and wrap-ups that are due time out.
    Tick,
}

/// Something for the adapters to do.
#[derive(Debug, Clone, Serialize)]
pub enum Command {
    /// Play a prompt (call) or send a message (chat).
    Say {
        /// Contact.
        contact: ContactId,
        /// Text, attributes filled in.
        text: String,
    },
    /// Look the customer up by this number or address.
    LookUpCustomer {
        /// Contact.
        contact: ContactId,
        /// Voice or chat.
        channel: Channel,
        /// What to look up.
        key: String,
    },
    /// Call the webhook with the contact's Lambda-style event.
    InvokeWebhook {
        /// Contact.
        contact: ContactId,
        /// Service.
        url: String,
        /// Milliseconds to wait.
        timeout_ms: u32,
        /// The event's parameters, attributes filled in.
        parameters: BTreeMap<String, String>,
    },
    /// Ask for keys or a choice.
    AskInput {
        /// Contact.
        contact: ContactId,
        /// What is asked.
        prompt: String,
        /// The inputs that lead somewhere.
        choices: Vec<String>,
    },
    /// Recording on or off.
    SetRecording {
        /// Contact.
        contact: ContactId,
        /// On.
        on: bool,
    },
    /// The contact entered a queue (or an agent's own queue).
    Queued {
        /// Contact.
        contact: ContactId,
        /// Queue.
        queue: String,
        /// The agent whose own queue it is, if any.
        agent: Option<String>,
    },
    /// Ring this agent with this contact (and pop the customer's record on their screen).
    Offer {
        /// Contact.
        contact: ContactId,
        /// Agent.
        agent: String,
    },
    /// The offer stopped ringing.
    OfferWithdrawn {
        /// Contact.
        contact: ContactId,
        /// Agent.
        agent: String,
        /// `rejected`, `no answer`, `customer left` or `agent away`.
        reason: &'static str,
    },
    /// Connect the customer and the agent.
    Connect {
        /// Contact.
        contact: ContactId,
        /// Agent.
        agent: String,
    },
    /// The agent is in after-contact work for this contact until then.
    WrapUp {
        /// Agent.
        agent: String,
        /// Contact.
        contact: ContactId,
        /// When it ends by itself.
        until: Timestamp,
    },
    /// An agent's presence changed.
    Presence {
        /// Agent.
        agent: String,
        /// New presence.
        presence: Presence,
    },
    /// The contact ended: the whole record, to be stored.
    Ended {
        /// The contact as it ended.
        contact: Box<Contact>,
    },
}

/// A queue: its hours.
#[derive(Debug, Clone)]
struct Queue {
    hours: Hours,
}

/// The contact center's state.
#[derive(Debug, Clone)]
pub struct Center {
    settings: Settings,
    flows: BTreeMap<String, Flow>,
    queues: BTreeMap<String, Queue>,
    agents: BTreeMap<String, Agent>,
    contacts: BTreeMap<ContactId, Contact>,
    /// Contacts that entered a queue and may still wait there (see `route`).
    waiting: BTreeSet<ContactId>,
}

impl Center {
    /// A center with these queues (name → hours), agents and flows. Every flow must be sound
    /// and the main flow must exist.
    pub fn new(
        settings: Settings,
        queues: BTreeMap<String, Hours>,
        agents: Vec<Agent>,
        flows: Vec<Flow>,
    ) -> Result<Self, ContactError> {
        let queue_names: BTreeSet<String> = queues.keys().cloned().collect();
        let flow_names: BTreeSet<String> = flows.iter().map(|flow| flow.name.clone()).collect();
        if !flow_names.contains(&settings.main_flow) {
            return Err(ContactError::Config(format!(
                "the main flow `{}` does not exist",
                settings.main_flow
            )));
        }
        let problems: Vec<String> = flows
            .iter()
            .flat_map(|flow| flow.problems(&queue_names, &flow_names))
            .map(|problem| problem.to_string())
            .collect();
        if !problems.is_empty() {
            return Err(ContactError::Config(problems.join("; ")));
        }
        for agent in &agents {
            if let Some(queue) = agent
                .queues
                .iter()
                .find(|queue| !queues.contains_key(*queue))
            {
                return Err(ContactError::Config(format!(
                    "agent `{}` answers queue `{queue}`, which does not exist",
                    agent.name
                )));
            }
        }
        Ok(Self {
            settings,
            flows: flows
                .into_iter()
                .map(|flow| (flow.name.clone(), flow))
                .collect(),
            queues: queues
                .into_iter()
                .map(|(name, hours)| (name, Queue { hours }))
                .collect(),
            agents: agents
                .into_iter()
                .map(|agent| (agent.name.clone(), agent))
                .collect(),
            contacts: BTreeMap::new(),
            waiting: BTreeSet::new(),
        })
    }

    /// A live contact.
    pub fn contact(&self, id: ContactId) -> Option<&Contact> {
        self.contacts.get(&id)
    }

    /// Live contacts.
    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values()
    }

    /// An agent.
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.get(name)
    }

    /// Every agent.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    /// The queues' names.
    pub fn queue_names(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    /// The flows.
    pub fn flows(&self) -> impl Iterator<Item = &Flow> {
        self.flows.values()
    }

    /// The earliest moment a [`Event::Tick`] would change something, for the event loop's timer.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let contacts = self
            .contacts
            .values()
            .filter_map(|contact| match &contact.stage {
                Stage::CallingWebhook { until }
                | Stage::WaitingForInput { until }
                | Stage::Offered { until, .. } => Some(*until),
                _ => None,
            });
        let wrap_ups = self
            .agents
            .values()
            .flat_map(|agent| agent.wrap_ups.values().map(|(_, until)| *until));
        contacts.chain(wrap_ups).min()
    }

    /// Handles one event at `now`; the commands say what the adapters must do, in order.
    pub fn handle(&mut self, event: Event, now: Timestamp) -> Result<Vec<Command>, ContactError> {
        // Agents are fixed when the center is made, so their order is the same after the event.
        let before: Vec<Presence> = self.agents.values().map(Agent::presence).collect();
        let mut out = Vec::new();
        self.apply(event, now, &mut out)?;
        self.route(now, &mut out);
        for (agent, was) in self.agents.values().zip(before) {
            let presence = agent.presence();
            if presence != was {
                out.push(Command::Presence {
                    agent: agent.name.clone(),
                    presence,
                });
            }
        }
        Ok(out)
    }

    fn apply(
        &mut self,
        event: Event,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) -> Result<(), ContactError> {
        match event {
            Event::AgentStatus { agent, status } => self.set_status(&agent, status, now, out),
            Event::ContactStarted {
                contact,
                channel,
                from,
                attributes,
            } => {
                if self.contacts.contains_key(&contact) {
                    return Err(ContactError::DuplicateContact(contact));
                }
                let flow = &self.settings.main_flow;
                let start = self
                    .flows
                    .get(flow)
                    .map(|flow| flow.start.clone())
                    .unwrap_or_default();
                self.contacts.insert(
                    contact,
                    Contact {
                        id: contact,
                        channel,
                        from,
                        stage: Stage::InFlow,
                        attributes,
                        customer: None,
                        queue: None,
                        wanted_agent: None,
                        agent: None,
                        recording: false,
                        disconnect_flow: None,
                        initiated: now,
                        queued: None,
                        connected: None,
                        ended: None,
                        outcome: None,
                        at: (flow.clone(), start),
                        declined_by: BTreeSet::new(),
                        pending: None,
                    },
                );
                self.run(contact, now, out);
                Ok(())
            }
            Event::CustomerFound { contact, customer } => {
                self.expect_stage(
                    contact,
                    |stage| *stage == Stage::LookingUp,
                    "no lookup is pending",
                )?;
                let branch = if customer.is_some() {
                    "found"
                } else {
                    "not_found"
                };
                if let (Some(found), Some(record)) = (&customer, self.contacts.get_mut(&contact)) {
                    let set = &mut record.attributes;
                    set.insert("customer.record_id".into(), found.record_id.to_string());
                    set.insert("customer.name".into(), found.name.clone());
                    if let Some(agent) = &found.assigned_agent {
                        set.insert("customer.assigned_agent".into(), agent.clone());
                    }
                    record.customer = Some(found.clone());
                }
                self.follow(contact, branch, now, out);
                Ok(())
            }
            Event::LookupFailed { contact } => {
                self.expect_stage(
                    contact,
                    |stage| *stage == Stage::LookingUp,
                    "no lookup is pending",
                )?;
                self.follow(contact, "error", now, out);
                Ok(())
            }
            Event::WebhookAnswered {
                contact,
                attributes,
            } => {
                self.expect_stage(
                    contact,
                    |stage| matches!(stage, Stage::CallingWebhook { .. }),
                    "no webhook is pending",
                )?;
                if let Some(record) = self.contacts.get_mut(&contact) {
                    record.attributes.extend(attributes);
                }
                self.follow(contact, "ok", now, out);
                Ok(())
            }
            Event::WebhookFailed { contact } => {
                self.expect_stage(
                    contact,
                    |stage| matches!(stage, Stage::CallingWebhook { .. }),
                    "no webhook is pending",
                )?;
                self.follow(contact, "error", now, out);
                Ok(())
            }
            Event::Input { contact, value } => {
                self.expect_stage(
                    contact,
                    |stage| matches!(stage, Stage::WaitingForInput { .. }),
                    "no input is asked for",
                )?;
                self.choose(contact, Some(value.trim()), now, out);
                Ok(())
            }
            Event::Accept { agent, contact } => self.accept(&agent, contact, now, out),
            Event::Reject { agent, contact } => {
                self.expect_offer(&agent, contact)?;
                self.withdraw(contact, "rejected", out);
                Ok(())
            }
            Event::CustomerLeft { contact } => {
                let stage = self
                    .contacts
                    .get(&contact)
                    .map(|record| record.stage.clone())
                    .ok_or(ContactError::NoSuchContact(contact))?;
                match stage {
                    Stage::Offered { .. } => self.withdraw(contact, "customer left", out),
                    Stage::Connected { agent } => self.release(&agent, contact, now, out),
                    _ => {}
                }
                let outcome = if self
                    .contacts
                    .get(&contact)
                    .is_some_and(|c| c.connected.is_some())
                {
                    Outcome::Completed
                } else {
                    Outcome::Abandoned
                };
                self.end(contact, outcome, now, out);
                Ok(())
            }
            Event::AgentEnded { agent, contact } => {
                self.expect_stage(
                    contact,
                    |stage| matches!(stage, Stage::Connected { agent: holder } if *holder == agent),
                    "the agent is not connected to it",
                )?;
                self.release(&agent, contact, now, out);
                let closing = self
                    .contacts
                    .get(&contact)
                    .and_then(|c| c.disconnect_flow.clone());
                match closing
                    .and_then(|flow| self.flows.get(&flow).map(|f| (flow, f.start.clone())))
                {
                    Some(at) => {
                        if let Some(record) = self.contacts.get_mut(&contact) {
                            record.at = at;
                            record.stage = Stage::InFlow;
                            record.pending = Some(Outcome::Completed);
                        }
                        self.run(contact, now, out);
                    }
                    None => self.end(contact, Outcome::Completed, now, out),
                }
                Ok(())
            }
            Event::WrapUpDone { agent, contact } => {
                let holder = self
                    .agents
                    .get_mut(&agent)
                    .ok_or_else(|| ContactError::NoSuchAgent(agent.clone()))?;
                if holder.wrap_ups.remove(&contact).is_none() {
                    return Err(ContactError::OutOfTurn(format!(
                        "{agent} is not wrapping up {contact}"
                    )));
                }
                if holder.load() == 0 {
                    holder.idle_since = now;
                }
                Ok(())
            }
            Event::Tick => {
                self.time_out(now, out);
                Ok(())
            }
        }
    }
}
