//! The delivery worker of one destination.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;

use super::policy::decide;
use super::remote::{Destination, Reply};
use super::write::{self, Done};
use super::{ledger, matching};
use crate::config::OnWithdrawal;
use crate::store::{Attempt, Delivery, SqlStore, StoreError};

/// Judges a reply by the destination's retry policy.
pub(crate) fn judge(dest: &Destination, d: &Delivery, reply: &Reply) -> Attempt {
    let unit: f64 = rand::thread_rng().gen();
    decide(
        &dest.policy,
        d.attempts,
        &reply.answer,
        chrono::Utc::now(),
        unit,
    )
}

fn finished(dest: &Destination, d: &Delivery, done: Done) -> Attempt {
    match done {
        Done::All(status) => Attempt::Delivered { status },
        Done::Stopped(a) => a,
        Done::Failed(reply) => judge(dest, d, &reply),
    }
}

/// One attempt at one delivery; returns how it ended.
async fn attempt(
    store: &SqlStore,
    dest: &Destination,
    d: &Delivery,
) -> Result<Attempt, StoreError> {
    if d.action == "delete" {
        return withdraw(store, dest, d).await;
    }
    let record = match store.record(&d.record).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => {
            return Ok(Attempt::Skipped {
                why: "the record no longer exists".into(),
            })
        }
        Err(e) => return Err(e),
    };
    if record.deleted {
        return Ok(Attempt::Skipped {
            why: format!("withdrawn at version {}", record.version),
        });
    }
    if record.version > d.record_version {
        return Ok(Attempt::Skipped {
            why: format!(
                "superseded by version {} (its own delivery sends it)",
                record.version
            ),
        });
    }
    let bundle: serde_json::Value = match serde_json::from_str(&record.bundle) {
        Ok(b) => b,
        Err(_) => {
            return Ok(Attempt::Failed {
                reason: "validation",
                status: None,
                error: "the stored Bundle does not parse".into(),
                outcome: None,
            })
        }
    };
    if let Some(reg) = &dest.registry {
        return super::registry::attempt(store, dest, reg, d, &record.record, bundle).await;
    }
    let support = match dest.support().await {
        Ok(s) => s,
        Err(reply) => return Ok(judge(dest, d, &reply)),
    };
    let mut held = store.ledger(&dest.name, &d.record).await?;
    if let Some(stop) = matching::patient(store, dest, &d.record, &bundle, &mut held).await? {
        return Ok(finished(dest, d, stop));
    }
    let plan = plan(dest, bundle, &held, support);
    if plan.is_empty() {
        return Ok(Attempt::Skipped {
            why: "nothing changed since the last delivery".into(),
        });
    }
    let done = write::apply(store, dest, &d.record, support, &plan).await?;
    Ok(finished(dest, d, done))
}

/// What `dest` still has to be sent of a record's `bundle`: shaped for it (its resource
/// types, code systems and profile claims), then planned against its ledger `held`. Resources
/// of the types it is not sent stay there as they are: a configuration change deletes nothing.
pub fn plan(
    dest: &Destination,
    mut bundle: serde_json::Value,
    held: &std::collections::HashMap<ledger::Key, ledger::Held>,
    support: &super::capability::Support,
) -> ledger::Plan {
    dest.shape.apply(&mut bundle);
    let mut plan = ledger::plan(bundle, held, support);
    plan.deletes.retain(|(k, _)| dest.shape.sends(&k.0));
    plan
}

/// A withdrawn-consent record at this destination, by its withdrawal policy: stop syncing, or
/// delete what Engraft created there. Either way the audit log says what was done.
async fn withdraw(
    store: &SqlStore,
    dest: &Destination,
    d: &Delivery,
) -> Result<Attempt, StoreError> {
    let actor = format!("sync:{}", dest.name);
    if dest.on_withdrawal == OnWithdrawal::Stop {
        store
            .audit_event(
                &actor,
                "withdrawal-stop",
                "record",
                &d.record,
                Some(d.record_version),
            )
            .await?;
        return Ok(Attempt::Skipped {
            why: "consent withdrawn: syncing stopped for this record (withdrawal policy: stop)"
                .into(),
        });
    }
    let support = match dest.support().await {
        Ok(s) => s,
        Err(reply) => return Ok(judge(dest, d, &reply)),
    };
    let held = store.ledger(&dest.name, &d.record).await?;
    let plan = ledger::Plan {
        deletes: ledger::deletable(&held),
        ..ledger::Plan::default()
    };
    let n = plan.deletes.len();
    let outcome = finished(
        dest,
        d,
        write::apply(store, dest, &d.record, support, &plan).await?,
    );
    if let Attempt::Delivered { .. } = outcome {
        store
            .audit_event(
                &actor,
                &format!("withdrawal-delete:{n}"),
                "record",
                &d.record,
                Some(d.record_version),
            )
            .await?;
        if n == 0 {
            return Ok(Attempt::Skipped {
                why: "consent withdrawn: nothing of this record was held at the destination".into(),
            });
        }
    }
    Ok(outcome)
}

/// Delivers `destination`'s queue until `stop` turns true. Leases last well beyond one
/// request's timeout; a worker that dies leaves leases that run out, and another (or the same
/// after a restart) takes the rows over.
pub async fn run(
    store: SqlStore,
    dest: Arc<Destination>,
    owner: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
    attempts: prometheus::IntCounterVec,
) {
    let lease_secs = lease_secs(&dest);
    tracing::info!(destination = %dest.name, "delivery worker started");
    // Up to `concurrency` deliveries in flight, each its own task (so it progresses while this
    // loop waits on the store); a slot that frees is refilled at once. While requests wait on
    // answers far slower than usual, up to `slow_spare_slots` more are let in, so one slow
    // answer never holds the queue back (the slow request itself runs on to its answer).
    let mut in_flight = tokio::task::JoinSet::new();
    while !*stop.borrow() {
        let slots = dest.concurrency
            + dest
                .slow
                .slow(std::time::Instant::now())
                .min(dest.slow_spare_slots);
        let free = slots.saturating_sub(in_flight.len());
        let free = if free > 0 {
            dest.circuit.allow(free, std::time::Instant::now())
        } else {
            0
        };
        if free > 0 {
            match store
                .lease_deliveries(&dest.name, &owner, free as i64, lease_secs)
                .await
            {
                Ok(rows) => {
                    if rows.is_empty() {
                        dest.circuit.unused();
                    }
                    for d in rows {
                        let (store, dest) = (store.clone(), dest.clone());
                        let (owner, attempts) = (owner.clone(), attempts.clone());
                        in_flight.spawn(async move {
                            deliver(&store, &dest, &owner, lease_secs, &attempts, d).await
                        });
                    }
                }
                Err(e) => {
                    dest.circuit.unused();
                    tracing::error!(destination = %dest.name, error = %e, "leasing deliveries failed")
                }
            }
        }
        if in_flight.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
            continue;
        }
        // Wake on a finished delivery, or: with free slots, soon to look for new work; when
        // full but spare slots may be lent, to see whether a request turned slow.
        let look_again = if in_flight.len() < slots {
            Duration::from_millis(50)
        } else if dest.slow_spare_slots > 0 {
            Duration::from_millis(100)
        } else {
            Duration::MAX
        };
        tokio::select! {
            _ = in_flight.join_next() => {}
            _ = tokio::time::sleep(look_again) => {}
        }
    }
    tracing::info!(destination = %dest.name, "delivery worker stopped");
}

/// Keeps the lease on `d` alive while its attempt runs (an attempt resource by resource
/// against a slow server can outlast one lease). Returns only when the lease is lost: the row
/// was taken over, so the attempt must stop before it writes alongside the new holder.
async fn hold_lease(store: &SqlStore, owner: &str, lease_secs: i64, d: &Delivery) {
    let every = Duration::from_secs((lease_secs as u64 / 3).max(1));
    let mut misses = 0;
    loop {
        tokio::time::sleep(every).await;
        match store.extend_lease(d, owner, lease_secs).await {
            Ok(true) => misses = 0,
            Ok(false) => return,
            // The store is briefly unreachable: the lease still has time to run; give up
            // before it can have run out.
            Err(e) => {
                misses += 1;
                tracing::warn!(record = %d.record, error = %e, "extending a delivery lease failed");
                if misses >= 2 {
                    return;
                }
            }
        }
    }
}

/// One attempt at a leased delivery, its lease kept alive while it runs, its outcome
/// recorded. `None` when there is no outcome to record: the lease was lost (the new holder
/// carries on) or the store failed (the lease runs out and the row is retried).
pub(crate) async fn attempt_leased(
    store: &SqlStore,
    dest: &Destination,
    owner: &str,
    lease_secs: i64,
    d: &Delivery,
) -> Option<Attempt> {
    let outcome = tokio::select! {
        a = attempt(store, dest, d) => a,
        _ = hold_lease(store, owner, lease_secs, d) => {
            // Dropping the attempt stops it between two requests; what it confirmed is in
            // the ledger, so whoever holds the row now resumes from there.
            tracing::warn!(destination = %dest.name, record = %d.record, version = d.record_version, "delivery lease lost; attempt stopped");
            return None;
        }
    };
    let outcome = match outcome {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(destination = %dest.name, error = %e, "the store failed during the attempt; its lease will run out and it will be retried");
            return None;
        }
    };
    log(dest, d, &outcome);
    match store.finish_delivery(d, owner, &outcome).await {
        Ok(true) => Some(outcome),
        Ok(false) => None,
        Err(e) => {
            tracing::error!(destination = %dest.name, error = %e, "recording a delivery failed; its lease will run out and it will be retried");
            None
        }
    }
}

/// The lease of a delivery: long enough for a slow request (token refresh, request, 401
/// retry), short enough that a crashed worker's rows are taken over soon; kept alive while
/// the attempt runs.
pub(crate) fn lease_secs(dest: &Destination) -> i64 {
    (dest.timeout.as_secs() * 2 + 5) as i64
}

/// One delivery attempt by the worker: recorded, counted, and judged by the circuit breaker.
async fn deliver(
    store: &SqlStore,
    dest: &Destination,
    owner: &str,
    lease_secs: i64,
    attempts: &prometheus::IntCounterVec,
    d: Delivery,
) {
    let Some(outcome) = attempt_leased(store, dest, owner, lease_secs, &d).await else {
        return;
    };
    let was = dest.circuit.state(std::time::Instant::now());
    match outcome {
        // Nothing was sent: says nothing about the destination's health.
        Attempt::Skipped { .. } => dest.circuit.unused(),
        Attempt::Retry { .. } => dest.circuit.record(false, std::time::Instant::now()),
        _ => dest.circuit.record(true, std::time::Instant::now()),
    }
    let now_state = dest.circuit.state(std::time::Instant::now());
    if was != now_state {
        tracing::warn!(destination = %dest.name, circuit = now_state, "circuit breaker changed state");
    }
    let label = match &outcome {
        Attempt::Delivered { .. } => "delivered",
        Attempt::Retry { .. } => "retry",
        Attempt::Failed { .. } => "failed",
        Attempt::Skipped { .. } => "skipped",
    };
    attempts.with_label_values(&[&dest.name, label]).inc();
}

/// One line per attempt: destination, record, version, outcome, HTTP status. No payload.
fn log(dest: &Destination, d: &Delivery, a: &Attempt) {
    match a {
        Attempt::Delivered { status } => {
            tracing::info!(destination = %dest.name, record = %d.record, version = d.record_version, attempt = d.attempts, status, "delivered")
        }
        Attempt::Retry {
            reason, status, at, ..
        } => {
            tracing::warn!(destination = %dest.name, record = %d.record, version = d.record_version, attempt = d.attempts, reason, status = ?status, retry_at = %at, "delivery will be retried")
        }
        Attempt::Failed {
            reason,
            status,
            error,
            ..
        } => {
            tracing::warn!(destination = %dest.name, record = %d.record, version = d.record_version, attempt = d.attempts, reason, status = ?status, %error, "delivery failed")
        }
        Attempt::Skipped { why } => {
            tracing::info!(destination = %dest.name, record = %d.record, version = d.record_version, %why, "delivery skipped")
        }
    }
}
