//! `POST /fhir`: inbound batch and transaction Bundles whose entries map back onto registry
//! records ([`crate::reverse`]). Each entry is a finding about a Patient Engraft holds (its
//! `subject`); the findings change their records, and every changed record is stored as its
//! next version after the same checks, mapping and validation as any record a client sends.
//!
//! A transaction is all or nothing: every problem of every entry is one 422, and nothing
//! changes. A batch takes each entry on its own, and says per entry what came of it.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::negotiate::{fhir_value, format, json_body};
use super::registry::store_error;
use super::AppState;
use crate::fhir::OutcomeIssue;
use crate::record::Record;
use crate::reverse::{self, Applied, Finding};
use crate::store::{StoreError, StoredRecord};
use crate::terminology::Terminology;
use crate::validation::has_errors;

fn issue(i: usize, at: &str, code: &'static str, detail: &str, diagnostics: &str) -> OutcomeIssue {
    OutcomeIssue {
        severity: "error",
        code,
        detail: detail.into(),
        diagnostics: diagnostics.into(),
        expression: format!("Bundle.entry[{i}].{at}"),
        location: None,
    }
}

/// One entry read: the record it changes and what it says.
struct Read<'a> {
    index: usize,
    record: String,
    finding: Finding,
    resource: &'a Value,
}

/// Reads entry `i`: a POST of an Observation, Condition or Procedure about a Patient Engraft
/// holds, saying something the record model has a place for.
async fn read<'a>(state: &AppState, i: usize, e: &'a Value) -> Result<Read<'a>, Vec<OutcomeIssue>> {
    let method = e["request"]["method"].as_str().unwrap_or("POST");
    if method != "POST" {
        return Err(vec![issue(i, "request.method", "not-supported", "method-not-supported",
            "Inbound entries are findings to add to registry records: use POST (records are replaced with PUT /registry/records/{id}).")]);
    }
    let resource = &e["resource"];
    let finding = reverse::read(Terminology::bundled(), resource)
        .map_err(|na| vec![issue(i, "resource", "not-supported", na.code, na.message)])?;
    let unknown = || {
        vec![issue(i, "resource.subject", "not-found", "unknown-patient",
            "The subject must reference a Patient Engraft holds (Patient/{id}); registry records themselves are created with POST /registry/records.")]
    };
    let patient = resource["subject"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or_else(unknown)?;
    let record = state
        .store
        .record_of_patient(patient)
        .await
        .map_err(|e| vec![store_issue(i, e)])?
        .ok_or_else(unknown)?;
    Ok(Read {
        index: i,
        record,
        finding,
        resource,
    })
}

fn store_issue(i: usize, e: StoreError) -> OutcomeIssue {
    tracing::error!(error = %e, "store failure on an inbound entry");
    issue(
        i,
        "resource",
        "transient",
        "store-unavailable",
        "The store could not complete the request; retry later.",
    )
}

/// What became of one entry.
struct Done {
    index: usize,
    status: &'static str,
    location: Option<String>,
    note: Option<String>,
}

/// Applies `reads` (one unit: all of a transaction, or one batch entry) to their records and
/// stores every changed record in one store transaction.
async fn apply(
    state: &web::Data<AppState>,
    reads: Vec<Read<'_>>,
    actor: &str,
) -> Result<Vec<Done>, (StatusCode, Vec<OutcomeIssue>)> {
    let unprocessable = |issues| (StatusCode::UNPROCESSABLE_ENTITY, issues);
    let mut by_record: BTreeMap<String, Vec<Read>> = BTreeMap::new();
    for r in reads {
        by_record.entry(r.record.clone()).or_default().push(r);
    }
    let mut issues = Vec::new();
    let mut changed: Vec<(StoredRecord, Record, Vec<Read>)> = Vec::new();
    let mut done = Vec::new();
    for (id, reads) in by_record {
        let stored = match state.store.record(&id).await {
            Ok(s) if !s.deleted => s,
            Ok(_) | Err(StoreError::NotFound) => {
                issues.extend(reads.iter().map(|r| {
                    issue(
                        r.index,
                        "resource.subject",
                        "not-found",
                        "unknown-patient",
                        "The Patient's record was withdrawn.",
                    )
                }));
                continue;
            }
            Err(e) => {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    vec![store_issue(reads[0].index, e)],
                ))
            }
        };
        let Ok(mut record) = serde_json::from_str::<Record>(&stored.record) else {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                vec![issue(
                    reads[0].index,
                    "resource",
                    "exception",
                    "internal",
                    "The record could not be read.",
                )],
            ));
        };
        let version = record.version;
        let mut applied = Vec::new();
        for r in reads {
            match reverse::apply(Terminology::bundled(), &record, &r.finding) {
                Ok(Applied::AlreadyThere) => done.push(Done {
                    index: r.index,
                    status: "200 OK",
                    location: None,
                    note: Some("The registry record already holds this.".into()),
                }),
                Ok(Applied::Changed { record: next, .. }) => {
                    record = *next;
                    applied.push(r);
                }
                Err(na) => issues.push(issue(
                    r.index,
                    "resource",
                    "not-supported",
                    na.code,
                    na.message,
                )),
            }
        }
        if !applied.is_empty() {
            // One new version for all of this record's entries.
            record.version = version + 1;
            changed.push((stored, record, applied));
        }
    }
    if !issues.is_empty() {
        return Err(unprocessable(issues));
    }
    let mut prepared = Vec::new();
    for (stored, record, reads) in changed {
        let st = state.clone();
        let p = web::block(move || super::registry::prepare_record(&st, record))
            .await
            .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, Vec::new()))?
            .map_err(|e| (e.status, e.issues))?;
        prepared.push((stored, p, reads));
    }
    if prepared.is_empty() {
        return Ok(done);
    }
    let updates: Vec<(i64, &crate::store::Prepared)> =
        prepared.iter().map(|(s, p, _)| (s.version, p)).collect();
    let written = state
        .store
        .update_many(&updates, actor, "fhir-inbound")
        .await
        .map_err(|e| {
            let e = match e {
                StoreError::VersionConflict { .. } => ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "record-changed",
                    "A record changed while the Bundle was applied; send it again.",
                ),
                e => store_error(e),
            };
            (e.status, e.issues)
        })?;
    state
        .metrics
        .records
        .with_label_values(&["accepted"])
        .inc_by(written.len() as u64);
    for ((stored, p, reads), w) in prepared.iter().zip(&written) {
        let old: Value = serde_json::from_str(&stored.bundle).unwrap_or_default();
        let new: Value = serde_json::from_str(&p.bundle).unwrap_or_default();
        for r in reads {
            let rtype = r.resource["resourceType"].as_str().unwrap_or_default();
            let made = reverse::made(&old, &new, rtype, &reverse::codes_of(r.resource))
                .and_then(crate::sync::ledger::local_key);
            let note = Some(format!("Registry record {} version {}.", w.id, w.version));
            done.push(match made {
                Some((t, id)) => Done {
                    index: r.index,
                    status: "201 Created",
                    location: Some(format!("{t}/{id}/_history/1")),
                    note,
                },
                None => Done {
                    index: r.index,
                    status: "200 OK",
                    location: None,
                    note,
                },
            });
        }
    }
    Ok(done)
}

fn outcome_json(issues: &[OutcomeIssue]) -> Value {
    let resource = fhirbolt::model::r4::Resource::OperationOutcome(Box::new(
        crate::fhir::operation_outcome(issues),
    ));
    crate::fhir::to_json(&resource, false)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn response_entry(d: &Done) -> Value {
    let mut response = json!({"status": d.status});
    if let Some(l) = &d.location {
        response["location"] = json!(l);
    }
    if let Some(n) = &d.note {
        response["outcome"] = outcome_json(&[OutcomeIssue {
            severity: "information",
            code: "informational",
            detail: "applied".into(),
            diagnostics: n.clone(),
            expression: String::new(),
            location: None,
        }]);
    }
    json!({"response": response})
}

/// `POST /fhir`.
pub async fn batch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let f = format(&req)?;
    let v = json_body(&req, &body)?;
    let transaction = match (v["resourceType"].as_str(), v["type"].as_str()) {
        (Some("Bundle"), Some("transaction")) => true,
        (Some("Bundle"), Some("batch")) => false,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "bundle-type",
                "POST /fhir takes a batch or transaction Bundle.",
            ))
        }
    };
    let entries = v["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    if entries.len() > state.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            "batch-too-large",
            &format!("At most {} entries per Bundle.", state.max_batch),
        ));
    }
    if entries.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "required",
            "empty-bundle",
            "The Bundle has no entries.",
        ));
    }
    let issues = state.validator.validate(&v, None);
    if has_errors(&issues) {
        return Err(ApiError::issues(StatusCode::UNPROCESSABLE_ENTITY, issues));
    }
    let actor = super::auth::actor(&req);
    let mut reads = Vec::new();
    let mut failed: Vec<(usize, Vec<OutcomeIssue>)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match read(&state, i, e).await {
            Ok(r) => reads.push(r),
            Err(list) => failed.push((i, list)),
        }
    }
    let mut done: Vec<Done> = Vec::new();
    if transaction {
        if !failed.is_empty() {
            let all = failed.into_iter().flat_map(|(_, l)| l).collect();
            return Err(ApiError::issues(StatusCode::UNPROCESSABLE_ENTITY, all));
        }
        done = apply(&state, reads, &actor)
            .await
            .map_err(|(status, issues)| match issues.is_empty() {
                true => ApiError::internal(),
                false => ApiError::issues(status, issues),
            })?;
    } else {
        for r in reads {
            let i = r.index;
            match apply(&state, vec![r], &actor).await {
                Ok(d) => done.extend(d),
                Err((_, issues)) => failed.push((i, issues)),
            }
        }
    }
    let mut out: Vec<(usize, Value)> = done.iter().map(|d| (d.index, response_entry(d))).collect();
    out.extend(failed.iter().map(|(i, issues)| {
        let status = if issues.iter().any(|x| x.code == "transient") {
            "503 Service Unavailable"
        } else {
            "422 Unprocessable Entity"
        };
        (
            *i,
            json!({"response": {"status": status, "outcome": outcome_json(issues)}}),
        )
    }));
    out.sort_by_key(|(i, _)| *i);
    let bundle = json!({
        "resourceType": "Bundle",
        "type": if transaction { "transaction-response" } else { "batch-response" },
        "entry": out.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
    });
    Ok(fhir_value(StatusCode::OK, &bundle, f))
}
