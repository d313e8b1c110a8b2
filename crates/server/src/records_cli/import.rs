//! `genkan import FILE.csv --table T`: every row of a CSV file into a table, in one transaction.
//!
//! The whole file is read and checked first (field counts, UTF-8); then one `BEGIN`, the rows as
//! `INSERT`s in batches of calls on the same token, and `COMMIT`: nothing is kept unless all of
//! it is. With `--keep-going`, rows the database refuses (a NOT NULL, CHECK or UNIQUE
//! constraint) are left out instead: a refused statement rolls the server's transaction back,
//! so the transaction is begun again and the rows found good so far are sent again before the
//! import goes on; a bad row costs one such replay, and more than [`MAX_REFUSED`] stop the
//! import with nothing kept.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::client::{Refusal, Session, statement};
use super::{ImportArgs, Incomplete, line_list, progress, quote_name};

/// Rows sent in one call.
const BATCH_ROWS: usize = 1_000;
/// Field bytes sent in one call (the server reads up to 64 MiB).
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Rows sent in one call when replaying rows already found good.
const REPLAY_ROWS: usize = 10_000;
/// Bad lines named in messages.
const LINES_SHOWN: usize = 20;
/// Rows the database may refuse under `--keep-going` before the import stops.
const MAX_REFUSED: usize = 1_000;

/// One data line of the file.
struct Row {
    line: usize,
    fields: Vec<String>,
}

/// A line left out, and why.
struct Bad {
    line: usize,
    reason: String,
}

/// The file, read and checked.
struct Parsed {
    header: Vec<String>,
    rows: Vec<Row>,
    bad: Vec<Bad>,
}

/// Reads the CSV: the header, the good rows and the bad lines (wrong field count, not UTF-8).
fn parse(name: &str, bytes: &[u8]) -> Result<Parsed> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => bail!("{name}: the file is empty; its first line must name the columns"),
        Some(record) => {
            let record = record.with_context(|| format!("{name}: line 1"))?;
            let mut header = Vec::new();
            for (index, field) in record.iter().enumerate() {
                let text = std::str::from_utf8(field)
                    .map_err(|_| anyhow::anyhow!("{name}: line 1: not UTF-8 text"))?
                    .trim()
                    .to_owned();
                if text.is_empty() {
                    bail!("{name}: line 1: column {} has no name", index + 1);
                }
                if header
                    .iter()
                    .any(|known: &String| known.eq_ignore_ascii_case(&text))
                {
                    bail!("{name}: line 1: column `{text}` is named twice");
                }
                header.push(text);
            }
            header
        }
    };
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error
                    .position()
                    .map_or(0, |position| position.line() as usize);
                bad.push(Bad {
                    line,
                    reason: error.to_string(),
                });
                continue;
            }
        };
        let line = record
            .position()
            .map_or(0, |position| position.line() as usize);
        if record.len() != header.len() {
            bad.push(Bad {
                line,
                reason: format!(
                    "{} field{}; the header has {}",
                    record.len(),
                    if record.len() == 1 { "" } else { "s" },
                    header.len()
                ),
            });
            continue;
        }
        let fields: Result<Vec<String>, usize> = record
            .iter()
            .enumerate()
            .map(|(index, field)| {
                std::str::from_utf8(field)
                    .map(str::to_owned)
                    .map_err(|_| index)
            })
            .collect();
        match fields {
            Ok(fields) => rows.push(Row { line, fields }),
            Err(index) => bad.push(Bad {
                line,
                reason: format!("column `{}` is not UTF-8 text", header[index]),
            }),
        }
    }
    Ok(Parsed { header, rows, bad })
}

/// Where a CSV column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    /// A column of the table (its name as the table spells it).
    Column(String),
    /// The record's id (`ROWID`).
    RecordId,
    /// Nowhere (`modId`, or `recordId` with `--new-record-ids`).
    Ignored,
}

/// The table as its columns describe it.
pub(super) struct Shape {
    /// Its columns, without genkan's `ROWMODID`.
    pub(super) columns: Vec<String>,
    /// Whether it has a record id of its own: `ROWID`, or an INTEGER PRIMARY KEY column that
    /// is the `ROWID` (whose name is then in `columns` and `id_column`).
    pub(super) has_rowid: bool,
    /// The INTEGER PRIMARY KEY column that is the `ROWID`, if any.
    pub(super) id_column: Option<String>,
}

/// Reads the table's columns, and how its record id is named.
pub(super) fn shape(session: &mut Session, table: &str) -> Result<Shape> {
    let quoted = quote_name(table);
    let with_rowid = session.run(vec![statement(
        &format!("SELECT ROWID, * FROM {quoted} LIMIT 0"),
        Vec::new(),
    )])?;
    let (names, has_rowid) = match with_rowid {
        Ok(answer) => (
            answer
                .results
                .into_iter()
                .next()
                .unwrap_or_default()
                .columns,
            true,
        ),
        Err(_) => {
            // A table WITHOUT ROWID, or no table at all: the plain query tells which.
            let plain = session.run(vec![statement(
                &format!("SELECT * FROM {quoted} LIMIT 0"),
                Vec::new(),
            )])?;
            let answer = plain.map_err(|refusal| anyhow::anyhow!("table `{table}`: {refusal}"))?;
            let mut names = answer
                .results
                .into_iter()
                .next()
                .unwrap_or_default()
                .columns;
            names.insert(0, String::new());
            (names, false)
        }
    };
    let mut names = names.into_iter();
    let first = names.next().unwrap_or_default();
    // SQLite names `ROWID` after the INTEGER PRIMARY KEY column that is it, when there is one.
    let id_column = (has_rowid && !first.eq_ignore_ascii_case("rowid")).then_some(first);
    Ok(Shape {
        columns: names
            .filter(|name| !name.eq_ignore_ascii_case("ROWMODID"))
            .collect(),
        has_rowid,
        id_column,
    })
}

/// Where each CSV column goes; an unknown column is an error naming it.
fn destinations(
    header: &[String],
    shape: &Shape,
    table: &str,
    new_record_ids: bool,
) -> Result<(Vec<Destination>, Vec<String>)> {
    let mut notes = Vec::new();
    let mut found = Vec::new();
    for name in header {
        let column = shape
            .columns
            .iter()
            .find(|column| column.eq_ignore_ascii_case(name));
        let destination = match column {
            Some(column) => Destination::Column(column.clone()),
            None if name.eq_ignore_ascii_case("recordId") || name.eq_ignore_ascii_case("ROWID") => {
                if new_record_ids {
                    notes.push(format!(
                        "column `{name}` is not imported (--new-record-ids): the database numbers the records"
                    ));
                    Destination::Ignored
                } else if shape.has_rowid {
                    Destination::RecordId
                } else {
                    bail!("column `{name}`: table `{table}` has no record ids (WITHOUT ROWID)");
                }
            }
            None if name.eq_ignore_ascii_case("modId") || name.eq_ignore_ascii_case("ROWMODID") => {
                notes.push(format!(
                    "column `{name}` is not imported: genkan counts each record's changes itself"
                ));
                Destination::Ignored
            }
            None => bail!(
                "column `{name}` is not a column of table `{table}` (its columns: {}); nothing was imported",
                shape.columns.join(", ")
            ),
        };
        found.push(destination);
    }
    let names_id = |destination: &Destination| match (destination, &shape.id_column) {
        (Destination::Column(column), Some(id)) => column == id,
        _ => false,
    };
    if found.contains(&Destination::RecordId) && found.iter().any(names_id) {
        bail!(
            "both `recordId` and `{}` give the record id; keep one of them (or use --new-record-ids)",
            shape.id_column.as_deref().unwrap_or("")
        );
    }
    Ok((found, notes))
}

/// The INSERT for one row: empty fields are left out, so the column takes its default.
fn insert(table: &str, destinations: &[Destination], row: &Row) -> Result<Value, String> {
    let mut names = Vec::new();
    let mut params = Vec::new();
    for (destination, field) in destinations.iter().zip(&row.fields) {
        if field.is_empty() {
            continue;
        }
        match destination {
            Destination::Column(column) => {
                names.push(quote_name(column));
                params.push(Value::String(field.clone()));
            }
            Destination::RecordId => {
                let id: i64 = field
                    .trim()
                    .parse()
                    .map_err(|_| format!("recordId `{field}` is not a whole number"))?;
                names.push("ROWID".to_owned());
                params.push(Value::from(id));
            }
            Destination::Ignored => {}
        }
    }
    let table = quote_name(table);
    let sql = if names.is_empty() {
        format!("INSERT INTO {table} DEFAULT VALUES")
    } else {
        format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            vec!["?"; names.len()].join(", ")
        )
    };
    Ok(statement(&sql, params))
}

/// Refusals that are about one row (the next row may well pass), not about the whole import.
fn is_row_refusal(refusal: &Refusal) -> bool {
    matches!(refusal.code.as_str(), "504" | "509" | "511" | "1408")
}

/// Runs `genkan import`.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(super) fn run(args: &ImportArgs) -> Result<()> {
    let name = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {name}"))?;
    let Parsed {
        header,
        rows,
        mut bad,
    } = parse(&name, &bytes)?;
    if !bad.is_empty() && !args.keep_going {
        bail!("{}\nnothing was imported", bad_lines(&name, &bad));
    }
    let mut session = Session::open(&args.server)?;
    let shape = shape(&mut session, &args.table)?;
    let (destinations, notes) = destinations(&header, &shape, &args.table, args.new_record_ids)?;
    for note in notes {
        eprintln!("note: {note}");
    }
    let mut statements = Vec::with_capacity(rows.len());
    let mut good_rows = Vec::with_capacity(rows.len());
    for row in &rows {
        match insert(&args.table, &destinations, row) {
            Ok(sql) => {
                statements.push(sql);
                good_rows.push(row.line);
            }
            Err(reason) if args.keep_going => bad.push(Bad {
                line: row.line,
                reason,
            }),
            Err(reason) => bail!("{name}: line {}: {reason}\nnothing was imported", row.line),
        }
    }
    let hint = if destinations.contains(&Destination::RecordId) {
        " (to add the rows as new records, import with --new-record-ids)"
    } else {
        ""
    };
    let mut import = Import {
        session: &mut session,
        statements: &statements,
        lines: &good_rows,
        committed: Vec::new(),
        refused: Vec::new(),
    };
    let bar = progress(statements.len() as u64);
    import.begin()?;
    let mut at = 0;
    while at < statements.len() {
        let end = batch_end(&statements, at);
        match import.send(at..end)? {
            Ok(()) => {
                import.committed.extend(at..end);
                at = end;
            }
            Err((offset, refusal)) => {
                let line = good_rows[at + offset];
                if !args.keep_going || !is_row_refusal(&refusal) {
                    bar.finish_and_clear();
                    let hint = if refusal.code == "504" { hint } else { "" };
                    bail!("{name}: line {line}: {refusal}{hint}\nnothing was imported");
                }
                import.committed.extend(at..at + offset);
                import.refused.push(Bad {
                    line,
                    reason: refusal.to_string(),
                });
                at += offset + 1;
                bar.set_message(format!("line {line} refused; sending the good rows again"));
                import.replay(MAX_REFUSED)?;
                bar.set_message("");
            }
        }
        bar.set_position(at as u64);
    }
    import.commit()?;
    bar.finish_and_clear();
    let imported = import.committed.len();
    bad.append(&mut import.refused);
    drop(import);
    session.logout();
    bad.sort_by_key(|bad| bad.line);
    let table = &args.table;
    if bad.is_empty() {
        println!(
            "imported {imported} row{} into {table}",
            if imported == 1 { "" } else { "s" }
        );
        return Ok(());
    }
    eprintln!("{}", bad_lines(&name, &bad));
    let lines: Vec<usize> = bad.iter().map(|bad| bad.line).collect();
    println!(
        "imported {imported} row{} into {table}; skipped {} (line{} {})",
        if imported == 1 { "" } else { "s" },
        bad.len(),
        if bad.len() == 1 { "" } else { "s" },
        line_list(&lines, LINES_SHOWN)
    );
    Err(Incomplete { skipped: bad.len() }.into())
}

/// The end of the batch that starts at `start`.
fn batch_end(statements: &[Value], start: usize) -> usize {
    let mut bytes = 0;
    let mut end = start;
    while end < statements.len() && end - start < BATCH_ROWS {
        bytes += statements[end].to_string().len();
        if bytes > BATCH_BYTES && end > start {
            break;
        }
        end += 1;
    }
    end
}

fn bad_lines(name: &str, bad: &[Bad]) -> String {
    let mut text = format!(
        "{name}: {} bad row{}:",
        bad.len(),
        if bad.len() == 1 { "" } else { "s" }
    );
    for bad in bad.iter().take(LINES_SHOWN) {
        text.push_str(&format!("\n  line {}: {}", bad.line, bad.reason));
    }
    if bad.len() > LINES_SHOWN {
        text.push_str(&format!("\n  and {} more", bad.len() - LINES_SHOWN));
    }
    text
}

/// An import's transaction on the server.
struct Import<'a> {
    session: &'a mut Session,
    statements: &'a [Value],
    lines: &'a [usize],
    /// Statements done in the open transaction, in order.
    committed: Vec<usize>,
    /// Rows the database refused.
    refused: Vec<Bad>,
}

impl Import<'_> {
    fn begin(&mut self) -> Result<()> {
        self.session
            .run(vec![statement("BEGIN", Vec::new())])?
            .map_err(|refusal| anyhow::anyhow!("BEGIN: {refusal}\nnothing was imported"))?;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.session
            .run(vec![statement("COMMIT", Vec::new())])?
            .map_err(|refusal| anyhow::anyhow!("COMMIT: {refusal}\nnothing was imported"))?;
        Ok(())
    }

    /// Sends some statements; on a refusal, which of them (0-based within the range) failed.
    fn send(&mut self, range: std::ops::Range<usize>) -> Result<Result<(), (usize, Refusal)>> {
        let batch: Vec<Value> = self.statements[range.clone()].to_vec();
        match self.session.run(batch)? {
            Ok(_) => Ok(Ok(())),
            Err(refusal) => match refusal.statement {
                Some(index) if index >= 1 && index <= range.len() => Ok(Err((index - 1, refusal))),
                _ => bail!("{refusal}\nnothing was imported"),
            },
        }
    }

    /// Begins the transaction again and sends the rows found good so far; a row refused now
    /// is left out too, and the replay starts over.
    fn replay(&mut self, limit: usize) -> Result<()> {
        loop {
            if self.refused.len() > limit {
                bail!(
                    "the database refused more than {limit} rows; nothing was imported (is it the right table?)"
                );
            }
            self.begin()?;
            let mut failed = None;
            for chunk in self.committed.chunks(REPLAY_ROWS) {
                let batch: Vec<Value> = chunk
                    .iter()
                    .map(|index| self.statements[*index].clone())
                    .collect();
                if let Err(refusal) = self.session.run(batch)? {
                    let offset = refusal
                        .statement
                        .and_then(|index| index.checked_sub(1))
                        .filter(|offset| *offset < chunk.len() && is_row_refusal(&refusal));
                    match offset {
                        Some(offset) => failed = Some((chunk[offset], refusal)),
                        None => bail!("{refusal}\nnothing was imported"),
                    }
                    break;
                }
            }
            match failed {
                None => return Ok(()),
                Some((index, refusal)) => {
                    self.committed.retain(|done| *done != index);
                    self.refused.push(Bad {
                        line: self.lines[index],
                        reason: refusal.to_string(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_with_their_lines_and_bad_ones_named() {
        let text = "name,note\n\"佐藤, 花子\",\"複数\n行\"\nonly-one\n鈴木,\n";
        let parsed = parse("t.csv", text.as_bytes()).unwrap();
        assert_eq!(parsed.header, vec!["name", "note"]);
        let rows: Vec<(usize, Vec<String>)> = parsed
            .rows
            .iter()
            .map(|row| (row.line, row.fields.clone()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (2, vec!["佐藤, 花子".to_owned(), "複数\n行".to_owned()]),
                (5, vec!["鈴木".to_owned(), String::new()]),
            ]
        );
        assert_eq!(parsed.bad.len(), 1);
        assert_eq!(parsed.bad[0].line, 4);
        assert!(
            parsed.bad[0].reason.contains("1 field"),
            "{}",
            parsed.bad[0].reason
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_name_and_bad_bytes_are_named() {
        let parsed = parse("t.csv", b"\xEF\xBB\xBFa,b\n1,\xFF\n").unwrap();
        assert_eq!(parsed.header, vec!["a", "b"]);
        assert_eq!(parsed.bad.len(), 1);
        assert_eq!(parsed.bad[0].line, 2);
        assert!(parse("t.csv", b"a,a\n").is_err());
        assert!(parse("t.csv", b"").is_err());
    }

    #[test]
    fn columns_map_to_the_table_and_system_columns_are_handled() {
        let shape = Shape {
            columns: vec!["name".into(), "note".into()],
            has_rowid: true,
            id_column: None,
        };
        let header = ["recordId", "modId", "NAME"].map(String::from);
        let (found, notes) = destinations(&header, &shape, "t", false).unwrap();
        assert_eq!(
            found,
            vec![
                Destination::RecordId,
                Destination::Ignored,
                Destination::Column("name".into())
            ]
        );
        assert_eq!(notes.len(), 1);
        let (found, _) = destinations(&header, &shape, "t", true).unwrap();
        assert_eq!(found[0], Destination::Ignored);
        let error = destinations(&["phone".into()], &shape, "t", false).unwrap_err();
        assert!(error.to_string().contains("`phone`"), "{error}");
    }

    #[test]
    fn an_insert_leaves_empty_fields_to_their_defaults() {
        let destinations = vec![
            Destination::RecordId,
            Destination::Column("name".into()),
            Destination::Column("note".into()),
        ];
        let row = Row {
            line: 2,
            fields: vec!["7".into(), "佐藤".into(), String::new()],
        };
        assert_eq!(
            insert("t", &destinations, &row).unwrap(),
            statement(
                "INSERT INTO \"t\" (ROWID, \"name\") VALUES (?, ?)",
                vec![Value::from(7), Value::from("佐藤")]
            )
        );
        let empty = Row {
            line: 3,
            fields: vec![String::new(), String::new(), String::new()],
        };
        assert_eq!(
            insert("t", &destinations, &empty).unwrap(),
            statement("INSERT INTO \"t\" DEFAULT VALUES", Vec::new())
        );
        let wrong = Row {
            line: 4,
            fields: vec!["x".into(), String::new(), String::new()],
        };
        assert!(insert("t", &destinations, &wrong).is_err());
    }
}
