//! The FHIR operations that need no store: `metadata`, `$validate` and `$convert`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::{outcome_response, ApiError};
use super::negotiate::{fhir_json, fhir_value, format, json_body, query_param};
use super::AppState;
use crate::convert::Outcome;
use crate::fhir::OutcomeIssue;
use crate::validation::has_errors;

/// `GET /fhir/metadata`: what this server does, and nothing it does not.
pub async fn metadata(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let f = format(&req)?;
    Ok(fhir_value(StatusCode::OK, &state.capability_statement, f))
}

/// The CapabilityStatement, built once at start.
/// `token_url`: the built-in token endpoint, advertised as SMART's `oauth-uris`; `None` when
/// authentication is off.
pub fn capability_statement(started: &str, token_url: Option<&str>) -> Value {
    let security = match token_url {
        Some(url) => json!({
            "extension": [{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": url}]
            }],
            "cors": false,
            "service": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR"
            }]}],
            "description": "OAuth 2 bearer tokens with SMART v1/v2 system scopes (SMART Backend Services); see /fhir/.well-known/smart-configuration."
        }),
        None => json!({
            "cors": false,
            "description": "Authentication is disabled on this server (--insecure-dev-no-auth)."
        }),
    };
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": started,
        "publisher": "Engraft",
        "kind": "instance",
        "software": {"name": "Engraft", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Engraft FHIR R4 gateway for autoimmune HSCT registries"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/json"],
        "rest": [{
            "mode": "server",
            "security": security,
            "documentation": "Resources are made from registry records (POST /registry/records) and are read-only here. A transaction or batch posted to the base adds findings (Observations, Conditions, Procedures about a Patient held here) to that Patient's registry record, as its next version; a transaction is all or nothing.",
            "interaction": [
                {"code": "transaction", "documentation": "Entries POST findings about a Patient held here; they map back onto its registry record. All or nothing."},
                {"code": "batch", "documentation": "As transaction, each entry on its own."}
            ],
            "resource": super::fhir_rest::TYPES.iter().map(|t| json!({
                "type": t,
                "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "history-instance"}, {"code": "search-type"}],
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": false,
                "searchInclude": [format!("{t}:patient"), format!("{t}:subject")],
                "searchParam": [
                    {"name": "_id", "type": "token"},
                    {"name": "_lastUpdated", "type": "date"},
                    {"name": "identifier", "type": "token"},
                    {"name": "patient", "type": "reference"},
                    {"name": "subject", "type": "reference"},
                    {"name": "code", "type": "token"},
                    {"name": "date", "type": "date"}
                ]
            })).collect::<Vec<_>>(),
            "operation": [
                {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"},
                {"name": "convert", "definition": "https://engraft.dev/fhir/OperationDefinition/convert"}
            ]
        }]
    })
}

/// `POST /fhir/$validate` and `POST /fhir/{type}/$validate`: a raw resource, or Parameters
/// with a `resource` (and optionally a `profile`). Always 200 with an OperationOutcome when the
/// request could be read; the outcome says whether the resource is valid.
pub async fn validate(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
    path: Option<web::Path<String>>,
) -> Result<HttpResponse, ApiError> {
    format(&req)?;
    let v = json_body(&req, &body)?;
    let (resource, profile) = if v["resourceType"] == "Parameters" {
        let params = v["parameter"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let resource = params
            .iter()
            .find(|p| p["name"] == "resource")
            .and_then(|p| p.get("resource"))
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "required",
                    "parameters",
                    "Parameters has no parameter named resource holding a resource.",
                )
            })?;
        let profile = params
            .iter()
            .find(|p| p["name"] == "profile")
            .and_then(|p| {
                ["valueUri", "valueCanonical", "valueString"]
                    .iter()
                    .find_map(|k| p[*k].as_str())
                    .map(str::to_string)
            });
        (resource, profile)
    } else {
        (v, query_param(&req, "profile"))
    };
    let Some(rt) = resource["resourceType"].as_str().map(str::to_string) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "structure",
            "resource-type",
            "The body is not a FHIR resource (no resourceType).",
        ));
    };
    if let Some(t) = path {
        let t = t.into_inner();
        if !state.validator.definitions.is_resource_or_type(&t)
            || !t.starts_with(char::is_uppercase)
        {
            return Err(ApiError::not_found("Unknown resource type in the URL."));
        }
        if t != rt {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "resource-type",
                "The resource's resourceType does not match the type in the URL.",
            ));
        }
    }
    let issues = state.validator.validate(&resource, profile.as_deref());
    let invalid = has_errors(&issues);
    state
        .metrics
        .validations
        .with_label_values(&[if invalid { "invalid" } else { "valid" }])
        .inc();
    let issues = if issues.is_empty() {
        vec![OutcomeIssue {
            severity: "information",
            code: "informational",
            detail: "valid".into(),
            diagnostics: "No issues: valid against base R4 and the declared profiles.".into(),
            expression: rt,
            location: None,
        }]
    } else {
        issues
    };
    Ok(outcome_response(StatusCode::OK, &issues))
}

/// `POST /fhir/$convert`: a registry record (JSON) in, its transaction Bundle out, validated
/// against base R4 and the profiles; nothing is stored. A record that fails its checks gets
/// 422 with every issue.
pub async fn convert(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let f = format(&req)?;
    let v = json_body(&req, &body)?;
    if !v.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "structure",
            "record",
            "$convert takes one registry record (a JSON object).",
        ));
    }
    let st = state.clone();
    // Conversion is CPU work (about 2 ms validated): keep it off the async workers.
    let outcome = web::block(move || {
        st.converter
            .convert_value(v, &crate::convert::now_instant())
    })
    .await
    .map_err(|_| ApiError::internal())?;
    let count = |outcome: &str| state.metrics.records.with_label_values(&[outcome]).inc();
    match outcome {
        Outcome::Converted(c) => {
            count("converted");
            Ok(fhir_json(StatusCode::OK, c.bundle, f))
        }
        Outcome::Rejected(r) => {
            if r.issues.iter().any(|i| i.code == "exception") {
                tracing::error!(record = ?r.record_id, "conversion failed internally");
                count("failed");
                return Err(ApiError::internal());
            }
            count("rejected");
            let status = if has_errors(&r.issues) {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_REQUEST
            };
            Err(ApiError::issues(status, r.issues))
        }
    }
}
