//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask ci`: formatting check, clippy with warnings denied, every Rust test, then the
//!   end-to-end tests in headless Chromium (`tests/browser`, node:test + playwright-core), then
//!   the Data API tests with the real python-fmrest client (`tests/fmrest`, pytest in a venv).
//!   `scripts/test` (the README's test command, and `.ci/run`) calls this after installing
//!   the outside tools the tests drive.
//! - `cargo xtask fmrest`: only the Data API tests, against the `target/debug/genkan` there is
//!   (run `cargo build` first).
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
        "fmrest" => fmrest_tests(),
        _ => Err(anyhow::anyhow!("usage: cargo xtask ci|fmrest")),
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
    browser_tests()?;
    fmrest_tests()
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

/// The Data API end-to-end tests (`tests/fmrest`: python-fmrest 1.8.0 and raw HTTP, run by
/// pytest) against the genkan binary `cargo test` just built. They run in a venv of Debian's
/// Python kept in `target/fmrest-venv`, made once; pip runs again only when
/// `tests/fmrest/requirements.txt` differs from the copy kept in the venv after the last install.
fn fmrest_tests() -> Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = root.join("target/fmrest-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(&venv))?;
    }
    let requirements = root.join("tests/fmrest/requirements.txt");
    let wanted = std::fs::read(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let installed = venv.join("requirements.installed.txt");
    if std::fs::read(&installed).ok().as_deref() != Some(wanted.as_slice()) {
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements))?;
        std::fs::write(&installed, &wanted)
            .with_context(|| format!("cannot write {}", installed.display()))?;
    }
    run(Command::new(&python)
        .args(["-m", "pytest", "-q", "tests/fmrest"])
        .env("GENKAN_BIN", root.join("target/debug/genkan"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&root))
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
