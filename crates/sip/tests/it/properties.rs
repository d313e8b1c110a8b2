//! Property tests: generated messages print and parse back to themselves; arbitrary and
//! mutated bytes never panic any entry point, and whatever parses re-prints stably.

use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use sip::{
    Auth, AuthParam, CSeq, Contact, Headers, Limits, Message, Method, NameAddr, Param, Request,
    Response, SipUri, Timers, Transactions, Transport, Uri, Via, frame, parse, refusal,
};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,9}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,5}){0,2}",
        (0u8..=255, 0u8..=255, 0u8..=255, 0u8..=255)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        (0u16..=0xffff).prop_map(|n| format!("[2001:db8::{n:x}]")),
    ]
}

/// Printable text for display names, parameter values and reason phrases: ASCII without
/// controls (except tab) plus a little Japanese. CR and LF cannot be carried at all.
fn text(max: usize) -> impl Strategy<Value = String> {
    vec(
        prop_oneof![8 => proptest::char::range(' ', '~'), 1 => Just('\t'), 1 => Just('日'), 1 => Just('本')],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn params() -> impl Strategy<Value = Vec<Param>> {
    vec(
        (token(), option::of(text(8))).prop_map(|(name, value)| Param { name, value }),
        0..3,
    )
}

fn sip_uri() -> impl Strategy<Value = SipUri> {
    let user = option::of((
        "[a-zA-Z0-9 @:;+%&=?/é-]{1,10}",
        option::of("[a-z0-9:@ ]{1,6}"),
    ));
    let uri_params = vec(
        ("[a-z][a-z0-9-]{0,6}", option::of("[A-Za-z0-9._~-]{1,8}"))
            .prop_map(|(name, value)| Param { name, value }),
        0..3,
    );
    let uri_headers = vec(("[a-z]{1,6}", "[A-Za-z0-9._~-]{0,6}"), 0..2);
    (
        any::<bool>(),
        user,
        host(),
        option::of(any::<u16>()),
        uri_params,
        uri_headers,
    )
        .prop_map(|(secure, user, host, port, params, headers)| {
            let (user, password) = match user {
                Some((user, password)) => (Some(user), password),
                None => (None, None),
            };
            SipUri {
                secure,
                user,
                password,
                host,
                port,
                params,
                headers,
            }
        })
}

fn uri() -> impl Strategy<Value = Uri> {
    prop_oneof![
        4 => sip_uri().prop_map(Uri::Sip),
        1 => ("tel|urn|mailto", "[+0-9a-z:.-]{1,12}").prop_map(|(scheme, rest)| Uri::Other { scheme, rest }),
    ]
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (option::of(text(10)), uri(), params()).prop_map(|(display_name, uri, params)| NameAddr {
        display_name,
        uri,
        params,
    })
}

fn via() -> impl Strategy<Value = Via> {
    (
        "UDP|TCP|TLS|SCTP|WS",
        host(),
        option::of(any::<u16>()),
        params(),
    )
        .prop_map(|(transport, host, port, params)| Via {
            transport,
            host,
            port,
            params,
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Ack),
        Just(Method::Bye),
        Just(Method::Cancel),
        Just(Method::Register),
        token().prop_map(|name| Method::parse(&name).unwrap()),
    ]
}

fn auth() -> impl Strategy<Value = Auth> {
    let param = (token(), text(12), any::<bool>()).prop_map(|(name, value, quoted)| {
        // A value printed bare must be a token, or it comes back as quoted.
        let quoted = quoted
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
            || value.is_empty();
        AuthParam {
            name,
            value,
            quoted,
        }
    });
    (token(), vec(param, 1..4)).prop_map(|(scheme, params)| Auth { scheme, params })
}

fn headers() -> impl Strategy<Value = Headers> {
    let addresses = (
        vec(via(), 1..3),
        option::of(any::<u8>()),
        vec(name_addr(), 0..2),
        vec(name_addr(), 0..2),
        name_addr(),
        name_addr(),
        "[A-Za-z0-9.@_-]{1,16}",
        (0u32..1 << 31, method()).prop_map(|(seq, method)| CSeq { seq, method }),
    );
    let rest = (
        vec(
            prop_oneof![1 => Just(Contact::Wildcard), 4 => name_addr().prop_map(Contact::Address)],
            0..3,
        ),
        option::of(any::<u32>()),
        vec(auth(), 0..2),
        vec(auth(), 0..2),
        option::of(prop_oneof![
            Just("application/sdp".to_owned()),
            Just("multipart/mixed;boundary=b1".to_owned())
        ]),
        vec(("X-[A-Za-z]{1,8}", "([!-~]([ -~]{0,12}[!-~])?)?"), 0..3),
    );
    (addresses, rest).prop_map(
        |(
            (via, max_forwards, route, record_route, from, to, call_id, cseq),
            (contact, expires, authorization, www, content_type, other),
        )| {
            let mut headers = Headers::new(from, to, &call_id, cseq);
            headers.via = via;
            headers.max_forwards = max_forwards;
            headers.route = route;
            headers.record_route = record_route;
            headers.contact = contact;
            headers.expires = expires;
            headers.authorization = authorization;
            headers.www_authenticate = www;
            headers.content_type = content_type;
            headers.other = other;
            headers
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    let body = vec(any::<u8>(), 0..48);
    prop_oneof![
        (method(), uri(), headers(), body.clone()).prop_map(|(method, uri, mut headers, body)| {
            headers.cseq.method = method.clone();
            Message::Request(Request {
                method,
                uri,
                headers,
                body,
            })
        }),
        (100u16..700, text(16), headers(), body).prop_map(|(status, reason, headers, body)| {
            Message::Response(Response {
                status,
                reason,
                headers,
                body,
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn printed_messages_parse_back_to_themselves(message in message()) {
        let bytes = message.to_bytes();
        for transport in [Transport::Udp, Transport::Tcp] {
            let parsed = parse(&bytes, transport);
            prop_assert_eq!(parsed.as_ref(), Ok(&message), "{}", String::from_utf8_lossy(&bytes));
        }
        prop_assert_eq!(frame(&bytes, &Limits::default()), Ok(sip::Frame::Message(bytes.len())));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..1024)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic_and_reprint_stably(
        message in message(),
        edits in vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(b" \t\r\n:;,<>\"\\=@%0aZ\xff\xc3[]/.*".to_vec())), 1..6),
    ) {
        let mut bytes = message.to_bytes();
        for (index, kind, byte) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let at = index.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                _ => bytes.insert(at, byte),
            }
        }
        exercise(&bytes);
    }
}

/// Every entry point on one input: no panics, and anything accepted re-prints to
/// something that parses to the same value.
fn exercise(bytes: &[u8]) {
    for transport in [Transport::Udp, Transport::Tcp] {
        match parse(bytes, transport) {
            Ok(message) => {
                let again = parse(&message.to_bytes(), transport);
                assert_eq!(
                    again.as_ref(),
                    Ok(&message),
                    "{}",
                    String::from_utf8_lossy(bytes)
                );
                feed_layer(message);
            }
            Err(error) => {
                if let Some(response) = refusal(bytes, &error, "t") {
                    let printed = response.to_bytes();
                    assert!(
                        parse(&printed, Transport::Udp).is_ok(),
                        "{}",
                        String::from_utf8_lossy(&printed)
                    );
                }
            }
        }
    }
    let _ = frame(bytes, &Limits::default());
    let _ = sip::sdp::parse(bytes).and_then(|description| description.audio());
}

/// Whatever parses can be fed to the transaction layer and its timers without a panic.
fn feed_layer(message: Message) {
    #[allow(clippy::disallowed_methods)] // an origin for simulated time only
    let start = Instant::now();
    let mut layer = Transactions::new(Timers::default());
    let source = "127.0.0.1:5080".parse().unwrap();
    let _ = layer.received(message.clone(), source, Transport::Udp, start);
    let _ = layer.received(
        message,
        source,
        Transport::Udp,
        start + Duration::from_millis(10),
    );
    let _ = layer.timer(start + Duration::from_secs(60));
}
