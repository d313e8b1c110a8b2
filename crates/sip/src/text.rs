//! Lexical pieces of RFC 3261's grammar (§25.1) shared by the header, URI and SDP code:
//! tokens, quoted strings, %-escapes, comma-separated lists and `;name=value` parameters.

use crate::Error;

/// RFC 3261 `token` characters.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '.' | '!' | '%' | '*' | '_' | '+' | '`' | '\'' | '~'
        )
}

pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_token_char)
}

/// RFC 3261 `unreserved`: what a URI never needs to escape.
pub(crate) fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '!' | '~' | '*' | '\'' | '(' | ')')
}

/// Linear white space after unfolding: space or tab.
pub(crate) fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// ASCII control characters other than tab are never legal in a header value (not even
/// as a quoted-pair: a NUL has no business in a SIP header, whatever the grammar allows).
pub(crate) fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_control() && c != '\t')
}

/// Checks that every `%` in `text` starts a two-digit hex escape.
pub(crate) fn check_escapes(text: &str, field: &'static str) -> Result<(), Error> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let pair = bytes
                .get(at + 1..at + 3)
                .ok_or(Error::BadEscape { field })?;
            if !pair.iter().all(u8::is_ascii_hexdigit) {
                return Err(Error::BadEscape { field });
            }
            at += 3;
        } else {
            at += 1;
        }
    }
    Ok(())
}

/// Decodes %-escapes. The result must be UTF-8, because the user part of a URI is what the
/// contact center routes on and compares with its own text.
pub(crate) fn unescape(text: &str, field: &'static str) -> Result<String, Error> {
    check_escapes(text, field)?;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let high = hex_value(bytes[at + 1]);
            let low = hex_value(bytes[at + 2]);
            out.push(high << 4 | low);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::BadEscape { field })
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        // check_escapes has already refused anything else.
        _ => 0,
    }
}

/// %-escapes every character for which `keep` is false (UTF-8 byte by byte).
pub(crate) fn escape(text: &str, keep: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if keep(c) {
            out.push(c);
        } else {
            let mut buffer = [0; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

/// Reads a quoted string at the start of `text` (which must begin with `"`), returning
/// its unescaped content and the rest after the closing quote.
pub(crate) fn quoted<'a>(text: &'a str, field: &'static str) -> Result<(String, &'a str), Error> {
    let mut chars = text.char_indices();
    if chars.next().map(|(_, c)| c) != Some('"') {
        return Err(Error::Malformed {
            field,
            detail: "expected a quoted string",
        });
    }
    let mut out = String::new();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &text[at + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) if escaped.is_ascii() && escaped != '\r' && escaped != '\n' => {
                    out.push(escaped);
                }
                _ => return Err(Error::BadEscape { field }),
            },
            c if c.is_ascii_control() && c != '\t' => {
                return Err(Error::Malformed {
                    field,
                    detail: "control character in a quoted string",
                });
            }
            c => out.push(c),
        }
    }
    Err(Error::Malformed {
        field,
        detail: "unterminated quoted string",
    })
}

/// Writes `text` as a quoted string. ASCII control characters other than tab cannot be
/// carried (the parser refuses them, see [`has_control`]), so they become spaces.
pub(crate) fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Splits a header value at commas outside quoted strings and angle brackets, the way
/// RFC 3261 §7.3.1 lets several values share one header line.
pub(crate) fn split_list<'a>(value: &'a str, field: &'static str) -> Result<Vec<&'a str>, Error> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut escaped = false;
    for (at, c) in value.char_indices() {
        if in_quotes {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '<' if !in_angle => in_angle = true,
            '>' if in_angle => in_angle = false,
            ',' if !in_angle => {
                parts.push(value[start..at].trim_matches(is_wsp));
                start = at + 1;
            }
            _ => {}
        }
    }
    if in_quotes {
        return Err(Error::Malformed {
            field,
            detail: "unterminated quoted string",
        });
    }
    if in_angle {
        return Err(Error::Malformed {
            field,
            detail: "unclosed angle bracket",
        });
    }
    parts.push(value[start..].trim_matches(is_wsp));
    if parts.iter().any(|part| part.is_empty()) {
        return Err(Error::Malformed {
            field,
            detail: "empty list element",
        });
    }
    Ok(parts)
}

/// A `;name` or `;name=value` parameter of a header, a Via or a URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Param {
    /// The name as received; compare with [`Param::is`], which ignores case.
    pub name: String,
    /// The value, unquoted; `None` for a bare flag such as `lr` or `rport`.
    pub value: Option<String>,
}

impl Param {
    /// A parameter with a value.
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A parameter without a value.
    pub fn flag(name: &str) -> Self {
        Self {
            name: name.into(),
            value: None,
        }
    }

    /// Whether the parameter has this name (case-insensitively, as RFC 3261 compares them).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// Looks a parameter up by name: `Some(None)` for a flag, `Some(Some(v))` for a value.
pub(crate) fn find_param<'a>(params: &'a [Param], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|param| param.is(name))
        .map(|param| param.value.as_deref())
}

/// Sets (or adds) a parameter, keeping its position when it exists.
pub(crate) fn set_param(params: &mut Vec<Param>, name: &str, value: Option<&str>) {
    let value = value.map(str::to_owned);
    match params.iter_mut().find(|param| param.is(name)) {
        Some(param) => param.value = value,
        None => params.push(Param {
            name: name.into(),
            value,
        }),
    }
}

/// Characters a header parameter value may carry without quotes when we print it.
fn is_bare_value_char(c: char) -> bool {
    is_token_char(c) || matches!(c, ':' | '[' | ']')
}

/// Parses `*( SEMI name [EQUAL value] )` from the start of `text` (header parameters,
/// after the main value). Values may be quoted; bare values are anything up to the next
/// separator, which is more than we print bare, so what we print always parses back.
pub(crate) fn header_params(text: &str, field: &'static str) -> Result<Vec<Param>, Error> {
    let mut params = Vec::new();
    let mut rest = text.trim_start_matches(is_wsp);
    while !rest.is_empty() {
        let Some(after) = rest.strip_prefix(';') else {
            return Err(Error::Malformed {
                field,
                detail: "text after the value that is not a parameter",
            });
        };
        let after = after.trim_start_matches(is_wsp);
        let name_end = after
            .find(|c: char| !is_token_char(c))
            .unwrap_or(after.len());
        let name = &after[..name_end];
        if name.is_empty() {
            return Err(Error::Malformed {
                field,
                detail: "empty parameter name",
            });
        }
        let after = after[name_end..].trim_start_matches(is_wsp);
        if let Some(value_text) = after.strip_prefix('=') {
            let value_text = value_text.trim_start_matches(is_wsp);
            let (value, remainder) = if value_text.starts_with('"') {
                quoted(value_text, field)?
            } else {
                let end = value_text
                    .find(|c: char| is_wsp(c) || matches!(c, ';' | ',' | '"' | '<' | '>'))
                    .unwrap_or(value_text.len());
                let value = &value_text[..end];
                if value.is_empty() || value.contains('\\') {
                    return Err(Error::Malformed {
                        field,
                        detail: "bad parameter value",
                    });
                }
                (value.to_owned(), &value_text[end..])
            };
            params.push(Param {
                name: name.into(),
                value: Some(value),
            });
            rest = remainder.trim_start_matches(is_wsp);
        } else {
            params.push(Param::flag(name));
            rest = after;
        }
    }
    Ok(params)
}

/// Prints header parameters, quoting a value unless it is plainly a token or a host.
pub(crate) fn push_header_params(out: &mut String, params: &[Param]) {
    for param in params {
        out.push(';');
        out.push_str(&param.name);
        if let Some(value) = &param.value {
            out.push('=');
            if !value.is_empty() && value.chars().all(is_bare_value_char) {
                out.push_str(value);
            } else {
                push_quoted(out, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_must_be_two_hex_digits_and_decode_to_utf8() {
        assert_eq!(unescape("%61lice%20b", "x").unwrap(), "alice b");
        assert_eq!(unescape("%e3%81%82", "x").unwrap(), "あ");
        for bad in ["%", "%4", "%zz", "a%g1", "%ff"] {
            assert_eq!(
                unescape(bad, "Request-URI"),
                Err(Error::BadEscape {
                    field: "Request-URI"
                }),
                "{bad}"
            );
        }
        assert_eq!(escape("a b;c", |c| is_unreserved(c) || c == ';'), "a%20b;c");
    }

    #[test]
    fn quoted_strings_unescape_and_reprint() {
        let (text, rest) = quoted(r#""a \"b\" \\c" <x>"#, "From").unwrap();
        assert_eq!((text.as_str(), rest), (r#"a "b" \c"#, " <x>"));
        let mut out = String::new();
        push_quoted(&mut out, &text);
        assert_eq!(out, r#""a \"b\" \\c""#);
        assert!(quoted("\"open", "From").is_err());
        assert_eq!(
            quoted("\"a\\é\"", "From"),
            Err(Error::BadEscape { field: "From" })
        );
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        let parts = split_list(r#""a, b" <sip:x;p=1,2>, sip:y , <sip:z>"#, "Contact").unwrap();
        assert_eq!(parts, [r#""a, b" <sip:x;p=1,2>"#, "sip:y", "<sip:z>"]);
        assert!(split_list("<sip:a", "Contact").is_err());
        assert!(split_list("a,,b", "Contact").is_err());
    }

    #[test]
    fn params_parse_with_whitespace_and_quotes() {
        let params = header_params(r#" ; tag = 1a ;lr; q="0.5" ;x="a;b""#, "To").unwrap();
        assert_eq!(
            params,
            [
                Param::new("tag", "1a"),
                Param::flag("lr"),
                Param::new("q", "0.5"),
                Param::new("x", "a;b")
            ]
        );
        let mut out = String::new();
        push_header_params(&mut out, &params);
        assert_eq!(out, ";tag=1a;lr;q=0.5;x=\"a;b\"");
        assert!(header_params("junk", "To").is_err());
        assert!(header_params(";=1", "To").is_err());
    }
}
