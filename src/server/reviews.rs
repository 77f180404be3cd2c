//! `/sync/reviews`: EHR resources pulled as proposed registry updates, and a person's
//! decision on each. Accepting applies the item to the registry record ([`crate::reverse`]):
//! the record's next version goes through the same checks, mapping and validation as any
//! record a client sends, and is stored with the decision in one transaction.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::registry::store_error;
use super::AppState;
use crate::record::Record;
use crate::reverse::{self, Applied, NotApplicable};
use crate::store::{Decision, Review, StoreError, StoredRecord};
use crate::terminology::Terminology;

/// `GET /sync/reviews[?status=proposed|accepted|rejected]`: EHR resources proposed as
/// registry updates.
pub async fn list(
    query: web::Query<std::collections::HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let status = query.get("status").map(String::as_str);
    if status.is_some_and(|s| !["proposed", "accepted", "rejected"].contains(&s)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "value",
            "bad-parameter",
            "status must be proposed, accepted or rejected.",
        ));
    }
    let rows = state
        .store
        .reviews(status, 1000)
        .await
        .map_err(store_error)?;
    Ok(HttpResponse::Ok().json(json!({ "reviews": rows })))
}

fn review_id(s: &str) -> Result<i64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::not_found("No review item with that id."))
}

async fn review(state: &AppState, id: i64) -> Result<Review, ApiError> {
    state
        .store
        .review(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("No review item with that id."))
}

/// The record an item belongs to, live.
async fn live_record(state: &AppState, r: &Review) -> Result<(StoredRecord, Record), ApiError> {
    let stored = match state.store.record(&r.record).await {
        Ok(s) if !s.deleted => s,
        Ok(_) | Err(StoreError::NotFound) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "record-withdrawn",
                "The record this item belongs to was withdrawn (or removed); reject the item.",
            ))
        }
        Err(e) => return Err(store_error(e)),
    };
    let record: Record = serde_json::from_str(&stored.record).map_err(|_| ApiError::internal())?;
    Ok((stored, record))
}

/// What accepting `r` would do to `record`.
fn proposal(r: &Review, record: &Record) -> Result<Applied, NotApplicable> {
    let term = Terminology::bundled();
    reverse::read(term, &r.resource).and_then(|f| reverse::apply(term, record, &f))
}

fn not_applicable(e: NotApplicable) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "not-supported",
        e.code,
        &format!(
            "{} Accept with ?manual=true once it is entered by hand, or reject the item.",
            e.message
        ),
    )
}

/// `GET /sync/reviews/{id}`: the item and what accepting it would change in the record now,
/// as JSON Patch operations on the record (or why it cannot).
pub async fn show(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r = review(&state, review_id(&path)?).await?;
    let proposal = if r.status != "proposed" {
        Value::Null
    } else {
        match live_record(&state, &r).await {
            Err(e) => {
                json!({"change": null, "reason": e.issues.first().map(|i| i.detail.clone())})
            }
            Ok((stored, record)) => match proposal(&r, &record) {
                Ok(Applied::AlreadyThere) => {
                    json!({"change": "none", "reason": "already-in-record"})
                }
                Ok(Applied::Changed { patch, .. }) => {
                    json!({"change": "patch", "recordVersion": stored.version, "patch": patch})
                }
                Err(e) => json!({"change": null, "reason": e.code, "message": e.message}),
            },
        }
    };
    let mut out = json!(r);
    out["proposal"] = proposal;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, serde::Deserialize)]
pub struct DecideQuery {
    /// Accept without applying: a person entered the data in the registry by hand.
    #[serde(default)]
    manual: bool,
}

/// `POST /sync/reviews/{id}/accept[?manual=true]` and `/reject`: a person's decision,
/// audited. `accept` applies the item to the registry record (a new record version, synced
/// like any other), or says that the record already holds it; an item Engraft cannot place
/// is 422 with the reason, and can be accepted with `manual=true` once entered by hand.
pub async fn decide(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<DecideQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, verb) = path.into_inner();
    let status = match verb.as_str() {
        "accept" => "accepted",
        "reject" => "rejected",
        _ => return Err(ApiError::not_found("Use accept or reject.")),
    };
    let id = review_id(&id)?;
    let actor = super::auth::actor(&req);
    let decided = if status == "rejected" || query.manual {
        let d = Decision {
            status,
            outcome: query
                .manual
                .then_some("manual")
                .filter(|_| status == "accepted"),
            actor: &actor,
        };
        state.store.decide_review(id, d).await
    } else {
        accept(&state, id, &actor).await?
    };
    match decided {
        Ok(r) => Ok(HttpResponse::Ok().json(r)),
        Err(StoreError::NotFound) => Err(ApiError::not_found("No review item with that id.")),
        Err(StoreError::Exists(was)) => Err(already(&was)),
        Err(StoreError::VersionConflict { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "record-changed",
            "The record changed while the item was applied; accept it again.",
        )),
        Err(e) => Err(store_error(e)),
    }
}

fn already(was: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        "already-decided",
        &format!("The review item was already {was}."),
    )
}

/// Applies item `id` to its record.
async fn accept(
    state: &web::Data<AppState>,
    id: i64,
    actor: &str,
) -> Result<Result<Review, StoreError>, ApiError> {
    let r = review(state, id).await?;
    if r.status != "proposed" {
        return Err(already(&r.status));
    }
    let (stored, record) = live_record(state, &r).await?;
    let (next, patch) = match proposal(&r, &record).map_err(not_applicable)? {
        Applied::AlreadyThere => {
            let d = Decision {
                status: "accepted",
                outcome: Some("already-in-record"),
                actor,
            };
            return Ok(state.store.decide_review(id, d).await);
        }
        Applied::Changed { record, patch } => (*record, patch),
    };
    let st = state.clone();
    let p = web::block(move || super::registry::prepare_record(&st, next))
        .await
        .map_err(|_| ApiError::internal())??;
    let old: Value = serde_json::from_str(&stored.bundle).unwrap_or_default();
    let new: Value = serde_json::from_str(&p.bundle).map_err(|_| ApiError::internal())?;
    let link = crate::sync::pull::stand_in(&old, &new, &r);
    let patch = Value::Array(patch).to_string();
    let applied = state
        .store
        .apply_review(
            id,
            &r.record,
            stored.version,
            &p,
            &patch,
            link.as_ref().map(|row| (r.destination.as_str(), row)),
            actor,
        )
        .await;
    if applied.is_ok() {
        state.metrics.records.with_label_values(&["accepted"]).inc();
    }
    Ok(applied)
}
