//! The written form of a policy, as it appears under `[policy]` in genkan's TOML config, and
//! its compilation into matchers with errors that name the rule and field.
//!
//! ```toml
//! [policy]
//! time_zone = "Asia/Tokyo"
//! holidays = ["2027-01-01"]
//!
//! [policy.capabilities]
//! admin = ["admin", "upload", "download", "export", "sql", "recording_playback"]
//!
//! [[policy.rule]]
//! name = "contractors-weekday-office-hours"
//! [policy.rule.allow]
//! group = "contractor"
//! weekdays = "mon-fri"
//! time_of_day = "09:00-18:00"
//! source_ip = ["203.0.113.0/24"]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use jiff::civil::{Date, Time};
use serde::Deserialize;

use crate::matcher::{Criterion, HostPattern, Matcher};
use crate::{Action, Capability, CompiledRule, Error};

/// The default zone for time criteria: the first users are Japanese companies.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Tokyo";

/// `[policy]`
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// IANA zone for `weekdays`, `time_of_day` and `holiday`. Default `Asia/Tokyo`.
    pub time_zone: Option<String>,
    /// Holiday dates, `YYYY-MM-DD`, for the `holiday` criterion.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Capabilities per group: `group = ["upload", "download", …]`.
    #[serde(default)]
    pub capabilities: BTreeMap<String, Vec<String>>,
    /// `[[policy.rule]]` tables, in order.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleDocument>,
}

/// `[[policy.rule]]`: a name and exactly one of `allow` or `deny`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDocument {
    /// Shown in decisions and the audit trail. Default `rule-N`.
    pub name: Option<String>,
    /// Criteria under which the request is allowed.
    pub allow: Option<MatchDocument>,
    /// Criteria under which the request is denied.
    pub deny: Option<MatchDocument>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `"x"`
    One(String),
    /// `["x", "y"]`
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> Vec<String> {
        match self {
            Self::One(item) => vec![item.clone()],
            Self::Many(items) => items.clone(),
        }
    }
}

/// Criteria; every one given must hold (and). `any` holds when one of its tables does (or);
/// `not` holds when its table does not.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchDocument {
    /// `true` matches every request.
    pub everyone: Option<bool>,
    /// `true`: someone is signed in; `false`: nobody is.
    pub authenticated: Option<bool>,
    /// User name(s).
    pub user: Option<OneOrMany>,
    /// Group name(s); membership of one is enough.
    pub group: Option<OneOrMany>,
    /// `"mon-fri"`, `"sat,sun"`, `"*"`.
    pub weekdays: Option<String>,
    /// `"09:00-18:00"`: from the start (included) to the end (excluded); `"22:00-06:00"` wraps.
    pub time_of_day: Option<String>,
    /// `true`: only on the listed holidays; `false`: never on them.
    pub holiday: Option<bool>,
    /// Addresses or CIDR blocks of the client.
    pub source_ip: Option<OneOrMany>,
    /// `true`: the device is enrolled and compliant.
    pub device_compliant: Option<bool>,
    /// HTTP method(s).
    pub method: Option<OneOrMany>,
    /// Host name(s); `*.example.jp` for subdomains.
    pub host: Option<OneOrMany>,
    /// Path prefix(es).
    pub path: Option<OneOrMany>,
    /// Alternatives: one of these tables must match.
    pub any: Option<Vec<Self>>,
    /// Exclusion: this table must not match.
    pub not: Option<Box<Self>>,
}

pub(crate) struct Compiled {
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) zone: jiff::tz::TimeZone,
    pub(crate) capabilities: BTreeMap<String, BTreeSet<Capability>>,
}

pub(crate) fn compile(
    document: &PolicyDocument,
    zone: &dyn Fn(&str) -> Option<jiff::tz::TimeZone>,
) -> Result<Compiled, Error> {
    let zone_name = document.time_zone.as_deref().unwrap_or(DEFAULT_TIME_ZONE);
    let resolved = zone(zone_name).ok_or_else(|| Error {
        location: "policy.time_zone".into(),
        problem: format!(
            "unknown time zone `{zone_name}`; use an IANA name such as \"Asia/Tokyo\""
        ),
    })?;
    let holidays = document
        .holidays
        .iter()
        .map(|text| {
            text.parse::<Date>().map_err(|_| Error {
                location: "policy.holidays".into(),
                problem: format!("`{text}` is not a date such as \"2027-01-01\""),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut capabilities = BTreeMap::new();
    for (group, names) in &document.capabilities {
        let set = names
            .iter()
            .map(|name| {
                Capability::from_name(name).ok_or_else(|| Error {
                    location: format!("policy.capabilities.{group}"),
                    problem: format!(
                        "unknown capability `{name}`; known: upload, download, export, recording_playback, sql, admin"
                    ),
                })
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        capabilities.insert(group.clone(), set);
    }
    let mut rules = Vec::with_capacity(document.rules.len());
    let mut names = BTreeSet::new();
    for (index, rule) in document.rules.iter().enumerate() {
        let name = rule.name.clone().unwrap_or_else(|| format!("rule-{index}"));
        let location = format!("policy.rule[{index}] ({name})");
        if !names.insert(name.clone()) {
            return Err(Error {
                location,
                problem: "another rule has the same name; names must be unique to audit decisions"
                    .into(),
            });
        }
        let (action, document, field) = match (&rule.allow, &rule.deny) {
            (Some(allow), None) => (Action::Allow, allow, "allow"),
            (None, Some(deny)) => (Action::Deny, deny, "deny"),
            _ => {
                return Err(Error {
                    location,
                    problem: "a rule has exactly one of `allow` or `deny`".into(),
                });
            }
        };
        let matcher = compile_match(document, &format!("{location}.{field}"), &holidays)?;
        rules.push(CompiledRule {
            name,
            action,
            matcher,
        });
    }
    Ok(Compiled {
        rules,
        zone: resolved,
        capabilities,
    })
}

fn compile_match(
    document: &MatchDocument,
    location: &str,
    holidays: &[Date],
) -> Result<Matcher, Error> {
    let error = |field: &str, problem: String| Error {
        location: format!("{location}.{field}"),
        problem,
    };
    let mut parts = Vec::new();
    if let Some(everyone) = document.everyone {
        if !everyone {
            return Err(error(
                "everyone",
                "only `everyone = true` means something; remove the key".into(),
            ));
        }
        parts.push(Matcher::One(Criterion::Everyone));
    }
    if let Some(wanted) = document.authenticated {
        parts.push(Matcher::One(Criterion::Authenticated(wanted)));
    }
    if let Some(users) = &document.user {
        parts.push(Matcher::One(Criterion::Users(non_empty(users, || {
            error("user", "empty list".into())
        })?)));
    }
    if let Some(groups) = &document.group {
        parts.push(Matcher::One(Criterion::Groups(non_empty(groups, || {
            error("group", "empty list".into())
        })?)));
    }
    if let Some(text) = &document.weekdays {
        parts.push(Matcher::One(Criterion::Weekdays(
            weekdays(text).map_err(|problem| error("weekdays", problem))?,
        )));
    }
    if let Some(text) = &document.time_of_day {
        let (start, end) = time_range(text).map_err(|problem| error("time_of_day", problem))?;
        parts.push(Matcher::One(Criterion::TimeOfDay { start, end }));
    }
    if let Some(on) = document.holiday {
        if holidays.is_empty() {
            return Err(error(
                "holiday",
                "no dates in policy.holidays to compare with".into(),
            ));
        }
        parts.push(Matcher::One(Criterion::Holiday {
            on,
            dates: holidays.to_vec(),
        }));
    }
    if let Some(sources) = &document.source_ip {
        let networks = non_empty(sources, || error("source_ip", "empty list".into()))?
            .iter()
            .map(|text| network(text).map_err(|problem| error("source_ip", problem)))
            .collect::<Result<Vec<_>, _>>()?;
        parts.push(Matcher::One(Criterion::SourceIp(networks)));
    }
    if let Some(wanted) = document.device_compliant {
        parts.push(Matcher::One(Criterion::DeviceCompliant(wanted)));
    }
    if let Some(methods) = &document.method {
        let methods = non_empty(methods, || error("method", "empty list".into()))?
            .into_iter()
            .map(|method| method.to_ascii_uppercase())
            .collect();
        parts.push(Matcher::One(Criterion::Methods(methods)));
    }
    if let Some(hosts) = &document.host {
        let patterns = non_empty(hosts, || error("host", "empty list".into()))?
            .into_iter()
            .map(|host| {
                let host = host.to_ascii_lowercase();
                match host.strip_prefix("*.") {
                    Some(suffix) => HostPattern::Subdomains(suffix.to_owned()),
                    None => HostPattern::Exact(host),
                }
            })
            .collect();
        parts.push(Matcher::One(Criterion::Hosts(patterns)));
    }
    if let Some(paths) = &document.path {
        let prefixes = non_empty(paths, || error("path", "empty list".into()))?;
        if let Some(bad) = prefixes.iter().find(|prefix| !prefix.starts_with('/')) {
            return Err(error("path", format!("`{bad}` must start with /")));
        }
        parts.push(Matcher::One(Criterion::PathPrefixes(prefixes)));
    }
    if let Some(alternatives) = &document.any {
        if alternatives.is_empty() {
            return Err(error("any", "empty list".into()));
        }
        let compiled = alternatives
            .iter()
            .enumerate()
            .map(|(index, alternative)| {
                compile_match(alternative, &format!("{location}.any[{index}]"), holidays)
            })
            .collect::<Result<Vec<_>, _>>()?;
        parts.push(Matcher::Any(compiled));
    }
    if let Some(excluded) = &document.not {
        parts.push(Matcher::Not(Box::new(compile_match(
            excluded,
            &format!("{location}.not"),
            holidays,
        )?)));
    }
    match parts.len() {
        0 => Err(Error {
            location: location.to_owned(),
            problem: "no criteria; write `everyone = true` to match every request".into(),
        }),
        1 => Ok(parts.remove(0)),
        _ => Ok(Matcher::All(parts)),
    }
}

fn non_empty(value: &OneOrMany, empty: impl Fn() -> Error) -> Result<Vec<String>, Error> {
    let items = value.items();
    if items.is_empty() {
        Err(empty())
    } else {
        Ok(items)
    }
}

fn weekday_index(name: &str) -> Option<usize> {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .position(|day| name.trim().eq_ignore_ascii_case(day))
}

/// `"mon-fri"`, `"sat,sun"`, `"mon,wed-fri"`, `"*"`; a range may wrap (`"fri-mon"`).
fn weekdays(text: &str) -> Result<[bool; 7], String> {
    let bad = || format!("`{text}` is not a list of days such as \"mon-fri\" or \"sat,sun\"");
    let mut days = [false; 7];
    if text.trim() == "*" {
        return Ok([true; 7]);
    }
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (
                    weekday_index(from).ok_or_else(bad)?,
                    weekday_index(to).ok_or_else(bad)?,
                );
                let mut day = from;
                loop {
                    days[day] = true;
                    if day == to {
                        break;
                    }
                    day = (day + 1) % 7;
                }
            }
            None => days[weekday_index(part).ok_or_else(bad)?] = true,
        }
    }
    Ok(days)
}

/// `"09:00-18:00"`.
fn time_range(text: &str) -> Result<(Time, Time), String> {
    let bad = || format!("`{text}` is not a range such as \"09:00-18:00\"");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let parse = |part: &str| Time::strptime("%H:%M", part.trim()).map_err(|_| bad());
    let (start, end) = (parse(start)?, parse(end)?);
    if start == end {
        return Err(format!("`{text}` is empty: start and end are the same"));
    }
    Ok((start, end))
}

fn network(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|network| network.trunc())
        .map_err(|_| format!("`{text}` is not an address or CIDR block such as \"203.0.113.0/24\""))
}

impl PolicyDocument {
    /// This document followed by `stored` (the rules kept in the database and edited in the
    /// admin pages): rules in order, holidays together, capabilities of `stored` replacing those
    /// of the same group. The time zone is this document's; `stored` may not set another.
    pub fn merged(&self, stored: &Self) -> Result<Self, Error> {
        if stored
            .time_zone
            .as_ref()
            .is_some_and(|zone| Some(zone) != self.time_zone.as_ref())
        {
            return Err(Error {
                location: "stored policy.time_zone".into(),
                problem:
                    "the time zone is set in the config file; remove it from the stored policy"
                        .into(),
            });
        }
        let mut merged = self.clone();
        merged.holidays.extend(stored.holidays.iter().cloned());
        merged.capabilities.extend(
            stored
                .capabilities
                .iter()
                .map(|(group, names)| (group.clone(), names.clone())),
        );
        merged.rules.extend(stored.rules.iter().cloned());
        Ok(merged)
    }
}
