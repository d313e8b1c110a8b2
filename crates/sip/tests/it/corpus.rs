//! Runs every message of `tests/corpus/` against the outcome `tests/corpus/index.txt`
//! names for it, and checks that the index and the directory list the same files.

use std::collections::BTreeSet;
use std::path::Path;

use sip::{Message, Transport, parse, refusal};

struct Case {
    file: String,
    transport: Transport,
    expected: Expected,
}

enum Expected {
    Parse,
    Refuse {
        status: u16,
        reason: String,
        answer: bool,
    },
}

fn corpus_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"))
}

fn cases() -> Vec<Case> {
    let index = std::fs::read_to_string(corpus_dir().join("index.txt")).unwrap();
    index
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let columns: Vec<&str> = line.split(" | ").collect();
            let transport = match columns[1] {
                "udp" => Transport::Udp,
                "tcp" => Transport::Tcp,
                other => panic!("{line}: unknown transport {other}"),
            };
            let expected = if columns[2] == "parse" {
                Expected::Parse
            } else {
                let (status, reason) = columns[2].split_once(' ').unwrap();
                let answer = match columns.get(3) {
                    Some(&"answer") => true,
                    Some(&"silent") => false,
                    other => panic!("{line}: refusal column is {other:?}"),
                };
                Expected::Refuse {
                    status: status.parse().unwrap(),
                    reason: reason.into(),
                    answer,
                }
            };
            Case {
                file: columns[0].into(),
                transport,
                expected,
            }
        })
        .collect()
}

#[test]
fn every_corpus_message_gets_the_outcome_the_index_names() {
    let mut failures = Vec::new();
    for case in cases() {
        let bytes = std::fs::read(corpus_dir().join(&case.file)).unwrap();
        let outcome = parse(&bytes, case.transport);
        match (&case.expected, outcome) {
            (Expected::Parse, Ok(message)) => {
                let again = parse(&message.to_bytes(), case.transport);
                if again.as_ref() != Ok(&message) {
                    failures.push(format!(
                        "{}: does not print back to itself: {again:?}",
                        case.file
                    ));
                }
            }
            (Expected::Parse, Err(error)) => {
                failures.push(format!("{}: refused with {error:?}", case.file))
            }
            (Expected::Refuse { .. }, Ok(_)) => {
                failures.push(format!("{}: parsed but must be refused", case.file))
            }
            (
                Expected::Refuse {
                    status,
                    reason,
                    answer,
                },
                Err(error),
            ) => {
                let got = (error.status(), error.reason());
                if got != (*status, reason.clone()) {
                    failures.push(format!(
                        "{}: refused with {} {} ({error}), expected {status} {reason}",
                        case.file, got.0, got.1
                    ));
                }
                let response = refusal(&bytes, &error, "corpus");
                match (answer, response) {
                    (true, Some(response)) => {
                        if (response.status, &response.reason) != (*status, reason) {
                            failures.push(format!(
                                "{}: refusal says {} {}",
                                case.file, response.status, response.reason
                            ));
                        }
                        let printed = response.to_bytes();
                        if !matches!(parse(&printed, Transport::Udp), Ok(Message::Response(_))) {
                            failures.push(format!("{}: the refusal does not parse", case.file));
                        }
                    }
                    (false, None) => {}
                    (true, None) => failures.push(format!("{}: no refusal built", case.file)),
                    (false, Some(_)) => failures.push(format!(
                        "{}: a refusal was built for a silent case",
                        case.file
                    )),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_index_lists_exactly_the_corpus_files() {
    let indexed: BTreeSet<String> = cases().into_iter().map(|case| case.file).collect();
    let present: BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sip"))
        .collect();
    assert_eq!(indexed, present);
    // Every category the corpus promises has members.
    for prefix in [
        "valid-",
        "bad-escape-",
        "huge-",
        "content-length-",
        "missing-",
        "cseq-",
    ] {
        assert!(
            indexed.iter().any(|file| file.starts_with(prefix)),
            "no {prefix} case"
        );
    }
}
