//! `engraft serve`: the HTTP edge. Handlers parse, call the pure cores (conversion,
//! validation) and answer; every error is an OperationOutcome (see [`error`]).
//!
//! - [`routes`]: the route table and the SMART scope each route requires;
//! - [`auth`]: the bearer-token gate and the OAuth routes (token endpoint, JWKS, discovery);
//! - [`fhir_ops`]: `metadata`, `$validate`, `$convert`;
//! - [`fhir_rest`]: read, vread, `_history`, search over the store;
//! - [`registry`]: `/registry/records` (accept, read, replace, withdraw);
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`negotiate`]: media types, `_format`, `_pretty`;
//! - [`metrics`]: Prometheus counters and histograms.

pub mod auth;
pub mod error;
pub mod fhir_ops;
pub mod fhir_rest;
pub mod inbound;
pub mod metrics;
pub mod negotiate;
pub mod ops;
pub mod registry;
pub mod reviews;
pub mod routes;
pub mod submissions;
pub mod sync;

use anyhow::Context as _;
use std::net::SocketAddr;
use std::time::Instant;

use actix_web::body::BoxBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::Value;

use crate::config::Config;
use crate::convert::Converter;
use crate::store::SqlStore;
use crate::validation::Validator;
use error::outcome_response;
use metrics::Metrics;

/// What every handler shares. Read-only after start.
pub struct AppState {
    pub validator: Validator,
    pub converter: Converter,
    pub metrics: Metrics,
    pub capability_statement: Value,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub max_count: usize,
    pub store: SqlStore,
    pub auth: auth::AuthMode,
    /// Dropping it stops the delivery workers.
    pub sync_stop: Option<tokio::sync::watch::Sender<bool>>,
    /// The destinations this process delivers to (their circuit breakers).
    pub destinations: Vec<std::sync::Arc<crate::sync::remote::Destination>>,
}

impl AppState {
    pub fn new(config: &Config, store: SqlStore, auth: auth::AuthMode) -> AppState {
        AppState {
            store,
            max_batch: config.server.max_batch,
            max_count: config.server.max_count,
            validator: Validator::bundled(),
            converter: Converter {
                validate: true,
                pretty: false,
                ..Converter::default()
            },
            metrics: Metrics::new(),
            capability_statement: fhir_ops::capability_statement(
                &crate::convert::now_instant(),
                match &auth {
                    auth::AuthMode::Enforce(a) => Some(a.authz.token_url.as_str()),
                    auth::AuthMode::InsecureDevNoAuth => None,
                },
            ),
            max_body_bytes: config.server.max_body_bytes,
            auth,
            sync_stop: None,
            destinations: Vec::new(),
        }
    }
}

/// Registers every route of [`routes::ROUTES`]. A known path with another method gets 405.
pub fn configure(cfg: &mut web::ServiceConfig) {
    fn not_allowed() -> actix_web::Route {
        web::to(|| async { HttpResponse::MethodNotAllowed().finish() })
    }
    fn resource(path: &str) -> actix_web::Resource {
        web::resource(path).default_service(not_allowed())
    }
    use registry::Part;
    cfg.service(resource("/healthz").route(web::get().to(ops::healthz)))
        .service(resource("/auth/token").route(web::post().to(auth::token)))
        .service(resource("/.well-known/jwks.json").route(web::get().to(auth::jwks)))
        .service(
            resource("/fhir/.well-known/smart-configuration")
                .route(web::get().to(auth::smart_configuration)),
        )
        .service(resource("/readyz").route(web::get().to(ops::readyz)))
        .service(resource("/metrics").route(web::get().to(ops::metrics)))
        .service(resource("/fhir/metadata").route(web::get().to(fhir_ops::metadata)))
        .service(
            resource("/fhir/$validate").route(
                web::post().to(|req, body, state| fhir_ops::validate(req, body, state, None)),
            ),
        )
        .service(resource("/fhir/$convert").route(web::post().to(fhir_ops::convert)))
        .service(resource("/fhir").route(web::post().to(inbound::batch)))
        .service(resource("/registry/records").route(web::post().to(registry::create)))
        .service(resource("/registry/submissions").route(web::post().to(submissions::create)))
        .service(resource("/registry/submissions/{id}").route(web::get().to(submissions::read)))
        .service(resource("/sync/status").route(web::get().to(sync::status)))
        .service(resource("/sync/failed").route(web::get().to(sync::failed)))
        .service(resource("/sync/failed/retry-all").route(web::post().to(sync::retry_all)))
        .service(resource("/sync/failed/{id}/retry").route(web::post().to(sync::retry)))
        .service(resource("/sync/{destination}/dry-run").route(web::post().to(sync::dry_run)))
        .service(resource("/sync/{destination}/pull").route(web::post().to(sync::pull)))
        .service(resource("/sync/reviews").route(web::get().to(reviews::list)))
        .service(resource("/sync/reviews/{id}").route(web::get().to(reviews::show)))
        .service(resource("/sync/reviews/{id}/{decision}").route(web::post().to(reviews::decide)))
        .service(
            resource("/registry/records/{id}")
                .route(web::get().to(|r, p, s| registry::read(r, p, s, Part::Record)))
                .route(web::put().to(registry::replace))
                .route(web::delete().to(registry::delete)),
        )
        .service(
            resource("/registry/records/{id}/bundle")
                .route(web::get().to(|r, p, s| registry::read(r, p, s, Part::Bundle))),
        )
        .service(
            resource("/registry/records/{id}/report")
                .route(web::get().to(|r, p, s| registry::read(r, p, s, Part::Report))),
        )
        .service(resource("/fhir/{type}/$validate").route(web::post().to(
            |req, body, state, path: web::Path<String>| {
                fhir_ops::validate(req, body, state, Some(path))
            },
        )))
        .service(resource("/fhir/{type}").route(web::get().to(fhir_rest::search)))
        .service(resource("/fhir/{type}/{id}").route(web::get().to(fhir_rest::read)))
        .service(resource("/fhir/{type}/{id}/_history").route(web::get().to(fhir_rest::history)))
        .service(
            resource("/fhir/{type}/{id}/_history/{vid}").route(web::get().to(fhir_rest::vread)),
        );
}

/// Turns any error answer that is not already an OperationOutcome (routing 404, 405, payload
/// 413, extractor 400...) into one, so no client ever gets an empty or HTML error.
/// The token endpoint's own errors are RFC 6749 JSON and pass unchanged.
fn ensure_outcome(res: ServiceResponse, max_body: usize) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or("");
    let is_outcome = content_type.starts_with("application/fhir+json");
    let is_oauth_error =
        res.request().path() == "/auth/token" && content_type.starts_with("application/json");
    if !(status.is_client_error() || status.is_server_error()) || is_outcome || is_oauth_error {
        return res.map_into_boxed_body();
    }
    let (code, detail, msg) = match status {
        StatusCode::NOT_FOUND => ("not-found", "not-found", "No such route.".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "not-supported",
            "method",
            "This route does not take that method.".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too-costly",
            "too-large",
            format!("The body is larger than the limit of {max_body} bytes."),
        ),
        s if s.is_server_error() => (
            "exception",
            "internal",
            "The server could not complete the request; it has been logged.".to_string(),
        ),
        _ => (
            "invalid",
            "request",
            "The request could not be read.".to_string(),
        ),
    };
    let issue = crate::fhir::OutcomeIssue {
        severity: if status.is_server_error() {
            "fatal"
        } else {
            "error"
        },
        code,
        detail: detail.into(),
        diagnostics: msg,
        expression: String::new(),
        location: None,
    };
    let response = outcome_response(status, &[issue]);
    res.into_response(response)
}

/// Every request passes here: the auth gate, then the handler; then the answer is made an
/// OperationOutcome if it is an error that is not one yet, and counted and logged.
async fn edge(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("AppState is registered");
    let res = match auth::gate(&state, &req).await {
        Ok(()) => next.call(req).await?,
        Err(refusal) => req.into_response(refusal),
    };
    let res = ensure_outcome(res, state.max_body_bytes);
    let status = res.status().as_u16().to_string();
    let elapsed = started.elapsed();
    state
        .metrics
        .requests
        .with_label_values(&[&route, &method, &status])
        .inc();
    state
        .metrics
        .latency
        .with_label_values(&[&route, &method])
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        method = %method,
        route = %route,
        status = %status,
        ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}

/// Opens the store, binds and starts the server; returns it (await it to run) and the bound
/// address.
///
/// `insecure_dev_no_auth` turns authentication off; refused unless bound to loopback.
pub async fn start(
    config: &Config,
    insecure_dev_no_auth: bool,
) -> anyhow::Result<(Server, SocketAddr)> {
    let auth = if insecure_dev_no_auth {
        let loopback = config
            .server
            .bind
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        if !loopback {
            anyhow::bail!(
                "--insecure-dev-no-auth binds to loopback only; server.bind is {}",
                config.server.bind
            );
        }
        tracing::warn!("AUTHENTICATION IS DISABLED (--insecure-dev-no-auth): any local process can read and write patient data; never use this with real data");
        auth::AuthMode::InsecureDevNoAuth
    } else {
        auth::AuthMode::Enforce(Box::new(crate::auth::Auth::from_config(config)?))
    };
    let names = config.queued_destinations();
    let store = SqlStore::open(&config.store.url)
        .await
        .context("store.url: the store could not be opened")?
        .with_destinations(names);
    let mut destinations = Vec::new();
    for d in &config.destinations {
        destinations.push(std::sync::Arc::new(
            crate::sync::remote::Destination::from_config(d).map_err(anyhow::Error::msg)?,
        ));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    let mut state = AppState::new(config, store.clone(), auth);
    state.destinations = destinations.clone();
    // Submissions whose process stopped before finishing them are taken over and resumed.
    tokio::spawn(crate::sync::submit::resume_stopped(
        store.clone(),
        destinations.clone(),
        stop_rx.clone(),
    ));
    for d in destinations {
        if let Some(every) = d.pull_interval {
            tokio::spawn(crate::sync::pull::scheduled(
                store.clone(),
                d.clone(),
                every,
                stop_rx.clone(),
            ));
        }
        tokio::spawn(crate::sync::push::run(
            store.clone(),
            d,
            owner.clone(),
            stop_rx.clone(),
            state.metrics.deliveries.clone(),
        ));
    }
    // The workers run as long as the state (the server) lives.
    state.sync_stop = Some(stop_tx);
    let state = web::Data::new(state);
    let max_body = config.server.max_body_bytes;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .wrap(actix_web::middleware::from_fn(edge))
            .configure(configure)
            .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
    })
    .shutdown_timeout(config.server.shutdown_timeout_secs)
    // Conversion and validation run on the blocking pool: CPU-bound, so a few threads per
    // worker keep every core busy without hundreds of idle threads holding memory.
    .worker_max_blocking_threads(4);
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    let server = server.bind(&config.server.bind)?;
    let addr = *server
        .addrs()
        .first()
        .ok_or_else(|| anyhow::anyhow!("bound to no address"))?;
    Ok((server.run(), addr))
}
