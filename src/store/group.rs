//! Group commit for SQLite. SQLite has one writer, and with `synchronous = FULL` every commit
//! waits for the disk; a commit per accepted record made concurrent requests queue behind each
//! other's fsyncs. New records are instead handed to one task that takes every write waiting,
//! runs them in one transaction, and commits them together.
//!
//! Each request still gets exactly its own outcome: a write that fails is answered with its
//! error, and the transaction is rolled back and run again without it, so the others go on
//! and nothing of the failed write stays. Nobody is answered before the transaction holding
//! their write has committed (a failed commit fails them all). Nothing is acknowledged that is
//! not durable.
//!
//! Writes are not wrapped in SAVEPOINTs, which would spare the rerun: SQLite copies every page
//! a savepoint changes into its statement journal, about 1 MB per record here, and one
//! 100-record request held 107 MB of it (heaptrack). A failed write is the rare case (its
//! record already exists); it costs a rerun of the others, at most once per failed job.

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
        ps: Vec<Prepared>,
        actor: &str,
    ) -> Result<Vec<Written>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            store: store.clone(),
            prepared: ps,
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

/// Runs `jobs` in one transaction; one result per job. A job whose write fails is answered
/// with its error, the transaction is rolled back, and the other jobs run again without it.
async fn commit(writer: &AnyPool, jobs: &[Job]) -> Vec<Result<Vec<Written>, StoreError>> {
    let mut results: Vec<Option<Result<Vec<Written>, StoreError>>> =
        jobs.iter().map(|_| None).collect();
    let at = super::sql::instant(chrono::Utc::now());
    'attempt: loop {
        let pending: Vec<usize> = (0..jobs.len()).filter(|&i| results[i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        let mut tx = match writer.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                fail(&mut results, &pending, e.into());
                break;
            }
        };
        let mut written = Vec::with_capacity(pending.len());
        for &i in &pending {
            let job = &jobs[i];
            match job
                .store
                .create_in(&mut tx, &job.prepared, &job.actor, &at)
                .await
            {
                Ok(w) => written.push((i, w)),
                Err(e) => {
                    results[i] = Some(Err(e));
                    if let Err(e) = tx.rollback().await {
                        let rest: Vec<usize> = pending.into_iter().filter(|&j| j != i).collect();
                        fail(&mut results, &rest, e.into());
                        break 'attempt;
                    }
                    continue 'attempt;
                }
            }
        }
        match tx.commit().await {
            Ok(()) => {
                for (i, w) in written {
                    results[i] = Some(Ok(w));
                }
            }
            Err(e) => fail(&mut results, &pending, e.into()),
        }
        break;
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(closed())))
        .collect()
}

/// Answers the jobs at `which` with `e` (the first of them) and copies of it (the others).
fn fail(results: &mut [Option<Result<Vec<Written>, StoreError>>], which: &[usize], e: StoreError) {
    let Some((&first, rest)) = which.split_first() else {
        return;
    };
    for &i in rest {
        results[i] = Some(Err(shared(&e)));
    }
    results[first] = Some(Err(e));
}
