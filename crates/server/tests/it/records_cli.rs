//! `genkan sql`, `genkan import` and `genkan export` as an operator runs them: the real binary,
//! against a running server over HTTPS with the test CA, the password in `GENKAN_PASSWORD`.
//! What they print and their exit statuses are checked, and what they changed is read back with
//! the binary itself.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::harness::Genkan;
use crate::records::{ALICE, start};

const GENKAN: &str = env!("CARGO_BIN_EXE_genkan");

/// Runs `genkan ARGS… --url … --cacert … --user alice` with `stdin`, within 60 s.
async fn genkan(genkan: &Genkan, args: &[&str], stdin: &[u8]) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(GENKAN);
    command
        .args(args)
        .arg("--url")
        .arg(format!("https://127.0.0.1:{}", genkan.https.port()))
        .arg("--cacert")
        .arg(&genkan.pki.ca_path)
        .args(["--user", ALICE.0])
        .env("GENKAN_PASSWORD", ALICE.1)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("genkan {args:?} did not finish within 60 s"))
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a query with `genkan sql` from standard input and returns what it printed.
async fn query(server: &Genkan, sql: &str) -> String {
    let output = genkan(server, &["sql"], sql.as_bytes()).await;
    assert!(
        output.status.success(),
        "genkan sql failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_script_is_one_transaction_and_its_failure_names_the_line() {
    let (server, dir) = start("").await;
    let good = write(
        &dir.0,
        "good.sql",
        "-- a comment; with a semicolon\n\
         INSERT INTO customers (name, note) VALUES ('伊藤; 三郎', 'cli');\n\
         UPDATE customers SET assigned_agent = 'kato' WHERE note = 'cli';\n\
         SELECT name, assigned_agent FROM customers WHERE note = 'cli';\n",
    );
    let output = genkan(&server, &["sql", &good], b"").await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("伊藤; 三郎"), "{stdout}");
    assert!(stdout.contains("kato"), "{stdout}");
    assert!(stdout.contains("(1 row)"), "{stdout}");

    // Line 3 fails: line 2's insert must not stay.
    let bad = write(
        &dir.0,
        "bad.sql",
        "INSERT INTO customers (name, note) VALUES ('half', 'half');\n\n\
         UPDATE no_such_table SET x = 1;\n",
    );
    let output = genkan(&server, &["sql", &bad], b"").await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("no_such_table"), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    let counted = query(
        &server,
        "SELECT count(*) AS n FROM customers WHERE note = 'half'",
    )
    .await;
    assert!(counted.lines().any(|line| line.trim() == "0"), "{counted}");

    // A wrong password is refused with the server's words, before any SQL runs.
    let mut command = std::process::Command::new(GENKAN);
    let refused = command
        .args(["sql", &good, "--url"])
        .arg(format!("https://127.0.0.1:{}", server.https.port()))
        .arg("--cacert")
        .arg(&server.pki.ca_path)
        .args(["--user", ALICE.0])
        .env("GENKAN_PASSWORD", "not-the-password")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("could not log in"),
        "{}",
        text(&refused.stderr)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_all_or_nothing_and_names_bad_lines() {
    let (server, dir) = start("").await;
    // Line 3 has a field too many; line 4's quoted comma is one field.
    let csv = write(
        &dir.0,
        "people.csv",
        "name,phone,note\n\
         山田 太郎,+81300000001,import\n\
         木村 花,+81300000002,import,extra\n\
         \"Ono, Aiko\",+81300000003,import\n",
    );
    let output = genkan(&server, &["import", &csv, "--table", "customers"], b"").await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    let none = query(
        &server,
        "SELECT count(*) AS n FROM customers WHERE note = 'import'",
    )
    .await;
    assert!(none.lines().any(|line| line.trim() == "0"), "{none}");

    // With --keep-going the good rows go in, the bad line is named, the exit status is 3.
    let output = genkan(
        &server,
        &["import", &csv, "--table", "customers", "--keep-going"],
        b"",
    )
    .await;
    let stderr = text(&output.stderr);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stdout.contains("imported 2 rows"), "{stdout}");
    assert!(stdout.contains("line 3"), "{stdout}");
    let two = query(
        &server,
        "SELECT name FROM customers WHERE note = 'import' ORDER BY name",
    )
    .await;
    assert!(
        two.contains("Ono, Aiko") && two.contains("山田 太郎"),
        "{two}"
    );
    assert!(!two.contains("木村"), "{two}");

    // A row the database refuses (recordId 1 exists) stops a plain import with nothing kept.
    let clash = write(
        &dir.0,
        "clash.csv",
        "recordId,name,note\n900,新規,clash\n1,重複,clash\n",
    );
    let output = genkan(&server, &["import", &clash, "--table", "customers"], b"").await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    let kept = query(
        &server,
        "SELECT count(*) AS n FROM customers WHERE note = 'clash'",
    )
    .await;
    assert!(kept.lines().any(|line| line.trim() == "0"), "{kept}");

    // An unknown column is named before anything is sent.
    let unknown = write(&dir.0, "unknown.csv", "name,fax\nA,1\n");
    let output = genkan(&server, &["import", &unknown, "--table", "customers"], b"").await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("`fax`"),
        "{}",
        text(&output.stderr)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_every_row_with_its_record_id_and_import_takes_it_back() {
    let (server, dir) = start("").await;
    // More rows than one page of the export (5,000), so paging is exercised.
    let mut script = String::from("INSERT INTO customers (name, note) VALUES ");
    let rows: Vec<String> = (0..6_000)
        .map(|index| format!("('bulk {index}', 'line\nbreak, \"quoted\"')"))
        .collect();
    script.push_str(&rows.join(", "));
    script.push_str(";\n");
    let bulk = write(&dir.0, "bulk.sql", &script);
    let output = genkan(&server, &["sql", &bulk], b"").await;
    assert!(output.status.success(), "{}", text(&output.stderr));

    let out = dir.0.join("customers.csv");
    let output = genkan(
        &server,
        &[
            "export",
            "--table",
            "customers",
            "--output",
            out.to_str().unwrap(),
        ],
        b"",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("exported 6004 rows"),
        "{}",
        text(&output.stderr)
    );
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "recordId",
            "name",
            "phone",
            "email",
            "assigned_agent",
            "note"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 6004);
    assert_eq!(&records[0][0], "1");
    assert_eq!(&records[0][1], "佐藤 花子");
    assert_eq!(&records[6003][1], "bulk 5999");
    assert_eq!(&records[6003][5], "line\nbreak, \"quoted\"");
    let ids: Vec<i64> = records.iter().map(|row| row[0].parse().unwrap()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids in order");
    // No temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Empty the table and import the export: the records come back under their old ids.
    let output = genkan(&server, &["sql"], b"DELETE FROM customers;").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = genkan(
        &server,
        &["import", out.to_str().unwrap(), "--table", "customers"],
        b"",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("imported 6004 rows"),
        "{}",
        text(&output.stdout)
    );
    let back = query(
        &server,
        "SELECT ROWID, name FROM customers WHERE ROWID IN (1, 6004) ORDER BY ROWID",
    )
    .await;
    assert!(
        back.contains("佐藤 花子") && back.contains("bulk 5999"),
        "{back}"
    );

    // To standard output with a byte-order mark, for Excel.
    let output = genkan(&server, &["export", "--table", "contacts", "--bom"], b"").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        output
            .stdout
            .starts_with(b"\xEF\xBB\xBFrecordId,customer_id")
    );
    assert!(text(&output.stdout).contains("請求について"));

    // A table that does not exist is an error naming it, and no file appears.
    let missing = dir.0.join("missing.csv");
    let output = genkan(
        &server,
        &[
            "export",
            "--table",
            "nope",
            "--output",
            missing.to_str().unwrap(),
        ],
        b"",
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("nope"),
        "{}",
        text(&output.stderr)
    );
    assert!(!missing.exists());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_runs_each_statement_as_it_ends_and_rolls_back_what_is_left_open() {
    use tokio::io::AsyncWriteExt;
    let (server, _dir) = start("").await;
    // `script` gives genkan a terminal, as an operator's shell does; without one, `genkan sql`
    // would read standard input as a script instead of prompting.
    let command_line = format!(
        "{GENKAN} sql --url https://127.0.0.1:{} --cacert {} --user {}",
        server.https.port(),
        server.pki.ca_path.display(),
        ALICE.0
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &command_line, "/dev/null"])
        .env("GENKAN_PASSWORD", ALICE.1)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("script (util-linux) runs");
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(
            "SELECT name\n  FROM customers WHERE ROWID = 1;\n\
             BEGIN;\n\
             UPDATE customers SET note = 'prompt' WHERE ROWID = 2;\n\
             SELECT nonsense FROM customers;\n\
             \\q\n"
                .as_bytes(),
        )
        .await
        .unwrap();
    // Standard input stays open until genkan has quit on `\q` by itself.
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the prompt did not quit within 60 s")
        .unwrap();
    drop(input);
    let shown = text(&output.stdout);
    assert!(output.status.success(), "{shown}{}", text(&output.stderr));
    assert!(shown.contains("database demo"), "{shown}");
    assert!(shown.contains("佐藤 花子"), "{shown}");
    assert!(
        shown.contains("demo=*>"),
        "the prompt shows the open transaction: {shown}"
    );
    assert!(shown.contains("changes: 1"), "{shown}");
    assert!(
        shown.contains("nonsense"),
        "the error names the column: {shown}"
    );
    assert!(
        shown.contains("the open transaction was rolled back"),
        "{shown}"
    );
    let note = query(&server, "SELECT note FROM customers WHERE ROWID = 2").await;
    assert!(
        note.contains("note-2") && !note.contains("prompt"),
        "{note}"
    );
    server.shutdown().await;
}
