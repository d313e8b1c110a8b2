//! The media crate's integration tests, one binary: recordings and their repair,
//! prompts, a simulated call through playout into a recording, and property tests on
//! arbitrary input. Every WAV is read back with `hound`, a reader we did not write.

#![allow(clippy::unwrap_used)]

mod call;
mod prompt;
mod properties;
mod recording;
mod signal;
