//! Edit leases: who is editing which record, since when, until when.
//!
//! FileMaker holds a record lock while a user is typing into the record and shows others "X is
//! modifying this record". genkan makes that lock an explicit lease: it names its holder (user
//! and session), it expires unless renewed, it is released on commit, revert, logout or session
//! expiry, and an administrator can take it over. Every write path asks [`Leases::blocking`]
//! before it changes a record, so one rule decides for the Data API, SQL and the records page.
//!
//! Time is given as milliseconds since the Unix epoch by the caller; nothing here reads a clock.

use std::collections::HashMap;

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The account name.
    pub user: String,
    /// The session (Data API token session, SQL session or browser session) holding it; leases
    /// belong to sessions so that one person's second window does not silently share a lock.
    pub session: String,
}

/// One lease on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The table.
    pub table: String,
    /// The record (`recordId`, SQL `ROWID`).
    pub record_id: i64,
    /// Who holds it.
    pub holder: Holder,
    /// When it was taken (ms since the epoch).
    pub since_ms: i64,
    /// When it lapses unless renewed (ms since the epoch).
    pub expires_ms: i64,
    /// A number that grows with every lease granted: a holder whose lease lapsed and was given
    /// to someone else cannot pass the newer lease off as its own.
    pub generation: u64,
}

/// Why a lease could not be taken or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Someone else holds the record.
    #[error("record {} of {} is being edited by {} (since {} ms)", .0.record_id, .0.table, .0.holder.user, .0.since_ms)]
    HeldByOther(Box<Lease>),
    /// The session does not hold a lease on the record (never did, released or lapsed).
    #[error("no lease held on this record")]
    NotHeld,
}

/// All live leases. Lapsed leases are treated as absent at once and removed by [`Leases::expire`].
#[derive(Debug, Default)]
pub struct Leases {
    by_table: HashMap<String, HashMap<i64, Lease>>,
    next_generation: u64,
}

impl Leases {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes (or, for the same session, renews) the lease on a record for `ttl_ms`.
    pub fn acquire(
        &mut self,
        table: &str,
        record_id: i64,
        holder: &Holder,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Lease, LeaseError> {
        if let Some(current) = self.blocking(table, record_id, &holder.session, now_ms) {
            return Err(LeaseError::HeldByOther(Box::new(current.clone())));
        }
        if let Some(mine) = self
            .live_mut(table, record_id, now_ms)
            .filter(|lease| lease.holder.session == holder.session)
        {
            mine.expires_ms = now_ms.saturating_add(ttl_ms);
            return Ok(mine.clone());
        }
        Ok(self.grant(table, record_id, holder, now_ms, ttl_ms))
    }

    fn grant(
        &mut self,
        table: &str,
        record_id: i64,
        holder: &Holder,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Lease {
        self.next_generation += 1;
        let lease = Lease {
            table: table.to_owned(),
            record_id,
            holder: holder.clone(),
            since_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            generation: self.next_generation,
        };
        self.by_table
            .entry(table.to_owned())
            .or_default()
            .insert(record_id, lease.clone());
        lease
    }

    /// Extends a lease the session holds (the heartbeat).
    pub fn renew(
        &mut self,
        table: &str,
        record_id: i64,
        session: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Lease, LeaseError> {
        match self.live_mut(table, record_id, now_ms) {
            Some(lease) if lease.holder.session == session => {
                lease.expires_ms = now_ms.saturating_add(ttl_ms);
                Ok(lease.clone())
            }
            Some(lease) => Err(LeaseError::HeldByOther(Box::new(lease.clone()))),
            None => Err(LeaseError::NotHeld),
        }
    }

    /// Gives up a lease the session holds; `false` if it held none.
    pub fn release(&mut self, table: &str, record_id: i64, session: &str) -> bool {
        let Some(rows) = self.by_table.get_mut(table) else {
            return false;
        };
        if rows
            .get(&record_id)
            .is_some_and(|lease| lease.holder.session == session)
        {
            rows.remove(&record_id);
            return true;
        }
        false
    }

    /// Releases every lease of a session (logout, session expiry, commit or rollback of an SQL
    /// transaction); returns how many.
    pub fn release_session(&mut self, session: &str) -> usize {
        let mut released = 0;
        for rows in self.by_table.values_mut() {
            let before = rows.len();
            rows.retain(|_, lease| lease.holder.session != session);
            released += before - rows.len();
        }
        released
    }

    /// Moves a record's lease to a new holder whoever held it (an administrator's take-over);
    /// returns the lease that was replaced, if a live one was.
    pub fn take_over(
        &mut self,
        table: &str,
        record_id: i64,
        holder: &Holder,
        now_ms: i64,
        ttl_ms: i64,
    ) -> (Lease, Option<Lease>) {
        let previous = self
            .by_table
            .get_mut(table)
            .and_then(|rows| rows.remove(&record_id))
            .filter(|lease| lease.expires_ms > now_ms);
        let lease = self.grant(table, record_id, holder, now_ms, ttl_ms);
        (lease, previous)
    }

    /// The live lease that stops `session` from writing the record, if any.
    pub fn blocking(
        &self,
        table: &str,
        record_id: i64,
        session: &str,
        now_ms: i64,
    ) -> Option<&Lease> {
        self.by_table
            .get(table)?
            .get(&record_id)
            .filter(|lease| lease.expires_ms > now_ms && lease.holder.session != session)
    }

    /// The live lease on a record, whoever holds it.
    pub fn current(&self, table: &str, record_id: i64, now_ms: i64) -> Option<&Lease> {
        self.by_table
            .get(table)?
            .get(&record_id)
            .filter(|lease| lease.expires_ms > now_ms)
    }

    /// Whether any live lease exists on the table (lets bulk writes skip per-row checks).
    pub fn any_on(&self, table: &str, now_ms: i64) -> bool {
        self.by_table
            .get(table)
            .is_some_and(|rows| rows.values().any(|lease| lease.expires_ms > now_ms))
    }

    /// Drops lapsed leases and returns them (for the audit log).
    pub fn expire(&mut self, now_ms: i64) -> Vec<Lease> {
        let mut lapsed = Vec::new();
        for rows in self.by_table.values_mut() {
            rows.retain(|_, lease| {
                let live = lease.expires_ms > now_ms;
                if !live {
                    lapsed.push(lease.clone());
                }
                live
            });
        }
        self.by_table.retain(|_, rows| !rows.is_empty());
        lapsed
    }

    /// Every live lease, oldest first.
    pub fn list(&self, now_ms: i64) -> Vec<Lease> {
        let mut all: Vec<Lease> = self
            .by_table
            .values()
            .flat_map(|rows| rows.values())
            .filter(|lease| lease.expires_ms > now_ms)
            .cloned()
            .collect();
        all.sort_by_key(|lease| (lease.since_ms, lease.generation));
        all
    }

    fn live_mut(&mut self, table: &str, record_id: i64, now_ms: i64) -> Option<&mut Lease> {
        self.by_table
            .get_mut(table)?
            .get_mut(&record_id)
            .filter(|lease| lease.expires_ms > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(user: &str, session: &str) -> Holder {
        Holder {
            user: user.into(),
            session: session.into(),
        }
    }

    #[test]
    fn a_lease_blocks_other_sessions_until_it_lapses() {
        let mut leases = Leases::new();
        let alice = holder("alice", "s1");
        let lease = leases
            .acquire("customers", 7, &alice, 1_000, 60_000)
            .unwrap();
        assert_eq!(lease.expires_ms, 61_000);
        assert!(
            leases.blocking("customers", 7, "s1", 2_000).is_none(),
            "own session writes"
        );
        let blocker = leases.blocking("customers", 7, "s2", 2_000).unwrap();
        assert_eq!(blocker.holder.user, "alice");
        let refused = leases.acquire("customers", 7, &holder("bob", "s2"), 2_000, 60_000);
        assert!(matches!(refused, Err(LeaseError::HeldByOther(lease)) if lease.since_ms == 1_000));
        assert!(
            leases.blocking("customers", 7, "s2", 61_000).is_none(),
            "lapsed"
        );
        let bob = leases
            .acquire("customers", 7, &holder("bob", "s2"), 61_000, 60_000)
            .unwrap();
        assert!(bob.generation > lease.generation);
    }

    #[test]
    fn renewal_release_and_session_end() {
        let mut leases = Leases::new();
        leases.acquire("t", 1, &holder("a", "s1"), 0, 100).unwrap();
        leases.acquire("t", 2, &holder("a", "s1"), 0, 100).unwrap();
        assert_eq!(leases.renew("t", 1, "s1", 50, 100).unwrap().expires_ms, 150);
        assert!(
            leases
                .renew("t", 1, "s2", 50, 100)
                .unwrap_err()
                .to_string()
                .contains("a")
        );
        assert_eq!(
            leases.renew("t", 3, "s1", 50, 100),
            Err(LeaseError::NotHeld)
        );
        assert!(!leases.release("t", 1, "s2"));
        assert!(leases.release("t", 1, "s1"));
        assert_eq!(leases.release_session("s1"), 1);
        assert!(leases.list(0).is_empty());
    }

    #[test]
    fn take_over_moves_the_lease_and_reports_the_previous_holder() {
        let mut leases = Leases::new();
        leases
            .acquire("t", 1, &holder("a", "s1"), 0, 1_000)
            .unwrap();
        let (lease, previous) = leases.take_over("t", 1, &holder("admin", "s9"), 10, 1_000);
        assert_eq!(lease.holder.user, "admin");
        assert_eq!(previous.unwrap().holder.user, "a");
        assert!(leases.blocking("t", 1, "s1", 20).is_some());
    }

    #[test]
    fn expiry_returns_what_lapsed() {
        let mut leases = Leases::new();
        leases.acquire("t", 1, &holder("a", "s1"), 0, 10).unwrap();
        leases.acquire("t", 2, &holder("a", "s1"), 0, 100).unwrap();
        let lapsed = leases.expire(50);
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].record_id, 1);
        assert!(leases.any_on("t", 50));
        assert!(!leases.any_on("t", 100));
    }
}
