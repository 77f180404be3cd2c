//! Errors at the HTTP edge: every non-2xx answer is a FHIR OperationOutcome with the issues
//! that explain it. Messages name paths and rules, never patient values or internal errors.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::fhir::{self, OutcomeIssue};

/// An error answer: a status and the issues of its OperationOutcome.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub issues: Vec<OutcomeIssue>,
}

impl ApiError {
    /// One issue: `code` is the FHIR IssueType, `detail` Engraft's own code.
    pub fn new(status: StatusCode, code: &'static str, detail: &str, diagnostics: &str) -> Self {
        ApiError {
            status,
            issues: vec![OutcomeIssue {
                severity: if status.is_server_error() {
                    "fatal"
                } else {
                    "error"
                },
                code,
                detail: detail.into(),
                diagnostics: diagnostics.into(),
                expression: String::new(),
                location: None,
            }],
        }
    }

    pub fn issues(status: StatusCode, issues: Vec<OutcomeIssue>) -> Self {
        ApiError { status, issues }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "not-found", what)
    }

    pub fn bad_json(e: &serde_json::Error) -> Self {
        // serde_json's messages name the line and column and the kind of problem; they do
        // not quote the input.
        let msg = format!("The body is not valid JSON: {e}.");
        ApiError::new(StatusCode::BAD_REQUEST, "structure", "json", &msg)
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "internal",
            "The server could not complete the request; it has been logged.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status)?;
        for i in &self.issues {
            write!(f, "; {}: {}", i.detail, i.diagnostics)?;
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        outcome_response(self.status, &self.issues)
    }
}

/// An OperationOutcome answer with `status`.
pub fn outcome_response(status: StatusCode, issues: &[OutcomeIssue]) -> HttpResponse {
    let resource =
        fhirbolt::model::r4::Resource::OperationOutcome(Box::new(fhir::operation_outcome(issues)));
    match fhir::to_json(&resource, false) {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, super::negotiate::FHIR_JSON))
            .body(body),
        // An OperationOutcome of plain strings always serialises; answer plainly if not.
        Err(_) => HttpResponse::InternalServerError()
            .insert_header((header::CONTENT_TYPE, super::negotiate::FHIR_JSON))
            .body(r#"{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}"#),
    }
}
