//! Load generator for genkan's FileMaker Data API (used by `bench/records`; loopback only).
//!
//! Each virtual client has its own keep-alive HTTP/1.1 connection and logs in once
//! (`POST /fmi/data/vLatest/databases/{db}/sessions`, Basic auth). Logins use Argon2id, so they
//! happen before any measured window, a few at a time. Then, for every client count in
//! `--clients` (the first N of the logged-in clients), all clients run the mix for `--duration`
//! seconds or until `--max-ops` operations in all, whichever comes first:
//!
//! * 40 %: `_find` with a word-prefix criterion on `name` (`{"name": "Tak"}`, limit 10);
//! * 40 %: `GET …/records/{id}` of a random record;
//! * 20 %: edit: `GET …/records/{id}` for its modId, then `PATCH` with
//!   `{"fieldData": {...}, "modId": "N"}`; edits pick from the first `--hot` records so that
//!   clients really race for the same records.
//!
//! A PATCH answered 306 (modId mismatch) is a conflict, not an error, if a fresh GET shows a
//! modId above the one sent (someone else really changed the record); otherwise it counts as
//! an unverified conflict and as an error. A PATCH answered 0 must return modId sent + 1.
//! Everything else that is not code 0 is an error; the first distinct ones are printed.
//!
//! Output, per client count:
//! `clients N: req/s X, p50 ms X, p99 ms X, errors X, conflicts X (all checked)`
//! followed by per-kind latencies.
// A load generator reads the wall clock: measuring is its whole job.
#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    unreachable_pub,
    missing_docs
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

struct Options {
    addr: String,
    database: String,
    layout: String,
    user: String,
    password: String,
    clients: Vec<usize>,
    duration: Duration,
    max_ops: u64,
    records: i64,
    hot: i64,
    think_ms: u64,
    login_concurrency: usize,
    prefixes: Vec<String>,
    /// Percentages of find and get; the rest are edits.
    mix: (u64, u64),
}

fn usage() -> ! {
    eprintln!(
        "usage: records_load --addr 127.0.0.1:3900 --records N [--database demo] [--layout customers] \
         [--user demo] [--password demo-password] [--clients 100,250,500] [--duration 15] \
         [--max-ops 400000] [--hot 100] [--think-ms 0] [--login-concurrency 2] \
         [--prefixes Tak,Sat,...] [--mix 40,40,20 (find,get,edit %)]"
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut o = Options {
        addr: "127.0.0.1:3900".into(),
        database: "demo".into(),
        layout: "customers".into(),
        user: "demo".into(),
        password: "demo-password".into(),
        clients: vec![100, 250, 500],
        duration: Duration::from_secs(15),
        max_ops: 400_000,
        records: 0,
        hot: 100,
        think_ms: 0,
        login_concurrency: 2,
        prefixes: [
            "Tak", "Sat", "Suz", "Tan", "Wat", "Ito", "Yam", "Nak", "Kob", "Kat",
        ]
        .map(String::from)
        .to_vec(),
        mix: (40, 40),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_else(|| usage());
        let number = || value.parse::<u64>().unwrap_or_else(|_| usage());
        match args[i].as_str() {
            "--addr" => o.addr = value.clone(),
            "--database" => o.database = value.clone(),
            "--layout" => o.layout = value.clone(),
            "--user" => o.user = value.clone(),
            "--password" => o.password = value.clone(),
            "--clients" => {
                o.clients = value
                    .split(',')
                    .map(|n| n.trim().parse().unwrap_or_else(|_| usage()))
                    .collect();
            }
            "--duration" => {
                o.duration = Duration::from_secs_f64(value.parse().unwrap_or_else(|_| usage()))
            }
            "--max-ops" => o.max_ops = number(),
            "--records" => o.records = number() as i64,
            "--hot" => o.hot = number() as i64,
            "--think-ms" => o.think_ms = number(),
            "--login-concurrency" => o.login_concurrency = number().max(1) as usize,
            "--prefixes" => o.prefixes = value.split(',').map(String::from).collect(),
            "--mix" => {
                let parts: Vec<u64> = value
                    .split(',')
                    .map(|n| n.trim().parse().unwrap_or_else(|_| usage()))
                    .collect();
                if parts.len() != 3 || parts.iter().sum::<u64>() != 100 {
                    usage();
                }
                o.mix = (parts[0], parts[1]);
            }
            _ => usage(),
        }
        i += 2;
    }
    if o.records < 1 || o.clients.is_empty() || o.clients.contains(&0) {
        usage();
    }
    let addr: std::net::SocketAddr = o.addr.parse().unwrap_or_else(|_| usage());
    if !addr.ip().is_loopback() {
        eprintln!("records_load: --addr must be a loopback address");
        std::process::exit(2);
    }
    o.hot = o.hot.clamp(1, o.records);
    o
}

/// splitmix64: deterministic per client, no extra crates.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Conn {
    send: SendRequest<Full<Bytes>>,
}

async fn connect(addr: &str) -> Result<Conn, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let (send, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Conn { send })
}

/// An answer: HTTP status, FileMaker code, message, the `response` object.
struct Answer {
    status: u16,
    code: String,
    message: String,
    response: Value,
}

struct Client {
    addr: String,
    host: String,
    conn: Option<Conn>,
    token: String,
    rng: Rng,
}

impl Client {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        auth: &str,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.addr).await?);
        }
        let conn = self.conn.as_mut().unwrap();
        conn.send.ready().await.map_err(|e| {
            self.conn = None;
            format!("connection: {e}")
        })?;
        let conn = self.conn.as_mut().unwrap();
        let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", auth);
        if !bytes.is_empty() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(Full::new(bytes)).map_err(|e| e.to_string())?;
        let response = match conn.send.send_request(request).await {
            Ok(response) => response,
            Err(e) => {
                self.conn = None;
                return Err(format!("request: {e}"));
            }
        };
        let status = response.status().as_u16();
        let body = match response.into_body().collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => {
                self.conn = None;
                return Err(format!("body: {e}"));
            }
        };
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "HTTP {status}, not JSON ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })?;
        let first = &value["messages"][0];
        Ok(Answer {
            status,
            code: first["code"].as_str().unwrap_or("?").to_owned(),
            message: first["message"].as_str().unwrap_or("").to_owned(),
            response: value["response"].clone(),
        })
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Find,
    Get,
    EditGet,
    Patch,
    Verify,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Find => "find",
            Self::Get => "get",
            Self::EditGet => "edit: get",
            Self::Patch => "edit: patch",
            Self::Verify => "conflict re-get",
        }
    }
}

#[derive(Default)]
struct Tally {
    /// Latency in microseconds, per kind.
    latency: BTreeMap<Kind, Vec<u32>>,
    /// Whole edits (GET + PATCH), microseconds.
    edit: Vec<u32>,
    requests: u64,
    ops: u64,
    errors: u64,
    conflicts: u64,
    unverified: u64,
    samples: BTreeMap<String, u64>,
}

impl Tally {
    fn note(&mut self, kind: Kind, started: Instant) {
        let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        self.latency.entry(kind).or_default().push(us);
        self.requests += 1;
    }
    fn error(&mut self, what: String) {
        self.errors += 1;
        *self.samples.entry(what).or_default() += 1;
    }
    fn merge(&mut self, other: Self) {
        for (kind, mut values) in other.latency {
            self.latency.entry(kind).or_default().append(&mut values);
        }
        self.edit.extend(other.edit);
        self.requests += other.requests;
        self.ops += other.ops;
        self.errors += other.errors;
        self.conflicts += other.conflicts;
        self.unverified += other.unverified;
        for (what, count) in other.samples {
            *self.samples.entry(what).or_default() += count;
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn mod_id_of(response: &Value) -> Option<i64> {
    response["data"][0]["modId"].as_str()?.parse().ok()
}

/// One operation of the mix; returns whether the client should keep going.
async fn one_op(client: &mut Client, o: &Options, base: &str, tally: &mut Tally) {
    let roll = client.rng.below(100);
    let bearer = client.bearer();
    if roll < o.mix.0 {
        let prefix = &o.prefixes[client.rng.below(o.prefixes.len() as u64) as usize];
        let body = json!({"query": [{"name": prefix}], "limit": 10});
        let started = Instant::now();
        let answer = client
            .call(Method::POST, &format!("{base}/_find"), &bearer, Some(body))
            .await;
        tally.note(Kind::Find, started);
        match answer {
            Ok(a) if a.code == "0" => {
                if a.response["data"].as_array().is_none_or(Vec::is_empty) {
                    tally.error(format!("find {prefix}: code 0 but no data"));
                }
            }
            Ok(a) => tally.error(format!(
                "find: HTTP {} code {} {}",
                a.status, a.code, a.message
            )),
            Err(e) => tally.error(format!("find: {e}")),
        }
    } else if roll < o.mix.0 + o.mix.1 {
        let id = 1 + client.rng.below(o.records as u64) as i64;
        let started = Instant::now();
        let answer = client
            .call(Method::GET, &format!("{base}/records/{id}"), &bearer, None)
            .await;
        tally.note(Kind::Get, started);
        match answer {
            Ok(a) if a.code == "0" => {
                if mod_id_of(&a.response).is_none() {
                    tally.error("get: code 0 but no modId".into());
                }
            }
            Ok(a) => tally.error(format!(
                "get: HTTP {} code {} {}",
                a.status, a.code, a.message
            )),
            Err(e) => tally.error(format!("get: {e}")),
        }
    } else {
        let id = 1 + client.rng.below(o.hot as u64) as i64;
        let path = format!("{base}/records/{id}");
        let edit_started = Instant::now();
        let started = Instant::now();
        let answer = client.call(Method::GET, &path, &bearer, None).await;
        tally.note(Kind::EditGet, started);
        let sent = match answer {
            Ok(a) if a.code == "0" => match mod_id_of(&a.response) {
                Some(mod_id) => mod_id,
                None => return tally.error("edit get: code 0 but no modId".into()),
            },
            Ok(a) => {
                return tally.error(format!(
                    "edit get: HTTP {} code {} {}",
                    a.status, a.code, a.message
                ));
            }
            Err(e) => return tally.error(format!("edit get: {e}")),
        };
        let n = client.rng.next();
        let agent = ["tanaka", "yamada", "sato", "ito"][(n % 4) as usize];
        let body = json!({
            "fieldData": {
                "note": format!("edited {n:016x}"),
                "assigned_agent": agent,
            },
            "modId": sent.to_string(),
        });
        let started = Instant::now();
        let answer = client.call(Method::PATCH, &path, &bearer, Some(body)).await;
        tally.note(Kind::Patch, started);
        match answer {
            Ok(a) if a.code == "0" => {
                let returned = a.response["modId"]
                    .as_str()
                    .and_then(|t| t.parse::<i64>().ok());
                if returned != Some(sent + 1) {
                    tally.error(format!("patch: sent modId {sent}, got back {returned:?}"));
                }
                tally
                    .edit
                    .push(u32::try_from(edit_started.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Ok(a) if a.code == "306" => {
                tally.conflicts += 1;
                let started = Instant::now();
                let again = client.call(Method::GET, &path, &bearer, None).await;
                tally.note(Kind::Verify, started);
                let now = again
                    .ok()
                    .filter(|a| a.code == "0")
                    .and_then(|a| mod_id_of(&a.response));
                if now.is_none_or(|now| now <= sent) {
                    tally.unverified += 1;
                    tally.error(format!(
                        "patch 306 without a race: sent modId {sent}, record now has {now:?} ({})",
                        a.message
                    ));
                }
            }
            Ok(a) => tally.error(format!(
                "patch: HTTP {} code {} {}",
                a.status, a.code, a.message
            )),
            Err(e) => tally.error(format!("patch: {e}")),
        }
    }
}

async fn run_client(
    client: Arc<Mutex<Client>>,
    o: Arc<Options>,
    deadline: Instant,
    budget: Arc<AtomicU64>,
) -> Tally {
    let mut client = client.lock().await;
    let base = format!(
        "/fmi/data/vLatest/databases/{}/layouts/{}",
        o.database, o.layout
    );
    let mut tally = Tally::default();
    if o.think_ms > 0 {
        // Each client starts as if it had just finished thinking: an office's people do not
        // all press Enter in the same millisecond, and a step that opened with every client at
        // once would measure that one burst's queue in its p99 instead of the steady load.
        let pause = client.rng.below(2 * o.think_ms + 1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    while Instant::now() < deadline {
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_err()
        {
            break;
        }
        one_op(&mut client, &o, &base, &mut tally).await;
        tally.ops += 1;
        if o.think_ms > 0 {
            // Uniform 0..2× the mean: clients do not march in step.
            let pause = client.rng.below(2 * o.think_ms + 1);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
    tally
}

async fn login(client: &mut Client, o: &Options) -> Result<(), String> {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", o.user, o.password))
    );
    let path = format!("/fmi/data/vLatest/databases/{}/sessions", o.database);
    let answer = client
        .call(Method::POST, &path, &basic, Some(json!({})))
        .await?;
    if answer.code != "0" {
        return Err(format!(
            "login: HTTP {} code {} {}",
            answer.status, answer.code, answer.message
        ));
    }
    client.token = answer.response["token"]
        .as_str()
        .ok_or("login: no token")?
        .to_owned();
    Ok(())
}

#[tokio::main]
async fn main() {
    let o = Arc::new(options());
    let most = *o.clients.iter().max().unwrap();
    println!(
        "records_load: {} clients at most on {}, mix {}% find / {}% get / {}% edit (get + patch with modId), \
         {} records, edits on the first {}, think time {} ms (mean), {} s or {} operations per step",
        most,
        o.addr,
        o.mix.0,
        o.mix.1,
        100 - o.mix.0 - o.mix.1,
        o.records,
        o.hot,
        o.think_ms,
        o.duration.as_secs_f64(),
        o.max_ops
    );

    // Logins, outside any measured window.
    let started = Instant::now();
    let clients: Vec<Arc<Mutex<Client>>> = (0..most)
        .map(|i| {
            Arc::new(Mutex::new(Client {
                addr: o.addr.clone(),
                host: o.addr.clone(),
                conn: None,
                token: String::new(),
                rng: Rng(0x5EED_0000 + i as u64),
            }))
        })
        .collect();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..o.login_concurrency {
        let (clients, next, o) = (clients.clone(), Arc::clone(&next), Arc::clone(&o));
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(client) = clients.get(i) else { break };
                let mut client = client.lock().await;
                if let Err(e) = login(&mut client, &o).await {
                    failures.push(format!("client {i}: {e}"));
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "logins: {} in {:.1} s ({:.0}/s, {} at a time), failed {}",
        most,
        took,
        most as f64 / took,
        o.login_concurrency,
        failures.len()
    );
    for failure in failures.iter().take(5) {
        println!("  login failure: {failure}");
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }

    let mut summary = Vec::new();
    for &n in &o.clients {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let budget = Arc::new(AtomicU64::new(o.max_ops));
        let started = Instant::now();
        let deadline = started + o.duration;
        let tasks: Vec<_> = clients[..n]
            .iter()
            .map(|client| {
                tokio::spawn(run_client(
                    Arc::clone(client),
                    Arc::clone(&o),
                    deadline,
                    Arc::clone(&budget),
                ))
            })
            .collect();
        let mut tally = Tally::default();
        for task in tasks {
            tally.merge(task.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut all: Vec<u32> = tally.latency.values().flatten().copied().collect();
        all.sort_unstable();
        let checked = if tally.unverified == 0 {
            "all checked".to_owned()
        } else {
            format!("{} NOT a modId race", tally.unverified)
        };
        let line = format!(
            "clients {n}: req/s {:.0}, p50 ms {:.1}, p99 ms {:.1}, errors {}, conflicts {} ({checked})",
            tally.requests as f64 / elapsed,
            percentile(&all, 50.0),
            percentile(&all, 99.0),
            tally.errors,
            tally.conflicts,
        );
        println!("{line}");
        println!(
            "  {} requests, {} operations in {:.1} s; max ms {:.1}",
            tally.requests,
            tally.ops,
            elapsed,
            all.last().map_or(f64::NAN, |v| f64::from(*v) / 1000.0)
        );
        for (kind, values) in &mut tally.latency {
            values.sort_unstable();
            println!(
                "  {:<16} n {:>7}  p50 ms {:>6.1}  p99 ms {:>6.1}  max ms {:>7.1}",
                kind.name(),
                values.len(),
                percentile(values, 50.0),
                percentile(values, 99.0),
                percentile(values, 100.0)
            );
        }
        tally.edit.sort_unstable();
        println!(
            "  {:<16} n {:>7}  p50 ms {:>6.1}  p99 ms {:>6.1}  max ms {:>7.1}",
            "edit (get+patch)",
            tally.edit.len(),
            percentile(&tally.edit, 50.0),
            percentile(&tally.edit, 99.0),
            percentile(&tally.edit, 100.0)
        );
        for (what, count) in tally.samples.iter().take(10) {
            println!("  error x{count}: {what}");
        }
        summary.push(line);
    }

    // Log out, so the sessions do not stay behind.
    let mut closed = 0;
    for client in &clients {
        let mut client = client.lock().await;
        let path = format!(
            "/fmi/data/vLatest/databases/{}/sessions/{}",
            o.database, client.token
        );
        let bearer = client.bearer();
        if client
            .call(Method::DELETE, &path, &bearer, None)
            .await
            .is_ok_and(|a| a.code == "0")
        {
            closed += 1;
        }
    }
    println!("logouts: {closed} of {most}");
    // Its own CPU time, so that the script can tell how much of the machine the server had.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split(' ').collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    println!("load generator CPU ticks: {}", ticks(11) + ticks(12));
}
