//! Record locking end to end, through the real server over HTTPS: two Data API sessions (alice
//! and bob, plus the administrator boss) against one records database, SQL over `/api/sql` in
//! atomic and `skip_locked` mode, `SELECT … FOR UPDATE` transactions, lease expiry, holders that
//! die (a client process, and the genkan process itself), modId, and the lock endpoints.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::harness::{Genkan, TempDir, TestPki, request, send_https};

const GENKAN: &str = env!("CARGO_BIN_EXE_genkan");

/// The demo database of `examples/records-demo.sql`, kept here so the tests own their data.
pub(crate) const SETUP_SQL: &str = "\
CREATE TABLE customers (
    name TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    assigned_agent TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE contacts (
    customer_id INTEGER NOT NULL,
    channel TEXT NOT NULL DEFAULT 'voice',
    topic TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL DEFAULT ''
);
INSERT INTO customers (name, phone, email, assigned_agent, note) VALUES
    ('佐藤 花子', '+81312345678', 'hanako.sato@example.jp', 'tanaka', 'note-1'),
    ('鈴木 一郎', '+81661234567', 'ichiro.suzuki@example.jp', 'yamada', 'note-2'),
    ('高橋 次郎', '+81312349999', 'jiro.takahashi@example.jp', '', 'note-3'),
    ('Sato Kenji', '+81112345678', 'kenji.sato@example.com', 'tanaka', 'note-4');
INSERT INTO contacts (customer_id, channel, topic, at) VALUES
    (1, 'voice', '請求について', '2026-11-02T10:15:00+09:00');
";

pub(crate) const ALICE: (&str, &str) = ("alice", "alice-password-1");
const BOB: (&str, &str) = ("bob", "bob-password-12");
const BOSS: (&str, &str) = ("boss", "boss-password-1");

const DB: &str = "/fmi/data/vLatest/databases/demo";

/// The records part of a config: `settings` (lines of `[records]`), database `demo` set up
/// from `sql`, layout `customers`, staff accounts alice and bob, and boss in the admin group
/// (without a second factor, so that Basic works).
fn records_config(sql: &Path, settings: &str) -> String {
    format!(
        "\n[identity]\ntotp_required_groups = []\n\
         [records]\n{settings}\n\
         [[records.database]]\nname = \"demo\"\nsetup_sql = \"{}\"\n\
         [[records.layout]]\ndatabase = \"demo\"\nname = \"customers\"\ntable = \"customers\"\n\
         [[records.grant]]\ngroup = \"staff\"\ndatabase = \"demo\"\ntables = [\"*\"]\naccess = \"write\"\n\
         [[records.account]]\nname = \"{}\"\npassword = \"{}\"\ngroups = [\"staff\"]\n\
         [[records.account]]\nname = \"{}\"\npassword = \"{}\"\ngroups = [\"staff\"]\n\
         [[records.account]]\nname = \"{}\"\npassword = \"{}\"\ngroups = [\"admin\"]\n",
        sql.display(),
        ALICE.0,
        ALICE.1,
        BOB.0,
        BOB.1,
        BOSS.0,
        BOSS.1,
    )
}

/// A genkan in-process with the records database, and the folder holding its setup SQL.
pub(crate) async fn start(settings: &str) -> (Genkan, TempDir) {
    let sql_dir = TempDir::new("records-sql");
    let sql = sql_dir.0.join("setup.sql");
    std::fs::write(&sql, SETUP_SQL).unwrap();
    let genkan = Genkan::start(&records_config(&sql, settings)).await;
    (genkan, sql_dir)
}

/// Where requests go: a server address and the CA that signed its certificate.
#[derive(Clone, Copy)]
struct Door<'a> {
    pki: &'a TestPki,
    addr: SocketAddr,
}

impl<'a> Door<'a> {
    fn of(genkan: &'a Genkan) -> Self {
        Self {
            pki: &genkan.pki,
            addr: genkan.https,
        }
    }

    async fn call(
        self,
        method: &str,
        path: &str,
        authorization: &str,
        body: Option<&Value>,
    ) -> Answer {
        let body = body.map_or_else(Bytes::new, |body| Bytes::from(body.to_string()));
        let request = request(method, path)
            .header("authorization", authorization)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap();
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            send_https(self.pki, self.addr, request),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} {path} timed out"));
        let status = response.status();
        let body = serde_json::from_slice(response.body()).unwrap_or_else(|error| {
            panic!(
                "{method} {path}: {status}, not JSON ({error}): {}",
                String::from_utf8_lossy(response.body())
            )
        });
        Answer { status, body }
    }
}

/// One answer: HTTP status and the JSON envelope.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    /// The FileMaker code, `messages[0].code`.
    fn code(&self) -> &str {
        self.body["messages"][0]["code"].as_str().unwrap_or("?")
    }

    fn message(&self) -> &str {
        self.body["messages"][0]["message"].as_str().unwrap_or("")
    }

    fn response(&self) -> &Value {
        &self.body["response"]
    }

    /// Panics unless the call succeeded; returns `response`.
    fn ok(&self) -> &Value {
        assert_eq!(
            (self.status, self.code()),
            (StatusCode::OK, "0"),
            "{}",
            self.body
        );
        self.response()
    }

    /// Asserts a 301 (HTTP 500) naming exactly `ids`, each held by `holder`.
    fn assert_locked(&self, ids: &[i64], holder: &str) {
        assert_eq!(
            (self.status, self.code()),
            (StatusCode::INTERNAL_SERVER_ERROR, "301"),
            "{}",
            self.body
        );
        let locked = self.response()["lockedRecords"]
            .as_array()
            .unwrap_or_else(|| panic!("no lockedRecords: {}", self.body));
        assert_eq!(
            record_ids(locked),
            ids.iter().copied().collect(),
            "{}",
            self.body
        );
        for lease in locked {
            assert_eq!(lease["lockedBy"], holder, "{}", self.body);
            assert_eq!(lease["table"], "customers", "{}", self.body);
        }
        assert!(self.message().contains(holder), "{}", self.body);
    }
}

/// The recordIds (strings on the wire) of a list of leases.
fn record_ids(leases: &[Value]) -> BTreeSet<i64> {
    leases
        .iter()
        .map(|lease| {
            lease["recordId"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("recordId is not a number in text: {lease}"))
        })
        .collect()
}

/// A Data API session: its token is also the Bearer of its `/api/sql` calls.
struct Session<'a> {
    door: Door<'a>,
    bearer: String,
}

impl<'a> Session<'a> {
    async fn login(door: Door<'a>, (user, password): (&str, &str)) -> Self {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let answer = door
            .call(
                "POST",
                &format!("{DB}/sessions"),
                &format!("Basic {basic}"),
                Some(&json!({})),
            )
            .await;
        let token = answer.ok()["token"].as_str().unwrap().to_owned();
        Self {
            door,
            bearer: format!("Bearer {token}"),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        self.door.call(method, path, &self.bearer, body).await
    }

    /// Runs statements (strings or `{sql, params}`) in `mode`.
    async fn sql_mode(&self, statements: Value, mode: &str) -> Answer {
        let body = json!({"database": "demo", "statements": statements, "mode": mode});
        self.call("POST", "/api/sql", Some(&body)).await
    }

    async fn sql(&self, statements: Value) -> Answer {
        self.sql_mode(statements, "atomic").await
    }

    /// The rows of one query that must succeed.
    async fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        let answer = self.sql(json!([sql])).await;
        let rows = answer.ok()["results"][0]["rows"].clone();
        serde_json::from_value(rows).unwrap()
    }

    /// Every customer's note, by recordId.
    async fn notes(&self) -> Vec<(i64, String)> {
        self.query("SELECT ROWID, note FROM customers ORDER BY ROWID")
            .await
            .into_iter()
            .map(|row| {
                (
                    row[0].as_i64().unwrap(),
                    row[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn patch(&self, id: i64, note: &str, mod_id: Option<&str>) -> Answer {
        let mut body = json!({"fieldData": {"note": note}});
        if let Some(mod_id) = mod_id {
            body["modId"] = json!(mod_id);
        }
        self.call(
            "PATCH",
            &format!("{DB}/layouts/customers/records/{id}"),
            Some(&body),
        )
        .await
    }

    async fn record(&self, id: i64) -> Value {
        let answer = self
            .call("GET", &format!("{DB}/layouts/customers/records/{id}"), None)
            .await;
        answer.ok()["data"][0].clone()
    }

    async fn lock(&self, method: &str, id: i64, body: Option<&Value>) -> Answer {
        self.call(
            method,
            &format!("{DB}/layouts/customers/records/{id}/lock"),
            body,
        )
        .await
    }

    /// Every live lease as (recordId, holder).
    async fn locks(&self) -> BTreeSet<(i64, String)> {
        let answer = self.call("GET", &format!("{DB}/locks"), None).await;
        let locks = answer.ok()["locks"].as_array().unwrap().clone();
        locks
            .iter()
            .map(|lease| {
                let id = record_ids(std::slice::from_ref(lease));
                (
                    id.into_iter().next().unwrap(),
                    lease["lockedBy"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

fn original_notes() -> Vec<(i64, String)> {
    (1..=4).map(|id| (id, format!("note-{id}"))).collect()
}

/// Repeats `session`'s PATCH of `id` every 100 ms until it succeeds (true) or `limit` passes;
/// anything but 301 meanwhile fails the test.
async fn patch_when_free(session: &Session<'_>, id: i64, note: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let answer = session.patch(id, note, None).await;
        match answer.code() {
            "0" => return true,
            "301" if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            "301" => return false,
            _ => panic!("unexpected answer while waiting: {}", answer.body),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_update_over_a_leased_record_changes_nothing() {
    let (genkan, _sql) = start("").await;
    let door = Door::of(&genkan);
    let alice = Session::login(door, ALICE).await;
    let bob = Session::login(door, BOB).await;
    bob.lock("POST", 2, Some(&json!({}))).await.ok();

    // One batch: the first statement touches only a free record, the second every record.
    let answer = alice
        .sql(json!([
            {"sql": "UPDATE customers SET note = ? WHERE ROWID = ?", "params": ["atomic", 1]},
            {"sql": "UPDATE customers SET note = ?", "params": ["atomic"]},
        ]))
        .await;
    answer.assert_locked(&[2], "bob");
    assert_eq!(alice.notes().await, original_notes());

    // The Data API refuses alice's edit of the record for the same reason.
    alice
        .patch(2, "atomic", None)
        .await
        .assert_locked(&[2], "bob");
    assert_eq!(alice.notes().await, original_notes());

    // Once bob lets go, the same batch goes through: the refusal was the lease's doing.
    bob.lock("DELETE", 2, None).await.ok();
    let answer = alice
        .sql(json!([{"sql": "UPDATE customers SET note = ?", "params": ["atomic"]}]))
        .await;
    assert_eq!(answer.ok()["results"][0]["changes"], 4);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_locked_updates_the_free_records_and_names_the_skipped() {
    let (genkan, _sql) = start("").await;
    let door = Door::of(&genkan);
    let alice = Session::login(door, ALICE).await;
    let bob = Session::login(door, BOB).await;
    let leased: BTreeSet<i64> = [1, 3].into();
    for id in &leased {
        bob.lock("POST", *id, Some(&json!({}))).await.ok();
    }
    let total = alice.query("SELECT count(*) FROM customers").await[0][0]
        .as_u64()
        .unwrap();
    assert_eq!(total, 4);

    let answer = alice
        .sql_mode(json!(["UPDATE customers SET note = 'bulk'"]), "skip_locked")
        .await;
    let result = &answer.ok()["results"][0];
    let skipped = result["skipped"].as_array().unwrap();
    assert_eq!(record_ids(skipped), leased, "{result}");
    for lease in skipped {
        assert_eq!(lease["lockedBy"], "bob", "{result}");
    }
    assert_eq!(
        result["changes"].as_u64(),
        Some(total - leased.len() as u64),
        "{result}"
    );
    let expected: Vec<(i64, String)> = original_notes()
        .into_iter()
        .map(|(id, note)| {
            let note = if leased.contains(&id) {
                note
            } else {
                "bulk".into()
            };
            (id, note)
        })
        .collect();
    assert_eq!(alice.notes().await, expected);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_with_one_leased_record_deletes_nothing() {
    let (genkan, _sql) = start("").await;
    let door = Door::of(&genkan);
    let alice = Session::login(door, ALICE).await;
    let bob = Session::login(door, BOB).await;
    bob.lock("POST", 3, Some(&json!({}))).await.ok();

    alice
        .sql(json!(["TRUNCATE TABLE customers"]))
        .await
        .assert_locked(&[3], "bob");
    assert_eq!(alice.notes().await, original_notes());

    bob.lock("DELETE", 3, None).await.ok();
    alice.sql(json!(["TRUNCATE TABLE customers"])).await.ok();
    assert_eq!(alice.notes().await, Vec::new());
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_for_update_holds_rows_until_commit_or_rollback() {
    let (genkan, _sql) = start("").await;
    let door = Door::of(&genkan);
    let alice = Session::login(door, ALICE).await;
    let bob = Session::login(door, BOB).await;

    let answer = alice
        .sql(json!([
            "BEGIN",
            "SELECT ROWID, name FROM customers WHERE ROWID IN (1, 2) ORDER BY ROWID FOR UPDATE",
        ]))
        .await;
    let response = answer.ok();
    assert_eq!(response["inTransaction"], true, "{response}");
    assert_eq!(
        response["results"][1]["rows"].as_array().map(Vec::len),
        Some(2)
    );
    let taken = response["results"][1]["locked"].as_array().unwrap();
    assert_eq!(record_ids(taken), [1, 2].into(), "{response}");

    // The selected rows refuse bob, by SQL and by the Data API, naming alice.
    bob.sql(json!(["UPDATE customers SET note = 'bob' WHERE ROWID = 1"]))
        .await
        .assert_locked(&[1], "alice");
    bob.patch(2, "bob", None).await.assert_locked(&[2], "alice");
    // Rows alice did not select stay writable.
    let answer = bob
        .sql(json!(["UPDATE customers SET note = 'bob' WHERE ROWID = 3"]))
        .await;
    assert_eq!(answer.ok()["results"][0]["changes"], 1);
    bob.patch(4, "bob", None).await.ok();
    // A FOR UPDATE of bob's (a second session, whose failed transaction is left alone) over
    // an overlapping set fails, names only the conflict, and leaves him nothing.
    let overlapping = json!([
        "BEGIN",
        "SELECT ROWID FROM customers WHERE ROWID IN (2, 3) FOR UPDATE",
    ]);
    Session::login(door, BOB)
        .await
        .sql(overlapping.clone())
        .await
        .assert_locked(&[2], "alice");
    assert_eq!(
        bob.locks().await,
        [(1, "alice".to_owned()), (2, "alice".to_owned())].into()
    );
    let notes = bob.notes().await;
    assert_eq!(notes[0].1, "note-1");
    assert_eq!(notes[1].1, "note-2");

    // COMMIT releases: bob's writes now succeed.
    let answer = alice.sql(json!(["COMMIT"])).await;
    assert_eq!(answer.ok()["inTransaction"], false);
    assert_eq!(bob.locks().await, BTreeSet::new());
    let answer = bob
        .sql(json!(["UPDATE customers SET note = 'bob' WHERE ROWID = 1"]))
        .await;
    assert_eq!(answer.ok()["results"][0]["changes"], 1);
    bob.patch(2, "bob", None).await.ok();
    let later = Session::login(door, BOB).await;
    let answer = later.sql(overlapping).await;
    assert_eq!(
        record_ids(answer.ok()["results"][1]["locked"].as_array().unwrap()),
        [2, 3].into()
    );
    later.sql(json!(["COMMIT"])).await.ok();

    // ROLLBACK releases too, and takes alice's change back.
    alice
        .sql(json!([
            "BEGIN",
            "SELECT ROWID FROM customers WHERE ROWID = 4 FOR UPDATE",
        ]))
        .await
        .ok();
    bob.patch(4, "bob-again", None)
        .await
        .assert_locked(&[4], "alice");
    let answer = alice
        .sql(json!([
            "UPDATE customers SET note = 'alice-rolled-back' WHERE ROWID = 4",
            "ROLLBACK",
        ]))
        .await;
    assert_eq!(answer.ok()["results"][0]["changes"], 1);
    assert_eq!(bob.notes().await[3].1, "bob");
    bob.patch(4, "bob-again", None).await.ok();
    assert_eq!(
        bob.notes().await,
        vec![
            (1, "bob".to_owned()),
            (2, "bob".to_owned()),
            (3, "bob".to_owned()),
            (4, "bob-again".to_owned()),
        ]
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lapses_after_lease_duration() {
    let (genkan, _sql) = start("lease_duration = \"2s\"").await;
    let door = Door::of(&genkan);
    let alice = Session::login(door, ALICE).await;
    let bob = Session::login(door, BOB).await;
    let taken = Instant::now();
    let lease = alice.lock("POST", 1, Some(&json!({}))).await;
    assert_eq!(lease.ok()["lease"]["lockedBy"], "alice");
    bob.patch(1, "bob", None).await.assert_locked(&[1], "alice");

    assert!(
        patch_when_free(&bob, 1, "bob", Duration::from_secs(10)).await,
        "the 2 s lease still blocks bob after 10 s"
    );
    let waited = taken.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "bob got through after {waited:?}, before the lease could lapse"
    );
    assert_eq!(bob.notes().await[0].1, "bob");
    assert_eq!(bob.locks().await, BTreeSet::new());
    genkan.shutdown().await;
}

/// A client in another process: `sh` logs in with curl (`$1` the CA file, `$2` the port, `$3`
/// `user:password`), POSTs `$5` to the path `$4` with the session's token, prints `holding` and
/// the answer, then becomes `sleep` (same pid) until killed.
const HOLDING_CLIENT: &str = r#"
set -e
origin="https://localhost:$2"
tls="--cacert $1 --resolve localhost:$2:127.0.0.1"
token=$(curl --silent --show-error --max-time 10 $tls -H 'content-type: application/json' \
    -u "$3" -X POST -d '{}' "$origin/fmi/data/vLatest/databases/demo/sessions" \
    | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
answer=$(curl --silent --show-error --max-time 10 $tls -H 'content-type: application/json' \
    -H "authorization: Bearer $token" -X POST -d "$5" "$origin$4")
echo "holding $answer"
exec sleep 60
"#;

/// Starts [`HOLDING_CLIENT`] as alice and waits for its answer.
async fn holding_client(
    genkan: &Genkan,
    path: &str,
    body: &Value,
) -> (tokio::process::Child, String) {
    let port = genkan.https.port().to_string();
    let ca = genkan.pki.ca_path.display().to_string();
    let account = format!("{}:{}", ALICE.0, ALICE.1);
    let body = body.to_string();
    let mut client = tokio::process::Command::new("sh")
        .args([
            "-c",
            HOLDING_CLIENT,
            "sh",
            &ca,
            &port,
            &account,
            path,
            &body,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sh and curl run here; scripts/test installs curl");
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(client.stdout.take().unwrap()));
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the client did not report")
        .unwrap()
        .unwrap_or_default();
    let answer = line
        .strip_prefix("holding ")
        .unwrap_or_else(|| panic!("the client failed: {line}"));
    (client, answer.to_owned())
}

/// SIGKILLs a child and waits for it to be gone.
async fn kill(mut child: tokio::process::Child) {
    child.start_kill().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success(), "the client was not killed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_client_does_not_hold_its_lease_forever() {
    let (genkan, _sql) = start("lease_duration = \"2s\"").await;
    let bob = Session::login(Door::of(&genkan), BOB).await;
    let (client, answer) = holding_client(
        &genkan,
        &format!("{DB}/layouts/customers/records/1/lock"),
        &json!({}),
    )
    .await;
    let taken = Instant::now();
    assert!(answer.contains("\"lockedBy\":\"alice\""), "{answer}");
    bob.patch(1, "bob", None).await.assert_locked(&[1], "alice");

    kill(client).await;
    assert!(
        patch_when_free(&bob, 1, "bob", Duration::from_secs(10)).await,
        "the dead client's lease still blocks bob after 10 s"
    );
    assert!(
        taken.elapsed() >= Duration::from_millis(1500),
        "bob got through after {:?}, before the lease could lapse",
        taken.elapsed()
    );
    assert_eq!(bob.notes().await[0].1, "bob");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sql_client_does_not_hold_its_rows_forever() {
    // The FOR UPDATE leases themselves last 5 minutes: the idle rollback is what frees them.
    let (genkan, _sql) = start("transaction_idle_timeout = \"2s\"").await;
    let bob = Session::login(Door::of(&genkan), BOB).await;
    let (client, answer) = holding_client(
        &genkan,
        "/api/sql",
        &json!({"statements": ["BEGIN", "SELECT ROWID FROM customers WHERE ROWID = 2 FOR UPDATE"]}),
    )
    .await;
    let taken = Instant::now();
    assert!(answer.contains("\"inTransaction\":true"), "{answer}");
    bob.patch(2, "bob", None).await.assert_locked(&[2], "alice");

    kill(client).await;
    assert!(
        patch_when_free(&bob, 2, "bob", Duration::from_secs(15)).await,
        "the dead client's FOR UPDATE still blocks bob after 15 s"
    );
    assert!(
        taken.elapsed() >= Duration::from_millis(1500),
        "bob got through after {:?}, before the transaction could be idle",
        taken.elapsed()
    );
    assert_eq!(bob.notes().await[1].1, "bob");
    assert_eq!(bob.locks().await, BTreeSet::new());
    genkan.shutdown().await;
}

/// A `genkan serve` process on ephemeral loopback ports, killed when dropped.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    fn start(dir: &Path, config: &Path) -> Self {
        let mut child = Command::new(GENKAN)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .env("GENKAN_LISTEN_HTTPS", "127.0.0.1:0")
            .env("GENKAN_LISTEN_HTTP", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("genkan-stderr.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        // Reads standard output to the end so that the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let first = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "genkan printed nothing: {}",
                    std::fs::read_to_string(dir.join("genkan-stderr.log")).unwrap_or_default()
                )
            });
        let port: u16 = first
            .strip_prefix("genkan is serving https://localhost:")
            .and_then(|rest| rest.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"));
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    fn kill(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "genkan was not killed: {status}");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_keeps_no_partial_write_and_no_lease() {
    let dir = TempDir::new("records-kill");
    let pki = TestPki::new(&dir.0, "records");
    let sql = dir.0.join("setup.sql");
    std::fs::write(&sql, SETUP_SQL).unwrap();
    let config = dir.0.join("genkan.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n{}\
             [[policy.rule]]\nname = \"tests-everyone\"\n[policy.rule.allow]\neveryone = true\n",
            pki.cert_path.display(),
            pki.key_path.display(),
            records_config(&sql, ""),
        ),
    )
    .unwrap();

    let first = Process::start(&dir.0, &config);
    let door = Door {
        pki: &pki,
        addr: first.addr,
    };
    let alice = Session::login(door, ALICE).await;
    let bob = Session::login(door, BOB).await;
    // A committed change, which must survive the kill (the restart opens the same file).
    bob.patch(3, "committed", None).await.ok();
    let answer = alice
        .sql(json!([
            "BEGIN",
            "SELECT ROWID FROM customers WHERE ROWID IN (1, 2) FOR UPDATE",
            "UPDATE customers SET note = 'uncommitted' WHERE ROWID = 1",
            // About 10 MB more than SQLite's page cache holds, so the uncommitted pages reach
            // the WAL file and recovery (not the cache dying with the process) keeps them out.
            "INSERT INTO contacts (customer_id, topic) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL \
             SELECT i + 1 FROM n WHERE i < 5000) SELECT 1, hex(randomblob(1000)) FROM n",
        ]))
        .await;
    let response = answer.ok();
    assert_eq!(response["inTransaction"], true, "{response}");
    assert_eq!(response["results"][2]["changes"], 1, "{response}");
    assert_eq!(response["results"][3]["changes"], 5000, "{response}");
    let wal = dir.0.join("data/records/demo.sqlite-wal");
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |meta| meta.len());
    assert!(
        wal_bytes > 4_000_000,
        "the uncommitted pages did not reach {} ({wal_bytes} bytes)",
        wal.display()
    );
    // Nobody else sees the change (the Data API reads committed data), and the rows are alice's.
    assert_eq!(bob.record(1).await["fieldData"]["note"], "note-1");
    assert_eq!(
        bob.locks().await,
        [(1, "alice".to_owned()), (2, "alice".to_owned())].into()
    );
    first.kill();

    let second = Process::start(&dir.0, &config);
    let door = Door {
        pki: &pki,
        addr: second.addr,
    };
    let bob = Session::login(door, BOB).await;
    let mut expected = original_notes();
    expected[2].1 = "committed".to_owned();
    assert_eq!(bob.notes().await, expected);
    assert_eq!(
        bob.query("SELECT count(*) FROM contacts").await,
        vec![vec![json!(1)]]
    );
    assert_eq!(bob.locks().await, BTreeSet::new());
    let answer = bob
        .sql(json!(["UPDATE customers SET note = 'bob' WHERE ROWID = 1"]))
        .await;
    assert_eq!(answer.ok()["results"][0]["changes"], 1);
    bob.patch(2, "bob", None).await.ok();
    let notes = bob.notes().await;
    assert_eq!(notes[0].1, "bob");
    assert_eq!(notes[1].1, "bob");
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mod_id_refuses_stale_edits_and_grows_with_sql() {
    let (genkan, _sql) = start("").await;
    let door = Door::of(&genkan);
    let alice = Session::login(door, ALICE).await;
    let bob = Session::login(door, BOB).await;
    let mod_id = |record: &Value| -> i64 {
        record["modId"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("modId is not a number in text: {record}"))
    };
    let start = mod_id(&alice.record(1).await);

    let answer = alice.patch(1, "first", Some(&start.to_string())).await;
    let after_patch: i64 = answer.ok()["modId"].as_str().unwrap().parse().unwrap();
    assert_eq!(after_patch, start + 1);

    // bob still has the old modId: refused, and the record stays as alice left it.
    let answer = bob.patch(1, "stale", Some(&start.to_string())).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "306"),
        "{}",
        answer.body
    );
    let record = bob.record(1).await;
    assert_eq!(record["fieldData"]["note"], "first");
    assert_eq!(mod_id(&record), after_patch);

    // An SQL UPDATE raises ROWMODID by one, and the Data API shows the same number.
    let answer = alice
        .sql(json!(["UPDATE customers SET note = 'sql' WHERE ROWID = 1"]))
        .await;
    assert_eq!(answer.ok()["results"][0]["changes"], 1);
    let sql_mod_id = alice
        .query("SELECT ROWMODID FROM customers WHERE ROWID = 1")
        .await[0][0]
        .as_i64()
        .unwrap();
    assert_eq!(sql_mod_id, after_patch + 1);
    let record = bob.record(1).await;
    assert_eq!(record["fieldData"]["note"], "sql");
    assert_eq!(mod_id(&record), sql_mod_id);
    // The modId from before the SQL change is stale now; the current one is accepted.
    let answer = bob.patch(1, "stale", Some(&after_patch.to_string())).await;
    assert_eq!(answer.code(), "306", "{}", answer.body);
    bob.patch(1, "bob", Some(&sql_mod_id.to_string()))
        .await
        .ok();
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_endpoints_show_release_and_take_over() {
    let (genkan, _sql) = start("").await;
    let door = Door::of(&genkan);
    let alice = Session::login(door, ALICE).await;
    let bob = Session::login(door, BOB).await;
    let boss = Session::login(door, BOSS).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    alice.lock("POST", 1, Some(&json!({}))).await.ok();

    let shown = bob.lock("GET", 1, None).await;
    let lease = &shown.ok()["lease"];
    assert_eq!(lease["lockedBy"], "alice", "{lease}");
    assert_eq!(lease["recordId"], "1", "{lease}");
    let since = chrono::DateTime::parse_from_rfc3339(lease["since"].as_str().unwrap_or(""))
        .unwrap_or_else(|error| panic!("since is not RFC 3339 ({error}): {lease}"));
    assert!(
        since >= before && since <= chrono::Utc::now() + chrono::Duration::seconds(2),
        "{lease}"
    );
    let held_by = |answer: &Answer| answer.ok()["lease"]["lockedBy"].as_str().map(str::to_owned);

    // bob cannot release or take alice's lock.
    let answer = bob.lock("DELETE", 1, None).await;
    assert_eq!(answer.code(), "301", "{}", answer.body);
    bob.lock("POST", 1, Some(&json!({})))
        .await
        .assert_locked(&[1], "alice");
    let answer = bob.lock("POST", 1, Some(&json!({"takeOver": true}))).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::FORBIDDEN, "9"),
        "{}",
        answer.body
    );
    assert_eq!(
        held_by(&bob.lock("GET", 1, None).await).as_deref(),
        Some("alice")
    );

    // The administrator takes it over and is told whose it was.
    let answer = boss.lock("POST", 1, Some(&json!({"takeOver": true}))).await;
    let response = answer.ok();
    assert_eq!(response["previous"]["lockedBy"], "alice", "{response}");
    assert_eq!(response["lease"]["lockedBy"], "boss", "{response}");
    assert_eq!(bob.locks().await, [(1, "boss".to_owned())].into());
    alice
        .patch(1, "alice", None)
        .await
        .assert_locked(&[1], "boss");
    let answer = alice.lock("DELETE", 1, None).await;
    assert_eq!(answer.code(), "301", "{}", answer.body);

    boss.lock("DELETE", 1, None).await.ok();
    assert_eq!(bob.lock("GET", 1, None).await.ok()["lease"], Value::Null);
    alice.patch(1, "alice", None).await.ok();
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_select_reads_committed_data_during_another_sessions_write() {
    let (genkan, _sql) = start("").await;
    let door = Door::of(&genkan);
    let alice = Session::login(door, ALICE).await;
    let bob = Session::login(door, BOB).await;
    let answer = alice
        .sql(json!([
            "BEGIN",
            "UPDATE customers SET note = 'uncommitted' WHERE ROWID = 1",
        ]))
        .await;
    assert_eq!(answer.ok()["inTransaction"], true);
    // The Data API reads committed data meanwhile, and so does a plain SELECT over SQL: it
    // runs on a reader and does not wait for the writer alice's transaction holds.
    assert_eq!(bob.record(1).await["fieldData"]["note"], "note-1");
    let answer = bob
        .sql(json!(["SELECT note FROM customers WHERE ROWID = 1"]))
        .await;
    assert_eq!(answer.ok()["results"][0]["rows"], json!([["note-1"]]));
    alice.sql(json!(["ROLLBACK"])).await.ok();
    assert_eq!(bob.notes().await, original_notes());
    genkan.shutdown().await;
}
