//! Routing traces: scripted events through the seed's flow (every branch, and the hours check)
//! and the other blocks, with the commands they produce as snapshots. `UPDATE_EXPECT=1 cargo
//! test -p contact` rewrites a snapshot after a deliberate change; read the diff.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{Trace, center_with, morning, seed_center};
use contact::flow::Block;
use contact::{Channel, ContactId, Customer, Event, Flow, Status};
use expect_test::expect;
use jiff::{SignedDuration, Timestamp};

const CALL: ContactId = ContactId(1);

fn later(seconds: i64) -> Timestamp {
    morning() + SignedDuration::from_secs(seconds)
}

fn available(trace: &mut Trace, agent: &str, at: Timestamp) {
    trace.at(
        at,
        &format!("{agent} Available"),
        Event::AgentStatus {
            agent: agent.into(),
            status: Status::Available,
        },
    );
}

fn call(trace: &mut Trace, from: &str) {
    trace.at(
        later(0),
        &format!("call from {from}"),
        Event::ContactStarted {
            contact: CALL,
            channel: Channel::Voice,
            from: from.into(),
            attributes: BTreeMap::new(),
        },
    );
}

fn found(trace: &mut Trace, assigned: Option<&str>) {
    trace.at(
        later(1),
        "lookup answers",
        Event::CustomerFound {
            contact: CALL,
            customer: Some(Customer {
                record_id: 7,
                name: "佐藤 花子".into(),
                assigned_agent: assigned.map(str::to_owned),
            }),
        },
    );
}

#[test]
fn known_caller_goes_to_the_assigned_agent_when_available() {
    let mut trace = Trace::new(seed_center());
    available(&mut trace, "agent2", later(-600));
    available(&mut trace, "agent1", later(-60));
    call(&mut trace, "+81312345678");
    found(&mut trace, Some("agent1"));
    trace.at(
        later(5),
        "agent1 accepts",
        Event::Accept {
            agent: "agent1".into(),
            contact: CALL,
        },
    );
    trace.at(
        later(200),
        "caller hangs up",
        Event::CustomerLeft { contact: CALL },
    );
    trace.at(
        later(230),
        "agent1 done",
        Event::WrapUpDone {
            agent: "agent1".into(),
            contact: CALL,
        },
    );
    expect![[r#"
        agent2 Available
          presence agent2: Available
        agent1 Available
          presence agent1: Available
        call from +81312345678
          look up contact-1 (Voice) by +81312345678
        lookup answers
          queued contact-1 in support for agent1
          offer contact-1 to agent1
          presence agent1: OnContact
        agent1 accepts
          connect contact-1 with agent1
        caller hangs up
          wrap-up agent1 contact-1 until 2026-11-25T01:04:20Z
          ended contact-1 Some(Completed) (queue Some("support"), agent Some("agent1"))
          presence agent1: AfterContactWork
        agent1 done
          presence agent1: Available"#]]
    .assert_eq(&trace.text());
}

#[test]
fn known_caller_whose_agent_is_away_goes_to_anyone_available() {
    let mut trace = Trace::new(seed_center());
    available(&mut trace, "agent2", later(-60));
    call(&mut trace, "+81312345678");
    found(&mut trace, Some("agent1"));
    expect![[r#"
        agent2 Available
          presence agent2: Available
        call from +81312345678
          look up contact-1 (Voice) by +81312345678
        lookup answers
          queued contact-1 in support
          offer contact-1 to agent2
          presence agent2: OnContact"#]]
    .assert_eq(&trace.text());
}

#[test]
fn unknown_caller_goes_to_the_longest_idle_agent() {
    let mut trace = Trace::new(seed_center());
    available(&mut trace, "agent1", later(-60));
    available(&mut trace, "agent2", later(-600));
    call(&mut trace, "+819000000000");
    trace.at(
        later(1),
        "lookup finds nobody",
        Event::CustomerFound {
            contact: CALL,
            customer: None,
        },
    );
    expect![[r#"
        agent1 Available
          presence agent1: Available
        agent2 Available
          presence agent2: Available
        call from +819000000000
          look up contact-1 (Voice) by +819000000000
        lookup finds nobody
          queued contact-1 in support
          offer contact-1 to agent2
          presence agent2: OnContact"#]]
    .assert_eq(&trace.text());
}

#[test]
fn a_failed_lookup_is_routed_like_an_unknown_caller() {
    let mut trace = Trace::new(seed_center());
    available(&mut trace, "agent1", later(-60));
    call(&mut trace, "+819000000000");
    trace.at(
        later(1),
        "lookup fails",
        Event::LookupFailed { contact: CALL },
    );
    expect![[r#"
        agent1 Available
          presence agent1: Available
        call from +819000000000
          look up contact-1 (Voice) by +819000000000
        lookup fails
          queued contact-1 in support
          offer contact-1 to agent1
          presence agent1: OnContact"#]]
    .assert_eq(&trace.text());
}

#[test]
fn nobody_available_hears_the_message_and_the_call_ends() {
    let mut trace = Trace::new(seed_center());
    call(&mut trace, "+81312345678");
    found(&mut trace, Some("agent1"));
    expect![[r#"
        call from +81312345678
          look up contact-1 (Voice) by +81312345678
        lookup answers
          say contact-1: ただいま担当者がすべて対応中です。恐れ入りますが、しばらくしてから改めてご連絡ください。
          ended contact-1 Some(NoAgentAvailable) (queue None, agent None)"#]].assert_eq(&trace.text());
}

#[test]
fn out_of_hours_hears_the_closed_message() {
    let mut trace = Trace::new(seed_center());
    let saturday: Timestamp = "2026-11-28T10:00:00+09:00".parse().unwrap();
    available(&mut trace, "agent1", saturday);
    trace.at(
        saturday,
        "call on Saturday",
        Event::ContactStarted {
            contact: CALL,
            channel: Channel::Voice,
            from: "+81312345678".into(),
            attributes: BTreeMap::new(),
        },
    );
    let evening: Timestamp = "2026-11-25T18:00:00+09:00".parse().unwrap();
    trace.at(
        evening,
        "call on Wednesday at 18:00",
        Event::ContactStarted {
            contact: ContactId(2),
            channel: Channel::Voice,
            from: "+81312345678".into(),
            attributes: BTreeMap::new(),
        },
    );
    expect![[r#"
        agent1 Available
          presence agent1: Available
        call on Saturday
          say contact-1: お問い合わせありがとうございます。本日の受付は終了しました。営業時間内に改めてご連絡ください。
          ended contact-1 Some(OutOfHours) (queue None, agent None)
        call on Wednesday at 18:00
          say contact-2: お問い合わせありがとうございます。本日の受付は終了しました。営業時間内に改めてご連絡ください。
          ended contact-2 Some(OutOfHours) (queue None, agent None)"#]].assert_eq(&trace.text());
}

#[test]
fn an_unanswered_offer_rings_the_next_agent_and_sets_the_first_away() {
    let mut trace = Trace::new(seed_center());
    available(&mut trace, "agent1", later(-600));
    available(&mut trace, "agent2", later(-60));
    call(&mut trace, "+819000000000");
    trace.at(
        later(1),
        "lookup finds nobody",
        Event::CustomerFound {
            contact: CALL,
            customer: None,
        },
    );
    trace.at(later(21), "20 s later", Event::Tick);
    trace.at(
        later(22),
        "agent2 rejects",
        Event::Reject {
            agent: "agent2".into(),
            contact: CALL,
        },
    );
    trace.at(
        later(30),
        "caller gives up",
        Event::CustomerLeft { contact: CALL },
    );
    expect![[r#"
        agent1 Available
          presence agent1: Available
        agent2 Available
          presence agent2: Available
        call from +819000000000
          look up contact-1 (Voice) by +819000000000
        lookup finds nobody
          queued contact-1 in support
          offer contact-1 to agent1
          presence agent1: OnContact
        20 s later
          withdrawn contact-1 from agent1 (no answer)
          offer contact-1 to agent2
          presence agent1: Away
          presence agent2: OnContact
        agent2 rejects
          withdrawn contact-1 from agent2 (rejected)
          presence agent2: Available
        caller gives up
          ended contact-1 Some(Abandoned) (queue Some("support"), agent None)"#]]
    .assert_eq(&trace.text());
}

#[test]
fn a_chat_ended_by_the_agent_gets_the_closing_message_and_a_call_waits_for_a_free_agent() {
    let mut trace = Trace::new(seed_center());
    available(&mut trace, "agent1", later(-60));
    let chat = ContactId(5);
    trace.at(
        later(0),
        "chat from hanako.sato@example.jp",
        Event::ContactStarted {
            contact: chat,
            channel: Channel::Chat,
            from: "hanako.sato@example.jp".into(),
            attributes: BTreeMap::new(),
        },
    );
    trace.at(
        later(1),
        "lookup finds nobody",
        Event::CustomerFound {
            contact: chat,
            customer: None,
        },
    );
    trace.at(
        later(2),
        "agent1 accepts",
        Event::Accept {
            agent: "agent1".into(),
            contact: chat,
        },
    );
    trace.at(
        later(3),
        "a call comes while agent1 chats",
        Event::ContactStarted {
            contact: CALL,
            channel: Channel::Voice,
            from: "+819000000000".into(),
            attributes: BTreeMap::new(),
        },
    );
    trace.at(
        later(4),
        "lookup finds nobody: the call waits, no call beside a chat",
        Event::CustomerFound {
            contact: CALL,
            customer: None,
        },
    );
    trace.at(
        later(90),
        "agent1 ends the chat",
        Event::AgentEnded {
            agent: "agent1".into(),
            contact: chat,
        },
    );
    trace.at(later(151), "wrap-up times out", Event::Tick);
    expect![[r#"
        agent1 Available
          presence agent1: Available
        chat from hanako.sato@example.jp
          look up contact-5 (Chat) by hanako.sato@example.jp
        lookup finds nobody
          queued contact-5 in support
          offer contact-5 to agent1
          presence agent1: OnContact
        agent1 accepts
          connect contact-5 with agent1
        a call comes while agent1 chats
          look up contact-1 (Voice) by +819000000000
        lookup finds nobody: the call waits, no call beside a chat
          queued contact-1 in support
        agent1 ends the chat
          wrap-up agent1 contact-5 until 2026-11-25T01:02:30Z
          say contact-5: お問い合わせありがとうございました。チャットを終了します。
          ended contact-5 Some(Completed) (queue Some("support"), agent Some("agent1"))
          presence agent1: AfterContactWork
        wrap-up times out
          offer contact-1 to agent1
          presence agent1: OnContact"#]]
    .assert_eq(&trace.text());
}

fn menu_flow() -> Flow {
    let mut blocks = BTreeMap::new();
    let mut add = |name: &str, block: Block| {
        blocks.insert(name.to_owned(), block);
    };
    add(
        "record",
        Block::SetRecording {
            on: true,
            next: "ask".into(),
        },
    );
    add(
        "ask",
        Block::GetInput {
            prompt: "請求は1、その他は2".into(),
            choices: BTreeMap::from([
                ("1".into(), "billing".into()),
                ("2".into(), "staffing".into()),
            ]),
            timeout_seconds: 5,
            no_match: "bye".into(),
        },
    );
    add(
        "billing",
        Block::InvokeWebhook {
            url: "http://127.0.0.1:9/billing".into(),
            timeout_ms: 3000,
            parameters: BTreeMap::new(),
            ok: "tell".into(),
            error: "sorry".into(),
        },
    );
    add(
        "tell",
        Block::Say {
            text: "残高は{balance}円です".into(),
            next: "bye".into(),
        },
    );
    add(
        "sorry",
        Block::Say {
            text: "照会できませんでした".into(),
            next: "staffing".into(),
        },
    );
    add(
        "staffing",
        Block::CheckStaffing {
            queue: "support".into(),
            staffed: "queue".into(),
            unstaffed: "bye".into(),
        },
    );
    add(
        "queue",
        Block::TransferToQueue {
            queue: "support".into(),
            nobody: "bye".into(),
        },
    );
    add("bye", Block::Disconnect {});
    Flow {
        name: "menu".into(),
        start: "record".into(),
        blocks,
    }
}

#[test]
fn input_webhook_and_staffing_blocks_take_every_branch() {
    let mut trace = Trace::new(center_with(vec![menu_flow()], "menu", &["agent1"]));
    let start = |trace: &mut Trace, id: u64| {
        trace.at(
            later(0),
            &format!("call {id}"),
            Event::ContactStarted {
                contact: ContactId(id),
                channel: Channel::Voice,
                from: "+81312345678".into(),
                attributes: BTreeMap::new(),
            },
        );
    };
    start(&mut trace, 1);
    trace.at(
        later(1),
        "1 presses 1",
        Event::Input {
            contact: ContactId(1),
            value: "1".into(),
        },
    );
    trace.at(
        later(2),
        "webhook answers",
        Event::WebhookAnswered {
            contact: ContactId(1),
            attributes: BTreeMap::from([("balance".into(), "1200".into())]),
        },
    );
    start(&mut trace, 2);
    trace.at(
        later(1),
        "2 presses 1",
        Event::Input {
            contact: ContactId(2),
            value: "1".into(),
        },
    );
    trace.at(later(5), "the webhook is late", Event::Tick);
    start(&mut trace, 3);
    trace.at(
        later(1),
        "3 presses 9",
        Event::Input {
            contact: ContactId(3),
            value: "9".into(),
        },
    );
    start(&mut trace, 4);
    trace.at(later(6), "4 says nothing", Event::Tick);
    trace.at(
        later(7),
        "a late key for 4",
        Event::Input {
            contact: ContactId(4),
            value: "1".into(),
        },
    );
    available(&mut trace, "agent1", later(8));
    start(&mut trace, 6);
    trace.at(
        later(9),
        "6 presses 2",
        Event::Input {
            contact: ContactId(6),
            value: "2".into(),
        },
    );
    expect![[r#"
        call 1
          recording contact-1: true
          ask contact-1: 請求は1、その他は2 ["1", "2"]
        1 presses 1
          webhook contact-1 http://127.0.0.1:9/billing (3000 ms) {}
        webhook answers
          say contact-1: 残高は1200円です
          ended contact-1 Some(EndedByFlow) (queue None, agent None)
        call 2
          recording contact-2: true
          ask contact-2: 請求は1、その他は2 ["1", "2"]
        2 presses 1
          webhook contact-2 http://127.0.0.1:9/billing (3000 ms) {}
        the webhook is late
          say contact-2: 照会できませんでした
          ended contact-2 Some(EndedByFlow) (queue None, agent None)
        call 3
          recording contact-3: true
          ask contact-3: 請求は1、その他は2 ["1", "2"]
        3 presses 9
          ended contact-3 Some(EndedByFlow) (queue None, agent None)
        call 4
          recording contact-4: true
          ask contact-4: 請求は1、その他は2 ["1", "2"]
        4 says nothing
          ended contact-4 Some(EndedByFlow) (queue None, agent None)
        a late key for 4
          refused: contact-4 does not exist or has ended
        agent1 Available
          presence agent1: Available
        call 6
          recording contact-6: true
          ask contact-6: 請求は1、その他は2 ["1", "2"]
        6 presses 2
          queued contact-6 in support
          offer contact-6 to agent1
          presence agent1: OnContact"#]]
    .assert_eq(&trace.text());
}
