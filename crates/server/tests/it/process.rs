//! The `genkan` binary as an operator meets it: no-config start, config checks, signals,
//! systemd readiness and the service unit.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;

use crate::harness::{TempDir, TestPki, eventually, request, run_tool, send_https};

const GENKAN: &str = env!("CARGO_BIN_EXE_genkan");

/// A genkan process, killed if the test ends early.
struct Process {
    child: Child,
    https_port: u16,
    lines: std::sync::mpsc::Receiver<String>,
    stderr_path: std::path::PathBuf,
}

impl Process {
    /// Starts `genkan serve` in `dir` and waits for its "serving" line to learn the port.
    fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(GENKAN);
        command
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .env("GENKAN_LISTEN_HTTPS", "127.0.0.1:0")
            .env("GENKAN_LISTEN_HTTP", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("genkan-stderr.log")).unwrap())
            .stdin(Stdio::null());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let first = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("genkan printed nothing");
        let port = first
            .strip_prefix("genkan is serving https://localhost:")
            .and_then(|rest| rest.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"));
        Self {
            child,
            https_port: port,
            lines: receiver,
            stderr_path: dir.join("genkan-stderr.log"),
        }
    }

    /// Standard output printed after the first line (until `quiet` passes without a line), and
    /// the diagnostic log so far.
    fn rest_of_output(&self, quiet: Duration) -> (String, String) {
        let mut out = String::new();
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            out.push_str(&line);
            out.push('\n');
        }
        (
            out,
            std::fs::read_to_string(&self.stderr_path).unwrap_or_default(),
        )
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "genkan did not exit within {limit:?}"
            );
            std::thread::yield_now();
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_config_makes_a_working_data_directory() {
    let dir = TempDir::new("noconfig");
    let process = Process::start(&dir.0, &[], &[]);
    let url = format!("https://localhost:{}/_genkan/health", process.https_port);
    let resolve = format!("localhost:{}:127.0.0.1", process.https_port);
    let cert = dir.0.join("data/tls/self-signed.crt").display().to_string();
    // The self-signed certificate is its own trust anchor.
    let (ok, output) = run_tool(
        "curl",
        &[
            "--silent",
            "--show-error",
            "--cacert",
            &cert,
            "--resolve",
            &resolve,
            &url,
        ],
        Duration::from_secs(20),
    )
    .await;
    assert!(ok, "{output}");
    assert_eq!(output.trim(), "{\"status\":\"ok\"}");
    for file in [
        "data/genkan.db",
        "data/tls/self-signed.key",
        "data/logs/access.log",
    ] {
        assert!(dir.0.join(file).exists(), "{file} missing");
    }
    process.signal("TERM");
    assert!(process.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn check_config_names_the_bad_key_and_fails() {
    let dir = TempDir::new("check");
    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "listen_https = \"0.0.0.0:443\"\n[[route]]\nupstream = \"http://127.0.0.1:8080\"\nproxy_pass = \"x\"\n").unwrap();
    let output = Command::new(GENKAN)
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("proxy_pass"), "{stderr}");

    let wrong = dir.0.join("wrong.toml");
    std::fs::write(&wrong, "listen_https = \"443\"\n").unwrap();
    let output = Command::new(GENKAN)
        .args(["check-config"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen_https"));

    let good = dir.0.join("good.toml");
    std::fs::write(&good, "[[route]]\nupstream = \"http://127.0.0.1:8080\"\n").unwrap();
    let output = Command::new(GENKAN)
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_and_sigusr1_reopens_the_access_log() {
    let dir = TempDir::new("signals");
    let first = TestPki::new(&dir.0, "first");
    let config = dir.0.join("genkan.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
            first.cert_path.display(),
            first.key_path.display()
        ),
    )
    .unwrap();
    let process = Process::start(&dir.0, &["--config", config.to_str().unwrap()], &[]);
    let addr = format!("127.0.0.1:{}", process.https_port).parse().unwrap();
    let get = || {
        request("GET", "/_genkan/health")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    assert_eq!(
        send_https(&first, addr, get()).await.status(),
        StatusCode::OK
    );

    let second = TestPki::new(&dir.0, "second");
    std::fs::copy(&second.cert_path, &first.cert_path).unwrap();
    std::fs::copy(&second.key_path, &first.key_path).unwrap();
    process.signal("HUP");
    let mut swapped = false;
    for _ in 0..200 {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        if second
            .connector(&[b"http/1.1"])
            .connect(name, tcp)
            .await
            .is_ok()
        {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        swapped,
        "the new certificate was not presented after SIGHUP"
    );

    let log = dir.0.join("data/logs/access.log");
    let rotated = dir.0.join("data/logs/access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    process.signal("USR1");
    let reopened = eventually(Duration::from_secs(5), || log.exists()).await;
    assert!(reopened, "SIGUSR1 did not reopen the access log");
    assert_eq!(
        send_https(&second, addr, get()).await.status(),
        StatusCode::OK
    );
    let logged = eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .is_ok_and(|text| text.contains("\"GET /_genkan/health HTTP/1.1\" 200"))
    })
    .await;
    assert!(logged, "no line in the reopened log");
    process.signal("TERM");
    assert!(process.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_and_stopping() {
    let dir = TempDir::new("notify");
    let socket_path = dir.0.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let process = Process::start(
        &dir.0,
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut buffer = [0u8; 512];
    let n = socket.recv(&mut buffer).unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).contains("READY=1"));
    process.signal("TERM");
    let n = socket.recv(&mut buffer).unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).contains("STOPPING=1"));
    assert!(process.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn service_install_writes_a_hardened_notify_unit() {
    let dir = TempDir::new("unit");
    let config = dir.0.join("genkan.toml");
    std::fs::write(&config, "data_dir = \"/var/lib/genkan\"\n").unwrap();
    let output = Command::new(GENKAN)
        .args(["service", "install", "--unit-dir"])
        .arg(&dir.0)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let unit = std::fs::read_to_string(dir.0.join("genkan.service")).unwrap();
    assert!(unit.contains("Type=notify\n"), "{unit}");
    assert!(
        unit.contains(&format!("serve --config {}\n", config.display())),
        "{unit}"
    );
    assert!(unit.contains("StateDirectory=genkan\n"), "{unit}");
}

#[test]
fn policy_test_explains_the_contractor_rule() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies.toml");
    let ask = |from: &str, at: &str| {
        let output = Command::new(GENKAN)
            .args([
                "policy",
                "test",
                "--config",
                examples,
                "--user",
                "suzuki",
                "--group",
                "contractor",
            ])
            .args(["--path", "/fmi/iwp", "--from", from, "--at", at])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let inside = ask("203.0.113.10", "2026-12-03T17:59:00+09:00");
    assert_eq!(inside.lines().next(), Some("allow"), "{inside}");
    assert!(
        inside.contains("rule: contractors-weekday-office-hours"),
        "{inside}"
    );
    for (from, at, why) in [
        ("203.0.113.10", "2026-12-03T18:01:00+09:00", "it is 18:01"),
        (
            "203.0.113.10",
            "2026-12-05T10:00:00+09:00",
            "it is Saturday",
        ),
        (
            "198.51.100.1",
            "2026-12-03T10:00:00+09:00",
            "came from 198.51.100.1",
        ),
    ] {
        let answer = ask(from, at);
        assert_eq!(answer.lines().next(), Some("deny"), "{answer}");
        assert!(answer.contains(why), "{answer}");
    }
}

fn genkan(dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(GENKAN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn accounts_are_managed_from_the_command_line_and_audited() {
    let dir = TempDir::new("accounts");
    let (ok, out, err) = genkan(
        &dir.0,
        &["user", "add", "suzuki", "--group", "contractor"],
        None,
    );
    assert!(ok, "{err}");
    let password = out
        .lines()
        .find_map(|line| line.strip_prefix("one-time password: "))
        .unwrap();
    assert_eq!(password.len(), 20);
    let (ok, _, err) = genkan(
        &dir.0,
        &[
            "user",
            "add",
            "tanaka",
            "--group",
            "admin",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = genkan(
        &dir.0,
        &["user", "add", "short", "--password-stdin"],
        Some("tiny\n"),
    );
    assert!(!ok && err.contains("too short"), "{err}");
    let (ok, _, err) = genkan(&dir.0, &["user", "add", "Suzuki"], None);
    assert!(!ok && err.contains("not a valid user name"), "{err}");
    let (ok, _, err) = genkan(&dir.0, &["user", "add", "suzuki"], None);
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, _, err) = genkan(&dir.0, &["group", "add", "accounting"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = genkan(&dir.0, &["group", "member", "accounting", "suzuki"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = genkan(&dir.0, &["user", "disable", "tanaka"], None);
    assert!(!ok && err.contains("last enabled administrator"), "{err}");
    let (ok, _, err) = genkan(&dir.0, &["user", "disable", "suzuki"], None);
    assert!(ok, "{err}");
    let (_, list, _) = genkan(&dir.0, &["user", "list"], None);
    assert_eq!(
        list,
        "suzuki (disabled)\taccounting,contractor\ntanaka\tadmin\n"
    );

    let (ok, audit, err) = genkan(&dir.0, &["audit"], None);
    assert!(ok, "{err}");
    let kinds: Vec<String> = audit
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "user_added",
            "user_added",
            "group_added",
            "member_added",
            "user_disabled"
        ]
    );
    assert!(
        !audit.contains(password),
        "a password reached the audit trail"
    );
    let (_, later, _) = genkan(&dir.0, &["audit", "--since", "2999-01-01T00:00:00Z"], None);
    assert!(later.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_the_admin_password_once() {
    let dir = TempDir::new("bootstrap");
    let first = Process::start(&dir.0, &[], &[]);
    let (printed, stderr_log) = first.rest_of_output(Duration::from_secs(2));
    let password = printed
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("one-time password:")
                .map(|p| p.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no password printed:\n{printed}"));
    assert_eq!(password.len(), 20);
    assert!(
        !stderr_log.contains(&password),
        "the password reached the log"
    );
    first.signal("TERM");
    assert!(first.wait_exit(Duration::from_secs(20)).success());

    let second = Process::start(&dir.0, &[], &[]);
    let (printed, _) = second.rest_of_output(Duration::from_secs(2));
    assert!(
        !printed.contains("one-time password"),
        "printed again:\n{printed}"
    );
    second.signal("TERM");
    assert!(second.wait_exit(Duration::from_secs(20)).success());
    let (_, users, _) = genkan(&dir.0, &["user", "list"], None);
    assert_eq!(users, "admin\tadmin\n");
}
