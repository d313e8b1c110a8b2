//! genkan's SIP core, sans I/O: message parsing and printing, the transaction layer with
//! RFC 3261's timers, dialogs, server digest authentication, and the SDP of the SIP legs.
//!
//! What it is: values and state machines. [`parse`] turns bytes into a [`Message`] or
//! an [`Error`] that names the 400 (or 505, 513) to answer, and [`refusal`] builds that
//! answer. [`Transactions`] takes each parsed message with the time, and each timer
//! expiry, and returns [`transaction::Output`]s: messages to send to an address, events
//! for the transaction user, and the timers it armed. [`Dialog`] builds in-dialog
//! requests; [`auth::Nonces`] challenges and verifies; [`sdp`] reads offers and writes
//! answers.
//!
//! What it is not: sockets, a clock or a random number generator. Time comes in as
//! `now` (an [`std::time::Instant`] for transactions, a [`std::time::SystemTime`] where
//! the protocol carries wall time, as in nonces); nonces, tags, branches and secrets
//! come in as bytes. No tokio, no threads. The driver's run loop is: receive a datagram
//! (or [`frame`] a stream), parse, feed [`Transactions::received`], act on every
//! output; when [`Transactions::next_timer`] passes, feed [`Transactions::timer`].
//! The TU (the server's call logic) answers requests with [`Transactions::respond`]
//! and places calls with [`Transactions::request`].
//!
//! Invariants: nothing a peer sends can panic this crate (fuzzed, and property-tested
//! on arbitrary bytes); every parsed message prints to bytes that parse back to the
//! same value; the same inputs at the same times give the same outputs.
//!
//! Why a hand-written parser and not `ezk-sip-types` (the research's suggestion):
//! that crate is careful and did not panic on two million mutated messages, but it
//! parses header values lazily and leaves framing (Content-Length, size limits,
//! mandatory headers) to `ezk-sip-core`, which brings tokio. Its errors are nom traces,
//! not reasons a 400 can carry; it accepted `sip:b%ZZob@…` (a bad escape) and refused a
//! `tel:` Request-URI, which the grammar allows. It would also bring nom, anyhow, bytes
//! and lazy_static into a pure core. The subset of RFC 3261's grammar a B2BUA needs is
//! a few hundred lines, and owning it gives exact control over what is refused and why.
//!
//! Limits ([`Limits`]): 65,535 bytes per message, 8,192 per header after unfolding,
//! 256 header lines. A larger message is refused (513), not buffered.
//!
//! Fuzzing: `fuzz/` is a cargo-fuzz crate with its own workspace. From `crates/sip`,
//! after `cargo install cargo-fuzz`:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run parse_message fuzz/corpus/parse_message tests/corpus -- -max_total_time=120`.
//! The stable toolchain runs it with `RUSTC_BOOTSTRAP=1` (the sanitizer runtimes ship with
//! it); the target asserts, besides not panicking, that whatever parses prints back to
//! itself.

#![warn(missing_docs)]

pub mod auth;
pub mod dialog;
mod error;
pub mod header;
pub mod message;
mod parse;
pub mod registration;
pub mod sdp;
mod text;
pub mod transaction;
pub mod uri;

pub use dialog::{Dialog, DialogId};
pub use error::Error;
pub use header::{Auth, AuthParam, CSeq, Contact, NameAddr, Via};
pub use message::{
    Headers, Message, Method, Request, Response, Transport, cancel_for, response_to,
};
pub use parse::{Frame, Limits, frame, parse, parse_with, refusal};
pub use text::Param;
pub use transaction::{Event, Output, Timer, Timers, TransactionId, Transactions};
pub use uri::{SipUri, Uri};
