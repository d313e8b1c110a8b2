//! What an SQL statement asks for, read with a real SQL tokenizer and parser (sqlparser's SQLite
//! dialect), and the few places genkan adjusts it before SQLite runs it.
//!
//! SQLite itself decides what the statement means and whether it is allowed (the authorizer);
//! this module only recognises what SQLite lacks or what genkan must add:
//! - `BEGIN` / `COMMIT` / `ROLLBACK`: the SQL session's transaction;
//! - `SELECT … FOR UPDATE [NOWAIT]`: leases on the selected rows (SQLite has no row locks);
//! - `TRUNCATE [TABLE] t`: SQLite's `DELETE FROM t`, all or nothing under leases;
//! - `UPDATE … SET …`: `ROWMODID = ROWMODID + 1` is added as the first assignment so the
//!   modification count grows in the same pass instead of in a second, trigger-driven one.
//!
//! Edits are made at token positions, so the rest of the statement reaches SQLite exactly as
//! written; text inside string literals and comments is never mistaken for keywords.

use sqlparser::ast::{SetExpr, Statement, TableFactor};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// What to do with one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Start the session's transaction.
    Begin,
    /// Commit it.
    Commit,
    /// Roll it back.
    Rollback,
    /// A query whose rows are leased to the session first.
    ForUpdate {
        /// The query without its `FOR UPDATE` clause.
        sql: String,
        /// A query for the `ROWID`s of the same rows.
        rowids_sql: String,
        /// How many leading parameters belong to the select list (not passed to `rowids_sql`).
        skip_params: usize,
        /// The table whose rows are leased.
        table: String,
    },
    /// Run as given (possibly rewritten); SQLite and the authorizer judge it.
    Run {
        /// The SQL to run.
        sql: String,
        /// Whether it is a query (returns rows).
        query: bool,
    },
}

/// Why a statement cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Empty statement.
    #[error("the statement is empty")]
    Empty,
    /// More than one statement in one item.
    #[error("one statement per item: found more after the first `;`")]
    Several,
    /// A construct genkan refuses.
    #[error("{0}")]
    Refused(String),
}

fn keyword(token: &Token) -> Option<Keyword> {
    match token {
        Token::Word(word) if word.quote_style.is_none() => Some(word.keyword),
        _ => None,
    }
}

/// Tokens that matter, with byte offsets into the text.
struct Tokens {
    items: Vec<(Token, usize, usize)>,
}

impl Tokens {
    fn read(sql: &str) -> Result<Self, PlanError> {
        let dialect = SQLiteDialect {};
        let tokens: Vec<TokenWithSpan> = Tokenizer::new(&dialect, sql)
            .tokenize_with_location()
            .map_err(|error| PlanError::Refused(format!("cannot read the statement: {error}")))?;
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(sql.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        let offset = |line: u64, column: u64| -> usize {
            let start = line_starts
                .get(usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX))
                .copied()
                .unwrap_or(sql.len());
            let skip = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
            sql[start..]
                .char_indices()
                .nth(skip)
                .map_or(sql.len(), |(at, _)| start + at)
        };
        let items = tokens
            .into_iter()
            .filter(|token| !matches!(token.token, Token::Whitespace(_) | Token::EOF))
            .map(|token| {
                let start = offset(token.span.start.line, token.span.start.column);
                let end = offset(token.span.end.line, token.span.end.column);
                (token.token, start, end)
            })
            .collect();
        Ok(Self { items })
    }

    /// Tokens at parenthesis depth 0, with their index.
    fn top_level(&self) -> Vec<usize> {
        let mut depth = 0i32;
        let mut top = Vec::new();
        for (index, (token, _, _)) in self.items.iter().enumerate() {
            match token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                _ if depth == 0 => top.push(index),
                _ => {}
            }
        }
        top
    }
}

/// Plans one statement.
pub fn plan(sql: &str) -> Result<Plan, PlanError> {
    let tokens = Tokens::read(sql)?;
    let mut items = tokens.items.as_slice();
    while let Some(((Token::SemiColon, _, _), rest)) = items.split_last() {
        items = rest;
    }
    if items.is_empty() {
        return Err(PlanError::Empty);
    }
    if items.iter().any(|(token, _, _)| *token == Token::SemiColon) {
        return Err(PlanError::Several);
    }
    let end = items.last().map_or(sql.len(), |item| item.2);
    let text = &sql[..end];
    let first = keyword(&items[0].0);
    match first {
        Some(Keyword::BEGIN) => return Ok(Plan::Begin),
        Some(Keyword::COMMIT | Keyword::END) => return Ok(Plan::Commit),
        Some(Keyword::ROLLBACK)
            if items.len() == 1 || keyword(&items[1].0) == Some(Keyword::TRANSACTION) =>
        {
            return Ok(Plan::Rollback);
        }
        Some(Keyword::VACUUM) => {
            return Err(PlanError::Refused(
                "VACUUM is refused: it may renumber records (recordId) of tables without an INTEGER PRIMARY KEY".into(),
            ));
        }
        Some(Keyword::TRUNCATE) => return truncate(text, items),
        _ => {}
    }
    let top = Tokens {
        items: items.to_vec(),
    }
    .top_level();
    let last_top: Vec<Option<Keyword>> = top
        .iter()
        .rev()
        .take(4)
        .map(|&i| keyword(&items[i].0))
        .collect();
    let for_update_at = match last_top.as_slice() {
        [Some(Keyword::UPDATE), Some(Keyword::FOR), ..] => Some(top[top.len() - 2]),
        [
            Some(Keyword::NOWAIT),
            Some(Keyword::UPDATE),
            Some(Keyword::FOR),
            ..,
        ] => Some(top[top.len() - 3]),
        _ => None,
    };
    if let Some(at) = for_update_at {
        return for_update(sql, items, at);
    }
    let query = matches!(
        first,
        Some(Keyword::SELECT | Keyword::WITH | Keyword::VALUES)
    ) && !writes_after_with(items);
    if is_update(items) {
        return update(text, items);
    }
    Ok(Plan::Run {
        sql: text.to_owned(),
        query,
    })
}

fn writes_after_with(items: &[(Token, usize, usize)]) -> bool {
    let top = Tokens {
        items: items.to_vec(),
    }
    .top_level();
    top.iter().any(|&i| {
        matches!(
            keyword(&items[i].0),
            Some(Keyword::UPDATE | Keyword::DELETE | Keyword::INSERT | Keyword::REPLACE)
        )
    })
}

fn is_update(items: &[(Token, usize, usize)]) -> bool {
    let top = Tokens {
        items: items.to_vec(),
    }
    .top_level();
    let first = keyword(&items[0].0);
    first == Some(Keyword::UPDATE)
        || (first == Some(Keyword::WITH)
            && top
                .iter()
                .any(|&i| keyword(&items[i].0) == Some(Keyword::UPDATE)))
}

fn truncate(text: &str, items: &[(Token, usize, usize)]) -> Result<Plan, PlanError> {
    let rest = match items.get(1).and_then(|item| keyword(&item.0)) {
        Some(Keyword::TABLE) => &items[2..],
        _ => &items[1..],
    };
    let Some(((_, start, _), _)) = rest.split_first() else {
        return Err(PlanError::Refused("TRUNCATE needs a table name".into()));
    };
    if rest.iter().any(|(token, _, _)| *token == Token::Comma) {
        return Err(PlanError::Refused("TRUNCATE one table at a time".into()));
    }
    Ok(Plan::Run {
        sql: format!("DELETE FROM {}", &text[*start..]),
        query: false,
    })
}

fn update(text: &str, items: &[(Token, usize, usize)]) -> Result<Plan, PlanError> {
    let parsed = Parser::parse_sql(&SQLiteDialect {}, text);
    if let Ok(statements) = &parsed
        && let Some(Statement::Update(update)) = statements.first()
    {
        let touches_modid = update.assignments.iter().any(|assignment| {
            assignment
                .target
                .to_string()
                .eq_ignore_ascii_case("ROWMODID")
        });
        if touches_modid {
            return Err(PlanError::Refused(
                "ROWMODID is kept by genkan: it grows by one with every change".into(),
            ));
        }
    }
    let top = Tokens {
        items: items.to_vec(),
    }
    .top_level();
    let Some(&set) = top
        .iter()
        .find(|&&i| keyword(&items[i].0) == Some(Keyword::SET))
    else {
        // Not an UPDATE genkan can read: SQLite will say what is wrong with it.
        return Ok(Plan::Run {
            sql: text.to_owned(),
            query: false,
        });
    };
    let at = items[set].2;
    Ok(Plan::Run {
        sql: format!("{} ROWMODID = ROWMODID + 1,{}", &text[..at], &text[at..]),
        query: false,
    })
}

fn for_update(sql: &str, items: &[(Token, usize, usize)], at: usize) -> Result<Plan, PlanError> {
    let select_sql = sql[..items[at].1].trim_end().to_owned();
    let statements = Parser::parse_sql(&SQLiteDialect {}, &select_sql).map_err(|error| {
        PlanError::Refused(format!("FOR UPDATE: cannot read the query: {error}"))
    })?;
    let [Statement::Query(query)] = statements.as_slice() else {
        return Err(PlanError::Refused("FOR UPDATE follows a SELECT".into()));
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(PlanError::Refused(
            "FOR UPDATE needs a plain SELECT (no UNION)".into(),
        ));
    };
    let [from] = select.from.as_slice() else {
        return Err(PlanError::Refused(
            "FOR UPDATE needs exactly one table in FROM".into(),
        ));
    };
    if !from.joins.is_empty() {
        return Err(PlanError::Refused(
            "FOR UPDATE cannot lock rows of a join".into(),
        ));
    }
    let TableFactor::Table { name, alias, .. } = &from.relation else {
        return Err(PlanError::Refused(
            "FOR UPDATE needs a table, not a subquery".into(),
        ));
    };
    let table = name
        .0
        .last()
        .map(|part| part.to_string())
        .unwrap_or_default();
    let table = table
        .trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']')
        .to_owned();
    let qualifier = alias
        .as_ref()
        .map_or_else(|| name.to_string(), |alias| alias.name.to_string());
    let sub = &items[..at];
    let top = Tokens {
        items: sub.to_vec(),
    }
    .top_level();
    let Some(&from_at) = top
        .iter()
        .find(|&&i| keyword(&sub[i].0) == Some(Keyword::FROM))
    else {
        return Err(PlanError::Refused("FOR UPDATE needs FROM".into()));
    };
    let mut skip_params = 0;
    for (token, _, _) in &sub[..from_at] {
        if let Token::Placeholder(text) = token {
            if text != "?" {
                return Err(PlanError::Refused(
                    "FOR UPDATE takes `?` parameters only".into(),
                ));
            }
            skip_params += 1;
        }
    }
    if sub
        .iter()
        .any(|(token, _, _)| matches!(token, Token::Placeholder(text) if text != "?"))
    {
        return Err(PlanError::Refused(
            "FOR UPDATE takes `?` parameters only".into(),
        ));
    }
    let rowids_sql = format!("SELECT {qualifier}.ROWID {}", &select_sql[sub[from_at].1..]);
    Ok(Plan::ForUpdate {
        sql: select_sql,
        rowids_sql,
        skip_params,
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sql: &str) -> String {
        match plan(sql).unwrap() {
            Plan::Run { sql, .. } => sql,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn update_gains_the_modid_bump_at_the_set_keyword_only() {
        assert_eq!(
            run("UPDATE product SET price = price * 1.1 WHERE note = 'SET x'"),
            "UPDATE product SET ROWMODID = ROWMODID + 1, price = price * 1.1 WHERE note = 'SET x'"
        );
        assert_eq!(
            run("update t set a = (select b from u set_x) -- set\n;"),
            "update t set ROWMODID = ROWMODID + 1, a = (select b from u set_x)"
        );
        assert!(matches!(
            plan("UPDATE t SET ROWMODID = 0"),
            Err(PlanError::Refused(_))
        ));
    }

    #[test]
    fn truncate_becomes_delete() {
        assert_eq!(run("TRUNCATE TABLE \"order\";"), "DELETE FROM \"order\"");
        assert_eq!(run("truncate t"), "DELETE FROM t");
        assert!(plan("TRUNCATE TABLE a, b").is_err());
    }

    #[test]
    fn for_update_yields_the_rowid_query_and_the_table() {
        let Plan::ForUpdate { sql, rowids_sql, skip_params, table } =
            plan("SELECT name, ? FROM customers c WHERE phone LIKE ? ORDER BY name LIMIT 5 FOR UPDATE NOWAIT").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            sql,
            "SELECT name, ? FROM customers c WHERE phone LIKE ? ORDER BY name LIMIT 5"
        );
        assert_eq!(
            rowids_sql,
            "SELECT c.ROWID FROM customers c WHERE phone LIKE ? ORDER BY name LIMIT 5"
        );
        assert_eq!((skip_params, table.as_str()), (1, "customers"));
        assert!(plan("SELECT * FROM a JOIN b ON a.x = b.x FOR UPDATE").is_err());
        assert!(matches!(
            plan("SELECT 'FOR UPDATE' FROM t").unwrap(),
            Plan::Run { query: true, .. }
        ));
    }

    #[test]
    fn transactions_and_refusals() {
        assert_eq!(plan("begin;").unwrap(), Plan::Begin);
        assert_eq!(plan("COMMIT").unwrap(), Plan::Commit);
        assert_eq!(plan("ROLLBACK").unwrap(), Plan::Rollback);
        assert_eq!(plan(" ;"), Err(PlanError::Empty));
        assert_eq!(plan("SELECT 1; DELETE FROM t"), Err(PlanError::Several));
        assert!(plan("VACUUM").is_err());
        assert!(matches!(
            plan("WITH x AS (SELECT 1) DELETE FROM t").unwrap(),
            Plan::Run { query: false, .. }
        ));
    }
}
