//! Alert e-mail the way an office mail server takes it: STARTTLS required, AUTH required and
//! offered only after STARTTLS, the server's certificate from the company's own CA
//! (`smtp_ca_file`). The server is Debian's aiosmtpd driven by a small script, which prints
//! what it received and whether the session was encrypted and authenticated.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;

use crate::harness::{TempDir, TestPki};

const SERVER: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, user, password = sys.argv[1:6]

class Printer:
    async def handle_DATA(self, server, session, envelope):
        print("SESSION tls=%s authenticated=%s" % (session.ssl is not None, session.authenticated), flush=True)
        print(envelope.content.decode("utf-8", "replace"), flush=True)
        print("END OF MESSAGE", flush=True)
        return "250 OK"

def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
    return AuthResult(success=ok)

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(Printer(), hostname="127.0.0.1", port=int(port), tls_context=context,
                        require_starttls=True, auth_required=True, auth_require_tls=True,
                        authenticator=check)
controller.start()
print("READY", flush=True)
while True:
    time.sleep(3600)
"#;

struct MailServer {
    port: u16,
    received: Arc<Mutex<String>>,
    _child: tokio::process::Child,
}

async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

impl MailServer {
    async fn start(dir: &TempDir, pki: &TestPki) -> Self {
        let script = dir.0.join("smtp_server.py");
        std::fs::write(&script, SERVER).unwrap();
        let port = free_port().await;
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .arg("-u")
            .arg(&script)
            .arg(port.to_string())
            .arg(&pki.cert_path)
            .arg(&pki.key_path)
            .args(["alerts", "mail-password-0123"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3-aiosmtpd is needed (scripts/test installs it)");
        let received = Arc::new(Mutex::new(String::new()));
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let sink = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let ready = async {
            while !received.lock().unwrap().contains("READY")
                || TcpStream::connect(("127.0.0.1", port)).await.is_err()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("the SMTP server did not start within 20 s");
        Self {
            port,
            received,
            _child: child,
        }
    }

    async fn wait_for(&self, text: &str) -> String {
        let wait = async {
            loop {
                let received = self.received.lock().unwrap().clone();
                if received.contains(text) {
                    return received;
                }
                drop(received);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no {text:?} from the SMTP server within 15 s; it printed:\n{}",
                    self.received.lock().unwrap()
                )
            })
    }
}

/// A configuration whose `[alerts]` names this server; `extra` goes into the section.
fn alerts_config(dir: &TempDir, port: u16, extra: &str) -> Result<server::config::Config, String> {
    let path = dir.0.join("genkan.toml");
    std::fs::write(
        &path,
        format!(
            "version = 1\ndata_dir = \"data\"\n\n[alerts]\nsmtp_host = \"localhost\"\nsmtp_port = {port}\n\
             mail_from = \"genkan <genkan@example.jp>\"\nmail_to = [\"security@example.jp\"]\n{extra}"
        ),
    )
    .unwrap();
    server::config::Config::load(&path).map_err(|error| error.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_mail_goes_over_starttls_with_auth_to_a_server_of_the_companys_own_ca() {
    let dir = TempDir::new("alerts-smtp");
    let pki = TestPki::new(&dir.0, "localhost");
    let mail = MailServer::start(&dir, &pki).await;
    std::fs::write(dir.0.join("smtp-password"), "mail-password-0123\n").unwrap();
    let ca = pki.ca_path.display().to_string();

    // Right password, the company's CA trusted: delivered, encrypted and authenticated.
    let config = alerts_config(
        &dir,
        mail.port,
        &format!(
            "smtp_user = \"alerts\"\nsmtp_password_file = \"smtp-password\"\nsmtp_ca_file = \"{ca}\"\n"
        ),
    )
    .unwrap();
    let smtp = config.alerts.smtp.clone().expect("smtp settings");
    server::alerts::send_message(&smtp, "ウイルス検出 / virus found", "EICAR on PC-042")
        .await
        .expect("the message is accepted");
    let received = mail.wait_for("END OF MESSAGE").await;
    assert!(
        received.contains("SESSION tls=True authenticated=True"),
        "{received}"
    );
    assert!(received.contains("To: security@example.jp"), "{received}");

    // Without the company's CA the server's certificate is not trusted: nothing is sent.
    let config = alerts_config(
        &dir,
        mail.port,
        "smtp_user = \"alerts\"\nsmtp_password_file = \"smtp-password\"\n",
    )
    .unwrap();
    let error = server::alerts::send_message(&config.alerts.smtp.unwrap(), "x", "y")
        .await
        .expect_err("an untrusted certificate refuses the connection");
    assert!(error.contains("SMTP localhost"), "{error}");

    // A wrong password is refused by the server, and the error does not carry it.
    std::fs::write(dir.0.join("smtp-password"), "wrong-password\n").unwrap();
    let config = alerts_config(
        &dir,
        mail.port,
        &format!(
            "smtp_user = \"alerts\"\nsmtp_password_file = \"smtp-password\"\nsmtp_ca_file = \"{ca}\"\n"
        ),
    )
    .unwrap();
    let error = server::alerts::send_message(&config.alerts.smtp.unwrap(), "x", "y")
        .await
        .expect_err("a wrong password is refused");
    assert!(!error.contains("wrong-password"), "{error}");
    assert_eq!(
        mail.received
            .lock()
            .unwrap()
            .matches("END OF MESSAGE")
            .count(),
        1,
        "only the first message arrived"
    );

    // A password is never configured to travel in the clear.
    let refused = alerts_config(
        &dir,
        mail.port,
        "smtp_starttls = false\nsmtp_user = \"alerts\"\nsmtp_password = \"x\"\n",
    )
    .expect_err("AUTH without STARTTLS is a configuration error");
    assert!(refused.contains("alerts.smtp_user"), "{refused}");
}
