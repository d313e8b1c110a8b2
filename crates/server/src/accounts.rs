//! Account administration, one operation at a time, each checked and audited. The command line
//! (`accounts_cli.rs`) and the admin pages (`admin.rs`) both go through here, so the rules (valid
//! names, the last administrator, ending sessions) hold whichever door an administrator uses.

use anyhow::{Result, bail};
use store_sqlite::{AuditEvent, Database};

use crate::identity::{check_name, check_password, generate_password, hash_password};

/// Who is making changes, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `cli` or the administrator's user name.
    pub name: String,
    /// Their address, when they came over the network.
    pub source: Option<String>,
}

/// Account operations on an open database.
pub struct Accounts<'a> {
    database: &'a mut Database,
    actor: Actor,
}

impl<'a> Accounts<'a> {
    /// Operations performed by `actor`.
    pub fn new(database: &'a mut Database, actor: Actor) -> Self {
        Self { database, actor }
    }

    fn audit(&self, kind: &str, subject: &str, detail: String) -> Result<()> {
        self.database.record_audit(&AuditEvent {
            at: crate::clock::utc_now_text(),
            kind: kind.into(),
            actor: Some(self.actor.name.clone()),
            source: self.actor.source.clone(),
            subject: Some(subject.into()),
            outcome: "ok".into(),
            rule: None,
            detail,
        })?;
        Ok(())
    }

    /// Adds a user. With no password given, generates one that must be changed at first sign-in
    /// and returns it, to be shown once.
    pub fn add_user(
        &mut self,
        name: &str,
        groups: &[String],
        password: Option<&str>,
    ) -> Result<Option<String>> {
        check_name("user", name)?;
        let (password, generated) = chosen_or_generated(password)?;
        let now = crate::clock::utc_now_text();
        self.database
            .add_user(name, &hash_password(&password)?, generated, groups, &now)?;
        self.audit("user_added", name, format!("groups: {}", groups.join(",")))?;
        Ok(generated.then_some(password))
    }

    /// Sets a password (generated when none is given, and then returned) and ends the user's sessions.
    pub fn set_password(&mut self, name: &str, password: Option<&str>) -> Result<Option<String>> {
        let (password, generated) = chosen_or_generated(password)?;
        self.database.set_password(
            name,
            &hash_password(&password)?,
            generated,
            &crate::clock::utc_now_text(),
        )?;
        self.database.delete_sessions_of(name)?;
        self.audit("password_set", name, String::new())?;
        Ok(generated.then_some(password))
    }

    /// Disables (ending their sessions) or re-enables a user.
    pub fn set_disabled(&mut self, name: &str, disable: bool) -> Result<()> {
        if disable && self.is_last_enabled_admin(name)? {
            bail!("{name} is the last enabled administrator; make another first");
        }
        self.database
            .set_disabled(name, disable, &crate::clock::utc_now_text())?;
        if disable {
            self.database.delete_sessions_of(name)?;
        }
        self.audit(
            if disable {
                "user_disabled"
            } else {
                "user_enabled"
            },
            name,
            String::new(),
        )
    }

    /// Removes a user's authenticator app and ends their sessions.
    pub fn reset_totp(&mut self, name: &str) -> Result<()> {
        self.database.clear_totp(name)?;
        self.database.delete_sessions_of(name)?;
        self.audit("totp_reset", name, String::new())
    }

    /// Adds a group.
    pub fn add_group(&mut self, name: &str, description: &str) -> Result<()> {
        check_name("group", name)?;
        self.database
            .add_group(name, description, &crate::clock::utc_now_text())?;
        self.audit("group_added", name, String::new())
    }

    /// Puts a user in a group, or takes them out.
    pub fn set_member(&mut self, group: &str, user: &str, member: bool) -> Result<()> {
        if member {
            self.database.add_member(group, user)?;
            return self.audit("member_added", user, format!("group: {group}"));
        }
        if group == "admin" && self.is_last_enabled_admin(user)? {
            bail!("{user} is the last enabled administrator; make another first");
        }
        self.database.remove_member(group, user)?;
        self.audit("member_removed", user, format!("group: {group}"))
    }

    fn is_last_enabled_admin(&self, name: &str) -> Result<bool> {
        let admins: Vec<_> = self
            .database
            .users()?
            .into_iter()
            .filter(|user| !user.disabled && user.groups.iter().any(|group| group == "admin"))
            .collect();
        Ok(admins.len() == 1 && admins[0].name.eq_ignore_ascii_case(name))
    }
}

fn chosen_or_generated(password: Option<&str>) -> Result<(String, bool)> {
    match password {
        Some(password) => {
            check_password(password)?;
            Ok((password.to_owned(), false))
        }
        None => Ok((generate_password()?, true)),
    }
}
