//! `/registry/submissions`: submit records to a registry destination (or plan a submission:
//! a dry run) and read how it went, record by record.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::ApiError;
use super::registry::store_error;
use super::AppState;
use crate::fhir::OutcomeIssue;
use crate::store::{StoreError, Submission};

/// The body of `POST /registry/submissions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Ask {
    destination: String,
    /// Records by gateway id or registry `recordId`.
    #[serde(default)]
    records: Vec<String>,
    /// Every live record.
    #[serde(default)]
    all: bool,
    #[serde(default)]
    dry_run: bool,
}

fn issue(code: &'static str, detail: &str, expression: &str, diagnostics: String) -> OutcomeIssue {
    OutcomeIssue {
        severity: "error",
        code,
        detail: detail.into(),
        diagnostics,
        expression: expression.into(),
        location: None,
    }
}

/// `POST /registry/submissions`: checks the whole request (every problem at once), records
/// the submission, and carries it out in the background; `202` with its `Location`.
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ask: Ask = serde_json::from_slice(&body).map_err(|e| ApiError::bad_json(&e))?;
    let mut issues = Vec::new();
    let dest = state
        .destinations
        .iter()
        .find(|d| d.name == ask.destination)
        .cloned();
    match &dest {
        None => issues.push(issue(
            "not-found",
            "destination",
            "destination",
            "No destination with that name.".into(),
        )),
        Some(d) if d.registry.is_none() => issues.push(issue(
            "value",
            "destination",
            "destination",
            "That destination is not a registry (kind = \"registry\").".into(),
        )),
        Some(_) => {}
    }
    if ask.all != ask.records.is_empty() {
        issues.push(issue(
            "required",
            "records",
            "records",
            "Name the records (records: [...]) or ask for all of them (all: true), not both."
                .into(),
        ));
    }
    let mut ids = Vec::new();
    for (i, name) in ask.records.iter().enumerate() {
        match state.store.find_record(name).await.map_err(store_error)? {
            Some(id) => ids.push(id),
            None => issues.push(issue(
                "not-found",
                "record",
                &format!("records[{i}]"),
                "No record with that id or recordId (or more than one registry uses that recordId).".into(),
            )),
        }
    }
    if !issues.is_empty() {
        return Err(ApiError::issues(StatusCode::BAD_REQUEST, issues));
    }
    let Some(dest) = dest else {
        return Err(ApiError::internal());
    };
    if ask.all {
        ids = state.store.live_records().await.map_err(store_error)?;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let submission = Submission {
        id: id.clone(),
        destination: dest.name.clone(),
        dry_run: ask.dry_run,
        status: "running".into(),
        records: ids.clone(),
        report: None,
        created_by: super::auth::actor(&req),
        created_at: chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        finished_at: None,
    };
    state
        .store
        .create_submission(&submission)
        .await
        .map_err(store_error)?;
    tokio::spawn(crate::sync::submit::carry_out(
        state.store.clone(),
        dest,
        id.clone(),
        ids,
        submission.dry_run,
        false,
    ));
    let location = format!("/registry/submissions/{id}");
    let created = state.store.submission(&id).await.map_err(store_error)?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, location))
        .json(created))
}

/// `GET /registry/submissions/{id}`: the submission, with its report once done.
pub async fn read(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    match state.store.submission(&path).await {
        Ok(s) => Ok(HttpResponse::Ok().json(s)),
        Err(StoreError::NotFound) => Err(ApiError::not_found("No submission with that id.")),
        Err(e) => Err(store_error(e)),
    }
}
