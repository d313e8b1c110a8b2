//! Records: the databases genkan serves, the FileMaker Data API over them, `POST /api/sql`, and
//! the records page.
//!
//! Data API sessions live in memory, as FileMaker Server's do: a token is valid until logout or
//! until it has not been used for `records.session_idle_timeout` (15 minutes by default); a
//! restart ends them all. The token itself is never stored: sessions are found by its SHA-256.
//! Each session carries its globals, its SQL session and the name its edit leases are held under.

// Handlers return early with a finished `Response` (`Result<_, Response>`): axum's response is
// 128 bytes, which is what this lint objects to, and boxing it at every `?` buys nothing.
#![allow(clippy::result_large_err)]

pub mod data_api;
pub mod envelope;
pub mod fm_records;
pub mod page;
pub mod params;
pub mod sql_api;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use records::{Access, Actor, Grants, Store};
use store_sqlite::{RecordsDb, SqlSession};

use crate::auth::{Auth, random_token, sha256_hex};
use crate::config::{Grant, RecordsSettings};

/// Group whose members may do anything to every records database.
pub const ADMIN_GROUP: &str = "admin";

/// One signed-in Data API (or SQL) client.
pub struct ApiSession {
    /// Account name.
    pub user: String,
    /// Its groups at login.
    pub groups: Vec<String>,
    /// The database it logged in to.
    pub database: String,
    /// Name its leases are held under (not the token).
    pub lease_id: String,
    /// Changing parts.
    pub state: Mutex<ApiState>,
}

/// What changes during a session.
pub struct ApiState {
    /// Last use, ms since the epoch.
    pub last_used_ms: i64,
    /// Global field values set with `PATCH /globals`.
    pub globals: BTreeMap<String, serde_json::Value>,
    /// The SQL session (open transaction, FOR UPDATE leases).
    pub sql: SqlSession,
}

/// What a set of groups may do in one database, as the SQL engine asks.
pub struct GroupGrants {
    groups: Vec<String>,
    database: String,
    grants: Arc<Vec<Grant>>,
}

impl Grants for GroupGrants {
    fn allows(&self, access: Access, table: &str) -> bool {
        if self.groups.iter().any(|group| group == ADMIN_GROUP) {
            return true;
        }
        self.grants.iter().any(|grant| {
            grant.database == self.database
                && grant.access >= access
                && self.groups.contains(&grant.group)
                && grant.tables.iter().any(|name| name == "*" || name == table)
        })
    }
}

/// The records service.
pub struct Records {
    databases: BTreeMap<String, Arc<RecordsDb>>,
    settings: RecordsSettings,
    grants: Arc<Vec<Grant>>,
    sessions: Mutex<HashMap<String, Arc<ApiSession>>>,
    /// Browser sessions' SQL sessions, by the browser session's token hash.
    web_sql: Mutex<HashMap<String, Arc<Mutex<SqlSession>>>>,
    /// The gatekeeper: passwords, policy, audit.
    pub auth: Arc<Auth>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("databases", &self.databases.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Where a records database's file is.
pub fn database_path(records_dir: &Path, name: &str) -> std::path::PathBuf {
    records_dir.join(format!("{name}.sqlite"))
}

impl Records {
    /// Opens (creating and setting up where needed) the configured databases, stores the
    /// configured layouts and creates the configured accounts that do not exist yet.
    pub fn open(settings: RecordsSettings, records_dir: &Path, auth: Arc<Auth>) -> Result<Self> {
        let mut databases = BTreeMap::new();
        for database in &settings.databases {
            let path = database_path(records_dir, &database.name);
            let db = RecordsDb::open(&database.name, &path, 4).with_context(|| {
                format!("records database `{}` ({})", database.name, path.display())
            })?;
            if db.needs_setup()? {
                match &database.setup_sql {
                    Some(sql) => {
                        db.run_setup(sql).with_context(|| {
                            format!("records.database `{}`: setup_sql", database.name)
                        })?;
                        tracing::info!(database = %database.name, "records database created and set up");
                    }
                    None => db.mark_set_up()?,
                }
            }
            databases.insert(database.name.clone(), Arc::new(db));
        }
        for (name, definition) in &settings.layouts {
            if let Some(db) = databases.get(name) {
                db.define_layout(definition).map_err(|error| {
                    anyhow::anyhow!("records.layout `{}`: {error}", definition.name)
                })?;
            }
        }
        create_accounts(&auth, &settings)?;
        Ok(Self {
            databases,
            grants: Arc::new(settings.grants.clone()),
            settings,
            sessions: Mutex::new(HashMap::new()),
            web_sql: Mutex::new(HashMap::new()),
            auth,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &RecordsSettings {
        &self.settings
    }

    /// Database names.
    pub fn database_names(&self) -> Vec<String> {
        self.databases.keys().cloned().collect()
    }

    /// One database.
    pub fn database(&self, name: &str) -> Option<Arc<RecordsDb>> {
        self.databases.get(name).cloned()
    }

    /// The grants of `groups` in `database`.
    pub fn grants_for(&self, groups: &[String], database: &str) -> Arc<GroupGrants> {
        Arc::new(GroupGrants {
            groups: groups.to_vec(),
            database: database.to_owned(),
            grants: Arc::clone(&self.grants),
        })
    }

    /// Starts a Data API session; returns the token (shown once) and the session.
    pub fn open_session(
        &self,
        user: &str,
        groups: &[String],
        database: &str,
        now_ms: i64,
    ) -> Result<Option<(String, Arc<ApiSession>)>> {
        let token = random_token()?;
        let hash = sha256_hex(token.as_bytes());
        let session = Arc::new(ApiSession {
            user: user.to_owned(),
            groups: groups.to_vec(),
            database: database.to_owned(),
            lease_id: format!("api-{}", &hash[..16]),
            state: Mutex::new(ApiState {
                last_used_ms: now_ms,
                globals: BTreeMap::new(),
                sql: SqlSession::default(),
            }),
        });
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= self.settings.max_sessions {
            self.sweep_locked(&mut sessions, now_ms);
            if sessions.len() >= self.settings.max_sessions {
                return Ok(None);
            }
        }
        sessions.insert(hash, Arc::clone(&session));
        Ok(Some((token, session)))
    }

    /// The live session for a token, its idle clock reset.
    pub fn session(&self, token: &str, now_ms: i64) -> Option<Arc<ApiSession>> {
        let hash = sha256_hex(token.as_bytes());
        let mut sessions = lock(&self.sessions);
        let session = sessions.get(&hash).cloned()?;
        let idle =
            i64::try_from(self.settings.session_idle_timeout.as_millis()).unwrap_or(i64::MAX);
        let mut state = lock(&session.state);
        if now_ms.saturating_sub(state.last_used_ms) > idle {
            drop(state);
            sessions.remove(&hash);
            drop(sessions);
            self.end(&session);
            return None;
        }
        state.last_used_ms = now_ms;
        drop(state);
        Some(session)
    }

    /// Ends the session of a token; `false` if there was none, or it had already expired (it
    /// is ended all the same): FileMaker answers a logout of an expired token with 952.
    pub fn close_session(&self, token: &str, now_ms: i64) -> bool {
        let hash = sha256_hex(token.as_bytes());
        let removed = lock(&self.sessions).remove(&hash);
        let Some(session) = removed else {
            return false;
        };
        let idle =
            i64::try_from(self.settings.session_idle_timeout.as_millis()).unwrap_or(i64::MAX);
        let live = now_ms.saturating_sub(lock(&session.state).last_used_ms) <= idle;
        self.end(&session);
        live
    }

    fn end(&self, session: &ApiSession) {
        if let Some(db) = self.database(&session.database) {
            let mut state = lock(&session.state);
            db.end_session(&mut state.sql, &session.lease_id);
            db.release_session(&session.lease_id);
        }
    }

    fn sweep_locked(&self, sessions: &mut HashMap<String, Arc<ApiSession>>, now_ms: i64) {
        let idle =
            i64::try_from(self.settings.session_idle_timeout.as_millis()).unwrap_or(i64::MAX);
        let expired: Vec<String> = sessions
            .iter()
            .filter(|(_, session)| now_ms.saturating_sub(lock(&session.state).last_used_ms) > idle)
            .map(|(hash, _)| hash.clone())
            .collect();
        for hash in expired {
            if let Some(session) = sessions.remove(&hash) {
                self.end(&session);
            }
        }
    }

    /// Ends idle sessions, rolls back idle SQL transactions and drops lapsed leases.
    pub fn housekeeping(&self, now_ms: i64) {
        let mut sessions = lock(&self.sessions);
        self.sweep_locked(&mut sessions, now_ms);
        let open: Vec<Arc<ApiSession>> = sessions.values().cloned().collect();
        drop(sessions);
        let idle_limit = self.settings.transaction_idle_timeout;
        let idle_ms = i64::try_from(idle_limit.as_millis()).unwrap_or(i64::MAX);
        for session in open {
            // A session busy with a call is not idle; the next round looks again.
            let Ok(mut state) = session.state.try_lock() else {
                continue;
            };
            if state.sql.in_transaction()
                && now_ms.saturating_sub(state.last_used_ms) > idle_ms
                && let Some(db) = self.database(&session.database)
            {
                let reason = format!(
                    "idle for more than {}",
                    humantime::format_duration(idle_limit)
                );
                db.abort_sql_session(&mut state.sql, &session.lease_id, &reason);
                tracing::warn!(user = %session.user, %reason, "SQL transaction rolled back");
            }
        }
        for db in self.databases.values() {
            let (_, lapsed) = db.leases(now_ms);
            for lease in lapsed {
                tracing::info!(table = %lease.table, record = lease.record_id, holder = %lease.holder.user, "edit lease lapsed");
            }
        }
    }

    /// Open Data API sessions.
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// The SQL session of a browser session.
    pub fn web_sql_session(&self, browser_token_hash: &str) -> Arc<Mutex<SqlSession>> {
        Arc::clone(
            lock(&self.web_sql)
                .entry(browser_token_hash.to_owned())
                .or_default(),
        )
    }

    /// Lease duration in ms.
    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.settings.lease_duration.as_millis()).unwrap_or(i64::MAX)
    }
}

/// The Data API and the SQL endpoint, for the gateway's built-in apps.
pub fn router(records: Arc<Records>) -> axum::Router {
    axum::Router::new()
        .route("/fmi/data/{*rest}", axum::routing::any(data_api::handle))
        // The catch-all needs one character after the slash; the bare roots answer the Data
        // API's envelope too (404), not the HTML page, because only API clients ask for them.
        .route("/fmi/data/", axum::routing::any(data_api::handle))
        .route("/fmi/data", axum::routing::any(data_api::handle))
        .route("/api/sql", axum::routing::any(sql_api::handle))
        .route("/_genkan/records", axum::routing::get(page::overview))
        .route(
            "/_genkan/records/{database}/{layout}",
            axum::routing::get(page::list),
        )
        .route(
            "/_genkan/records/{database}/{layout}/{id}",
            axum::routing::get(page::form).post(page::act),
        )
        .route(
            "/_genkan/records/{database}/{layout}/{id}/lease",
            axum::routing::post(page::renew),
        )
        .route(
            "/_genkan/static/records-lease.js",
            axum::routing::get(page::lease_script),
        )
        .with_state(records)
}

/// Serves the Data API and `/api/sql` as plain HTTP on a loopback listener (FileMaker Server's
/// internal port 3000 plays the same role) until shutdown. The config refuses other addresses.
pub async fn serve_plain(
    listener: tokio::net::TcpListener,
    records: Arc<Records>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use axum::extract::ConnectInfo;
    let app = router(records).layer(axum::middleware::from_fn(
        |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
         mut request: axum::extract::Request,
         next: axum::middleware::Next| async move {
            request.extensions_mut().insert(gateway::gate::Identity {
                user: None,
                groups: Vec::new(),
                source: peer.ip(),
            });
            next.run(request).await
        },
    ));
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "records plain-HTTP listener stopped");
    }
}

/// Ends idle Data API sessions, rolls back idle SQL transactions and drops lapsed edit leases,
/// every few seconds until shutdown (an idle transaction holds the database's write lock).
pub async fn housekeeping_loop(
    records: Arc<Records>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let records = Arc::clone(&records);
                let _ = tokio::task::spawn_blocking(move || {
                    records.housekeeping(crate::clock::timestamp_now().as_millisecond());
                })
                .await;
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// The actor for a session at `now_ms`.
pub fn actor<'a>(session: &'a ApiSession, now_ms: i64) -> Actor<'a> {
    Actor {
        user: &session.user,
        session: &session.lease_id,
        now_ms,
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn create_accounts(auth: &Auth, settings: &RecordsSettings) -> Result<()> {
    if settings.accounts.is_empty() {
        return Ok(());
    }
    let mut database = auth.database()?;
    for account in &settings.accounts {
        if database.user(&account.name)?.is_some() {
            continue;
        }
        let known: Vec<String> = database
            .groups()?
            .into_iter()
            .map(|group| group.name)
            .collect();
        let actor = crate::accounts::Actor {
            name: "config".into(),
            source: None,
        };
        let mut accounts = crate::accounts::Accounts::new(&mut database, actor);
        for group in account.groups.iter().filter(|group| !known.contains(group)) {
            accounts
                .add_group(group, "made for a records.account")
                .with_context(|| format!("records.account `{}`: group `{group}`", account.name))?;
        }
        accounts
            .add_user(&account.name, &account.groups, Some(&account.password))
            .with_context(|| format!("records.account `{}`", account.name))?;
        tracing::info!(user = %account.name, "account from records.account created");
    }
    Ok(())
}
