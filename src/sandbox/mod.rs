//! `engraft sandbox-ehr`: an in-memory FHIR R4 server for testing a setup and for Engraft's own
//! sync tests. Honest FHIR ([`memory`]): transactions all or nothing, conditional create and
//! update by identifier (two matches: 412), versions and ETags (a stale `If-Match`: 412),
//! search by identifier with paging. Optional SMART Backend Services auth, reusing Engraft's
//! token endpoint and verifier. Fault injection on writes, chosen by a seeded generator so a
//! run can be replayed: 500, 503 and 429 (with `Retry-After`), slow answers, and "applied, then
//! failed" (the transaction is committed, then a 500 is returned).

pub mod memory;
pub mod registry;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::{Server, Service as _};
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};

use crate::auth::authz::{AuthorizationServer, Client, ReplayGuard};
use crate::auth::jwks::{CachedJwks, JwksSource};
use crate::auth::keys::{SigningKey, ASYMMETRIC};
use crate::auth::scope::Scopes;
use crate::auth::verify::{Issuer, Verifier};
pub use memory::Rules;
use memory::{MemoryFhir, Query, Refusal};

/// How the sandbox misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share of write requests (0..1) that get a fault.
    pub rate: f64,
    pub seed: u64,
    /// Latency added to every request.
    pub latency: Duration,
    /// The kinds of fault drawn from, evenly (empty: all of them).
    pub kinds: Vec<Fault>,
}

/// Everything `start` needs besides the address.
#[derive(Debug, Clone)]
pub struct Options {
    pub faults: Faults,
    pub client: Option<SandboxClient>,
    /// Transaction Bundles applied at start.
    pub load: Vec<Value>,
    /// Whether `POST /` takes transactions (a server without them makes Engraft deliver
    /// resource by resource).
    pub transactions: bool,
    pub rules: Rules,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            faults: Faults::default(),
            client: None,
            load: Vec::new(),
            transactions: true,
            rules: Rules::default(),
        }
    }
}

/// A SMART Backend Services client the sandbox accepts.
#[derive(Debug, Clone)]
pub struct SandboxClient {
    pub client_id: String,
    pub jwks: Value,
}

/// A fault injected into a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// 500 with an OperationOutcome; nothing applied.
    #[value(name = "500")]
    Error500,
    /// 503 with `Retry-After: 1`; nothing applied.
    #[value(name = "503")]
    Unavailable503,
    /// 429 with `Retry-After: 1`; nothing applied.
    #[value(name = "429")]
    TooMany429,
    /// Answered normally, 2 seconds late.
    #[value(name = "slow")]
    Slow,
    /// Applied, then answered 500.
    #[value(name = "applied-then-500")]
    AppliedThenFailed,
    /// The connection is closed before any answer (the write is not applied).
    #[value(name = "dropped")]
    Dropped,
}

const FAULTS: [Fault; 6] = [
    Fault::Error500,
    Fault::Unavailable503,
    Fault::TooMany429,
    Fault::Slow,
    Fault::AppliedThenFailed,
    Fault::Dropped,
];

struct SandboxAuth {
    authz: AuthorizationServer,
    verifier: Verifier,
    seen: Mutex<HashSet<(String, String)>>,
}

impl ReplayGuard for SandboxAuth {
    async fn first_use(&self, client_id: &str, jti: &str, _: i64) -> Result<bool, String> {
        let mut seen = self.seen.lock().map_err(|_| "poisoned".to_string())?;
        Ok(seen.insert((client_id.to_string(), jti.to_string())))
    }
}

/// An answer whose body fails before its first byte: actix closes the connection, and the
/// client sees it dropped without a response.
fn dropped() -> HttpResponse {
    let body = futures_util::stream::once(async {
        Err::<web::Bytes, std::io::Error>(std::io::Error::other("injected dropped connection"))
    });
    HttpResponse::Ok().streaming(body)
}

struct State {
    data: Mutex<MemoryFhir>,
    transactions: bool,
    faults: Faults,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
    auth: Option<SandboxAuth>,
    requests: AtomicU64,
    /// Requests being answered now, and the most there were at once.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    injected: Mutex<HashMap<&'static str, u64>>,
}

fn now() -> String {
    crate::convert::now_instant()
}

fn fhir(status: u16, body: &Value) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
        .insert_header((header::CONTENT_TYPE, "application/fhir+json"))
        .body(body.to_string())
}

fn refused(r: &Refusal) -> HttpResponse {
    fhir(r.status, &r.outcome())
}

impl State {
    fn pick_fault(&self) -> Option<Fault> {
        if self.faults.rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if rng.gen::<f64>() >= self.faults.rate {
            return None;
        }
        let kinds = if self.faults.kinds.is_empty() {
            &FAULTS[..]
        } else {
            &self.faults.kinds[..]
        };
        let f = kinds[rng.gen_range(0..kinds.len())];
        let name = match f {
            Fault::Error500 => "500",
            Fault::Unavailable503 => "503",
            Fault::TooMany429 => "429",
            Fault::Slow => "slow",
            Fault::AppliedThenFailed => "applied-then-500",
            Fault::Dropped => "dropped",
        };
        *self
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default() += 1;
        Some(f)
    }

    async fn authorized(&self, req: &HttpRequest) -> Result<(), HttpResponse> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        let challenge = |e: &str| {
            let mut r = fhir(
                401,
                &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login", "diagnostics": e}]}),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            r
        };
        match token {
            None => Err(challenge("no bearer token")),
            Some(t) => auth
                .verifier
                .verify(t)
                .await
                .map(|_| ())
                .map_err(|e| challenge(&e.to_string())),
        }
    }

    /// Common prelude of every FHIR request: latency, auth, and for writes a fault.
    async fn enter(&self, req: &HttpRequest, write: bool) -> Result<Option<Fault>, HttpResponse> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !self.faults.latency.is_zero() {
            tokio::time::sleep(self.faults.latency).await;
        }
        self.authorized(req).await?;
        if !write {
            return Ok(None);
        }
        match self.pick_fault() {
            Some(Fault::Error500) => Err(fhir(
                500,
                &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "exception", "diagnostics": "injected fault"}]}),
            )),
            Some(Fault::Unavailable503) => Err(HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "1"))
                .finish()),
            Some(Fault::TooMany429) => Err(HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, "1"))
                .finish()),
            Some(Fault::Slow) => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok(None)
            }
            Some(Fault::Dropped) => Err(dropped()),
            other => Ok(other),
        }
    }
}

const TYPES: &[&str] = &[
    "Patient",
    "Condition",
    "Procedure",
    "Observation",
    "Encounter",
    "MedicationAdministration",
    "MedicationStatement",
    "Consent",
    "Provenance",
    "BiologicallyDerivedProduct",
];

async fn metadata(state: web::Data<State>) -> HttpResponse {
    let conditional = state
        .data
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .rules
        .conditional;
    let resources: Vec<Value> = TYPES
        .iter()
        .map(|t| {
            json!({
                "type": t, "versioning": "versioned-update", "conditionalCreate": conditional,
                "conditionalUpdate": conditional, "conditionalDelete": "not-supported",
                "updateCreate": true,
                "interaction": [{"code": "read"}, {"code": "update"}, {"code": "create"},
                    {"code": "delete"}, {"code": "search-type"}],
                "searchParam": [{"name": "identifier", "type": "token"},
                    {"name": "patient", "type": "reference"},
                    {"name": "_lastUpdated", "type": "date"}]
            })
        })
        .collect();
    let interaction = match state.transactions {
        true => json!([{"code": "transaction"}]),
        false => json!([]),
    };
    let mut cs = json!({
        "resourceType": "CapabilityStatement", "status": "active", "date": now(),
        "kind": "instance", "fhirVersion": "4.0.1", "format": ["application/fhir+json"],
        "software": {"name": "Engraft sandbox EHR"},
        "rest": [{"mode": "server",
            "interaction": interaction,
            "resource": resources
        }]
    });
    if let Some(a) = &state.auth {
        cs["rest"][0]["security"] = json!({"extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [{"url": "token", "valueUri": a.authz.token_url}]}]});
    }
    fhir(200, &cs)
}

async fn smart_configuration(state: web::Data<State>) -> HttpResponse {
    match &state.auth {
        Some(a) => HttpResponse::Ok().json(json!({
            "token_endpoint": a.authz.token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "grant_types_supported": ["client_credentials"],
        })),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn token(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let Some(a) = &state.auth else {
        return HttpResponse::NotFound().finish();
    };
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    match a.authz.token(&form, a).await {
        Ok(t) => HttpResponse::Ok().json(t),
        Err(e) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(e.status()).unwrap_or_default(),
        )
        .json(json!({"error": e.error, "error_description": e.description})),
    }
}

fn applied_then_failed() -> HttpResponse {
    fhir(
        500,
        &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "fatal", "code": "exception", "diagnostics": "injected fault after commit"}]}),
    )
}

async fn transaction(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    if !state.transactions {
        return refused(&Refusal {
            status: 405,
            code: "not-supported",
            message: "this server does not take transaction Bundles".into(),
        });
    }
    let fault = match state.enter(&req, true).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(bundle) = serde_json::from_slice::<Value>(&body) else {
        return refused(&Refusal {
            status: 400,
            code: "structure",
            message: "not JSON".into(),
        });
    };
    let result = state
        .data
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .transaction(&bundle, &now());
    match (result, fault) {
        (Ok(_), Some(Fault::AppliedThenFailed)) => applied_then_failed(),
        (Ok(r), _) => fhir(200, &r),
        (Err(e), _) => refused(&e),
    }
}

async fn read(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(r) = state.enter(&req, false).await {
        return r;
    }
    let (t, id) = path.into_inner();
    let data = state.data.lock().unwrap_or_else(|p| p.into_inner());
    match data.read(&t, &id) {
        Some(r) => {
            let etag = format!("W/\"{}\"", r["meta"]["versionId"].as_str().unwrap_or("1"));
            let mut res = fhir(200, r);
            if let Ok(v) = header::HeaderValue::from_str(&etag) {
                res.headers_mut().insert(header::ETAG, v);
            }
            res
        }
        None => refused(&Refusal {
            status: 404,
            code: "not-found",
            message: format!("{t}/{id} is not known"),
        }),
    }
}

async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    let fault = match state.enter(&req, true).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (t, id) = path.into_inner();
    let Ok(resource) = serde_json::from_slice::<Value>(&body) else {
        return refused(&Refusal {
            status: 400,
            code: "structure",
            message: "not JSON".into(),
        });
    };
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|h| h.to_str().ok());
    let result = state.data.lock().unwrap_or_else(|p| p.into_inner()).update(
        &t,
        &id,
        resource,
        if_match,
        &now(),
    );
    written(result, fault)
}

/// The answer to a single-resource write: the resource with `Location` and `ETag`.
fn written(result: Result<(Value, bool), Refusal>, fault: Option<Fault>) -> HttpResponse {
    match (result, fault) {
        (Ok(_), Some(Fault::AppliedThenFailed)) => applied_then_failed(),
        (Ok((r, created)), _) => {
            let version = r["meta"]["versionId"].as_str().unwrap_or("1");
            let location = format!(
                "{}/{}/_history/{version}",
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            );
            let mut res = fhir(if created { 201 } else { 200 }, &r);
            for (name, value) in [
                (header::LOCATION, location),
                (header::ETAG, format!("W/\"{version}\"")),
            ] {
                if let Ok(v) = header::HeaderValue::from_str(&value) {
                    res.headers_mut().insert(name, v);
                }
            }
            res
        }
        (Err(e), _) => refused(&e),
    }
}

/// `POST {type}` (a create; `If-None-Exist` makes it conditional) and `PUT {type}?identifier=`
/// (a conditional update).
async fn write_type(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    let fault = match state.enter(&req, true).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let t = path.into_inner();
    let resource = match serde_json::from_slice::<Value>(&body) {
        Ok(r) if r["resourceType"] == t.as_str() => r,
        _ => {
            return refused(&Refusal {
                status: 400,
                code: "structure",
                message: format!("expected a {t} resource"),
            })
        }
    };
    let mut data = state.data.lock().unwrap_or_else(|p| p.into_inner());
    let result = if req.method() == actix_web::http::Method::PUT {
        data.update_where(&t, req.query_string(), resource, &now())
    } else {
        let cond = req
            .headers()
            .get("if-none-exist")
            .and_then(|h| h.to_str().ok());
        data.create(resource, cond, &now())
    };
    drop(data);
    written(result, fault)
}

async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<State>,
) -> HttpResponse {
    let fault = match state.enter(&req, true).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (t, id) = path.into_inner();
    let result = state
        .data
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .delete(&t, &id, &now());
    match (result, fault) {
        (Ok(_), Some(Fault::AppliedThenFailed)) => applied_then_failed(),
        (Ok(()), _) => HttpResponse::NoContent().finish(),
        (Err(e), _) => refused(&e),
    }
}

async fn search(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(r) = state.enter(&req, false).await {
        return r;
    }
    let t = path.into_inner();
    let q = req.query_string();
    let query = Query::parse(q);
    let param = |name: &str| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let count = param("_count").unwrap_or(50).min(500);
    let offset = param("_offset").unwrap_or(0);
    let data = state.data.lock().unwrap_or_else(|p| p.into_inner());
    let all = data.search(&t, &query);
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(count)
        .map(|r| json!({"fullUrl": format!("{t}/{}", r["id"].as_str().unwrap_or("")), "resource": r, "search": {"mode": "match"}}))
        .collect();
    let mut links = vec![json!({"relation": "self", "url": format!("{t}?{q}")})];
    if offset + count < all.len() {
        let rest: Vec<&str> = q
            .split('&')
            .filter(|kv| !kv.starts_with("_offset=") && !kv.is_empty())
            .collect();
        let mut next = rest.join("&");
        if !next.is_empty() {
            next.push('&');
        }
        links.push(
            json!({"relation": "next", "url": format!("{t}?{next}_offset={}", offset + count)}),
        );
    }
    fhir(
        200,
        &json!({"resourceType": "Bundle", "type": "searchset", "total": all.len(), "link": links, "entry": page}),
    )
}

async fn stats(state: web::Data<State>) -> HttpResponse {
    let mut out = state
        .data
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .counts();
    out["requests"] = json!(state.requests.load(Ordering::Relaxed));
    out["max_in_flight"] = json!(state.max_in_flight.load(Ordering::Relaxed));
    out["faults"] = json!(*state.injected.lock().unwrap_or_else(|p| p.into_inner()));
    HttpResponse::Ok().json(out)
}

/// Everything stored, current versions (for tests and for users checking what arrived).
async fn dump(state: web::Data<State>) -> HttpResponse {
    let data = state.data.lock().unwrap_or_else(|p| p.into_inner());
    HttpResponse::Ok().json(data.all().collect::<Vec<_>>())
}

/// A request being answered, counted in `in_flight` until dropped.
struct InFlight(web::Data<State>);

impl InFlight {
    fn enter(state: web::Data<State>) -> InFlight {
        let now = state.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        state.max_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts the sandbox on `bind`; `load` transactions are applied first.
pub fn start(bind: &str, options: Options) -> anyhow::Result<(Server, SocketAddr)> {
    let Options {
        faults,
        client,
        load,
        transactions,
        rules,
    } = options;
    let listener = std::net::TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let auth = match client {
        None => None,
        Some(c) => {
            let (key, _) = SigningKey::generate("sandbox-1", jsonwebtoken::Algorithm::ES384)?;
            let own = crate::auth::jwks::parse_jwks(&crate::auth::keys::jwks([&key])).0;
            let mut issuers = HashMap::new();
            issuers.insert(
                base.clone(),
                Issuer {
                    algorithms: ASYMMETRIC.to_vec(),
                    keys: CachedJwks::fixed(own),
                },
            );
            let mut clients = HashMap::new();
            clients.insert(
                c.client_id.clone(),
                Client {
                    scopes: Scopes::new(["system/*.cruds"]),
                    algorithms: ASYMMETRIC.to_vec(),
                    keys: CachedJwks::new(
                        JwksSource::Inline(c.jwks),
                        reqwest::Client::new(),
                        Duration::MAX,
                    ),
                },
            );
            Some(SandboxAuth {
                authz: AuthorizationServer {
                    issuer: base.clone(),
                    audience: base.clone(),
                    token_url: format!("{base}/auth/token"),
                    lifetime: 300,
                    leeway: 30,
                    signing_key: key,
                    clients,
                },
                verifier: Verifier::new(issuers, vec![base.clone()], 30),
                seen: Mutex::new(HashSet::new()),
            })
        }
    };
    let mut data = MemoryFhir::default();
    for (n, b) in load.iter().enumerate() {
        data.transaction(b, &now())
            .map_err(|e| anyhow::anyhow!("--load bundle {n}: {}", e.message))?;
    }
    // Loaded data comes in whatever shape; the rules hold from here on.
    data.rules = rules;
    let state = web::Data::new(State {
        data: Mutex::new(data),
        transactions,
        rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(faults.seed)),
        faults,
        auth,
        requests: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        max_in_flight: AtomicU64::new(0),
        injected: Mutex::new(HashMap::new()),
    });
    let server = HttpServer::new(move || {
        let counted = state.clone();
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            // Requests being answered at once (the sandbox's own `/_sandbox` routes aside).
            .wrap_fn(move |req, srv| {
                let guard = (!req.path().starts_with("/_sandbox"))
                    .then(|| InFlight::enter(counted.clone()));
                let answer = srv.call(req);
                async move {
                    let res = answer.await;
                    drop(guard);
                    res
                }
            })
            .route("/metadata", web::get().to(metadata))
            .route(
                "/.well-known/smart-configuration",
                web::get().to(smart_configuration),
            )
            .route("/auth/token", web::post().to(token))
            .route("/_sandbox/stats", web::get().to(stats))
            .route("/_sandbox/resources", web::get().to(dump))
            .route("/", web::post().to(transaction))
            .route("/{type}", web::get().to(search))
            .route("/{type}", web::post().to(write_type))
            .route("/{type}", web::put().to(write_type))
            .route("/{type}/{id}", web::get().to(read))
            .route("/{type}/{id}", web::put().to(update))
            .route("/{type}/{id}", web::delete().to(delete))
    })
    .workers(2)
    .listen(listener)?
    .run();
    Ok((server, addr))
}
