//! The Data API's record operations on SQLite: found sets, single records with portals, and
//! create / edit / delete / duplicate, each one short transaction on the writer.

use records::{
    Actor, Code, Datum, FoundSet, Layout, PortalRows, Query, Range, Record, StoreError,
    condition_for, quote,
};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params_from_iter};

use super::{Conn, RecordsDb};

/// Portal rows returned when the request does not say (python-fmrest assumes the same).
pub(crate) const DEFAULT_PORTAL_RANGE: Range = Range {
    offset: 1,
    limit: 50,
};

pub(crate) fn to_value(datum: &Datum) -> Value {
    match datum {
        Datum::Null => Value::Null,
        Datum::Integer(number) => Value::Integer(*number),
        Datum::Real(number) => Value::Real(*number),
        Datum::Text(text) => Value::Text(text.clone()),
        Datum::Blob(bytes) => Value::Blob(bytes.clone()),
    }
}

pub(crate) fn from_ref(value: ValueRef<'_>) -> Datum {
    match value {
        ValueRef::Null => Datum::Null,
        ValueRef::Integer(number) => Datum::Integer(number),
        ValueRef::Real(number) => Datum::Real(number),
        ValueRef::Text(text) => Datum::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Datum::Blob(bytes.to_vec()),
    }
}

// Taken by value so that it reads as `.map_err(…)` at every call.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn engine(error: rusqlite::Error) -> StoreError {
    StoreError::fm(code_of(&error), error.to_string())
}

/// FileMaker's code for an SQLite failure.
pub(crate) fn code_of(error: &rusqlite::Error) -> Code {
    match error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                Code::FileLocked
            }
            rusqlite::ErrorCode::AuthorizationForStatementDenied => Code::InsufficientPrivileges,
            rusqlite::ErrorCode::ConstraintViolation
                if failure.extended_code == 2067 || failure.extended_code == 1555 =>
            {
                Code::NotUnique
            }
            rusqlite::ErrorCode::ConstraintViolation => Code::FieldRequiresValidValue,
            rusqlite::ErrorCode::TooBig => Code::ValueTooLarge,
            _ => Code::Unknown,
        },
        _ => Code::Unknown,
    }
}

fn columns_sql(fields: &[records::Field], prefix_len: usize) -> String {
    let mut sql = String::from("ROWID, ROWMODID");
    for field in fields {
        sql.push_str(", ");
        sql.push_str(&quote(&field.name[prefix_len..]));
    }
    sql
}

fn read_record(row: &rusqlite::Row<'_>, fields: &[records::Field]) -> rusqlite::Result<Record> {
    let mut values = Vec::with_capacity(fields.len());
    for (index, field) in fields.iter().enumerate() {
        values.push((field.name.clone(), from_ref(row.get_ref(index + 2)?)));
    }
    Ok(Record {
        record_id: row.get(0)?,
        mod_id: row.get(1)?,
        fields: values,
        portals: Vec::new(),
    })
}

fn offset_of(range: Range) -> i64 {
    i64::try_from(range.offset.saturating_sub(1)).unwrap_or(i64::MAX)
}

fn limit_of(range: Range) -> i64 {
    i64::try_from(range.limit).unwrap_or(i64::MAX)
}

fn portals(
    connection: &Connection,
    layout: &Layout,
    record: &mut Record,
    wanted: Option<&[(String, Range)]>,
) -> Result<(), StoreError> {
    for portal in &layout.portals {
        let range = match wanted {
            None => DEFAULT_PORTAL_RANGE,
            Some(list) => match list.iter().find(|(name, _)| name == &portal.name) {
                Some((_, range)) => *range,
                None => continue,
            },
        };
        let key: Value = if portal.local_key == "ROWID" {
            Value::Integer(record.record_id)
        } else {
            connection
                .query_row(
                    &format!(
                        "SELECT {} FROM {} WHERE ROWID = ?1",
                        quote(&portal.local_key),
                        quote(&layout.table)
                    ),
                    [record.record_id],
                    |row| row.get(0),
                )
                .map_err(engine)?
        };
        let foreign = if portal.foreign_key == "ROWID" {
            "ROWID".to_owned()
        } else {
            quote(&portal.foreign_key)
        };
        let table = quote(&portal.table);
        let found: i64 = connection
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE {foreign} = ?1"),
                [&key],
                |row| row.get(0),
            )
            .map_err(engine)?;
        let prefix = portal.table.len() + 2;
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {} FROM {table} WHERE {foreign} = ?1 ORDER BY ROWID LIMIT ?2 OFFSET ?3",
                columns_sql(&portal.fields, prefix)
            ))
            .map_err(engine)?;
        let rows = statement
            .query_map((&key, limit_of(range), offset_of(range)), |row| {
                read_record(row, &portal.fields)
            })
            .map_err(engine)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(engine)?;
        record.portals.push(PortalRows {
            name: portal.name.clone(),
            table: portal.table.clone(),
            found: u64::try_from(found).unwrap_or(0),
            rows,
        });
    }
    Ok(())
}

impl RecordsDb {
    pub(crate) fn query_records(
        &self,
        layout: &Layout,
        query: &Query,
    ) -> Result<FoundSet, StoreError> {
        let condition = match &query.find {
            None => None,
            Some(requests) => {
                let resolved = layout.find_requests(requests).map_err(|code| {
                    StoreError::fm(code, "a find names a field the layout does not have")
                })?;
                Some(condition_for(&resolved).map_err(|error| match error {
                    records::FindError::Empty => {
                        StoreError::fm(Code::FindCriteriaEmpty, error.to_string())
                    }
                    records::FindError::Invalid { .. } => {
                        StoreError::fm(Code::InvalidFindValue, error.to_string())
                    }
                })?)
            }
        };
        let order = layout.order_by(&query.sort).map_err(|code| StoreError::fm(code, "the sort names a field the layout does not have, or an order other than ascend/descend"))?;
        let range = query.range.unwrap_or(Range {
            offset: 1,
            limit: 100,
        });
        let reader = self.reader();
        let connection = &reader.connection;
        // One snapshot for the counts and the page, so they agree with each other.
        let snapshot = ReadSnapshot::begin(connection)?;
        let table = quote(&layout.table);
        let total: i64 = connection
            .prepare_cached(&format!("SELECT count(*) FROM {table}"))
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(engine)?;
        let (filter, mut params): (String, Vec<Value>) = match &condition {
            None => (String::new(), Vec::new()),
            Some(condition) => (
                format!(" WHERE {}", condition.sql),
                condition
                    .params
                    .iter()
                    .map(|param| match param {
                        records::Value::Text(text) => Value::Text(text.clone()),
                        records::Value::Number(number) => Value::Real(*number),
                    })
                    .collect(),
            ),
        };
        let found: i64 = if condition.is_none() {
            total
        } else {
            connection
                .prepare_cached(&format!("SELECT count(*) FROM {table}{filter}"))
                .and_then(|mut statement| {
                    statement.query_row(params_from_iter(&params), |row| row.get(0))
                })
                .map_err(engine)?
        };
        if condition.is_some() && found == 0 {
            return Err(StoreError::fm(
                Code::NoRecordsMatch,
                "no records match the find",
            ));
        }
        params.push(Value::Integer(limit_of(range)));
        params.push(Value::Integer(offset_of(range)));
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {} FROM {table}{filter} {order} LIMIT ? OFFSET ?",
                columns_sql(&layout.fields, 0)
            ))
            .map_err(engine)?;
        let mut records = statement
            .query_map(params_from_iter(&params), |row| {
                read_record(row, &layout.fields)
            })
            .map_err(engine)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(engine)?;
        for record in &mut records {
            portals(connection, layout, record, query.portals.as_deref())?;
        }
        drop(statement);
        snapshot.end();
        Ok(FoundSet {
            total: u64::try_from(total).unwrap_or(0),
            found: u64::try_from(found).unwrap_or(0),
            records,
        })
    }

    pub(crate) fn one_record(
        &self,
        layout: &Layout,
        record_id: i64,
        wanted: Option<&[(String, Range)]>,
    ) -> Result<Record, StoreError> {
        let reader = self.reader();
        let connection = &reader.connection;
        let mut record = connection
            .query_row(
                &format!(
                    "SELECT {} FROM {} WHERE ROWID = ?1",
                    columns_sql(&layout.fields, 0),
                    quote(&layout.table)
                ),
                [record_id],
                |row| read_record(row, &layout.fields),
            )
            .optional()
            .map_err(engine)?
            .ok_or_else(|| missing(record_id))?;
        portals(connection, layout, &mut record, wanted)?;
        Ok(record)
    }

    /// Runs `work` in one IMMEDIATE transaction on the writer, acting for `actor`. If any row
    /// was left alone because another session holds it, nothing is committed and the error
    /// names every such record.
    pub(crate) fn write<T>(
        &self,
        actor: Actor<'_>,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.writer();
        writer.act_for(actor);
        let Conn { connection, caller } = &mut *writer;
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(engine)?;
        let value = work(&transaction)?;
        let blocked = std::mem::take(&mut super::lock(caller).blocked);
        if !blocked.is_empty() {
            return Err(StoreError::Locked(blocked));
        }
        transaction.commit().map_err(engine)?;
        Ok(value)
    }

    pub(crate) fn create_record(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        fields: &[(String, Datum)],
    ) -> Result<(i64, i64), StoreError> {
        let columns = writable(layout, fields)?;
        let table = quote(&layout.table);
        self.write(actor, |connection| {
            if columns.is_empty() {
                connection
                    .execute(&format!("INSERT INTO {table} DEFAULT VALUES"), [])
                    .map_err(engine)?;
            } else {
                let names: Vec<String> = columns.iter().map(|(name, _)| quote(name)).collect();
                let marks = vec!["?"; columns.len()].join(", ");
                let values: Vec<Value> = columns.iter().map(|(_, value)| to_value(value)).collect();
                connection
                    .prepare_cached(&format!(
                        "INSERT INTO {table} ({}) VALUES ({marks})",
                        names.join(", ")
                    ))
                    .and_then(|mut statement| statement.execute(params_from_iter(&values)))
                    .map_err(engine)?;
            }
            Ok((connection.last_insert_rowid(), 0))
        })
    }

    pub(crate) fn edit_record(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        record_id: i64,
        fields: &[(String, Datum)],
        expected_mod_id: Option<i64>,
    ) -> Result<i64, StoreError> {
        let columns = writable(layout, fields)?;
        let table = quote(&layout.table);
        self.write(actor, |connection| {
            let current: i64 = connection
                .query_row(
                    &format!("SELECT ROWMODID FROM {table} WHERE ROWID = ?1"),
                    [record_id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(engine)?
                .ok_or_else(|| missing(record_id))?;
            if let Some(given) = expected_mod_id.filter(|given| *given != current) {
                return Err(StoreError::ModIdMismatch { given, current });
            }
            if columns.is_empty() {
                return Ok(current);
            }
            let sets: Vec<String> = columns
                .iter()
                .map(|(name, _)| format!("{} = ?", quote(name)))
                .collect();
            let mut values: Vec<Value> = columns.iter().map(|(_, value)| to_value(value)).collect();
            values.push(Value::Integer(record_id));
            connection
                .prepare_cached(&format!(
                    "UPDATE {table} SET ROWMODID = ROWMODID + 1, {} WHERE ROWID = ?",
                    sets.join(", ")
                ))
                .and_then(|mut statement| statement.execute(params_from_iter(&values)))
                .map_err(engine)?;
            Ok(current + 1)
        })
    }

    pub(crate) fn delete_record(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        record_id: i64,
    ) -> Result<(), StoreError> {
        let table = quote(&layout.table);
        self.write(actor, |connection| {
            let exists = connection
                .query_row(
                    &format!("SELECT 1 FROM {table} WHERE ROWID = ?1"),
                    [record_id],
                    |_| Ok(()),
                )
                .optional()
                .map_err(engine)?;
            if exists.is_none() {
                return Err(missing(record_id));
            }
            connection
                .execute(
                    &format!("DELETE FROM {table} WHERE ROWID = ?1"),
                    [record_id],
                )
                .map_err(engine)?;
            Ok(())
        })
    }

    pub(crate) fn duplicate_record(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        record_id: i64,
    ) -> Result<(i64, i64), StoreError> {
        let schema = self
            .schema()
            .map_err(|error| StoreError::fm(Code::Unknown, error.to_string()))?;
        let table_columns = &schema
            .tables
            .get(&layout.table)
            .ok_or_else(|| {
                StoreError::fm(Code::TableMissing, format!("no table `{}`", layout.table))
            })?
            .columns;
        let names: Vec<String> = table_columns
            .iter()
            .map(|field| quote(&field.name))
            .collect();
        let names = names.join(", ");
        let table = quote(&layout.table);
        self.write(actor, |connection| {
            let copied = connection
                .execute(
                    &format!(
                        "INSERT INTO {table} ({names}) SELECT {names} FROM {table} WHERE ROWID = ?1"
                    ),
                    [record_id],
                )
                .map_err(engine)?;
            if copied == 0 {
                return Err(missing(record_id));
            }
            Ok((connection.last_insert_rowid(), 0))
        })
    }
}

/// The layout's own fields among those given (102 for any other: a related field, a typo, or
/// a field the layout does not show).
fn writable<'a>(
    layout: &Layout,
    fields: &'a [(String, Datum)],
) -> Result<Vec<(&'a str, &'a Datum)>, StoreError> {
    fields
        .iter()
        .map(|(name, value)| match layout.field(name) {
            Some(_) => Ok((name.as_str(), value)),
            None => Err(StoreError::fm(
                Code::FieldMissing,
                format!("layout `{}` has no field `{name}`", layout.name),
            )),
        })
        .collect()
}

fn missing(record_id: i64) -> StoreError {
    StoreError::fm(Code::RecordMissing, format!("no record {record_id}"))
}

/// A read transaction on a reader: its statements see one state of the database. Ended (or
/// dropped on an early return) with COMMIT, which for a read only lets the snapshot go.
pub(crate) struct ReadSnapshot<'a>(&'a Connection);

impl<'a> ReadSnapshot<'a> {
    pub(crate) fn begin(connection: &'a Connection) -> Result<Self, StoreError> {
        connection.execute_batch("BEGIN").map_err(engine)?;
        Ok(Self(connection))
    }

    pub(crate) fn end(self) {}
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("COMMIT");
    }
}
