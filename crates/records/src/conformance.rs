//! The storage conformance suite: the rules of [`Store`], as checks any implementation can run.
//!
//! `store-sqlite` runs it in its tests; a PostgreSQL store would run the same functions. Each
//! check gets a fresh, empty store and returns a description of the first rule broken.

use crate::Code;
use crate::layout::{FindByName, LayoutDefinition, PortalDefinition, SortRequest};
use crate::store::{
    Access, Actor, BulkMode, Datum, Grants, Query, Range, Statement, StatementOutcome, Store,
    StoreError,
};
use std::sync::Arc;

/// Grants everything (the conformance suite checks engine rules, not permissions).
pub struct AllowAll;

impl Grants for AllowAll {
    fn allows(&self, _access: Access, _table: &str) -> bool {
        true
    }
}

/// Grants reading only.
pub struct ReadOnly;

impl Grants for ReadOnly {
    fn allows(&self, access: Access, _table: &str) -> bool {
        access == Access::Read
    }
}

/// A check's verdict.
pub type Outcome = Result<(), String>;

/// Every check, by name.
pub fn checks<S: Store>() -> Vec<(&'static str, fn(&S) -> Outcome)> {
    vec![
        (
            "records_round_trip_with_modid",
            records_round_trip_with_modid::<S>,
        ),
        ("sql_changes_bump_modid", sql_changes_bump_modid::<S>),
        ("find_sort_and_range", find_sort_and_range::<S>),
        (
            "portals_with_their_own_range",
            portals_with_their_own_range::<S>,
        ),
        (
            "leases_guard_every_write_path",
            leases_guard_every_write_path::<S>,
        ),
        (
            "bulk_update_atomic_or_reporting_skips",
            bulk_update_atomic_or_reporting_skips::<S>,
        ),
        (
            "for_update_holds_until_commit",
            for_update_holds_until_commit::<S>,
        ),
        (
            "failed_batch_changes_nothing",
            failed_batch_changes_nothing::<S>,
        ),
        (
            "internal_tables_and_grants",
            internal_tables_and_grants::<S>,
        ),
        (
            "bad_names_get_filemaker_codes",
            bad_names_get_filemaker_codes::<S>,
        ),
    ]
}

const ALICE: Actor<'static> = Actor {
    user: "alice",
    session: "s-alice",
    now_ms: 1_000,
};
const BOB: Actor<'static> = Actor {
    user: "bob",
    session: "s-bob",
    now_ms: 1_000,
};

macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

fn fail(context: &str) -> impl Fn(StoreError) -> String + '_ {
    move |error| format!("{context}: {error:?}")
}

fn sql<S: Store>(
    store: &S,
    actor: Actor<'_>,
    statements: &[&str],
) -> Result<Vec<StatementOutcome>, StoreError> {
    let mut session = store.session()?;
    let statements: Vec<Statement> = statements
        .iter()
        .map(|sql| Statement {
            sql: (*sql).to_owned(),
            params: vec![],
        })
        .collect();
    let result = store.execute(
        &mut session,
        actor,
        &statements,
        BulkMode::Atomic,
        Arc::new(AllowAll),
    );
    store.end_session(&mut session, actor.session);
    result
}

fn setup<S: Store>(store: &S) -> Outcome {
    sql(
        store,
        ALICE,
        &[
            "CREATE TABLE customers (name TEXT, phone TEXT, age INTEGER)",
            "CREATE TABLE calls (customer_id INTEGER, topic TEXT)",
            "INSERT INTO customers (name, phone, age) VALUES ('Sato Hanako', '03-1111', 34), ('Suzuki Ichiro', '06-2222', 51), ('Takahashi Jiro', '03-3333', 27), ('Sato Kenji', '011-4444', 45)",
            "INSERT INTO calls (customer_id, topic) VALUES (1, 'billing'), (1, 'delivery'), (1, 'returns'), (2, 'billing')",
        ],
    )
    .map_err(fail("setup"))?;
    store
        .define_layout(&LayoutDefinition {
            name: "customer_calls".into(),
            table: "customers".into(),
            fields: Some(vec!["name".into(), "age".into()]),
            portals: vec![PortalDefinition {
                name: "calls".into(),
                table: "calls".into(),
                foreign_key: "customer_id".into(),
                local_key: None,
                fields: None,
            }],
        })
        .map_err(fail("define layout"))?;
    Ok(())
}

fn text(value: &str) -> Datum {
    Datum::Text(value.to_owned())
}

fn field<'a>(record: &'a crate::store::Record, name: &str) -> Option<&'a Datum> {
    record
        .fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value)
}

/// Create, read, edit with the right and the wrong modId, delete.
pub fn records_round_trip_with_modid<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    let layout = store.layout("customers").map_err(fail("layout"))?;
    let (id, mod_id) = store
        .create(
            ALICE,
            &layout,
            &[
                ("name".into(), text("Ito")),
                ("age".into(), Datum::Integer(40)),
            ],
        )
        .map_err(fail("create"))?;
    ensure!(mod_id == 0, "a new record has modId 0, got {mod_id}");
    let record = store.record(&layout, id, None).map_err(fail("get"))?;
    ensure!(
        field(&record, "name") == Some(&text("Ito")),
        "created name read back: {record:?}"
    );
    let next = store
        .edit(
            ALICE,
            &layout,
            id,
            &[("phone".into(), text("045-5555"))],
            Some(0),
        )
        .map_err(fail("edit"))?;
    ensure!(next == 1, "modId after one edit is 1, got {next}");
    let stale = store.edit(ALICE, &layout, id, &[("phone".into(), text("x"))], Some(0));
    ensure!(
        stale
            == Err(StoreError::ModIdMismatch {
                given: 0,
                current: 1
            }),
        "a stale modId is refused: {stale:?}"
    );
    let record = store
        .record(&layout, id, None)
        .map_err(fail("get after stale"))?;
    ensure!(
        field(&record, "phone") == Some(&text("045-5555")),
        "stale edit changed nothing"
    );
    let (copy, copy_mod) = store
        .duplicate(ALICE, &layout, id)
        .map_err(fail("duplicate"))?;
    ensure!(copy != id && copy_mod == 0, "duplicate is a new record");
    store.delete(ALICE, &layout, id).map_err(fail("delete"))?;
    let gone = store.record(&layout, id, None);
    ensure!(
        matches!(&gone, Err(error) if error.code() == Code::RecordMissing),
        "deleted record is missing: {gone:?}"
    );
    Ok(())
}

/// modId grows on changes made through SQL too, and SQL sees ROWID and ROWMODID.
pub fn sql_changes_bump_modid<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    sql(store, ALICE, &["UPDATE customers SET age = age + 1"]).map_err(fail("update"))?;
    sql(
        store,
        ALICE,
        &["UPDATE customers SET phone = 'x' WHERE ROWID = 2"],
    )
    .map_err(fail("update one"))?;
    let out = sql(
        store,
        ALICE,
        &["SELECT ROWID, ROWMODID FROM customers ORDER BY ROWID"],
    )
    .map_err(fail("select"))?;
    let mods: Vec<&Datum> = out[0].rows.iter().map(|row| &row[1]).collect();
    ensure!(
        mods == [
            &Datum::Integer(1),
            &Datum::Integer(2),
            &Datum::Integer(1),
            &Datum::Integer(1)
        ],
        "ROWMODID after two updates: {mods:?}"
    );
    let layout = store.layout("customers").map_err(fail("layout"))?;
    let record = store.record(&layout, 2, None).map_err(fail("get"))?;
    ensure!(
        record.mod_id == 2,
        "Data API modId equals ROWMODID: {}",
        record.mod_id
    );
    Ok(())
}

fn find(criteria: &[(&str, &str)], omit: bool) -> FindByName {
    FindByName {
        criteria: criteria
            .iter()
            .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
            .collect(),
        omit,
    }
}

/// Finds with omit and ranges, sort, offset/limit, counts, and 401 on no match.
pub fn find_sort_and_range<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    let layout = store.layout("customers").map_err(fail("layout"))?;
    let query = Query {
        find: Some(vec![
            find(&[("age", "30...60")], false),
            find(&[("name", "suzuki")], true),
        ]),
        sort: vec![SortRequest {
            field: "age".into(),
            order: "descend".into(),
        }],
        range: Some(Range {
            offset: 1,
            limit: 10,
        }),
        portals: Some(vec![]),
    };
    let found = store.query(&layout, &query).map_err(fail("find"))?;
    let ids: Vec<i64> = found
        .records
        .iter()
        .map(|record| record.record_id)
        .collect();
    ensure!(
        ids == [4, 1],
        "range minus omit, by age descending: {ids:?}"
    );
    ensure!(
        found.found == 2 && found.total == 4,
        "counts: {} of {}",
        found.found,
        found.total
    );
    let page = store
        .query(
            &layout,
            &Query {
                range: Some(Range {
                    offset: 2,
                    limit: 2,
                }),
                ..Query::default()
            },
        )
        .map_err(fail("range"))?;
    let ids: Vec<i64> = page.records.iter().map(|record| record.record_id).collect();
    ensure!(
        ids == [2, 3] && page.found == 4,
        "offset 2 limit 2: {ids:?}"
    );
    let none = store.query(
        &layout,
        &Query {
            find: Some(vec![find(&[("name", "nobody")], false)]),
            ..Query::default()
        },
    );
    ensure!(
        matches!(&none, Err(error) if error.code() == Code::NoRecordsMatch),
        "no match is 401: {none:?}"
    );
    Ok(())
}

/// Portal rows come with each record, counted, in their own range.
pub fn portals_with_their_own_range<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    let layout = store.layout("customer_calls").map_err(fail("layout"))?;
    let record = store
        .record(
            &layout,
            1,
            Some(&[(
                "calls".into(),
                Range {
                    offset: 2,
                    limit: 1,
                },
            )]),
        )
        .map_err(fail("get"))?;
    let portal = record.portals.first().ok_or("portal missing")?;
    ensure!(
        portal.found == 3 && portal.rows.len() == 1,
        "portal counts: {portal:?}"
    );
    let topic = field(&portal.rows[0], "calls::topic");
    ensure!(
        topic == Some(&text("delivery")),
        "second call in range: {topic:?}"
    );
    ensure!(
        field(&record, "phone").is_none(),
        "layout shows only its fields"
    );
    Ok(())
}

/// A lease blocks other sessions' Data API edits, deletes and SQL writes, until it lapses.
pub fn leases_guard_every_write_path<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    let layout = store.layout("customers").map_err(fail("layout"))?;
    store
        .lock(ALICE, "customers", 1, 60_000)
        .map_err(fail("lock"))?;
    let edit = store.edit(BOB, &layout, 1, &[("name".into(), text("x"))], None);
    ensure!(
        matches!(&edit, Err(StoreError::Locked(leases)) if leases[0].holder.user == "alice"),
        "edit by another session names the holder: {edit:?}"
    );
    let delete = store.delete(BOB, &layout, 1);
    ensure!(
        matches!(delete, Err(StoreError::Locked(_))),
        "delete refused: {delete:?}"
    );
    let update = sql(
        store,
        BOB,
        &["UPDATE customers SET name = 'x' WHERE ROWID = 1"],
    );
    ensure!(
        matches!(update, Err(StoreError::Locked(_))),
        "SQL update refused: {update:?}"
    );
    store
        .edit(ALICE, &layout, 1, &[("name".into(), text("Sato H."))], None)
        .map_err(fail("holder edits"))?;
    let later = Actor {
        now_ms: 61_001,
        ..BOB
    };
    store
        .edit(later, &layout, 1, &[("name".into(), text("after"))], None)
        .map_err(fail("after lapse"))?;
    ensure!(
        store.lease("customers", 1, 61_001).is_none(),
        "lapsed lease is gone"
    );
    let (live, lapsed) = store.leases(61_001);
    ensure!(
        live.is_empty() && lapsed.len() == 1,
        "the sweep drops the lapsed lease: {live:?} {lapsed:?}"
    );
    store
        .lock(ALICE, "customers", 2, 60_000)
        .map_err(fail("lock 2"))?;
    let blocked = store.edit(BOB, &layout, 2, &[("name".into(), text("y"))], None);
    ensure!(
        matches!(blocked, Err(StoreError::Locked(_))),
        "record 2 held: {blocked:?}"
    );
    ensure!(
        store.release_session("s-alice") == 1,
        "session end releases"
    );
    store
        .edit(BOB, &layout, 2, &[("name".into(), text("y"))], None)
        .map_err(fail("after release"))?;
    Ok(())
}

/// Bulk UPDATE: atomic mode changes nothing and names every leased target; skip mode changes the
/// rest and lists exactly the skipped records; TRUNCATE is all or nothing.
pub fn bulk_update_atomic_or_reporting_skips<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    store
        .lock(ALICE, "customers", 2, 60_000)
        .map_err(fail("lock 2"))?;
    store
        .lock(ALICE, "customers", 4, 60_000)
        .map_err(fail("lock 4"))?;
    let atomic = sql(store, BOB, &["UPDATE customers SET phone = 'new'"]);
    let Err(StoreError::Locked(leases)) = atomic else {
        return Err(format!("atomic update refused: {atomic:?}"));
    };
    let mut ids: Vec<i64> = leases.iter().map(|lease| lease.record_id).collect();
    ids.sort_unstable();
    ensure!(ids == [2, 4], "all locked targets named: {ids:?}");
    let unchanged = sql(
        store,
        BOB,
        &["SELECT count(*) FROM customers WHERE phone = 'new'"],
    )
    .map_err(fail("count"))?;
    ensure!(
        unchanged[0].rows[0][0] == Datum::Integer(0),
        "nothing changed"
    );
    let mut session = store.session().map_err(fail("session"))?;
    let statement = Statement {
        sql: "UPDATE customers SET phone = 'new'".into(),
        params: vec![],
    };
    let skipped = store
        .execute(
            &mut session,
            BOB,
            &[statement],
            BulkMode::SkipLocked,
            Arc::new(AllowAll),
        )
        .map_err(fail("skip locked"))?;
    store.end_session(&mut session, BOB.session);
    let mut ids: Vec<i64> = skipped[0]
        .skipped
        .iter()
        .map(|lease| lease.record_id)
        .collect();
    ids.sort_unstable();
    ensure!(
        ids == [2, 4] && skipped[0].changes == 2,
        "skips reported: {:?}",
        skipped[0]
    );
    let truncate = sql(store, BOB, &["TRUNCATE TABLE customers"]);
    ensure!(
        matches!(truncate, Err(StoreError::Locked(_))),
        "truncate refused: {truncate:?}"
    );
    let left = sql(store, BOB, &["SELECT count(*) FROM customers"]).map_err(fail("count"))?;
    ensure!(
        left[0].rows[0][0] == Datum::Integer(4),
        "truncate deleted nothing"
    );
    Ok(())
}

/// `SELECT … FOR UPDATE` leases the selected records to the SQL session until COMMIT.
pub fn for_update_holds_until_commit<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    let mut alice = store.session().map_err(fail("session"))?;
    let run = |session: &mut S::Session, actor: Actor<'_>, sql: &str| {
        let statement = Statement {
            sql: sql.to_owned(),
            params: vec![],
        };
        store.execute(
            session,
            actor,
            &[statement],
            BulkMode::Atomic,
            Arc::new(AllowAll),
        )
    };
    run(&mut alice, ALICE, "BEGIN").map_err(fail("begin"))?;
    let selected = run(
        &mut alice,
        ALICE,
        "SELECT name FROM customers WHERE phone LIKE '03%' FOR UPDATE",
    )
    .map_err(fail("for update"))?;
    ensure!(
        selected[0].locked.len() == 2 && selected[0].rows.len() == 2,
        "two rows leased: {:?}",
        selected[0]
    );
    let blocked = sql(
        store,
        BOB,
        &["UPDATE customers SET age = 0 WHERE ROWID = 3"],
    );
    ensure!(
        matches!(blocked, Err(StoreError::Locked(_))),
        "second writer refused: {blocked:?}"
    );
    sql(
        store,
        BOB,
        &["UPDATE customers SET age = 0 WHERE ROWID = 2"],
    )
    .map_err(fail("unleased row"))?;
    let mut carol = store.session().map_err(fail("session"))?;
    let carol_actor = Actor {
        user: "carol",
        session: "s-carol",
        now_ms: 1_000,
    };
    let conflict = run(
        &mut carol,
        carol_actor,
        "SELECT name FROM customers WHERE ROWID IN (1, 2) FOR UPDATE",
    );
    ensure!(
        matches!(&conflict, Err(StoreError::Locked(leases)) if leases.len() == 1 && leases[0].record_id == 1),
        "FOR UPDATE names the conflict: {conflict:?}"
    );
    run(
        &mut alice,
        ALICE,
        "UPDATE customers SET age = 99 WHERE ROWID = 3",
    )
    .map_err(fail("holder writes"))?;
    run(&mut alice, ALICE, "COMMIT").map_err(fail("commit"))?;
    store.end_session(&mut alice, ALICE.session);
    store.end_session(&mut carol, carol_actor.session);
    sql(
        store,
        BOB,
        &["UPDATE customers SET age = 1 WHERE ROWID = 3"],
    )
    .map_err(fail("after commit"))?;
    Ok(())
}

/// A batch whose last statement fails leaves no trace of the earlier ones.
pub fn failed_batch_changes_nothing<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    let result = sql(
        store,
        ALICE,
        &[
            "INSERT INTO customers (name) VALUES ('ghost')",
            "INSERT INTO no_such_table VALUES (1)",
        ],
    );
    ensure!(
        matches!(&result, Err(StoreError::Sql { index: 2, .. })),
        "second statement named: {result:?}"
    );
    let count = sql(
        store,
        ALICE,
        &["SELECT count(*) FROM customers WHERE name = 'ghost'"],
    )
    .map_err(fail("count"))?;
    ensure!(
        count[0].rows[0][0] == Datum::Integer(0),
        "first insert rolled back"
    );
    Ok(())
}

/// Internal tables cannot be reached by SQL; grants are enforced by the engine per table.
pub fn internal_tables_and_grants<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    for probe in [
        "SELECT * FROM sqlite_master",
        "SELECT * FROM genkan_layout",
        "DROP TABLE genkan_layout",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "PRAGMA writable_schema = 1",
    ] {
        let result = sql(store, ALICE, &[probe]);
        ensure!(
            matches!(
                &result,
                Err(StoreError::Sql {
                    code: Code::InsufficientPrivileges,
                    ..
                })
            ),
            "`{probe}` refused: {result:?}"
        );
    }
    let mut session = store.session().map_err(fail("session"))?;
    let statement = |sql: &str| Statement {
        sql: sql.to_owned(),
        params: vec![],
    };
    let read = store.execute(
        &mut session,
        BOB,
        &[statement("SELECT name FROM customers")],
        BulkMode::Atomic,
        Arc::new(ReadOnly),
    );
    ensure!(read.is_ok(), "read allowed: {read:?}");
    let write = store.execute(
        &mut session,
        BOB,
        &[statement("DELETE FROM customers")],
        BulkMode::Atomic,
        Arc::new(ReadOnly),
    );
    ensure!(
        matches!(
            &write,
            Err(StoreError::Sql {
                code: Code::InsufficientPrivileges,
                ..
            })
        ),
        "write refused: {write:?}"
    );
    let sneaky = store.execute(
        &mut session,
        BOB,
        &[statement("WITH x AS (SELECT 1) DELETE FROM customers")],
        BulkMode::Atomic,
        Arc::new(ReadOnly),
    );
    ensure!(sneaky.is_err(), "write hidden in a CTE refused: {sneaky:?}");
    store.end_session(&mut session, BOB.session);
    Ok(())
}

/// Unknown layouts, fields and records get FileMaker's codes; a bad field writes nothing.
pub fn bad_names_get_filemaker_codes<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    let missing = store.layout("nope");
    ensure!(
        matches!(&missing, Err(e) if e.code() == Code::LayoutMissing),
        "105: {missing:?}"
    );
    let layout = store.layout("customer_calls").map_err(fail("layout"))?;
    let bad = store.create(
        ALICE,
        &layout,
        &[("name".into(), text("x")), ("phone".into(), text("1"))],
    );
    ensure!(
        matches!(&bad, Err(e) if e.code() == Code::FieldMissing),
        "field not on layout: {bad:?}"
    );
    let count = sql(store, ALICE, &["SELECT count(*) FROM customers"]).map_err(fail("count"))?;
    ensure!(count[0].rows[0][0] == Datum::Integer(4), "nothing created");
    let gone = store.edit(ALICE, &layout, 999, &[("name".into(), text("x"))], None);
    ensure!(
        matches!(&gone, Err(e) if e.code() == Code::RecordMissing),
        "101: {gone:?}"
    );
    Ok(())
}

/// A table with leased records can be neither dropped nor altered (a renamed table would slip
/// out from under its leases) until the leases end.
pub fn leased_tables_keep_their_shape<S: Store>(store: &S) -> Outcome {
    setup(store)?;
    store
        .lock(ALICE, "customers", 1, 60_000)
        .map_err(fail("lock"))?;
    for probe in [
        "ALTER TABLE customers RENAME TO clients",
        "ALTER TABLE customers ADD COLUMN note TEXT",
        "DROP TABLE customers",
    ] {
        let result = sql(store, BOB, &[probe]);
        ensure!(
            result.is_err(),
            "`{probe}` refused while a record is leased: {result:?}"
        );
    }
    let layout = store
        .layout("customers")
        .map_err(fail("layout still there"))?;
    let blocked = store.edit(BOB, &layout, 1, &[("name".into(), text("x"))], None);
    ensure!(
        matches!(blocked, Err(StoreError::Locked(_))),
        "lease still guards: {blocked:?}"
    );
    store.release_session(ALICE.session);
    sql(store, BOB, &["ALTER TABLE customers RENAME TO clients"])
        .map_err(fail("rename after release"))?;
    ensure!(
        store.layout("clients").is_ok(),
        "renamed table has its layout"
    );
    Ok(())
}
