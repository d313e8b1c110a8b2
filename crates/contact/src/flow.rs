//! Flows as data: named blocks, each naming the blocks its branches lead to, validated before
//! they are saved. The blocks are Amazon Connect's that a small center uses; the default flow is
//! the seed's (check hours → look up the caller → their assigned agent, else anyone, else a
//! message and goodbye).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A flow: blocks by name and the one it starts at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// The flow's name (what `set_disconnect_flow` names).
    pub name: String,
    /// The first block.
    pub start: String,
    /// The blocks, by name.
    pub blocks: BTreeMap<String, Block>,
}

/// One step of a flow. Fields named like blocks are branches: the block that runs next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Block {
    /// Whether `queue`'s hours of operation are open now.
    CheckHours {
        /// Queue whose hours count.
        queue: String,
        /// Open.
        open: String,
        /// Closed (or a holiday).
        closed: String,
    },
    /// Finds the customer by the caller's number or the chat's e-mail or phone.
    LookUpCustomer {
        /// A record was found (its fields become `customer.*` attributes).
        found: String,
        /// No record has that number or address.
        not_found: String,
        /// The lookup failed (database unreachable).
        error: String,
    },
    /// The seed's routing: the customer's assigned agent if Available, else any Available agent
    /// of `queue`, else `nobody`.
    TransferToAssignedAgent {
        /// Queue for anyone else, and for the contact record.
        queue: String,
        /// Nobody is available.
        nobody: String,
    },
    /// Queues the contact; `nobody` if no agent of the queue is signed in and available.
    TransferToQueue {
        /// The queue.
        queue: String,
        /// Nobody could take it.
        nobody: String,
    },
    /// Whether any agent of `queue` is Available now.
    CheckStaffing {
        /// The queue.
        queue: String,
        /// Someone is.
        staffed: String,
        /// No one is.
        unstaffed: String,
    },
    /// A prompt on a call, a message in a chat.
    Say {
        /// What is said; `{customer.name}`-style names are replaced by attributes.
        text: String,
        /// Next block.
        next: String,
    },
    /// Waits for a key (calls: DTMF) or a choice (chats: buttons).
    GetInput {
        /// What is asked.
        prompt: String,
        /// Input → block.
        choices: BTreeMap<String, String>,
        /// Seconds to wait.
        timeout_seconds: u32,
        /// Nothing came, or something not offered.
        no_match: String,
    },
    /// Sets a contact attribute.
    SetAttribute {
        /// Attribute name.
        key: String,
        /// Value (attribute names in braces are replaced).
        value: String,
        /// Next block.
        next: String,
    },
    /// Turns call recording on or off from here.
    SetRecording {
        /// On or off.
        on: bool,
        /// Next block.
        next: String,
    },
    /// Names the flow that runs when the agent ends the contact (a chat's closing message).
    SetDisconnectFlow {
        /// The flow.
        flow: String,
        /// Next block.
        next: String,
    },
    /// Calls a web service with Amazon Connect's Lambda event; its flat string answer is merged
    /// into the attributes.
    InvokeWebhook {
        /// The service (http or https).
        url: String,
        /// Milliseconds to wait, 1 to 8,000 (Amazon Connect's limit).
        timeout_ms: u32,
        /// The event's `Details.Parameters` (attribute names in braces are replaced).
        #[serde(default)]
        parameters: BTreeMap<String, String>,
        /// It answered a flat string map in time.
        ok: String,
        /// Timeout, an HTTP error or an answer that is not a flat string map.
        error: String,
    },
    /// Ends the contact. (Written with braces so that, like every block, it refuses keys it
    /// does not have.)
    Disconnect {},
}

impl Block {
    /// The blocks this one may lead to, with their branch names.
    pub fn branches(&self) -> Vec<(&'static str, &str)> {
        match self {
            Self::CheckHours { open, closed, .. } => vec![("open", open), ("closed", closed)],
            Self::LookUpCustomer {
                found,
                not_found,
                error,
            } => vec![("found", found), ("not_found", not_found), ("error", error)],
            Self::TransferToAssignedAgent { nobody, .. } | Self::TransferToQueue { nobody, .. } => {
                vec![("nobody", nobody)]
            }
            Self::CheckStaffing {
                staffed, unstaffed, ..
            } => vec![("staffed", staffed), ("unstaffed", unstaffed)],
            Self::Say { next, .. }
            | Self::SetAttribute { next, .. }
            | Self::SetRecording { next, .. }
            | Self::SetDisconnectFlow { next, .. } => vec![("next", next)],
            Self::GetInput {
                choices, no_match, ..
            } => choices
                .values()
                .map(|target| ("choice", target.as_str()))
                .chain(std::iter::once(("no_match", no_match.as_str())))
                .collect(),
            Self::InvokeWebhook { ok, error, .. } => vec![("ok", ok), ("error", error)],
            Self::Disconnect {} => Vec::new(),
        }
    }
}

/// What is wrong with a flow, block by block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowProblem {
    /// The start block does not exist.
    #[error("flow {flow}: the start block `{start}` does not exist")]
    NoStart {
        /// Flow.
        flow: String,
        /// Its start.
        start: String,
    },
    /// A branch leads to a block that does not exist.
    #[error(
        "flow {flow}: block `{block}`: branch `{branch}` leads to `{target}`, which does not exist"
    )]
    MissingTarget {
        /// Flow.
        flow: String,
        /// Block.
        block: String,
        /// Branch.
        branch: String,
        /// Where it leads.
        target: String,
    },
    /// No path from the start reaches the block.
    #[error("flow {flow}: block `{block}` cannot be reached from `{start}`")]
    Unreachable {
        /// Flow.
        flow: String,
        /// Block.
        block: String,
        /// The start.
        start: String,
    },
    /// A block's settings are out of range.
    #[error("flow {flow}: block `{block}`: {reason}")]
    Invalid {
        /// Flow.
        flow: String,
        /// Block.
        block: String,
        /// Why.
        reason: String,
    },
    /// A block names a queue or flow the center does not have.
    #[error("flow {flow}: block `{block}` names {what} `{name}`, which does not exist")]
    UnknownName {
        /// Flow.
        flow: String,
        /// Block.
        block: String,
        /// `queue` or `flow`.
        what: &'static str,
        /// The name.
        name: String,
    },
}

impl Flow {
    /// Every problem of the flow, given the queues and flows it may name; empty when it is sound.
    pub fn problems(
        &self,
        queues: &BTreeSet<String>,
        flows: &BTreeSet<String>,
    ) -> Vec<FlowProblem> {
        let mut problems = Vec::new();
        let flow = || self.name.clone();
        if !self.blocks.contains_key(&self.start) {
            problems.push(FlowProblem::NoStart {
                flow: flow(),
                start: self.start.clone(),
            });
        }
        for (name, block) in &self.blocks {
            for (branch, target) in block.branches() {
                if !self.blocks.contains_key(target) {
                    problems.push(FlowProblem::MissingTarget {
                        flow: flow(),
                        block: name.clone(),
                        branch: branch.to_owned(),
                        target: target.to_owned(),
                    });
                }
            }
            let invalid = |reason: &str| FlowProblem::Invalid {
                flow: flow(),
                block: name.clone(),
                reason: reason.to_owned(),
            };
            let unknown = |what: &'static str, value: &str| FlowProblem::UnknownName {
                flow: flow(),
                block: name.clone(),
                what,
                name: value.to_owned(),
            };
            match block {
                Block::CheckHours { queue, .. }
                | Block::TransferToAssignedAgent { queue, .. }
                | Block::TransferToQueue { queue, .. }
                | Block::CheckStaffing { queue, .. }
                    if !queues.contains(queue) =>
                {
                    problems.push(unknown("queue", queue));
                }
                Block::SetDisconnectFlow { flow: target, .. } if !flows.contains(target) => {
                    problems.push(unknown("flow", target));
                }
                Block::InvokeWebhook {
                    timeout_ms, url, ..
                } => {
                    if !(1..=8_000).contains(timeout_ms) {
                        problems.push(invalid("timeout_ms must be 1 to 8000"));
                    }
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        problems.push(invalid("url must be http:// or https://"));
                    }
                }
                Block::GetInput {
                    choices,
                    timeout_seconds,
                    ..
                } => {
                    if choices.is_empty() {
                        problems.push(invalid("get_input needs at least one choice"));
                    }
                    if !(1..=300).contains(timeout_seconds) {
                        problems.push(invalid("timeout_seconds must be 1 to 300"));
                    }
                }
                _ => {}
            }
        }
        let mut reached = BTreeSet::new();
        let mut stack = vec![self.start.as_str()];
        while let Some(name) = stack.pop() {
            if !reached.insert(name) {
                continue;
            }
            if let Some(block) = self.blocks.get(name) {
                stack.extend(block.branches().into_iter().map(|(_, target)| target));
            }
        }
        for name in self.blocks.keys() {
            if !reached.contains(name.as_str()) {
                problems.push(FlowProblem::Unreachable {
                    flow: flow(),
                    block: name.clone(),
                    start: self.start.clone(),
                });
            }
        }
        problems
    }
}

/// The seed's inbound flow for `queue`: check hours, look up the customer, their assigned agent,
/// else any available agent, else a message and goodbye. Chats get a closing message.
pub fn seed_flow(queue: &str) -> Flow {
    let text = |text: &str, next: &str| Block::Say {
        text: text.to_owned(),
        next: next.to_owned(),
    };
    let blocks = [
        (
            "hours",
            Block::CheckHours {
                queue: queue.to_owned(),
                open: "closing-message".into(),
                closed: "closed".into(),
            },
        ),
        (
            "closing-message",
            Block::SetDisconnectFlow {
                flow: "goodbye".into(),
                next: "look-up".into(),
            },
        ),
        (
            "look-up",
            Block::LookUpCustomer {
                found: "assigned-agent".into(),
                not_found: "assigned-agent".into(),
                error: "assigned-agent".into(),
            },
        ),
        (
            "assigned-agent",
            Block::TransferToAssignedAgent {
                queue: queue.to_owned(),
                nobody: "nobody".into(),
            },
        ),
        (
            "closed",
            text(
                "お問い合わせありがとうございます。本日の受付は終了しました。営業時間内に改めてご連絡ください。",
                "end",
            ),
        ),
        (
            "nobody",
            text(
                "ただいま担当者がすべて対応中です。恐れ入りますが、しばらくしてから改めてご連絡ください。",
                "end",
            ),
        ),
        ("end", Block::Disconnect {}),
    ];
    Flow {
        name: "inbound".into(),
        start: "hours".into(),
        blocks: blocks
            .into_iter()
            .map(|(name, block)| (name.to_owned(), block))
            .collect(),
    }
}

/// The seed's disconnect flow: a closing message, then goodbye.
pub fn goodbye_flow() -> Flow {
    Flow {
        name: "goodbye".into(),
        start: "thanks".into(),
        blocks: [
            (
                "thanks".to_owned(),
                Block::Say {
                    text: "お問い合わせありがとうございました。チャットを終了します。".into(),
                    next: "end".into(),
                },
            ),
            ("end".to_owned(), Block::Disconnect {}),
        ]
        .into_iter()
        .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn the_seed_flows_are_sound() {
        let queues = names(&["support"]);
        let flows = names(&["inbound", "goodbye"]);
        assert_eq!(seed_flow("support").problems(&queues, &flows), []);
        assert_eq!(goodbye_flow().problems(&queues, &flows), []);
    }

    #[test]
    fn missing_branches_unreachable_blocks_and_bad_settings_are_named() {
        let mut flow = seed_flow("support");
        flow.blocks.insert("orphan".into(), Block::Disconnect {});
        flow.blocks.insert(
            "hours".into(),
            Block::CheckHours {
                queue: "sales".into(),
                open: "closing-message".into(),
                closed: "nowhere".into(),
            },
        );
        flow.blocks.insert(
            "closing-message".into(),
            Block::InvokeWebhook {
                url: "ftp://x".into(),
                timeout_ms: 9_000,
                parameters: BTreeMap::new(),
                ok: "look-up".into(),
                error: "look-up".into(),
            },
        );
        let problems: Vec<String> = flow
            .problems(&names(&["support"]), &names(&["inbound"]))
            .iter()
            .map(ToString::to_string)
            .collect();
        expect_test::expect![[r#"
            [
                "flow inbound: block `closing-message`: timeout_ms must be 1 to 8000",
                "flow inbound: block `closing-message`: url must be http:// or https://",
                "flow inbound: block `hours`: branch `closed` leads to `nowhere`, which does not exist",
                "flow inbound: block `hours` names queue `sales`, which does not exist",
                "flow inbound: block `closed` cannot be reached from `hours`",
                "flow inbound: block `orphan` cannot be reached from `hours`",
            ]
        "#]]
        .assert_debug_eq(&problems);
    }

    #[test]
    fn flows_read_from_toml() {
        let flow: Flow = toml::from_str(
            r#"
            name = "menu"
            start = "ask"
            [blocks.ask]
            type = "get_input"
            prompt = "1: 請求 2: その他"
            choices = { "1" = "billing", "2" = "other" }
            timeout_seconds = 10
            no_match = "other"
            [blocks.billing]
            type = "transfer_to_queue"
            queue = "billing"
            nobody = "other"
            [blocks.other]
            type = "disconnect"
            "#,
        )
        .unwrap();
        assert_eq!(flow.problems(&names(&["billing"]), &BTreeSet::new()), []);
        let wrong = toml::from_str::<Flow>(
            "name = \"x\"\nstart = \"a\"\n[blocks.a]\ntype = \"disconnect\"\nnext = \"b\"\n",
        );
        assert!(wrong.is_err(), "unknown keys are refused");
    }
}
