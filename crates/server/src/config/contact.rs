//! The `[contact]` settings, checked: queues with their hours, agents, and flows (the seed's
//! unless flow files are named), which must all be sound before genkan starts.

use std::collections::BTreeMap;
use std::path::Path;

use contact::flow::{Flow, goodbye_flow, seed_flow};
use contact::{Agent, Center, Hours, Settings};
use jiff::SignedDuration;
use jiff::civil::{Date, Time, Weekday};

use super::{ConfigError, ContactFile, duration};

/// An agent as configured.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// User name.
    pub name: String,
    /// Queues answered.
    pub queues: Vec<String>,
    /// Chats at once.
    pub max_chats: usize,
}

/// `[contact]`, checked. `None` in the config when no queue is configured.
#[derive(Debug, Clone)]
pub struct ContactSettings {
    /// Region for national phone numbers.
    pub region: phonenumber::country::Id,
    /// Timing and the main flow.
    pub center: Settings,
    /// Queues and their hours.
    pub queues: BTreeMap<String, Hours>,
    /// Agents.
    pub agents: Vec<AgentSettings>,
    /// Flows, each sound.
    pub flows: Vec<Flow>,
    /// Where customers are looked up: the records database and the source.
    pub customers: Option<(String, crate::center::lookup::CustomerSource)>,
}

impl ContactSettings {
    /// A center in its starting state (every agent Offline) at `now`.
    pub fn center(&self, now: jiff::Timestamp) -> Result<Center, contact::ContactError> {
        Center::new(
            self.center.clone(),
            self.queues.clone(),
            self.agents
                .iter()
                .map(|agent| {
                    let queues: Vec<&str> = agent.queues.iter().map(String::as_str).collect();
                    Agent::new(&agent.name, &queues, agent.max_chats, now)
                })
                .collect(),
            self.flows.clone(),
        )
    }
}

fn weekday(key: &str, text: &str) -> Result<Weekday, ConfigError> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => {
            return Err(ConfigError::new(
                key,
                format!("`{text}` is not a day (mon … sun)"),
            ));
        }
    })
}

fn clock(key: &str, text: &str) -> Result<Time, ConfigError> {
    if text == "24:00" {
        return Ok(Time::midnight());
    }
    text.parse::<Time>()
        .map_err(|_| ConfigError::new(key, format!("`{text}` is not a time such as \"09:00\"")))
}

fn hours(key: &str, queue: &super::file::ContactQueueFile) -> Result<Hours, ConfigError> {
    let zone_name = queue.time_zone.as_deref().unwrap_or("Asia/Tokyo");
    let zone = jiff::tz::TimeZone::get(zone_name).map_err(|_| {
        ConfigError::new(
            format!("{key}.time_zone"),
            format!("`{zone_name}` is not a time zone"),
        )
    })?;
    let days = match &queue.days {
        None => vec![
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ],
        Some(days) => days
            .iter()
            .map(|day| weekday(&format!("{key}.days"), day))
            .collect::<Result<_, _>>()?,
    };
    let (open, close) = match (&queue.open, &queue.close) {
        (None, None) => (Time::midnight(), Time::midnight()),
        (Some(open), Some(close)) => (
            clock(&format!("{key}.open"), open)?,
            clock(&format!("{key}.close"), close)?,
        ),
        _ => {
            return Err(ConfigError::new(
                format!("{key}.open"),
                "give both open and close, or neither (all day)",
            ));
        }
    };
    if close != Time::midnight() && close <= open {
        return Err(ConfigError::new(
            format!("{key}.close"),
            "must be after open",
        ));
    }
    let mut hours = Hours::on_days(zone, &days, open, close);
    for holiday in &queue.holidays {
        let date: Date = holiday.parse().map_err(|_| {
            ConfigError::new(
                format!("{key}.holidays"),
                format!("`{holiday}` is not a date such as \"2026-12-31\""),
            )
        })?;
        hours.holidays.insert(date);
    }
    Ok(hours)
}

pub(super) fn contact_settings(
    file: ContactFile,
    base: &Path,
    records_databases: &[String],
) -> Result<Option<ContactSettings>, ConfigError> {
    if file.queues.is_empty() {
        if !file.agents.is_empty() || !file.flows.is_empty() {
            return Err(ConfigError::new(
                "contact.queue",
                "agents and flows need at least one [[contact.queue]]",
            ));
        }
        return Ok(None);
    }
    let region_code = file.region.as_deref().unwrap_or("JP");
    let region = crate::center::phone::region(region_code).ok_or_else(|| {
        ConfigError::new(
            "contact.region",
            format!("`{region_code}` is not a country code such as \"JP\""),
        )
    })?;
    let span =
        |key: &str, text: &Option<String>, default: u64| -> Result<SignedDuration, ConfigError> {
            let value = match text {
                None => std::time::Duration::from_secs(default),
                Some(text) => duration(key, text)?,
            };
            SignedDuration::try_from(value).map_err(|_| ConfigError::new(key, "too long"))
        };
    let mut queues = BTreeMap::new();
    for (index, queue) in file.queues.iter().enumerate() {
        let key = format!("contact.queue[{index}]");
        if queue.name.trim().is_empty() || queues.contains_key(&queue.name) {
            return Err(ConfigError::new(
                format!("{key}.name"),
                format!("`{}` is empty or named twice", queue.name),
            ));
        }
        queues.insert(queue.name.clone(), hours(&key, queue)?);
    }
    let mut agents: Vec<AgentSettings> = Vec::new();
    for (index, agent) in file.agents.into_iter().enumerate() {
        let key = format!("contact.agent[{index}]");
        if agents.iter().any(|known| known.name == agent.name) {
            return Err(ConfigError::new(
                format!("{key}.name"),
                format!("`{}` is named twice", agent.name),
            ));
        }
        if let Some(queue) = agent
            .queues
            .iter()
            .find(|queue| !queues.contains_key(*queue))
        {
            return Err(ConfigError::new(
                format!("{key}.queues"),
                format!("`{queue}` is not a [[contact.queue]]"),
            ));
        }
        let max_chats = agent.max_chats.unwrap_or(3);
        if !(1..=20).contains(&max_chats) {
            return Err(ConfigError::new(
                format!("{key}.max_chats"),
                "must be 1 to 20",
            ));
        }
        agents.push(AgentSettings {
            name: agent.name,
            queues: agent.queues,
            max_chats,
        });
    }
    let flows = if file.flows.is_empty() {
        let first = file.queues[0].name.clone();
        vec![seed_flow(&first), goodbye_flow()]
    } else {
        let mut flows = Vec::new();
        for (index, path) in file.flows.iter().enumerate() {
            let key = format!("contact.flows[{index}]");
            let path = base.join(path);
            let text = std::fs::read_to_string(&path).map_err(|error| {
                ConfigError::new(&key, format!("cannot read {}: {error}", path.display()))
            })?;
            let flow: Flow = toml::from_str(&text).map_err(|error| {
                ConfigError::new(
                    &key,
                    format!("{}: {}", path.display(), error.to_string().trim_end()),
                )
            })?;
            flows.push(flow);
        }
        flows
    };
    let customers = match file.customers {
        None => None,
        Some(customers) => {
            if !records_databases.contains(&customers.database) {
                return Err(ConfigError::new(
                    "contact.customers.database",
                    format!("`{}` is not a [[records.database]]", customers.database),
                ));
            }
            if customers.phone_fields.is_empty() && customers.email_fields.is_empty() {
                return Err(ConfigError::new(
                    "contact.customers.phone_fields",
                    "name at least one phone or e-mail field to look customers up by",
                ));
            }
            Some((
                customers.database,
                crate::center::lookup::CustomerSource {
                    layout: customers.layout,
                    phone_fields: customers.phone_fields,
                    email_fields: customers.email_fields,
                    name_field: customers.name_field,
                    assigned_agent_field: customers.assigned_agent_field,
                    region,
                },
            ))
        }
    };
    let settings = ContactSettings {
        customers,
        region,
        center: Settings {
            offer_timeout: span("contact.offer_timeout", &file.offer_timeout, 20)?,
            wrap_up_timeout: span("contact.wrap_up_timeout", &file.wrap_up_timeout, 120)?,
            main_flow: file.main_flow.unwrap_or_else(|| "inbound".to_owned()),
        },
        queues,
        agents,
        flows,
    };
    // Every flow sound, every name known: the center itself is the check.
    settings
        .center(jiff::Timestamp::UNIX_EPOCH)
        .map_err(|error| ConfigError::new("contact.flows", error.to_string()))?;
    Ok(Some(settings))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError, Environment, parse};

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_file(
            parse(text)?,
            Path::new("/etc/genkan"),
            &Environment::default(),
        )
    }

    const CENTER: &str = "[contact]\n\
        [[contact.queue]]\nname = \"support\"\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\n\
        open = \"09:00\"\nclose = \"18:00\"\nholidays = [\"2026-12-31\"]\n\
        [[contact.agent]]\nname = \"agent1\"\nqueues = [\"support\"]\n\
        [[contact.agent]]\nname = \"agent2\"\nqueues = [\"support\"]\nmax_chats = 2\n";

    #[test]
    fn a_center_gets_the_seed_flow_and_its_hours() {
        assert!(load("").unwrap().contact.is_none());
        let contact = load(CENTER).unwrap().contact.unwrap();
        assert_eq!(contact.agents.len(), 2);
        assert_eq!(contact.agents[0].max_chats, 3);
        let names: Vec<&str> = contact
            .flows
            .iter()
            .map(|flow| flow.name.as_str())
            .collect();
        assert_eq!(names, ["inbound", "goodbye"]);
        let hours = &contact.queues["support"];
        assert!(hours.is_open("2026-12-30T10:00:00+09:00".parse().unwrap()));
        assert!(!hours.is_open("2026-12-31T10:00:00+09:00".parse().unwrap()));
        assert!(
            !hours.is_open("2027-01-02T10:00:00+09:00".parse().unwrap()),
            "a Saturday"
        );
        let center = contact
            .center("2026-12-30T00:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(center.agents().count(), 2);
    }

    #[test]
    fn customers_come_from_a_records_database() {
        let text = format!(
            "[[records.database]]\nname = \"demo\"\n{CENTER}[contact.customers]\ndatabase = \"demo\"\n\
             layout = \"customers\"\nphone_fields = [\"phone\"]\nemail_fields = [\"email\"]\n\
             name_field = \"name\"\nassigned_agent_field = \"assigned_agent\"\n"
        );
        let contact = load(&text).unwrap().contact.unwrap();
        let (database, source) = contact.customers.unwrap();
        assert_eq!(database, "demo");
        assert_eq!(source.phone_fields, ["phone"]);
        let none = text.replace(
            "phone_fields = [\"phone\"]\nemail_fields = [\"email\"]\n",
            "",
        );
        assert_eq!(
            load(&none).unwrap_err().key,
            "contact.customers.phone_fields"
        );
    }

    #[test]
    fn mistakes_name_their_key() {
        let cases = [
            (
                CENTER.replace("\"09:00\"", "\"9 o'clock\""),
                "contact.queue[0].open",
            ),
            (
                CENTER.replace("close = \"18:00\"", "close = \"08:00\""),
                "contact.queue[0].close",
            ),
            (
                CENTER.replace("\"mon\"", "\"monk\""),
                "contact.queue[0].days",
            ),
            (
                CENTER.replace("\"2026-12-31\"", "\"31/12\""),
                "contact.queue[0].holidays",
            ),
            (
                CENTER.replace(
                    "queues = [\"support\"]\nmax_chats",
                    "queues = [\"sales\"]\nmax_chats",
                ),
                "contact.agent[1].queues",
            ),
            (
                CENTER.replace("max_chats = 2", "max_chats = 0"),
                "contact.agent[1].max_chats",
            ),
            (
                CENTER.replace("name = \"agent2\"", "name = \"agent1\""),
                "contact.agent[1].name",
            ),
            (
                CENTER.replace("[contact]\n", "[contact]\nmain_flow = \"nope\"\n"),
                "contact.flows",
            ),
            (
                CENTER.replace("[contact]\n", "[contact]\nregion = \"XX\"\n"),
                "contact.region",
            ),
            (
                format!(
                    "{CENTER}[contact.customers]\ndatabase = \"crm\"\nlayout = \"customers\"\n\
                     phone_fields = [\"phone\"]\nname_field = \"name\"\n"
                ),
                "contact.customers.database",
            ),
            (
                CENTER.replace("[contact]\n", "[contact]\nflows = [\"missing.toml\"]\n"),
                "contact.flows[0]",
            ),
            (
                "[[contact.agent]]\nname = \"a\"\nqueues = []\n".to_owned(),
                "contact.queue",
            ),
            (
                CENTER.replace("[contact]\n", "[contact]\nring_time = \"5s\"\n"),
                "ring_time",
            ),
        ];
        for (text, key) in cases {
            let error = load(&text).unwrap_err();
            assert_eq!(error.key, key, "{text}\n→ {error:?}");
        }
    }
}
