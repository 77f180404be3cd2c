//! The route table: every route with the SMART scope it requires (`None`: open: health checks,
//! the CapabilityStatement, SMART discovery, Engraft's public keys and the token endpoint).
//!
//! A need is an interaction on a resource type; `{type}` is the type in the path. Engraft's own
//! APIs use pseudo types (`RegistryRecord`, `Metrics`). Operations need read on the type of
//! what they answer: `$validate` on the type validated (`Bundle` when untyped), `$convert` on
//! `Bundle`; inbound batch/transaction needs create on `Bundle`. See README "Authorization".

use crate::auth::scope::{Interaction, Need};

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The resource type (or `{type}`) and interaction required; `None`: open.
    pub need: Option<(&'static str, Interaction)>,
    pub summary: &'static str,
}

use Interaction::{Create as C, Delete as D, Read as R, Search as S, Update as U};

pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/healthz",
        need: None,
        summary: "The process is up.",
    },
    Route {
        method: "GET",
        path: "/readyz",
        need: None,
        summary: "Definitions, profiles and terminology are loaded.",
    },
    Route {
        method: "GET",
        path: "/metrics",
        need: Some(("Metrics", R)),
        summary: "Prometheus metrics.",
    },
    Route {
        method: "GET",
        path: "/fhir/metadata",
        need: None,
        summary: "The CapabilityStatement.",
    },
    Route {
        method: "POST",
        path: "/fhir/$validate",
        need: Some(("Bundle", R)),
        summary: "Validate a resource or Bundle (raw, or in Parameters).",
    },
    Route {
        method: "POST",
        path: "/fhir/{type}/$validate",
        need: Some(("{type}", R)),
        summary: "Validate a resource of {type}.",
    },
    Route {
        method: "POST",
        path: "/fhir/$convert",
        need: Some(("Bundle", R)),
        summary: "A registry record in, its transaction Bundle out; nothing stored.",
    },
    Route {
        method: "POST",
        path: "/fhir",
        need: Some(("Bundle", C)),
        summary: "Inbound transaction/batch Bundles of findings, mapped back onto registry records.",
    },
    Route {
        method: "POST",
        path: "/registry/records",
        need: Some(("RegistryRecord", C)),
        summary: "Accept registry records (JSON, JSON array, CSV): check, map, validate, store.",
    },
    Route {
        method: "GET",
        path: "/registry/records/{id}",
        need: Some(("RegistryRecord", R)),
        summary: "The stored record.",
    },
    Route {
        method: "PUT",
        path: "/registry/records/{id}",
        need: Some(("RegistryRecord", U)),
        summary: "Replace a record (If-Match required).",
    },
    Route {
        method: "DELETE",
        path: "/registry/records/{id}",
        need: Some(("RegistryRecord", D)),
        summary: "Consent withdrawal: a tombstone the sync engine acts on.",
    },
    Route {
        method: "GET",
        path: "/registry/records/{id}/bundle",
        need: Some(("RegistryRecord", R)),
        summary: "The record's transaction Bundle.",
    },
    Route {
        method: "GET",
        path: "/registry/records/{id}/report",
        need: Some(("RegistryRecord", R)),
        summary: "Mapping report and validation outcome.",
    },
    Route {
        method: "POST",
        path: "/registry/submissions",
        need: Some(("RegistrySubmission", C)),
        summary: "Submit records to a registry destination (or plan it: dryRun); 202 and its Location.",
    },
    Route {
        method: "GET",
        path: "/registry/submissions/{id}",
        need: Some(("RegistrySubmission", R)),
        summary: "A submission, with each record's report once done.",
    },
    Route {
        method: "GET",
        path: "/fhir/{type}",
        need: Some(("{type}", S)),
        summary: "Search.",
    },
    Route {
        method: "GET",
        path: "/fhir/{type}/{id}",
        need: Some(("{type}", R)),
        summary: "Read.",
    },
    Route {
        method: "GET",
        path: "/fhir/{type}/{id}/_history",
        need: Some(("{type}", R)),
        summary: "History of a resource.",
    },
    Route {
        method: "GET",
        path: "/fhir/{type}/{id}/_history/{vid}",
        need: Some(("{type}", R)),
        summary: "Read one version.",
    },
    Route {
        method: "GET",
        path: "/sync/status",
        need: Some(("SyncDelivery", R)),
        summary: "Per destination: queued, in flight, delivered, failed, skipped, last success and error.",
    },
    Route {
        method: "GET",
        path: "/sync/failed",
        need: Some(("SyncDelivery", R)),
        summary: "Failed deliveries with their reason and the server's OperationOutcome.",
    },
    Route {
        method: "POST",
        path: "/sync/failed/{id}/retry",
        need: Some(("SyncDelivery", U)),
        summary: "Put one failed delivery back in the queue.",
    },
    Route {
        method: "POST",
        path: "/sync/failed/retry-all",
        need: Some(("SyncDelivery", U)),
        summary: "Put every failed delivery back in the queue.",
    },
    Route {
        method: "POST",
        path: "/sync/{destination}/dry-run",
        need: Some(("SyncDelivery", R)),
        summary: "What the queued deliveries would send now, as a diff against the ledger.",
    },
    Route {
        method: "POST",
        path: "/sync/{destination}/pull",
        need: Some(("SyncDelivery", U)),
        summary: "Pull EHR changes now; relevant ones are queued for review.",
    },
    Route {
        method: "GET",
        path: "/sync/reviews",
        need: Some(("SyncDelivery", R)),
        summary: "EHR resources proposed as registry updates, waiting for a decision.",
    },
    Route {
        method: "GET",
        path: "/sync/reviews/{id}",
        need: Some(("SyncDelivery", R)),
        summary: "One review item and what accepting it would change in the record (JSON Patch).",
    },
    Route {
        method: "POST",
        path: "/sync/reviews/{id}/{decision}",
        need: Some(("RegistryRecord", U)),
        summary: "Accept (apply to the registry record) or reject a proposed registry update.",
    },
    Route {
        method: "GET",
        path: "/fhir/.well-known/smart-configuration",
        need: None,
        summary: "SMART discovery: the token endpoint and what it supports.",
    },
    Route {
        method: "GET",
        path: "/.well-known/jwks.json",
        need: None,
        summary: "Engraft's public keys (active, and retired ones whose tokens may still live).",
    },
    Route {
        method: "POST",
        path: "/auth/token",
        need: None,
        summary: "The built-in token endpoint (SMART Backend Services, client_credentials).",
    },
];

/// What `method pattern` requires, with `{type}` resolved from the path; `None` if open or
/// unknown.
pub fn need_of(method: &str, pattern: &str, type_param: Option<&str>) -> Option<Need> {
    let route = ROUTES
        .iter()
        .find(|r| r.method == method && r.path == pattern)?;
    let (resource, interaction) = route.need?;
    let resource = if resource == "{type}" {
        type_param.unwrap_or("*")
    } else {
        resource
    };
    Some(Need::new(resource, interaction))
}

/// Whether `pattern` is in the route table under any method (so a request that matched it
/// with another method is a 405, not an unknown route).
pub fn is_listed(pattern: &str) -> bool {
    ROUTES.iter().any(|r| r.path == pattern)
}

/// The need as a scope for documentation: `system/{type}.r`.
pub fn scope_text(route: &Route) -> Option<String> {
    route
        .need
        .map(|(r, i)| format!("system/{r}.{}", i.letter()))
}
