//! Operations endpoints: liveness, readiness and metrics.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers; definitions, profiles and terminology are loaded.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let profiles = state.validator.profiles.len();
    let (code_systems, value_sets, concept_maps) = state.validator.terminology.counts();
    let store = state.store.ping().await.is_ok();
    let ready = profiles > 0 && code_systems > 0 && store;
    let body = json!({
        "status": if ready { "ready" } else { "not-ready" },
        "store": if store { "reachable" } else { "unreachable" },
        "profiles": profiles,
        "codeSystems": code_systems,
        "valueSets": value_sets,
        "conceptMaps": concept_maps,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4"))
        .body(state.metrics.render())
}
