//! Reading the Data API's loosely typed parameters: numbers that arrive as strings or numbers,
//! sort criteria as JSON inside a URL, portal names as a JSON array or a bare name, portal
//! ranges in the body (`offset.P`) or in the query (`_offset.P`). Real clients send all of these
//! shapes (see docs/records.md); anything else is a clear 960 naming the parameter.

use records::{Code, FindByName, Range, SortRequest};
use serde_json::Value;

/// A parameter problem: the code and what to tell the client.
pub type Problem = (Code, String);

fn invalid(name: &str, why: &str) -> Problem {
    (Code::ParameterInvalid, format!("`{name}` {why}"))
}

/// A positive whole number given as a JSON number or a string of digits.
pub fn positive(name: &str, value: &Value) -> Result<u64, Problem> {
    let number = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    match number {
        Some(number) if number >= 1 => Ok(number),
        _ => Err(invalid(name, "must be a whole number of at least 1")),
    }
}

/// The query string as name/value pairs (`+` read as a space, as browsers and `requests` send).
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Problem> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or("")).map_err(|_| {
        (
            Code::ParameterInvalid,
            "the query string is not valid".to_owned(),
        )
    })
}

/// Looks a name up in query pairs.
pub fn pair<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A found-set range from `offset`/`limit` values (either may be absent).
pub fn range(
    offset: Option<(&str, &Value)>,
    limit: Option<(&str, &Value)>,
    max_limit: u64,
    default_limit: u64,
) -> Result<Range, Problem> {
    let offset = offset.map_or(Ok(1), |(name, value)| positive(name, value))?;
    let limit = limit.map_or(Ok(default_limit), |(name, value)| positive(name, value))?;
    if limit > max_limit {
        let name = "limit";
        return Err(invalid(name, &format!("may be at most {max_limit}")));
    }
    Ok(Range { offset, limit })
}

/// Sort criteria from a JSON array of `{"fieldName", "sortOrder"}`.
pub fn sort(value: &Value) -> Result<Vec<SortRequest>, Problem> {
    let Value::Array(items) = value else {
        return Err(invalid(
            "sort",
            "must be a JSON array of {fieldName, sortOrder}",
        ));
    };
    if items.len() > 32 {
        return Err(invalid("sort", "may name at most 32 fields"));
    }
    items
        .iter()
        .map(|item| {
            let field = item.get("fieldName").and_then(Value::as_str);
            let order = item.get("sortOrder").map_or(Some(""), Value::as_str);
            match (field, order) {
                (Some(field), Some(order)) => Ok(SortRequest {
                    field: field.to_owned(),
                    order: order.to_owned(),
                }),
                _ => Err(invalid(
                    "sort",
                    "items need a string fieldName and an optional string sortOrder",
                )),
            }
        })
        .collect()
}

/// Sort criteria from the `_sort` query parameter (JSON text).
pub fn sort_text(text: &str) -> Result<Vec<SortRequest>, Problem> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| invalid("_sort", "must be a JSON array of {fieldName, sortOrder}"))?;
    sort(&value)
}

/// Portal names from a JSON array (body) or text that is a JSON array or one bare name (query).
pub fn portal_names(value: &Value) -> Result<Vec<String>, Problem> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("portal", "must list portal names as strings"))
            })
            .collect(),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ Value::Array(_)) => portal_names(&parsed),
            _ => Ok(vec![text.clone()]),
        },
        _ => Err(invalid("portal", "must be an array of portal names")),
    }
}

/// Find requests from `query`: an array of objects whose values are strings or numbers, with an
/// optional `omit` of `"true"`/`true`.
pub fn find_requests(value: Option<&Value>) -> Result<Vec<FindByName>, Problem> {
    let Some(value) = value else {
        return Err((
            Code::ParameterMissing,
            "`query` is missing: give an array of find requests".to_owned(),
        ));
    };
    let Value::Array(items) = value else {
        return Err(invalid("query", "must be an array of find requests"));
    };
    if items.is_empty() {
        return Err((
            Code::FindCriteriaEmpty,
            "`query` has no find request".to_owned(),
        ));
    }
    if items.len() > 100 {
        return Err(invalid("query", "may hold at most 100 find requests"));
    }
    items
        .iter()
        .map(|item| {
            let Value::Object(object) = item else {
                return Err(invalid(
                    "query",
                    "items must be objects of field: criterion",
                ));
            };
            let mut request = FindByName {
                criteria: Vec::new(),
                omit: false,
            };
            for (name, criterion) in object {
                if name == "omit" {
                    request.omit = match criterion {
                        Value::Bool(flag) => *flag,
                        Value::String(text) => text.eq_ignore_ascii_case("true"),
                        _ => return Err(invalid("omit", "must be \"true\" or \"false\"")),
                    };
                    continue;
                }
                let text = match criterion {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    _ => {
                        return Err(invalid(name, "find criteria must be strings or numbers"));
                    }
                };
                request.criteria.push((name.clone(), text));
            }
            Ok(request)
        })
        .collect()
}

/// Portal ranges for the named portals from a lookup of `offset.P`/`limit.P` style keys.
pub fn portal_ranges(
    names: &[String],
    lookup: impl Fn(&str) -> Option<Value>,
    max_limit: u64,
) -> Result<Vec<(String, Range)>, Problem> {
    names
        .iter()
        .map(|name| {
            let offset_key = format!("offset.{name}");
            let limit_key = format!("limit.{name}");
            let offset = lookup(&offset_key);
            let limit = lookup(&limit_key);
            let range = range(
                offset.as_ref().map(|value| (offset_key.as_str(), value)),
                limit.as_ref().map(|value| (limit_key.as_str(), value)),
                max_limit,
                50,
            )?;
            Ok((name.clone(), range))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_arrive_as_strings_or_numbers() {
        assert_eq!(positive("limit", &json!("10")), Ok(10));
        assert_eq!(positive("limit", &json!(10)), Ok(10));
        assert!(positive("limit", &json!(0)).is_err());
        assert!(positive("limit", &json!("-1")).is_err());
        assert!(positive("limit", &json!(true)).is_err());
        let too_many = range(None, Some(("limit", &json!(999_999))), 10_000, 100);
        assert_eq!(too_many.unwrap_err().0, Code::ParameterInvalid);
    }

    #[test]
    fn portals_from_json_or_bare_name() {
        assert_eq!(portal_names(&json!("[\"a\", \"b\"]")).unwrap(), ["a", "b"]);
        assert_eq!(portal_names(&json!("calls")).unwrap(), ["calls"]);
        assert_eq!(portal_names(&json!(["x"])).unwrap(), ["x"]);
    }

    #[test]
    fn find_requests_take_omit_and_numbers() {
        let requests = find_requests(Some(
            &json!([{"age": 30}, {"name": "Sato", "omit": "true"}]),
        ))
        .unwrap();
        assert_eq!(requests[0].criteria, [("age".to_owned(), "30".to_owned())]);
        assert!(requests[1].omit);
        assert_eq!(
            find_requests(Some(&json!([]))).unwrap_err().0,
            Code::FindCriteriaEmpty
        );
        assert_eq!(find_requests(None).unwrap_err().0, Code::ParameterMissing);
        assert!(find_requests(Some(&json!([{"a": {"b": 1}}]))).is_err());
    }
}
