//! genkan's records engine core: FileMaker's semantics (find requests, sort, layouts, message
//! codes, edit leases) and the `Store` trait every database adapter implements.
//!
//! What it is: pure rules. A `_find` request of the FileMaker Data API (one object per find
//! request, fields ANDed within it, requests ORed, `omit` requests subtracted) becomes one SQL
//! condition with bound parameters; layouts resolve field names so SQL only sees known columns;
//! leases decide who may write a record; [`conformance`] checks any store against these rules.
//!
//! What it is not: storage or HTTP. `store-sqlite` implements [`Store`]; the server carries the
//! Data API, the SQL endpoint and the records page.
//!
//! Invariants: no I/O, no clock (time comes in as `now_ms`), no SQL engine; column names come
//! from the caller's schema, never from the request; values are only ever parameters.

pub mod code;
pub mod conformance;
pub mod find;
pub mod layout;
pub mod lease;
pub mod store;

pub use code::Code;
pub use find::{Condition, FieldKind, FindError, FindRequest, Value, condition_for};
pub use layout::{
    Field, FindByName, Layout, LayoutDefinition, Portal, PortalDefinition, SortRequest, quote,
};
pub use lease::{Holder, Lease, LeaseError, Leases};
pub use store::{
    Access, Actor, BulkMode, Datum, FoundSet, Grants, PortalRows, Query, Range, Record, Statement,
    StatementOutcome, Store, StoreError,
};
