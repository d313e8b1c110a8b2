//! The contact center's event loop with its real adapters (the records store for the customer
//! lookup, the contacts table for records and history) and no web pages yet: an agent's desk
//! and a customer's chat as the channels the pages will use.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contact::flow::{goodbye_flow, seed_flow};
use contact::{Agent, Center, Event, Hours, Settings, Status};
use jiff::SignedDuration;
use server::center::lookup::CustomerSource;
use server::center::phone;
use server::center::runtime::{ContactCenter, Customers, ToAgent, ToCustomer};
use store_sqlite::{ContactRow, Database, RecordsDb};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::harness::TempDir;

async fn next<T: std::fmt::Debug>(messages: &mut UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), messages.recv())
        .await
        .expect("nothing came within 10 s")
        .expect("the channel closed")
}

/// The next desk message that is not a presence change.
async fn next_for_agent(desk: &mut UnboundedReceiver<ToAgent>) -> ToAgent {
    loop {
        let message = next(desk).await;
        if !matches!(message, ToAgent::Presence { .. }) {
            return message;
        }
    }
}

/// The contact's record once its notes are written (records are written in order, after the loop).
async fn stored_with_notes(log: &Mutex<Database>, contact: contact::ContactId) -> ContactRow {
    let id = i64::try_from(contact.0).unwrap();
    for _ in 0..100 {
        let stored = log
            .lock()
            .unwrap()
            .contact(id)
            .unwrap()
            .filter(|row| !row.notes.is_empty());
        if let Some(row) = stored {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no record with notes for contact {id} within 5 s");
}

fn start(dir: &TempDir) -> (Arc<ContactCenter>, Arc<Mutex<Database>>) {
    let records = RecordsDb::open("demo", &dir.0.join("demo.sqlite"), 2).unwrap();
    records
        .run_setup(
            "CREATE TABLE customers (name TEXT, phone TEXT, email TEXT, assigned_agent TEXT);
             INSERT INTO customers VALUES
               ('佐藤 花子', '03-1234-5678', 'hanako.sato@example.jp', 'agent1');",
        )
        .unwrap();
    let log = Arc::new(Mutex::new(
        Database::open(&dir.0.join("genkan.db"), "2026-12-04T00:00:00Z").unwrap(),
    ));
    let now = server::clock::timestamp_now();
    let center = Center::new(
        Settings {
            offer_timeout: SignedDuration::from_secs(20),
            wrap_up_timeout: SignedDuration::from_secs(60),
            main_flow: "inbound".into(),
        },
        BTreeMap::from([("support".to_owned(), Hours::always())]),
        vec![Agent::new("agent1", &["support"], 3, now)],
        vec![seed_flow("support"), goodbye_flow()],
    )
    .unwrap();
    let customers = Customers {
        database: Arc::new(records),
        source: CustomerSource {
            layout: "customers".into(),
            phone_fields: vec!["phone".into()],
            email_fields: vec!["email".into()],
            name_field: "name".into(),
            assigned_agent_field: Some("assigned_agent".into()),
            region: phone::region("JP").unwrap(),
        },
    };
    let shared: Arc<Mutex<Database>> = Arc::clone(&log);
    let center = ContactCenter::start(center, Some(customers), shared).unwrap();
    (center, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_reaches_the_assigned_agent_with_the_screen_pop_and_is_recorded() {
    let dir = TempDir::new("contact-center");
    let (center, log) = start(&dir);
    let mut desk = center.agent_desk("agent1").messages;
    assert!(matches!(
        next(&mut desk).await,
        ToAgent::Presence {
            presence: contact::Presence::Offline
        }
    ));
    center.event(Event::AgentStatus {
        agent: "agent1".into(),
        status: Status::Available,
    });
    let (chat_id, mut chat) = center.start_chat("Hanako.Sato@example.jp", BTreeMap::new());
    let ToAgent::Offer {
        contact,
        record_id,
        customer,
        history,
        ..
    } = next_for_agent(&mut desk).await
    else {
        panic!("expected an offer");
    };
    assert_eq!(contact, chat_id.0);
    assert_eq!(record_id, Some(1));
    assert!(
        customer.contains(&("name".into(), "佐藤 花子".into())),
        "{customer:?}"
    );
    assert!(history.is_empty());
    assert_eq!(next(&mut chat).await, ToCustomer::Waiting);

    center.event(Event::Accept {
        agent: "agent1".into(),
        contact: chat_id,
    });
    assert!(matches!(
        next_for_agent(&mut desk).await,
        ToAgent::Connected { .. }
    ));
    assert_eq!(next(&mut chat).await, ToCustomer::Connected);
    center.customer_says(chat_id, "請求書が届きません");
    assert!(matches!(
        next_for_agent(&mut desk).await,
        ToAgent::Message { text, .. } if text == "請求書が届きません"
    ));
    center.agent_says("agent1", chat_id, "確認いたします");
    assert_eq!(
        next(&mut chat).await,
        ToCustomer::Message {
            from: "agent".into(),
            text: "確認いたします".into()
        }
    );
    // Another agent cannot write into this chat.
    center.agent_says("agent2", chat_id, "なりすまし");
    center.event(Event::AgentEnded {
        agent: "agent1".into(),
        contact: chat_id,
    });
    let ToCustomer::Message { from, text } = next(&mut chat).await else {
        panic!("expected the closing message");
    };
    assert_eq!(from, "center");
    assert!(text.contains("ありがとうございました"), "{text}");
    assert_eq!(next(&mut chat).await, ToCustomer::Ended);
    assert!(matches!(
        next_for_agent(&mut desk).await,
        ToAgent::Ended { .. }
    ));
    assert!(matches!(
        next_for_agent(&mut desk).await,
        ToAgent::WrapUp { .. }
    ));
    assert!(matches!(
        next(&mut desk).await,
        ToAgent::Presence {
            presence: contact::Presence::AfterContactWork
        }
    ));
    center.wrap_up("agent1", chat_id, "再送を手配");
    assert!(matches!(
        next(&mut desk).await,
        ToAgent::Presence {
            presence: contact::Presence::Available
        }
    ));

    // The record, its transcript and the notes reach the database.
    let row = stored_with_notes(&log, chat_id).await;
    assert_eq!(row.outcome, "Completed");
    assert_eq!(row.agent.as_deref(), Some("agent1"));
    assert_eq!(row.customer.as_ref().map(|c| c.record_id), Some(1));
    assert_eq!(row.notes, "再送を手配");
    assert!(
        row.transcript.contains("請求書が届きません") && row.transcript.contains("確認いたします")
    );
    assert!(!row.transcript.contains("なりすまし"));

    // The next chat from the customer shows that one in the screen pop's history.
    let (second, _chat) = center.start_chat("hanako.sato@example.jp", BTreeMap::new());
    let ToAgent::Offer {
        contact, history, ..
    } = next_for_agent(&mut desk).await
    else {
        panic!("expected an offer");
    };
    assert_eq!(contact, second.0);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].notes, "再送を手配");
    assert!(second.0 > chat_id.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_customer_gets_a_record_from_the_desk_and_is_known_next_time() {
    let dir = TempDir::new("contact-center-new-customer");
    let (center, log) = start(&dir);
    let mut desk = center.agent_desk("agent1").messages;
    center.event(Event::AgentStatus {
        agent: "agent1".into(),
        status: Status::Available,
    });
    let (chat_id, mut chat) = center.start_chat("Kenji.Mori@example.jp", BTreeMap::new());
    let ToAgent::Offer {
        record_id,
        new_customer,
        ..
    } = next_for_agent(&mut desk).await
    else {
        panic!("expected an offer");
    };
    assert_eq!(record_id, None);
    assert_eq!(new_customer, ["name", "phone", "email", "assigned_agent"]);

    // Nobody but the agent holding the contact may make the record.
    center.create_customer(
        "agent2",
        chat_id,
        vec![("name".into(), "なりすまし".into())],
    );
    center.event(Event::Accept {
        agent: "agent1".into(),
        contact: chat_id,
    });
    assert!(matches!(
        next_for_agent(&mut desk).await,
        ToAgent::Connected { .. }
    ));
    assert_eq!(next(&mut chat).await, ToCustomer::Waiting);
    center.create_customer(
        "agent1",
        chat_id,
        vec![
            ("name".into(), " 森 健二 ".into()),
            ("rowid".into(), "99".into()),
            ("unknown_field".into(), "ignored".into()),
        ],
    );
    let ToAgent::CustomerCreated {
        contact,
        record_id,
        customer,
    } = next_for_agent(&mut desk).await
    else {
        panic!("expected the new record");
    };
    assert_eq!(contact, chat_id.0);
    assert_eq!(record_id, 2, "the one customer before has recordId 1");
    assert!(
        customer.contains(&("name".into(), "森 健二".into())),
        "{customer:?}"
    );
    // The address the chat came from was filled in, as written.
    assert!(
        customer.contains(&("email".into(), "Kenji.Mori@example.jp".into())),
        "{customer:?}"
    );
    // A second form for the same contact changes nothing.
    center.create_customer("agent1", chat_id, vec![("name".into(), "二重".into())]);

    center.event(Event::AgentEnded {
        agent: "agent1".into(),
        contact: chat_id,
    });
    center.wrap_up("agent1", chat_id, "新規登録");
    let row = stored_with_notes(&log, chat_id).await;
    assert_eq!(row.customer.as_ref().map(|c| c.record_id), Some(2));

    // Known from the next chat on, with this one in the history.
    let (_second, _chat) = center.start_chat("kenji.mori@example.jp", BTreeMap::new());
    let offer = loop {
        let message = next_for_agent(&mut desk).await;
        if matches!(message, ToAgent::Offer { .. }) {
            break message;
        }
    };
    let ToAgent::Offer {
        record_id,
        history,
        new_customer,
        ..
    } = offer
    else {
        unreachable!()
    };
    assert_eq!(record_id, Some(2));
    assert!(new_customer.is_empty());
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].notes, "新規登録");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_available_is_told_so_and_a_second_tab_replaces_the_first() {
    let dir = TempDir::new("contact-center-nobody");
    let (center, _log) = start(&dir);
    let (_, mut chat) = center.start_chat("unknown@example.jp", BTreeMap::new());
    let ToCustomer::Message { text, .. } = next(&mut chat).await else {
        panic!("expected the nobody message");
    };
    assert!(text.contains("対応中"), "{text}");
    assert_eq!(next(&mut chat).await, ToCustomer::Ended);

    let first_desk = center.agent_desk("agent1");
    let mut first = first_desk.messages;
    assert!(matches!(next(&mut first).await, ToAgent::Presence { .. }));
    let second_desk = center.agent_desk("agent1");
    let mut second = second_desk.messages;
    assert!(matches!(next(&mut first).await, ToAgent::Replaced));
    assert!(matches!(next(&mut second).await, ToAgent::Presence { .. }));
    // The replaced tab closing changes nothing; the current one closing sets the agent Away.
    center.event(Event::AgentStatus {
        agent: "agent1".into(),
        status: Status::Available,
    });
    assert!(matches!(
        next(&mut second).await,
        ToAgent::Presence {
            presence: contact::Presence::Available
        }
    ));
    center.desk_closed("agent1", first_desk.generation);
    center.desk_closed("agent1", second_desk.generation);
    let third = center.agent_desk("agent1");
    let mut third_messages = third.messages;
    assert!(matches!(
        next(&mut third_messages).await,
        ToAgent::Presence {
            presence: contact::Presence::Away
        }
    ));
}
