//! The registry API under `/registry/records`: accept (check + map + validate + store, one
//! transaction), read, replace with `If-Match`, tombstone on consent withdrawal.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::negotiate::{etag, fhir_json, format, http_date as last_modified};
use super::AppState;
use crate::convert::{now_instant, Outcome};
use crate::fhir::OutcomeIssue;
use crate::record::{self, csv as record_csv, Record};
use crate::store::{prepare, Prepared, StoreError, Written};

/// Maps store errors to answers. Ids and versions only.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found("No such record or resource."),
        StoreError::Gone(v) => ApiError::new(
            StatusCode::GONE,
            "deleted",
            "deleted",
            &format!("Deleted at version {v}."),
        ),
        StoreError::Exists(id) => ApiError::new(
            StatusCode::CONFLICT,
            "duplicate",
            "record-exists",
            &format!(
                "The record exists as /registry/records/{id}; replace it with PUT and If-Match."
            ),
        ),
        StoreError::PatientHeldElsewhere => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "patient-held-elsewhere",
            "Another record (another recordId) of this registry, centre and UPN already holds \
             the patient's resources; update that record instead.",
        ),
        StoreError::VersionConflict { current } => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "conflict",
            "version-conflict",
            &format!("If-Match does not name the current version ({current})."),
        ),
        other => {
            tracing::error!(error = %other, "store failure");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "store-unavailable",
                "The store could not complete the request; retry later.",
            )
        }
    }
}

/// Records of a request body: one JSON record, a JSON array of them, or a CSV export. Each is
/// a record or its issues; `locate` adds CSV cells.
type Input = Result<(Record, Option<record_csv::CsvRecord>), Vec<OutcomeIssue>>;

fn inputs(req: &HttpRequest, body: &[u8], max_batch: usize) -> Result<Vec<Input>, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let too_many = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            "batch-too-large",
            &format!("At most {max_batch} records per request."),
        )
    };
    let as_outcome = |issues: Vec<record::Issue>| -> Vec<OutcomeIssue> {
        issues.iter().map(OutcomeIssue::from).collect()
    };
    if ct == "text/csv" {
        let scales = record_csv::scale_codes(crate::terminology::Terminology::bundled());
        let reader = record_csv::open("upload.csv", body, None, &scales)
            .map_err(|e| ApiError::issues(StatusCode::UNPROCESSABLE_ENTITY, as_outcome(e.0)))?;
        let mut out = Vec::new();
        for r in reader {
            if out.len() == max_batch {
                return Err(too_many());
            }
            out.push(match r {
                Ok(c) => Ok((c.record.clone(), Some(c))),
                Err((_, issues)) => Err(as_outcome(issues)),
            });
        }
        return Ok(out);
    }
    let v = super::negotiate::json_body(req, body)?;
    let values = match v {
        Value::Array(items) => {
            if items.len() > max_batch {
                return Err(too_many());
            }
            if items.is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "required",
                    "empty-batch",
                    "The array holds no records.",
                ));
            }
            items
        }
        v @ Value::Object(_) => vec![v],
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "structure",
                "record",
                "Send a registry record (a JSON object), an array of them, or text/csv.",
            ))
        }
    };
    Ok(values
        .into_iter()
        .map(|v| {
            record::record_from_value(v)
                .map(|r| (r, None))
                .map_err(as_outcome)
        })
        .collect())
}

/// Checks, maps and validates every input; all prepared, or every issue of every record.
fn prepare_all(state: &AppState, inputs: Vec<Input>) -> Result<Vec<Prepared>, ApiError> {
    let now = now_instant();
    let batch = inputs.len() > 1;
    let mut prepared = Vec::new();
    let mut issues = Vec::new();
    let mut rejected = 0u64;
    for (i, input) in inputs.into_iter().enumerate() {
        let tag = |mut list: Vec<OutcomeIssue>| {
            if batch {
                for issue in &mut list {
                    if issue.location.is_none() {
                        issue.location = Some(format!("record {i}"));
                    }
                }
            }
            list
        };
        let (record, csv) = match input {
            Ok(x) => x,
            Err(list) => {
                rejected += 1;
                issues.extend(tag(list));
                continue;
            }
        };
        match prepare_one(state, record, csv.as_ref(), &now) {
            Ok(p) => prepared.push(p),
            Err(list) => {
                rejected += 1;
                issues.extend(tag(list));
            }
        }
    }
    if issues.iter().any(|i| i.code == "exception") {
        return Err(ApiError::internal());
    }
    if !issues.is_empty() {
        state
            .metrics
            .records
            .with_label_values(&["rejected"])
            .inc_by(rejected);
        return Err(ApiError::issues(StatusCode::UNPROCESSABLE_ENTITY, issues));
    }
    Ok(prepared)
}

/// Checks, maps and validates one record Engraft changed itself (an accepted review item):
/// prepared, or 422 with every issue.
pub(super) fn prepare_record(state: &AppState, record: Record) -> Result<Prepared, ApiError> {
    prepare_all(state, vec![Ok((record, None))]).map(|mut p| p.remove(0))
}

fn prepare_one(
    state: &AppState,
    record: Record,
    csv: Option<&record_csv::CsvRecord>,
    now: &str,
) -> Result<Prepared, Vec<OutcomeIssue>> {
    let record_json = serde_json::to_string(&record).map_err(|_| internal_issue())?;
    let (registry, record_id) = (record.registry.clone(), record.record_id.clone());
    let outcome = state.converter.convert_located(record, now, |issues| {
        if let Some(c) = csv {
            c.locate(issues)
        }
    });
    let mut converted = match outcome {
        Outcome::Converted(c) => c,
        Outcome::Rejected(r) => return Err(r.issues),
    };
    // The tree validation parsed; parsed here only if this converter does not validate.
    let bundle: Value = match converted.parsed.take() {
        Some(v) => v,
        None => serde_json::from_slice(&converted.bundle).map_err(|_| internal_issue())?,
    };
    let resources = prepare::resources(&bundle).map_err(|_| internal_issue())?;
    let report = json!({
        "mapping": converted.report,
        "validation": {"valid": true, "issues": [], "profiles": "base R4 and profiles/"},
    });
    let bundle_text = String::from_utf8(converted.bundle).map_err(|_| internal_issue())?;
    Ok(Prepared {
        id: crate::store::record_key(&registry, &record_id),
        registry,
        record_id,
        record: record_json,
        bundle_packed: crate::store::prepare::pack(&bundle_text).map_err(|_| internal_issue())?,
        bundle: bundle_text,
        report: report.to_string(),
        resources,
    })
}

fn internal_issue() -> Vec<OutcomeIssue> {
    vec![OutcomeIssue {
        severity: "fatal",
        code: "exception",
        detail: "internal".into(),
        diagnostics: "The record could not be prepared for storage.".into(),
        expression: String::new(),
        location: None,
    }]
}

fn summary(w: &Written, deleted: bool) -> Value {
    json!({
        "id": w.id,
        "version": w.version,
        "deleted": deleted,
        "updated": w.updated_at,
        "links": {
            "self": format!("/registry/records/{}", w.id),
            "bundle": format!("/registry/records/{}/bundle", w.id),
            "report": format!("/registry/records/{}/report", w.id),
        }
    })
}

/// The version an `If-Match` header names (`W/"3"` or `"3"`).
fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(h) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    h.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "if-match",
                "If-Match must be an ETag such as W/\"3\".",
            )
        })
}

fn record_id_of(path: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(path)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::not_found("No such record (ids are UUIDs)."))
}

/// `POST /registry/records`.
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    format(&req)?;
    let max_batch = state.max_batch;
    let inputs = inputs(&req, &body, max_batch)?;
    let st = state.clone();
    let prepared = web::block(move || prepare_all(&st, inputs))
        .await
        .map_err(|_| ApiError::internal())??;
    let written = state
        .store
        .create_many(prepared, &super::auth::actor(&req))
        .await
        .map_err(store_error)?;
    state
        .metrics
        .records
        .with_label_values(&["accepted"])
        .inc_by(written.len() as u64);
    if written.len() == 1 && !body.trim_ascii_start().starts_with(b"[") && !is_csv(&req) {
        let w = &written[0];
        return Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/registry/records/{}", w.id)))
            .insert_header((header::ETAG, etag(w.version)))
            .insert_header((header::LAST_MODIFIED, last_modified(&w.updated_at)))
            .json(summary(w, false)));
    }
    let list: Vec<Value> = written.iter().map(|w| summary(w, false)).collect();
    Ok(HttpResponse::Created().json(json!({ "records": list })))
}

fn is_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("text/csv"))
}

/// `PUT /registry/records/{id}`: replaces the record; `If-Match` is required.
pub async fn replace(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    format(&req)?;
    let id = record_id_of(&path)?;
    let expected = if_match(&req)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "required",
            "if-match",
            "PUT needs If-Match with the version you read (its ETag).",
        )
    })?;
    let mut inputs = inputs(&req, &body, 1)?;
    if inputs.len() != 1 || is_csv(&req) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "structure",
            "record",
            "PUT takes one registry record (a JSON object).",
        ));
    }
    let input = inputs.remove(0);
    let st = state.clone();
    let mut prepared = web::block(move || prepare_all(&st, vec![input]))
        .await
        .map_err(|_| ApiError::internal())??;
    let p = prepared.remove(0);
    if p.id != id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "record-id-mismatch",
            "The record's registry and recordId belong to another record id.",
        ));
    }
    let w = state
        .store
        .update(expected, &p, &super::auth::actor(&req))
        .await
        .map_err(store_error)?;
    state.metrics.records.with_label_values(&["accepted"]).inc();
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(w.version)))
        .insert_header((header::LAST_MODIFIED, last_modified(&w.updated_at)))
        .json(summary(&w, false)))
}

/// `DELETE /registry/records/{id}`: consent withdrawal. A tombstone version the sync engine
/// acts on; the record's resources are deleted. `If-Match` is optional.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = record_id_of(&path)?;
    let expected = if_match(&req)?;
    let w = state
        .store
        .delete(&id, expected, &super::auth::actor(&req))
        .await
        .map_err(store_error)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(w.version)))
        .json(summary(&w, true)))
}

/// Which part of a stored record to answer with.
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Record,
    Bundle,
    Report,
}

/// `GET /registry/records/{id}`, `.../bundle`, `.../report`.
pub async fn read(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    part: Part,
) -> Result<HttpResponse, ApiError> {
    let f = format(&req)?;
    let id = record_id_of(&path)?;
    let r = state.store.record(&id).await.map_err(store_error)?;
    if r.deleted {
        return Err(store_error(StoreError::Gone(r.version)));
    }
    let mut res = match part {
        Part::Bundle => fhir_json(StatusCode::OK, r.bundle.into_bytes(), f),
        Part::Record => HttpResponse::Ok()
            .content_type("application/json")
            .body(r.record),
        Part::Report => HttpResponse::Ok()
            .content_type("application/json")
            .body(r.report),
    };
    let headers = res.headers_mut();
    if let Ok(v) = header::HeaderValue::from_str(&etag(r.version)) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = header::HeaderValue::from_str(&last_modified(&r.updated_at)) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    Ok(res)
}
