//! genkan's integration tests: the whole server on loopback against real peers
//! (an IIS6-like upstream, curl, openssl, testssl.sh, sipp, the genkan binary itself).

// Test helpers are `pub` for their sibling modules; nothing outside this binary sees them.
#![allow(unreachable_pub)]
// A failed set-up step in a helper should stop the test on the spot, like an assertion.
#![allow(clippy::unwrap_used)]

mod alerts;
mod carrier;
mod contact_center;
mod device_renewal;
mod devices;
mod harness;
mod identity;
mod limits;
mod process;
mod prompts;
mod proxy;
mod records;
mod records_cli;
mod tls;
mod upload_scan;
mod upstream;
mod voice;
mod voice_hold;
mod voice_tcp;
mod webhook;
