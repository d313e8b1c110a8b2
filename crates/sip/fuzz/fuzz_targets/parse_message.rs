//! Fuzzes the parser and everything that reads peer bytes: no input may panic, and any
//! message that parses must print to bytes that parse back to the same message.
//!
//! Run from `crates/sip`: `cargo fuzz run parse_message fuzz/corpus/parse_message tests/corpus`
//! (nightly, or `RUSTC_BOOTSTRAP=1` on stable; see the crate docs).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::{Limits, Transport, frame, parse, refusal};

fuzz_target!(|bytes: &[u8]| {
    for transport in [Transport::Udp, Transport::Tcp] {
        match parse(bytes, transport) {
            Ok(message) => {
                let printed = message.to_bytes();
                assert_eq!(parse(&printed, transport).as_ref(), Ok(&message));
            }
            Err(error) => {
                if let Some(response) = refusal(bytes, &error, "fuzz") {
                    assert!(parse(&response.to_bytes(), Transport::Udp).is_ok());
                }
            }
        }
    }
    let _ = frame(bytes, &Limits::default());
    let _ = sip::sdp::parse(bytes).and_then(|description| description.audio());
});
