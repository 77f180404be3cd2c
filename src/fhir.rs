//! FHIR plumbing shared by the rest of the crate: OperationOutcome construction from issues,
//! and JSON (de)serialisation of R4 resources through fhirbolt.

use fhirbolt::model::r4::resources::{OperationOutcome, OperationOutcomeIssue};
use fhirbolt::model::r4::types::{CodeableConcept, Coding, String as FhirString};
use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use serde::Serialize;

use crate::record::{Issue, Severity};
use crate::terminology;

/// One OperationOutcome issue, independent of where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeIssue {
    pub severity: &'static str,
    /// FHIR IssueType (`invalid`, `structure`, `required`, `value`, `code-invalid`...).
    pub code: &'static str,
    /// Engraft's own code (`engraft-issue` or a validation constraint key).
    pub detail: String,
    pub diagnostics: String,
    /// FHIRPath of the problem.
    pub expression: String,
    /// A CSV cell, for CSV input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl From<&Issue> for OutcomeIssue {
    fn from(i: &Issue) -> Self {
        OutcomeIssue {
            severity: i.severity.as_str(),
            code: i.code.fhir_issue_type(),
            detail: i.code.as_str().to_string(),
            diagnostics: i.message.clone(),
            expression: i.location.expression(),
            location: i
                .location
                .csv
                .as_ref()
                .map(|c| format!("{} line {} column {}", c.file, c.line, c.column)),
        }
    }
}

/// Builds an OperationOutcome listing every issue.
pub fn operation_outcome(issues: &[OutcomeIssue]) -> OperationOutcome {
    let issue = issues
        .iter()
        .map(|i| OperationOutcomeIssue {
            severity: i.severity.into(),
            code: i.code.into(),
            details: Some(Box::new(CodeableConcept {
                coding: vec![Coding {
                    system: Some(terminology::cs("engraft-issue").into()),
                    code: Some(i.detail.clone().into()),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            diagnostics: Some(FhirString::from(i.diagnostics.clone())),
            location: i
                .location
                .iter()
                .map(|l| FhirString::from(l.clone()))
                .collect(),
            // An empty string is not a valid FHIR string: no expression rather than "".
            expression: (!i.expression.is_empty())
                .then(|| FhirString::from(i.expression.clone()))
                .into_iter()
                .collect(),
            ..Default::default()
        })
        .collect();
    OperationOutcome {
        issue,
        ..Default::default()
    }
}

/// The OperationOutcome of record issues.
pub fn record_outcome(issues: &[Issue]) -> OperationOutcome {
    let list: Vec<OutcomeIssue> = issues.iter().map(OutcomeIssue::from).collect();
    operation_outcome(&list)
}

/// Serialises a resource to FHIR JSON.
pub fn to_json(resource: &Resource, pretty: bool) -> Result<Vec<u8>, fhirbolt::json::Error> {
    let mut out = Vec::with_capacity(json_size_hint(resource, pretty));
    if pretty {
        fhirbolt::json::to_writer_pretty(&mut out, resource, None)?;
    } else {
        fhirbolt::json::to_writer(&mut out, resource, None)?;
    }
    Ok(out)
}

/// About what a resource's JSON takes, so the output is allocated once: grown from fhirbolt's
/// 128 bytes, a mapped record's Bundle (1.2 KB per entry, compact) was copied ten times.
fn json_size_hint(resource: &Resource, pretty: bool) -> usize {
    let per_resource = if pretty { 3 * 1024 } else { 1536 };
    match resource {
        Resource::Bundle(b) => 512 + b.entry.len() * per_resource,
        _ => per_resource,
    }
}

/// Parses a resource in Strict mode (unknown elements are an error).
pub fn from_json_strict(bytes: &[u8]) -> Result<Resource, fhirbolt::json::Error> {
    fhirbolt::json::from_slice(
        bytes,
        Some(DeserializationConfig {
            mode: DeserializationMode::Strict,
        }),
    )
}

/// True when any issue is an error.
pub fn has_errors(issues: &[Issue]) -> bool {
    issues.iter().any(|i| i.severity == Severity::Error)
}
