//! The FHIR R4 REST API over the store: read, vread, `_history` and search on the resource
//! types Engraft holds.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::error::ApiError;
use super::negotiate::{etag, fhir_value, format, http_date};
use super::registry::store_error;
use super::AppState;
use crate::store::{DateOp, ResourceVersion, Search};

/// The resource types the store holds (what a mapped record contains).
pub const TYPES: &[&str] = crate::mapping::RESOURCE_TYPES;

/// Search parameters every type takes (besides the result parameters).
pub const SEARCH_PARAMS: &[&str] = &[
    "_id",
    "identifier",
    "patient",
    "subject",
    "code",
    "date",
    "_lastUpdated",
];

fn known_type(t: &str) -> Result<(), ApiError> {
    if TYPES.contains(&t) {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "This server holds no resources of that type.",
        ))
    }
}

fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}/fhir", info.scheme(), info.host())
}

fn resource_response(v: &ResourceVersion, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let f = format(req)?;
    let body: Value = serde_json::from_str(&v.body).map_err(|_| ApiError::internal())?;
    let mut res = fhir_value(StatusCode::OK, &body, f);
    let h = res.headers_mut();
    if let Ok(e) = header::HeaderValue::from_str(&etag(v.version)) {
        h.insert(header::ETAG, e);
    }
    if let Ok(l) = header::HeaderValue::from_str(&http_date(&v.last_updated)) {
        h.insert(header::LAST_MODIFIED, l);
    }
    Ok(res)
}

/// `GET /fhir/{type}/{id}`.
pub async fn read(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    known_type(&t)?;
    let v = state.store.read(&t, &id).await.map_err(store_error)?;
    resource_response(&v, &req)
}

/// `GET /fhir/{type}/{id}/_history/{vid}`.
pub async fn vread(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (t, id, vid) = path.into_inner();
    known_type(&t)?;
    let vid: i64 = vid
        .parse()
        .map_err(|_| ApiError::not_found("Version ids are integers."))?;
    let v = state.store.vread(&t, &id, vid).await.map_err(store_error)?;
    resource_response(&v, &req)
}

/// `GET /fhir/{type}/{id}/_history`: a history Bundle, newest first.
pub async fn history(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let f = format(&req)?;
    let (t, id) = path.into_inner();
    known_type(&t)?;
    let versions = state.store.history(&t, &id).await.map_err(store_error)?;
    let base = base_url(&req);
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| {
            let url = format!("{base}/{t}/{id}/_history/{}", v.version);
            if v.deleted {
                json!({"fullUrl": format!("{base}/{t}/{id}"),
                       "request": {"method": "DELETE", "url": format!("{t}/{id}")},
                       "response": {"status": "410 Gone", "etag": etag(v.version), "lastModified": v.last_updated}})
            } else {
                let body: Value = serde_json::from_str(&v.body).unwrap_or(Value::Null);
                json!({"fullUrl": format!("{base}/{t}/{id}"), "resource": body,
                       "request": {"method": if v.version == 1 { "POST" } else { "PUT" }, "url": if v.version == 1 { t.clone() } else { format!("{t}/{id}") }},
                       "response": {"status": if v.version == 1 { "201 Created" } else { "200 OK" }, "etag": etag(v.version), "location": url, "lastModified": v.last_updated}})
            }
        })
        .collect();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": entries.len(),
        "link": [{"relation": "self", "url": format!("{base}/{t}/{id}/_history")}],
        "entry": entries,
    });
    Ok(fhir_value(StatusCode::OK, &bundle, f))
}

fn bad(detail: &str, msg: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid", detail, &msg)
}

/// A date search value: a prefix (eq, ge, gt, le, lt) and a FHIR date or dateTime.
fn date_param(name: &str, raw: &str) -> Result<(DateOp, String), ApiError> {
    let (op, value) = match raw.get(..2) {
        Some("eq") => (DateOp::Eq, &raw[2..]),
        Some("ge") => (DateOp::Ge, &raw[2..]),
        Some("gt") => (DateOp::Gt, &raw[2..]),
        Some("le") => (DateOp::Le, &raw[2..]),
        Some("lt") => (DateOp::Lt, &raw[2..]),
        _ => (DateOp::Eq, raw),
    };
    let ok = crate::validation::primitive::is_date(value)
        || crate::validation::primitive::is_date_time(value);
    if !ok {
        return Err(bad(
            "search-date",
            format!("{name} takes a prefix (eq, ge, gt, le, lt) and a FHIR date or dateTime."),
        ));
    }
    Ok((op, value.to_string()))
}

/// Parses a search query. Every problem is reported at once; unknown parameters are errors.
pub fn parse_search(
    rtype: &str,
    query: &[(String, String)],
    max_count: usize,
) -> Result<(Search, Vec<String>), ApiError> {
    let mut s = Search {
        count: 50,
        ..Default::default()
    };
    let mut includes = Vec::new();
    let mut problems = Vec::new();
    for (k, v) in query {
        let r: Result<(), ApiError> = (|| {
            match k.as_str() {
                "_id" => s.ids.extend(v.split(',').map(str::to_string)),
                "identifier" | "code" => {
                    let (system, value) = match v.split_once('|') {
                        Some((sy, va)) => (Some(sy.to_string()).filter(|x| !x.is_empty()), va),
                        None => (None, v.as_str()),
                    };
                    if value.is_empty() {
                        return Err(bad(
                            "search-token",
                            format!("{k} needs a value (system|value or value)."),
                        ));
                    }
                    s.tokens.push((k.clone(), system, value.to_string()));
                }
                "patient" | "subject" => {
                    let id = v.strip_prefix("Patient/").unwrap_or(v);
                    if id.is_empty() || id.contains('/') {
                        return Err(bad(
                            "search-reference",
                            format!("{k} takes a Patient id or Patient/id."),
                        ));
                    }
                    s.patient = Some(format!("Patient/{id}"));
                }
                "date" => s.dates.push(date_param(k, v)?),
                "_lastUpdated" => s.last_updated.push(date_param(k, v)?),
                "_count" => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| bad("search-count", "_count is a whole number.".into()))?;
                    if n > max_count {
                        return Err(bad(
                            "search-count",
                            format!("_count is at most {max_count}."),
                        ));
                    }
                    s.count = n;
                }
                "_offset" => {
                    s.offset = v
                        .parse()
                        .map_err(|_| bad("search-offset", "_offset is a whole number.".into()))?;
                }
                "_sort" => match v.as_str() {
                    "_lastUpdated" => s.sort_desc = false,
                    "-_lastUpdated" => s.sort_desc = true,
                    _ => {
                        return Err(bad(
                            "search-sort",
                            "_sort takes _lastUpdated or -_lastUpdated.".into(),
                        ))
                    }
                },
                "_include" => {
                    let ok = v
                        .split_once(':')
                        .is_some_and(|(src, p)| src == rtype && matches!(p, "patient" | "subject"));
                    if !ok {
                        return Err(bad(
                            "search-include",
                            format!("_include takes {rtype}:patient or {rtype}:subject."),
                        ));
                    }
                    includes.push(v.clone());
                }
                "_format" | "_pretty" | "_total" => {}
                _ => {
                    return Err(bad(
                        "search-param",
                        format!(
                            "Unknown search parameter {k} (supported: {}).",
                            SEARCH_PARAMS.join(", ")
                        ),
                    ))
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            problems.extend(e.issues);
        }
    }
    if rtype == "Patient" && s.patient.is_some() {
        problems.push(
            bad(
                "search-param",
                "Patient has no patient parameter; use _id.".into(),
            )
            .issues
            .remove(0),
        );
    }
    if !problems.is_empty() {
        return Err(ApiError::issues(StatusCode::BAD_REQUEST, problems));
    }
    Ok((s, includes))
}

/// `GET /fhir/{type}?...`: a searchset Bundle with `total`, `self`/`next` links and
/// `_include`d patients.
pub async fn search(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let f = format(&req)?;
    let t = path.into_inner();
    known_type(&t)?;
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| bad("search-query", "The query string cannot be read.".into()))?
        .into_inner();
    let (s, includes) = parse_search(&t, &query, state.max_count)?;
    if !includes.is_empty() {
        // Included Patients are read: the token must allow that too, or `_include` would
        // widen a scope on one type into reads of another.
        super::auth::require(&req, "Patient", crate::auth::scope::Interaction::Read)?;
    }
    let page = state.store.search(&t, &s).await.map_err(store_error)?;
    let base = base_url(&req);
    let mut entries: Vec<Value> = Vec::new();
    let mut patients = Vec::new();
    for v in &page.resources {
        let body: Value = serde_json::from_str(&v.body).map_err(|_| ApiError::internal())?;
        if !includes.is_empty() {
            for key in ["subject", "patient"] {
                if let Some(r) = body[key]["reference"].as_str() {
                    if r.starts_with("Patient/") && !patients.contains(&r.to_string()) {
                        patients.push(r.to_string());
                    }
                }
            }
        }
        entries.push(json!({"fullUrl": format!("{base}/{}/{}", v.resource_type, v.id), "resource": body, "search": {"mode": "match"}}));
    }
    for p in state
        .store
        .read_many(&patients)
        .await
        .map_err(store_error)?
    {
        let body: Value = serde_json::from_str(&p.body).map_err(|_| ApiError::internal())?;
        entries.push(json!({"fullUrl": format!("{base}/Patient/{}", p.id), "resource": body, "search": {"mode": "include"}}));
    }
    let link_for = |offset: usize| {
        let mut q: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k != "_offset")
            .cloned()
            .collect();
        q.push(("_offset".into(), offset.to_string()));
        let qs = q
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        format!("{base}/{t}?{qs}")
    };
    let mut links = vec![json!({"relation": "self", "url": link_for(s.offset)})];
    if (s.offset + s.count) < page.total as usize && s.count > 0 {
        links.push(json!({"relation": "next", "url": link_for(s.offset + s.count)}));
    }
    if s.offset > 0 {
        links.push(
            json!({"relation": "previous", "url": link_for(s.offset.saturating_sub(s.count))}),
        );
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": entries,
    });
    Ok(fhir_value(StatusCode::OK, &bundle, f))
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
