//! A small center for the tests: queue `support` open weekdays 09:00–18:00 Tokyo time, agents
//! agent1 and agent2 answering it, the seed's flows; and a compact rendering of commands.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;

use contact::flow::{goodbye_flow, seed_flow};
use contact::{Agent, Center, Command, Flow, Hours, Settings};
use jiff::civil::{Weekday, time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// Wednesday 2026-11-25, 10:00 in Tokyo.
pub fn morning() -> Timestamp {
    "2026-11-25T10:00:00+09:00".parse().unwrap()
}

pub fn support_hours() -> Hours {
    Hours::on_days(
        TimeZone::get("Asia/Tokyo").unwrap(),
        &[
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ],
        time(9, 0, 0, 0),
        time(18, 0, 0, 0),
    )
}

pub fn center_with(flows: Vec<Flow>, main: &str, agents: &[&str]) -> Center {
    let start: Timestamp = "2026-11-25T08:00:00+09:00".parse().unwrap();
    Center::new(
        Settings {
            offer_timeout: SignedDuration::from_secs(20),
            wrap_up_timeout: SignedDuration::from_secs(60),
            main_flow: main.to_owned(),
        },
        BTreeMap::from([("support".to_owned(), support_hours())]),
        agents
            .iter()
            .map(|name| Agent::new(name, &["support"], 2, start))
            .collect(),
        flows,
    )
    .unwrap()
}

pub fn seed_center() -> Center {
    center_with(
        vec![seed_flow("support"), goodbye_flow()],
        "inbound",
        &["agent1", "agent2"],
    )
}

/// A command as one line of a trace.
pub fn render(command: &Command) -> String {
    match command {
        Command::Say { contact, text } => format!("say {contact}: {text}"),
        Command::LookUpCustomer {
            contact,
            channel,
            key,
        } => {
            format!("look up {contact} ({channel:?}) by {key}")
        }
        Command::InvokeWebhook {
            contact,
            url,
            timeout_ms,
            parameters,
        } => format!("webhook {contact} {url} ({timeout_ms} ms) {parameters:?}"),
        Command::AskInput {
            contact,
            prompt,
            choices,
        } => format!("ask {contact}: {prompt} {choices:?}"),
        Command::SetRecording { contact, on } => format!("recording {contact}: {on}"),
        Command::Queued {
            contact,
            queue,
            agent,
        } => match agent {
            Some(agent) => format!("queued {contact} in {queue} for {agent}"),
            None => format!("queued {contact} in {queue}"),
        },
        Command::Offer { contact, agent } => format!("offer {contact} to {agent}"),
        Command::OfferWithdrawn {
            contact,
            agent,
            reason,
        } => format!("withdrawn {contact} from {agent} ({reason})"),
        Command::Connect { contact, agent } => format!("connect {contact} with {agent}"),
        Command::WrapUp {
            agent,
            contact,
            until,
        } => format!("wrap-up {agent} {contact} until {until}"),
        Command::Presence { agent, presence } => format!("presence {agent}: {presence:?}"),
        Command::Ended { contact } => format!(
            "ended {} {:?} (queue {:?}, agent {:?})",
            contact.id, contact.outcome, contact.queue, contact.agent
        ),
    }
}

/// Runs events at times and writes the trace: each event, then its commands indented.
pub struct Trace {
    pub center: Center,
    pub lines: Vec<String>,
    pub commands: Vec<Command>,
}

impl Trace {
    pub fn new(center: Center) -> Self {
        Self {
            center,
            lines: Vec::new(),
            commands: Vec::new(),
        }
    }

    pub fn at(&mut self, now: Timestamp, label: &str, event: contact::Event) -> &mut Self {
        self.lines.push(label.to_owned());
        match self.center.handle(event, now) {
            Ok(commands) => {
                for command in &commands {
                    self.lines.push(format!("  {}", render(command)));
                }
                self.commands.extend(commands);
            }
            Err(error) => self.lines.push(format!("  refused: {error}")),
        }
        self
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}
