//! The center's moves: flow steps, offers, accepts, endings, routing and timeouts.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::{Center, Command, Contact, MAX_STEPS, Outcome, Stage};
use crate::agent::Status;
use crate::flow::Block;
use crate::{Channel, ContactError, ContactId};

impl Center {
    pub(super) fn set_status(
        &mut self,
        name: &str,
        status: Status,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) -> Result<(), ContactError> {
        let agent = self
            .agents
            .get_mut(name)
            .ok_or_else(|| ContactError::NoSuchAgent(name.to_owned()))?;
        let was = agent.status;
        agent.status = status;
        if status == Status::Available && was != Status::Available && agent.load() == 0 {
            agent.idle_since = now;
        }
        if status != Status::Available
            && let Some(offered) = agent.offered
        {
            self.withdraw(offered, "agent away", out);
        }
        Ok(())
    }

    pub(super) fn expect_stage(
        &self,
        contact: ContactId,
        fits: impl Fn(&Stage) -> bool,
        otherwise: &str,
    ) -> Result<(), ContactError> {
        let record = self
            .contacts
            .get(&contact)
            .ok_or(ContactError::NoSuchContact(contact))?;
        if fits(&record.stage) {
            Ok(())
        } else {
            Err(ContactError::OutOfTurn(format!("{contact}: {otherwise}")))
        }
    }

    pub(super) fn expect_offer(&self, agent: &str, contact: ContactId) -> Result<(), ContactError> {
        self.expect_stage(
            contact,
            |stage| matches!(stage, Stage::Offered { agent: ringing, .. } if ringing == agent),
            "it is not ringing at that agent",
        )
    }

    pub(super) fn accept(
        &mut self,
        name: &str,
        contact: ContactId,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) -> Result<(), ContactError> {
        self.expect_offer(name, contact)?;
        let (Some(agent), Some(record)) =
            (self.agents.get_mut(name), self.contacts.get_mut(&contact))
        else {
            return Err(ContactError::NoSuchAgent(name.to_owned()));
        };
        agent.offered = None;
        match record.channel {
            Channel::Voice => agent.call = Some(contact),
            Channel::Chat => {
                agent.chats.insert(contact);
            }
        }
        record.stage = Stage::Connected {
            agent: name.to_owned(),
        };
        record.agent = Some(name.to_owned());
        record.connected = Some(now);
        out.push(Command::Connect {
            contact,
            agent: name.to_owned(),
        });
        Ok(())
    }

    /// Stops an offer ringing and puts the contact back at its place in the queue.
    pub(super) fn withdraw(
        &mut self,
        contact: ContactId,
        reason: &'static str,
        out: &mut Vec<Command>,
    ) {
        let Some(record) = self.contacts.get_mut(&contact) else {
            return;
        };
        let Stage::Offered { agent, .. } = record.stage.clone() else {
            return;
        };
        record.stage = Stage::Queued;
        self.waiting.insert(contact);
        record.declined_by.insert(agent.clone());
        if record.wanted_agent.as_deref() == Some(agent.as_str()) {
            record.wanted_agent = None;
        }
        if let Some(holder) = self.agents.get_mut(&agent) {
            holder.offered = None;
            if reason == "no answer" {
                // Amazon Connect's "Missed": the agent takes nothing more until they say so.
                holder.status = Status::Away;
            }
        }
        out.push(Command::OfferWithdrawn {
            contact,
            agent,
            reason,
        });
    }

    /// The agent lets go of a connected contact and starts its wrap-up.
    pub(super) fn release(
        &mut self,
        name: &str,
        contact: ContactId,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some(agent) = self.agents.get_mut(name) else {
            return;
        };
        let channel = if agent.call == Some(contact) {
            agent.call = None;
            Channel::Voice
        } else {
            agent.chats.remove(&contact);
            Channel::Chat
        };
        let until = now + self.settings.wrap_up_timeout;
        agent.wrap_ups.insert(contact, (channel, until));
        out.push(Command::WrapUp {
            agent: name.to_owned(),
            contact,
            until,
        });
    }

    pub(super) fn end(
        &mut self,
        contact: ContactId,
        outcome: Outcome,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if let Some(mut record) = self.contacts.remove(&contact) {
            if let Stage::Offered { agent, .. } = &record.stage
                && let Some(holder) = self.agents.get_mut(agent)
            {
                holder.offered = None;
            }
            record.ended = Some(now);
            record.outcome = Some(outcome);
            out.push(Command::Ended {
                contact: Box::new(record),
            });
        }
    }

    /// Takes the named branch of the block the contact waits at, and runs on.
    pub(super) fn follow(
        &mut self,
        contact: ContactId,
        branch: &str,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let target = self.block_of(contact).and_then(|block| {
            block
                .branches()
                .into_iter()
                .find(|(name, _)| *name == branch)
                .map(|(_, target)| target.to_owned())
        });
        self.go(contact, target, now, out);
    }

    /// The input's branch, or `no_match` (also for no input at all).
    pub(super) fn choose(
        &mut self,
        contact: ContactId,
        value: Option<&str>,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let target = match self.block_of(contact) {
            Some(Block::GetInput {
                choices, no_match, ..
            }) => Some(
                value
                    .and_then(|value| choices.get(value))
                    .unwrap_or(no_match)
                    .clone(),
            ),
            _ => None,
        };
        self.go(contact, target, now, out);
    }

    fn go(
        &mut self,
        contact: ContactId,
        target: Option<String>,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        match (target, self.contacts.get_mut(&contact)) {
            (Some(target), Some(record)) => {
                record.at.1 = target;
                record.stage = Stage::InFlow;
                self.run(contact, now, out);
            }
            (None, Some(_)) => self.end(contact, Outcome::Error, now, out),
            (_, None) => {}
        }
    }

    fn block_of(&self, contact: ContactId) -> Option<&Block> {
        let record = self.contacts.get(&contact)?;
        self.flows.get(&record.at.0)?.blocks.get(&record.at.1)
    }

    /// Whether some agent of the queue is Available (signed in and ready, busy or not).
    fn staffed(&self, queue: &str) -> bool {
        self.agents.values().any(|agent| {
            agent.status == Status::Available && agent.queues.iter().any(|q| q == queue)
        })
    }

    /// Runs flow blocks until the contact has to wait, is queued, or ends.
    pub(super) fn run(&mut self, contact: ContactId, now: Timestamp, out: &mut Vec<Command>) {
        for _ in 0..MAX_STEPS {
            let Some(block) = self.block_of(contact).cloned() else {
                self.end(contact, Outcome::Error, now, out);
                return;
            };
            let Some(record) = self.contacts.get_mut(&contact) else {
                return;
            };
            let next = match block {
                Block::CheckHours {
                    queue,
                    open,
                    closed,
                } => {
                    if self
                        .queues
                        .get(&queue)
                        .is_some_and(|q| q.hours.is_open(now))
                    {
                        open
                    } else {
                        record.pending = Some(Outcome::OutOfHours);
                        closed
                    }
                }
                Block::LookUpCustomer { .. } => {
                    record.stage = Stage::LookingUp;
                    out.push(Command::LookUpCustomer {
                        contact,
                        channel: record.channel,
                        key: record.from.clone(),
                    });
                    return;
                }
                Block::TransferToAssignedAgent { queue, nobody } => {
                    let wanted = record
                        .customer
                        .as_ref()
                        .and_then(|customer| customer.assigned_agent.clone())
                        .filter(|name| {
                            self.agents
                                .get(name)
                                .is_some_and(|agent| agent.can_take(record.channel))
                        });
                    if wanted.is_some() || self.staffed(&queue) {
                        self.enqueue(contact, queue, wanted, now, out);
                        return;
                    }
                    if let Some(record) = self.contacts.get_mut(&contact) {
                        record.pending = Some(Outcome::NoAgentAvailable);
                    }
                    nobody
                }
                Block::TransferToQueue { queue, nobody } => {
                    if self.staffed(&queue) {
                        self.enqueue(contact, queue, None, now, out);
                        return;
                    }
                    if let Some(record) = self.contacts.get_mut(&contact) {
                        record.pending = Some(Outcome::NoAgentAvailable);
                    }
                    nobody
                }
                Block::CheckStaffing {
                    queue,
                    staffed,
                    unstaffed,
                } => {
                    if self.staffed(&queue) {
                        staffed
                    } else {
                        unstaffed
                    }
                }
                Block::Say { text, next } => {
                    out.push(Command::Say {
                        contact,
                        text: fill(&text, &record.attributes),
                    });
                    next
                }
                Block::GetInput {
                    prompt,
                    choices,
                    timeout_seconds,
                    ..
                } => {
                    record.stage = Stage::WaitingForInput {
                        until: now + SignedDuration::from_secs(i64::from(timeout_seconds)),
                    };
                    out.push(Command::AskInput {
                        contact,
                        prompt: fill(&prompt, &record.attributes),
                        choices: choices.keys().cloned().collect(),
                    });
                    return;
                }
                Block::SetAttribute { key, value, next } => {
                    let value = fill(&value, &record.attributes);
                    record.attributes.insert(key, value);
                    next
                }
                Block::SetRecording { on, next } => {
                    record.recording = on;
                    out.push(Command::SetRecording { contact, on });
                    next
                }
                Block::SetDisconnectFlow { flow, next } => {
                    record.disconnect_flow = Some(flow);
                    next
                }
                Block::InvokeWebhook {
                    url,
                    timeout_ms,
                    parameters,
                    ..
                } => {
                    record.stage = Stage::CallingWebhook {
                        until: now + SignedDuration::from_millis(i64::from(timeout_ms)),
                    };
                    let parameters = parameters
                        .iter()
                        .map(|(key, value)| (key.clone(), fill(value, &record.attributes)))
                        .collect();
                    out.push(Command::InvokeWebhook {
                        contact,
                        url,
                        timeout_ms,
                        parameters,
                    });
                    return;
                }
                Block::Disconnect {} => {
                    let outcome = record.pending.unwrap_or(if record.connected.is_some() {
                        Outcome::Completed
                    } else {
                        Outcome::EndedByFlow
                    });
                    self.end(contact, outcome, now, out);
                    return;
                }
            };
            if let Some(record) = self.contacts.get_mut(&contact) {
                record.at.1 = next;
            }
        }
        // A flow that keeps going without waiting loops.
        self.end(contact, Outcome::Error, now, out);
    }

    fn enqueue(
        &mut self,
        contact: ContactId,
        queue: String,
        agent: Option<String>,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if let Some(record) = self.contacts.get_mut(&contact) {
            record.stage = Stage::Queued;
            self.waiting.insert(contact);
            record.queue = Some(queue.clone());
            record.wanted_agent.clone_from(&agent);
            record.queued.get_or_insert(now);
            out.push(Command::Queued {
                contact,
                queue,
                agent,
            });
        }
    }

    /// Offers every queued contact some agent can take now: contacts waiting for one agent
    /// first, then the longest-waiting; each to the agent with the least on hand who has been
    /// idle longest. An agent who declined a contact is not offered it again.
    pub(super) fn route(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        // `waiting` holds every contact that entered the queue; those that left it since (offered,
        // ended) are dropped here, so routing looks at the queue, not at every live contact.
        let contacts = &self.contacts;
        self.waiting.retain(|id| {
            contacts
                .get(id)
                .is_some_and(|contact| contact.stage == Stage::Queued)
        });
        let mut waiting: Vec<&Contact> = self
            .waiting
            .iter()
            .filter_map(|id| self.contacts.get(id))
            .collect();
        waiting.sort_by_key(|contact| (contact.wanted_agent.is_none(), contact.queued, contact.id));
        let waiting: Vec<ContactId> = waiting.iter().map(|contact| contact.id).collect();
        for id in waiting {
            let Some(record) = self.contacts.get_mut(&id) else {
                continue;
            };
            if let Some(wanted) = record.wanted_agent.clone() {
                let agent = self.agents.get(&wanted);
                if agent.is_some_and(|agent| agent.can_take(record.channel)) {
                    self.offer(id, &wanted, now, out);
                    continue;
                }
                if agent.is_some_and(|agent| agent.status == Status::Available) {
                    // Busy for now: the contact waits for them.
                    continue;
                }
                // Gone away: anyone in the queue will do (the seed's "found but absent").
                record.wanted_agent = None;
            }
            let chosen = self
                .agents
                .values()
                .filter(|agent| {
                    agent.can_take(record.channel)
                        && !record.declined_by.contains(&agent.name)
                        && record
                            .queue
                            .as_ref()
                            .is_some_and(|queue| agent.queues.contains(queue))
                })
                .min_by_key(|agent| (agent.load(), agent.idle_since, agent.name.clone()))
                .map(|agent| agent.name.clone());
            if let Some(agent) = chosen {
                self.offer(id, &agent, now, out);
            }
        }
    }

    fn offer(&mut self, contact: ContactId, name: &str, now: Timestamp, out: &mut Vec<Command>) {
        let (Some(agent), Some(record)) =
            (self.agents.get_mut(name), self.contacts.get_mut(&contact))
        else {
            return;
        };
        agent.offered = Some(contact);
        record.stage = Stage::Offered {
            agent: name.to_owned(),
            until: now + self.settings.offer_timeout,
        };
        out.push(Command::Offer {
            contact,
            agent: name.to_owned(),
        });
    }

    pub(super) fn time_out(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        let due: Vec<(ContactId, Stage)> = self
            .contacts
            .values()
            .filter(|contact| match &contact.stage {
                Stage::Offered { until, .. }
                | Stage::CallingWebhook { until }
                | Stage::WaitingForInput { until } => *until <= now,
                _ => false,
            })
            .map(|contact| (contact.id, contact.stage.clone()))
            .collect();
        for (contact, stage) in due {
            match stage {
                Stage::Offered { .. } => self.withdraw(contact, "no answer", out),
                Stage::CallingWebhook { .. } => self.follow(contact, "error", now, out),
                Stage::WaitingForInput { .. } => self.choose(contact, None, now, out),
                _ => {}
            }
        }
        for agent in self.agents.values_mut() {
            let before = agent.wrap_ups.len();
            agent.wrap_ups.retain(|_, (_, until)| *until > now);
            if before != agent.wrap_ups.len() && agent.load() == 0 {
                agent.idle_since = now;
            }
        }
    }
}

/// Replaces `{name}` with the attribute `name` (left as written when there is none).
fn fill(text: &str, attributes: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match attributes.get(name) {
                    Some(value) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_fill_their_names_and_unknown_names_stay() {
        let attributes: BTreeMap<String, String> =
            [("customer.name".to_owned(), "佐藤 花子".to_owned())]
                .into_iter()
                .collect();
        assert_eq!(fill("{customer.name} 様", &attributes), "佐藤 花子 様");
        assert_eq!(fill("{nope} {", &attributes), "{nope} {");
    }
}
