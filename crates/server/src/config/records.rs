//! The `[records]` settings, checked: databases, layouts, grants and accounts.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use records::{Access, LayoutDefinition, PortalDefinition};

use super::{ConfigError, RecordsFile, duration, socket_addr};

/// A records database to serve.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Name in Data API paths.
    pub name: String,
    /// SQL run once when the file is created.
    pub setup_sql: Option<String>,
}

/// Who may do what to which tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Group.
    pub group: String,
    /// Database.
    pub database: String,
    /// Tables (`*` for all).
    pub tables: Vec<String>,
    /// Highest access granted.
    pub access: Access,
}

/// An account the config asks for.
#[derive(Clone)]
pub struct AccountSettings {
    /// Name.
    pub name: String,
    /// Password (never logged: `Debug` hides it).
    pub password: String,
    /// Groups.
    pub groups: Vec<String>,
}

impl std::fmt::Debug for AccountSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSettings")
            .field("name", &self.name)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// `[records]`, checked.
#[derive(Debug, Clone)]
pub struct RecordsSettings {
    /// Plain-HTTP loopback listener for the Data API.
    pub data_api_listen: Option<SocketAddr>,
    /// Data API token idle timeout.
    pub session_idle_timeout: Duration,
    /// Data API sessions at once.
    pub max_sessions: usize,
    /// An open SQL transaction idle this long is rolled back.
    pub transaction_idle_timeout: Duration,
    /// Edit lease duration.
    pub lease_duration: Duration,
    /// Largest `limit` accepted.
    pub max_limit: u64,
    /// Databases.
    pub databases: Vec<DatabaseSettings>,
    /// Layouts by database.
    pub layouts: Vec<(String, LayoutDefinition)>,
    /// Grants.
    pub grants: Vec<Grant>,
    /// Accounts to create.
    pub accounts: Vec<AccountSettings>,
}

/// Database names: what a URL path segment and a file name can both carry.
pub fn valid_database_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(super) fn records_settings(
    file: RecordsFile,
    base: &Path,
) -> Result<RecordsSettings, ConfigError> {
    let data_api_listen = match &file.data_api_listen {
        None => None,
        Some(text) => {
            let address = socket_addr("records.data_api_listen", text)?;
            if !address.ip().is_loopback() {
                return Err(ConfigError::new(
                    "records.data_api_listen",
                    "must be a loopback address: plain HTTP would carry passwords and data in the clear; remote clients use the HTTPS listener",
                ));
            }
            Some(address)
        }
    };
    let span =
        |key: &str, text: &Option<String>, default: Duration| -> Result<Duration, ConfigError> {
            match text {
                None => Ok(default),
                Some(text) => duration(key, text).and_then(|value| {
                    if value.is_zero() {
                        Err(ConfigError::new(key, "must be longer than zero"))
                    } else {
                        Ok(value)
                    }
                }),
            }
        };
    let mut databases: Vec<DatabaseSettings> = Vec::new();
    for (index, database) in file.databases.into_iter().enumerate() {
        let key = format!("records.database[{index}]");
        if !valid_database_name(&database.name) {
            return Err(ConfigError::new(
                format!("{key}.name"),
                "letters, digits, `_` and `-` only, at most 64",
            ));
        }
        if databases
            .iter()
            .any(|known| known.name.eq_ignore_ascii_case(&database.name))
        {
            return Err(ConfigError::new(
                format!("{key}.name"),
                format!("`{}` is named twice", database.name),
            ));
        }
        let setup_sql = match database.setup_sql {
            None => None,
            Some(path) => {
                let path = base.join(path);
                Some(std::fs::read_to_string(&path).map_err(|error| {
                    ConfigError::new(
                        format!("{key}.setup_sql"),
                        format!("cannot read {}: {error}", path.display()),
                    )
                })?)
            }
        };
        databases.push(DatabaseSettings {
            name: database.name,
            setup_sql,
        });
    }
    let known = |key: String, name: &str| -> Result<(), ConfigError> {
        if databases.iter().any(|database| database.name == name) {
            Ok(())
        } else {
            Err(ConfigError::new(
                key,
                format!("no [[records.database]] is named `{name}`"),
            ))
        }
    };
    let mut layouts = Vec::new();
    for (index, layout) in file.layouts.into_iter().enumerate() {
        known(
            format!("records.layout[{index}].database"),
            &layout.database,
        )?;
        let portals = layout
            .portals
            .into_iter()
            .map(|portal| PortalDefinition {
                name: portal.name,
                table: portal.table,
                foreign_key: portal.foreign_key,
                local_key: portal.local_key,
                fields: portal.fields,
            })
            .collect();
        layouts.push((
            layout.database,
            LayoutDefinition {
                name: layout.name,
                table: layout.table,
                fields: layout.fields,
                portals,
            },
        ));
    }
    let mut grants = Vec::new();
    for (index, grant) in file.grants.into_iter().enumerate() {
        let key = format!("records.grant[{index}]");
        known(format!("{key}.database"), &grant.database)?;
        let access = match grant.access.as_str() {
            "read" => Access::Read,
            "write" => Access::Write,
            "schema" => Access::Schema,
            other => {
                return Err(ConfigError::new(
                    format!("{key}.access"),
                    format!("`{other}`: use read, write or schema"),
                ));
            }
        };
        if grant.tables.is_empty() {
            return Err(ConfigError::new(
                format!("{key}.tables"),
                "name at least one table, or \"*\"",
            ));
        }
        grants.push(Grant {
            group: grant.group,
            database: grant.database,
            tables: grant.tables,
            access,
        });
    }
    let accounts = file
        .accounts
        .into_iter()
        .map(|account| AccountSettings {
            name: account.name,
            password: account.password,
            groups: account.groups,
        })
        .collect();
    Ok(RecordsSettings {
        data_api_listen,
        session_idle_timeout: span(
            "records.session_idle_timeout",
            &file.session_idle_timeout,
            Duration::from_secs(15 * 60),
        )?,
        max_sessions: file.max_sessions.unwrap_or(1000).max(1),
        transaction_idle_timeout: span(
            "records.transaction_idle_timeout",
            &file.transaction_idle_timeout,
            Duration::from_secs(30),
        )?,
        lease_duration: span(
            "records.lease_duration",
            &file.lease_duration,
            Duration::from_secs(120),
        )?,
        max_limit: file.max_limit.unwrap_or(10_000).max(1),
        databases,
        layouts,
        grants,
        accounts,
    })
}
