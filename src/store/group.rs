//! Group commit for SQLite. SQLite has one writer, and with `synchronous = FULL` every commit
//! waits for the disk; a commit per accepted record made concurrent requests queue behind each
//! other's fsyncs. New records are instead handed to one task that takes every write waiting,
//! runs each in its own SAVEPOINT of one transaction, and commits them together.
//!
//! Each request still gets exactly its own outcome: a write that fails is rolled back to its
//! savepoint and answered with its error while the others go on, and nobody is answered
//! before the transaction holding their write has committed (a failed commit fails them all).
//! Nothing is acknowledged that is not durable.

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::sql::SqlStore;
use super::{Prepared, StoreError, Written};

/// At most this many writes share one commit, so one commit's latency stays bounded.
const MAX_GROUP: usize = 64;

type Reply = oneshot::Sender<Result<Vec<Written>, StoreError>>;

struct Job {
    /// The store the write came through (its destinations decide the outbox rows).
    store: SqlStore,
    prepared: Vec<Prepared>,
    actor: String,
    reply: Reply,
}

/// The way into the group-commit task.
#[derive(Debug, Clone)]
pub(super) struct Group {
    tx: mpsc::UnboundedSender<Job>,
}

fn closed() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// Another job's copy of a failure that ended the whole group.
fn shared(e: &StoreError) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!("group commit failed: {e}")))
}

impl Group {
    /// Starts the task writing through `writer`; it ends when every store clone is dropped.
    pub(super) fn start(writer: AnyPool) -> Group {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, rx));
        Group { tx }
    }

    /// Writes `ps` in the next group commit and waits for it.
    pub(super) async fn create(
        &self,
        store: &SqlStore,
        ps: &[Prepared],
        actor: &str,
    ) -> Result<Vec<Written>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            store: store.clone(),
            prepared: ps.to_vec(),
            actor: actor.to_string(),
            reply,
        };
        self.tx.send(job).map_err(|_| closed())?;
        answer.await.unwrap_or_else(|_| Err(closed()))
    }
}

async fn run(writer: AnyPool, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let results = commit(&writer, &jobs).await;
        for (job, result) in jobs.into_iter().zip(results) {
            // The requester may have gone (a dropped connection); its write stands.
            let _ = job.reply.send(result);
        }
    }
}

/// Runs `jobs` in one transaction, each in a savepoint; one result per job.
async fn commit(writer: &AnyPool, jobs: &[Job]) -> Vec<Result<Vec<Written>, StoreError>> {
    let fail_all = |e: StoreError| -> Vec<Result<Vec<Written>, StoreError>> {
        let copies: Vec<_> = (1..jobs.len()).map(|_| Err(shared(&e))).collect();
        std::iter::once(Err(e)).chain(copies).collect()
    };
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(e) => return fail_all(e.into()),
    };
    let at = super::sql::instant(chrono::Utc::now());
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(e) = sqlx::query("SAVEPOINT engraft_write")
            .execute(&mut *tx)
            .await
        {
            return fail_all(e.into());
        }
        let outcome = job
            .store
            .create_in(&mut tx, &job.prepared, &job.actor, &at)
            .await;
        let end: &[&str] = if outcome.is_ok() {
            &["RELEASE SAVEPOINT engraft_write"]
        } else {
            // Undo this write only; the savepoint is then released empty.
            &[
                "ROLLBACK TO SAVEPOINT engraft_write",
                "RELEASE SAVEPOINT engraft_write",
            ]
        };
        for sql in end {
            if let Err(e) = sqlx::query(sql).execute(&mut *tx).await {
                return fail_all(e.into());
            }
        }
        results.push(outcome);
    }
    if let Err(e) = tx.commit().await {
        let e: StoreError = e.into();
        return results
            .into_iter()
            .map(|r| match r {
                Ok(_) => Err(shared(&e)),
                failed => failed,
            })
            .collect();
    }
    results
}
