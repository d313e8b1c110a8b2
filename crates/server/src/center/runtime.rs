//! The contact center's event loop: one task owns the `contact::Center`, feeds it events, and
//! carries out its commands — looking customers up, calling webhooks, telling agents and
//! customers what happened, and writing contact records. Agent desktops and chat pages (and,
//! later, calls) talk to it through [`ContactCenter`]; each gets its own channel of messages.
//!
//! Time: the loop reads the clock once per event and sleeps until the center's next deadline
//! (an offer, an input, a webhook, a wrap-up), when it sends `Tick`.
//!
//! Contact records are written by one writer task in order, so a contact's wrap-up notes can
//! never reach the database before the contact itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use contact::{Center, Channel, Command, ContactId, Event};
use store_sqlite::{ContactRow, CustomerRef, RecordsDb};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::lookup::{CustomerSource, FoundCustomer};
use super::messages::TranscriptLine;
pub use super::messages::{AgentView, PastContact, QueueView, Snapshot, ToAgent, ToCustomer};
use crate::clock;
use crate::records::lock;

/// Past contacts shown with an offer.
const HISTORY: u32 = 20;
/// Lines of each past chat sent with the screen pop (the contacts page has them all).
const PAST_TRANSCRIPT_LINES: usize = 100;

mod new_customer;
mod voice;

pub use voice::{CallRecord, VoiceCommand};

/// Where contact records go and come from.
pub trait ContactLog: Send + Sync + 'static {
    /// Stores an ended contact.
    fn save(&self, row: &ContactRow) -> anyhow::Result<()>;
    /// Sets an agent's notes on a contact they handled.
    fn notes(&self, id: i64, agent: &str, notes: &str) -> anyhow::Result<()>;
    /// The customer's past contacts, newest first.
    fn history(&self, customer: &CustomerRef, limit: u32) -> anyhow::Result<Vec<ContactRow>>;
    /// The highest id stored.
    fn last_id(&self) -> anyhow::Result<i64>;
}

impl ContactLog for std::sync::Mutex<store_sqlite::Database> {
    fn save(&self, row: &ContactRow) -> anyhow::Result<()> {
        Ok(lock(self).save_contact(row)?)
    }
    fn notes(&self, id: i64, agent: &str, notes: &str) -> anyhow::Result<()> {
        lock(self).set_contact_notes(id, agent, notes)?;
        Ok(())
    }
    fn history(&self, customer: &CustomerRef, limit: u32) -> anyhow::Result<Vec<ContactRow>> {
        Ok(lock(self).customer_contacts(customer, limit)?)
    }
    fn last_id(&self) -> anyhow::Result<i64> {
        Ok(lock(self).last_contact_id()?)
    }
}

impl ContactLog for crate::auth::Auth {
    fn save(&self, row: &ContactRow) -> anyhow::Result<()> {
        Ok(self.database()?.save_contact(row)?)
    }
    fn notes(&self, id: i64, agent: &str, notes: &str) -> anyhow::Result<()> {
        self.database()?.set_contact_notes(id, agent, notes)?;
        Ok(())
    }
    fn history(&self, customer: &CustomerRef, limit: u32) -> anyhow::Result<Vec<ContactRow>> {
        Ok(self.database()?.customer_contacts(customer, limit)?)
    }
    fn last_id(&self) -> anyhow::Result<i64> {
        Ok(self.database()?.last_contact_id()?)
    }
}

enum Work {
    Snapshot(tokio::sync::oneshot::Sender<Snapshot>),
    Event(Event),
    Agent {
        agent: String,
        desk: UnboundedSender<ToAgent>,
        generation: u64,
    },
    DeskClosed {
        agent: String,
        generation: u64,
    },
    Chat {
        contact: ContactId,
        from: String,
        attributes: BTreeMap<String, String>,
        chat: UnboundedSender<ToCustomer>,
    },
    CustomerSays {
        contact: ContactId,
        text: String,
    },
    AgentSays {
        agent: String,
        contact: ContactId,
        text: String,
    },
    Notes {
        agent: String,
        contact: ContactId,
        notes: String,
    },
    Found {
        contact: ContactId,
        found: Result<Lookup, String>,
    },
    CreateCustomer {
        agent: String,
        contact: ContactId,
        fields: Vec<(String, String)>,
    },
    Created {
        agent: String,
        contact: ContactId,
        created: Result<FoundCustomer, String>,
    },
    Voice(voice::VoiceWork),
}

/// What a lookup found.
enum Lookup {
    /// The customer, with their past contacts.
    Known(FoundCustomer, Vec<PastContact>),
    /// Nobody: the fields a "new customer" form asks for (none without a customers table).
    Unknown(Vec<String>),
}

/// The handle the desktop, the chat page and tests use.
pub struct ContactCenter {
    inbox: UnboundedSender<Work>,
    next_id: AtomicU64,
    desks: AtomicU64,
}

/// An agent's connected desk: its messages, and its number for [`ContactCenter::desk_closed`].
pub struct Desk {
    /// Messages for the desk.
    pub messages: UnboundedReceiver<ToAgent>,
    /// Which desk this is.
    pub generation: u64,
}

/// Where customers are looked up.
pub struct Customers {
    /// The records database.
    pub database: Arc<RecordsDb>,
    /// Layout and fields.
    pub source: CustomerSource,
}

impl ContactCenter {
    /// Starts the loop on the current runtime.
    pub fn start(
        center: Center,
        customers: Option<Customers>,
        log: Arc<dyn ContactLog>,
    ) -> anyhow::Result<Arc<Self>> {
        let last = log.last_id()?;
        let (inbox, work) = unbounded_channel();
        let handle = Arc::new(Self {
            inbox: inbox.clone(),
            next_id: AtomicU64::new(u64::try_from(last).unwrap_or(0) + 1),
            desks: AtomicU64::new(1),
        });
        let (writes, writer) = unbounded_channel();
        tokio::spawn(write_records(Arc::clone(&log), writer));
        let state = Loop {
            center,
            customers: customers.map(Arc::new),
            log,
            inbox,
            writes,
            desks: HashMap::new(),
            chats: HashMap::new(),
            transcripts: HashMap::new(),
            found: HashMap::new(),
            blank: HashMap::new(),
            voice: voice::VoiceHook::default(),
        };
        tokio::spawn(state.run(work));
        Ok(handle)
    }

    /// An agent's desktop connects (a second tab replaces the first).
    pub fn agent_desk(&self, agent: &str) -> Desk {
        let (desk, messages) = unbounded_channel();
        let generation = self.desks.fetch_add(1, Ordering::Relaxed);
        let _ = self.inbox.send(Work::Agent {
            agent: agent.to_owned(),
            desk,
            generation,
        });
        Desk {
            messages,
            generation,
        }
    }

    /// An agent's desktop went away (tab closed, network lost). If it was their current desk,
    /// they are set Away: offers must not ring where nobody can answer.
    pub fn desk_closed(&self, agent: &str, generation: u64) {
        let _ = self.inbox.send(Work::DeskClosed {
            agent: agent.to_owned(),
            generation,
        });
    }

    /// Passes an agent's or a call's event to the center.
    pub fn event(&self, event: Event) {
        let _ = self.inbox.send(Work::Event(event));
    }

    /// A customer starts a chat; its id and the chat's messages.
    pub fn start_chat(
        &self,
        from: &str,
        attributes: BTreeMap<String, String>,
    ) -> (ContactId, UnboundedReceiver<ToCustomer>) {
        let contact = ContactId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (chat, messages) = unbounded_channel();
        let _ = self.inbox.send(Work::Chat {
            contact,
            from: from.to_owned(),
            attributes,
            chat,
        });
        (contact, messages)
    }

    /// A call comes in from `from` (the voice adapter's trunk calls, the test-only endpoint
    /// and tests; what the flow says is not yet heard by the caller).
    pub fn start_call(&self, from: &str) -> ContactId {
        let contact = ContactId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let _ = self.inbox.send(Work::Event(Event::ContactStarted {
            contact,
            channel: Channel::Voice,
            from: from.to_owned(),
            attributes: BTreeMap::new(),
        }));
        contact
    }

    /// The customer wrote.
    pub fn customer_says(&self, contact: ContactId, text: &str) {
        let _ = self.inbox.send(Work::CustomerSays {
            contact,
            text: text.to_owned(),
        });
    }

    /// The agent wrote.
    pub fn agent_says(&self, agent: &str, contact: ContactId, text: &str) {
        let _ = self.inbox.send(Work::AgentSays {
            agent: agent.to_owned(),
            contact,
            text: text.to_owned(),
        });
    }

    /// The agents and queues right now.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.inbox.send(Work::Snapshot(answer)).ok()?;
        answered.await.ok()
    }

    /// The agent filled in the "new customer" form for a contact they hold.
    pub fn create_customer(&self, agent: &str, contact: ContactId, fields: Vec<(String, String)>) {
        let _ = self.inbox.send(Work::CreateCustomer {
            agent: agent.to_owned(),
            contact,
            fields,
        });
    }

    /// The agent's wrap-up notes; ends the wrap-up.
    pub fn wrap_up(&self, agent: &str, contact: ContactId, notes: &str) {
        let _ = self.inbox.send(Work::Notes {
            agent: agent.to_owned(),
            contact,
            notes: notes.to_owned(),
        });
    }
}

enum Write {
    Save(Box<ContactRow>),
    Notes {
        id: i64,
        agent: String,
        notes: String,
    },
}

async fn write_records(log: Arc<dyn ContactLog>, mut writes: UnboundedReceiver<Write>) {
    while let Some(write) = writes.recv().await {
        let log = Arc::clone(&log);
        let done = tokio::task::spawn_blocking(move || match write {
            Write::Save(row) => log.save(&row),
            Write::Notes { id, agent, notes } => log.notes(id, &agent, &notes),
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!("cannot write a contact record: {error:#}"),
            Err(error) => tracing::error!("the contact record writer stopped: {error}"),
        }
    }
}

struct Loop {
    center: Center,
    customers: Option<Arc<Customers>>,
    log: Arc<dyn ContactLog>,
    inbox: UnboundedSender<Work>,
    writes: UnboundedSender<Write>,
    desks: HashMap<String, (u64, UnboundedSender<ToAgent>)>,
    chats: HashMap<ContactId, UnboundedSender<ToCustomer>>,
    transcripts: HashMap<ContactId, Vec<serde_json::Value>>,
    found: HashMap<ContactId, (FoundCustomer, Vec<PastContact>)>,
    /// Unknown customers' contacts: the fields of the form that creates their record.
    blank: HashMap<ContactId, Vec<String>>,
    voice: voice::VoiceHook,
}

fn past(row: &ContactRow) -> PastContact {
    PastContact {
        id: row.id,
        channel: row.channel.clone(),
        at: row.initiated_at.clone(),
        agent: row.agent.clone(),
        outcome: row.outcome.clone(),
        notes: row.notes.clone(),
        transcript: serde_json::from_str::<Vec<TranscriptLine>>(&row.transcript)
            .unwrap_or_default()
            .into_iter()
            .take(PAST_TRANSCRIPT_LINES)
            .collect(),
    }
}

impl Loop {
    async fn run(mut self, mut work: UnboundedReceiver<Work>) {
        // The core finds its next deadline by looking at every live contact, so it is asked
        // again only after work that can change one: chat lines, the bulk of the traffic, cannot.
        let mut deadline = self.center.next_deadline();
        loop {
            let next = match deadline {
                Some(at) => {
                    // A deadline already past is due now (not as far in the future as it is late).
                    let wait = at
                        .duration_since(clock::timestamp_now())
                        .max(jiff::SignedDuration::ZERO)
                        .unsigned_abs();
                    tokio::select! {
                        next = work.recv() => next,
                        () = tokio::time::sleep(wait) => Some(Work::Event(Event::Tick)),
                    }
                }
                None => work.recv().await,
            };
            let Some(next) = next else {
                return;
            };
            let moves_deadlines = !matches!(
                next,
                Work::CustomerSays { .. } | Work::AgentSays { .. } | Work::Snapshot(_)
            );
            self.handle(next);
            if moves_deadlines {
                deadline = self.center.next_deadline();
            }
        }
    }

    fn handle(&mut self, work: Work) {
        match work {
            Work::Event(event) => self.event(event),
            Work::Voice(work) => self.voice_work(work),
            Work::Snapshot(answer) => {
                let _ = answer.send(self.snapshot());
            }
            Work::DeskClosed { agent, generation } => {
                if self
                    .desks
                    .get(&agent)
                    .is_some_and(|(current, _)| *current == generation)
                {
                    self.desks.remove(&agent);
                    let available = self
                        .center
                        .agent(&agent)
                        .is_some_and(|known| known.status == contact::Status::Available);
                    if available {
                        self.event(Event::AgentStatus {
                            agent,
                            status: contact::Status::Away,
                        });
                    }
                }
            }
            Work::Agent {
                agent,
                desk,
                generation,
            } => {
                if let Some((_, previous)) =
                    self.desks.insert(agent.clone(), (generation, desk.clone()))
                {
                    let _ = previous.send(ToAgent::Replaced);
                }
                if let Some(known) = self.center.agent(&agent) {
                    let _ = desk.send(ToAgent::Presence {
                        presence: known.presence(),
                    });
                }
            }
            Work::Chat {
                contact,
                from,
                attributes,
                chat,
            } => {
                self.chats.insert(contact, chat);
                self.event(Event::ContactStarted {
                    contact,
                    channel: Channel::Chat,
                    from,
                    attributes,
                });
            }
            Work::CustomerSays { contact, text } => {
                let Some(live) = self.center.contact(contact) else {
                    return;
                };
                let agent = match &live.stage {
                    contact::Stage::Connected { agent } => Some(agent.clone()),
                    _ => None,
                };
                self.line(contact, "customer", &text);
                if let Some(agent) = agent {
                    self.tell_agent(
                        &agent,
                        ToAgent::Message {
                            contact: contact.0,
                            text,
                        },
                    );
                }
            }
            Work::AgentSays {
                agent,
                contact,
                text,
            } => {
                let connected = self.center.contact(contact).is_some_and(|live| {
                    matches!(&live.stage, contact::Stage::Connected { agent: holder } if *holder == agent)
                });
                if connected {
                    self.line(contact, &agent, &text);
                    self.tell_customer(
                        contact,
                        ToCustomer::Message {
                            from: "agent".into(),
                            text,
                        },
                    );
                }
            }
            Work::Notes {
                agent,
                contact,
                notes,
            } => {
                self.flush_waiting(contact);
                let _ = self.writes.send(Write::Notes {
                    id: i64::try_from(contact.0).unwrap_or(i64::MAX),
                    agent: agent.clone(),
                    notes,
                });
                self.event(Event::WrapUpDone { agent, contact });
            }
            Work::CreateCustomer {
                agent,
                contact,
                fields,
            } => self.create_customer(agent, contact, fields),
            Work::Created {
                agent,
                contact,
                created,
            } => self.customer_created(&agent, contact, created),
            Work::Found { contact, found } => match found {
                Ok(Lookup::Known(customer, history)) => {
                    let event = Event::CustomerFound {
                        contact,
                        customer: Some(contact::Customer {
                            record_id: customer.record_id,
                            name: customer.name.clone(),
                            assigned_agent: customer.assigned_agent.clone(),
                        }),
                    };
                    self.found.insert(contact, (customer, history));
                    self.event(event);
                }
                Ok(Lookup::Unknown(fields)) => {
                    self.blank.insert(contact, fields);
                    self.event(Event::CustomerFound {
                        contact,
                        customer: None,
                    });
                }
                Err(error) => {
                    tracing::warn!(%contact, %error, "customer lookup failed");
                    self.event(Event::LookupFailed { contact });
                }
            },
        }
    }

    fn snapshot(&self) -> Snapshot {
        let now = clock::timestamp_now();
        let agents = self
            .center
            .agents()
            .map(|agent| AgentView {
                name: agent.name.clone(),
                presence: agent.presence(),
                contacts: agent.load(),
            })
            .collect();
        let queues = self
            .center
            .queue_names()
            .map(|queue| {
                let waiting: Vec<jiff::Timestamp> = self
                    .center
                    .contacts()
                    .filter(|live| {
                        live.queue.as_deref() == Some(queue)
                            && matches!(
                                live.stage,
                                contact::Stage::Queued | contact::Stage::Offered { .. }
                            )
                    })
                    .filter_map(|live| live.queued)
                    .collect();
                QueueView {
                    name: queue.to_owned(),
                    waiting: waiting.len(),
                    oldest_wait_seconds: waiting
                        .iter()
                        .min()
                        .map(|oldest| now.duration_since(*oldest).as_secs()),
                }
            })
            .collect();
        Snapshot { agents, queues }
    }

    fn line(&mut self, contact: ContactId, from: &str, text: &str) {
        self.transcripts.entry(contact).or_default().push(
            serde_json::json!({"at": clock::utc_text(clock::timestamp_now()), "from": from, "text": text}),
        );
    }

    fn tell_agent(&self, agent: &str, message: ToAgent) {
        if let Some((_, desk)) = self.desks.get(agent) {
            let _ = desk.send(message);
        }
    }

    fn tell_customer(&self, contact: ContactId, message: ToCustomer) {
        if let Some(chat) = self.chats.get(&contact) {
            let _ = chat.send(message);
        }
    }

    fn event(&mut self, event: Event) {
        let now = clock::timestamp_now();
        match self.center.handle(event, now) {
            Ok(commands) => {
                for command in commands {
                    self.carry_out(command);
                }
            }
            Err(error) => tracing::debug!(%error, "contact event refused"),
        }
    }

    fn carry_out(&mut self, command: Command) {
        self.tell_voice(&command);
        match command {
            Command::Say { contact, text } => {
                self.line(contact, "center", &text);
                self.tell_customer(
                    contact,
                    ToCustomer::Message {
                        from: "center".into(),
                        text,
                    },
                );
            }
            Command::LookUpCustomer { contact, key, .. } => self.look_up(contact, key),
            Command::InvokeWebhook {
                contact,
                url,
                timeout_ms,
                parameters,
            } => {
                let Some(live) = self.center.contact(contact) else {
                    return;
                };
                let event = contact::webhook::event(live, &parameters, "genkan", "genkan");
                let inbox = self.inbox.clone();
                tokio::spawn(async move {
                    let limit = std::time::Duration::from_millis(u64::from(timeout_ms));
                    let answer = super::webhook::invoke(&url, &event, limit).await;
                    let event = match answer {
                        Ok(attributes) => Event::WebhookAnswered {
                            contact,
                            attributes,
                        },
                        Err(error) => {
                            tracing::warn!(%contact, %error, "webhook failed");
                            Event::WebhookFailed { contact }
                        }
                    };
                    let _ = inbox.send(Work::Event(event));
                });
            }
            Command::AskInput {
                contact,
                prompt,
                choices,
            } => self.tell_customer(contact, ToCustomer::Choice { prompt, choices }),
            Command::SetRecording { .. } => {}
            Command::Queued { contact, .. } => self.tell_customer(contact, ToCustomer::Waiting),
            Command::Offer { contact, agent } => {
                let Some(live) = self.center.contact(contact) else {
                    return;
                };
                let (record_id, customer, history) = match self.found.get(&contact) {
                    Some((found, history)) => {
                        (Some(found.record_id), found.fields.clone(), history.clone())
                    }
                    None => (None, Vec::new(), Vec::new()),
                };
                let new_customer = self.blank.get(&contact).cloned().unwrap_or_default();
                let offer = ToAgent::Offer {
                    contact: contact.0,
                    channel: live.channel,
                    from: live.from.clone(),
                    record_id,
                    customer,
                    attributes: live.attributes.clone(),
                    history,
                    new_customer,
                };
                self.tell_agent(&agent, offer);
            }
            Command::OfferWithdrawn {
                contact,
                agent,
                reason,
            } => self.tell_agent(
                &agent,
                ToAgent::Withdrawn {
                    contact: contact.0,
                    reason: reason.to_owned(),
                },
            ),
            Command::Connect { contact, agent } => {
                self.tell_agent(&agent, ToAgent::Connected { contact: contact.0 });
                self.tell_customer(contact, ToCustomer::Connected);
            }
            Command::WrapUp {
                agent,
                contact,
                until,
            } => {
                self.tell_agent(&agent, ToAgent::Ended { contact: contact.0 });
                self.tell_agent(
                    &agent,
                    ToAgent::WrapUp {
                        contact: contact.0,
                        until: clock::utc_text(until),
                    },
                );
            }
            Command::Presence { agent, presence } => {
                self.tell_agent(&agent, ToAgent::Presence { presence });
            }
            Command::Ended { contact } => self.ended(&contact),
        }
    }

    fn look_up(&mut self, contact: ContactId, key: String) {
        let inbox = self.inbox.clone();
        let Some(customers) = self.customers.clone() else {
            let _ = inbox.send(Work::Found {
                contact,
                found: Ok(Lookup::Unknown(Vec::new())),
            });
            return;
        };
        let log = Arc::clone(&self.log);
        tokio::spawn(async move {
            let found = tokio::task::spawn_blocking(move || {
                let store = customers.database.as_ref();
                let found = customers
                    .source
                    .look_up(store, &key)
                    .map_err(|error| error.to_string())?;
                let Some(customer) = found else {
                    let fields = customers.source.field_names(store).unwrap_or_default();
                    return Ok(Lookup::Unknown(fields));
                };
                let reference = CustomerRef {
                    database: customers.database.name().to_owned(),
                    table: customers.source.layout.clone(),
                    record_id: customer.record_id,
                };
                let history = log
                    .history(&reference, HISTORY)
                    .map(|rows| rows.iter().map(past).collect())
                    .unwrap_or_default();
                Ok(Lookup::Known(customer, history))
            })
            .await
            .unwrap_or_else(|error| Err(error.to_string()));
            let _ = inbox.send(Work::Found { contact, found });
        });
    }

    fn ended(&mut self, record: &contact::Contact) {
        let id = record.id;
        self.blank.remove(&id);
        self.tell_customer(id, ToCustomer::Ended);
        self.chats.remove(&id);
        let transcript = self.transcripts.remove(&id).unwrap_or_default();
        let found = self.found.remove(&id);
        let customer = found.as_ref().map(|(customer, _)| CustomerRef {
            database: self
                .customers
                .as_ref()
                .map(|customers| customers.database.name().to_owned())
                .unwrap_or_default(),
            table: self
                .customers
                .as_ref()
                .map(|customers| customers.source.layout.clone())
                .unwrap_or_default(),
            record_id: customer.record_id,
        });
        let row = ContactRow {
            id: i64::try_from(id.0).unwrap_or(i64::MAX),
            channel: match record.channel {
                Channel::Voice => "voice".into(),
                Channel::Chat => "chat".into(),
            },
            customer_address: record.from.clone(),
            customer,
            customer_name: found.map(|(customer, _)| customer.name).unwrap_or_default(),
            queue: record.queue.clone(),
            agent: record.agent.clone(),
            initiated_at: clock::utc_text(record.initiated),
            queued_at: record.queued.map(clock::utc_text),
            connected_at: record.connected.map(clock::utc_text),
            ended_at: clock::utc_text(record.ended.unwrap_or_else(clock::timestamp_now)),
            outcome: record
                .outcome
                .map_or_else(|| "Error".to_owned(), |outcome| format!("{outcome:?}")),
            attributes: serde_json::to_string(&record.attributes).unwrap_or_else(|_| "{}".into()),
            notes: String::new(),
            transcript: serde_json::Value::Array(transcript).to_string(),
            recording: None,
        };
        self.save_or_wait(row, id);
    }

    fn save_row(&self, row: ContactRow) {
        let _ = self.writes.send(Write::Save(Box::new(row)));
    }
}
