//! FileMaker find criteria → a SQL condition with parameters.
//!
//! Supported operators (FileMaker Pro's find operators): none (text: every word must begin a
//! word of the field; number: equal), `=` (whole word; alone: empty field), `==` (entire field),
//! `<`, `<=`, `>`, `>=`, `a...b` (range), `*` (any characters; alone: field not empty), `@` (one
//! character), `#` (one digit) and `\` (escape). Text comparisons ignore ASCII case, as
//! FileMaker's default collation does for Latin text.

use std::fmt::Write as _;

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Text: word matching by default.
    Text,
    /// Numbers: numeric comparison; the default criterion means equality.
    Number,
}

/// A parameter bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Text(String),
    /// Number.
    Number(f64),
}

/// A SQL condition and the values for its `?` placeholders, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// SQL text with `?` placeholders.
    pub sql: String,
    /// Values, in placeholder order.
    pub params: Vec<Value>,
}

/// One find request: criteria per field (already resolved to a column by the caller), and
/// whether it omits.
#[derive(Debug, Clone)]
pub struct FindRequest {
    /// `(column, kind, criterion)` triples; the column is a trusted, already-quoted identifier.
    pub criteria: Vec<(String, FieldKind, String)>,
    /// An omit request removes its matches from the found set.
    pub omit: bool,
}

/// Why a find cannot run; maps to FileMaker's codes (400, 508).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    /// No request has a non-empty criterion (FileMaker 400 "Find criteria are empty").
    #[error("find criteria are empty")]
    Empty,
    /// A criterion cannot be understood for its field (FileMaker 508).
    #[error("invalid find criterion `{criterion}` for a {kind:?} field")]
    Invalid {
        /// The criterion as given.
        criterion: String,
        /// The field's kind.
        kind: FieldKind,
    },
}

/// The condition for a whole find: requests processed top to bottom, each ordinary request adding
/// its matches, each omit request removing its matches from what was found so far.
pub fn condition_for(requests: &[FindRequest]) -> Result<Condition, FindError> {
    let mut found: Option<Condition> = None;
    for request in requests {
        let criteria: Vec<_> = request
            .criteria
            .iter()
            .filter(|(_, _, text)| !text.trim().is_empty())
            .collect();
        if criteria.is_empty() {
            continue;
        }
        let mut parts = Vec::new();
        let mut params = Vec::new();
        for (column, kind, text) in criteria {
            let part = criterion(column, *kind, text.trim())?;
            parts.push(part.sql);
            params.extend(part.params);
        }
        let this = Condition {
            sql: format!("({})", parts.join(" AND ")),
            params,
        };
        found = Some(match (found, request.omit) {
            (None, true) => Condition {
                sql: format!("NOT {}", this.sql),
                params: this.params,
            },
            (None, false) => this,
            (Some(so_far), true) => Condition {
                sql: format!("({} AND NOT {})", so_far.sql, this.sql),
                params: so_far.params.into_iter().chain(this.params).collect(),
            },
            (Some(so_far), false) => Condition {
                sql: format!("({} OR {})", so_far.sql, this.sql),
                params: so_far.params.into_iter().chain(this.params).collect(),
            },
        });
    }
    found.ok_or(FindError::Empty)
}

fn invalid(text: &str, kind: FieldKind) -> FindError {
    FindError::Invalid {
        criterion: text.to_owned(),
        kind,
    }
}

fn criterion(column: &str, kind: FieldKind, text: &str) -> Result<Condition, FindError> {
    let single = |sql: String, params: Vec<Value>| Ok(Condition { sql, params });
    if text == "=" {
        return single(format!("({column} IS NULL OR {column} = '')"), vec![]);
    }
    if text == "*" {
        return single(format!("({column} IS NOT NULL AND {column} <> '')"), vec![]);
    }
    if let Some((low, high)) = text.split_once("...") {
        let (low, high) = (value(low.trim(), kind)?, value(high.trim(), kind)?);
        return single(
            format!(
                "({column} >= ? AND {column} <= ?)",
                column = compared(column, kind)
            ),
            vec![low, high],
        );
    }
    for (operator, sql) in [("<=", "<="), (">=", ">="), ("<", "<"), (">", ">")] {
        if let Some(rest) = text.strip_prefix(operator) {
            let operand = value(rest.trim(), kind)?;
            return single(format!("{} {sql} ?", compared(column, kind)), vec![operand]);
        }
    }
    if let Some(rest) = text.strip_prefix("==") {
        return match kind {
            FieldKind::Number => single(format!("{column} = ?"), vec![value(rest, kind)?]),
            FieldKind::Text if has_wildcards(rest) => {
                let mut sql = format!("{column} LIKE ? ESCAPE '\\'");
                let mut params = vec![Value::Text(like_pattern(rest))];
                if let Some(glob) = digit_glob(rest) {
                    sql = format!("({sql} AND lower({column}) GLOB ?)");
                    params.push(Value::Text(glob));
                }
                single(sql, params)
            }
            FieldKind::Text => single(
                format!("lower({column}) = lower(?)"),
                vec![Value::Text(unescape(rest))],
            ),
        };
    }
    if let Some(rest) = text.strip_prefix('=') {
        return match kind {
            FieldKind::Number => single(format!("{column} = ?"), vec![value(rest, kind)?]),
            FieldKind::Text => Ok(words(column, rest, true)),
        };
    }
    match kind {
        FieldKind::Number if has_wildcards(text) => {
            let shown = number_text(column);
            let mut sql = format!("{shown} LIKE ? ESCAPE '\\'");
            let mut params = vec![Value::Text(like_pattern(text))];
            if let Some(glob) = digit_glob(text) {
                sql = format!("({sql} AND {shown} GLOB ?)");
                params.push(Value::Text(glob));
            }
            single(sql, params)
        }
        FieldKind::Number => single(format!("{column} = ?"), vec![value(text, kind)?]),
        FieldKind::Text => Ok(words(column, text, false)),
    }
}

/// A number as FileMaker shows it, for wildcard finds: a whole number without SQLite's `.0`.
fn number_text(column: &str) -> String {
    format!(
        "(CASE WHEN {column} = CAST({column} AS INTEGER) \
         THEN CAST(CAST({column} AS INTEGER) AS TEXT) ELSE CAST({column} AS TEXT) END)"
    )
}

fn compared(column: &str, kind: FieldKind) -> String {
    match kind {
        FieldKind::Text => format!("lower({column})"),
        FieldKind::Number => column.to_owned(),
    }
}

fn value(text: &str, kind: FieldKind) -> Result<Value, FindError> {
    match kind {
        FieldKind::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|number| number.is_finite())
            .map(Value::Number)
            .ok_or_else(|| invalid(text, kind)),
        FieldKind::Text if text.is_empty() => Err(invalid(text, kind)),
        FieldKind::Text => Ok(Value::Text(unescape(text).to_lowercase())),
    }
}

/// Characters that separate words, besides white space: ASCII punctuation FileMaker splits on
/// and the Japanese ones that play the same part (the ideographic space above all, common in
/// names such as 「佐藤　花子」). Hyphen, colon, period and apostrophe stay inside words, as
/// FileMaker keeps them in phone numbers, times and addresses.
const SEPARATORS: &[char] = &[
    '\u{3000}', '\t', '\n', '\r', ',', ';', '(', ')', '[', ']', '{', '}', '/', '"', '!', '?', '&',
    '|', '<', '>', '+', '~', '・', '、', '。', '「', '」', '（', '）', '，', '；',
];

/// The SQL function every store provides for word finds: `genkan_words(x)` is [`fold_words`]
/// of `x` as text, NULL for NULL. In SQL, thirty nested `replace()` calls cost about 3 µs a row;
/// one pass in Rust is a fraction of that, and the rule lives here, once.
pub const WORDS_FUNCTION: &str = "genkan_words";

/// A field's text for word finds: ASCII letters lower-cased (as SQL `lower()` and `LIKE` fold
/// them), every separator turned into a space, and a space at each end, so that "begins a
/// word" is `LIKE '% word%'` and "is a word" `LIKE '% word %'`.
pub fn fold_words(text: &str) -> String {
    let mut folded = String::with_capacity(text.len() + 2);
    folded.push(' ');
    for character in text.chars() {
        if SEPARATORS.contains(&character) {
            folded.push(' ');
        } else {
            folded.push(character.to_ascii_lowercase());
        }
    }
    folded.push(' ');
    folded
}

fn spaced(column: &str) -> String {
    format!("{WORDS_FUNCTION}({column})")
}

/// Every search word must begin a word of the field (`whole`: must be a whole word).
fn words(column: &str, text: &str, whole: bool) -> Condition {
    let field = spaced(column);
    let mut sql = Vec::new();
    let mut params = Vec::new();
    let search_words = text
        .split(|character: char| character.is_whitespace() || SEPARATORS.contains(&character))
        .filter(|word| !word.is_empty());
    for word in search_words {
        // `@` and `#` stand for exactly one character or digit, so a word holding one must match
        // a whole word (FileMaker: `#` finds 5, not 25); a `*` at its end opens it again.
        let whole = whole || has_exact_wildcards(word);
        let pattern = like_pattern(word).to_lowercase();
        // A cheap first test on the raw text (a word's letters appear in it wherever they begin
        // a word of the folded text), so most rows never reach the function.
        sql.push(format!("{column} LIKE ? ESCAPE '\\'"));
        params.push(Value::Text(format!("%{pattern}%")));
        sql.push(format!("{field} LIKE ? ESCAPE '\\'"));
        params.push(Value::Text(if whole {
            format!("% {pattern} %")
        } else {
            format!("% {pattern}%")
        }));
        if let Some(glob) = digit_glob(word) {
            sql.push(format!("{field} GLOB ?"));
            params.push(Value::Text(if whole {
                format!("* {glob} *")
            } else {
                format!("* {glob}*")
            }));
        }
    }
    if sql.is_empty() {
        // Only separators were given: nothing can begin with them, as in FileMaker.
        sql.push("0".to_owned());
    }
    Condition {
        sql: format!("({})", sql.join(" AND ")),
        params,
    }
}

fn has_exact_wildcards(text: &str) -> bool {
    let mut escaped = false;
    for character in text.chars() {
        match (escaped, character) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '@' | '#') => return true,
            _ => {}
        }
    }
    false
}

fn has_wildcards(text: &str) -> bool {
    let mut escaped = false;
    for character in text.chars() {
        match (escaped, character) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '*' | '@' | '#') => return true,
            _ => {}
        }
    }
    false
}

/// FileMaker's `#` (one digit) as a lower-cased GLOB pattern, when the text has one: LIKE cannot
/// tell digits from other characters, so a `#` criterion is the LIKE (for case and word rules)
/// AND this GLOB. `*` → `*`, `@` → `?`, `#` → `[0-9]`; GLOB's own `*`, `?` and `[` are
/// bracketed to stand for themselves.
fn digit_glob(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut has_digit = false;
    let mut chars = text.chars();
    while let Some(character) = chars.next() {
        match character {
            '\\' => {
                if let Some(next) = chars.next() {
                    push_glob_literal(&mut out, next);
                }
            }
            '*' => out.push('*'),
            '@' => out.push('?'),
            '#' => {
                has_digit = true;
                out.push_str("[0-9]");
            }
            other => push_glob_literal(&mut out, other),
        }
    }
    has_digit.then_some(out)
}

fn push_glob_literal(out: &mut String, character: char) {
    match character {
        '*' | '?' | '[' => {
            out.push('[');
            out.push(character);
            out.push(']');
        }
        other => out.push(other.to_ascii_lowercase()),
    }
}

/// FileMaker wildcards to a LIKE pattern: `*` → `%`, `@` → `_`, `#` → `_` (LIKE cannot tell
/// digits apart; [`digit_glob`] adds that check). LIKE's own `%`, `_` and `\` are escaped.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    let mut chars = text.chars();
    while let Some(character) = chars.next() {
        match character {
            '\\' => {
                if let Some(next) = chars.next() {
                    push_literal(&mut out, next);
                }
            }
            '*' => out.push('%'),
            '@' | '#' => out.push('_'),
            other => push_literal(&mut out, other),
        }
    }
    out
}

fn push_literal(out: &mut String, character: char) {
    if matches!(character, '%' | '_' | '\\') {
        out.push('\\');
    }
    let _ = write!(out, "{character}");
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(character) = chars.next() {
        if character == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(character);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn text(criterion: &str) -> FindRequest {
        FindRequest {
            criteria: vec![("\"name\"".into(), FieldKind::Text, criterion.into())],
            omit: false,
        }
    }

    // `expect![[…]]` is passed by value so that UPDATE_EXPECT can rewrite the literal in place.
    #[allow(clippy::needless_pass_by_value)]
    fn check(requests: &[FindRequest], expected: Expect) {
        let rendered = match condition_for(requests) {
            // The separator-folding expression is long and the same everywhere: name it.
            Ok(condition) => format!(
                "{}\n{:?}",
                condition.sql.replace(&spaced("\"name\""), "words(name)"),
                condition.params
            ),
            Err(error) => format!("error: {error}"),
        };
        expected.assert_eq(&rendered);
    }

    #[test]
    fn folding_lowers_ascii_and_spaces_out_separators() {
        assert_eq!(fold_words("佐藤　花子"), " 佐藤 花子 ");
        assert_eq!(
            fold_words("Ito (Ken), sales/support"),
            " ito  ken   sales support "
        );
        assert_eq!(fold_words("03-1234-5678"), " 03-1234-5678 ");
        // Only ASCII letters fold, as SQL lower() and LIKE fold them.
        assert_eq!(fold_words("ÉCOLE"), " École ");
    }

    #[test]
    fn default_text_search_matches_word_beginnings() {
        check(
            &[text("suzu tar")],
            expect![[r#"
                (("name" LIKE ? ESCAPE '\' AND words(name) LIKE ? ESCAPE '\' AND "name" LIKE ? ESCAPE '\' AND words(name) LIKE ? ESCAPE '\'))
                [Text("%suzu%"), Text("% suzu%"), Text("%tar%"), Text("% tar%")]"#]],
        );
    }

    #[test]
    fn exact_empty_wildcards_and_ranges() {
        check(
            &[text("==Suzuki Taro")],
            expect![[r#"
            (lower("name") = lower(?))
            [Text("Suzuki Taro")]"#]],
        );
        check(
            &[text("=")],
            expect![[r#"
            (("name" IS NULL OR "name" = ''))
            []"#]],
        );
        check(
            &[text("*")],
            expect![[r#"
            (("name" IS NOT NULL AND "name" <> ''))
            []"#]],
        );
        check(
            &[text("==S*ki 100%")],
            expect![[r#"
            ("name" LIKE ? ESCAPE '\')
            [Text("S%ki 100\\%")]"#]],
        );
        check(
            &[text("a...m")],
            expect![[r#"
            ((lower("name") >= ? AND lower("name") <= ?))
            [Text("a"), Text("m")]"#]],
        );
        let price = |criterion: &str| FindRequest {
            criteria: vec![("\"price\"".into(), FieldKind::Number, criterion.into())],
            omit: false,
        };
        check(
            &[price(">=1000")],
            expect![[r#"
            ("price" >= ?)
            [Number(1000.0)]"#]],
        );
        check(
            &[price("10...20")],
            expect![[r#"
            (("price" >= ? AND "price" <= ?))
            [Number(10.0), Number(20.0)]"#]],
        );
        check(
            &[price("ten")],
            expect!["error: invalid find criterion `ten` for a Number field"],
        );
    }

    #[test]
    fn requests_or_and_omits_subtract_in_order() {
        let omit_tokyo = FindRequest {
            criteria: vec![("\"city\"".into(), FieldKind::Text, "==Tokyo".into())],
            omit: true,
        };
        check(
            &[text("==A"), text("==B"), omit_tokyo],
            expect![[r#"
                (((lower("name") = lower(?)) OR (lower("name") = lower(?))) AND NOT (lower("city") = lower(?)))
                [Text("A"), Text("B"), Text("Tokyo")]"#]],
        );
        check(
            &[text(""), text("  ")],
            expect!["error: find criteria are empty"],
        );
    }

    #[test]
    fn hostile_criteria_stay_parameters() {
        check(
            &[text("==x' OR '1'='1")],
            expect![[r#"
            (lower("name") = lower(?))
            [Text("x' OR '1'='1")]"#]],
        );
        check(
            &[text("\\*literal\\_")],
            expect![[r#"
                (("name" LIKE ? ESCAPE '\' AND words(name) LIKE ? ESCAPE '\'))
                [Text("%*literal\\_%"), Text("% *literal\\_%")]"#]],
        );
    }
}
