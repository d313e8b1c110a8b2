//! `genkan sql`: an interactive prompt, or a script run as one transaction.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::SqlArgs;
use super::client::{Answer, Outcome, Refusal, Session, statement};
use super::split::{self, Piece};
use super::table;

/// Statements sent in one call of a script (the server takes up to 100,000).
const CALL_STATEMENTS: usize = 5_000;
/// Bytes of SQL sent in one call (the server reads up to 64 MiB).
const CALL_BYTES: usize = 16 * 1024 * 1024;

/// Runs `genkan sql`.
pub(super) fn run(args: &SqlArgs) -> Result<()> {
    let script = match args.file.as_deref() {
        Some(path) if path != Path::new("-") => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some((path.display().to_string(), bytes))
        }
        Some(_) => Some(("standard input".to_owned(), read_stdin()?)),
        None if std::io::stdin().is_terminal() => None,
        None => Some(("standard input".to_owned(), read_stdin()?)),
    };
    match script {
        None => interactive(args),
        Some((name, bytes)) => {
            let text = String::from_utf8(bytes).map_err(|error| {
                let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
                let line = valid.iter().filter(|byte| **byte == b'\n').count() + 1;
                anyhow::anyhow!("{name}: line {line}: not UTF-8 text")
            })?;
            let pieces = split::script(&text);
            if pieces.is_empty() {
                bail!("{name}: no SQL statements in it");
            }
            let mut session = Session::open(&args.server)?;
            run_script(&mut session, &name, &pieces)
        }
    }
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read standard input")?;
    Ok(bytes)
}

/// `BEGIN`, `COMMIT`, `END` or `ROLLBACK`: the script manages its transactions itself.
fn is_transaction_control(sql: &str) -> bool {
    let first: String = sql
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    ["BEGIN", "COMMIT", "END", "ROLLBACK"]
        .iter()
        .any(|word| first.eq_ignore_ascii_case(word))
}

/// Runs a script: all of it in one transaction (one call, or `BEGIN`, the calls, `COMMIT`
/// when it is large), unless it has transaction statements of its own, which then run as written.
#[allow(clippy::print_stdout)]
fn run_script(session: &mut Session, name: &str, pieces: &[Piece]) -> Result<()> {
    let own_transactions = pieces
        .iter()
        .any(|piece| is_transaction_control(&piece.sql));
    let mut calls: Vec<&[Piece]> = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, piece) in pieces.iter().enumerate() {
        if index > start
            && (index - start >= CALL_STATEMENTS || bytes + piece.sql.len() > CALL_BYTES)
        {
            calls.push(&pieces[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += piece.sql.len();
    }
    calls.push(&pieces[start..]);
    let wrap = !own_transactions && calls.len() > 1;
    let undone = if own_transactions {
        "the open transaction was rolled back; what the script committed before it stays"
    } else {
        "nothing was changed"
    };
    if wrap {
        expect_ok(session.run(vec![statement("BEGIN", Vec::new())])?, name)?;
    }
    let mut changes = 0;
    let mut out = std::io::stdout().lock();
    for call in calls {
        let statements = call
            .iter()
            .map(|piece| statement(&piece.sql, Vec::new()))
            .collect();
        match session.run(statements)? {
            Ok(answer) => {
                for outcome in &answer.results {
                    changes += outcome.changes;
                    if !outcome.columns.is_empty() {
                        write!(out, "{}", table::render(&outcome.columns, &outcome.rows))?;
                    }
                }
            }
            Err(refusal) => {
                let failed = refusal
                    .statement
                    .and_then(|index| call.get(index.checked_sub(1)?));
                match failed {
                    Some(piece) => bail!(
                        "{name}: line {}: {refusal}\n  in: {}\n{undone}",
                        piece.line,
                        first_line(&piece.sql)
                    ),
                    None => bail!("{name}: {refusal}\n{undone}"),
                }
            }
        }
    }
    if wrap {
        expect_ok(session.run(vec![statement("COMMIT", Vec::new())])?, name)?;
    }
    if session.in_transaction() {
        let _ = session.run(vec![statement("ROLLBACK", Vec::new())])?;
        bail!(
            "{name}: the script ends inside BEGIN without COMMIT; that transaction was rolled back"
        );
    }
    let count = pieces.len();
    writeln!(
        out,
        "{count} statement{} run, {changes} row{} changed",
        if count == 1 { "" } else { "s" },
        if changes == 1 { "" } else { "s" }
    )?;
    session.logout();
    Ok(())
}

fn expect_ok(answer: Result<Answer, Refusal>, name: &str) -> Result<Answer> {
    answer.map_err(|refusal| anyhow::anyhow!("{name}: {refusal}\nnothing was changed"))
}

fn first_line(sql: &str) -> String {
    let mut lines = sql.lines();
    let first = lines.next().unwrap_or("").trim_end();
    if lines.next().is_some() {
        format!("{first} …")
    } else {
        first.to_owned()
    }
}

/// The prompt: statements end with `;` and may span lines; `\q` (or end of input) quits.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn interactive(args: &SqlArgs) -> Result<()> {
    let mut session = Session::open(&args.server)?;
    let database = session.database().to_owned();
    println!("genkan sql: database {database}. Statements end with `;`; \\q quits.");
    let mut stdin = std::io::stdin().lock();
    let mut buffer = String::new();
    loop {
        let prompt = if !buffer.trim().is_empty() {
            "->"
        } else if session.in_transaction() {
            "=*>"
        } else {
            "=>"
        };
        print!("{database}{prompt} ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if stdin
            .read_line(&mut line)
            .context("cannot read the terminal")?
            == 0
        {
            println!();
            break;
        }
        if buffer.trim().is_empty() && matches!(line.trim(), "\\q" | "quit" | "exit") {
            break;
        }
        buffer.push_str(&line);
        let found = split::split(&buffer);
        if found.done.is_empty() {
            if found.rest.is_none() && found.consumed == 0 && !buffer.contains("/*") {
                buffer.clear();
            }
            continue;
        }
        buffer = buffer[found.consumed..].to_owned();
        if buffer.trim().is_empty() {
            buffer.clear();
        }
        let was_in_transaction = session.in_transaction();
        let statements = found
            .done
            .iter()
            .map(|piece| statement(&piece.sql, Vec::new()))
            .collect();
        match session.run(statements) {
            Ok(Ok(answer)) => {
                for (piece, outcome) in found.done.iter().zip(&answer.results) {
                    print!("{}", describe(piece, outcome));
                }
            }
            Ok(Err(refusal)) => {
                let failed = refusal
                    .statement
                    .and_then(|index| found.done.get(index.checked_sub(1)?));
                eprintln!("ERROR {}: {}", refusal.code, refusal.message);
                if let Some(piece) = failed {
                    eprintln!("  in: {}", first_line(&piece.sql));
                }
                if found.done.len() > 1 {
                    eprintln!(
                        "  (none of the {} statements took effect)",
                        found.done.len()
                    );
                }
                if was_in_transaction && !session.in_transaction() {
                    eprintln!("  the open transaction was rolled back");
                }
            }
            Err(error) => eprintln!("ERROR: {error:#}"),
        }
    }
    if session.in_transaction() {
        println!("the open transaction was rolled back (no COMMIT)");
    }
    session.logout();
    Ok(())
}

/// What one statement did, as the prompt shows it.
fn describe(piece: &Piece, outcome: &Outcome) -> String {
    if !outcome.columns.is_empty() {
        return table::render(&outcome.columns, &outcome.rows);
    }
    if is_transaction_control(&piece.sql) {
        let word: String = piece
            .sql
            .trim_start()
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        return format!("{}\n", word.to_ascii_uppercase());
    }
    format!("changes: {}\n", outcome.changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_statements_are_recognised_by_their_first_word() {
        assert!(is_transaction_control("  begin"));
        assert!(is_transaction_control("COMMIT"));
        assert!(is_transaction_control("end transaction"));
        assert!(!is_transaction_control("ENDING"));
        assert!(!is_transaction_control(
            "CREATE TRIGGER t BEGIN SELECT 1; END"
        ));
        assert!(!is_transaction_control("SELECT 1"));
    }

    #[test]
    fn a_statement_is_shown_by_its_first_line() {
        assert_eq!(first_line("SELECT 1"), "SELECT 1");
        assert_eq!(first_line("SELECT\n  2"), "SELECT …");
        let piece = Piece {
            sql: "begin".into(),
            line: 1,
        };
        assert_eq!(describe(&piece, &Outcome::default()), "BEGIN\n");
    }
}
