//! Registry submissions: records sent to a registry destination now (`engraft submit`,
//! `POST /registry/submissions`), or planned without sending anything (a dry run). Each record
//! goes through the same attempt as a queued delivery and leaves the same outbox row (so a
//! rejected record is `failed` with its reason and replayable like any other), plus its
//! report: per resource what was sent and what the registry answered.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{json, Value};

use super::registry;
use super::remote::Destination;
use crate::store::{Attempt, SqlStore, StoreError};

/// How one record of a submission ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecordResult {
    /// The gateway id.
    pub record: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// `delivered`, `unchanged`, `retry` (a transient fault: queued, the worker goes on),
    /// `failed`, `planned` (dry run), `in-flight` (another attempt holds it), `withdrawn`,
    /// `not-found`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Resources sent and accepted, rejected, and unchanged (not sent).
    pub accepted: usize,
    pub rejected: usize,
    pub unchanged: usize,
    /// The record's report (see [`registry::Report`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
}

/// How many resources of a stored report ended `result`.
fn count(report: &Value, result: &str) -> usize {
    report["resources"]
        .as_array()
        .map_or(0, |ls| ls.iter().filter(|l| l["result"] == result).count())
}

impl RecordResult {
    fn bare(record: &str, outcome: &str) -> RecordResult {
        RecordResult {
            record: record.into(),
            version: None,
            outcome: outcome.into(),
            error: None,
            accepted: 0,
            rejected: 0,
            unchanged: 0,
            report: None,
        }
    }
}

/// Submits (or plans, `dry_run`) `records` to `dest`, a registry destination, up to its
/// concurrency at a time; results in the order asked.
pub async fn submit(
    store: &SqlStore,
    dest: &Destination,
    records: &[String],
    dry_run: bool,
    owner: &str,
) -> Vec<RecordResult> {
    futures_util::stream::iter(records.to_vec())
        .map(|r: String| async move {
            match one(store, dest, &r, dry_run, owner).await {
                Ok(res) => res,
                Err(e) => RecordResult {
                    error: Some(format!("store: {e}")),
                    ..RecordResult::bare(&r, "failed")
                },
            }
        })
        .buffered(dest.concurrency.max(1))
        .collect()
        .await
}

async fn one(
    store: &SqlStore,
    dest: &Destination,
    id: &str,
    dry_run: bool,
    owner: &str,
) -> Result<RecordResult, StoreError> {
    let Some(reg) = &dest.registry else {
        return Ok(RecordResult {
            error: Some("not a registry destination".into()),
            ..RecordResult::bare(id, "failed")
        });
    };
    let record = match store.record(id).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Ok(RecordResult::bare(id, "not-found")),
        Err(e) => return Err(e),
    };
    if record.deleted {
        return Ok(RecordResult {
            version: Some(record.version),
            ..RecordResult::bare(id, "withdrawn")
        });
    }
    let bundle: Value = serde_json::from_str(&record.bundle).unwrap_or_default();
    if dry_run {
        let report = registry::dry_run(store, dest, reg, id, record.version, bundle).await?;
        return Ok(RecordResult {
            version: Some(record.version),
            unchanged: report.unchanged,
            report: serde_json::to_value(&report).ok(),
            ..RecordResult::bare(id, "planned")
        });
    }
    let lease = super::push::lease_secs(dest);
    let Some(d) = store
        .submission_delivery(&dest.name, id, record.version, owner, lease)
        .await?
    else {
        return Ok(RecordResult {
            version: Some(record.version),
            error: Some("another attempt is submitting this record now".into()),
            ..RecordResult::bare(id, "in-flight")
        });
    };
    let outcome = super::push::attempt_leased(store, dest, owner, lease, &d).await;
    if matches!(
        outcome,
        Some(Attempt::Delivered { .. } | Attempt::Skipped { .. })
    ) {
        store.supersede_failed(&dest.name, id, d.seq).await?;
    }
    let report = store.report(&dest.name, id).await?;
    let (name, error) = match outcome {
        Some(Attempt::Delivered { .. }) => ("delivered", None),
        Some(Attempt::Skipped { .. }) => ("unchanged", None),
        Some(Attempt::Retry { error, .. }) => ("retry", Some(error)),
        Some(Attempt::Failed { error, .. }) => ("failed", Some(error)),
        None => (
            "failed",
            Some(
                "the attempt's outcome could not be recorded; it is retried from the queue".into(),
            ),
        ),
    };
    Ok(RecordResult {
        version: Some(record.version),
        error,
        accepted: report.as_ref().map_or(0, |r| count(r, "accepted")),
        rejected: report.as_ref().map_or(0, |r| count(r, "rejected")),
        unchanged: report
            .as_ref()
            .and_then(|r| r["unchanged"].as_u64())
            .unwrap_or(0) as usize,
        report,
        ..RecordResult::bare(id, name)
    })
}

/// How often the process carrying out a submission marks it alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Carries out a stored submission (`POST /registry/submissions` stored it `running`) and
/// records its report, marking it alive every [`HEARTBEAT`] until then. `resumed`: another
/// process began it and stopped; the report says so.
pub async fn carry_out(
    store: SqlStore,
    dest: Arc<Destination>,
    id: String,
    records: Vec<String>,
    dry_run: bool,
    resumed: bool,
) {
    // One lease owner per submission: a resumed run is the same submission.
    let owner = format!("submission-{id}");
    let work = submit(&store, &dest, &records, dry_run, &owner);
    tokio::pin!(work);
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    let results = loop {
        tokio::select! {
            results = &mut work => break results,
            _ = beat.tick() => {
                if let Err(e) = store.beat_submission(&id).await {
                    tracing::warn!(submission = %id, error = %e, "marking a submission alive failed");
                }
            }
        }
    };
    let mut report = summary(&dest.name, dry_run, &results);
    if resumed {
        report["resumed"] = json!(true);
    }
    if let Err(e) = store.finish_submission(&id, &report).await {
        tracing::error!(submission = %id, error = %e, "recording a submission's report failed");
    }
}

/// How long a submission's heartbeat may be silent before it counts as stopped: longer than
/// any lease its process can still hold on a record (a resumed run must not find its own dead
/// process's delivery "in flight"), plus missed beats. At most about two hours: a
/// destination's `timeout_secs` is at most an hour (the configuration checks it).
pub fn stopped_after(dest: &Destination) -> Duration {
    Duration::from_secs(super::push::lease_secs(dest).max(0) as u64) + 3 * HEARTBEAT
}

/// Resumes, for as long as the server runs, every submission whose process stopped before it
/// finished (a crash, a kill, a lost machine): each is taken over by one live process and
/// carried out again from the start. Records already delivered come out `unchanged` (the
/// ledger), so nothing is sent twice. A submission to a destination no longer configured is
/// finished with a report that says so.
pub async fn resume_stopped(
    store: SqlStore,
    destinations: Vec<Arc<Destination>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        if let Err(e) = resume_once(&store, &destinations).await {
            tracing::error!(error = %e, "looking for stopped submissions failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(2 * HEARTBEAT) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

async fn resume_once(
    store: &SqlStore,
    destinations: &[Arc<Destination>],
) -> Result<(), StoreError> {
    let now = chrono::Utc::now();
    // The shortest silence any destination allows finds every candidate; each is then judged
    // by its own destination's.
    let shortest = destinations
        .iter()
        .map(|d| stopped_after(d))
        .min()
        .unwrap_or(3 * HEARTBEAT);
    for s in store.stopped_submissions(now - shortest).await? {
        let dest = destinations.iter().find(|d| d.name == s.destination);
        let silence = dest.map_or(3 * HEARTBEAT, |d| stopped_after(d));
        if !store.claim_submission(&s.id, now - silence).await? {
            continue;
        }
        let Some(dest) = dest else {
            let report = json!({
                "destination": s.destination,
                "dryRun": s.dry_run,
                "resumed": true,
                "error": "the gateway stopped during this submission and the destination is no longer configured; nothing more was sent",
            });
            store.finish_submission(&s.id, &report).await?;
            continue;
        };
        tracing::warn!(submission = %s.id, destination = %dest.name, "resuming a submission whose process stopped");
        tokio::spawn(carry_out(
            store.clone(),
            dest.clone(),
            s.id,
            s.records,
            s.dry_run,
            true,
        ));
    }
    Ok(())
}

/// The whole submission's summary: totals per outcome and the records.
pub fn summary(destination: &str, dry_run: bool, results: &[RecordResult]) -> Value {
    let mut totals = serde_json::Map::new();
    for r in results {
        let n = totals.entry(r.outcome.clone()).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap_or(0) + 1);
    }
    json!({
        "destination": destination,
        "dryRun": dry_run,
        "totals": totals,
        "sent": results.iter().map(|r| r.accepted + r.rejected).sum::<usize>(),
        "accepted": results.iter().map(|r| r.accepted).sum::<usize>(),
        "rejected": results.iter().map(|r| r.rejected).sum::<usize>(),
        "unchanged": results.iter().map(|r| r.unchanged).sum::<usize>(),
        "records": results,
    })
}

/// A readable table of a summary, for a terminal: one line per record, then each rejected
/// resource with the registry's reason.
pub fn table(results: &[RecordResult]) -> String {
    let mut out = format!(
        "{:<38} {:>4} {:<10} {:>8} {:>8} {:>9}\n",
        "record", "ver", "outcome", "accepted", "rejected", "unchanged"
    );
    for r in results {
        out.push_str(&format!(
            "{:<38} {:>4} {:<10} {:>8} {:>8} {:>9}\n",
            r.record,
            r.version.map(|v| v.to_string()).unwrap_or_default(),
            r.outcome,
            r.accepted,
            r.rejected,
            r.unchanged
        ));
        let lines = r
            .report
            .as_ref()
            .and_then(|rep| rep["resources"].as_array());
        for l in lines.into_iter().flatten() {
            let (action, result) = (
                l["action"].as_str().unwrap_or(""),
                l["result"].as_str().unwrap_or(""),
            );
            if result == "rejected" || (r.outcome == "planned" && action != "unchanged") {
                out.push_str(&format!(
                    "    {:<8} {:<60} {}\n",
                    if result == "rejected" {
                        "REJECTED"
                    } else {
                        action
                    },
                    l["resource"].as_str().unwrap_or(""),
                    l["reason"].as_str().unwrap_or("")
                ));
            }
        }
        if let Some(e) = &r.error {
            if r.outcome != "failed" || r.rejected == 0 {
                out.push_str(&format!("    {e}\n"));
            }
        }
    }
    out
}
