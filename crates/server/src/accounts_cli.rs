//! `genkan user …`, `genkan group …` and `genkan audit`: account administration from the shell.
//!
//! Each command opens the database in the configured data directory (the server may be running:
//! SQLite in WAL mode lets both write), changes one thing, and records it in the audit trail
//! with `cli` as the actor.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use store_sqlite::Database;

use crate::accounts::{Accounts, Actor};
use crate::config::Config;
use crate::datadir::DataDir;

/// Where the data directory comes from.
#[derive(Debug, clap::Args)]
pub struct Location {
    /// Configuration file naming the data directory (default: the embedded default).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

/// `genkan user …`
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Add a user; prints a generated one-time password unless --password-stdin is given.
    Add {
        /// Login name.
        name: String,
        /// Group to put the user in; repeat for several.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password; prints a generated one unless --password-stdin is given.
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop a user from signing in.
    Disable {
        /// Login name.
        name: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        /// Login name.
        name: String,
    },
    /// Remove a user's authenticator app (a lost phone); they enrol again at next sign-in.
    ResetTotp {
        /// Login name.
        name: String,
    },
    /// List users with their groups.
    List,
}

/// `genkan group …`
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Add a group.
    Add {
        /// Group name.
        name: String,
        /// What the group is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Put a user in a group, or take them out with --remove.
    Member {
        /// Group name.
        group: String,
        /// Login name.
        user: String,
        /// Take the user out instead.
        #[arg(long)]
        remove: bool,
    },
    /// List groups with their members.
    List,
}

fn open(location: &Location) -> Result<Database> {
    let config = match &location.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded_default()?,
    };
    let data = DataDir::prepare(&config.data_dir)?;
    crate::open_database(&data)
}

/// A password from standard input (first line), or `None` to have one generated.
fn password_from_stdin(from_stdin: bool) -> Result<Option<String>> {
    if !from_stdin {
        return Ok(None);
    }
    let mut text = String::new();
    std::io::stdin()
        .take(crate::identity::MAX_PASSWORD_LEN as u64 + 2)
        .read_to_string(&mut text)
        .context("cannot read the password from standard input")?;
    Ok(Some(text.lines().next().unwrap_or("").to_owned()))
}

fn cli() -> Actor {
    Actor {
        name: "cli".into(),
        source: None,
    }
}

/// Runs a user command and returns what to print.
pub fn user(location: &Location, command: &UserCommand) -> Result<String> {
    let mut database = open(location)?;
    if let UserCommand::List = command {
        let mut out = String::new();
        for user in database.users()? {
            let state = match (user.disabled, user.totp_enrolled) {
                (true, _) => " (disabled)",
                (false, true) => " (app)",
                (false, false) => "",
            };
            out.push_str(&format!(
                "{}{state}\t{}\n",
                user.name,
                user.groups.join(",")
            ));
        }
        return Ok(out);
    }
    let mut accounts = Accounts::new(&mut database, cli());
    Ok(match command {
        UserCommand::Add {
            name,
            groups,
            password_stdin,
        } => {
            match accounts.add_user(
                name,
                groups,
                password_from_stdin(*password_stdin)?.as_deref(),
            )? {
                Some(password) => format!(
                    "added {name}\none-time password: {password}\n(shown only now; it must be changed at first sign-in)\n"
                ),
                None => format!("added {name}\n"),
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            match accounts.set_password(name, password_from_stdin(*password_stdin)?.as_deref())? {
                Some(password) => format!("new one-time password for {name}: {password}\n"),
                None => format!("password changed for {name}\n"),
            }
        }
        UserCommand::Disable { name } => {
            accounts.set_disabled(name, true)?;
            format!("disabled {name}\n")
        }
        UserCommand::Enable { name } => {
            accounts.set_disabled(name, false)?;
            format!("enabled {name}\n")
        }
        UserCommand::ResetTotp { name } => {
            accounts.reset_totp(name)?;
            format!("removed the authenticator app of {name}; their sessions are ended\n")
        }
        UserCommand::List => String::new(),
    })
}

/// Runs a group command and returns what to print.
pub fn group(location: &Location, command: &GroupCommand) -> Result<String> {
    let mut database = open(location)?;
    if let GroupCommand::List = command {
        let mut out = String::new();
        for group in database.groups()? {
            out.push_str(&format!(
                "{}\t{}\t{}\n",
                group.name,
                group.members.join(","),
                group.description
            ));
        }
        return Ok(out);
    }
    let mut accounts = Accounts::new(&mut database, cli());
    Ok(match command {
        GroupCommand::Add { name, description } => {
            accounts.add_group(name, description)?;
            format!("added group {name}\n")
        }
        GroupCommand::Member {
            group,
            user,
            remove,
        } => {
            accounts.set_member(group, user, !remove)?;
            if *remove {
                format!("{user} is no longer in {group}\n")
            } else {
                format!("{user} is in {group}\n")
            }
        }
        GroupCommand::List => String::new(),
    })
}

/// `genkan audit`: events since a time, as JSON lines.
pub fn audit_export(location: &Location, since: &str) -> Result<String> {
    let since: jiff::Timestamp = since
        .parse()
        .with_context(|| format!("--since: `{since}` is not an RFC 3339 time"))?;
    let database = open(location)?;
    // Stored times are RFC 3339 in UTC, so text order is time order.
    let since = since.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let mut out = String::new();
    for event in database.audit_since(&since)? {
        let line = serde_json::json!({
            "at": event.at,
            "kind": event.kind,
            "actor": event.actor,
            "source": event.source,
            "subject": event.subject,
            "outcome": event.outcome,
            "rule": event.rule,
            "detail": event.detail,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    Ok(out)
}
