//! The webhook block's contract, Amazon Connect's "Invoke AWS Lambda function" kept as it is so
//! that a function written for Amazon Connect runs unchanged behind an HTTP endpoint: the
//! request body is a `ContactFlowEvent`, the answer a flat object of strings, merged into the
//! contact's attributes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{Channel, Contact};

/// Largest answer accepted, in bytes (Amazon Connect's limit for a Lambda's answer is 32 KB).
pub const MAX_ANSWER_BYTES: usize = 32 * 1024;

/// Why a webhook's answer was not taken (the block's error branch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Larger than [`MAX_ANSWER_BYTES`].
    #[error("the answer is larger than 32 KB")]
    TooLarge,
    /// Not a JSON object.
    #[error("the answer is not a JSON object: {0}")]
    NotAnObject(String),
    /// A value is an object or an array: the answer must be flat.
    #[error("the answer is not flat: `{0}` holds an object or a list")]
    NotFlat(String),
}

/// The `ContactFlowEvent` for a contact, with the block's parameters. `instance` names this
/// genkan (where Amazon Connect puts its instance ARN) and `system_address` the number or chat
/// address the customer reached.
pub fn event(
    contact: &Contact,
    parameters: &BTreeMap<String, String>,
    instance: &str,
    system_address: &str,
) -> Value {
    let (channel, endpoint_type) = match contact.channel {
        Channel::Voice => ("VOICE", "TELEPHONE_NUMBER"),
        Channel::Chat => ("CHAT", "EMAIL_ADDRESS"),
    };
    let id = contact.id.0.to_string();
    let queue = contact.queue.as_ref().map_or(
        Value::Null,
        |queue| json!({"Name": queue, "ARN": format!("{instance}/queue/{queue}")}),
    );
    json!({
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {
                "Attributes": contact.attributes,
                "Channel": channel,
                "ContactId": id,
                "InitialContactId": id,
                "PreviousContactId": id,
                "InitiationMethod": "INBOUND",
                "InstanceARN": instance,
                "CustomerEndpoint": {"Address": contact.from, "Type": endpoint_type},
                "SystemEndpoint": {"Address": system_address, "Type": endpoint_type},
                "Queue": queue,
            },
            "Parameters": parameters,
        },
    })
}

/// The attributes in a webhook's answer: a JSON object whose values are strings (numbers and
/// booleans are taken as their text, null as empty, as Amazon Connect does).
pub fn answer(body: &[u8]) -> Result<BTreeMap<String, String>, WebhookError> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(WebhookError::TooLarge);
    }
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|error| WebhookError::NotAnObject(error.to_string()))?;
    let Value::Object(object) = parsed else {
        return Err(WebhookError::NotAnObject("another JSON value".into()));
    };
    object
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(text) => Ok((key, text)),
            Value::Null => Ok((key, String::new())),
            Value::Bool(_) | Value::Number(_) => Ok((key, value.to_string())),
            Value::Array(_) | Value::Object(_) => Err(WebhookError::NotFlat(key)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_must_be_small_flat_objects() {
        let flat =
            answer(br#"{"balance": "1200", "vip": true, "visits": 3, "memo": null}"#).unwrap();
        assert_eq!(flat["balance"], "1200");
        assert_eq!(flat["vip"], "true");
        assert_eq!(flat["visits"], "3");
        assert_eq!(flat["memo"], "");
        assert_eq!(
            answer(br#"{"a": {"b": "c"}}"#),
            Err(WebhookError::NotFlat("a".into()))
        );
        assert!(matches!(
            answer(b"<html>502</html>"),
            Err(WebhookError::NotAnObject(_))
        ));
        assert!(matches!(
            answer(b"[1, 2]"),
            Err(WebhookError::NotAnObject(_))
        ));
        let huge = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_ANSWER_BYTES));
        assert_eq!(answer(huge.as_bytes()), Err(WebhookError::TooLarge));
    }
}
