//! Enrolled subjects and their embeddings: the durable store (sqlx over SQLite or PostgreSQL), the
//! in-memory exact index per model that search scans, and the follower that keeps the index current.
//!
//! The store is the source of truth. Every write also appends to a change log in the same transaction,
//! and writers are serialised, so change numbers commit in order; the index applies the log in order,
//! which is how a replica sees another replica's enrolments and how a server sees its own.
//!
//! - `db.rs`: opening the store (migrations, SQLite pragmas) and every query.
//! - `index.rs`: contiguous f32 rows per (model, weights) and the batched exact top-k scan.
//! - `cells.rs`: the approximate index (k-means cells) of large catalogues, for `/search`.
//! - `catalogue.rs`: store + index + follower; what the HTTP handlers use.
//! - `subjects.rs`: the catalogue's subject reads and writes, each counting its failures; writes refresh
//!   the index.
//! - `stale.rs`: the images other weights embedded, and their re-embedding (`simverify reindex`).
//! - `ids.rs`: subject and image identifiers.
//! - `clock.rs`: timestamps (Unix milliseconds, RFC 3339 for answers).

mod catalogue;
mod cells;
mod clock;
mod db;
mod ids;
mod index;
mod migrations;
mod stale;
mod subjects;

pub(crate) use catalogue::{Catalogue, SearchRefusal, StaleEmbeddings};
pub(crate) use cells::ANN_PROBES;
pub(crate) use clock::{now_ms, rfc3339};
pub(crate) use db::{Created, ImageRow, Store, StoreError, SubjectRow};
pub(crate) use ids::{check_id, ImageId};
pub(crate) use index::{Approximate, ANN_FROM};
pub(crate) use stale::{Reembedded, StaleImage};
