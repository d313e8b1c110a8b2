//! Query results as an aligned text table, the way `psql` shows them: Japanese (wide)
//! characters count two columns, numbers are right-aligned, line breaks inside a value are shown
//! as `\n` so each row stays on one line.

use serde_json::Value;
use unicode_width::UnicodeWidthStr;

/// A value as one line of text; NULL is empty.
pub(super) fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text
            .replace('\\', "\\\\")
            .replace('\r', "\\r")
            .replace('\n', "\\n")
            .replace('\t', "    "),
        other => other.to_string(),
    }
}

/// The table, ending with a `(n rows)` line.
pub(super) fn render(columns: &[String], rows: &[Vec<Value>]) -> String {
    let cells: Vec<Vec<(String, bool)>> = rows
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|index| {
                    let value = row.get(index).unwrap_or(&Value::Null);
                    (cell_text(value), value.is_number())
                })
                .collect()
        })
        .collect();
    let names: Vec<String> = columns
        .iter()
        .map(|name| cell_text(&Value::String(name.clone())))
        .collect();
    let widths: Vec<usize> = names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            cells
                .iter()
                .filter_map(|row| row.get(index))
                .map(|(text, _)| text.width())
                .chain(std::iter::once(name.width()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |text: &str, width: usize, right: bool| {
        let fill = " ".repeat(width.saturating_sub(text.width()));
        if right {
            format!("{fill}{text}")
        } else {
            format!("{text}{fill}")
        }
    };
    let line = |parts: Vec<String>| format!(" {}", parts.join(" | ")).trim_end().to_owned();
    let mut out = String::new();
    out.push_str(&line(
        names
            .iter()
            .zip(&widths)
            .map(|(name, width)| {
                // Headers are centred, as psql does.
                let extra = width.saturating_sub(name.width());
                format!(
                    "{}{name}{}",
                    " ".repeat(extra / 2),
                    " ".repeat(extra - extra / 2)
                )
            })
            .collect(),
    ));
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|width| "-".repeat(width + 2))
            .collect::<Vec<_>>()
            .join("+"),
    );
    out.push('\n');
    for row in &cells {
        out.push_str(&line(
            row.iter()
                .zip(&widths)
                .map(|((text, number), width)| pad(text, *width, *number))
                .collect(),
        ));
        out.push('\n');
    }
    let count = rows.len();
    out.push_str(&format!(
        "({count} row{})\n",
        if count == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn wide_characters_and_numbers_line_up() {
        let table = render(
            &["name".into(), "n".into()],
            &[
                vec![json!("佐藤 花子"), json!(7)],
                vec![json!("Sato"), json!(1234)],
                vec![json!("a\nb"), Value::Null],
            ],
        );
        assert_eq!(
            table,
            "   name    |  n\n\
             -----------+------\n \
             佐藤 花子 |    7\n \
             Sato      | 1234\n \
             a\\nb      |\n\
             (3 rows)\n"
        );
    }

    #[test]
    fn an_empty_result_still_names_its_columns() {
        assert_eq!(render(&["a".into()], &[]), " a\n---\n(0 rows)\n");
    }
}
