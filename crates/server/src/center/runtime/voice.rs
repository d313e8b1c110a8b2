//! The hook between the contact center and the voice adapter (`crate::voice`): the center's
//! commands about voice contacts go to the adapter as [`VoiceCommand`]s, and what the adapter
//! knows of a call (its recording, its times and media statistics) comes back as a
//! [`CallRecord`] to be written with the contact record.
//!
//! The adapter sends the record before the event that ends the contact (`CustomerLeft`,
//! `AgentEnded`); both go through the loop's one inbox, so the record is always there when
//! the contact's row is built. When the center ends a call itself (the agent hangs up on the
//! desk, the flow disconnects), the record can only follow: the row waits for it, up to
//! [`RECORD_WAIT`], before it is written.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use contact::{Channel, Command, ContactId};
use store_sqlite::ContactRow;
use tokio::sync::mpsc::UnboundedSender;

use super::{ContactCenter, Loop, Work};

/// What the contact center asks of the voice adapter about one of its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoiceCommand {
    /// Ring this agent's phone.
    Offer {
        /// The call.
        contact: ContactId,
        /// The agent.
        agent: String,
    },
    /// Stop ringing this agent's phone.
    Withdrawn {
        /// The call.
        contact: ContactId,
        /// The agent.
        agent: String,
    },
    /// The agent holds the call now.
    Connect {
        /// The call.
        contact: ContactId,
        /// The agent.
        agent: String,
    },
    /// The flow says something to the caller.
    Say {
        /// The call.
        contact: ContactId,
        /// What it says.
        text: String,
    },
    /// The flow asks the caller for a key (one key per choice).
    AskInput {
        /// The call.
        contact: ContactId,
        /// What it asks.
        prompt: String,
    },
    /// The flow turned recording on or off.
    Recording {
        /// The call.
        contact: ContactId,
        /// On.
        on: bool,
    },
    /// The contact is over: hang up whatever is left of the call.
    Ended {
        /// The call.
        contact: ContactId,
    },
}

/// What the voice adapter adds to a call's contact record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRecord {
    /// The recording's file name under `<data_dir>/recordings/`.
    pub recording: Option<String>,
    /// Times and media statistics, merged into the record's attributes (`call.…` keys).
    pub details: BTreeMap<String, String>,
}

/// How long the row of a call the center ended waits for the adapter's record (the media
/// task finishing the recording); after that it is written without.
const RECORD_WAIT: Duration = Duration::from_secs(30);

pub(super) enum VoiceWork {
    Attach(UnboundedSender<VoiceCommand>),
    Record(ContactId, CallRecord),
    /// A waiting row's time is up.
    Flush(ContactId),
}

/// The loop's side of the hook.
#[derive(Default)]
pub(super) struct VoiceHook {
    adapter: Option<UnboundedSender<VoiceCommand>>,
    records: HashMap<ContactId, CallRecord>,
    /// Rows of ended calls waiting for their record.
    waiting: HashMap<ContactId, ContactRow>,
}

impl ContactCenter {
    /// Connects the voice adapter: from now on, commands about voice contacts go to it.
    pub fn attach_voice(&self, adapter: UnboundedSender<VoiceCommand>) {
        let _ = self.inbox.send(Work::Voice(VoiceWork::Attach(adapter)));
    }

    /// What the adapter knows of a call, for its contact record. Send it before the event
    /// that ends the contact.
    pub fn call_record(&self, contact: ContactId, record: CallRecord) {
        let _ = self
            .inbox
            .send(Work::Voice(VoiceWork::Record(contact, record)));
    }
}

impl Loop {
    pub(super) fn voice_work(&mut self, work: VoiceWork) {
        match work {
            VoiceWork::Attach(adapter) => self.voice.adapter = Some(adapter),
            // A record for a contact already ended (the center ended the call itself) has no
            // row left to join; it is dropped rather than kept forever.
            VoiceWork::Record(contact, record) if self.center.contact(contact).is_some() => {
                self.voice.records.insert(contact, record);
            }
            VoiceWork::Record(contact, record) => {
                // A record for a contact whose row was written already has nothing to join.
                if let Some(mut row) = self.voice.waiting.remove(&contact) {
                    self.voice.records.insert(contact, record);
                    self.voice_row(&mut row);
                    self.save_row(row);
                }
            }
            VoiceWork::Flush(contact) => {
                if let Some(row) = self.voice.waiting.remove(&contact) {
                    tracing::warn!(%contact, "no call record came; the contact is saved without");
                    self.save_row(row);
                }
            }
        }
    }

    /// Writes an ended contact's row now, or, for a call whose record is still to come from
    /// the adapter, once it comes (or [`RECORD_WAIT`] has passed).
    pub(super) fn save_or_wait(&mut self, mut row: ContactRow, contact: ContactId) {
        let record_due = row.channel == "voice"
            && self.voice.adapter.is_some()
            && !self.voice.records.contains_key(&contact);
        if !record_due {
            self.voice_row(&mut row);
            self.save_row(row);
            return;
        }
        self.voice.waiting.insert(contact, row);
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RECORD_WAIT).await;
            let _ = inbox.send(Work::Voice(VoiceWork::Flush(contact)));
        });
    }

    /// The wrap-up notes need the row written: a waiting row is written first.
    pub(super) fn flush_waiting(&mut self, contact: ContactId) {
        if let Some(row) = self.voice.waiting.remove(&contact) {
            self.save_row(row);
        }
    }

    /// Passes a command on to the adapter when it is about a voice contact (or a contact
    /// already gone, which the adapter ignores unless it is one of its calls).
    pub(super) fn tell_voice(&self, command: &Command) {
        let Some(adapter) = &self.voice.adapter else {
            return;
        };
        let is_voice = |contact: ContactId| {
            self.center
                .contact(contact)
                .is_none_or(|live| live.channel == Channel::Voice)
        };
        let message = match command {
            Command::Offer { contact, agent } if is_voice(*contact) => VoiceCommand::Offer {
                contact: *contact,
                agent: agent.clone(),
            },
            Command::OfferWithdrawn { contact, agent, .. } if is_voice(*contact) => {
                VoiceCommand::Withdrawn {
                    contact: *contact,
                    agent: agent.clone(),
                }
            }
            Command::Connect { contact, agent } if is_voice(*contact) => VoiceCommand::Connect {
                contact: *contact,
                agent: agent.clone(),
            },
            Command::Say { contact, text } if is_voice(*contact) => VoiceCommand::Say {
                contact: *contact,
                text: text.clone(),
            },
            Command::AskInput {
                contact, prompt, ..
            } if is_voice(*contact) => VoiceCommand::AskInput {
                contact: *contact,
                prompt: prompt.clone(),
            },
            Command::SetRecording { contact, on } if is_voice(*contact) => {
                VoiceCommand::Recording {
                    contact: *contact,
                    on: *on,
                }
            }
            Command::Ended { contact } if contact.channel == Channel::Voice => {
                VoiceCommand::Ended {
                    contact: contact.id,
                }
            }
            _ => return,
        };
        let _ = adapter.send(message);
    }

    /// Adds the adapter's record of a call to its contact row.
    pub(super) fn voice_row(&mut self, row: &mut ContactRow) {
        let Ok(id) = u64::try_from(row.id) else {
            return;
        };
        let Some(record) = self.voice.records.remove(&ContactId(id)) else {
            return;
        };
        row.recording = record.recording;
        if record.details.is_empty() {
            return;
        }
        let mut attributes: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.attributes).unwrap_or_default();
        for (key, value) in record.details {
            attributes.insert(key, serde_json::Value::String(value));
        }
        row.attributes = serde_json::Value::Object(attributes).to_string();
    }
}
