//! Decision latency for a policy of many rules: `bench/auth` runs this.
//!
//! Builds a policy of N rules shaped like a real company's (one allow rule per contractor
//! user, per-team group rules with time windows and source blocks, a few deny rules that apply
//! to everyone), then times single decisions one by one and reports the distribution.
//! The goal from the identity issue: a decision under 10 µs at p99 with 1,000 rules.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::Instant;

use policy::{Policy, PolicyDocument, Request};

fn document(rules: usize) -> String {
    let mut text = String::from("time_zone = \"Asia/Tokyo\"\nholidays = [\"2027-01-01\"]\n");
    for index in 0..rules {
        let rule = match index % 10 {
            // Deny rules that every request has to be checked against.
            0 if index < 50 => format!(
                "[[rule]]\nname = \"deny-{index}\"\n[rule.deny]\nmethod = \"DELETE\"\npath = \"/restricted/{index}/\"\n"
            ),
            1..=4 => format!(
                "[[rule]]\nname = \"user-{index}\"\n[rule.allow]\nuser = \"user{index}\"\nweekdays = \"mon-fri\"\ntime_of_day = \"09:00-18:00\"\nsource_ip = [\"203.0.{}.0/24\"]\n",
                index % 250
            ),
            _ => format!(
                "[[rule]]\nname = \"team-{index}\"\n[rule.allow]\ngroup = \"team{index}\"\nhost = \"app{}.example.jp\"\npath = \"/apps/{index}/\"\nholiday = false\n",
                index % 20
            ),
        };
        text.push_str(&rule);
    }
    text
}

fn main() {
    let rules: usize = std::env::var("RULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let decisions: usize = std::env::var("DECISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let document: PolicyDocument = toml::from_str(&document(rules)).unwrap();
    let policy = Policy::compile(&document, &|name| jiff::tz::TimeZone::get(name).ok()).unwrap();
    assert_eq!(policy.len(), rules);

    // A mix: a contractor inside its window, one outside, a team member, and a stranger.
    let groups_team = vec!["team15".to_owned(), "staff".to_owned()];
    let no_groups: Vec<String> = Vec::new();
    let now_inside: jiff::Timestamp = "2026-12-03T10:00:00+09:00".parse().unwrap();
    let now_outside: jiff::Timestamp = "2026-12-03T19:00:00+09:00".parse().unwrap();
    let requests = [
        Request {
            user: Some("user11"),
            groups: &no_groups,
            source: "203.0.11.7".parse().unwrap(),
            method: "GET",
            host: "app1.example.jp",
            path: "/fmi/iwp",
            device_compliant: None,
            now: now_inside,
        },
        Request {
            user: Some("user11"),
            groups: &no_groups,
            source: "203.0.11.7".parse().unwrap(),
            method: "GET",
            host: "app1.example.jp",
            path: "/fmi/iwp",
            device_compliant: None,
            now: now_outside,
        },
        Request {
            user: Some("member"),
            groups: &groups_team,
            source: "198.51.100.4".parse().unwrap(),
            method: "POST",
            host: "app15.example.jp",
            path: "/apps/15/save",
            device_compliant: Some(true),
            now: now_inside,
        },
        Request {
            user: None,
            groups: &no_groups,
            source: "192.0.2.1".parse().unwrap(),
            method: "GET",
            host: "app3.example.jp",
            path: "/",
            device_compliant: None,
            now: now_inside,
        },
    ];
    let expected: Vec<bool> = requests
        .iter()
        .map(|request| policy.decide(request).allowed())
        .collect();
    assert_eq!(
        expected,
        vec![true, false, true, false],
        "the benchmark policy does not decide as designed"
    );

    let mut samples = Vec::with_capacity(decisions);
    let started = Instant::now();
    for index in 0..decisions {
        let request = &requests[index % requests.len()];
        let before = Instant::now();
        let decision = policy.decide(request);
        samples.push(before.elapsed().as_nanos() as u64);
        std::hint::black_box(decision);
    }
    let total = started.elapsed();
    samples.sort_unstable();
    let percentile = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0;
    println!("rules: {rules}, decisions: {decisions} (one thread)");
    println!("decisions/s: {:.0}", decisions as f64 / total.as_secs_f64());
    println!("p50 µs: {:.2}", percentile(0.50));
    println!("p99 µs: {:.2}", percentile(0.99));
    println!("p99.9 µs: {:.2}", percentile(0.999));
    println!("max µs: {:.2}", percentile(1.0));
}
