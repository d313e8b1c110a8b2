//! `genkan sql`, `genkan import` and `genkan export`: records from the shell, through the running
//! server.
//!
//! What it is: a client of the server's own HTTP API. Edit leases (record locks) and open
//! transactions live in the running server's memory, so these commands never open a records
//! database file: each run logs in to the Data API once (the account's password from
//! `GENKAN_PASSWORD` or the terminal, never from the command line), sends SQL to
//! `POST /api/sql` with that token, and logs out. A run's writes are one transaction: a script
//! without its own `BEGIN`, and a whole import, are all or nothing even across many calls.
//!
//! What it is not: a way around the server's rules. The account's groups, the records grants
//! and the policy apply exactly as to any other client; nothing here is trusted more.
//!
//! Operator documentation: `docs/records-cli.md`.

mod client;
mod export;
mod import;
mod shell;
mod split;
mod table;
mod target;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::{Result, bail};

/// How to reach the running server and whom to log in as (shared by the three commands).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Configuration file of the running server: says where it listens and which certificate
    /// it uses (default: the embedded default, https://localhost:8443).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The server's address instead of the configuration's (http://127.0.0.1:3000 or
    /// https://HOST:PORT).
    #[arg(long)]
    pub url: Option<String>,
    /// PEM file with the server's certificate or the CA that signed it, for HTTPS (default: the
    /// certificate the configuration names, or the data directory's self-signed one).
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// Records database (default: the only one the server serves).
    #[arg(long)]
    pub database: Option<String>,
    /// Account to log in as (default: $GENKAN_USER, else your login name). The password is read
    /// from $GENKAN_PASSWORD, else asked for on the terminal.
    #[arg(long)]
    pub user: Option<String>,
}

/// `genkan sql`
#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// SQL script to run as one transaction (`-` for standard input). Without it: an interactive
    /// prompt on a terminal, else the script on standard input.
    pub file: Option<PathBuf>,
}

/// `genkan import`
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// CSV file (UTF-8); its first line names the columns.
    pub file: PathBuf,
    /// Table the rows are added to.
    #[arg(long)]
    pub table: String,
    /// Skip bad rows (they are listed) and import the others, instead of importing nothing.
    #[arg(long)]
    pub keep_going: bool,
    /// Ignore a `recordId` column: the database numbers the new records itself.
    #[arg(long)]
    pub new_record_ids: bool,
}

/// `genkan export`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Table to export.
    #[arg(long)]
    pub table: String,
    /// CSV file to write (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Begin the file with a UTF-8 byte-order mark, so that Excel shows Japanese text correctly.
    #[arg(long)]
    pub bom: bool,
}

/// Runs `genkan sql`.
pub fn sql(args: &SqlArgs) -> Result<()> {
    shell::run(args)
}

/// Runs `genkan import`.
pub fn import(args: &ImportArgs) -> Result<()> {
    import::run(args)
}

/// Runs `genkan export`.
pub fn export(args: &ExportArgs) -> Result<()> {
    export::run(args)
}

/// An import that committed the good rows and skipped others (`--keep-going`): exit status 3.
#[derive(Debug, thiserror::Error)]
#[error("{skipped} row{} skipped; the other rows were imported", if *.skipped == 1 { "" } else { "s" })]
pub struct Incomplete {
    /// Rows skipped.
    pub skipped: usize,
}

/// The exit status for an error of these commands: 3 for [`Incomplete`], else 1.
pub fn exit_status(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<Incomplete>().is_some() {
        3
    } else {
        1
    }
}

/// The account: `--user`, else `GENKAN_USER`, else the login name.
fn account_name(given: Option<&str>) -> Result<String> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    match given
        .map(str::to_owned)
        .or_else(|| from_env("GENKAN_USER"))
        .or_else(|| from_env("USER"))
        .or_else(|| from_env("USERNAME"))
    {
        Some(name) => Ok(name),
        None => bail!("name the account with --user (or GENKAN_USER)"),
    }
}

/// The password: `GENKAN_PASSWORD`, else asked for on the terminal without echo.
fn password(user: &str) -> Result<String> {
    if let Ok(password) = std::env::var("GENKAN_PASSWORD")
        && !password.is_empty()
    {
        return Ok(password);
    }
    rpassword::prompt_password(format!("password for {user}: ")).map_err(|error| {
        anyhow::anyhow!(
            "cannot ask for the password ({error}): set GENKAN_PASSWORD or run from a terminal"
        )
    })
}

/// An SQL name in double quotes (`"a""b"`), for table and column names from the command line
/// and CSV headers; values only ever travel as parameters.
fn quote_name(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A progress bar on standard error for `total` rows; hidden when standard error is not a
/// terminal, so scripts and logs get no control characters.
fn progress(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}  {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lines as `3, 9, 12` (the first `limit`, then how many more).
fn line_list(lines: &[usize], limit: usize) -> String {
    let mut text = lines
        .iter()
        .take(limit)
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if lines.len() > limit {
        text.push_str(&format!(" and {} more", lines.len() - limit));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_lines_listed() {
        assert_eq!(quote_name("顧客"), "\"顧客\"");
        assert_eq!(quote_name("a\"b"), "\"a\"\"b\"");
        assert_eq!(line_list(&[3, 9, 12], 2), "3, 9 and 1 more");
        assert_eq!(line_list(&[4], 20), "4");
        let incomplete = anyhow::Error::new(Incomplete { skipped: 2 });
        assert_eq!(exit_status(&incomplete), 3);
        assert_eq!(exit_status(&anyhow::anyhow!("x")), 1);
    }
}
