//! Registry submission's side of the store: each patient's CRID per registry, the report of
//! each record's latest submission attempt, and the submissions asked for.

use serde_json::Value;
use sqlx::Row;

use super::sql::{instant, SqlStore};
use super::StoreError;

/// A submission as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Submission {
    pub id: String,
    pub destination: String,
    pub dry_run: bool,
    /// `running` or `done`.
    pub status: String,
    /// The records asked for (gateway ids).
    pub records: Vec<String>,
    /// Per record report, once done.
    pub report: Option<Value>,
    pub created_by: String,
    pub created_at: String,
    pub finished_at: Option<String>,
}

fn now() -> String {
    instant(chrono::Utc::now())
}

impl SqlStore {
    /// Every live (not withdrawn) record's gateway id, oldest first.
    pub async fn live_records(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM records WHERE deleted = 0 ORDER BY updated_at, id")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The gateway id of a record named by its gateway id or by its registry `recordId`
    /// (when exactly one registry uses that recordId).
    pub async fn find_record(&self, name: &str) -> Result<Option<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM records WHERE id = $1 OR record_id = $1 LIMIT 2")
            .bind(name)
            .fetch_all(&self.reader)
            .await?;
        Ok(match rows.as_slice() {
            [one] => Some(one.get(0)),
            _ => None,
        })
    }

    /// The CRID the registry gave this patient, if one was obtained.
    pub async fn crid(
        &self,
        destination: &str,
        patient: &str,
    ) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT crid FROM registry_crids WHERE destination = $1 AND patient = $2")
                .bind(destination)
                .bind(patient)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Keeps the CRID of a patient (the first one kept wins; the CRID API is idempotent, so a
    /// second is the same anyway). Returns the CRID kept.
    pub async fn keep_crid(
        &self,
        destination: &str,
        patient: &str,
        crid: &str,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO registry_crids (destination, patient, crid, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (destination, patient) DO NOTHING",
        )
        .bind(destination)
        .bind(patient)
        .bind(crid)
        .bind(now())
        .execute(&self.writer)
        .await?;
        let row =
            sqlx::query("SELECT crid FROM registry_crids WHERE destination = $1 AND patient = $2")
                .bind(destination)
                .bind(patient)
                .fetch_one(&self.writer)
                .await?;
        Ok(row.get(0))
    }

    /// Keeps the report of a record's latest submission attempt.
    pub async fn save_report(
        &self,
        destination: &str,
        record: &str,
        version: i64,
        report: &Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO registry_reports (destination, record, record_version, report, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (destination, record) DO UPDATE SET \
             record_version = excluded.record_version, report = excluded.report, updated_at = excluded.updated_at",
        )
        .bind(destination)
        .bind(record)
        .bind(version)
        .bind(report.to_string())
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The report of a record's latest submission attempt to `destination`.
    pub async fn report(
        &self,
        destination: &str,
        record: &str,
    ) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query(
            "SELECT report FROM registry_reports WHERE destination = $1 AND record = $2",
        )
        .bind(destination)
        .bind(record)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.get::<String, _>(0)).ok()))
    }

    /// Records a new submission, alive as of now (see [`SqlStore::beat_submission`]).
    pub async fn create_submission(&self, s: &Submission) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO registry_submissions (id, destination, dry_run, status, records, report, created_by, created_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8)",
        )
        .bind(&s.id)
        .bind(&s.destination)
        .bind(i64::from(s.dry_run))
        .bind(&s.status)
        .bind(serde_json::to_string(&s.records).unwrap_or_default())
        .bind(&s.created_by)
        .bind(&s.created_at)
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Marks a running submission alive now: the process carrying it out calls this every
    /// few seconds.
    pub async fn beat_submission(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE registry_submissions SET heartbeat_at = $1 WHERE id = $2 AND status = 'running'",
        )
        .bind(now())
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Running submissions whose heartbeat is older than `before` (or missing): their process
    /// stopped before it finished them. Oldest first.
    pub async fn stopped_submissions(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Submission>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM registry_submissions \
             WHERE status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $1) \
             ORDER BY created_at, id"
        ))
        .bind(instant(before))
        .fetch_all(&self.writer)
        .await?;
        Ok(rows.iter().map(submission_of).collect())
    }

    /// Takes over a stopped submission (as [`SqlStore::stopped_submissions`] found it): marks it
    /// alive, `false` when another process took it over first or it finished meanwhile.
    pub async fn claim_submission(
        &self,
        id: &str,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE registry_submissions SET heartbeat_at = $1 \
             WHERE id = $2 AND status = 'running' AND (heartbeat_at IS NULL OR heartbeat_at < $3)",
        )
        .bind(now())
        .bind(id)
        .bind(instant(before))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a submission as done, with its report.
    pub async fn finish_submission(&self, id: &str, report: &Value) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE registry_submissions SET status = 'done', report = $1, finished_at = $2 WHERE id = $3",
        )
        .bind(report.to_string())
        .bind(now())
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn submission(&self, id: &str) -> Result<Submission, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM registry_submissions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.writer)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(submission_of(&r))
    }
}

/// The columns [`submission_of`] reads, in its order.
const SUBMISSION_COLUMNS: &str =
    "id, destination, dry_run, status, records, report, created_by, created_at, finished_at";

fn submission_of(r: &sqlx::any::AnyRow) -> Submission {
    let report: Option<String> = r.get(5);
    Submission {
        id: r.get(0),
        destination: r.get(1),
        dry_run: r.get::<i64, _>(2) != 0,
        status: r.get(3),
        records: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
        report: report.and_then(|t| serde_json::from_str(&t).ok()),
        created_by: r.get(6),
        created_at: r.get(7),
        finished_at: r.get(8),
    }
}
