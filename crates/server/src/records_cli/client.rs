//! One Data API session with the running server for the whole run: log in with the account's
//! password, send statements to `POST /api/sql` with the token (so a `BEGIN` lasts across calls),
//! log out at the end. Ctrl-C logs out too, which makes the server roll back what the session had
//! not committed, rather than leave it holding the write lock until the token times out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::target::{self, Target};
use super::{ServerArgs, account_name, password};

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one call may take (a batch of an import, a long query).
const CALL_TIMEOUT: Duration = Duration::from_secs(600);
/// A kept connection idle longer than this is replaced rather than reused: the server may close
/// idle connections, and a call must never be sent twice.
const REUSE_IDLE: Duration = Duration::from_secs(4);

/// The server's refusal of a call, as the Data API envelope tells it.
#[derive(Debug, Clone)]
pub(super) struct Refusal {
    /// FileMaker error code (`"8310"`).
    pub(super) code: String,
    /// Its message, with the server's detail.
    pub(super) message: String,
    /// The 1-based index of the failing statement in the call, when one failed.
    pub(super) statement: Option<usize>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error {}: {}", self.code, self.message)
    }
}

/// What one statement gave.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Outcome {
    /// Column names (queries only).
    pub(super) columns: Vec<String>,
    /// Rows (queries only).
    pub(super) rows: Vec<Vec<Value>>,
    /// Rows changed.
    pub(super) changes: u64,
}

/// What a call gave.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Answer {
    /// One outcome per statement.
    pub(super) results: Vec<Outcome>,
    /// Whether the session's transaction is open after the call.
    pub(super) in_transaction: bool,
}

/// An HTTP/1.1 connection to the server, kept between calls while it is fresh.
struct Http {
    target: Target,
    kept: Option<(SendRequest<Full<Bytes>>, Instant)>,
}

impl Http {
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        let base = &self.target.base;
        let tcp = timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.target.connect))
            .await
            .map_err(|_| anyhow!("is genkan serving? could not connect to {base}: no answer"))?
            .map_err(|error| anyhow!("is genkan serving? could not connect to {base}: {error}"))?;
        let _ = tcp.set_nodelay(true);
        match &self.target.tls {
            None => handshake(tcp).await,
            Some((connector, name)) => {
                let tls = timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| anyhow!("TLS with {base}: no answer"))?
                    .map_err(|error| {
                        anyhow!(
                            "TLS with {base}: {error} (is --cacert, or the certificate the configuration names, the one the server uses?)"
                        )
                    })?;
                handshake(tls).await
            }
        }
    }

    /// Sends one request and reads the whole answer.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let reusable = self
            .kept
            .take()
            .filter(|(sender, used)| sender.is_ready() && used.elapsed() < REUSE_IDLE);
        let mut sender = match reusable {
            Some((sender, _)) => sender,
            None => self.connect().await?,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.target.host)
            .header(
                header::USER_AGENT,
                concat!("genkan-cli/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request.body(Full::new(body)).context("request")?;
        let base = self.target.base.clone();
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|error| anyhow!("{base}: {error}"))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|error| anyhow!("{base}: {error}"))?
                .to_bytes();
            anyhow::Ok((status, bytes))
        };
        let answer = timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("{base} did not answer within {CALL_TIMEOUT:?}"))??;
        self.kept = Some((sender, Instant::now()));
        Ok(answer)
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .context("HTTP")?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The `response` of a Data API answer, or its refusal.
fn envelope(base: &str, status: StatusCode, body: &[u8]) -> Result<Result<Value, Refusal>> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| {
        anyhow!(
            "{base} answered HTTP {status} without a Data API answer: is it genkan, serving records?"
        )
    })?;
    let message = parsed
        .get("messages")
        .and_then(|messages| messages.get(0))
        .ok_or_else(|| anyhow!("{base} answered HTTP {status} without `messages`"))?;
    let code = match message.get("code") {
        Some(Value::String(code)) => code.clone(),
        Some(other) => other.to_string(),
        None => bail!("{base} answered HTTP {status} without a code"),
    };
    let response = parsed.get("response").cloned().unwrap_or(Value::Null);
    if code == "0" {
        return Ok(Ok(response));
    }
    Ok(Err(Refusal {
        code,
        message: message
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        statement: response
            .get("statement")
            .and_then(Value::as_u64)
            .and_then(|index| usize::try_from(index).ok()),
    }))
}

fn database_path(database: &str) -> String {
    format!(
        "/fmi/data/vLatest/databases/{}/sessions",
        percent_encoding::utf8_percent_encode(database, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// A logged-in session and the runtime its calls run on.
pub(super) struct Session {
    runtime: tokio::runtime::Runtime,
    http: Http,
    database: String,
    user: String,
    password: String,
    token: Arc<Mutex<Option<String>>>,
    in_transaction: bool,
}

impl Session {
    /// Finds the server, chooses the database, asks for the password and logs in.
    pub(super) fn open(args: &ServerArgs) -> Result<Self> {
        let target = target::find(args)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let mut http = Http { target, kept: None };
        let database = match &args.database {
            Some(database) => database.clone(),
            None => runtime.block_on(only_database(&mut http))?,
        };
        let user = account_name(args.user.as_deref())?;
        let password = password(&user)?;
        let mut session = Self {
            runtime,
            http,
            database,
            user,
            password,
            token: Arc::new(Mutex::new(None)),
            in_transaction: false,
        };
        session.login()?;
        session.log_out_on_interrupt();
        Ok(session)
    }

    /// The database the session is in.
    pub(super) fn database(&self) -> &str {
        &self.database
    }

    /// Whether a transaction is open.
    pub(super) fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    fn login(&mut self) -> Result<()> {
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        let path = database_path(&self.database);
        let base = self.http.target.base.clone();
        let (status, body) = self.runtime.block_on(self.http.call(
            Method::POST,
            &path,
            Some(&format!("Basic {credentials}")),
            Bytes::from_static(b"{}"),
        ))?;
        let response = envelope(&base, status, &body)?.map_err(|refusal| {
            anyhow!(
                "{base}: could not log in as `{}` to database `{}`: {refusal}",
                self.user,
                self.database
            )
        })?;
        let token = response
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{base}: the login answer has no token"))?;
        *super::lock(&self.token) = Some(token.to_owned());
        Ok(())
    }

    fn log_out_on_interrupt(&self) {
        let token = Arc::clone(&self.token);
        let mut http = Http {
            target: self.http.target.clone(),
            kept: None,
        };
        let path = database_path(&self.database);
        self.runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            let held = super::lock(&token).take();
            if let Some(token) = held {
                let path = format!("{path}/{token}");
                let logout = http.call(Method::DELETE, &path, None, Bytes::new());
                let _ = timeout(Duration::from_secs(5), logout).await;
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!("\ngenkan: interrupted; what was not committed was rolled back");
            }
            std::process::exit(130);
        });
    }

    /// Runs statements (`{"sql": …, "params": […]}` each) in one call. A transport failure is
    /// the outer error; the server's refusal the inner one.
    pub(super) fn run(&mut self, statements: Vec<Value>) -> Result<Result<Answer, Refusal>> {
        let body = Bytes::from(
            json!({"database": self.database, "statements": Value::Array(statements)}).to_string(),
        );
        let mut answer = self.send_sql(body.clone())?;
        if let Err(refusal) = &answer
            && refusal.code == "952"
            && !self.in_transaction
        {
            // The token lapsed while the session was idle; nothing was lost, log in again.
            self.login()?;
            answer = self.send_sql(body)?;
        }
        match answer {
            Ok(body) => {
                let answer: Answer = serde_json::from_value(body)
                    .context("the server's answer to /api/sql is not understood")?;
                self.in_transaction = answer.in_transaction;
                Ok(Ok(answer))
            }
            Err(refusal) => {
                if self.in_transaction {
                    // Most errors inside a transaction roll it back; some (a refused body) do
                    // not. Ask, so the prompt and the caller know.
                    self.in_transaction = match self.send_sql(Bytes::from(
                        json!({"database": self.database, "statements": ["SELECT 1"]}).to_string(),
                    ))? {
                        Ok(body) => body
                            .get("inTransaction")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                        Err(_) => false,
                    };
                }
                Ok(Err(refusal))
            }
        }
    }

    fn send_sql(&mut self, body: Bytes) -> Result<Result<Value, Refusal>> {
        let token = super::lock(&self.token)
            .clone()
            .ok_or_else(|| anyhow!("not logged in"))?;
        let base = self.http.target.base.clone();
        let (status, answer) = self.runtime.block_on(self.http.call(
            Method::POST,
            "/api/sql",
            Some(&format!("Bearer {token}")),
            body,
        ))?;
        envelope(&base, status, &answer)
    }

    /// Ends the session; the server rolls back a transaction left open.
    pub(super) fn logout(&mut self) {
        let held = super::lock(&self.token).take();
        if let Some(token) = held {
            let path = format!("{}/{token}", database_path(&self.database));
            let _ =
                self.runtime
                    .block_on(self.http.call(Method::DELETE, &path, None, Bytes::new()));
        }
        self.in_transaction = false;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.logout();
    }
}

/// The server's only database, when `--database` is not given.
async fn only_database(http: &mut Http) -> Result<String> {
    if let [only] = http.target.databases.as_slice() {
        return Ok(only.clone());
    }
    let base = http.target.base.clone();
    let (status, body) = http
        .call(
            Method::GET,
            "/fmi/data/vLatest/databases",
            None,
            Bytes::new(),
        )
        .await?;
    let response = envelope(&base, status, &body)?
        .map_err(|refusal| anyhow!("{base}: cannot list the databases: {refusal}"))?;
    let names: Vec<String> = response
        .get("databases")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|item| item.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    match names.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!("{base} serves no records database"),
        several => bail!(
            "name the database with --database: {base} serves {}",
            several.join(", ")
        ),
    }
}

/// A statement for [`Session::run`].
pub(super) fn statement(sql: &str, params: Vec<Value>) -> Value {
    json!({"sql": sql, "params": Value::Array(params)})
}
