//! The SQL store over sqlx `Any`: SQLite or PostgreSQL, chosen by URL.

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Row, Transaction};

use super::{
    Counts, DateOp, OutboxRow, Page, Prepared, PreparedResource, ResourceVersion, Search,
    StoreError, StoredRecord, Written,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct SqlStore {
    /// SQLite: one connection, so writes queue instead of failing on the write lock.
    pub(super) writer: AnyPool,
    pub(super) reader: AnyPool,
    pub backend: Backend,
    /// Destinations every write enqueues a delivery for (none: one row with destination '').
    destinations: std::sync::Arc<Vec<String>>,
    /// SQLite: new records are written in group commits.
    group: Option<super::group::Group>,
}

/// An instant as stored: ISO 8601 UTC with milliseconds (sorts as text).
pub(super) fn instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn now() -> String {
    instant(chrono::Utc::now())
}

/// The VALUES rows of a multi-row insert: `template` (one row, `{}` for each bound value, e.g.
/// `"({}, {}, 1, {})"`) repeated `rows` times. Placeholders are `$1, $2...` on PostgreSQL and
/// anonymous `?` on SQLite: sqlx binds SQLite's numbered ones by looking each name up in a
/// list, which is quadratic in their number and cost more than the inserts themselves.
pub(super) fn values_rows(backend: Backend, template: &str, rows: usize) -> String {
    let parts: Vec<&str> = template.split("{}").collect();
    let mut out = String::with_capacity(rows * (template.len() + 8));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            out.push(',');
        }
        for (i, part) in parts.iter().enumerate() {
            out.push_str(part);
            if i + 1 < parts.len() {
                n += 1;
                match backend {
                    Backend::Sqlite => out.push('?'),
                    Backend::Postgres => {
                        out.push('$');
                        out.push_str(&n.to_string());
                    }
                }
            }
        }
    }
    out
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl SqlStore {
    /// Opens (creating a SQLite file if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let url = if rest.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            // The one writer gets a larger page cache (index pages stay in memory instead of
            // being read back from the OS for every insert), keeps statement journals in
            // memory and checkpoints the WAL every 4,000 pages instead of 1,000; commits stay
            // durable (WAL, synchronous = FULL). A statement journal holds the pages one
            // statement changes (group commit uses no savepoints: `super::group`).
            let options = |writer: bool| {
                AnyPoolOptions::new().after_connect(move |conn, _| {
                    Box::pin(async move {
                        let common = [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 10000",
                        ];
                        let writing = [
                            "PRAGMA cache_size = -32768",
                            "PRAGMA temp_store = MEMORY",
                            "PRAGMA wal_autocheckpoint = 4000",
                        ];
                        let extra: &[&str] = if writer { &writing } else { &[] };
                        for pragma in common.iter().chain(extra) {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                })
            };
            let writer = options(true).max_connections(1).connect(&url).await?;
            SQLITE_MIGRATIONS.run(&writer).await?;
            let reader = options(false).max_connections(4).connect(&url).await?;
            Ok(SqlStore {
                group: Some(super::group::Group::start(writer.clone())),
                writer,
                reader,
                backend: Backend::Sqlite,
                destinations: Default::default(),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await?;
            // sqlx takes an advisory lock: processes starting together migrate once.
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Ok(SqlStore {
                writer: pool.clone(),
                reader: pool,
                backend: Backend::Postgres,
                destinations: Default::default(),
                group: None,
            })
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Every later write enqueues one delivery per destination, in its own transaction.
    pub fn with_destinations(mut self, names: Vec<String>) -> SqlStore {
        self.destinations = std::sync::Arc::new(names);
        self
    }

    /// The store answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Stores a new record with its resources, outbox and audit rows, in one transaction.
    /// A record that exists (and is not deleted) is `Exists`; a deleted one is revived as
    /// its next version.
    pub async fn create(&self, p: Prepared, actor: &str) -> Result<Written, StoreError> {
        let mut w = self.create_many(vec![p], actor).await?;
        Ok(w.remove(0))
    }

    /// Stores several new records in ONE transaction: all of them, or (on any error) none.
    /// On SQLite the write joins the next group commit ([`super::group`]): it is answered
    /// once the transaction holding it has committed. The records are taken, not copied: the
    /// group-commit task holds them until then.
    pub async fn create_many(
        &self,
        ps: Vec<Prepared>,
        actor: &str,
    ) -> Result<Vec<Written>, StoreError> {
        if let Some(group) = &self.group {
            return group.create(self, ps, actor).await;
        }
        let at = now();
        let mut tx = self.writer.begin().await?;
        let out = self.create_in(&mut tx, &ps, actor, &at).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The writes of [`SqlStore::create_many`] in `tx`.
    pub(super) async fn create_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        ps: &[Prepared],
        actor: &str,
        at: &str,
    ) -> Result<Vec<Written>, StoreError> {
        let mut out = Vec::with_capacity(ps.len());
        for p in ps {
            let current: Option<(i64, i64)> =
                sqlx::query("SELECT version, deleted FROM records WHERE id = $1")
                    .bind(&p.id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .map(|r| (r.get(0), r.get(1)));
            let version = match current {
                Some((_, 0)) => return Err(StoreError::Exists(p.id.clone())),
                // A withdrawn record submitted again: its next version.
                Some((v, _)) => self.next_version(tx, &p.id, v, p, at).await?,
                None => {
                    let inserted = sqlx::query(
                        "INSERT INTO records (id, version, registry, record_id, deleted, record, bundle, bundle_zstd, report, updated_at) \
                         VALUES ($1, 1, $2, $3, 0, $4, '', $5, $6, $7)",
                    )
                    .bind(&p.id)
                    .bind(&p.registry)
                    .bind(&p.record_id)
                    .bind(&p.record)
                    .bind(&p.bundle_packed)
                    .bind(&p.report)
                    .bind(at)
                    .execute(&mut **tx)
                    .await;
                    match inserted {
                        Err(e) if is_unique_violation(&e) => {
                            return Err(StoreError::Exists(p.id.clone()))
                        }
                        other => {
                            other?;
                        }
                    }
                    1
                }
            };
            self.finish_write(tx, p, version, false, at, actor, "create")
                .await?;
            out.push(Written {
                id: p.id.clone(),
                version,
                updated_at: at.to_string(),
            });
        }
        Ok(out)
    }

    /// Replaces record `p.id` at `expected` version with `p` (its next version).
    pub async fn update(
        &self,
        expected: i64,
        p: &Prepared,
        actor: &str,
    ) -> Result<Written, StoreError> {
        let mut w = self.update_many(&[(expected, p)], actor, "update").await?;
        Ok(w.remove(0))
    }

    /// Replaces several records, each `(expected version, next version)`, in ONE
    /// transaction: all of them, or (a stale version, any error) none. `action` names the
    /// write in the audit log.
    pub async fn update_many(
        &self,
        updates: &[(i64, &Prepared)],
        actor: &str,
        action: &str,
    ) -> Result<Vec<Written>, StoreError> {
        let at = now();
        let mut tx = self.writer.begin().await?;
        let mut out = Vec::with_capacity(updates.len());
        for (expected, p) in updates {
            let version = self.next_version(&mut tx, &p.id, *expected, p, &at).await?;
            self.finish_write(&mut tx, p, version, false, &at, actor, action)
                .await?;
            out.push(Written {
                id: p.id.clone(),
                version,
                updated_at: at.clone(),
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The record that holds live Patient `id`.
    pub async fn record_of_patient(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query(
            "SELECT record FROM resources WHERE type = 'Patient' AND id = $1 AND deleted = 0",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .map(|r| r.get(0)))
    }

    /// Consent withdrawal: a tombstone version of the record; its resources are deleted (a
    /// deleted version each) and an outbox row tells the sync engine.
    pub async fn delete(
        &self,
        id: &str,
        expected: Option<i64>,
        actor: &str,
    ) -> Result<Written, StoreError> {
        let at = now();
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query("SELECT version, deleted, record FROM records WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (current, deleted, record): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
        if deleted == 1 {
            return Err(StoreError::Gone(current));
        }
        if expected.is_some_and(|e| e != current) {
            return Err(StoreError::VersionConflict { current });
        }
        let done = sqlx::query(
            "UPDATE records SET version = version + 1, deleted = 1, updated_at = $1 WHERE id = $2 AND version = $3",
        )
        .bind(&at)
        .bind(id)
        .bind(current)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(self.why_not(&mut tx, id).await?);
        }
        let version = current + 1;
        let tombstone = Prepared {
            id: id.to_string(),
            registry: String::new(),
            record_id: String::new(),
            record,
            bundle: String::new(),
            bundle_packed: Vec::new(),
            report: String::new(),
            resources: Vec::new(),
        };
        self.finish_write(&mut tx, &tombstone, version, true, &at, actor, "delete")
            .await?;
        tx.commit().await?;
        Ok(Written {
            id: id.to_string(),
            version,
            updated_at: at,
        })
    }

    /// Writes `p` as the version after `expected` of record `id` (live again if it was
    /// withdrawn). The version check is in the `UPDATE` itself, so concurrent writers cannot
    /// both succeed; the loser learns why (`NotFound` or `VersionConflict`).
    pub(super) async fn next_version(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
        expected: i64,
        p: &Prepared,
        at: &str,
    ) -> Result<i64, StoreError> {
        let done = sqlx::query(
            "UPDATE records SET version = version + 1, deleted = 0, record = $1, bundle = '', bundle_zstd = $2, report = $3, updated_at = $4 \
             WHERE id = $5 AND version = $6",
        )
        .bind(&p.record)
        .bind(&p.bundle_packed)
        .bind(&p.report)
        .bind(at)
        .bind(id)
        .bind(expected)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(self.why_not(tx, id).await?);
        }
        Ok(expected + 1)
    }

    async fn why_not(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
    ) -> Result<StoreError, StoreError> {
        let current: Option<i64> = sqlx::query("SELECT version FROM records WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.get(0));
        Ok(match current {
            None => StoreError::NotFound,
            Some(current) => StoreError::VersionConflict { current },
        })
    }

    /// History, resources, outbox and audit of a record write.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish_write(
        &self,
        tx: &mut Transaction<'static, Any>,
        p: &Prepared,
        version: i64,
        deleted: bool,
        at: &str,
        actor: &str,
        action: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO record_history (id, version, deleted, record, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.id)
        .bind(version)
        .bind(deleted as i64)
        .bind(&p.record)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        self.write_resources(tx, &p.id, &p.resources, at, deleted)
            .await?;
        let journal = [String::new()];
        let destinations: &[String] = if self.destinations.is_empty() {
            &journal
        } else {
            &self.destinations
        };
        for d in destinations {
            sqlx::query(
                "INSERT INTO outbox (record, record_version, action, status, attempts, created_at, destination, next_attempt_at, updated_at) \
                 VALUES ($1, $2, $3, 'pending', 0, $4, $5, $4, $4)",
            )
            .bind(&p.id)
            .bind(version)
            .bind(if deleted { "delete" } else { "upsert" })
            .bind(at)
            .bind(d)
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO audit (at, actor, action, entity, entity_id, version) VALUES ($1, $2, $3, 'record', $4, $5)",
        )
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(&p.id)
        .bind(version)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Makes the record's live resources `resources`: new ones are inserted, changed ones get
    /// a new version, unchanged ones are left alone, and ones the record no longer has get a
    /// deleted version, except Provenances: each names one record version and stays, unless
    /// the record is withdrawn (`withdraw`), which deletes everything.
    async fn write_resources(
        &self,
        tx: &mut Transaction<'static, Any>,
        record: &str,
        resources: &[PreparedResource],
        at: &str,
        withdraw: bool,
    ) -> Result<(), StoreError> {
        let existing: Vec<(String, String, i64, i64, String)> =
            sqlx::query("SELECT type, id, version, deleted, body FROM resources WHERE record = $1")
                .bind(record)
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect();
        let mut seen = std::collections::HashSet::new();
        let mut new_rows: Vec<(&PreparedResource, String)> = Vec::new();
        for r in resources {
            seen.insert((r.resource_type.as_str(), r.id.as_str()));
            let old = existing
                .iter()
                .find(|(t, i, ..)| *t == r.resource_type && *i == r.id);
            match old {
                None => new_rows.push((r, r.body.with_meta(1, at))),
                Some((_, _, v, deleted, body)) => {
                    if *deleted == 0 && r.body.same_as(body) {
                        continue; // unchanged: no new version
                    }
                    let version = v + 1;
                    let body = r.body.with_meta(version, at);
                    self.supersede(tx, record, &r.resource_type, &r.id).await?;
                    sqlx::query(
                        "UPDATE resources SET version = $1, patient = $2, date = $3, last_updated = $4, deleted = 0, body = $5 \
                         WHERE type = $6 AND id = $7",
                    )
                    .bind(version)
                    .bind(&r.patient)
                    .bind(&r.date)
                    .bind(at)
                    .bind(&body)
                    .bind(&r.resource_type)
                    .bind(&r.id)
                    .execute(&mut **tx)
                    .await?;
                    let tokens: Vec<_> = r.tokens.iter().map(|t| (r, t)).collect();
                    self.insert_tokens(tx, record, &tokens).await?;
                }
            }
        }
        // New resources: a few multi-row statements instead of one round trip per row.
        for chunk in new_rows.chunks(100) {
            let sql = format!(
                "INSERT INTO resources (type, id, version, record, patient, date, last_updated, deleted, body) VALUES {}",
                values_rows(self.backend, "({}, {}, 1, {}, {}, {}, {}, 0, {})", chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for (r, body) in chunk {
                q = q
                    .bind(&r.resource_type)
                    .bind(&r.id)
                    .bind(record)
                    .bind(&r.patient)
                    .bind(&r.date)
                    .bind(at)
                    .bind(body);
            }
            match q.execute(&mut **tx).await {
                // The resource ids of a record derive from registry, centre and UPN: another
                // record (another recordId) already holds this patient's resources.
                Err(e) if is_unique_violation(&e) => return Err(StoreError::PatientHeldElsewhere),
                other => {
                    other?;
                }
            }
            let tokens: Vec<(&PreparedResource, &(&str, String, String))> = chunk
                .iter()
                .flat_map(|(r, _)| r.tokens.iter().map(move |t| (*r, t)))
                .collect();
            self.insert_tokens(tx, record, &tokens).await?;
        }
        for (t, i, v, deleted, _) in &existing {
            let kept_history = t == "Provenance" && !withdraw;
            if *deleted == 0 && !kept_history && !seen.contains(&(t.as_str(), i.as_str())) {
                // The deleted version keeps the last body, as FHIR servers commonly do.
                self.supersede(tx, record, t, i).await?;
                sqlx::query(
                    "UPDATE resources SET version = $1, last_updated = $2, deleted = 1 WHERE type = $3 AND id = $4",
                )
                .bind(v + 1)
                .bind(at)
                .bind(t)
                .bind(i)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    /// Before a resource of `record` gets a new version: its current version is copied into
    /// `resource_history` and its search tokens are dropped. The history table holds
    /// superseded versions only (the current one is the row in `resources`), so a new
    /// resource is written once, not twice.
    async fn supersede(
        &self,
        tx: &mut Transaction<'static, Any>,
        record: &str,
        rtype: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO resource_history (type, id, version, last_updated, deleted, body) \
             SELECT type, id, version, last_updated, deleted, body FROM resources WHERE type = $1 AND id = $2",
        )
        .bind(rtype)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM resource_tokens WHERE record = $1 AND type = $2 AND id = $3")
            .bind(record)
            .bind(rtype)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Token rows are found by their record first (`resource_tokens_by_owner` is
    /// `(record, type, id)`): a record's tokens sit together in the index, so storing one
    /// touches a few index pages instead of one per resource (resource ids are random).
    async fn insert_tokens(
        &self,
        tx: &mut Transaction<'static, Any>,
        record: &str,
        tokens: &[(&PreparedResource, &(&str, String, String))],
    ) -> Result<(), StoreError> {
        for chunk in tokens.chunks(400) {
            let sql = format!(
                "INSERT INTO resource_tokens (record, type, id, param, system, value) VALUES {}",
                values_rows(self.backend, "({}, {}, {}, {}, {}, {})", chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for (r, (param, system, value)) in chunk {
                q = q
                    .bind(record)
                    .bind(&r.resource_type)
                    .bind(&r.id)
                    .bind(*param)
                    .bind(system)
                    .bind(value);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The current version of a record (also a deleted one).
    pub async fn record(&self, id: &str) -> Result<StoredRecord, StoreError> {
        let row = sqlx::query(
            "SELECT id, version, deleted, record, bundle, bundle_zstd, report, updated_at FROM records WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?;
        // Rows written before migration 0010 hold the text; later ones the packed bytes.
        let bundle = match row.get::<Option<Vec<u8>>, _>(5) {
            None => row.get(4),
            Some(packed) => super::prepare::unpack(&packed).ok_or_else(|| {
                StoreError::Database(sqlx::Error::Decode(
                    format!("record {id}: the stored Bundle is not a zstd frame of UTF-8").into(),
                ))
            })?,
        };
        Ok(StoredRecord {
            id: row.get(0),
            version: row.get(1),
            deleted: row.get::<i64, _>(2) == 1,
            record: row.get(3),
            bundle,
            report: row.get(6),
            updated_at: row.get(7),
        })
    }

    /// The current version of a resource; `Gone` if its current version is a deletion.
    pub async fn read(&self, rtype: &str, id: &str) -> Result<ResourceVersion, StoreError> {
        let row = sqlx::query(
            "SELECT type, id, version, last_updated, deleted, body FROM resources WHERE type = $1 AND id = $2",
        )
        .bind(rtype)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?;
        let v = version_of(&row);
        if v.deleted {
            return Err(StoreError::Gone(v.version));
        }
        Ok(v)
    }

    /// One version of a resource.
    pub async fn vread(
        &self,
        rtype: &str,
        id: &str,
        version: i64,
    ) -> Result<ResourceVersion, StoreError> {
        let row = sqlx::query(
            "SELECT type, id, version, last_updated, deleted, body FROM resources WHERE type = $1 AND id = $2 AND version = $3 \
             UNION ALL \
             SELECT type, id, version, last_updated, deleted, body FROM resource_history WHERE type = $4 AND id = $5 AND version = $6",
        )
        .bind(rtype)
        .bind(id)
        .bind(version)
        .bind(rtype)
        .bind(id)
        .bind(version)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?;
        let v = version_of(&row);
        if v.deleted {
            return Err(StoreError::Gone(v.version));
        }
        Ok(v)
    }

    /// Every version of a resource, newest first.
    pub async fn history(&self, rtype: &str, id: &str) -> Result<Vec<ResourceVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT type, id, version, last_updated, deleted, body FROM resources WHERE type = $1 AND id = $2 \
             UNION ALL \
             SELECT type, id, version, last_updated, deleted, body FROM resource_history WHERE type = $3 AND id = $4 \
             ORDER BY version DESC",
        )
        .bind(rtype)
        .bind(id)
        .bind(rtype)
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(rows.iter().map(version_of).collect())
    }

    /// Live resources of `rtype` matching `s`, one page.
    pub async fn search(&self, rtype: &str, s: &Search) -> Result<Page, StoreError> {
        let mut conds = String::from("r.type = $1 AND r.deleted = 0");
        let mut binds: Vec<String> = vec![rtype.to_string()];
        let next = |binds: &mut Vec<String>, v: &str| {
            binds.push(v.to_string());
            format!("${}", binds.len())
        };
        if !s.ids.is_empty() {
            let list: Vec<String> = s.ids.iter().map(|i| next(&mut binds, i)).collect();
            conds.push_str(&format!(" AND r.id IN ({})", list.join(", ")));
        }
        if let Some(p) = &s.patient {
            let ph = next(&mut binds, p);
            conds.push_str(&format!(" AND r.patient = {ph}"));
        }
        for (param, system, value) in &s.tokens {
            let pp = next(&mut binds, param);
            let vp = next(&mut binds, value);
            let sys = match system {
                Some(sy) => format!(" AND t.system = {}", next(&mut binds, sy)),
                None => String::new(),
            };
            conds.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM resource_tokens t WHERE t.record = r.record AND t.type = r.type AND t.id = r.id AND t.param = {pp} AND t.value = {vp}{sys})"
            ));
        }
        for (column, list) in [("r.date", &s.dates), ("r.last_updated", &s.last_updated)] {
            for (op, value) in list {
                let ph = next(&mut binds, value);
                let cond = match op {
                    // Equal at the precision given: 2020 matches 2020-06-01.
                    DateOp::Eq => format!("substr({column}, 1, {}) = {ph}", value.len()),
                    DateOp::Ge => format!("{column} >= {ph}"),
                    DateOp::Gt => format!("substr({column}, 1, {}) > {ph}", value.len()),
                    DateOp::Le => format!("substr({column}, 1, {}) <= {ph}", value.len()),
                    DateOp::Lt => format!("{column} < {ph}"),
                };
                conds.push_str(&format!(" AND {column} IS NOT NULL AND {cond}"));
            }
        }
        let count_sql = format!("SELECT COUNT(*) FROM resources r WHERE {conds}");
        let mut cq = sqlx::query(&count_sql);
        for b in &binds {
            cq = cq.bind(b);
        }
        let total: i64 = cq.fetch_one(&self.reader).await?.get(0);
        let order = if s.sort_desc { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT r.type, r.id, r.version, r.last_updated, r.deleted, r.body FROM resources r WHERE {conds} \
             ORDER BY r.last_updated {order}, r.id {order} LIMIT {} OFFSET {}",
            s.count, s.offset
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.reader).await?;
        Ok(Page {
            total,
            resources: rows.iter().map(version_of).collect(),
        })
    }

    /// Resources by reference (`Type/id`), for `_include`.
    pub async fn read_many(&self, refs: &[String]) -> Result<Vec<ResourceVersion>, StoreError> {
        let mut out = Vec::new();
        for r in refs {
            if let Some((t, i)) = r.split_once('/') {
                if let Ok(v) = self.read(t, i).await {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// Row counts of every table, in one statement (one snapshot). Resource versions are the
    /// current ones (`resources`) plus the superseded ones (`resource_history`).
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM record_history), \
             (SELECT COUNT(*) FROM resources), \
             (SELECT COUNT(*) FROM resources) + (SELECT COUNT(*) FROM resource_history), \
             (SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM audit)",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(Counts {
            records: row.get(0),
            record_versions: row.get(1),
            resources: row.get(2),
            resource_versions: row.get(3),
            outbox: row.get(4),
            audit: row.get(5),
        })
    }

    /// Leases up to `n` pending outbox rows (or rows whose lease ran out) to `owner` for
    /// `seconds`. On PostgreSQL rows another process holds are skipped (`FOR UPDATE SKIP
    /// LOCKED`), so concurrent workers never get the same row; SQLite has one writer.
    pub async fn lease_outbox(
        &self,
        owner: &str,
        n: i64,
        seconds: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let at = now();
        let until = instant(chrono::Utc::now() + chrono::Duration::seconds(seconds));
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET status = 'leased', lease_owner = $1, leased_until = $2, attempts = attempts + 1 \
             WHERE seq IN (SELECT seq FROM outbox WHERE status = 'pending' OR (status = 'leased' AND leased_until < $3) \
             ORDER BY seq LIMIT $4{lock}) \
             RETURNING seq, record, record_version, action, attempts"
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(&until)
            .bind(&at)
            .bind(n)
            .fetch_all(&self.writer)
            .await?;
        let mut out: Vec<OutboxRow> = rows
            .iter()
            .map(|r| OutboxRow {
                seq: r.get(0),
                record: r.get(1),
                record_version: r.get(2),
                action: r.get(3),
                attempts: r.get(4),
            })
            .collect();
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }

    /// Marks a leased row done (only by its lease owner).
    pub async fn complete_outbox(&self, seq: i64, owner: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'done', leased_until = NULL WHERE seq = $1 AND lease_owner = $2 AND status = 'leased'",
        )
        .bind(seq)
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// The token endpoint's replay cache.
impl crate::auth::authz::ReplayGuard for SqlStore {
    async fn first_use(&self, client_id: &str, jti: &str, expires_at: i64) -> Result<bool, String> {
        let now = chrono::Utc::now().timestamp();
        let fail = |e: sqlx::Error| {
            tracing::error!(error = %e, "replay cache write failed");
            "replay cache unavailable".to_string()
        };
        sqlx::query("DELETE FROM auth_jti WHERE expires_at < $1")
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(fail)?;
        match sqlx::query("INSERT INTO auth_jti (client_id, jti, expires_at) VALUES ($1, $2, $3)")
            .bind(client_id)
            .bind(jti)
            .bind(expires_at)
            .execute(&self.writer)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(fail(e)),
        }
    }
}

fn version_of(row: &AnyRow) -> ResourceVersion {
    ResourceVersion {
        resource_type: row.get(0),
        id: row.get(1),
        version: row.get(2),
        last_updated: row.get(3),
        deleted: row.get::<i64, _>(4) == 1,
        body: row.get(5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_rows_number_postgres_placeholders_across_rows_and_leave_sqlite_anonymous() {
        assert_eq!(
            values_rows(Backend::Postgres, "({}, 1, {})", 3),
            "($1, 1, $2),($3, 1, $4),($5, 1, $6)"
        );
        assert_eq!(
            values_rows(Backend::Sqlite, "({}, 1, {})", 2),
            "(?, 1, ?),(?, 1, ?)"
        );
        assert_eq!(values_rows(Backend::Sqlite, "(0)", 2), "(0),(0)");
    }
}
