//! Property tests: thousands of random event sequences (agents switching presence, calls and
//! chats arriving, lookups answering, offers accepted, rejected or left ringing, customers
//! leaving, agents ending and wrapping up, time passing) with the invariants checked after every
//! event. The generator is a fixed-seed xorshift, so a failure names a seed that reproduces it.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{center_with, morning};
use contact::flow::{goodbye_flow, seed_flow};
use contact::{Center, Channel, Command, ContactId, Customer, Event, Stage, Status};
use jiff::{SignedDuration, Timestamp};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap()
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())].clone())
    }
}

const AGENTS: [&str; 3] = ["agent1", "agent2", "agent3"];

fn random_event(rng: &mut Rng, center: &Center, next_id: &mut u64) -> Event {
    let contacts: Vec<(ContactId, Stage)> =
        center.contacts().map(|c| (c.id, c.stage.clone())).collect();
    let in_stage = |wanted: fn(&Stage) -> bool| -> Vec<ContactId> {
        contacts
            .iter()
            .filter(|(_, stage)| wanted(stage))
            .map(|(id, _)| *id)
            .collect()
    };
    loop {
        match rng.below(10) {
            0 => {
                let status = [
                    Status::Available,
                    Status::Available,
                    Status::Away,
                    Status::Offline,
                ][rng.below(4)];
                return Event::AgentStatus {
                    agent: AGENTS[rng.below(3)].into(),
                    status,
                };
            }
            1 => {
                *next_id += 1;
                return Event::ContactStarted {
                    contact: ContactId(*next_id),
                    channel: if rng.below(2) == 0 {
                        Channel::Voice
                    } else {
                        Channel::Chat
                    },
                    from: format!("+8131234{:04}", rng.below(10_000)),
                    attributes: BTreeMap::new(),
                };
            }
            2 => {
                if let Some(contact) = rng.pick(&in_stage(|s| *s == Stage::LookingUp)) {
                    let customer = match rng.below(3) {
                        0 => None,
                        _ => Some(Customer {
                            record_id: 1,
                            name: "x".into(),
                            assigned_agent: Some(AGENTS[rng.below(3)].into()),
                        }),
                    };
                    return Event::CustomerFound { contact, customer };
                }
            }
            3 | 4 => {
                let offered: Vec<(ContactId, String)> = contacts
                    .iter()
                    .filter_map(|(id, stage)| match stage {
                        Stage::Offered { agent, .. } => Some((*id, agent.clone())),
                        _ => None,
                    })
                    .collect();
                if let Some((contact, agent)) = rng.pick(&offered) {
                    return if rng.below(4) == 0 {
                        Event::Reject { agent, contact }
                    } else {
                        Event::Accept { agent, contact }
                    };
                }
            }
            5 => {
                if let Some((contact, _)) = rng.pick(&contacts) {
                    return Event::CustomerLeft { contact };
                }
            }
            6 => {
                let connected: Vec<(ContactId, String)> = contacts
                    .iter()
                    .filter_map(|(id, stage)| match stage {
                        Stage::Connected { agent } => Some((*id, agent.clone())),
                        _ => None,
                    })
                    .collect();
                if let Some((contact, agent)) = rng.pick(&connected) {
                    return Event::AgentEnded { agent, contact };
                }
            }
            7 => {
                // Sometimes stale or wrong on purpose: it must be refused without harm.
                return Event::Accept {
                    agent: AGENTS[rng.below(3)].into(),
                    contact: ContactId(
                        u64::try_from(rng.below(usize::try_from(*next_id).unwrap() + 2)).unwrap(),
                    ),
                };
            }
            _ => return Event::Tick,
        }
    }
}

/// The invariants, after every event.
fn check(center: &Center, commands: &[Command], seed: u64, step: usize) {
    let mut ringing: BTreeMap<String, usize> = BTreeMap::new();
    for contact in center.contacts() {
        if let Stage::Offered { agent, .. } = &contact.stage {
            *ringing.entry(agent.clone()).or_default() += 1;
        }
    }
    for (agent, count) in &ringing {
        assert!(
            *count <= 1,
            "seed {seed} step {step}: {count} contacts ring at {agent}"
        );
    }
    for command in commands {
        if let Command::Offer { agent, contact } = command {
            let holder = center.agent(agent).unwrap();
            assert_eq!(
                holder.status,
                Status::Available,
                "seed {seed} step {step}: {contact} offered to {agent}, who is {:?}",
                holder.status
            );
        }
    }
    for agent in center.agents() {
        let connected: Vec<Channel> = center
            .contacts()
            .filter(|c| matches!(&c.stage, Stage::Connected { agent: a } if *a == agent.name))
            .map(|c| c.channel)
            .collect();
        let calls = connected.iter().filter(|c| **c == Channel::Voice).count();
        assert!(
            calls <= 1,
            "seed {seed} step {step}: {} has {calls} calls",
            agent.name
        );
        assert!(
            calls == 0 || connected.len() == 1,
            "seed {seed} step {step}: {} has a call beside chats",
            agent.name
        );
        assert!(
            connected.len() <= agent.max_chats,
            "seed {seed} step {step}: {} holds {} contacts",
            agent.name,
            connected.len()
        );
    }
}

#[test]
fn random_sequences_keep_the_invariants_and_every_contact_ends_once() {
    for seed in 1..=400_u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut center = center_with(
            vec![seed_flow("support"), goodbye_flow()],
            "inbound",
            &AGENTS,
        );
        let mut now: Timestamp = morning();
        let mut next_id = 0;
        let mut ended: BTreeMap<ContactId, usize> = BTreeMap::new();
        let count = |commands: &[Command], ended: &mut BTreeMap<ContactId, usize>| {
            for command in commands {
                if let Command::Ended { contact } = command {
                    *ended.entry(contact.id).or_default() += 1;
                    assert!(contact.outcome.is_some() && contact.ended.is_some());
                }
            }
        };
        for step in 0..250 {
            now += SignedDuration::from_secs(i64::try_from(rng.below(15)).unwrap());
            let event = random_event(&mut rng, &center, &mut next_id);
            if let Ok(commands) = center.handle(event, now) {
                check(&center, &commands, seed, step);
                count(&commands, &mut ended);
            }
        }
        // Everyone still there leaves: every contact must have ended exactly once.
        let live: Vec<ContactId> = center.contacts().map(|c| c.id).collect();
        for contact in live {
            let commands = center.handle(Event::CustomerLeft { contact }, now).unwrap();
            count(&commands, &mut ended);
        }
        assert_eq!(center.contacts().count(), 0, "seed {seed}");
        let started: BTreeSet<ContactId> = (1..=next_id).map(ContactId).collect();
        let finished: BTreeSet<ContactId> = ended.keys().copied().collect();
        assert_eq!(started, finished, "seed {seed}: contacts that never ended");
        assert!(
            ended.values().all(|n| *n == 1),
            "seed {seed}: a contact ended twice: {ended:?}"
        );
    }
}
