//! `genkan export --table T`: a table as CSV, in pages of [`PAGE_ROWS`] rows ordered by record
//! id, so a large table never sits whole in the server's or this process's memory.
//!
//! The first line names the columns. A table with record ids begins with a `recordId` column
//! (unless an INTEGER PRIMARY KEY column already is the record id), so that `genkan import` of
//! the file gives the records their old ids back. `ROWMODID` is left out: it counts changes in
//! this database and means nothing in another. NULL becomes an empty field; bytes are written as
//! hex, as `/api/sql` returns them.
//!
//! The file is written to a temporary name beside the destination and renamed into place at the
//! end: a failed or interrupted export never leaves a half-written file under the real name.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::client::{Session, statement};
use super::import::shape;
use super::{ExportArgs, progress, quote_name};

/// Rows fetched in one call.
const PAGE_ROWS: usize = 5_000;

/// The text of one CSV field.
fn field_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The queries: the row count, then one page (`ROWID > ?` for tables with record ids, else
/// `OFFSET ?`).
struct Queries {
    count: String,
    page: String,
    keyed: bool,
}

fn queries(table: &str, columns: &[String], has_rowid: bool, id_column: Option<&str>) -> Queries {
    let quoted = quote_name(table);
    let list: Vec<String> = columns.iter().map(|column| quote_name(column)).collect();
    let list = list.join(", ");
    let count = format!("SELECT count(*) FROM {quoted}");
    if !has_rowid {
        return Queries {
            count,
            page: format!("SELECT {list} FROM {quoted} LIMIT {PAGE_ROWS} OFFSET ?"),
            keyed: false,
        };
    }
    // The record id leads the row: as `recordId`, or as the INTEGER PRIMARY KEY column that is it
    // (then already among the columns, first as the table declares it).
    let select = if id_column.is_some() {
        format!("ROWID, {list}")
    } else {
        format!("ROWID AS recordId, {list}")
    };
    Queries {
        count,
        page: format!(
            "SELECT {select} FROM {quoted} WHERE ROWID > ? ORDER BY ROWID LIMIT {PAGE_ROWS}"
        ),
        keyed: true,
    }
}

/// The header line's names.
fn header(columns: &[String], has_rowid: bool, id_column: Option<&str>) -> Vec<String> {
    let mut names = Vec::with_capacity(columns.len() + 1);
    if has_rowid && id_column.is_none() {
        names.push("recordId".to_owned());
    }
    names.extend(columns.iter().cloned());
    names
}

/// Where the CSV goes: a temporary file renamed into place at the end, or standard output.
enum Destination {
    File {
        temporary: Partial,
        writer: csv::Writer<std::io::BufWriter<std::fs::File>>,
    },
    Stdout(csv::Writer<std::io::Stdout>),
}

/// A temporary file beside the destination, removed unless it is renamed into place.
struct Partial {
    path: PathBuf,
    final_path: PathBuf,
    kept: bool,
}

impl Partial {
    fn beside(final_path: &Path) -> Self {
        let name = final_path.file_name().map_or_else(
            || "export.csv".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        );
        Self {
            path: final_path.with_file_name(format!(".{name}.{}.partial", std::process::id())),
            final_path: final_path.to_owned(),
            kept: false,
        }
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Destination {
    fn open(output: Option<&Path>, bom: bool) -> Result<Self> {
        match output {
            None => {
                let mut stdout = std::io::stdout();
                if bom {
                    stdout.write_all(b"\xEF\xBB\xBF")?;
                }
                Ok(Self::Stdout(csv::Writer::from_writer(stdout)))
            }
            Some(path) => {
                let temporary = Partial::beside(path);
                let file = std::fs::File::create(&temporary.path)
                    .with_context(|| format!("cannot create {}", temporary.path.display()))?;
                let mut buffered = std::io::BufWriter::new(file);
                if bom {
                    buffered.write_all(b"\xEF\xBB\xBF")?;
                }
                Ok(Self::File {
                    temporary,
                    writer: csv::Writer::from_writer(buffered),
                })
            }
        }
    }

    fn write(&mut self, fields: &[String]) -> Result<()> {
        match self {
            Self::File { writer, .. } => writer.write_record(fields)?,
            Self::Stdout(writer) => writer.write_record(fields)?,
        }
        Ok(())
    }

    /// Flushes, and puts a file in place.
    fn finish(self) -> Result<()> {
        match self {
            Self::Stdout(mut writer) => writer.flush()?,
            Self::File {
                mut temporary,
                writer,
            } => {
                let buffered = writer
                    .into_inner()
                    .map_err(|error| anyhow::anyhow!("cannot write the file: {}", error.error()))?;
                let file = buffered
                    .into_inner()
                    .map_err(|error| anyhow::anyhow!("cannot write the file: {}", error.error()))?;
                file.sync_all()?;
                std::fs::rename(&temporary.path, &temporary.final_path).with_context(|| {
                    format!(
                        "cannot move the export to {}",
                        temporary.final_path.display()
                    )
                })?;
                temporary.kept = true;
            }
        }
        Ok(())
    }
}

/// Runs `genkan export`.
#[allow(clippy::print_stderr)]
pub(super) fn run(args: &ExportArgs) -> Result<()> {
    let mut session = Session::open(&args.server)?;
    let shape = shape(&mut session, &args.table)?;
    let id_column = shape.id_column.as_deref();
    let queries = queries(&args.table, &shape.columns, shape.has_rowid, id_column);
    let total = session
        .run(vec![statement(&queries.count, Vec::new())])?
        .map_err(|refusal| anyhow::anyhow!("table `{}`: {refusal}", args.table))?
        .results
        .first()
        .and_then(|outcome| outcome.rows.first())
        .and_then(|row| row.first())
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut destination = Destination::open(args.output.as_deref(), args.bom)?;
    destination.write(&header(&shape.columns, shape.has_rowid, id_column))?;
    let bar = progress(total);
    let mut written: u64 = 0;
    let mut after: i64 = 0;
    loop {
        let position = if queries.keyed {
            Value::from(after)
        } else {
            Value::from(written)
        };
        let answer = session
            .run(vec![statement(&queries.page, vec![position])])?
            .map_err(|refusal| anyhow::anyhow!("table `{}`: {refusal}", args.table))?;
        let rows = answer.results.into_iter().next().unwrap_or_default().rows;
        for row in &rows {
            let mut cells = row.iter();
            if queries.keyed {
                let Some(id) = cells.next().and_then(Value::as_i64) else {
                    bail!("the server's answer has a row without its record id");
                };
                after = id;
                if shape.id_column.is_none() {
                    // `recordId` is written from the same value.
                    destination.write(
                        &std::iter::once(id.to_string())
                            .chain(cells.map(field_text))
                            .collect::<Vec<_>>(),
                    )?;
                    continue;
                }
            }
            destination.write(&cells.map(field_text).collect::<Vec<_>>())?;
        }
        written += rows.len() as u64;
        bar.set_position(written.min(total.max(written)));
        if rows.len() < PAGE_ROWS {
            break;
        }
    }
    destination.finish()?;
    bar.finish_and_clear();
    session.logout();
    if let Some(path) = &args.output {
        eprintln!(
            "exported {written} row{} of {} to {}",
            if written == 1 { "" } else { "s" },
            args.table,
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_record_id_and_the_header_leads_with_it() {
        let columns = vec!["name".to_owned(), "電話".to_owned()];
        let plain = queries("顧客", &columns, true, None);
        assert_eq!(
            plain.page,
            "SELECT ROWID AS recordId, \"name\", \"電話\" FROM \"顧客\" WHERE ROWID > ? ORDER BY ROWID LIMIT 5000"
        );
        assert!(plain.keyed);
        assert_eq!(header(&columns, true, None), ["recordId", "name", "電話"]);
        let with_key = vec!["id".to_owned(), "name".to_owned()];
        assert_eq!(header(&with_key, true, Some("id")), ["id", "name"]);
        let without = queries("t", &columns, false, None);
        assert!(!without.keyed);
        assert!(without.page.ends_with("LIMIT 5000 OFFSET ?"));
        assert_eq!(field_text(&Value::Null), "");
        assert_eq!(field_text(&Value::from(2.5)), "2.5");
        assert_eq!(field_text(&Value::from("a,\"b\"")), "a,\"b\"");
    }
}
