//! The user tables as SQLite describes them, the layouts stored beside them, and the system
//! column and triggers every user table gets.

use std::collections::BTreeMap;

use records::{
    Code, Field, FieldKind, Layout, LayoutDefinition, Portal, PortalDefinition, StoreError, quote,
};
use rusqlite::{Connection, OptionalExtension};

/// Tables whose names start like this are genkan's or SQLite's own, never user tables.
pub(crate) fn is_internal(table: &str) -> bool {
    let lower = table.to_ascii_lowercase();
    lower.starts_with("genkan_") || lower.starts_with("sqlite_")
}

/// Columns of one user table, in order, without the system columns.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) columns: Vec<Field>,
}

/// Tables and layout definitions, as read at one moment.
#[derive(Debug)]
pub(crate) struct Schema {
    pub(crate) tables: BTreeMap<String, Table>,
    pub(crate) defined: Vec<LayoutDefinition>,
}

fn kind_of(declared: &str) -> FieldKind {
    let upper = declared.to_ascii_uppercase();
    if ["INT", "REAL", "FLOA", "DOUB", "NUM", "DEC"]
        .iter()
        .any(|part| upper.contains(part))
    {
        FieldKind::Number
    } else {
        FieldKind::Text
    }
}

pub(crate) fn user_tables(connection: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement =
        connection.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?;
    let names = statement.query_map([], |row| row.get::<_, String>(0))?;
    names
        .filter(|name| name.as_ref().map_or(true, |name| !is_internal(name)))
        .collect()
}

fn columns(connection: &Connection, table: &str) -> rusqlite::Result<Vec<(String, String, bool)>> {
    let mut statement = connection.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(5)? > 0,
        ))
    })?;
    rows.collect()
}

fn split_fields(text: Option<String>) -> Option<Vec<String>> {
    text.map(|text| {
        text.split('\n')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

impl Schema {
    pub(crate) fn read(connection: &Connection) -> rusqlite::Result<Self> {
        let mut tables = BTreeMap::new();
        for name in user_tables(connection)? {
            let columns = columns(connection, &name)?
                .into_iter()
                .filter(|(column, _, _)| {
                    !column.eq_ignore_ascii_case("ROWMODID")
                        && !column.eq_ignore_ascii_case("ROWID")
                })
                .map(|(column, declared, _)| Field {
                    name: column,
                    kind: kind_of(&declared),
                })
                .collect();
            tables.insert(name, Table { columns });
        }
        let mut defined = Vec::new();
        let mut statement = connection
            .prepare("SELECT name, table_name, fields FROM genkan_layout ORDER BY name")?;
        let layouts = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut portal_statement = connection.prepare(
            "SELECT name, table_name, foreign_key, local_key, fields FROM genkan_portal WHERE layout = ?1 ORDER BY position",
        )?;
        for (name, table, fields) in layouts {
            let portals = portal_statement
                .query_map([&name], |row| {
                    Ok(PortalDefinition {
                        name: row.get(0)?,
                        table: row.get(1)?,
                        foreign_key: row.get(2)?,
                        local_key: row.get(3)?,
                        fields: split_fields(row.get(4)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            defined.push(LayoutDefinition {
                name,
                table,
                fields: split_fields(fields),
                portals,
            });
        }
        Ok(Self { tables, defined })
    }

    fn pick(
        &self,
        table: &str,
        wanted: Option<&[String]>,
        prefix: Option<&str>,
    ) -> Result<Vec<Field>, StoreError> {
        let columns = &self
            .tables
            .get(table)
            .ok_or_else(|| StoreError::fm(Code::TableMissing, format!("no table `{table}`")))?
            .columns;
        let picked: Vec<Field> = match wanted {
            None => columns.clone(),
            Some(names) => names
                .iter()
                .map(|name| {
                    columns
                        .iter()
                        .find(|field| &field.name == name)
                        .cloned()
                        .ok_or_else(|| {
                            StoreError::fm(
                                Code::FieldMissing,
                                format!("table `{table}` has no field `{name}`"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(match prefix {
            None => picked,
            Some(prefix) => picked
                .into_iter()
                .map(|field| Field {
                    name: format!("{prefix}::{}", field.name),
                    kind: field.kind,
                })
                .collect(),
        })
    }

    /// Checks a definition against the tables and resolves it.
    pub(crate) fn resolve(&self, definition: &LayoutDefinition) -> Result<Layout, StoreError> {
        let fields = self.pick(&definition.table, definition.fields.as_deref(), None)?;
        let mut portals = Vec::new();
        for portal in &definition.portals {
            if portals
                .iter()
                .any(|existing: &Portal| existing.name == portal.name)
            {
                return Err(StoreError::fm(
                    Code::ParameterInvalid,
                    format!("two portals named `{}`", portal.name),
                ));
            }
            let related =
                self.pick(&portal.table, portal.fields.as_deref(), Some(&portal.table))?;
            let key = |table: &str, column: &str| -> Result<String, StoreError> {
                if column.eq_ignore_ascii_case("ROWID") {
                    return Ok("ROWID".to_owned());
                }
                self.pick(table, Some(&[column.to_owned()]), None)
                    .map(|_| column.to_owned())
            };
            portals.push(Portal {
                name: portal.name.clone(),
                table: portal.table.clone(),
                foreign_key: key(&portal.table, &portal.foreign_key)?,
                local_key: key(
                    &definition.table,
                    portal.local_key.as_deref().unwrap_or("ROWID"),
                )?,
                fields: related,
            });
        }
        Ok(Layout {
            name: definition.name.clone(),
            table: definition.table.clone(),
            fields,
            portals,
        })
    }

    /// The layout of that name: a defined one, else the table's own.
    pub(crate) fn layout(&self, name: &str) -> Result<Layout, StoreError> {
        if let Some(definition) = self
            .defined
            .iter()
            .find(|definition| definition.name == name)
        {
            return self.resolve(definition);
        }
        if self.tables.contains_key(name) {
            return self.resolve(&LayoutDefinition {
                name: name.to_owned(),
                table: name.to_owned(),
                fields: None,
                portals: vec![],
            });
        }
        Err(StoreError::fm(
            Code::LayoutMissing,
            format!("no layout `{name}`"),
        ))
    }

    /// Every layout: defined ones (skipping any a schema change broke), then tables' own.
    pub(crate) fn layouts(&self) -> Vec<Layout> {
        let mut all: Vec<Layout> = self
            .defined
            .iter()
            .filter_map(|definition| self.resolve(definition).ok())
            .collect();
        for table in self.tables.keys() {
            if !all.iter().any(|layout| &layout.name == table)
                && let Ok(layout) = self.layout(table)
            {
                all.push(layout);
            }
        }
        all
    }
}

/// Stores a (checked) layout definition, replacing one of the same name.
pub(crate) fn store_layout(
    connection: &Connection,
    definition: &LayoutDefinition,
) -> rusqlite::Result<()> {
    let join = |fields: &Option<Vec<String>>| fields.as_ref().map(|fields| fields.join("\n"));
    connection.execute(
        "DELETE FROM genkan_layout WHERE name = ?1",
        [&definition.name],
    )?;
    connection.execute(
        "INSERT INTO genkan_layout (name, table_name, fields) VALUES (?1, ?2, ?3)",
        (
            &definition.name,
            &definition.table,
            join(&definition.fields),
        ),
    )?;
    for (position, portal) in definition.portals.iter().enumerate() {
        connection.execute(
            "INSERT INTO genkan_portal (layout, position, name, table_name, foreign_key, local_key, fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (
                &definition.name,
                position as i64,
                &portal.name,
                &portal.table,
                &portal.foreign_key,
                &portal.local_key,
                join(&portal.fields),
            ),
        )?;
    }
    Ok(())
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Gives user tables the `ROWMODID` column and genkan's triggers (all tables, or the named
/// ones), and drops genkan triggers left on renamed tables. Idempotent.
pub(crate) fn install_rules(
    connection: &Connection,
    only: Option<&[String]>,
) -> rusqlite::Result<()> {
    let tables = match only {
        Some(names) => names.to_vec(),
        None => user_tables(connection)?,
    };
    for table in tables {
        let exists: Option<i64> = connection
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [&table],
                |row| row.get(0),
            )
            .optional()?;
        if exists.is_none() || is_internal(&table) {
            continue;
        }
        let has_modid = columns(connection, &table)?
            .iter()
            .any(|(name, _, _)| name.eq_ignore_ascii_case("ROWMODID"));
        let quoted = quote(&table);
        if !has_modid {
            connection.execute_batch(&format!(
                "ALTER TABLE {quoted} ADD COLUMN ROWMODID INTEGER NOT NULL DEFAULT 0"
            ))?;
        }
        let triggers = [
            (
                format!("genkan_lease_update_{table}"),
                format!(
                    "BEFORE UPDATE ON {quoted} WHEN genkan_may_write({}, OLD.ROWID) = 0 BEGIN SELECT RAISE(IGNORE); END",
                    literal(&table)
                ),
            ),
            (
                format!("genkan_lease_delete_{table}"),
                format!(
                    "BEFORE DELETE ON {quoted} WHEN genkan_may_write({}, OLD.ROWID) = 0 BEGIN SELECT RAISE(IGNORE); END",
                    literal(&table)
                ),
            ),
            (
                format!("genkan_modid_{table}"),
                format!(
                    "AFTER UPDATE ON {quoted} WHEN NEW.ROWMODID = OLD.ROWMODID BEGIN UPDATE {quoted} SET ROWMODID = OLD.ROWMODID + 1 WHERE ROWID = OLD.ROWID; END"
                ),
            ),
        ];
        for (name, body) in triggers {
            let wanted = format!("CREATE TRIGGER {} {body}", quote(&name));
            let current: Option<String> = connection
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
                    [&name],
                    |row| row.get(0),
                )
                .optional()?;
            if current.as_deref() != Some(wanted.as_str()) {
                connection.execute_batch(&format!(
                    "DROP TRIGGER IF EXISTS {}; {wanted}",
                    quote(&name)
                ))?;
            }
        }
    }
    // Triggers whose table was renamed still carry the old name in their `genkan_may_write` call.
    let mut statement = connection.prepare(
        "SELECT name, tbl_name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'genkan\\_%' ESCAPE '\\'",
    )?;
    let stale: Vec<String> = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .filter_map(Result::ok)
        .filter(|(name, table)| {
            ![
                "genkan_lease_update_",
                "genkan_lease_delete_",
                "genkan_modid_",
            ]
            .iter()
            .any(|prefix| *name == format!("{prefix}{table}"))
        })
        .map(|(name, _)| name)
        .collect();
    for name in stale {
        connection.execute_batch(&format!("DROP TRIGGER IF EXISTS {}", quote(&name)))?;
    }
    Ok(())
}
