//! Compiled criteria and how they match a request.

use std::cell::OnceCell;

use ipnet::IpNet;
use jiff::Timestamp;
use jiff::civil::{DateTime, Time, Weekday};
use jiff::tz::TimeZone;

use crate::Request;

/// The request time, turned into local civil time at most once per decision.
pub(crate) struct Clock<'a> {
    now: Timestamp,
    zone: &'a TimeZone,
    local: OnceCell<DateTime>,
}

impl<'a> Clock<'a> {
    pub(crate) fn new(now: Timestamp, zone: &'a TimeZone) -> Self {
        Self {
            now,
            zone,
            local: OnceCell::new(),
        }
    }

    fn local(&self) -> DateTime {
        *self.local.get_or_init(|| self.zone.to_datetime(self.now))
    }
}

/// A host name, or `*.example.jp` for its subdomains.
#[derive(Debug, Clone)]
pub(crate) enum HostPattern {
    Exact(String),
    Subdomains(String),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => name == host,
            Self::Subdomains(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Exact(name) => name.clone(),
            Self::Subdomains(suffix) => format!("*.{suffix}"),
        }
    }
}

/// One test on a request.
#[derive(Debug, Clone)]
pub(crate) enum Criterion {
    Everyone,
    Authenticated(bool),
    Users(Vec<String>),
    Groups(Vec<String>),
    /// Indexed by `Weekday::to_monday_zero_offset`.
    Weekdays([bool; 7]),
    /// Start inclusive, end exclusive; an end before the start wraps past midnight.
    TimeOfDay {
        start: Time,
        end: Time,
    },
    /// `true`: only on listed holidays; `false`: never on them.
    Holiday {
        on: bool,
        dates: Vec<jiff::civil::Date>,
    },
    SourceIp(Vec<IpNet>),
    DeviceCompliant(bool),
    Methods(Vec<String>),
    Hosts(Vec<HostPattern>),
    PathPrefixes(Vec<String>),
}

impl Criterion {
    fn matches(&self, request: &Request<'_>, clock: &Clock<'_>) -> bool {
        match self {
            Self::Everyone => true,
            Self::Authenticated(wanted) => request.user.is_some() == *wanted,
            Self::Users(names) => request
                .user
                .is_some_and(|user| names.iter().any(|name| name == user)),
            Self::Groups(names) => names.iter().any(|name| request.groups.contains(name)),
            Self::Weekdays(days) => {
                days[usize::from(
                    clock
                        .local()
                        .weekday()
                        .to_monday_zero_offset()
                        .unsigned_abs(),
                )]
            }
            Self::TimeOfDay { start, end } => {
                let time = clock.local().time();
                if start <= end {
                    *start <= time && time < *end
                } else {
                    time >= *start || time < *end
                }
            }
            Self::Holiday { on, dates } => dates.contains(&clock.local().date()) == *on,
            Self::SourceIp(networks) => {
                let source = request.source.to_canonical();
                networks.iter().any(|network| network.contains(&source))
            }
            Self::DeviceCompliant(wanted) => request.device_compliant == Some(*wanted),
            Self::Methods(methods) => methods.iter().any(|method| method == request.method),
            Self::Hosts(patterns) => patterns.iter().any(|pattern| pattern.matches(request.host)),
            Self::PathPrefixes(prefixes) => prefixes
                .iter()
                .any(|prefix| request.path.starts_with(prefix.as_str())),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Everyone => "everyone".into(),
            Self::Authenticated(true) => "signed in".into(),
            Self::Authenticated(false) => "not signed in".into(),
            Self::Users(names) => format!("user {}", names.join(" or ")),
            Self::Groups(names) => format!("group {}", names.join(" or ")),
            Self::Weekdays(days) => {
                const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
                let listed: Vec<&str> = NAMES
                    .iter()
                    .zip(days)
                    .filter(|(_, on)| **on)
                    .map(|(name, _)| *name)
                    .collect();
                format!("weekday {}", listed.join(","))
            }
            Self::TimeOfDay { start, end } => {
                format!(
                    "time of day {}–{}",
                    start.strftime("%H:%M"),
                    end.strftime("%H:%M")
                )
            }
            Self::Holiday { on: true, .. } => "on a holiday".into(),
            Self::Holiday { on: false, .. } => "not on a holiday".into(),
            Self::SourceIp(networks) => {
                let listed: Vec<String> = networks.iter().map(ToString::to_string).collect();
                format!("source address in {}", listed.join(", "))
            }
            Self::DeviceCompliant(true) => "a compliant device".into(),
            Self::DeviceCompliant(false) => "a device that is not compliant".into(),
            Self::Methods(methods) => format!("method {}", methods.join(" or ")),
            Self::Hosts(patterns) => {
                let listed: Vec<String> = patterns.iter().map(HostPattern::text).collect();
                format!("host {}", listed.join(" or "))
            }
            Self::PathPrefixes(prefixes) => format!("path under {}", prefixes.join(" or ")),
        }
    }

    /// What the request had instead, for a criterion it failed.
    fn actual(&self, request: &Request<'_>, clock: &Clock<'_>) -> String {
        match self {
            Self::Everyone => String::new(),
            Self::Authenticated(_) | Self::Users(_) => match request.user {
                Some(user) => format!("the user is {user}"),
                None => "nobody is signed in".into(),
            },
            Self::Groups(_) if request.groups.is_empty() => "the user is in no group".into(),
            Self::Groups(_) => format!("the user's groups are {}", request.groups.join(", ")),
            Self::Weekdays(_) => format!("it is {}", weekday_name(clock.local().weekday())),
            Self::TimeOfDay { .. } => format!("it is {}", clock.local().time().strftime("%H:%M")),
            Self::Holiday { on: true, .. } => format!("{} is not a holiday", clock.local().date()),
            Self::Holiday { on: false, .. } => format!("{} is a holiday", clock.local().date()),
            Self::SourceIp(_) => format!("the request came from {}", request.source.to_canonical()),
            Self::DeviceCompliant(_) => match request.device_compliant {
                Some(true) => "the device is compliant".into(),
                Some(false) => "the device is not compliant".into(),
                None => "the device is not enrolled".into(),
            },
            Self::Methods(_) => format!("the method is {}", request.method),
            Self::Hosts(_) => format!("the host is {}", request.host),
            Self::PathPrefixes(_) => format!("the path is {}", request.path),
        }
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// A tree of criteria.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    All(Vec<Self>),
    Any(Vec<Self>),
    Not(Box<Self>),
    One(Criterion),
}

/// The identity a rule is limited to, which lets the policy skip rules that cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Subject {
    User(String),
    Group(String),
}

impl Matcher {
    pub(crate) fn matches(&self, request: &Request<'_>, clock: &Clock<'_>) -> bool {
        match self {
            Self::All(parts) => parts.iter().all(|part| part.matches(request, clock)),
            Self::Any(parts) => parts.iter().any(|part| part.matches(request, clock)),
            Self::Not(inner) => !inner.matches(request, clock),
            Self::One(criterion) => criterion.matches(request, clock),
        }
    }

    /// A subject every matching request must have, if the rule names exactly one.
    pub(crate) fn required_subject(&self) -> Option<Subject> {
        match self {
            Self::One(Criterion::Users(names)) if names.len() == 1 => {
                Some(Subject::User(names[0].clone()))
            }
            Self::One(Criterion::Groups(names)) if names.len() == 1 => {
                Some(Subject::Group(names[0].clone()))
            }
            Self::All(parts) => parts.iter().find_map(Self::required_subject),
            _ => None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::All(parts) => parts
                .iter()
                .map(Self::describe)
                .collect::<Vec<_>>()
                .join(", "),
            Self::Any(parts) => format!(
                "any of ({})",
                parts
                    .iter()
                    .map(Self::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Self::Not(inner) => format!("not ({})", inner.describe()),
            Self::One(criterion) => criterion.describe(),
        }
    }

    /// Whether the rule is about this request's user at all (its user and group criteria match).
    pub(crate) fn concerns(&self, request: &Request<'_>, clock: &Clock<'_>) -> bool {
        match self {
            Self::All(parts) => parts.iter().all(|part| part.concerns(request, clock)),
            Self::One(
                criterion @ (Criterion::Users(_)
                | Criterion::Groups(_)
                | Criterion::Authenticated(_)),
            ) => criterion.matches(request, clock),
            _ => true,
        }
    }

    /// For a request this matcher refuses: the first failing part, and what the request had instead.
    pub(crate) fn first_failure(&self, request: &Request<'_>, clock: &Clock<'_>) -> Option<String> {
        match self {
            Self::All(parts) => parts
                .iter()
                .find_map(|part| part.first_failure(request, clock)),
            Self::One(criterion) if !criterion.matches(request, clock) => Some(format!(
                "needs {}, but {}",
                criterion.describe(),
                criterion.actual(request, clock)
            )),
            other if !other.matches(request, clock) => Some(format!("needs {}", other.describe())),
            _ => None,
        }
    }
}
