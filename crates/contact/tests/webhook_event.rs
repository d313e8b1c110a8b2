//! The webhook's request body is Amazon Connect's `ContactFlowEvent` for the contact as it
//! stands at the block.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{center_with, morning};
use contact::flow::Block;
use contact::{Channel, Command, ContactId, Event, Flow};

#[test]
fn the_event_carries_the_contact_its_attributes_and_the_parameters() {
    let flow = Flow {
        name: "lookup".into(),
        start: "tag".into(),
        blocks: BTreeMap::from([
            (
                "tag".into(),
                Block::SetAttribute {
                    key: "purpose".into(),
                    value: "請求".into(),
                    next: "call".into(),
                },
            ),
            (
                "call".into(),
                Block::InvokeWebhook {
                    url: "https://crm.example.jp/connect".into(),
                    timeout_ms: 3000,
                    parameters: BTreeMap::from([
                        ("table".into(), "customers".into()),
                        ("who".into(), "{name}".into()),
                    ]),
                    ok: "end".into(),
                    error: "end".into(),
                },
            ),
            ("end".into(), Block::Disconnect {}),
        ]),
    };
    let mut center = center_with(vec![flow], "lookup", &["agent1"]);
    let commands = center
        .handle(
            Event::ContactStarted {
                contact: ContactId(42),
                channel: Channel::Chat,
                from: "hanako.sato@example.jp".into(),
                attributes: BTreeMap::from([("name".into(), "佐藤 花子".into())]),
            },
            morning(),
        )
        .unwrap();
    let [
        Command::InvokeWebhook {
            timeout_ms: 3000,
            parameters,
            ..
        },
    ] = commands.as_slice()
    else {
        panic!("expected one webhook call: {commands:?}");
    };
    let contact = center.contact(ContactId(42)).unwrap();
    let event = contact::webhook::event(contact, parameters, "genkan:demo", "support@example.jp");
    expect_test::expect![[r#"
        {
          "Details": {
            "ContactData": {
              "Attributes": {
                "name": "佐藤 花子",
                "purpose": "請求"
              },
              "Channel": "CHAT",
              "ContactId": "42",
              "CustomerEndpoint": {
                "Address": "hanako.sato@example.jp",
                "Type": "EMAIL_ADDRESS"
              },
              "InitialContactId": "42",
              "InitiationMethod": "INBOUND",
              "InstanceARN": "genkan:demo",
              "PreviousContactId": "42",
              "Queue": null,
              "SystemEndpoint": {
                "Address": "support@example.jp",
                "Type": "EMAIL_ADDRESS"
              }
            },
            "Parameters": {
              "table": "customers",
              "who": "佐藤 花子"
            }
          },
          "Name": "ContactFlowEvent"
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&event).unwrap());
}
