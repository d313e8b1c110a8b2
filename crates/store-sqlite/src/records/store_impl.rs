//! `records::Store` for SQLite: the trait's methods, each a thin call into this module's parts.

use std::sync::Arc;

use records::{
    Actor, BulkMode, Code, Datum, FoundSet, Grants, Holder, Layout, LayoutDefinition, Lease,
    LeaseError, Query, Range, Record, Statement, StatementOutcome, Store, StoreError,
};

use super::RecordsDb;
use super::exec::SqlSession;
use super::schema::store_layout;

// Taken by value so that it reads as `.map_err(…)` at every call.
#[allow(clippy::needless_pass_by_value)]
fn internal(error: crate::Error) -> StoreError {
    StoreError::fm(Code::Unknown, error.to_string())
}

impl Store for RecordsDb {
    type Session = SqlSession;

    fn tables(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .schema()
            .map_err(internal)?
            .tables
            .keys()
            .cloned()
            .collect())
    }

    fn layouts(&self) -> Result<Vec<Layout>, StoreError> {
        Ok(self.schema().map_err(internal)?.layouts())
    }

    fn layout(&self, name: &str) -> Result<Layout, StoreError> {
        self.schema().map_err(internal)?.layout(name)
    }

    fn define_layout(&self, definition: &LayoutDefinition) -> Result<Layout, StoreError> {
        let layout = self.schema().map_err(internal)?.resolve(definition)?;
        {
            let writer = self.writer();
            store_layout(&writer.connection, definition).map_err(super::data::engine)?;
        }
        self.schema_changed();
        Ok(layout)
    }

    fn query(&self, layout: &Layout, query: &Query) -> Result<FoundSet, StoreError> {
        self.query_records(layout, query)
    }

    fn record(
        &self,
        layout: &Layout,
        record_id: i64,
        portals: Option<&[(String, Range)]>,
    ) -> Result<Record, StoreError> {
        self.one_record(layout, record_id, portals)
    }

    fn create(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        fields: &[(String, Datum)],
    ) -> Result<(i64, i64), StoreError> {
        self.create_record(actor, layout, fields)
    }

    fn edit(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        record_id: i64,
        fields: &[(String, Datum)],
        expected_mod_id: Option<i64>,
    ) -> Result<i64, StoreError> {
        self.edit_record(actor, layout, record_id, fields, expected_mod_id)
    }

    fn delete(&self, actor: Actor<'_>, layout: &Layout, record_id: i64) -> Result<(), StoreError> {
        self.delete_record(actor, layout, record_id)
    }

    fn duplicate(
        &self,
        actor: Actor<'_>,
        layout: &Layout,
        record_id: i64,
    ) -> Result<(i64, i64), StoreError> {
        self.duplicate_record(actor, layout, record_id)
    }

    fn lock(
        &self,
        actor: Actor<'_>,
        table: &str,
        record_id: i64,
        ttl_ms: i64,
    ) -> Result<Lease, StoreError> {
        let exists = self.schema().map_err(internal)?.tables.contains_key(table);
        if !exists {
            return Err(StoreError::fm(
                Code::TableMissing,
                format!("no table `{table}`"),
            ));
        }
        let holder = Holder {
            user: actor.user.to_owned(),
            session: actor.session.to_owned(),
        };
        self.leases()
            .acquire(table, record_id, &holder, actor.now_ms, ttl_ms)
            .map_err(|error| match error {
                LeaseError::HeldByOther(lease) => StoreError::Locked(vec![*lease]),
                LeaseError::NotHeld => StoreError::fm(Code::RecordInUse, error.to_string()),
            })
    }

    fn unlock(&self, actor: Actor<'_>, table: &str, record_id: i64) -> bool {
        self.leases().release(table, record_id, actor.session)
    }

    fn release_session(&self, session: &str) -> usize {
        self.leases().release_session(session)
    }

    fn take_over(
        &self,
        actor: Actor<'_>,
        table: &str,
        record_id: i64,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        let holder = Holder {
            user: actor.user.to_owned(),
            session: actor.session.to_owned(),
        };
        Ok(self
            .leases()
            .take_over(table, record_id, &holder, actor.now_ms, ttl_ms)
            .1)
    }

    fn lease(&self, table: &str, record_id: i64, now_ms: i64) -> Option<Lease> {
        self.leases().current(table, record_id, now_ms).cloned()
    }

    fn leases(&self, now_ms: i64) -> (Vec<Lease>, Vec<Lease>) {
        let mut leases = Self::leases(self);
        let lapsed = leases.expire(now_ms);
        (leases.list(now_ms), lapsed)
    }

    fn session(&self) -> Result<SqlSession, StoreError> {
        Ok(SqlSession::default())
    }

    fn execute(
        &self,
        session: &mut SqlSession,
        actor: Actor<'_>,
        statements: &[Statement],
        mode: BulkMode,
        grants: Arc<dyn Grants>,
    ) -> Result<Vec<StatementOutcome>, StoreError> {
        self.execute_sql(session, actor, statements, mode, grants)
    }

    fn end_session(&self, session: &mut SqlSession, session_id: &str) {
        self.end_sql_session(session, session_id);
    }
}
