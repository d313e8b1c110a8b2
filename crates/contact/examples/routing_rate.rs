//! Routing decisions per second in the pure core (`bench/contact` runs this).
//!
//! A center of AGENTS agents (20 chats each, one queue open around the clock, the seed's flow)
//! is driven the way the event loop drives it: a chat starts, the lookup answers with the
//! customer and their assigned agent, the offer is accepted. Each such contact is one routing
//! decision (the contact is queued and offered); the time counted is the whole `handle` work of
//! the three events, with every command they produce.
//!
//! Two phases:
//! * fill: CONTACTS chats arrive one after another until the center holds them all (the cost
//!   grows with the number of live contacts, so the rate is given per tenth of the fill);
//! * churn: with the center full, one contact ends (the customer leaves, the agent wraps up)
//!   and a new one is routed, CHURN times: the steady state of a busy center.
//!
//! Output: `core routing decisions/s (fill, last tenth): X`, `core routing decisions/s
//! (steady, N live): X`, and the handle() latency p50/p99 of a routed contact.

// A benchmark reads the wall clock: measuring is its whole job.
#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss
)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use contact::flow::{goodbye_flow, seed_flow};
use contact::{
    Agent, Center, Channel, Command, ContactId, Customer, Event, Hours, Settings, Status,
};
use jiff::{SignedDuration, Timestamp};

fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn agent_name(index: usize) -> String {
    format!("agent{index:04}")
}

struct Driver {
    center: Center,
    now: Timestamp,
    agents: usize,
    next_id: u64,
}

impl Driver {
    fn handle(&mut self, event: Event) -> Vec<Command> {
        self.now += SignedDuration::from_millis(1);
        self.center.handle(event, self.now).unwrap()
    }

    /// Starts one chat and carries it to connected; returns the time spent in the core.
    fn route_one(&mut self) -> Duration {
        self.next_id += 1;
        let contact = ContactId(self.next_id);
        let assigned = agent_name(usize::try_from(self.next_id).unwrap() % self.agents);
        let started = Instant::now();
        let commands = self.handle(Event::ContactStarted {
            contact,
            channel: Channel::Chat,
            from: format!("customer{}@example.jp", self.next_id),
            attributes: BTreeMap::new(),
        });
        assert!(
            commands
                .iter()
                .any(|command| matches!(command, Command::LookUpCustomer { .. })),
            "the seed's flow looks the customer up: {commands:?}"
        );
        let commands = self.handle(Event::CustomerFound {
            contact,
            customer: Some(Customer {
                record_id: i64::try_from(self.next_id).unwrap(),
                name: "Customer".into(),
                assigned_agent: Some(assigned),
            }),
        });
        let offered = commands.iter().find_map(|command| match command {
            Command::Offer { agent, .. } => Some(agent.clone()),
            _ => None,
        });
        let agent =
            offered.unwrap_or_else(|| panic!("contact {contact} was not offered: {commands:?}"));
        let commands = self.handle(Event::Accept { agent, contact });
        let elapsed = started.elapsed();
        assert!(
            commands
                .iter()
                .any(|command| matches!(command, Command::Connect { .. })),
            "accepting connects: {commands:?}"
        );
        elapsed
    }

    /// Ends the oldest live contact (customer leaves, the agent's wrap-up is done).
    fn end_one(&mut self, contact: ContactId) {
        let agent = self
            .center
            .contact(contact)
            .and_then(|live| live.agent.clone());
        self.handle(Event::CustomerLeft { contact });
        if let Some(agent) = agent {
            self.handle(Event::WrapUpDone { agent, contact });
        }
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let agents = number("AGENTS", 500);
    let contacts = number("CONTACTS", 10_000);
    let churn = number("CHURN", 20_000);
    let max_chats = 20;
    assert!(
        agents * max_chats >= contacts,
        "{agents} agents of {max_chats} chats cannot hold {contacts} chats"
    );
    let start: Timestamp = "2026-12-01T09:00:00+09:00".parse().unwrap();
    let center = Center::new(
        Settings {
            offer_timeout: SignedDuration::from_secs(20),
            wrap_up_timeout: SignedDuration::from_secs(120),
            main_flow: "inbound".into(),
        },
        BTreeMap::from([("support".to_owned(), Hours::always())]),
        (0..agents)
            .map(|index| Agent::new(&agent_name(index), &["support"], max_chats, start))
            .collect(),
        vec![seed_flow("support"), goodbye_flow()],
    )
    .unwrap();
    let mut driver = Driver {
        center,
        now: start,
        agents,
        next_id: 0,
    };
    for index in 0..agents {
        driver.handle(Event::AgentStatus {
            agent: agent_name(index),
            status: Status::Available,
        });
    }

    println!("core: {agents} agents x {max_chats} chats, one queue, the seed's flow");
    let tenth = (contacts / 10).max(1);
    let mut fill_rates = Vec::new();
    let mut latencies = Vec::with_capacity(contacts);
    let fill_started = Instant::now();
    let mut tenth_started = Instant::now();
    for index in 1..=contacts {
        latencies.push(driver.route_one());
        if index % tenth == 0 {
            let rate = tenth as f64 / tenth_started.elapsed().as_secs_f64();
            fill_rates.push(rate);
            tenth_started = Instant::now();
        }
    }
    let fill_total = fill_started.elapsed();
    println!(
        "fill: {contacts} chats routed in {:.2} s; decisions/s per tenth of the fill: {}",
        fill_total.as_secs_f64(),
        fill_rates
            .iter()
            .map(|rate| format!("{rate:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "core routing decisions/s (fill, last tenth): {:.0}",
        fill_rates.last().copied().unwrap_or(0.0)
    );

    let mut steady = Vec::with_capacity(churn);
    let churn_started = Instant::now();
    // The oldest live contact is the first one routed that has not ended yet.
    for oldest in (1..).take(churn) {
        driver.end_one(ContactId(oldest));
        steady.push(driver.route_one());
    }
    let churn_total = churn_started.elapsed();
    let live = driver.center.contacts().count();
    println!(
        "core routing decisions/s (steady, {live} live): {:.0} (each: a contact ended and wrapped up, a new one routed)",
        churn as f64 / churn_total.as_secs_f64()
    );
    steady.sort_unstable();
    println!(
        "core handle() per routed contact, steady: p50 {:.1} us, p99 {:.1} us",
        percentile(&steady, 0.50).as_secs_f64() * 1e6,
        percentile(&steady, 0.99).as_secs_f64() * 1e6
    );
}
