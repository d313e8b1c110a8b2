//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask ci`: formatting check, clippy with warnings denied, every Rust test, then the
//!   end-to-end tests in headless Chromium (`tests/browser`, node:test + playwright-core).
//!   `scripts/test` (the README's test command, and `.ci/run`) calls this after installing
//!   the outside tools the tests drive.
//!
//! The tidy checks live in `tidy.rs` as `#[test]`s, so a plain `cargo test` enforces them too.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

#[cfg(test)]
mod tidy;

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "ci" => ci(),
        _ => Err(anyhow::anyhow!("usage: cargo xtask ci")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("xtask: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn ci() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace", "--locked"])?;
    browser_tests()
}

/// The end-to-end tests in Debian's Chromium (`tests/browser`), against the genkan binary
/// `cargo test` just built.
fn browser_tests() -> Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir))?;
    run(Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .current_dir(&dir))
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).args(args))
}

fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed");
    }
    Ok(())
}
