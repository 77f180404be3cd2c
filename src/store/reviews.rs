//! Pull's side of the store: the patients a destination holds (from the ledger), the
//! `_lastUpdated` watermarks, and the review queue of EHR resources proposed as registry
//! updates.

use std::collections::HashSet;

use sqlx::Row;

use super::sql::{instant, SqlStore};
use super::{Prepared, StoreError};

/// A review item to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub destination: String,
    pub record: String,
    pub remote: String,
    pub remote_version: String,
    pub resource_type: String,
    /// `system|code` that made it relevant.
    pub code: String,
    pub display: Option<String>,
    /// The EHR's resource, JSON.
    pub resource: String,
}

/// A review item as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Review {
    pub id: i64,
    pub destination: String,
    pub record: String,
    pub remote: String,
    pub remote_version: String,
    pub resource_type: String,
    pub code: String,
    pub display: Option<String>,
    pub status: String,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    /// The EHR's resource.
    pub resource: serde_json::Value,
    /// What came of an acceptance: `applied` (the record has a new version),
    /// `already-in-record`, or `manual` (a person entered it by hand).
    pub outcome: Option<String>,
    /// The record version an applied item produced.
    pub record_version: Option<i64>,
    /// The change an applied item made, as JSON Patch operations on the record.
    pub patch: Option<serde_json::Value>,
}

/// A decision on a review item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    /// `accepted` or `rejected`.
    pub status: &'a str,
    /// See [`Review::outcome`].
    pub outcome: Option<&'a str>,
    pub actor: &'a str,
}

const COLUMNS: &str = "id, destination, record, remote, remote_version, resource_type, code, display, status, created_at, decided_at, decided_by, resource, outcome, record_version, patch";

fn review_of(r: &sqlx::any::AnyRow) -> Review {
    Review {
        id: r.get(0),
        destination: r.get(1),
        record: r.get(2),
        remote: r.get(3),
        remote_version: r.get(4),
        resource_type: r.get(5),
        code: r.get(6),
        display: r.get(7),
        status: r.get(8),
        created_at: r.get(9),
        decided_at: r.get(10),
        decided_by: r.get(11),
        resource: serde_json::from_str(&r.get::<String, _>(12)).unwrap_or_default(),
        outcome: r.get(13),
        record_version: r.get(14),
        patch: r
            .get::<Option<String>, _>(15)
            .and_then(|p| serde_json::from_str(&p).ok()),
    }
}

impl SqlStore {
    /// (record, remote `Patient/id`) of every Patient the ledger holds at `destination`.
    pub async fn ledger_patients(
        &self,
        destination: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT record, remote FROM sync_ledger WHERE destination = $1 AND resource_type = 'Patient' ORDER BY record",
        )
        .bind(destination)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Every remote `Type/id` Engraft wrote at `destination`.
    pub async fn ledger_remotes(&self, destination: &str) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT remote FROM sync_ledger WHERE destination = $1 AND origin = 'sent'",
        )
        .bind(destination)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The `_lastUpdated` watermark of each patient (remote `Patient/id`) pulled before.
    pub async fn watermarks(
        &self,
        destination: &str,
        resource_type: &str,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let rows = sqlx::query(
            "SELECT patient, watermark FROM sync_watermarks WHERE destination = $1 AND resource_type = $2",
        )
        .bind(destination)
        .bind(resource_type)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Queues review items (a remote version already queued is left alone) and moves the
    /// patients' watermarks (patient, watermark), in one transaction. Returns how many items
    /// are new.
    pub async fn queue_reviews(
        &self,
        destination: &str,
        resource_type: &str,
        items: &[NewReview],
        watermarks: &[(String, String)],
    ) -> Result<u64, StoreError> {
        let at = instant(chrono::Utc::now());
        let mut tx = self.writer.begin().await?;
        let mut new = 0;
        for i in items {
            new += sqlx::query(
                "INSERT INTO sync_reviews (destination, record, remote, remote_version, resource_type, code, display, resource, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'proposed', $9) \
                 ON CONFLICT (destination, remote, remote_version) DO NOTHING",
            )
            .bind(&i.destination)
            .bind(&i.record)
            .bind(&i.remote)
            .bind(&i.remote_version)
            .bind(&i.resource_type)
            .bind(&i.code)
            .bind(&i.display)
            .bind(&i.resource)
            .bind(&at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        for (patient, w) in watermarks {
            sqlx::query(
                "INSERT INTO sync_watermarks (destination, resource_type, patient, watermark, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (destination, resource_type, patient) DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at",
            )
            .bind(destination)
            .bind(resource_type)
            .bind(patient)
            .bind(w)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(new)
    }

    /// Review items, newest first; `status` filters (`proposed`, `accepted`, `rejected`).
    pub async fn reviews(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Review>, StoreError> {
        let rows = sqlx::query(
            &format!("SELECT {COLUMNS} FROM sync_reviews WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT $2"),
        )
        .bind(status.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(review_of).collect())
    }

    /// Decides a proposed item without changing the record (a rejection, an acceptance of
    /// what the record already says, or of what a person entered by hand), with an audit row.
    /// NotFound when there is no such item; `Exists` (with its status) when it was already
    /// decided.
    pub async fn decide_review(&self, id: i64, d: Decision<'_>) -> Result<Review, StoreError> {
        let at = instant(chrono::Utc::now());
        let mut tx = self.writer.begin().await?;
        let changed = decide_in(&mut tx, id, d, None, &at).await?;
        tx.commit().await?;
        self.decided(id, changed).await
    }

    /// Accepts item `id` by writing its record's next version: `p` replaces record `record`
    /// at version `expected`, the item records the version and `patch`, and `link` (a local
    /// resource of the new version that stands for the EHR's own resource at `destination`)
    /// joins the ledger as the destination's resource, so it is never sent back as a copy.
    /// All in one transaction: a stale `expected` is `VersionConflict`, an item decided
    /// meanwhile is `Exists`, and either way nothing is written.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_review(
        &self,
        id: i64,
        record: &str,
        expected: i64,
        p: &Prepared,
        patch: &str,
        link: Option<(&str, &crate::sync::ledger::Row)>,
        actor: &str,
    ) -> Result<Review, StoreError> {
        let at = instant(chrono::Utc::now());
        let mut tx = self.writer.begin().await?;
        let version = self.next_version(&mut tx, record, expected, p, &at).await?;
        self.finish_write(&mut tx, p, version, false, &at, actor, "review-accept")
            .await?;
        let d = Decision {
            status: "accepted",
            outcome: Some("applied"),
            actor,
        };
        let changed = decide_in(&mut tx, id, d, Some((version, patch)), &at).await?;
        if changed == 0 {
            tx.rollback().await?;
            return self.decided(id, 0).await;
        }
        if let Some((destination, ((t, local), held))) = link {
            // The destination's own resource; a row already there (Engraft sent its own copy
            // before) is left alone, so that copy stays known and is updated, not orphaned.
            sqlx::query(
                "INSERT INTO sync_ledger (destination, record, resource_type, resource_id, remote, remote_version, hash, updated_at, origin) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'matched') ON CONFLICT (destination, resource_type, resource_id) DO NOTHING",
            )
            .bind(destination)
            .bind(record)
            .bind(t)
            .bind(local)
            .bind(&held.remote)
            .bind(&held.version)
            .bind(&held.hash)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.decided(id, changed).await
    }

    /// The item after a decision that changed `changed` rows.
    async fn decided(&self, id: i64, changed: u64) -> Result<Review, StoreError> {
        match (self.review(id).await?, changed) {
            (None, _) => Err(StoreError::NotFound),
            (Some(r), 0) => Err(StoreError::Exists(r.status)),
            (Some(r), _) => Ok(r),
        }
    }

    /// One review item.
    pub async fn review(&self, id: i64) -> Result<Option<Review>, StoreError> {
        Ok(
            sqlx::query(&format!("SELECT {COLUMNS} FROM sync_reviews WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.reader)
                .await?
                .as_ref()
                .map(review_of),
        )
    }
}

/// Marks a proposed item decided, with an audit row; returns 1, or 0 when it was not proposed.
async fn decide_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    d: Decision<'_>,
    applied: Option<(i64, &str)>,
    at: &str,
) -> Result<u64, StoreError> {
    let changed = sqlx::query(
        "UPDATE sync_reviews SET status = $1, decided_at = $2, decided_by = $3, outcome = $4, record_version = $5, patch = $6 \
         WHERE id = $7 AND status = 'proposed'",
    )
    .bind(d.status)
    .bind(at)
    .bind(d.actor)
    .bind(d.outcome)
    .bind(applied.map(|a| a.0))
    .bind(applied.map(|a| a.1))
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed == 1 {
        sqlx::query(
            "INSERT INTO audit (at, actor, action, entity, entity_id, version) VALUES ($1, $2, $3, 'review', $4, $5)",
        )
        .bind(at)
        .bind(d.actor)
        .bind(format!("review-{}", d.status))
        .bind(id.to_string())
        .bind(applied.map(|a| a.0))
        .execute(&mut **tx)
        .await?;
    }
    Ok(changed)
}
