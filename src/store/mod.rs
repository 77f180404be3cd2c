//! The durable store: registry records, the FHIR resources made from them (versioned, with
//! history and search indexes), the outbox the sync engine drains, and the audit log.
//!
//! One SQL implementation over sqlx's `Any` driver serves two backends, each with its own
//! migrations (`migrations/sqlite`, `migrations/postgres`): SQLite (embedded default; WAL, one
//! writer connection and a pool of readers) and PostgreSQL (chosen by a `postgres://` URL;
//! several `engraft serve` processes can share one database). Where the dialects differ
//! (leasing outbox rows: `FOR UPDATE SKIP LOCKED` on PostgreSQL) the code says so.
//!
//! Every write of a record (its row, history, resources, tokens, outbox row, audit row) is one
//! transaction. Versions are checked in the `UPDATE ... WHERE version = $expected` itself
//! (optimistic concurrency), so two processes cannot both win.

pub mod deliveries;
mod group;
pub mod prepare;
pub mod registry;
pub mod reviews;
mod sql;

pub use deliveries::{Attempt, Delivery, DestinationStatus, FailedDelivery};
pub use prepare::{record_key, Prepared, PreparedResource};
pub use registry::Submission;
pub use reviews::{Decision, NewReview, Review};
pub use sql::{Backend, SqlStore};

/// Store errors. Messages hold ids and versions, never clinical data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("gone (deleted at version {0})")]
    Gone(i64),
    #[error("the record already exists as {0}")]
    Exists(String),
    #[error("another record holds this patient's resources")]
    PatientHeldElsewhere,
    #[error("version conflict: current version is {current}")]
    VersionConflict { current: i64 },
    #[error("unsupported database URL (use sqlite://FILE or postgres://...)")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// A stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub id: String,
    pub version: i64,
    pub deleted: bool,
    pub record: String,
    pub bundle: String,
    pub report: String,
    pub updated_at: String,
}

/// The version a write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub id: String,
    pub version: i64,
    pub updated_at: String,
}

/// One version of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceVersion {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated: String,
    pub deleted: bool,
    /// The resource JSON with `meta.versionId` and `meta.lastUpdated`.
    pub body: String,
}

/// A date comparison of the `date` search parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// A parsed search (see `server::search` for the HTTP side).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    pub ids: Vec<String>,
    /// `Patient/<id>`.
    pub patient: Option<String>,
    /// (param, system or None, value): `identifier` and `code`.
    pub tokens: Vec<(String, Option<String>, String)>,
    pub dates: Vec<(DateOp, String)>,
    pub last_updated: Vec<(DateOp, String)>,
    /// `_sort=_lastUpdated` (ascending) or `-_lastUpdated`.
    pub sort_desc: bool,
    pub count: usize,
    pub offset: usize,
}

/// A page of results and the total match count.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub total: i64,
    pub resources: Vec<ResourceVersion>,
}

/// Row counts, for readiness and for tests that check a failed request changed nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub records: i64,
    pub record_versions: i64,
    pub resources: i64,
    pub resource_versions: i64,
    pub outbox: i64,
    pub audit: i64,
}

/// An outbox row leased to one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub seq: i64,
    pub record: String,
    pub record_version: i64,
    pub action: String,
    pub attempts: i64,
}
