//! `/sync`: what the delivery workers are doing, what failed and why, and replay.

use actix_web::{web, HttpRequest, HttpResponse};
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

/// `POST /sync/failed/{id}/retry[?overwrite=true]`. With `overwrite`, a conflict is resolved
/// in Engraft's favour: the ledger forgets the remote versions of that record, so the next
/// delivery replaces what the destination holds (a person's decision, written to the audit
/// log).
pub async fn retry(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<std::collections::HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path
        .parse()
        .map_err(|_| ApiError::not_found("No failed delivery with that id."))?;
    if query.get("overwrite").is_some_and(|v| v == "true") {
        let Some((destination, record)) =
            state.store.failed_target(id).await.map_err(store_error)?
        else {
            return Err(ApiError::not_found("No failed delivery with that id."));
        };
        state
            .store
            .ledger_forget_versions(&destination, &record)
            .await
            .map_err(store_error)?;
        state
            .store
            .audit_event(
                &super::auth::actor(&req),
                &format!("sync-overwrite:{destination}"),
                "record",
                &record,
                None,
            )
            .await
            .map_err(store_error)?;
    }
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
    let dest = destination(&state, &name)?;
    // An unreachable destination still gets its diff, under the assumed capabilities.
    let (support, capabilities) = match dest.support().await {
        Ok(s) => (s.clone(), "read"),
        Err(_) => (
            crate::sync::capability::Support::assumed(),
            "assumed (destination unreachable)",
        ),
    };
    let support = &support;
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
        let mut bundle: serde_json::Value =
            serde_json::from_str(&record.bundle).map_err(|_| ApiError::internal())?;
        // A registry is sent the tagged Bundle without Provenance.
        if let Some(reg) = &dest.registry {
            bundle = crate::sync::cibmtr::submission_bundle(bundle, reg);
        }
        let held = state
            .store
            .ledger(&name, &d.record)
            .await
            .map_err(store_error)?;
        let plan = crate::sync::push::plan(dest, bundle, &held, support);
        let mut send: Vec<serde_json::Value> = plan
            .entries
            .iter()
            .filter_map(crate::sync::ledger::local_key)
            .map(|(t, id)| {
                let remote = held.get(&(t.clone(), id.clone())).map(|h| h.remote.clone());
                json!({"resourceType": t, "id": id,
                    "action": if remote.is_some() { "update" } else { "create" },
                    "remote": remote})
            })
            .collect();
        send.extend(plan.deletes.iter().map(|((t, id), remote)| {
            json!({"resourceType": t, "id": id, "action": "delete", "remote": remote})
        }));
        total += send.len();
        records.push(json!({"record": d.record, "version": d.record_version,
            "action": if send.is_empty() { "skip" } else { "send" },
            "send": send, "unchanged": plan.unchanged,
            "transactions": if support.transactions { plan.entries.len().div_ceil(dest.max_entries) } else { 0 }}));
    }
    Ok(HttpResponse::Ok().json(json!({
        "destination": name,
        "queued": queued.len(),
        "capabilities": capabilities,
        "resources_to_send": total,
        "records": records,
    })))
}

fn destination<'a>(
    state: &'a AppState,
    name: &str,
) -> Result<&'a crate::sync::remote::Destination, ApiError> {
    state
        .destinations
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.as_ref())
        .ok_or_else(|| ApiError::not_found("No destination with that name."))
}

/// `POST /sync/{destination}/pull`: pulls EHR changes now; new review items are queued.
pub async fn pull(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let dest = destination(&state, &path)?;
    let known = crate::terminology::Terminology::bundled().known_codes();
    match crate::sync::pull::pull(&state.store, dest, &known).await {
        Ok(report) => Ok(HttpResponse::Ok().json(report)),
        Err(crate::sync::pull::PullError::Store(e)) => Err(store_error(e)),
        Err(e) => Err(ApiError::new(
            actix_web::http::StatusCode::BAD_GATEWAY,
            "transient",
            "destination-error",
            &format!("The pull stopped: {e}."),
        )),
    }
}
