//! The delivery worker of one destination.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;

use super::ledger;
use super::policy::{decide, Answer, RetryPolicy};
use crate::auth::outbound::{SendError, TokenProvider};
use crate::config::DestinationConfig;
use crate::store::{Attempt, Delivery, SqlStore, StoreError};

/// A destination, ready to deliver to.
pub struct Destination {
    pub name: String,
    /// Where transaction Bundles are POSTed (the FHIR base URL).
    pub base_url: String,
    tokens: Option<TokenProvider>,
    http: reqwest::Client,
    pub policy: RetryPolicy,
    pub concurrency: usize,
    timeout: Duration,
    pub circuit: super::circuit::Circuit,
}

impl Destination {
    pub fn from_config(d: &DestinationConfig) -> Result<Destination, String> {
        let timeout = Duration::from_secs(d.timeout_secs);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|_| "HTTP client".to_string())?;
        Ok(Destination {
            name: d.name.clone(),
            base_url: d.base_url.trim_end_matches('/').to_string(),
            tokens: d.token_provider(http.clone())?,
            http,
            policy: RetryPolicy {
                max_attempts: d.max_attempts,
                base: Duration::from_millis(d.backoff_base_ms),
                max: Duration::from_secs(d.backoff_max_secs),
            },
            concurrency: d.concurrency,
            timeout,
            circuit: super::circuit::Circuit::new(
                d.circuit_failures,
                Duration::from_secs(d.circuit_open_secs),
            ),
        })
    }

    /// POSTs a transaction Bundle; the answer, without its body unless it is an error.
    async fn send(&self, bundle: &str) -> Answer {
        let url = format!("{}/", self.base_url);
        let build = |http: &reqwest::Client| {
            http.post(&url)
                .header("content-type", "application/fhir+json")
                .header("accept", "application/fhir+json")
                .body(bundle.to_string())
        };
        let res = match &self.tokens {
            Some(t) => t.send(build).await,
            None => build(&self.http).send().await.map_err(SendError::Http),
        };
        match res {
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // A transaction-response (for the ledger) or an error's OperationOutcome.
                let body = r.text().await.unwrap_or_default();
                Answer::Http {
                    status,
                    retry_after,
                    body,
                }
            }
            Err(SendError::Token(e)) => Answer::Token(e.to_string()),
            Err(SendError::Http(e)) if e.is_timeout() => Answer::Timeout,
            Err(SendError::Http(_)) => Answer::Network,
        }
    }
}

/// One attempt at one delivery; returns how it ended.
async fn attempt(
    store: &SqlStore,
    dest: &Destination,
    d: &Delivery,
) -> Result<Attempt, StoreError> {
    if d.action == "delete" {
        return Ok(Attempt::Skipped {
            why: "consent withdrawn: syncing stopped for this record (withdrawal policy: stop)"
                .into(),
        });
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
    let held = store.ledger(&dest.name, &d.record).await?;
    let plan = ledger::plan(bundle, &held);
    let Some(to_send) = &plan.bundle else {
        return Ok(Attempt::Skipped {
            why: "nothing changed since the last delivery".into(),
        });
    };
    let answer = dest.send(&to_send.to_string()).await;
    let unit: f64 = rand::thread_rng().gen();
    let outcome = decide(&dest.policy, d.attempts, &answer, chrono::Utc::now(), unit);
    if let (Attempt::Delivered { .. }, Answer::Http { body, .. }) = (&outcome, &answer) {
        // A lost ledger write only means the next delivery re-sends (idempotently).
        let response: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        store
            .ledger_update(&dest.name, &d.record, &ledger::confirmed(&plan, &response))
            .await?;
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
    // Long enough for a slow attempt (token refresh, request, 401 retry), short enough that a
    // crashed worker's rows are taken over soon.
    let lease_secs = (dest.timeout.as_secs() * 2 + 5) as i64;
    tracing::info!(destination = %dest.name, "delivery worker started");
    // Up to `concurrency` deliveries in flight, each its own task (so it progresses while this
    // loop waits on the store); a slot that frees is refilled at once, so one slow answer
    // never holds the others back.
    let mut in_flight = tokio::task::JoinSet::new();
    while !*stop.borrow() {
        let free = dest.concurrency.saturating_sub(in_flight.len());
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
                            deliver(&store, &dest, &owner, &attempts, d).await
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
        if in_flight.len() < dest.concurrency {
            // Free slots: wake on a finished delivery, or soon to look for new work.
            tokio::select! {
                _ = in_flight.join_next() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        } else {
            in_flight.join_next().await;
        }
    }
    tracing::info!(destination = %dest.name, "delivery worker stopped");
}

/// One delivery attempt, recorded.
async fn deliver(
    store: &SqlStore,
    dest: &Destination,
    owner: &str,
    attempts: &prometheus::IntCounterVec,
    d: Delivery,
) {
    let outcome = match attempt(store, dest, &d).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(destination = %dest.name, error = %e, "reading the record failed; its lease will run out and it will be retried");
            return;
        }
    };
    log(dest, &d, &outcome);
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
    if let Err(e) = store.finish_delivery(d.seq, owner, &outcome).await {
        tracing::error!(destination = %dest.name, error = %e, "recording a delivery failed; its lease will run out and it will be retried");
    }
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
