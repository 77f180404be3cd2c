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

/// 422 with one issue of entry `i`.
fn unprocessable(
    i: usize,
    at: &str,
    code: &'static str,
    detail: &str,
    diagnostics: &str,
) -> ApiError {
    ApiError::issues(
        StatusCode::UNPROCESSABLE_ENTITY,
        vec![issue(i, at, code, detail, diagnostics)],
    )
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
async fn read<'a>(state: &AppState, i: usize, e: &'a Value) -> Result<Read<'a>, ApiError> {
    let method = e["request"]["method"].as_str().unwrap_or("POST");
    if method != "POST" {
        return Err(unprocessable(i, "request.method", "not-supported", "method-not-supported",
            "Inbound entries are findings to add to registry records: use POST (records are replaced with PUT /registry/records/{id})."));
    }
    let resource = &e["resource"];
    let finding = reverse::read(Terminology::bundled(), resource)
        .map_err(|na| unprocessable(i, "resource", "not-supported", na.code, na.message))?;
    let unknown = || {
        unprocessable(i, "resource.subject", "not-found", "unknown-patient",
            "The subject must reference a Patient Engraft holds (Patient/{id}); registry records themselves are created with POST /registry/records.")
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
        .map_err(|e| store_unavailable(i, e))?
        .ok_or_else(unknown)?;
    Ok(Read {
        index: i,
        record,
        finding,
        resource,
    })
}

fn store_unavailable(i: usize, e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store failure on an inbound entry");
    ApiError::issues(
        StatusCode::SERVICE_UNAVAILABLE,
        vec![issue(
            i,
            "resource",
            "transient",
            "store-unavailable",
            "The store could not complete the request; retry later.",
        )],
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
) -> Result<Vec<Done>, ApiError> {
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
            Err(e) => return Err(store_unavailable(reads[0].index, e)),
        };
        let Ok(mut record) = serde_json::from_str::<Record>(&stored.record) else {
            tracing::error!(record = %id, "a stored record does not read back");
            return Err(ApiError::internal());
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
        return Err(ApiError::issues(StatusCode::UNPROCESSABLE_ENTITY, issues));
    }
    let mut prepared = Vec::new();
    for (stored, record, reads) in changed {
        let st = state.clone();
        let p = web::block(move || super::registry::prepare_record(&st, record))
            .await
            .map_err(|_| ApiError::internal())??;
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
        .map_err(|e| match e {
            StoreError::VersionConflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "record-changed",
                "A record changed while the Bundle was applied; send it again.",
            ),
            e => store_error(e),
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
    let mut failed: Vec<(usize, ApiError)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match read(&state, i, e).await {
            Ok(r) => reads.push(r),
            Err(e) => failed.push((i, e)),
        }
    }
    let mut done: Vec<Done> = Vec::new();
    if transaction {
        // A store failure answers as itself; otherwise every entry's problems in one 422.
        if let Some(p) = failed
            .iter()
            .position(|(_, e)| e.status != StatusCode::UNPROCESSABLE_ENTITY)
        {
            return Err(failed.swap_remove(p).1);
        }
        if !failed.is_empty() {
            let all = failed.into_iter().flat_map(|(_, e)| e.issues).collect();
            return Err(ApiError::issues(StatusCode::UNPROCESSABLE_ENTITY, all));
        }
        done = apply(&state, reads, &actor).await?;
    } else {
        for r in reads {
            let i = r.index;
            match apply(&state, vec![r], &actor).await {
                Ok(d) => done.extend(d),
                Err(e) => failed.push((i, e)),
            }
        }
    }
    let mut out: Vec<(usize, Value)> = done.iter().map(|d| (d.index, response_entry(d))).collect();
    out.extend(failed.iter().map(|(i, e)| {
        let status = format!(
            "{} {}",
            e.status.as_u16(),
            e.status.canonical_reason().unwrap_or_default()
        );
        (
            *i,
            json!({"response": {"status": status, "outcome": outcome_json(&e.issues)}}),
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
