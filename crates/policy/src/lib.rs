//! Access policy for genkan: which request may reach which app, and why not.
//!
//! What it is: a pure evaluator. A [`Policy`] is compiled once from a [`document::PolicyDocument`]
//! (written in the TOML config or, later, edited in the admin pages) and then asked, for each
//! request, to [`Policy::decide`]. The answer names the deciding rule and the reason in words an
//! administrator can act on.
//!
//! The model is Pomerium's: a rule either allows or denies; a request is allowed when at least
//! one allow rule matches and no deny rule does (deny wins); with no matching rule it is denied.
//! A rule's criteria are all required (and); `any` and `not` give or and not.
//!
//! What it is not: it does no I/O, reads no clock and knows no sessions. The time of the request,
//! the user and groups, the source address and the device's compliance come in as a [`Request`];
//! time zones come in already resolved.
//!
//! Invariants:
//! - A deny rule that matches always wins over any allow rule.
//! - Evaluation never fails: a criterion that cannot be judged (no user, unknown device) does not match.
//! - Rules are kept in the order written; the first matching deny (else allow) rule is the one reported.

pub mod document;
mod matcher;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use jiff::Timestamp;

pub use document::PolicyDocument;
use matcher::{Matcher, Subject};

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let the request through (unless a deny rule matches too).
    Allow,
    /// Refuse the request.
    Deny,
}

/// The outcome of evaluating a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub action: Action,
    /// The rule that decided; `None` when no rule matched and the default (deny) applied.
    pub rule: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
    /// For a default deny: the allow rules written for this user that did not match, each with
    /// the first criterion that failed. For administrators (`genkan policy test`), never for
    /// the person refused, since it describes rules other than the deciding one.
    pub near_misses: Vec<String>,
}

impl Decision {
    /// Whether the request may proceed.
    pub fn allowed(&self) -> bool {
        self.action == Action::Allow
    }
}

/// Everything the policy may look at about one request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The signed-in user's name, if any.
    pub user: Option<&'a str>,
    /// The user's groups.
    pub groups: &'a [String],
    /// The client's address.
    pub source: IpAddr,
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Host without port, lower case.
    pub host: &'a str,
    /// Request path.
    pub path: &'a str,
    /// Whether the client's device is enrolled and compliant; `None` when unknown.
    pub device_compliant: Option<bool>,
    /// When the request arrived.
    pub now: Timestamp,
}

/// Things a group may do beyond reaching an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Send files to apps (request bodies that are file uploads).
    Upload,
    /// Receive files from apps (responses sent as attachments): the seed's "file exchange".
    Download,
    /// Export records (CSV and the like).
    Export,
    /// Listen to call recordings.
    RecordingPlayback,
    /// Run SQL against the records database.
    Sql,
    /// Administer genkan.
    Admin,
}

impl Capability {
    /// The name used in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Download => "download",
            Self::Export => "export",
            Self::RecordingPlayback => "recording_playback",
            Self::Sql => "sql",
            Self::Admin => "admin",
        }
    }

    /// Parses a configuration name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Upload,
            Self::Download,
            Self::Export,
            Self::RecordingPlayback,
            Self::Sql,
            Self::Admin,
        ]
        .into_iter()
        .find(|capability| capability.name() == name)
    }
}

/// Errors in a policy document, each naming the rule and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {problem}")]
pub struct Error {
    /// `rule[3] (contractors).allow.time_of_day` and the like.
    pub location: String,
    /// What is wrong.
    pub problem: String,
}

struct CompiledRule {
    name: String,
    action: Action,
    matcher: Matcher,
}

/// A compiled policy, ready to answer requests.
pub struct Policy {
    rules: Vec<CompiledRule>,
    zone: jiff::tz::TimeZone,
    /// Rule indexes that can only match one user.
    by_user: BTreeMap<String, Vec<usize>>,
    /// Rule indexes that can only match members of one group.
    by_group: BTreeMap<String, Vec<usize>>,
    /// Rule indexes that may match anyone.
    general: Vec<usize>,
    capabilities: BTreeMap<String, BTreeSet<Capability>>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Policy {
    /// Compiles a document. `zone` resolves time-zone names (the caller owns the tz database).
    pub fn compile(
        document: &PolicyDocument,
        zone: &dyn Fn(&str) -> Option<jiff::tz::TimeZone>,
    ) -> Result<Self, Error> {
        let compiled = document::compile(document, zone)?;
        let mut by_user: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut by_group: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut general = Vec::new();
        for (index, rule) in compiled.rules.iter().enumerate() {
            match rule.matcher.required_subject() {
                Some(Subject::User(name)) => by_user.entry(name).or_default().push(index),
                Some(Subject::Group(name)) => by_group.entry(name).or_default().push(index),
                None => general.push(index),
            }
        }
        Ok(Self {
            rules: compiled.rules,
            zone: compiled.zone,
            by_user,
            by_group,
            general,
            capabilities: compiled.capabilities,
        })
    }

    /// A policy with no rules: everything is denied.
    pub fn deny_all() -> Self {
        Self {
            rules: Vec::new(),
            zone: jiff::tz::TimeZone::UTC,
            by_user: BTreeMap::new(),
            by_group: BTreeMap::new(),
            general: Vec::new(),
            capabilities: BTreeMap::new(),
        }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Decides one request: the first matching deny rule, else the first matching allow rule,
    /// else the default deny.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        let candidates = self.candidates(request);
        let clock = matcher::Clock::new(request.now, &self.zone);
        let mut first_allow: Option<usize> = None;
        for index in candidates {
            let rule = &self.rules[index];
            if first_allow.is_some() && rule.action == Action::Allow {
                continue;
            }
            if rule.matcher.matches(request, &clock) {
                match rule.action {
                    Action::Deny => {
                        return Decision {
                            action: Action::Deny,
                            rule: Some(rule.name.clone()),
                            reason: format!(
                                "denied by rule `{}`: {}",
                                rule.name,
                                rule.matcher.describe()
                            ),
                            near_misses: Vec::new(),
                        };
                    }
                    Action::Allow => first_allow = Some(index),
                }
            }
        }
        match first_allow {
            Some(index) => {
                let rule = &self.rules[index];
                Decision {
                    action: Action::Allow,
                    rule: Some(rule.name.clone()),
                    reason: format!(
                        "allowed by rule `{}`: {}",
                        rule.name,
                        rule.matcher.describe()
                    ),
                    near_misses: Vec::new(),
                }
            }
            None => Decision {
                action: Action::Deny,
                rule: None,
                reason: "no rule allows this request".into(),
                near_misses: self.near_misses(request, &clock),
            },
        }
    }

    fn near_misses(&self, request: &Request<'_>, clock: &matcher::Clock<'_>) -> Vec<String> {
        self.candidates(request)
            .into_iter()
            .map(|index| &self.rules[index])
            .filter(|rule| rule.action == Action::Allow && rule.matcher.concerns(request, clock))
            .filter_map(|rule| {
                let failure = rule.matcher.first_failure(request, clock)?;
                Some(format!("rule `{}` {failure}", rule.name))
            })
            .collect()
    }

    /// Whether the policy grants capabilities per group at all. Without a `capabilities` table,
    /// capabilities are not restricted.
    pub fn restricts_capabilities(&self) -> bool {
        !self.capabilities.is_empty()
    }

    /// Capabilities granted to someone in `groups`.
    pub fn capabilities(&self, groups: &[String]) -> BTreeSet<Capability> {
        groups
            .iter()
            .filter_map(|group| self.capabilities.get(group))
            .flatten()
            .copied()
            .collect()
    }

    /// Rule indexes that could match, in the order written.
    fn candidates(&self, request: &Request<'_>) -> Vec<usize> {
        let mut indexes = self.general.clone();
        if let Some(found) = request.user.and_then(|user| self.by_user.get(user)) {
            indexes.extend_from_slice(found);
        }
        for group in request.groups {
            if let Some(found) = self.by_group.get(group) {
                indexes.extend_from_slice(found);
            }
        }
        // Written order decides which rule is reported, so restore it.
        indexes.sort_unstable();
        indexes.dedup();
        indexes
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    const CONTRACTOR_POLICY: &str = r#"
time_zone = "Asia/Tokyo"
holidays = ["2027-01-01"]

[capabilities]
admin = ["admin", "upload", "download", "export", "sql", "recording_playback"]
staff = ["upload", "download"]

[[rule]]
name = "admins-anywhere"
[rule.allow]
group = "admin"

[[rule]]
name = "contractors-weekday-office-hours"
[rule.allow]
group = "contractor"
weekdays = "mon-fri"
time_of_day = "09:00-18:00"
holiday = false
source_ip = ["203.0.113.0/24"]

[[rule]]
name = "no-deletes-except-admins"
[rule.deny]
method = "DELETE"
not = { group = "admin" }
"#;

    fn policy(text: &str) -> Policy {
        let document: PolicyDocument = toml::from_str(text).unwrap();
        Policy::compile(&document, &|name| jiff::tz::TimeZone::get(name).ok()).unwrap()
    }

    /// One line per case: `at user groups from method path -> decision`.
    // `expect![[…]]` is passed by value so that UPDATE_EXPECT can rewrite the literal in place.
    #[allow(clippy::needless_pass_by_value)]
    fn check(
        policy: &Policy,
        cases: &[(&str, Option<&str>, &[&str], &str, &str, &str)],
        expected: Expect,
    ) {
        let mut out = String::new();
        for (at, user, groups, from, method, path) in cases {
            let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
            let request = Request {
                user: *user,
                groups: &groups,
                source: from.parse().unwrap(),
                method,
                host: "gw.example.jp",
                path,
                device_compliant: None,
                now: at.parse().unwrap(),
            };
            let decision = policy.decide(&request);
            let verdict = if decision.allowed() { "allow" } else { "deny" };
            out.push_str(&format!(
                "{at} {} {from} {method} {path} -> {verdict}: {}\n",
                user.unwrap_or("-"),
                decision.reason
            ));
            for miss in decision.near_misses {
                out.push_str(&format!("    {miss}\n"));
            }
        }
        expected.assert_eq(&out);
    }

    #[test]
    fn contractor_rule_holds_to_weekday_office_hours_from_the_office_network() {
        let policy = policy(CONTRACTOR_POLICY);
        let c = Some("suzuki");
        let contractor: &[&str] = &["contractor"];
        check(
            &policy,
            &[
                (
                    "2026-12-03T10:00:00+09:00",
                    c,
                    contractor,
                    "203.0.113.5",
                    "GET",
                    "/fmi/iwp",
                ),
                (
                    "2026-12-03T09:00:00+09:00",
                    c,
                    contractor,
                    "203.0.113.5",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-03T08:59:59+09:00",
                    c,
                    contractor,
                    "203.0.113.5",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-03T17:59:59+09:00",
                    c,
                    contractor,
                    "203.0.113.5",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-03T18:01:00+09:00",
                    c,
                    contractor,
                    "203.0.113.5",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-03T09:01:00Z",
                    c,
                    contractor,
                    "203.0.113.5",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-05T10:00:00+09:00",
                    c,
                    contractor,
                    "203.0.113.5",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-03T10:00:00+09:00",
                    c,
                    contractor,
                    "198.51.100.7",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-03T10:00:00+09:00",
                    c,
                    contractor,
                    "::ffff:203.0.113.9",
                    "GET",
                    "/",
                ),
                (
                    "2027-01-01T10:00:00+09:00",
                    c,
                    contractor,
                    "203.0.113.5",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-03T10:00:00+09:00",
                    c,
                    contractor,
                    "203.0.113.5",
                    "DELETE",
                    "/fmi/record/1",
                ),
                (
                    "2026-12-05T23:00:00+09:00",
                    Some("tanaka"),
                    &["admin"],
                    "198.51.100.7",
                    "DELETE",
                    "/",
                ),
                (
                    "2026-12-03T10:00:00+09:00",
                    None,
                    &[],
                    "203.0.113.5",
                    "GET",
                    "/",
                ),
            ],
            expect![[r#"
                2026-12-03T10:00:00+09:00 suzuki 203.0.113.5 GET /fmi/iwp -> allow: allowed by rule `contractors-weekday-office-hours`: group contractor, weekday mon,tue,wed,thu,fri, time of day 09:00–18:00, not on a holiday, source address in 203.0.113.0/24
                2026-12-03T09:00:00+09:00 suzuki 203.0.113.5 GET / -> allow: allowed by rule `contractors-weekday-office-hours`: group contractor, weekday mon,tue,wed,thu,fri, time of day 09:00–18:00, not on a holiday, source address in 203.0.113.0/24
                2026-12-03T08:59:59+09:00 suzuki 203.0.113.5 GET / -> deny: no rule allows this request
                    rule `contractors-weekday-office-hours` needs time of day 09:00–18:00, but it is 08:59
                2026-12-03T17:59:59+09:00 suzuki 203.0.113.5 GET / -> allow: allowed by rule `contractors-weekday-office-hours`: group contractor, weekday mon,tue,wed,thu,fri, time of day 09:00–18:00, not on a holiday, source address in 203.0.113.0/24
                2026-12-03T18:01:00+09:00 suzuki 203.0.113.5 GET / -> deny: no rule allows this request
                    rule `contractors-weekday-office-hours` needs time of day 09:00–18:00, but it is 18:01
                2026-12-03T09:01:00Z suzuki 203.0.113.5 GET / -> deny: no rule allows this request
                    rule `contractors-weekday-office-hours` needs time of day 09:00–18:00, but it is 18:01
                2026-12-05T10:00:00+09:00 suzuki 203.0.113.5 GET / -> deny: no rule allows this request
                    rule `contractors-weekday-office-hours` needs weekday mon,tue,wed,thu,fri, but it is Saturday
                2026-12-03T10:00:00+09:00 suzuki 198.51.100.7 GET / -> deny: no rule allows this request
                    rule `contractors-weekday-office-hours` needs source address in 203.0.113.0/24, but the request came from 198.51.100.7
                2026-12-03T10:00:00+09:00 suzuki ::ffff:203.0.113.9 GET / -> allow: allowed by rule `contractors-weekday-office-hours`: group contractor, weekday mon,tue,wed,thu,fri, time of day 09:00–18:00, not on a holiday, source address in 203.0.113.0/24
                2027-01-01T10:00:00+09:00 suzuki 203.0.113.5 GET / -> deny: no rule allows this request
                    rule `contractors-weekday-office-hours` needs not on a holiday, but 2027-01-01 is a holiday
                2026-12-03T10:00:00+09:00 suzuki 203.0.113.5 DELETE /fmi/record/1 -> deny: denied by rule `no-deletes-except-admins`: method DELETE, not (group admin)
                2026-12-05T23:00:00+09:00 tanaka 198.51.100.7 DELETE / -> allow: allowed by rule `admins-anywhere`: group admin
                2026-12-03T10:00:00+09:00 - 203.0.113.5 GET / -> deny: no rule allows this request
            "#]],
        );
        assert_eq!(
            policy
                .capabilities(&["staff".to_owned(), "nobody".to_owned()])
                .into_iter()
                .collect::<Vec<_>>(),
            vec![Capability::Upload, Capability::Download]
        );
    }

    #[test]
    fn any_and_wrapping_ranges() {
        let policy = policy(
            r#"
[[rule]]
name = "night-shift-or-on-call"
[rule.allow]
any = [{ group = "night", time_of_day = "22:00-06:00" }, { user = "oncall" }]
weekdays = "fri-mon"
"#,
        );
        check(
            &policy,
            &[
                (
                    "2026-12-05T23:30:00+09:00",
                    Some("a"),
                    &["night"],
                    "10.0.0.1",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-07T05:59:00+09:00",
                    Some("a"),
                    &["night"],
                    "10.0.0.1",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-05T12:00:00+09:00",
                    Some("a"),
                    &["night"],
                    "10.0.0.1",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-05T12:00:00+09:00",
                    Some("oncall"),
                    &[],
                    "10.0.0.1",
                    "GET",
                    "/",
                ),
                (
                    "2026-12-03T12:00:00+09:00",
                    Some("oncall"),
                    &[],
                    "10.0.0.1",
                    "GET",
                    "/",
                ),
            ],
            expect![[r#"
                2026-12-05T23:30:00+09:00 a 10.0.0.1 GET / -> allow: allowed by rule `night-shift-or-on-call`: weekday mon,fri,sat,sun, any of (group night, time of day 22:00–06:00; user oncall)
                2026-12-07T05:59:00+09:00 a 10.0.0.1 GET / -> allow: allowed by rule `night-shift-or-on-call`: weekday mon,fri,sat,sun, any of (group night, time of day 22:00–06:00; user oncall)
                2026-12-05T12:00:00+09:00 a 10.0.0.1 GET / -> deny: no rule allows this request
                    rule `night-shift-or-on-call` needs any of (group night, time of day 22:00–06:00; user oncall)
                2026-12-05T12:00:00+09:00 oncall 10.0.0.1 GET / -> allow: allowed by rule `night-shift-or-on-call`: weekday mon,fri,sat,sun, any of (group night, time of day 22:00–06:00; user oncall)
                2026-12-03T12:00:00+09:00 oncall 10.0.0.1 GET / -> deny: no rule allows this request
                    rule `night-shift-or-on-call` needs weekday mon,fri,sat,sun, but it is Thursday
            "#]],
        );
    }

    #[test]
    fn bad_documents_name_rule_and_field() {
        let cases = [
            (
                "[[rule]]\nname = \"x\"\n[rule.allow]\ntime_of_day = \"9-18\"",
                "policy.rule[0] (x).allow.time_of_day",
            ),
            (
                "[[rule]]\n[rule.allow]\nweekdays = \"monday-friday\"",
                "policy.rule[0] (rule-0).allow.weekdays",
            ),
            (
                "[[rule]]\n[rule.allow]\nsource_ip = \"203.0.113.0/33\"",
                "policy.rule[0] (rule-0).allow.source_ip",
            ),
            (
                "[[rule]]\n[rule.allow]\nholiday = false",
                "policy.rule[0] (rule-0).allow.holiday",
            ),
            (
                "[[rule]]\n[rule.allow]\n[rule.deny]\neveryone = true",
                "policy.rule[0] (rule-0)",
            ),
            ("[[rule]]\n[rule.allow]\n", "policy.rule[0] (rule-0).allow"),
            ("time_zone = \"Mars/Olympus\"", "policy.time_zone"),
            (
                "[capabilities]\nstaff = [\"print\"]",
                "policy.capabilities.staff",
            ),
            (
                "[[rule]]\nname = \"a\"\n[rule.allow]\neveryone = true\n[[rule]]\nname = \"a\"\n[rule.allow]\neveryone = true",
                "policy.rule[1] (a)",
            ),
        ];
        for (text, location) in cases {
            let document: PolicyDocument = toml::from_str(text).unwrap();
            let error =
                Policy::compile(&document, &|name| jiff::tz::TimeZone::get(name).ok()).unwrap_err();
            assert_eq!(error.location, location, "{text}: {error}");
        }
    }

    #[test]
    fn stored_rules_follow_the_config_rules() {
        let config: PolicyDocument = toml::from_str(CONTRACTOR_POLICY).unwrap();
        let stored: PolicyDocument = toml::from_str(
            "holidays = [\"2027-01-11\"]\n[capabilities]\nstaff = []\n[[rule]]\nname = \"temps\"\n[rule.allow]\ngroup = \"temp\"\n",
        )
        .unwrap();
        let merged = config.merged(&stored).unwrap();
        let names: Vec<_> = merged
            .rules
            .iter()
            .filter_map(|rule| rule.name.as_deref())
            .collect();
        assert_eq!(
            names,
            [
                "admins-anywhere",
                "contractors-weekday-office-hours",
                "no-deletes-except-admins",
                "temps"
            ]
        );
        assert_eq!(merged.holidays.len(), 2);
        assert_eq!(merged.capabilities["staff"], Vec::<String>::new());
        let clash: PolicyDocument = toml::from_str("time_zone = \"UTC\"").unwrap();
        assert_eq!(
            config.merged(&clash).unwrap_err().location,
            "stored policy.time_zone"
        );
        let duplicate: PolicyDocument =
            toml::from_str("[[rule]]\nname = \"admins-anywhere\"\n[rule.allow]\neveryone = true\n")
                .unwrap();
        let merged = config.merged(&duplicate).unwrap();
        assert!(Policy::compile(&merged, &|name| jiff::tz::TimeZone::get(name).ok()).is_err());
    }

    #[test]
    fn an_empty_policy_denies() {
        let decision = Policy::deny_all().decide(&Request {
            user: Some("admin"),
            groups: &["admin".to_owned()],
            source: "127.0.0.1".parse().unwrap(),
            method: "GET",
            host: "x",
            path: "/",
            device_compliant: Some(true),
            now: Timestamp::UNIX_EPOCH,
        });
        assert!(!decision.allowed());
    }
}
