//! Content negotiation: request media types, `_format` and `_pretty`, and FHIR JSON answers.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use super::error::ApiError;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// How the client wants the answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Format {
    pub pretty: bool,
}

/// The (decoded) value of query parameter `name`.
pub fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()?
        .into_inner()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn is_json(mime: &str) -> bool {
    let m = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        m.as_str(),
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
    )
}

/// The answer format: `_format` (json only) over `Accept`; `_pretty=true` indents.
pub fn format(req: &HttpRequest) -> Result<Format, ApiError> {
    if let Some(f) = query_param(req, "_format") {
        if !is_json(&f) {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "not-supported",
                "format",
                "Only JSON is supported (_format=json or application/fhir+json).",
            ));
        }
    } else if let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
    {
        let ok = accept.split(',').any(|a| {
            let m = a.split(';').next().unwrap_or("").trim();
            is_json(m) || m == "*/*" || m == "application/*"
        });
        if !ok {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "not-supported",
                "format",
                "Only application/fhir+json and application/json answers are available.",
            ));
        }
    }
    Ok(Format {
        pretty: query_param(req, "_pretty").is_some_and(|v| v == "true"),
    })
}

/// Checks the request's Content-Type is a JSON type; parses the body (duplicate keys refused,
/// depth limited by serde_json's recursion limit of 128).
pub fn json_body(req: &HttpRequest, body: &[u8]) -> Result<Value, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or("");
    if !is_json(ct) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "media-type",
            "Send application/fhir+json or application/json.",
        ));
    }
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "required",
            "empty-body",
            "The request has no body.",
        ));
    }
    crate::json::parse(body).map_err(|e| ApiError::bad_json(&e))
}

/// A weak ETag for a version (`W/"3"`).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// An ISO instant as an HTTP date (`Last-Modified`).
pub fn http_date(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|d| d.to_utc().format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

/// A FHIR JSON answer from serialised bytes (re-indented when `_pretty=true`).
pub fn fhir_json(status: StatusCode, body: Vec<u8>, f: Format) -> HttpResponse {
    let body = if f.pretty {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| serde_json::to_vec_pretty(&v).ok())
            .unwrap_or(body)
    } else {
        body
    };
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, FHIR_JSON))
        .body(body)
}

/// A FHIR JSON answer from a JSON value.
pub fn fhir_value(status: StatusCode, v: &Value, f: Format) -> HttpResponse {
    let body = if f.pretty {
        serde_json::to_vec_pretty(v)
    } else {
        serde_json::to_vec(v)
    }
    .unwrap_or_default();
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, FHIR_JSON))
        .body(body)
}
