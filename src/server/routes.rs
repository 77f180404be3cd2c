//! The route table: every route with the SMART scope it will require once OAuth is enforced
//! (`None`: open, for health checks, metrics scraping and the CapabilityStatement). Scopes use
//! SMART v1 system scopes, as backend services request them.

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub scope: Option<&'static str>,
    pub summary: &'static str,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/healthz",
        scope: None,
        summary: "The process is up.",
    },
    Route {
        method: "GET",
        path: "/readyz",
        scope: None,
        summary: "Definitions, profiles and terminology are loaded.",
    },
    Route {
        method: "GET",
        path: "/metrics",
        scope: None,
        summary: "Prometheus metrics.",
    },
    Route {
        method: "GET",
        path: "/fhir/metadata",
        scope: None,
        summary: "The CapabilityStatement.",
    },
    Route {
        method: "POST",
        path: "/fhir/$validate",
        scope: Some("system/*.read"),
        summary: "Validate a resource or Bundle (raw, or in Parameters).",
    },
    Route {
        method: "POST",
        path: "/fhir/{type}/$validate",
        scope: Some("system/*.read"),
        summary: "Validate a resource of {type}.",
    },
    Route {
        method: "POST",
        path: "/fhir/$convert",
        scope: Some("system/*.read"),
        summary: "A registry record in, its transaction Bundle out; nothing stored.",
    },
    Route {
        method: "POST",
        path: "/fhir",
        scope: Some("system/*.write"),
        summary: "Inbound batch/transaction Bundles (422 until a reverse mapping exists).",
    },
    Route {
        method: "POST",
        path: "/registry/records",
        scope: Some("system/*.write"),
        summary: "Accept registry records (JSON, JSON array, CSV): check, map, validate, store.",
    },
    Route {
        method: "GET",
        path: "/registry/records/{id}",
        scope: Some("system/*.read"),
        summary: "The stored record.",
    },
    Route {
        method: "PUT",
        path: "/registry/records/{id}",
        scope: Some("system/*.write"),
        summary: "Replace a record (If-Match required).",
    },
    Route {
        method: "DELETE",
        path: "/registry/records/{id}",
        scope: Some("system/*.write"),
        summary: "Consent withdrawal: a tombstone the sync engine acts on.",
    },
    Route {
        method: "GET",
        path: "/registry/records/{id}/bundle",
        scope: Some("system/*.read"),
        summary: "The record's transaction Bundle.",
    },
    Route {
        method: "GET",
        path: "/registry/records/{id}/report",
        scope: Some("system/*.read"),
        summary: "Mapping report and validation outcome.",
    },
    Route {
        method: "GET",
        path: "/fhir/{type}",
        scope: Some("system/{type}.read"),
        summary: "Search.",
    },
    Route {
        method: "GET",
        path: "/fhir/{type}/{id}",
        scope: Some("system/{type}.read"),
        summary: "Read.",
    },
    Route {
        method: "GET",
        path: "/fhir/{type}/{id}/_history",
        scope: Some("system/{type}.read"),
        summary: "History of a resource.",
    },
    Route {
        method: "GET",
        path: "/fhir/{type}/{id}/_history/{vid}",
        scope: Some("system/{type}.read"),
        summary: "Read one version.",
    },
];

/// The scope `method path` (a route pattern) requires; `None` if open or unknown.
pub fn scope_of(method: &str, pattern: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|r| r.method == method && r.path == pattern)
        .and_then(|r| r.scope)
}
