//! Small readers shared by the OS parsers: loose JSON values, versions, C's `ctime` dates.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::Value;

use crate::Error;

/// At most `max` characters of `text`, marked with "…" when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// 64-bit FNV-1a: a stable fingerprint for detection ids (not for security; ids only need to
/// stay the same from one report to the next).
pub(crate) fn fingerprint(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Compares dotted versions part by part, numerically where both parts are numbers
/// ("5297" > "2192", "1.10" > "1.9"); other parts compare as text.
pub(crate) fn compare_versions(a: &str, b: &str) -> Ordering {
    let mut left = a.trim().split('.');
    let mut right = b.trim().split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// Parses a tool's JSON output. PowerShell may start its output with a byte-order mark.
pub(crate) fn json(tool: &'static str, text: &str) -> Result<Value, Error> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(Error::Empty { tool });
    }
    serde_json::from_str(text).map_err(|error| Error::Json {
        tool,
        reason: error.to_string(),
    })
}

/// PowerShell's `ConvertTo-Json` prints one object for one result and an array for several.
pub(crate) fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// A field of a JSON object, ignoring case (PowerShell's names are case-insensitive) and
/// treating `null` as absent.
pub(crate) fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    let value = map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })?;
    (!value.is_null()).then_some(value)
}

/// A boolean as PowerShell may print it: `true`, `1`, `"True"`.
pub(crate) fn loose_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An integer, also when printed as a string.
pub(crate) fn loose_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|float| float as i64)),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A value as text: strings as they are, numbers and booleans printed.
pub(crate) fn loose_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A date as PowerShell's `ConvertTo-Json` prints one.
///
/// PowerShell 5 writes `"\/Date(1700000000000)\/"` (milliseconds since 1970 in UTC, sometimes
/// with an informative `+0900` after them); PowerShell 7 writes ISO 8601 with the local offset.
/// A date wrapped as `{"value": …, "DateTime": "…"}` (PowerShell 5 on dates carrying note
/// properties) is unwrapped. An ISO date without an offset is local time at `local_offset`.
pub(crate) fn powershell_date(value: &Value, local_offset: FixedOffset) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => powershell_date_text(text.trim(), local_offset),
        Value::Object(_) => {
            field(value, "value").and_then(|inner| powershell_date(inner, local_offset))
        }
        _ => None,
    }
}

fn powershell_date_text(text: &str, local_offset: FixedOffset) -> Option<DateTime<Utc>> {
    if let Some(inner) = text
        .strip_prefix("/Date(")
        .and_then(|rest| rest.strip_suffix(")/"))
    {
        // The sign of an offset suffix cannot be confused with the number's own sign, which
        // only ever comes first.
        let digits_end = inner
            .char_indices()
            .skip(1)
            .find(|(_, ch)| *ch == '+' || *ch == '-')
            .map_or(inner.len(), |(at, _)| at);
        let millis: i64 = inner[..digits_end].parse().ok()?;
        return DateTime::from_timestamp_millis(millis);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return local_to_utc(naive, local_offset);
        }
    }
    None
}

/// Local time at a fixed offset, as an instant.
pub(crate) fn local_to_utc(naive: NaiveDateTime, offset: FixedOffset) -> Option<DateTime<Utc>> {
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|at| at.with_timezone(&Utc))
}

/// A date in C's `ctime` form, "Tue Dec  1 08:00:00 2026", which ClamAV prints in local time.
/// The weekday is not checked: it carries no information the rest does not.
pub(crate) fn ctime(text: &str, local_offset: FixedOffset) -> Option<DateTime<Utc>> {
    let mut words = text.split_whitespace();
    let _weekday = words.next()?;
    let month = match words.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let day: u32 = words.next()?.parse().ok()?;
    let time = NaiveTime::parse_from_str(words.next()?, "%H:%M:%S").ok()?;
    let year: i32 = words.next()?.parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    local_to_utc(date.and_time(time), local_offset)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn jst() -> FixedOffset {
        FixedOffset::east_opt(9 * 3600).unwrap()
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("山田太郎", 2), "山田…");
        assert_eq!(clip("abc", 3), "abc");
    }

    #[test]
    fn fingerprint_is_stable_and_distinguishes() {
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint(""), "cbf29ce484222325");
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("5297", "2192"), Ordering::Greater);
        assert_eq!(compare_versions("1.10", "1.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.2", "1.2.0"), Ordering::Less);
        assert_eq!(compare_versions("1.2", "1.2"), Ordering::Equal);
    }

    #[test]
    fn powershell_dates_in_every_form() {
        let expected: DateTime<Utc> = "2023-11-14T22:13:20Z".parse().unwrap();
        for text in [
            "/Date(1700000000000)/",
            "/Date(1700000000000+0900)/",
            "2023-11-15T07:13:20+09:00",
            "2023-11-15T07:13:20.0000000+09:00",
            "2023-11-15T07:13:20",
        ] {
            assert_eq!(
                powershell_date(&Value::String(text.into()), jst()),
                Some(expected),
                "{text}"
            );
        }
        let wrapped = serde_json::json!({"value": "/Date(1700000000000)/", "DisplayHint": 2,
            "DateTime": "2023年11月15日 7:13:20"});
        assert_eq!(powershell_date(&wrapped, jst()), Some(expected));
        for bad in ["/Date(abc)/", "/Date()/", "yesterday", ""] {
            assert_eq!(powershell_date(&Value::String(bad.into()), jst()), None);
        }
        assert_eq!(powershell_date(&Value::Bool(true), jst()), None);
    }

    #[test]
    fn ctime_dates_are_local() {
        assert_eq!(
            ctime("Tue Dec  1 08:00:00 2026", jst()),
            Some("2026-11-30T23:00:00Z".parse().unwrap())
        );
        assert_eq!(ctime("Tue Feb 30 08:00:00 2026", jst()), None);
        assert_eq!(ctime("Tue Dec  1 08:00 2026", jst()), None);
        assert_eq!(ctime("Tue Dec  1 08:00:00 2026 extra", jst()), None);
        assert_eq!(ctime("", jst()), None);
    }

    #[test]
    fn loose_values() {
        assert_eq!(loose_bool(&serde_json::json!(1)), Some(true));
        assert_eq!(loose_bool(&serde_json::json!("False")), Some(false));
        assert_eq!(loose_bool(&serde_json::json!(2)), None);
        assert_eq!(loose_i64(&serde_json::json!("3")), Some(3));
        let object = serde_json::json!({"Enabled": true, "Gone": null});
        assert!(field(&object, "enabled").is_some());
        assert!(field(&object, "Gone").is_none());
    }
}
