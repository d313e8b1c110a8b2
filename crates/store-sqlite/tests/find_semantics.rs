//! FileMaker find semantics (`records::find`) run on real SQLite rows: the SQL the records core
//! writes must find exactly what FileMaker would.

// A failed set-up step in a helper should stop the test on the spot, like an assertion.
#![allow(clippy::unwrap_used)]

use records::{FieldKind, FindRequest, Value, condition_for};
use rusqlite::{Connection, params_from_iter};

fn customers() -> Connection {
    let connection = Connection::open_in_memory().unwrap();
    store_sqlite::records::register_find_functions(&connection).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT, price REAL);
             INSERT INTO customers (name, city, price) VALUES
               ('Suzuki Taro', 'Tokyo', 1200),
               ('Tanaka Hanako', 'Osaka', 800),
               ('Taro Yamada', 'Tokyo', 1500),
               ('Kotaro Sato', 'Nagoya', 20),
               ('100% Orange', 'Osaka', 15),
               ('', 'Kobe', NULL),
               ('佐藤　花子', '東京都・港区', 300),
               ('Ito (Ken), sales/support', '03-1234-5678', 40);",
        )
        .unwrap();
    connection
}

fn find(requests: &[(&str, FieldKind, &str, bool)]) -> Vec<i64> {
    let requests: Vec<FindRequest> = requests
        .iter()
        .map(|(column, kind, criterion, omit)| FindRequest {
            criteria: vec![(format!("\"{column}\""), *kind, (*criterion).to_owned())],
            omit: *omit,
        })
        .collect();
    let condition = condition_for(&requests).unwrap();
    let connection = customers();
    let sql = format!(
        "SELECT id FROM customers WHERE {} ORDER BY id",
        condition.sql
    );
    let params = condition.params.iter().map(|value| match value {
        Value::Text(text) => rusqlite::types::Value::Text(text.clone()),
        Value::Number(number) => rusqlite::types::Value::Real(*number),
    });
    let mut statement = connection.prepare(&sql).unwrap();
    statement
        .query_map(params_from_iter(params), |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn words_match_at_their_beginning_only() {
    // "taro" begins a word in 1 and 3, but only sits inside "Kotaro" in 4.
    assert_eq!(
        find(&[("name", FieldKind::Text, "taro", false)]),
        vec![1, 3]
    );
    assert_eq!(find(&[("name", FieldKind::Text, "ta ya", false)]), vec![3]);
    assert_eq!(
        find(&[("name", FieldKind::Text, "=Taro", false)]),
        vec![1, 3]
    );
    assert_eq!(
        find(&[("name", FieldKind::Text, "==suzuki taro", false)]),
        vec![1]
    );
    assert_eq!(
        find(&[("name", FieldKind::Text, "*taro*", false)]),
        vec![1, 3, 4]
    );
    assert_eq!(find(&[("name", FieldKind::Text, "100%", false)]), vec![5]);
}

#[test]
fn empty_not_empty_ranges_and_comparisons() {
    assert_eq!(find(&[("name", FieldKind::Text, "=", false)]), vec![6]);
    assert_eq!(
        find(&[("name", FieldKind::Text, "*", false)]),
        vec![1, 2, 3, 4, 5, 7, 8]
    );
    assert_eq!(
        find(&[("price", FieldKind::Number, "800...1200", false)]),
        vec![1, 2]
    );
    assert_eq!(
        find(&[("price", FieldKind::Number, "<100", false)]),
        vec![4, 5, 8]
    );
    assert_eq!(
        find(&[("price", FieldKind::Number, "1500", false)]),
        vec![3]
    );
}

#[test]
fn requests_extend_and_omits_subtract() {
    let found = find(&[
        ("city", FieldKind::Text, "==Tokyo", false),
        ("city", FieldKind::Text, "==Osaka", false),
        ("price", FieldKind::Number, ">1000", true),
    ]);
    assert_eq!(found, vec![2, 5]);
}

#[test]
fn punctuation_and_the_ideographic_space_separate_words() {
    // 「佐藤　花子」 is written with U+3000 between the family and the given name.
    assert_eq!(find(&[("name", FieldKind::Text, "花子", false)]), vec![7]);
    assert_eq!(
        find(&[("name", FieldKind::Text, "佐藤 花", false)]),
        vec![7]
    );
    assert_eq!(find(&[("city", FieldKind::Text, "港区", false)]), vec![7]);
    // Brackets, commas and slashes split words; hyphens do not.
    assert_eq!(find(&[("name", FieldKind::Text, "ken", false)]), vec![8]);
    assert_eq!(
        find(&[("name", FieldKind::Text, "=support", false)]),
        vec![8]
    );
    assert_eq!(
        find(&[("city", FieldKind::Text, "03-1234", false)]),
        vec![8]
    );
    assert_eq!(
        find(&[("city", FieldKind::Text, "1234", false)]),
        Vec::<i64>::new()
    );
}

#[test]
fn hash_is_one_digit_and_at_is_any_one_character() {
    // `#` and `@` match whole words: "100%" is three digits and a percent sign, so `###` alone
    // finds nothing, `###%` and `@@@%` find it, and `#*` any word beginning with a digit.
    assert_eq!(
        find(&[("name", FieldKind::Text, "###", false)]),
        Vec::<i64>::new()
    );
    assert_eq!(
        find(&[("name", FieldKind::Text, "#", false)]),
        Vec::<i64>::new()
    );
    assert_eq!(find(&[("name", FieldKind::Text, "###%", false)]), vec![5]);
    assert_eq!(find(&[("name", FieldKind::Text, "@@@%", false)]), vec![5]);
    assert_eq!(find(&[("name", FieldKind::Text, "#*", false)]), vec![5]);
    // "Taro" is a whole word in 1 and 3; "Kotaro" and "Tarot" would not be.
    assert_eq!(
        find(&[("name", FieldKind::Text, "t@ro", false)]),
        vec![1, 3]
    );
    // `##-####-####` over the whole field: the phone-shaped city of row 8.
    assert_eq!(
        find(&[("city", FieldKind::Text, "==##-####-####", false)]),
        vec![8]
    );
    assert_eq!(
        find(&[("city", FieldKind::Text, "==##-####-###", false)]),
        Vec::<i64>::new()
    );
    // Numbers: 1200 and 1500 have four digits beginning with 1, 15 and 20 do not.
    assert_eq!(
        find(&[("price", FieldKind::Number, "1###", false)]),
        vec![1, 3]
    );
    // An escaped `#` is the character itself, and a GLOB bracket in the text stands for itself.
    assert_eq!(
        find(&[("name", FieldKind::Text, "\\#", false)]),
        Vec::<i64>::new()
    );
    assert_eq!(
        find(&[("name", FieldKind::Text, "[#", false)]),
        Vec::<i64>::new()
    );
}
