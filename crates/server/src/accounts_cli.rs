//! `genkan user …`, `genkan group …` and `genkan audit`: account administration from the shell.
//!
//! Each command opens the database in the configured data directory (the server may be running:
//! SQLite in WAL mode lets both write), changes one thing, and records it in the audit trail
//! with `cli` as the actor.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use store_sqlite::{AuditEvent, Database};

use crate::config::Config;
use crate::datadir::DataDir;
use crate::identity::{check_name, check_password, generate_password, hash_password};

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

fn now() -> String {
    crate::clock::utc_now_text()
}

fn audit(database: &Database, kind: &str, subject: &str, detail: String) -> Result<()> {
    database.record_audit(&AuditEvent {
        at: now(),
        kind: kind.into(),
        actor: Some("cli".into()),
        source: None,
        subject: Some(subject.into()),
        outcome: "ok".into(),
        rule: None,
        detail,
    })?;
    Ok(())
}

/// A password from standard input (first line), or a generated one that must be changed.
fn new_password(from_stdin: bool) -> Result<(String, bool)> {
    if !from_stdin {
        return Ok((generate_password()?, true));
    }
    let mut text = String::new();
    std::io::stdin()
        .take(crate::identity::MAX_PASSWORD_LEN as u64 + 2)
        .read_to_string(&mut text)
        .context("cannot read the password from standard input")?;
    let password = text.lines().next().unwrap_or("").to_owned();
    check_password(&password)?;
    Ok((password, false))
}

/// Runs a user command and returns what to print.
pub fn user(location: &Location, command: &UserCommand) -> Result<String> {
    let mut database = open(location)?;
    match command {
        UserCommand::Add {
            name,
            groups,
            password_stdin,
        } => {
            check_name("user", name)?;
            let (password, generated) = new_password(*password_stdin)?;
            database.add_user(name, &hash_password(&password)?, generated, groups, &now())?;
            audit(
                &database,
                "user_added",
                name,
                format!("groups: {}", groups.join(",")),
            )?;
            Ok(if generated {
                format!(
                    "added {name}\none-time password: {password}\n(shown only now; it must be changed at first sign-in)\n"
                )
            } else {
                format!("added {name}\n")
            })
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let (password, generated) = new_password(*password_stdin)?;
            database.set_password(name, &hash_password(&password)?, generated, &now())?;
            audit(&database, "password_set", name, String::new())?;
            Ok(if generated {
                format!("new one-time password for {name}: {password}\n")
            } else {
                format!("password changed for {name}\n")
            })
        }
        UserCommand::Disable { name } | UserCommand::Enable { name } => {
            let disable = matches!(command, UserCommand::Disable { .. });
            if disable && is_last_enabled_admin(&database, name)? {
                bail!("{name} is the last enabled administrator; make another first");
            }
            database.set_disabled(name, disable, &now())?;
            audit(
                &database,
                if disable {
                    "user_disabled"
                } else {
                    "user_enabled"
                },
                name,
                String::new(),
            )?;
            Ok(format!(
                "{} {name}\n",
                if disable { "disabled" } else { "enabled" }
            ))
        }
        UserCommand::ResetTotp { name } => {
            database.clear_totp(name)?;
            database.delete_sessions_of(name)?;
            audit(&database, "totp_reset", name, String::new())?;
            Ok(format!(
                "removed the authenticator app of {name}; their sessions are ended\n"
            ))
        }
        UserCommand::List => {
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
            Ok(out)
        }
    }
}

fn is_last_enabled_admin(database: &Database, name: &str) -> Result<bool> {
    let admins: Vec<_> = database
        .users()?
        .into_iter()
        .filter(|user| !user.disabled && user.groups.iter().any(|group| group == "admin"))
        .collect();
    Ok(admins.len() == 1 && admins[0].name.eq_ignore_ascii_case(name))
}

/// Runs a group command and returns what to print.
pub fn group(location: &Location, command: &GroupCommand) -> Result<String> {
    let database = open(location)?;
    match command {
        GroupCommand::Add { name, description } => {
            check_name("group", name)?;
            database.add_group(name, description, &now())?;
            audit(&database, "group_added", name, String::new())?;
            Ok(format!("added group {name}\n"))
        }
        GroupCommand::Member {
            group,
            user,
            remove,
        } => {
            if *remove {
                if group == "admin" && is_last_enabled_admin(&database, user)? {
                    bail!("{user} is the last enabled administrator; make another first");
                }
                database.remove_member(group, user)?;
                audit(&database, "member_removed", user, format!("group: {group}"))?;
                Ok(format!("{user} is no longer in {group}\n"))
            } else {
                database.add_member(group, user)?;
                audit(&database, "member_added", user, format!("group: {group}"))?;
                Ok(format!("{user} is in {group}\n"))
            }
        }
        GroupCommand::List => {
            let mut out = String::new();
            for group in database.groups()? {
                out.push_str(&format!(
                    "{}\t{}\t{}\n",
                    group.name,
                    group.members.join(","),
                    group.description
                ));
            }
            Ok(out)
        }
    }
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
