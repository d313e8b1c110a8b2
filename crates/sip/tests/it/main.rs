//! The sip crate's integration tests, one binary: the malformed-message corpus, the
//! property tests, and the transaction traces. `UPDATE_EXPECT=1 cargo test -p sip`
//! rewrites a trace snapshot after a deliberate change; read the diff.

#![allow(clippy::unwrap_used)]

mod corpus;
mod properties;
mod traces;
