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
