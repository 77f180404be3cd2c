//! `/sync`: what the delivery workers are doing, what failed and why, and replay.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use super::registry::store_error;
use super::AppState;

/// `GET /sync/status`: per destination, queued, in flight, delivered, failed, skipped, the
/// last success and the last error (from the store: every instance's work), and this
/// process's circuit breaker state.
pub async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = state.store.sync_status().await.map_err(store_error)?;
    let now = std::time::Instant::now();
    let mut out = Vec::new();
    for d in &state.destinations {
        let mut row = rows
            .iter()
            .find(|r| r.destination == d.name)
            .map(|r| json!(r))
            .unwrap_or_else(|| {
                json!({"destination": d.name, "queued": 0, "in_flight": 0, "delivered": 0,
                       "failed": 0, "skipped": 0, "last_success": null, "last_error": null})
            });
        row["circuit"] = json!(d.circuit.state(now));
        out.push(row);
    }
    // Destinations no longer configured here but with rows in the store.
    for r in rows
        .iter()
        .filter(|r| !state.destinations.iter().any(|d| d.name == r.destination))
    {
        out.push(json!(r));
    }
    Ok(HttpResponse::Ok().json(json!({ "destinations": out })))
}

/// `GET /sync/failed`: failed deliveries with their reason category, HTTP status and the
/// server's OperationOutcome.
pub async fn failed(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let rows = state
        .store
        .failed_deliveries(1000)
        .await
        .map_err(store_error)?;
    Ok(HttpResponse::Ok().json(json!({ "failed": rows })))
}

/// `POST /sync/failed/{id}/retry`.
pub async fn retry(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path
        .parse()
        .map_err(|_| ApiError::not_found("No failed delivery with that id."))?;
    match state
        .store
        .retry_failed(Some(id))
        .await
        .map_err(store_error)?
    {
        0 => Err(ApiError::not_found("No failed delivery with that id.")),
        n => Ok(HttpResponse::Accepted().json(json!({ "requeued": n }))),
    }
}

/// `POST /sync/failed/retry-all`.
pub async fn retry_all(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let n = state.store.retry_failed(None).await.map_err(store_error)?;
    Ok(HttpResponse::Accepted().json(json!({ "requeued": n })))
}

/// `POST /sync/{destination}/dry-run`: what the queued deliveries would send now, as a diff
/// against the ledger: per record, each resource to send (create, or update of its remote id)
/// and how many are unchanged. Nothing is sent or changed.
pub async fn dry_run(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    if !state.destinations.iter().any(|d| d.name == name) {
        return Err(ApiError::not_found("No destination with that name."));
    }
    let queued = state
        .store
        .queued_deliveries(&name, 1000)
        .await
        .map_err(store_error)?;
    let mut records = Vec::new();
    let mut total = 0usize;
    for d in &queued {
        if d.action == "delete" {
            records.push(json!({"record": d.record, "version": d.record_version,
                "action": "skip", "why": "consent withdrawn (withdrawal policy: stop)"}));
            continue;
        }
        let record = match state.store.record(&d.record).await {
            Ok(r) if !r.deleted && r.version == d.record_version => r,
            _ => {
                records.push(json!({"record": d.record, "version": d.record_version,
                    "action": "skip", "why": "superseded, withdrawn or gone"}));
                continue;
            }
        };
        let bundle: serde_json::Value =
            serde_json::from_str(&record.bundle).map_err(|_| ApiError::internal())?;
        let held = state
            .store
            .ledger(&name, &d.record)
            .await
            .map_err(store_error)?;
        let plan = crate::sync::ledger::plan(bundle, &held);
        let send: Vec<serde_json::Value> = plan
            .sent
            .iter()
            .map(|(t, id, _)| {
                let remote = held.get(&(t.clone(), id.clone())).map(|h| h.remote.clone());
                json!({"resourceType": t, "id": id,
                    "action": if remote.is_some() { "update" } else { "create" },
                    "remote": remote})
            })
            .collect();
        total += send.len();
        records.push(json!({"record": d.record, "version": d.record_version,
            "action": if send.is_empty() { "skip" } else { "send" },
            "send": send, "unchanged": plan.unchanged}));
    }
    Ok(HttpResponse::Ok().json(json!({
        "destination": name,
        "queued": queued.len(),
        "resources_to_send": total,
        "records": records,
    })))
}
