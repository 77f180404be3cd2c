//! The delivery queue of EHR sync: outbox rows per destination, leased by workers, finished
//! as delivered, retried later, failed (terminal until replayed) or skipped. On PostgreSQL a
//! lease skips rows another process holds (`FOR UPDATE SKIP LOCKED`); a lease that runs out
//! (the worker died) makes the row available again, so nothing accepted is lost.

use sqlx::Row;

use super::sql::{instant, values_rows, Backend, SqlStore};
use super::StoreError;

/// A leased delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub seq: i64,
    pub destination: String,
    pub record: String,
    pub record_version: i64,
    pub action: String,
    /// Attempts including this one.
    pub attempts: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status: u16,
    },
    /// Try again at `at` (RFC 3339); `reason` is the category of what went wrong.
    Retry {
        at: chrono::DateTime<chrono::Utc>,
        reason: &'static str,
        status: Option<u16>,
        error: String,
    },
    /// Terminal until replayed; `outcome` is the server's OperationOutcome, if it sent one.
    Failed {
        reason: &'static str,
        status: Option<u16>,
        error: String,
        outcome: Option<String>,
    },
    /// Nothing to send (for example the record was withdrawn and the policy is to stop).
    Skipped {
        why: String,
    },
}

/// Per destination: how many rows are in each state, and the latest success and error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DestinationStatus {
    pub destination: String,
    pub queued: i64,
    pub in_flight: i64,
    pub delivered: i64,
    pub failed: i64,
    pub skipped: i64,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
}

/// A failed delivery, with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedDelivery {
    pub id: i64,
    pub destination: String,
    pub record: String,
    pub record_version: i64,
    pub attempts: i64,
    pub reason: Option<String>,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    /// The server's OperationOutcome (JSON), when it sent one.
    pub outcome: Option<String>,
    pub failed_at: Option<String>,
}

/// The columns an attempt sets: status, next attempt, reason, HTTP status, error, outcome.
type Finish<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// A `Delivery` from `seq, destination, record, record_version, action, attempts`.
fn delivery_of(r: &sqlx::any::AnyRow) -> Delivery {
    Delivery {
        seq: r.get(0),
        destination: r.get(1),
        record: r.get(2),
        record_version: r.get(3),
        action: r.get(4),
        attempts: r.get(5),
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

impl SqlStore {
    /// Leases up to `n` due rows of `destination` to `owner` for `seconds`.
    pub async fn lease_deliveries(
        &self,
        destination: &str,
        owner: &str,
        n: i64,
        seconds: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let at = instant(now());
        let until = instant(now() + chrono::Duration::seconds(seconds));
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET status = 'leased', lease_owner = $1, leased_until = $2, attempts = attempts + 1, updated_at = $3 \
             WHERE seq IN (SELECT seq FROM outbox WHERE destination = $4 AND \
               ((status = 'pending' AND next_attempt_at <= $3) OR (status = 'leased' AND leased_until < $3)) \
             ORDER BY seq LIMIT $5{lock}) \
             RETURNING seq, destination, record, record_version, action, attempts"
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(&until)
            .bind(&at)
            .bind(destination)
            .bind(n)
            .fetch_all(&self.writer)
            .await?;
        let mut out: Vec<Delivery> = rows.iter().map(delivery_of).collect();
        out.sort_by_key(|d| d.seq);
        Ok(out)
    }

    /// Records how an attempt ended; only the lease holder can (a worker whose lease ran out
    /// and was taken over gets `false`, and its result is dropped: the new owner's counts).
    /// The lease is fenced by owner and attempt number, so a takeover by the same process
    /// (same owner, next attempt) also shuts the old attempt out.
    pub async fn finish_delivery(
        &self,
        d: &Delivery,
        owner: &str,
        attempt: &Attempt,
    ) -> Result<bool, StoreError> {
        let at = instant(now());
        let (status, next, reason, http, error, outcome): Finish<'_> = match attempt {
            Attempt::Delivered { status } => (
                "delivered",
                at.clone(),
                None,
                Some(i64::from(*status)),
                None,
                None,
            ),
            Attempt::Retry {
                at: when,
                reason,
                status,
                error,
            } => (
                "pending",
                instant(*when),
                Some(reason),
                status.map(i64::from),
                Some(error.clone()),
                None,
            ),
            Attempt::Failed {
                reason,
                status,
                error,
                outcome,
            } => (
                "failed",
                at.clone(),
                Some(reason),
                status.map(i64::from),
                Some(error.clone()),
                outcome.clone(),
            ),
            Attempt::Skipped { why } => {
                ("skipped", at.clone(), None, None, Some(why.clone()), None)
            }
        };
        let done = sqlx::query(
            "UPDATE outbox SET status = $1, next_attempt_at = $2, reason = $3, last_status = $4, last_error = $5, \
             outcome = $6, updated_at = $7, leased_until = NULL \
             WHERE seq = $8 AND lease_owner = $9 AND attempts = $10 AND status = 'leased'",
        )
        .bind(status)
        .bind(next)
        .bind(reason)
        .bind(http)
        .bind(error)
        .bind(outcome)
        .bind(&at)
        .bind(d.seq)
        .bind(owner)
        .bind(d.attempts)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A delivery of `record` at `version` to `destination`, leased to `owner` at once: how a
    /// registry submission sends a record outside the queue and still leaves the row every
    /// delivery leaves (delivered, or failed with its reason and replayable). `None` while
    /// another attempt holds a live lease on the same record there.
    pub async fn submission_delivery(
        &self,
        destination: &str,
        record: &str,
        version: i64,
        owner: &str,
        seconds: i64,
    ) -> Result<Option<Delivery>, StoreError> {
        let at = instant(now());
        let until = instant(now() + chrono::Duration::seconds(seconds));
        let mut tx = self.writer.begin().await?;
        let busy = sqlx::query(
            "SELECT seq FROM outbox WHERE destination = $1 AND record = $2 AND status = 'leased' AND leased_until >= $3",
        )
        .bind(destination)
        .bind(record)
        .bind(&at)
        .fetch_optional(&mut *tx)
        .await?;
        if busy.is_some() {
            return Ok(None);
        }
        let row = sqlx::query(
            "INSERT INTO outbox (record, record_version, action, status, attempts, created_at, destination, next_attempt_at, updated_at, lease_owner, leased_until) \
             VALUES ($1, $2, 'upsert', 'leased', 1, $3, $4, $3, $3, $5, $6) \
             RETURNING seq, destination, record, record_version, action, attempts",
        )
        .bind(record)
        .bind(version)
        .bind(&at)
        .bind(destination)
        .bind(owner)
        .bind(&until)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(delivery_of(&row)))
    }

    /// Extends `owner`'s lease on row `seq` by `seconds` from now, for an attempt that runs
    /// longer than one lease. `false` when the lease is no longer `owner`'s (it ran out and
    /// another worker took the row over): the attempt must stop, or two would write at once.
    pub async fn extend_lease(
        &self,
        d: &Delivery,
        owner: &str,
        seconds: i64,
    ) -> Result<bool, StoreError> {
        let until = instant(now() + chrono::Duration::seconds(seconds));
        let done = sqlx::query(
            "UPDATE outbox SET leased_until = $1 \
             WHERE seq = $2 AND lease_owner = $3 AND attempts = $4 AND status = 'leased'",
        )
        .bind(until)
        .bind(d.seq)
        .bind(owner)
        .bind(d.attempts)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Per destination counts and the latest success and error.
    pub async fn sync_status(&self) -> Result<Vec<DestinationStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT destination, \
               SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), \
               SUM(CASE WHEN status = 'leased' THEN 1 ELSE 0 END), \
               SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), \
               SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), \
               SUM(CASE WHEN status = 'skipped' THEN 1 ELSE 0 END), \
               MAX(CASE WHEN status = 'delivered' THEN updated_at END), \
               MAX(CASE WHEN last_error IS NOT NULL AND status <> 'delivered' THEN updated_at END) \
             FROM outbox WHERE destination <> '' GROUP BY destination ORDER BY destination",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let destination: String = r.get(0);
            let last_error_at: Option<String> = r.get(7);
            let last_error = match last_error_at {
                None => None,
                Some(t) => sqlx::query(
                    "SELECT last_error FROM outbox WHERE destination = $1 AND updated_at = $2 AND last_error IS NOT NULL LIMIT 1",
                )
                .bind(&destination)
                .bind(&t)
                .fetch_optional(&self.reader)
                .await?
                .map(|row| format!("{t}: {}", row.get::<String, _>(0))),
            };
            out.push(DestinationStatus {
                queued: r.get(1),
                in_flight: r.get(2),
                delivered: r.get(3),
                failed: r.get(4),
                skipped: r.get(5),
                last_success: r.get(6),
                last_error,
                destination,
            });
        }
        Ok(out)
    }

    /// Failed deliveries, oldest first.
    pub async fn failed_deliveries(&self, limit: i64) -> Result<Vec<FailedDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, destination, record, record_version, attempts, reason, last_status, last_error, outcome, updated_at \
             FROM outbox WHERE status = 'failed' ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| FailedDelivery {
                id: r.get(0),
                destination: r.get(1),
                record: r.get(2),
                record_version: r.get(3),
                attempts: r.get(4),
                reason: r.get(5),
                http_status: r.get(6),
                error: r.get(7),
                outcome: r.get(8),
                failed_at: r.get(9),
            })
            .collect())
    }

    /// Puts failed deliveries back in the queue (one by id, or all): attempts start again.
    /// Returns how many.
    pub async fn retry_failed(&self, id: Option<i64>) -> Result<u64, StoreError> {
        let at = instant(now());
        let q = match id {
            Some(id) => sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1 WHERE status = 'failed' AND seq = $2",
            )
            .bind(at)
            .bind(id),
            None => sqlx::query(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1 WHERE status = 'failed' AND seq >= $2",
            )
            .bind(at)
            .bind(0i64),
        };
        Ok(q.execute(&self.writer).await?.rows_affected())
    }

    /// Earlier failed deliveries of `record` to `destination` (before row `seq`), once a later
    /// one has delivered it: `skipped`, so `/sync/failed` lists only what still needs someone.
    pub async fn supersede_failed(
        &self,
        destination: &str,
        record: &str,
        seq: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'skipped', last_error = $1, updated_at = $2 \
             WHERE destination = $3 AND record = $4 AND status = 'failed' AND seq < $5",
        )
        .bind(format!("superseded: delivery {seq} delivered the record"))
        .bind(instant(now()))
        .bind(destination)
        .bind(record)
        .bind(seq)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    /// What `destination` holds of `record`'s resources, by (type, local id).
    pub async fn ledger(
        &self,
        destination: &str,
        record: &str,
    ) -> Result<std::collections::HashMap<(String, String), crate::sync::ledger::Held>, StoreError>
    {
        let rows = sqlx::query(
            "SELECT resource_type, resource_id, remote, remote_version, hash, origin FROM sync_ledger WHERE destination = $1 AND record = $2",
        )
        .bind(destination)
        .bind(record)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    (r.get(0), r.get(1)),
                    crate::sync::ledger::Held {
                        remote: r.get(2),
                        version: r.get(3),
                        hash: r.get(4),
                        matched: r.get::<String, _>(5) == "matched",
                    },
                )
            })
            .collect())
    }

    /// Records what a delivery confirmed, in one transaction.
    pub async fn ledger_update(
        &self,
        destination: &str,
        record: &str,
        rows: &[crate::sync::ledger::Row],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let at = instant(now());
        let mut tx = self.writer.begin().await?;
        // Multi-row upserts: one statement per 100 resources, not one per resource.
        for chunk in rows.chunks(100) {
            let values = values_rows(
                self.backend,
                "({}, {}, {}, {}, {}, {}, {}, {}, {})",
                chunk.len(),
            );
            let sql = format!(
                "INSERT INTO sync_ledger (destination, record, resource_type, resource_id, remote, remote_version, hash, updated_at, origin) \
                 VALUES {values} ON CONFLICT (destination, resource_type, resource_id) DO UPDATE SET \
                 record = excluded.record, remote = excluded.remote, remote_version = excluded.remote_version, \
                 hash = excluded.hash, updated_at = excluded.updated_at, origin = excluded.origin"
            );
            let mut q = sqlx::query(&sql);
            for ((t, id), held) in chunk {
                q = q
                    .bind(destination)
                    .bind(record)
                    .bind(t)
                    .bind(id)
                    .bind(&held.remote)
                    .bind(&held.version)
                    .bind(&held.hash)
                    .bind(&at)
                    .bind(if held.matched { "matched" } else { "sent" });
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// (destination, record) of failed delivery `seq`.
    pub async fn failed_target(&self, seq: i64) -> Result<Option<(String, String)>, StoreError> {
        Ok(sqlx::query(
            "SELECT destination, record FROM outbox WHERE seq = $1 AND status = 'failed'",
        )
        .bind(seq)
        .fetch_optional(&self.writer)
        .await?
        .map(|r| (r.get(0), r.get(1))))
    }

    /// Forgets ledger rows (the resources were deleted at the destination).
    pub async fn ledger_remove(
        &self,
        destination: &str,
        keys: &[crate::sync::ledger::Key],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for (t, id) in keys {
            sqlx::query(
                "DELETE FROM sync_ledger WHERE destination = $1 AND resource_type = $2 AND resource_id = $3",
            )
            .bind(destination)
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops the remote versions the ledger holds for `record` at `destination`: the next
    /// delivery updates without `If-Match`, replacing what the destination holds (the
    /// "overwrite" replay of a conflict, chosen by a person).
    pub async fn ledger_forget_versions(
        &self,
        destination: &str,
        record: &str,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE sync_ledger SET remote_version = NULL, hash = '' WHERE destination = $1 AND record = $2 AND origin = 'sent'",
        )
        .bind(destination)
        .bind(record)
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    /// An audit row for something done outside a record write (a withdrawal carried out at a
    /// destination, a review decided, a replay). No clinical payload.
    pub async fn audit_event(
        &self,
        actor: &str,
        action: &str,
        entity: &str,
        entity_id: &str,
        version: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, actor, action, entity, entity_id, version) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(instant(now()))
        .bind(actor)
        .bind(action)
        .bind(entity)
        .bind(entity_id)
        .bind(version)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Queued (pending or leased) deliveries of `destination`, oldest first.
    pub async fn queued_deliveries(
        &self,
        destination: &str,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, destination, record, record_version, action, attempts FROM outbox \
             WHERE destination = $1 AND status IN ('pending', 'leased') ORDER BY seq LIMIT $2",
        )
        .bind(destination)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(delivery_of).collect())
    }
}
