//! `engraft sandbox-ehr --registry`: an in-memory registry in the shape of the CIBMTR Direct
//! FHIR API, for Engraft's submission tests and for data managers rehearsing a submission.
//! Following the published connection guide:
//!
//! - `POST /oauth2/v1/token`: the password grant with HTTP Basic client authentication
//!   (tokens live 30 minutes), when credentials are configured;
//! - `PUT /CRID` (CIBMTR JSON) and `POST /r4/Patient/$crid-assignment` (FHIR Parameters):
//!   the same five fields give the same CRID;
//! - FHIR under `/r4`: create, update, read, search and capabilities only; no conditional
//!   operations, no deletes; server-assigned ids; searches filtered by `_security`;
//! - `POST /r4`: transaction Bundles of at most 50 entries (configurable), each entry processed
//!   on its own and answered with its own status and OperationOutcome;
//! - every resource must carry the centre tag (`^rc_[0-9]{5}$`); Patients are stored without
//!   PII; codes can be refused (`--reject-code`, or at run time) to rehearse entry failures.
//!
//! Test controls under `/_sandbox`: stats, everything stored, the CRIDs handed out, the
//! refused codes, and a one-shot "apply, then answer too late" fault for the next
//! transaction.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use serde_json::{json, Value};

use super::memory::{MemoryFhir, Query, Refusal, Rules};

/// The password-grant client the registry accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
}

/// How the registry sandbox behaves.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub security_system: String,
    pub crid_system: String,
    /// Largest transaction, in entries.
    pub max_entries: usize,
    /// Codes (any system) refused with an entry-level 422.
    pub reject_codes: Vec<String>,
    pub credentials: Option<Credentials>,
    pub latency: Duration,
}

impl Default for RegistryOptions {
    fn default() -> RegistryOptions {
        RegistryOptions {
            security_system: "http://cibmtr.org/codesystem/transplant-center".into(),
            crid_system: "http://cibmtr.org/identifier/CRID".into(),
            max_entries: 50,
            reject_codes: Vec::new(),
            credentials: None,
            latency: Duration::ZERO,
        }
    }
}

/// What a CRID is assigned by: (ccn, first name, last name, birth date, gender), normalised.
type CridKey = (String, String, String, String, String);

struct State {
    options: RegistryOptions,
    data: Mutex<MemoryFhir>,
    /// (ccn, first, last, birthDate, gender) -> CRID.
    crids: Mutex<HashMap<CridKey, u64>>,
    reject: Mutex<HashSet<String>>,
    tokens: Mutex<HashSet<String>>,
    /// Seconds to hold the answer of the next transaction after applying it.
    late: Mutex<Option<u64>>,
    requests: AtomicU64,
    token_requests: AtomicU64,
    transactions: AtomicU64,
    crid_requests: AtomicU64,
}

fn now() -> String {
    crate::convert::now_instant()
}

fn fhir(status: u16, body: &Value) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .insert_header((header::CONTENT_TYPE, "application/fhir+json"))
        .body(body.to_string())
}

fn outcome(code: &str, message: &str) -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{
        "severity": "error", "code": code, "diagnostics": message}]})
}

fn refused(status: u16, code: &str, message: &str) -> HttpResponse {
    fhir(status, &outcome(code, message))
}

fn valid_tag(code: &str) -> bool {
    crate::sync::cibmtr::valid_tag(code)
}

impl State {
    /// Latency, then the bearer token when credentials are configured.
    async fn enter(&self, req: &HttpRequest) -> Result<(), HttpResponse> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !self.options.latency.is_zero() {
            tokio::time::sleep(self.options.latency).await;
        }
        if self.options.credentials.is_none() {
            return Ok(());
        }
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        let known = token.is_some_and(|t| {
            self.tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(t)
        });
        if known {
            Ok(())
        } else {
            let mut r = refused(401, "login", "a valid bearer token is required");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            Err(r)
        }
    }

    /// What is wrong with a resource the registry is asked to store, if anything.
    fn check(&self, r: &Value) -> Option<(u16, &'static str, String)> {
        let tags = r["meta"]["security"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let tagged = tags.iter().any(|t| {
            t["system"] == self.options.security_system.as_str()
                && t["code"].as_str().is_some_and(valid_tag)
        });
        if !tagged {
            return Some((
                422,
                "invariant",
                format!(
                    "sec-rc: meta.security needs the centre tag {}|rc_<CCN> (^rc_[0-9]{{5}}$)",
                    self.options.security_system
                ),
            ));
        }
        let reject = self.reject.lock().unwrap_or_else(|p| p.into_inner());
        let codes = r["code"]["coding"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if let Some(c) = codes
            .iter()
            .filter_map(|c| c["code"].as_str())
            .find(|c| reject.contains(*c))
        {
            return Some((
                422,
                "code-invalid",
                format!("code {c} is not accepted by this registry"),
            ));
        }
        None
    }
}

/// A Patient as the registry keeps it: no names, contacts, addresses or dates.
fn strip_pii(mut r: Value) -> Value {
    if r["resourceType"] == "Patient" {
        if let Some(o) = r.as_object_mut() {
            for k in [
                "name",
                "telecom",
                "address",
                "birthDate",
                "contact",
                "photo",
                "deceasedDateTime",
            ] {
                o.remove(k);
            }
        }
    }
    r
}

async fn token(req: HttpRequest, state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    state.token_requests.fetch_add(1, Ordering::Relaxed);
    let Some(c) = &state.options.credentials else {
        return HttpResponse::NotFound().finish();
    };
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |k: &str| form.get(k).map(String::as_str);
    let client_ok = basic.as_deref() == Some(&format!("{}:{}", c.client_id, c.client_secret));
    if !client_ok {
        return HttpResponse::Unauthorized().json(
            json!({"error": "invalid_client", "error_description": "client authentication failed"}),
        );
    }
    if field("grant_type") != Some("password")
        || field("username") != Some(&c.username)
        || field("password") != Some(&c.password)
    {
        return HttpResponse::BadRequest().json(
            json!({"error": "invalid_grant", "error_description": "the resource owner credentials are not valid"}),
        );
    }
    let t = uuid::Uuid::new_v4().simple().to_string();
    state
        .tokens
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(t.clone());
    HttpResponse::Ok().json(
        json!({"access_token": t, "token_type": "Bearer", "expires_in": 1800,
        "scope": field("scope").unwrap_or("")}),
    )
}

/// The CRID of five fields: the same fields (case and spacing aside) give the same CRID.
fn assign(state: &State, ccn: &str, first: &str, last: &str, dob: &str, gender: &str) -> u64 {
    state.crid_requests.fetch_add(1, Ordering::Relaxed);
    let norm = |s: &str| s.trim().to_lowercase();
    let key = (
        ccn.to_string(),
        norm(first),
        norm(last),
        dob.to_string(),
        norm(gender),
    );
    let mut crids = state.crids.lock().unwrap_or_else(|p| p.into_inner());
    let next = 100_000_001 + crids.len() as u64;
    *crids.entry(key).or_insert(next)
}

fn five_fields_missing(
    ccn: &str,
    first: &str,
    last: &str,
    dob: &str,
    gender: &str,
) -> Option<String> {
    let mut missing = Vec::new();
    if ccn.len() != 5 || !ccn.bytes().all(|b| b.is_ascii_digit()) {
        missing.push("ccn (5 digits)");
    }
    if first.trim().is_empty() {
        missing.push("firstName");
    }
    if last.trim().is_empty() {
        missing.push("lastName");
    }
    if chrono::NaiveDate::parse_from_str(dob, "%Y-%m-%d").is_err() {
        missing.push("birthDate (YYYY-MM-DD)");
    }
    if !["M", "F", "male", "female"].contains(&gender) {
        missing.push("gender (M/F)");
    }
    (!missing.is_empty()).then(|| format!("required: {}", missing.join(", ")))
}

/// `PUT /CRID`: CIBMTR JSON in, `{"crid": n}` out.
async fn crid_api(req: HttpRequest, state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    if let Err(r) = state.enter(&req).await {
        return r;
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let p = &v["patient"];
    let s = |x: &Value| x.as_str().unwrap_or("").to_string();
    let (ccn, first, last, dob, gender) = (
        s(&v["ccn"]),
        s(&p["firstName"]),
        s(&p["lastName"]),
        s(&p["birthDate"]),
        s(&p["gender"]),
    );
    if let Some(m) = five_fields_missing(&ccn, &first, &last, &dob, &gender) {
        return HttpResponse::BadRequest().json(json!({"error": m}));
    }
    let crid = assign(&state, &ccn, &first, &last, &dob, &gender);
    HttpResponse::Ok().json(json!({"crid": crid}))
}

/// `POST /r4/Patient/$crid-assignment`: Parameters in (patient, ccn), Parameters out.
async fn crid_assignment(
    req: HttpRequest,
    state: web::Data<State>,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(r) = state.enter(&req).await {
        return r;
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let params = v["parameter"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let param = |n: &str| params.iter().find(|p| p["name"] == n);
    let patient = param("patient")
        .or_else(|| param("resource"))
        .map(|p| &p["resource"])
        .unwrap_or(&Value::Null);
    let ccn = param("ccn")
        .and_then(|p| p["valueString"].as_str())
        .unwrap_or("");
    let name = &patient["name"][0];
    let s = |x: &Value| x.as_str().unwrap_or("").to_string();
    let (first, last, dob, gender) = (
        s(&name["given"][0]),
        s(&name["family"]),
        s(&patient["birthDate"]),
        s(&patient["gender"]),
    );
    if let Some(m) = five_fields_missing(ccn, &first, &last, &dob, &gender) {
        return refused(400, "required", &m);
    }
    let crid = assign(&state, ccn, &first, &last, &dob, &gender);
    fhir(
        200,
        &json!({"resourceType": "Parameters", "parameter": [{"name": "identifier",
            "valueIdentifier": {"system": state.options.crid_system, "value": crid.to_string()}}]}),
    )
}

async fn metadata() -> HttpResponse {
    let types = [
        "Patient",
        "Observation",
        "Condition",
        "Procedure",
        "MedicationAdministration",
        "MedicationStatement",
        "Encounter",
        "Consent",
        "BiologicallyDerivedProduct",
    ];
    let resources: Vec<Value> = types
        .iter()
        .map(|t| json!({"type": t, "versioning": "versioned", "conditionalCreate": false,
            "conditionalUpdate": false, "conditionalDelete": "not-supported", "updateCreate": false,
            "interaction": [{"code": "read"}, {"code": "update"}, {"code": "create"}, {"code": "search-type"}],
            "searchParam": [{"name": "identifier", "type": "token"}, {"name": "_security", "type": "token"},
                {"name": "patient", "type": "reference"}]}))
        .collect();
    fhir(
        200,
        &json!({"resourceType": "CapabilityStatement", "status": "active", "date": now(),
            "kind": "instance", "fhirVersion": "4.0.1", "format": ["application/fhir+json"],
            "software": {"name": "Engraft sandbox registry (CIBMTR Direct FHIR shape)"},
            "rest": [{"mode": "server", "interaction": [{"code": "transaction"}], "resource": resources}]}),
    )
}

/// Rewrites `urn:uuid:` references by `map`; `Err` names the first one not in it.
fn resolve(v: &mut Value, map: &HashMap<String, String>) -> Result<(), String> {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("reference") {
                if r.starts_with("urn:uuid:") {
                    match map.get(r.as_str()) {
                        Some(to) => *r = to.clone(),
                        None => return Err(r.clone()),
                    }
                }
            }
            for c in o.values_mut() {
                resolve(c, map)?;
            }
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(|c| resolve(c, map)),
        _ => Ok(()),
    }
}

/// One transaction entry, processed on its own: its response entry.
fn entry(
    state: &State,
    data: &mut MemoryFhir,
    e: &Value,
    map: &mut HashMap<String, String>,
    at: &str,
) -> Value {
    let fail = |status: u16, code: &str, msg: &str| json!({"response": {"status": format!("{status}"), "outcome": outcome(code, msg)}});
    let method = e["request"]["method"].as_str().unwrap_or("");
    let url = e["request"]["url"].as_str().unwrap_or("");
    let rtype = e["resource"]["resourceType"].as_str().unwrap_or("");
    if url.contains('?')
        || e["request"]["ifNoneExist"].is_string()
        || e["request"]["ifMatch"].is_string()
    {
        return fail(
            400,
            "not-supported",
            "conditional operations are not supported",
        );
    }
    let path_ok = match method {
        "POST" => url == rtype,
        "PUT" => url
            .split_once('/')
            .is_some_and(|(t, id)| t == rtype && !id.is_empty()),
        _ => false,
    };
    if rtype.is_empty() || !path_ok {
        return fail(
            400,
            "not-supported",
            "only POST <type> and PUT <type>/<id> are supported",
        );
    }
    if let Some((status, code, msg)) = state.check(&e["resource"]) {
        return fail(status, code, &msg);
    }
    let mut resource = strip_pii(e["resource"].clone());
    if resolve(&mut resource, map).is_err() {
        return fail(
            422,
            "processing",
            "a reference names an entry that was not stored",
        );
    }
    let single = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": resource, "request": {"method": method, "url": url}}]});
    match data.transaction(&single, at) {
        Ok(resp) => {
            let r = resp["entry"][0]["response"].clone();
            if let (Some(full), Some(loc)) = (e["fullUrl"].as_str(), r["location"].as_str()) {
                let mut parts = loc.split('/');
                if let (Some(t), Some(id)) = (parts.next(), parts.next()) {
                    map.insert(full.to_string(), format!("{t}/{id}"));
                }
            }
            json!({"response": r})
        }
        Err(Refusal {
            status,
            code,
            message,
        }) => fail(status, code, &message),
    }
}

/// `POST /r4`: a transaction Bundle, each entry processed on its own.
async fn transaction(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = state.enter(&req).await {
        return r;
    }
    state.transactions.fetch_add(1, Ordering::Relaxed);
    let Ok(bundle) = serde_json::from_slice::<Value>(&body) else {
        return refused(400, "structure", "not JSON");
    };
    if bundle["resourceType"] != "Bundle" || bundle["type"] != "transaction" {
        return refused(400, "invalid", "expected a transaction Bundle");
    }
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if entries.len() > state.options.max_entries {
        return refused(
            413,
            "too-costly",
            &format!(
                "bundles are limited to {} entries",
                state.options.max_entries
            ),
        );
    }
    let answers: Vec<Value> = {
        let mut data = state.data.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = HashMap::new();
        let at = now();
        entries
            .iter()
            .map(|e| entry(&state, &mut data, e, &mut map, &at))
            .collect()
    };
    let late = state.late.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(secs) = late {
        // Applied; the answer comes after the client has given up.
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    fhir(
        200,
        &json!({"resourceType": "Bundle", "type": "transaction-response", "entry": answers}),
    )
}

async fn create(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(r) = state.enter(&req).await {
        return r;
    }
    if req.headers().contains_key("if-none-exist") {
        return refused(400, "not-supported", "conditional create is not supported");
    }
    let t = path.into_inner();
    let resource = match serde_json::from_slice::<Value>(&body) {
        Ok(r) if r["resourceType"] == t.as_str() => r,
        _ => return refused(400, "structure", &format!("expected a {t} resource")),
    };
    if let Some((status, code, msg)) = state.check(&resource) {
        return refused(status, code, &msg);
    }
    let result = state.data.lock().unwrap_or_else(|p| p.into_inner()).create(
        strip_pii(resource),
        None,
        &now(),
    );
    match result {
        Ok((r, _)) => {
            let location = format!(
                "{t}/{}/_history/{}",
                r["id"].as_str().unwrap_or(""),
                r["meta"]["versionId"].as_str().unwrap_or("1")
            );
            let mut res = fhir(201, &r);
            if let Ok(v) = header::HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            res
        }
        Err(e) => fhir(e.status, &e.outcome()),
    }
}

async fn read(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(r) = state.enter(&req).await {
        return r;
    }
    let (t, id) = path.into_inner();
    match state
        .data
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .read(&t, &id)
    {
        Some(r) => fhir(200, r),
        None => refused(404, "not-found", &format!("{t}/{id} is not known")),
    }
}

async fn search(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(r) = state.enter(&req).await {
        return r;
    }
    let t = path.into_inner();
    let query = Query::parse(req.query_string());
    let data = state.data.lock().unwrap_or_else(|p| p.into_inner());
    let found: Vec<Value> = data
        .search(&t, &query)
        .into_iter()
        .map(|r| json!({"fullUrl": format!("{t}/{}", r["id"].as_str().unwrap_or("")), "resource": r, "search": {"mode": "match"}}))
        .collect();
    fhir(
        200,
        &json!({"resourceType": "Bundle", "type": "searchset", "total": found.len(), "entry": found}),
    )
}

async fn unsupported() -> HttpResponse {
    refused(
        405,
        "not-supported",
        "the registry supports create, update, read, search and capabilities only",
    )
}

async fn stats(state: web::Data<State>) -> HttpResponse {
    let mut out = state
        .data
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .counts();
    for (k, n) in [
        ("requests", &state.requests),
        ("token_requests", &state.token_requests),
        ("transactions", &state.transactions),
        ("crid_requests", &state.crid_requests),
    ] {
        out[k] = json!(n.load(Ordering::Relaxed));
    }
    out["crids"] = json!(state.crids.lock().unwrap_or_else(|p| p.into_inner()).len());
    HttpResponse::Ok().json(out)
}

async fn dump(state: web::Data<State>) -> HttpResponse {
    let data = state.data.lock().unwrap_or_else(|p| p.into_inner());
    HttpResponse::Ok().json(data.all().collect::<Vec<_>>())
}

/// `POST /_sandbox/reject` `{"codes": [...]}`: the codes refused from now on.
async fn set_reject(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    let codes: HashSet<String> = v["codes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    *state.reject.lock().unwrap_or_else(|p| p.into_inner()) = codes;
    HttpResponse::NoContent().finish()
}

/// `POST /_sandbox/late` `{"seconds": n}`: the next transaction is applied, then answered
/// after `n` seconds (a client with a shorter timeout never learns its outcome).
async fn set_late(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    *state.late.lock().unwrap_or_else(|p| p.into_inner()) = v["seconds"].as_u64();
    HttpResponse::NoContent().finish()
}

/// Starts the registry sandbox on `bind`.
pub fn start(bind: &str, options: RegistryOptions) -> anyhow::Result<(Server, SocketAddr)> {
    let listener = std::net::TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    let mut data = MemoryFhir::default();
    data.rules = Rules {
        conditional: false,
        max_entries: None,
    };
    let state = web::Data::new(State {
        reject: Mutex::new(options.reject_codes.iter().cloned().collect()),
        options,
        data: Mutex::new(data),
        crids: Mutex::new(HashMap::new()),
        tokens: Mutex::new(HashSet::new()),
        late: Mutex::new(None),
        requests: AtomicU64::new(0),
        token_requests: AtomicU64::new(0),
        transactions: AtomicU64::new(0),
        crid_requests: AtomicU64::new(0),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .route("/oauth2/v1/token", web::post().to(token))
            .route("/CRID", web::put().to(crid_api))
            .route("/_sandbox/stats", web::get().to(stats))
            .route("/_sandbox/resources", web::get().to(dump))
            .route("/_sandbox/reject", web::post().to(set_reject))
            .route("/_sandbox/late", web::post().to(set_late))
            .route("/r4", web::post().to(transaction))
            .route("/r4/metadata", web::get().to(metadata))
            .route(
                "/r4/Patient/$crid-assignment",
                web::post().to(crid_assignment),
            )
            .route("/r4/{type}", web::get().to(search))
            .route("/r4/{type}", web::post().to(create))
            .route("/r4/{type}/{id}", web::get().to(read))
            .route("/r4/{type}/{id}", web::put().to(update))
            .default_service(web::to(unsupported))
    })
    .workers(2)
    .listen(listener)?
    .run();
    Ok((server, addr))
}

async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(r) = state.enter(&req).await {
        return r;
    }
    let (t, id) = path.into_inner();
    let resource = match serde_json::from_slice::<Value>(&body) {
        Ok(r) if r["resourceType"] == t.as_str() => r,
        _ => return refused(400, "structure", &format!("expected a {t} resource")),
    };
    if let Some((status, code, msg)) = state.check(&resource) {
        return refused(status, code, &msg);
    }
    let result = state.data.lock().unwrap_or_else(|p| p.into_inner()).update(
        &t,
        &id,
        strip_pii(resource),
        None,
        &now(),
    );
    match result {
        Ok((r, created)) => fhir(if created { 201 } else { 200 }, &r),
        Err(e) => fhir(e.status, &e.outcome()),
    }
}
