//! The records storage conformance suite (`records::conformance`) on the SQLite store: every
//! check gets a fresh database file.

#![allow(clippy::unwrap_used)]

use records::conformance;
use store_sqlite::RecordsDb;

#[test]
fn sqlite_store_keeps_every_records_rule() {
    let dir = std::env::temp_dir().join(format!("genkan-conformance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (name, check) in conformance::checks::<RecordsDb>() {
        let store = RecordsDb::open("conformance", &dir.join(format!("{name}.sqlite")), 2).unwrap();
        if let Err(failure) = check(&store) {
            failures.push(format!("{name}: {failure}"));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        failures.is_empty(),
        "broken rules:\n{}",
        failures.join("\n")
    );
}
