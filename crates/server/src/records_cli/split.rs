//! Splitting SQL text into statements at the `;` that end them, with the line each starts on.
//!
//! A `;` ends a statement only outside string literals (`'…'`), quoted names (`"…"`, `` `…` ``,
//! `[…]`), comments (`-- …`, `/* … */`) and the `BEGIN … END` body of `CREATE TRIGGER`, whose
//! inner statements end with `;` too. The server reads each statement again with a real SQL
//! parser; this only has to find the boundaries, as SQLite's own `sqlite3_complete` does.

/// One statement of a script, without its closing `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Piece {
    /// The statement's text, from its first token to its last.
    pub(super) sql: String,
    /// The 1-based line of the script its first token is on.
    pub(super) line: usize,
}

/// Where the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Quoted(char),
    LineComment,
    BlockComment,
}

/// What the scanner knows of the statement it is in.
#[derive(Debug, Default)]
struct Current {
    /// Byte offset and line of the first token, once there is one.
    start: Option<(usize, usize)>,
    /// Byte offset just after the last token.
    end: usize,
    /// The first words, upper-cased (enough to recognise `CREATE [TEMP] TRIGGER`).
    leading: Vec<String>,
    /// In a trigger: whether its body has begun, and how deep in `CASE … END` it is.
    body: bool,
    case_depth: usize,
}

impl Current {
    fn is_trigger(&self) -> bool {
        match self.leading.as_slice() {
            [create, trigger, ..] if create == "CREATE" && trigger == "TRIGGER" => true,
            [create, temp, trigger, ..] => {
                create == "CREATE"
                    && (temp == "TEMP" || temp == "TEMPORARY")
                    && trigger == "TRIGGER"
            }
            _ => false,
        }
    }

    fn word(&mut self, word: &str) {
        let upper = word.to_ascii_uppercase();
        if self.leading.len() < 3 {
            self.leading.push(upper.clone());
        }
        if !self.is_trigger() {
            return;
        }
        match upper.as_str() {
            "BEGIN" if !self.body => self.body = true,
            "CASE" if self.body => self.case_depth += 1,
            "END" if self.body && self.case_depth > 0 => self.case_depth -= 1,
            "END" if self.body => self.body = false,
            _ => {}
        }
    }

    /// Whether a `;` here ends the statement (not inside a trigger's body).
    fn ends_at_semicolon(&self) -> bool {
        !(self.is_trigger() && self.body)
    }
}

/// What [`split`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Split {
    /// The statements ended by a `;`.
    pub(super) done: Vec<Piece>,
    /// What follows the last of them: the start of a statement still being typed, or the last
    /// statement of a script without a closing `;`; `None` when only blanks and comments follow.
    pub(super) rest: Option<Piece>,
    /// Bytes of the text up to and including the last ending `;`.
    pub(super) consumed: usize,
}

/// Statements of `text`.
pub(super) fn split(text: &str) -> Split {
    let mut pieces = Vec::new();
    let mut consumed = 0;
    let mut state = State::Code;
    let mut current = Current::default();
    let mut line = 1;
    let mut word_start: Option<usize> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, ch)) = chars.next() {
        let is_word_char = ch.is_alphanumeric() || ch == '_' || ch == '$';
        if state == State::Code
            && let Some(start) = word_start.filter(|_| !is_word_char)
        {
            current.word(&text[start..at]);
            word_start = None;
        }
        match state {
            State::Code => match ch {
                '-' if chars.peek().is_some_and(|(_, next)| *next == '-') => {
                    state = State::LineComment;
                }
                '/' if chars.peek().is_some_and(|(_, next)| *next == '*') => {
                    chars.next();
                    state = State::BlockComment;
                }
                ';' if current.ends_at_semicolon() => {
                    if let Some((start, start_line)) = current.start {
                        pieces.push(Piece {
                            sql: text[start..current.end].to_owned(),
                            line: start_line,
                        });
                    }
                    current = Current::default();
                    consumed = at + 1;
                }
                _ if ch.is_whitespace() => {}
                _ => {
                    if current.start.is_none() {
                        current.start = Some((at, line));
                    }
                    current.end = at + ch.len_utf8();
                    match ch {
                        '\'' | '"' | '`' => state = State::Quoted(ch),
                        '[' => state = State::Quoted(']'),
                        _ if is_word_char && word_start.is_none() => word_start = Some(at),
                        _ => {}
                    }
                }
            },
            State::Quoted(close) => {
                current.end = at + ch.len_utf8();
                // A doubled quote inside a literal is the quote itself, not the end.
                if ch == close {
                    if close != ']' && chars.peek().is_some_and(|(_, next)| *next == close) {
                        let (next_at, next) = chars.next().unwrap_or((at, ch));
                        current.end = next_at + next.len_utf8();
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::LineComment => {
                if ch == '\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if ch == '*' && chars.peek().is_some_and(|(_, next)| *next == '/') {
                    chars.next();
                    state = State::Code;
                }
            }
        }
        if ch == '\n' {
            line += 1;
        }
    }
    if let Some(start) = word_start {
        current.word(&text[start..]);
    }
    let rest = match current.start {
        Some((start, start_line)) => {
            let end = if matches!(state, State::Quoted(_)) {
                text.len()
            } else {
                current.end
            };
            Some(Piece {
                sql: text[start..end].to_owned(),
                line: start_line,
            })
        }
        None => None,
    };
    Split {
        done: pieces,
        rest,
        consumed,
    }
}

/// Every statement of a script, the last one with or without its `;`.
pub(super) fn script(text: &str) -> Vec<Piece> {
    let Split { mut done, rest, .. } = split(text);
    done.extend(rest);
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<(String, usize)> {
        script(text)
            .into_iter()
            .map(|piece| (piece.sql, piece.line))
            .collect()
    }

    #[test]
    fn semicolons_in_literals_names_and_comments_do_not_end_statements() {
        let text = "INSERT INTO t VALUES ('a;b', 'it''s; fine');\n\
                    -- a comment; with a semicolon\n\
                    SELECT \"odd;name\", [x;y], `z;w` FROM t /* ; */ WHERE a = ';';\n\
                    \n  UPDATE t SET a = 'x\ny;z'\n";
        assert_eq!(
            texts(text),
            vec![
                ("INSERT INTO t VALUES ('a;b', 'it''s; fine')".to_owned(), 1),
                (
                    "SELECT \"odd;name\", [x;y], `z;w` FROM t /* ; */ WHERE a = ';'".to_owned(),
                    3
                ),
                ("UPDATE t SET a = 'x\ny;z'".to_owned(), 5),
            ]
        );
    }

    #[test]
    fn empty_statements_and_comment_only_pieces_are_dropped() {
        assert_eq!(texts(";;\n-- only a comment\n;/* c */;"), Vec::new());
        assert_eq!(
            texts("-- first\nSELECT 1;;\n\nSELECT 2"),
            vec![("SELECT 1".to_owned(), 2), ("SELECT 2".to_owned(), 4)]
        );
    }

    #[test]
    fn a_trigger_body_keeps_its_inner_semicolons() {
        let text = "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN\n\
                    UPDATE t SET a = CASE WHEN 1 THEN 'x' ELSE 'y' END;\n\
                    DELETE FROM u;\nEND;\nSELECT 1;";
        let pieces = script(text);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!(pieces[0].sql.ends_with("END"), "{:?}", pieces[0].sql);
        assert_eq!(
            pieces[1],
            Piece {
                sql: "SELECT 1".into(),
                line: 5
            }
        );
    }

    #[test]
    fn the_unfinished_rest_is_returned_for_more_input() {
        let found = split("SELECT 1; SELECT\n  2");
        assert_eq!(
            found.done,
            vec![Piece {
                sql: "SELECT 1".into(),
                line: 1
            }]
        );
        assert_eq!(
            found.rest,
            Some(Piece {
                sql: "SELECT\n  2".into(),
                line: 1
            })
        );
        assert_eq!(found.consumed, "SELECT 1;".len());
        let found = split("SELECT 'open;");
        assert!(found.done.is_empty());
        assert_eq!(
            found.rest.map(|piece| piece.sql),
            Some("SELECT 'open;".into())
        );
        let found = split("SELECT 1 /* still;");
        assert!(found.done.is_empty());
        assert_eq!(found.consumed, 0);
        let found = split("SELECT 1; -- trailing comment");
        assert_eq!(found.rest, None);
    }

    #[test]
    fn japanese_text_keeps_its_lines_and_bytes() {
        assert_eq!(
            texts("INSERT INTO 顧客 (名前) VALUES ('佐藤;花子');\nSELECT 名前 FROM 顧客;"),
            vec![
                ("INSERT INTO 顧客 (名前) VALUES ('佐藤;花子')".to_owned(), 1),
                ("SELECT 名前 FROM 顧客".to_owned(), 2),
            ]
        );
    }
}
