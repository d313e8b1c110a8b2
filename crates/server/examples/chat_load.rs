//! Load generator for genkan's contact center over WebSockets (used by `bench/contact`;
//! loopback only).
//!
//! 1. Agents: each of `--agents` agents signs in through the sign-in form (Argon2id, a few at a
//!    time, before anything is measured), opens the agent desktop's WebSocket and goes
//!    Available. An agent's desk accepts every offer at once, answers every customer line with a
//!    line of its own, and wraps up (sends notes) when a chat ends.
//! 2. Customers: `--chats` customers open the public chat WebSocket at `--ramp` per second,
//!    each as `customer{i}@example.jp` (the bench's customers table knows them, with an
//!    assigned agent), and wait to be connected. Once connected, a customer sends a line every
//!    `--interval-ms` (with a random phase) until the hold ends, then leaves.
//! 3. Measured: chat start → the offer (with the customer's record: the screen pop) on the
//!    agent's desk; once every chat is connected, for `--hold` seconds: customer line → agent's
//!    desk and agent line → customer's page, each timed by the clock of this one process.
//!
//! Output: `concurrent chats: N` (chats connected at the same time), `chat p50 ms: X`,
//! `chat p99 ms: X` (both directions together), per-direction figures, and
//! `start to screen pop p50 ms: X, p99 ms: X`.
// A load generator reads the wall clock: measuring is its whole job.
#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    unreachable_pub,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = WebSocketStream<TlsStream<TcpStream>>;

struct Options {
    addr: SocketAddr,
    host: String,
    ca: String,
    agents: usize,
    password_suffix: String,
    chats: usize,
    ramp: f64,
    hold: Duration,
    interval: Duration,
    login_concurrency: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: chat_load --addr 127.0.0.1:8443 --host localhost:8443 --ca self-signed.crt \
         [--agents 500] [--password-suffix -password] [--chats 10000] [--ramp 500] [--hold 30] \
         [--interval-ms 5000] [--login-concurrency 4]"
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut o = Options {
        addr: "127.0.0.1:8443".parse().unwrap(),
        host: String::new(),
        ca: String::new(),
        agents: 500,
        password_suffix: "-password".into(),
        chats: 10_000,
        ramp: 500.0,
        hold: Duration::from_secs(30),
        interval: Duration::from_millis(5_000),
        login_concurrency: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        let number = |value: &str| value.parse::<u64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--addr" => o.addr = value.parse().unwrap_or_else(|_| usage()),
            "--host" => o.host = value,
            "--ca" => o.ca = value,
            "--agents" => o.agents = number(&value) as usize,
            "--password-suffix" => o.password_suffix = value,
            "--chats" => o.chats = number(&value) as usize,
            "--ramp" => o.ramp = number(&value) as f64,
            "--hold" => o.hold = Duration::from_secs(number(&value)),
            "--interval-ms" => o.interval = Duration::from_millis(number(&value)),
            "--login-concurrency" => o.login_concurrency = number(&value).max(1) as usize,
            _ => usage(),
        }
    }
    if o.host.is_empty() || o.ca.is_empty() || o.agents == 0 || o.chats == 0 || o.ramp <= 0.0 {
        usage();
    }
    o
}

/// Everything the tasks share.
struct Shared {
    options: Options,
    connector: TlsConnector,
    epoch: Instant,
    /// Chat start times by customer index, to time the screen pop.
    started_at: Vec<AtomicU64>,
    screen_pops: Mutex<Vec<u64>>,
    /// Set when every chat is connected: from then on latencies count.
    measuring: AtomicBool,
    stop: AtomicBool,
    to_agent: Mutex<Vec<u64>>,
    to_customer: Mutex<Vec<u64>>,
    connected: AtomicUsize,
    most_connected: AtomicUsize,
    failures: AtomicUsize,
    first_failure: OnceLock<String>,
}

impl Shared {
    fn micros(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let _ = self.first_failure.set(what);
    }
}

fn tls_connector(ca_path: &str) -> TlsConnector {
    let pem = std::fs::read(ca_path).unwrap_or_else(|error| panic!("{ca_path}: {error}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

async fn tls(shared: &Shared) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(shared.options.addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?.to_owned();
    Ok(shared.connector.connect(name, tcp).await?)
}

fn set_cookie(response: &http::Response<hyper::body::Incoming>, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let pair = value.split(';').next()?;
            let (key, cookie) = pair.split_once('=')?;
            (key.trim() == name).then(|| cookie.trim().to_owned())
        })
}

/// Signs an agent in through the form; returns the session cookie's value.
async fn sign_in(shared: &Shared, agent: &str) -> anyhow::Result<String> {
    let (mut sender, connection) = http1::handshake(TokioIo::new(tls(shared).await?)).await?;
    tokio::spawn(connection);
    let host = &shared.options.host;
    let page = Request::get("/_genkan/login")
        .header("host", host)
        .body(Full::new(Bytes::new()))?;
    let response = sender.send_request(page).await?;
    let csrf = set_cookie(&response, "__Host-genkan_login_csrf")
        .ok_or_else(|| anyhow::anyhow!("the sign-in page set no CSRF cookie"))?;
    response.into_body().collect().await?;
    let password = format!("{agent}{}", shared.options.password_suffix);
    let form = format!("user={agent}&password={password}&csrf={csrf}&next=%2F_genkan%2Fdesk");
    let post = Request::builder()
        .method(Method::POST)
        .uri("/_genkan/login")
        .header("host", host)
        .header("origin", format!("https://{host}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("__Host-genkan_login_csrf={csrf}"))
        .body(Full::new(Bytes::from(form)))?;
    let response = sender.send_request(post).await?;
    let status = response.status();
    let session = set_cookie(&response, "__Host-genkan_session");
    response.into_body().collect().await?;
    session.ok_or_else(|| anyhow::anyhow!("{agent}: sign-in answered {status} without a session"))
}

async fn websocket(shared: &Shared, path: &str, cookie: Option<&str>) -> anyhow::Result<Socket> {
    let host = &shared.options.host;
    let mut request = format!("wss://{host}{path}").into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("origin", format!("https://{host}").parse()?);
    if let Some(session) = cookie {
        headers.insert(
            "cookie",
            format!("__Host-genkan_session={session}").parse()?,
        );
    }
    let (socket, _) = tokio_tungstenite::client_async(request, tls(shared).await?).await?;
    Ok(socket)
}

fn send_json(value: &Value) -> Message {
    Message::text(value.to_string())
}

/// `t<micros>` inside a line: when it was sent.
fn sent_at(text: &str) -> Option<u64> {
    text.split_whitespace()
        .find_map(|word| word.strip_prefix('t')?.parse().ok())
}

async fn run_agent(shared: Arc<Shared>, session: String) -> anyhow::Result<()> {
    let mut socket = websocket(&shared, "/_genkan/desk/ws", Some(&session)).await?;
    socket
        .send(send_json(&json!({"type": "status", "status": "Available"})))
        .await?;
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let value: Value = serde_json::from_str(&text)?;
        let contact = value.get("contact").and_then(Value::as_u64);
        match (value["type"].as_str(), contact) {
            (Some("offer"), Some(contact)) => {
                let now = shared.micros();
                let index = value["from"].as_str().and_then(|from| {
                    from.strip_prefix("customer")?
                        .split('@')
                        .next()?
                        .parse::<usize>()
                        .ok()
                });
                if let Some(started) = index.and_then(|index| shared.started_at.get(index)) {
                    let started = started.load(Ordering::Relaxed);
                    if value["record_id"].is_null() {
                        shared.fail(format!("contact {contact}: the screen pop found no record"));
                    }
                    shared
                        .screen_pops
                        .lock()
                        .unwrap()
                        .push(now.saturating_sub(started));
                }
                socket
                    .send(send_json(&json!({"type": "accept", "contact": contact})))
                    .await?;
            }
            (Some("message"), Some(contact)) => {
                let text = value["text"].as_str().unwrap_or_default();
                if let Some(sent) = sent_at(text)
                    && shared.measuring.load(Ordering::Relaxed)
                {
                    let latency = shared.micros().saturating_sub(sent);
                    shared.to_agent.lock().unwrap().push(latency);
                }
                let reply = format!("agent line t{}", shared.micros());
                socket
                    .send(send_json(
                        &json!({"type": "message", "contact": contact, "text": reply}),
                    ))
                    .await?;
            }
            (Some("ended"), Some(contact)) => {
                socket
                    .send(send_json(
                        &json!({"type": "notes", "contact": contact, "notes": "bench"}),
                    ))
                    .await?;
            }
            (Some("replaced"), _) => anyhow::bail!("the desk was replaced by another tab"),
            _ => {}
        }
    }
    Ok(())
}

async fn run_customer(shared: Arc<Shared>, index: usize) -> anyhow::Result<()> {
    let mut socket = websocket(&shared, "/_genkan/chat/ws", None).await?;
    shared.started_at[index].store(shared.micros(), Ordering::Relaxed);
    let email = format!("customer{index}@example.jp");
    socket
        .send(send_json(
            &json!({"type": "start", "name": format!("Customer {index}"), "email": email}),
        ))
        .await?;
    // Wait to be connected.
    loop {
        let Some(message) = socket.next().await else {
            anyhow::bail!("customer {index}: the chat closed before an agent joined");
        };
        let Message::Text(text) = message? else {
            continue;
        };
        let value: Value = serde_json::from_str(&text)?;
        match value["type"].as_str() {
            Some("connected") => break,
            Some("ended") => {
                anyhow::bail!("customer {index}: the chat ended before an agent joined")
            }
            _ => {}
        }
    }
    let now_connected = shared.connected.fetch_add(1, Ordering::Relaxed) + 1;
    shared
        .most_connected
        .fetch_max(now_connected, Ordering::Relaxed);
    let interval = shared.options.interval;
    // A random phase, so that lines do not arrive in waves.
    let phase = Duration::from_micros(
        (index as u64).wrapping_mul(2_654_435_761)
            % u64::try_from(interval.as_micros()).unwrap_or(1).max(1),
    );
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + phase, interval);
    let result = loop {
        tokio::select! {
            _ = ticker.tick() => {
                if shared.stop.load(Ordering::Relaxed) {
                    break Ok(());
                }
                let line = format!("customer {index} line t{}", shared.micros());
                if let Err(error) = socket.send(send_json(&json!({"type": "message", "text": line}))).await {
                    break Err(error.into());
                }
            }
            message = socket.next() => {
                let Some(message) = message else {
                    break Err(anyhow::anyhow!("customer {index}: the chat closed while connected"));
                };
                let Message::Text(text) = message? else { continue };
                let value: Value = serde_json::from_str(&text)?;
                match value["type"].as_str() {
                    Some("message") if value["from"] == "agent" => {
                        if let Some(sent) = value["text"].as_str().and_then(sent_at)
                            && shared.measuring.load(Ordering::Relaxed)
                        {
                            let latency = shared.micros().saturating_sub(sent);
                            shared.to_customer.lock().unwrap().push(latency);
                        }
                    }
                    Some("limited") => shared.fail(format!("customer {index}: rate limited")),
                    Some("ended") => break Err(anyhow::anyhow!("customer {index}: the chat ended early")),
                    _ => {}
                }
            }
        }
    };
    shared.connected.fetch_sub(1, Ordering::Relaxed);
    let _ = socket.send(send_json(&json!({"type": "leave"}))).await;
    let _ = socket.close(None).await;
    result
}

fn percentile_ms(samples: &mut [u64], fraction: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64) * fraction).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options();
    let connector = tls_connector(&options.ca);
    let chats = options.chats;
    let shared = Arc::new(Shared {
        connector,
        epoch: Instant::now(),
        started_at: (0..chats).map(|_| AtomicU64::new(0)).collect(),
        screen_pops: Mutex::new(Vec::with_capacity(chats)),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        to_agent: Mutex::new(Vec::new()),
        to_customer: Mutex::new(Vec::new()),
        connected: AtomicUsize::new(0),
        most_connected: AtomicUsize::new(0),
        failures: AtomicUsize::new(0),
        first_failure: OnceLock::new(),
        options,
    });

    // 1. Agents sign in (not measured) and go Available.
    let begun = Instant::now();
    let agents = shared.options.agents;
    let names: Vec<String> = (0..agents)
        .map(|index| format!("agent{index:04}"))
        .collect();
    let mut sessions = Vec::with_capacity(agents);
    for batch in names.chunks(shared.options.login_concurrency) {
        let logins = batch.iter().map(|name| {
            let shared = Arc::clone(&shared);
            let name = name.clone();
            tokio::spawn(async move { sign_in(&shared, &name).await })
        });
        for login in logins.collect::<Vec<_>>() {
            sessions.push(login.await??);
        }
    }
    let mut desks = Vec::with_capacity(agents);
    for session in sessions {
        let shared_for_desk = Arc::clone(&shared);
        desks.push(tokio::spawn(async move {
            if let Err(error) = run_agent(Arc::clone(&shared_for_desk), session).await {
                shared_for_desk.fail(format!("agent desk: {error:#}"));
            }
        }));
    }
    println!(
        "agents: {agents} signed in and Available in {:.1} s",
        begun.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 2. Customers arrive at the ramp rate.
    let ramp_started = Instant::now();
    let mut customers = Vec::with_capacity(chats);
    for index in 0..chats {
        let due = Duration::from_secs_f64(index as f64 / shared.options.ramp);
        tokio::time::sleep_until(tokio::time::Instant::from_std(ramp_started + due)).await;
        let shared = Arc::clone(&shared);
        customers.push(tokio::spawn(async move {
            if let Err(error) = run_customer(Arc::clone(&shared), index).await {
                shared.fail(format!("{error:#}"));
            }
        }));
    }
    // Wait (bounded) until every chat is connected.
    let wait_until = Instant::now() + Duration::from_secs(120);
    while shared.connected.load(Ordering::Relaxed) < chats
        && shared.failures.load(Ordering::Relaxed) == 0
        && Instant::now() < wait_until
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected = shared.connected.load(Ordering::Relaxed);
    println!(
        "ramp: {connected} of {chats} chats connected {:.1} s after the first started",
        ramp_started.elapsed().as_secs_f64()
    );

    // 3. Hold: every chat talks; latencies count.
    shared.measuring.store(true, Ordering::Relaxed);
    let hold_started = Instant::now();
    let mut least = usize::MAX;
    while hold_started.elapsed() < shared.options.hold {
        tokio::time::sleep(Duration::from_millis(100)).await;
        least = least.min(shared.connected.load(Ordering::Relaxed));
    }
    shared.measuring.store(false, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    let finish_by = Instant::now() + shared.options.interval + Duration::from_secs(30);
    for customer in customers {
        let left = finish_by.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, customer).await;
    }

    let mut to_agent = std::mem::take(&mut *shared.to_agent.lock().unwrap());
    let mut to_customer = std::mem::take(&mut *shared.to_customer.lock().unwrap());
    let mut screen_pops = std::mem::take(&mut *shared.screen_pops.lock().unwrap());
    let mut both: Vec<u64> = to_agent.iter().chain(to_customer.iter()).copied().collect();
    let held = if least == usize::MAX { 0 } else { least };
    println!(
        "hold: {:.0} s with at least {held} chats connected throughout; lines timed: {} customer->agent, {} agent->customer",
        shared.options.hold.as_secs_f64(),
        to_agent.len(),
        to_customer.len()
    );
    println!(
        "customer->agent ms: p50 {:.2}, p99 {:.2}, max {:.2}",
        percentile_ms(&mut to_agent, 0.5),
        percentile_ms(&mut to_agent, 0.99),
        percentile_ms(&mut to_agent, 1.0)
    );
    println!(
        "agent->customer ms: p50 {:.2}, p99 {:.2}, max {:.2}",
        percentile_ms(&mut to_customer, 0.5),
        percentile_ms(&mut to_customer, 0.99),
        percentile_ms(&mut to_customer, 1.0)
    );
    println!(
        "start to screen pop p50 ms: {:.2}, p99 ms: {:.2} ({} offers)",
        percentile_ms(&mut screen_pops, 0.5),
        percentile_ms(&mut screen_pops, 0.99),
        screen_pops.len()
    );
    println!("concurrent chats: {held}");
    println!("chat p50 ms: {:.2}", percentile_ms(&mut both, 0.5));
    println!("chat p99 ms: {:.2}", percentile_ms(&mut both, 0.99));
    let failures = shared.failures.load(Ordering::Relaxed);
    println!(
        "failures: {failures}{}",
        shared
            .first_failure
            .get()
            .map(|first| format!(" (first: {first})"))
            .unwrap_or_default()
    );
    for desk in desks {
        desk.abort();
    }
    Ok(())
}
