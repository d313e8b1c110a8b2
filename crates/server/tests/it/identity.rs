//! The gate in front of every app: sign-in, sessions, CSRF, lockout, policy refusals and the
//! audit trail, through the real gateway over TLS.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;

use crate::harness::{Genkan, eventually, request, send_https};
use crate::upstream::Iis6;

pub const GENKAN: &str = env!("CARGO_BIN_EXE_genkan");
pub const PASSWORD: &str = "a long enough password";

/// A client that keeps cookies like a browser (per name, last value wins).
pub struct Browser<'a> {
    genkan: &'a Genkan,
    pub cookies: BTreeMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(genkan: &'a Genkan) -> Self {
        Self {
            genkan,
            cookies: BTreeMap::new(),
        }
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&str>,
    ) -> http::Response<Bytes> {
        let mut builder = request(method, path).header("accept", "text/html");
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            builder = builder.header("cookie", jar.join("; "));
        }
        let body = match form {
            Some(form) => {
                builder = builder.header("content-type", "application/x-www-form-urlencoded");
                Bytes::from(form.to_owned())
            }
            None => Bytes::new(),
        };
        let response = send_https(
            &self.genkan.pki,
            self.genkan.https,
            builder.body(Full::new(body)).unwrap(),
        )
        .await;
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            assert!(
                attributes.contains("Secure") && attributes.contains("HttpOnly"),
                "weak cookie: {text}"
            );
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        response
    }

    /// The value of a hidden form field of a page.
    pub fn field(page: &http::Response<Bytes>, name: &str) -> String {
        let text = String::from_utf8_lossy(page.body());
        let marker = format!("name=\"{name}\" value=\"");
        let Some(at) = text.find(&marker) else {
            panic!("no {name} field in a {} page: {text}", page.status());
        };
        text[at + marker.len()..]
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    }

    /// The hidden `csrf` value of a form page.
    pub fn csrf(page: &http::Response<Bytes>) -> String {
        Self::field(page, "csrf")
    }

    pub async fn sign_in(&mut self, user: &str, password: &str) -> http::Response<Bytes> {
        let form_page = self.send("GET", "/_genkan/login", None).await;
        let csrf = Self::csrf(&form_page);
        let form = format!(
            "csrf={csrf}&next=%2Fecho&user={user}&password={}",
            password.replace(' ', "+")
        );
        self.send("POST", "/_genkan/login", Some(&form)).await
    }
}

pub fn add_user(genkan: &Genkan, name: &str, groups: &[&str], password: Option<&str>) -> String {
    use std::io::Write;
    let config = genkan.dir.0.join("genkan.toml");
    let mut command = Command::new(GENKAN);
    command.args(["user", "add", name, "--config"]).arg(&config);
    for group in groups {
        command.args(["--group", group]);
    }
    if password.is_some() {
        command.arg("--password-stdin");
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(password) = password {
        writeln!(stdin, "{password}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = String::from_utf8(output.stdout).unwrap();
    out.lines()
        .find_map(|line| line.strip_prefix("one-time password: "))
        .map_or_else(|| password.unwrap_or_default().to_owned(), str::to_owned)
}

pub fn audit_kinds(genkan: &Genkan) -> Vec<String> {
    let output = Command::new(GENKAN)
        .args(["audit", "--config"])
        .arg(genkan.dir.0.join("genkan.toml"))
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn add_group(genkan: &Genkan, name: &str) {
    let output = Command::new(GENKAN)
        .args(["group", "add", name, "--config"])
        .arg(genkan.dir.0.join("genkan.toml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn guarded() -> (Genkan, Iis6) {
    let iis = Iis6::start().await;
    let extra = format!(
        "[identity]\nmax_failed_logins = 3\n\
         [[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\nidentity_headers = true\n\
         [[policy.rule]]\nname = \"staff\"\n[policy.rule.allow]\ngroup = [\"staff\", \"contractor\"]\n\
         [[policy.rule]]\nname = \"contractors-not-in-secret\"\n[policy.rule.deny]\ngroup = \"contractor\"\npath = \"/secret\"\n",
        iis.addr
    );
    let genkan = Genkan::start(&extra).await;
    add_group(&genkan, "staff");
    (genkan, iis)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_are_sent_to_sign_in_and_never_reach_the_app() {
    let (genkan, iis) = guarded().await;
    let mut browser = Browser::new(&genkan);
    let page = browser.send("GET", "/echo?x=1", None).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers()["location"],
        "/_genkan/login?next=/echo%3Fx%3D1"
    );
    let api = genkan
        .send(
            request("POST", "/echo")
                .body(Full::new(Bytes::from_static(b"x=1")))
                .unwrap(),
        )
        .await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let error: serde_json::Value = serde_json::from_slice(api.body()).unwrap();
    assert_eq!(error["error"]["code"], "GK-AUTH-001");
    // Forged and malformed sessions are no sessions.
    browser
        .cookies
        .insert("__Host-genkan_session".into(), "0".repeat(64));
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::SEE_OTHER
    );
    browser.cookies.insert(
        "__Host-genkan_session".into(),
        "\"; DROP TABLE sessions; --".into(),
    );
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(iis.count(), 0);
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_users_reach_the_app_with_trusted_identity_headers() {
    let (genkan, iis) = guarded().await;
    add_user(&genkan, "suzuki", &["staff"], Some(PASSWORD));
    let mut browser = Browser::new(&genkan);
    let signed_in = browser.sign_in("suzuki", PASSWORD).await;
    assert_eq!(
        signed_in.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        signed_in.body()
    );
    assert_eq!(signed_in.headers()["location"], "/echo");
    assert!(browser.cookies.contains_key("__Host-genkan_session"));

    browser.cookies.insert("x".into(), "y".into());
    let page = browser.send("GET", "/echo", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let seen = iis.last();
    assert_eq!(seen.header("x-genkan-user").as_deref(), Some("suzuki"));
    assert_eq!(seen.header("x-genkan-groups").as_deref(), Some("staff"));

    // A client cannot pretend to be someone else to the app.
    let forged = request("GET", "/echo")
        .header(
            "cookie",
            format!(
                "__Host-genkan_session={}",
                browser.cookies["__Host-genkan_session"]
            ),
        )
        .header("x-genkan-user", "admin")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(genkan.send(forged).await.status(), StatusCode::OK);
    assert_eq!(
        iis.last().header("x-genkan-user").as_deref(),
        Some("suzuki")
    );

    let log = genkan.access_log();
    let logged = eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|text| {
            text.lines()
                .any(|line| line.starts_with("127.0.0.1 - suzuki ["))
        })
    })
    .await;
    assert!(logged, "the access log does not name the user");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_deciding_rule_and_are_audited() {
    let (genkan, iis) = guarded().await;
    add_user(&genkan, "yamada", &["contractor"], Some(PASSWORD));
    add_user(&genkan, "sato", &["agent"], Some(PASSWORD));
    let mut contractor = Browser::new(&genkan);
    contractor.sign_in("yamada", PASSWORD).await;
    assert_eq!(
        contractor.send("GET", "/echo", None).await.status(),
        StatusCode::OK
    );
    let before = iis.count();
    let refused = contractor.send("GET", "/secret/report", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let page = String::from_utf8_lossy(refused.body()).into_owned();
    assert!(page.contains("contractors-not-in-secret"), "{page}");
    assert!(
        !page.contains("staff"),
        "the refusal leaks other rules: {page}"
    );
    assert_eq!(iis.count(), before);

    // Signed in, but no rule allows agents here.
    let mut agent = Browser::new(&genkan);
    agent.sign_in("sato", PASSWORD).await;
    let not_admin = contractor.send("GET", "/_genkan/admin", None).await;
    assert_eq!(
        not_admin.status(),
        StatusCode::FORBIDDEN,
        "a contractor opened the admin pages"
    );
    let refused = agent.send("GET", "/echo", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(refused.body()).contains("no rule allows this request"));
    let kinds = audit_kinds(&genkan);
    assert_eq!(
        kinds.iter().filter(|kind| *kind == "access_denied").count(),
        2,
        "{kinds:?}"
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_their_csrf_value_are_refused() {
    let (genkan, _iis) = guarded().await;
    add_user(&genkan, "suzuki", &["staff"], Some(PASSWORD));
    let mut browser = Browser::new(&genkan);
    browser.send("GET", "/_genkan/login", None).await;
    let form = format!(
        "csrf=forged&user=suzuki&password={}",
        PASSWORD.replace(' ', "+")
    );
    let refused = browser.send("POST", "/_genkan/login", Some(&form)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!browser.cookies.contains_key("__Host-genkan_session"));

    browser.sign_in("suzuki", PASSWORD).await;
    assert!(browser.cookies.contains_key("__Host-genkan_session"));
    let refused = browser
        .send("POST", "/_genkan/logout", Some("csrf=forged"))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::OK,
        "a forged logout ended the session"
    );

    let landing = browser.send("GET", "/_genkan/account", None).await;
    let csrf = Browser::csrf(&landing);
    let out = browser
        .send("POST", "/_genkan/logout", Some(&format!("csrf={csrf}")))
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::SEE_OTHER
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_with_the_same_answer_as_a_wrong_password() {
    let (genkan, _iis) = guarded().await;
    add_user(&genkan, "suzuki", &["staff"], Some(PASSWORD));
    let mut browser = Browser::new(&genkan);
    let unknown = browser.sign_in("nobody", PASSWORD).await;
    let wrong = browser.sign_in("suzuki", "not the password at all").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let message = |page: &http::Response<Bytes>| {
        let text = String::from_utf8_lossy(page.body()).into_owned();
        text.split("role=\"alert\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(message(&unknown), message(&wrong));
    // Overlong input is an ordinary failure, not an error.
    let long = browser
        .sign_in(&"u".repeat(5000), &"p".repeat(20_000))
        .await;
    assert_eq!(long.status(), StatusCode::UNAUTHORIZED);

    browser.sign_in("suzuki", "wrong again, twice").await;
    browser.sign_in("suzuki", "and a third time").await;
    let locked = browser.sign_in("suzuki", PASSWORD).await;
    assert_eq!(
        locked.status(),
        StatusCode::UNAUTHORIZED,
        "the right password got through a lockout"
    );
    assert_eq!(message(&locked), message(&wrong));
    let kinds = audit_kinds(&genkan);
    assert!(kinds.contains(&"lockout".to_owned()), "{kinds:?}");
    let output = Command::new(GENKAN)
        .args(["audit", "--config"])
        .arg(genkan.dir.0.join("genkan.toml"))
        .output()
        .unwrap();
    let audit = String::from_utf8_lossy(&output.stdout);
    for secret in [PASSWORD, "not the password at all", "wrong again, twice"] {
        assert!(
            !audit.contains(secret),
            "a password reached the audit trail"
        );
    }
    assert!(!kinds.contains(&"login".to_owned()), "{kinds:?}");
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_password_must_be_changed_before_anything_else() {
    let (genkan, _iis) = guarded().await;
    let one_time = add_user(&genkan, "tanaka", &["staff"], None);
    let mut browser = Browser::new(&genkan);
    let signed_in = browser.sign_in("tanaka", &one_time).await;
    assert_eq!(signed_in.headers()["location"], "/_genkan/password");
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let form_page = browser.send("GET", "/_genkan/password", None).await;
    let csrf = Browser::csrf(&form_page);
    let new = "a brand new passphrase";
    let form = format!(
        "csrf={csrf}&current={one_time}&new={0}&again={0}",
        new.replace(' ', "+")
    );
    let changed = browser.send("POST", "/_genkan/password", Some(&form)).await;
    assert_eq!(
        changed.status(),
        StatusCode::SEE_OTHER,
        "{}",
        String::from_utf8_lossy(changed.body())
    );
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::OK
    );
    let mut again = Browser::new(&genkan);
    assert_eq!(
        again.sign_in("tanaka", &one_time).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        again.sign_in("tanaka", new).await.status(),
        StatusCode::SEE_OTHER
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire() {
    let iis = Iis6::start().await;
    let extra = format!(
        "[identity]\nsession_idle_timeout = \"2s\"\n[[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\n\
         [[policy.rule]]\nname = \"signed-in\"\n[policy.rule.allow]\nauthenticated = true\n",
        iis.addr
    );
    let genkan = Genkan::start(&extra).await;
    add_user(&genkan, "suzuki", &["agent"], Some(PASSWORD));
    let mut browser = Browser::new(&genkan);
    browser.sign_in("suzuki", PASSWORD).await;
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::SEE_OTHER
    );
    genkan.shutdown().await;
}

fn unix_now() -> u64 {
    // The test plays the authenticator app, which reads the wall clock too.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_must_enrol_an_authenticator_and_codes_work_once() {
    let (genkan, _iis) = guarded().await;
    add_user(&genkan, "kanri", &["admin", "staff"], Some(PASSWORD));
    let mut browser = Browser::new(&genkan);
    browser.sign_in("kanri", PASSWORD).await;
    // Signed in by password, but nothing opens before an app is enrolled.
    let sent = browser.send("GET", "/echo", None).await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let to_login = browser
        .send("GET", sent.headers()["location"].to_str().unwrap(), None)
        .await;
    assert_eq!(to_login.headers()["location"], "/_genkan/totp");
    let enrol = browser.send("GET", "/_genkan/totp", None).await;
    let text = String::from_utf8_lossy(enrol.body()).into_owned();
    assert!(text.contains("<svg"), "no QR code");
    let secret: String = text
        .split("id=\"totp-secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .replace(' ', "");
    let csrf = Browser::csrf(&enrol);
    let wrong = browser
        .send(
            "POST",
            "/_genkan/totp",
            Some(&format!("csrf={csrf}&code=000000")),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let code = server::auth::totp::code_at(&secret, unix_now()).unwrap();
    let enrolled = browser
        .send(
            "POST",
            "/_genkan/totp",
            Some(&format!("csrf={csrf}&code={code}")),
        )
        .await;
    assert_eq!(enrolled.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::OK
    );

    // Next sign-in: password, then a code. The code of the next time step is accepted once.
    let mut second = Browser::new(&genkan);
    let asked = second.sign_in("kanri", PASSWORD).await;
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(
        !second.cookies.contains_key("__Host-genkan_session"),
        "a session before the code"
    );
    let pending = Browser::field(&asked, "pending");
    let csrf = Browser::csrf(&asked);
    let refused = second
        .send(
            "POST",
            "/_genkan/login/code",
            Some(&format!("csrf={csrf}&pending={pending}&code=123456")),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let next_code = server::auth::totp::code_at(&secret, unix_now() + 30).unwrap();
    let accepted = second
        .send(
            "POST",
            "/_genkan/login/code",
            Some(&format!("csrf={csrf}&pending={pending}&code={next_code}")),
        )
        .await;
    assert_eq!(
        accepted.status(),
        StatusCode::SEE_OTHER,
        "{}",
        String::from_utf8_lossy(accepted.body())
    );
    assert_eq!(
        second.send("GET", "/echo", None).await.status(),
        StatusCode::OK
    );

    let mut replay = Browser::new(&genkan);
    let asked = replay.sign_in("kanri", PASSWORD).await;
    let pending = Browser::field(&asked, "pending");
    let csrf = Browser::csrf(&asked);
    let replayed = replay
        .send(
            "POST",
            "/_genkan/login/code",
            Some(&format!("csrf={csrf}&pending={pending}&code={next_code}")),
        )
        .await;
    assert_eq!(
        replayed.status(),
        StatusCode::UNAUTHORIZED,
        "a code was accepted twice"
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_exchange_follows_group_capabilities_for_legacy_apps_too() {
    let iis = Iis6::start().await;
    let extra = format!(
        "[[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\n\
         [policy.capabilities]\nstaff = [\"upload\", \"download\"]\ncontractor = []\n\
         [[policy.rule]]\nname = \"signed-in\"\n[policy.rule.allow]\nauthenticated = true\n",
        iis.addr
    );
    let genkan = Genkan::start(&extra).await;
    add_group(&genkan, "staff");
    add_user(&genkan, "suzuki", &["staff"], Some(PASSWORD));
    add_user(&genkan, "yamada", &["contractor"], Some(PASSWORD));
    let upload = |browser: &Browser<'_>| {
        let jar: Vec<String> = browser
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        request("POST", "/echo")
            .header("cookie", jar.join("; "))
            .header("content-type", "multipart/form-data; boundary=b")
            .body(Full::new(Bytes::from_static(b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhi\r\n--b--\r\n")))
            .unwrap()
    };

    let mut staff = Browser::new(&genkan);
    staff.sign_in("suzuki", PASSWORD).await;
    assert_eq!(genkan.send(upload(&staff)).await.status(), StatusCode::OK);
    let report = staff.send("GET", "/report.csv", None).await;
    assert_eq!(report.status(), StatusCode::OK);
    assert_eq!(&report.body()[..], b"id,name\n1,Suzuki\n");

    let mut contractor = Browser::new(&genkan);
    contractor.sign_in("yamada", PASSWORD).await;
    let before = iis.count();
    let refused = genkan.send(upload(&contractor)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(iis.count(), before, "a refused upload reached the app");
    let refused = contractor.send("GET", "/report.csv", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        !String::from_utf8_lossy(refused.body()).contains("Suzuki"),
        "the file leaked"
    );
    assert_eq!(
        contractor.send("GET", "/echo", None).await.status(),
        StatusCode::OK,
        "ordinary pages still open"
    );
    let kinds = audit_kinds(&genkan);
    assert_eq!(
        kinds.iter().filter(|kind| *kind == "file_refused").count(),
        2,
        "{kinds:?}"
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_saved_in_the_admin_pages_are_checked_and_apply_at_once() {
    let iis = Iis6::start().await;
    let extra = format!(
        "[identity]\ntotp_required_groups = []\n[[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\n\
         [[policy.rule]]\nname = \"signed-in\"\n[policy.rule.allow]\nauthenticated = true\n",
        iis.addr
    );
    let genkan = Genkan::start(&extra).await;
    add_group(&genkan, "staff");
    add_user(&genkan, "kanri", &["admin"], Some(PASSWORD));
    add_user(&genkan, "suzuki", &["staff"], Some(PASSWORD));
    let mut staff = Browser::new(&genkan);
    staff.sign_in("suzuki", PASSWORD).await;
    assert_eq!(
        staff.send("GET", "/echo", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        staff
            .send("GET", "/_genkan/admin/policy", None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    let mut admin = Browser::new(&genkan);
    admin.sign_in("kanri", PASSWORD).await;
    let form = admin.send("GET", "/_genkan/admin/policy", None).await;
    assert_eq!(form.status(), StatusCode::OK);
    let csrf = Browser::csrf(&form);
    let encode = |text: &str| gateway::gate::percent_encode(text).replace('/', "%2F");
    let broken =
        "[[rule]]\nname = \"no-echo\"\n[rule.deny]\ngroup = \"staff\"\ntime_of_day = \"9-18\"\n";
    let refused = admin
        .send(
            "POST",
            "/_genkan/admin/policy",
            Some(&format!("csrf={csrf}&toml={}", encode(broken))),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(refused.body()).contains("time_of_day"),
        "the error does not name the field"
    );
    assert_eq!(
        staff.send("GET", "/echo", None).await.status(),
        StatusCode::OK,
        "a refused save changed the policy"
    );

    let rule = "[[rule]]\nname = \"no-echo-for-staff\"\n[rule.deny]\ngroup = \"staff\"\npath = \"/echo\"\n";
    let saved = admin
        .send(
            "POST",
            "/_genkan/admin/policy",
            Some(&format!("csrf={csrf}&toml={}", encode(rule))),
        )
        .await;
    assert_eq!(
        saved.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(saved.body())
    );
    let refused = staff.send("GET", "/echo", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(refused.body()).contains("no-echo-for-staff"));

    let config = genkan.dir.0.join("genkan.toml");
    let explained = Command::new(GENKAN)
        .args([
            "policy", "test", "--user", "suzuki", "--group", "staff", "--path", "/echo",
        ])
        .args([
            "--from",
            "127.0.0.1",
            "--at",
            "2026-12-03T10:00:00+09:00",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    let explained = String::from_utf8_lossy(&explained.stdout).into_owned();
    assert!(
        explained.starts_with("deny\nrule: no-echo-for-staff"),
        "{explained}"
    );
    let cleared = Command::new(GENKAN)
        .args(["policy", "clear-stored", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        cleared.status.success(),
        "{}",
        String::from_utf8_lossy(&cleared.stderr)
    );
    assert!(
        audit_kinds(&genkan)
            .iter()
            .filter(|kind| *kind == "policy_changed")
            .count()
            >= 2
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_at_their_lifetime_and_noisy_sources_are_refused() {
    let iis = Iis6::start().await;
    let extra = format!(
        "[identity]\nsession_lifetime = \"2s\"\nmax_failed_logins_per_source = 2\n\
         [[route]]\nname = \"legacy\"\npath = \"/\"\nupstream = \"http://{}\"\n\
         [[policy.rule]]\nname = \"signed-in\"\n[policy.rule.allow]\nauthenticated = true\n",
        iis.addr
    );
    let genkan = Genkan::start(&extra).await;
    add_user(&genkan, "suzuki", &["agent"], Some(PASSWORD));
    let mut browser = Browser::new(&genkan);
    browser.sign_in("suzuki", PASSWORD).await;
    // Used all along, the session still ends at its lifetime.
    for _ in 0..4 {
        assert_eq!(
            browser.send("GET", "/echo", None).await.status(),
            StatusCode::OK
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        browser.send("GET", "/echo", None).await.status(),
        StatusCode::SEE_OTHER
    );

    let mut noisy = Browser::new(&genkan);
    assert_eq!(
        noisy.sign_in("nobody", "guess one").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        noisy.sign_in("someone", "guess two").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let refused = noisy.sign_in("suzuki", PASSWORD).await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a noisy address could still sign in"
    );
    assert!(audit_kinds(&genkan).contains(&"login_refused".to_owned()));
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_the_contact_flows_as_diagrams() {
    let extra = "[identity]\ntotp_required_groups = []\n\
         [contact]\n[[contact.queue]]\nname = \"support\"\nopen = \"09:00\"\nclose = \"18:00\"\n\
         [[contact.agent]]\nname = \"agent1\"\nqueues = [\"support\"]\n";
    let genkan = Genkan::start(extra).await;
    add_group(&genkan, "staff");
    add_user(&genkan, "kanri", &["admin"], Some(PASSWORD));
    add_user(&genkan, "suzuki", &["staff"], Some(PASSWORD));
    let mut staff = Browser::new(&genkan);
    staff.sign_in("suzuki", PASSWORD).await;
    assert_eq!(
        staff
            .send("GET", "/_genkan/admin/flows", None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let mut admin = Browser::new(&genkan);
    admin.sign_in("kanri", PASSWORD).await;
    let page = admin.send("GET", "/_genkan/admin/flows", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let text = String::from_utf8_lossy(page.body());
    assert_eq!(
        text.matches("<svg ").count(),
        2,
        "the seed flow and its closing flow"
    );
    assert!(
        text.contains("assigned-agent") && text.contains("agent1"),
        "{text}"
    );
    genkan.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_records_are_searched_by_supervisors_and_exported_only_with_the_capability() {
    let extra = "[identity]\ntotp_required_groups = []\n\
         [contact]\n[[contact.queue]]\nname = \"support\"\n\
         [[contact.agent]]\nname = \"agent1\"\nqueues = [\"support\"]\n\
         [policy.capabilities]\nadmin = [\"admin\", \"export\"]\nsupervisor = []\n";
    let genkan = Genkan::start(extra).await;
    // `supervisor` is one of the groups every installation starts with.
    add_user(&genkan, "kanri", &["admin"], Some(PASSWORD));
    add_user(&genkan, "kantoku", &["supervisor"], Some(PASSWORD));
    add_user(&genkan, "agent1", &[], Some(PASSWORD));
    {
        let database = store_sqlite::Database::open(
            &genkan.dir.0.join("data").join("genkan.db"),
            "2026-12-01T00:00:00Z",
        )
        .unwrap();
        for (id, day, agent, notes) in [
            (1, "2026-12-01", "agent1", "請求書の再送"),
            (2, "2026-12-02", "agent2", "住所変更"),
            (3, "2026-12-03", "agent1", "解約の相談"),
        ] {
            database
                .save_contact(&store_sqlite::ContactRow {
                    id,
                    channel: "chat".into(),
                    customer_address: format!("c{id}@example.jp"),
                    customer: None,
                    customer_name: format!("顧客{id}"),
                    queue: Some("support".into()),
                    agent: Some(agent.into()),
                    initiated_at: format!("{day}T01:00:00Z"),
                    queued_at: None,
                    connected_at: None,
                    ended_at: format!("{day}T01:10:00Z"),
                    outcome: "Completed".into(),
                    attributes: "{}".into(),
                    notes: notes.into(),
                    transcript: "[]".into(),
                    recording: None,
                })
                .unwrap();
        }
    }
    let mut agent = Browser::new(&genkan);
    agent.sign_in("agent1", PASSWORD).await;
    assert_eq!(
        agent.send("GET", "/_genkan/contacts", None).await.status(),
        StatusCode::FORBIDDEN
    );
    let mut supervisor = Browser::new(&genkan);
    supervisor.sign_in("kantoku", PASSWORD).await;
    let found = supervisor
        .send(
            "GET",
            "/_genkan/contacts?agent=agent1&from=2026-12-02&to=2026-12-03",
            None,
        )
        .await;
    assert_eq!(found.status(), StatusCode::OK);
    let text = String::from_utf8_lossy(found.body());
    assert!(
        text.contains("解約の相談") && !text.contains("請求書の再送") && !text.contains("住所変更"),
        "{text}"
    );
    assert_eq!(
        supervisor
            .send("GET", "/_genkan/contacts.csv?agent=agent1", None)
            .await
            .status(),
        StatusCode::FORBIDDEN,
        "supervisors have no export capability here"
    );
    // The supervisor page: agents and queues now, today's contacts (none are from today).
    let live = supervisor.send("GET", "/_genkan/supervisor", None).await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.headers().get("refresh").unwrap(), "10");
    let text = String::from_utf8_lossy(live.body());
    assert!(
        text.contains("<td>agent1</td><td>Offline</td><td>0</td>"),
        "{text}"
    );
    assert!(text.contains("<td>support</td><td>0</td>"), "{text}");
    assert!(text.contains("<p id=\"today\">0 "), "{text}");
    assert_eq!(
        agent
            .send("GET", "/_genkan/supervisor", None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let mut admin = Browser::new(&genkan);
    admin.sign_in("kanri", PASSWORD).await;
    let csv = admin
        .send("GET", "/_genkan/contacts.csv?text=%E8%AB%8B%E6%B1%82", None)
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.body().starts_with(b"\xEF\xBB\xBFid,channel,"));
    let text = String::from_utf8_lossy(csv.body());
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("請求書の再送"));
    genkan.shutdown().await;
}
