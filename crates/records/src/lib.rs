//! genkan's records engine core: what FileMaker's find requests mean, expressed as SQL that any
//! store can run.
//!
//! What it is: pure translation. A `_find` request of the FileMaker Data API (one object per
//! find request, fields ANDed within it, requests ORed, `omit` requests subtracted) becomes one
//! SQL condition with bound parameters; no value is ever spliced into SQL text.
//!
//! What it is not (yet): the `Store` trait, layouts and record locking arrive with the rest of
//! the records issue; this crate starts with the part the Data API and the records page share.
//!
//! Invariants: no I/O, no clock, no SQL engine; column names come from the caller's schema,
//! never from the request, so a find cannot name a column that does not exist.

pub mod find;

pub use find::{Condition, FieldKind, FindError, FindRequest, Value, condition_for};
