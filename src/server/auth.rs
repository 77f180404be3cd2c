//! Authentication at the HTTP edge: the gate every request passes (bearer token, then the
//! route's scope), and the open OAuth routes (`/auth/token`, `/.well-known/jwks.json`,
//! `/fhir/.well-known/smart-configuration`).

use std::collections::HashMap;

use actix_web::dev::ServiceRequest;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::AppState;
use crate::auth::scope::{Need, Scopes};
use crate::auth::verify::{Principal, TokenError};
use crate::auth::Auth;

/// How requests are authenticated.
pub enum AuthMode {
    Enforce(Box<Auth>),
    /// `--insecure-dev-no-auth`: every caller has every scope (loopback only; loudly logged).
    InsecureDevNoAuth,
}

/// The principal of a request; `anonymous` on open routes.
pub fn actor(req: &HttpRequest) -> String {
    req.extensions()
        .get::<Principal>()
        .map(|p| p.client_id.clone())
        .unwrap_or_else(|| "anonymous".into())
}

/// Inside a handler: the request's principal must also allow `interaction` on `resource`
/// (for what a route reaches beyond its own type, such as `_include`). Insecure dev mode and
/// open routes have no principal to check and pass.
pub fn require(
    req: &HttpRequest,
    resource: &str,
    interaction: crate::auth::scope::Interaction,
) -> Result<(), ApiError> {
    let ext = req.extensions();
    match ext.get::<Principal>() {
        Some(p) if !p.scopes.allows(resource, interaction) => {
            let need = Need::new(resource, interaction);
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "insufficient-scope",
                &format!(
                    "The token's scopes do not allow this: it needs {}.",
                    need.scope()
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn unauthorized(e: &TokenError) -> HttpResponse {
    let mut res = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "login",
        "invalid-token",
        &e.to_string(),
    )
    .error_response_with_status();
    let challenge = match e {
        // RFC 6750 §3.1: no error code when the request carried no credentials.
        TokenError::Missing => r#"Bearer realm="engraft""#.to_string(),
        _ => format!(r#"Bearer realm="engraft", error="invalid_token", error_description="{e}""#),
    };
    if let Ok(v) = header::HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

fn forbidden(need: &Need) -> HttpResponse {
    let scope = need.scope();
    let msg = format!(
        "The token's scopes do not allow this: it needs {scope} (or a wider scope such as system/*.{}).",
        need.interaction.letter()
    );
    let mut res = ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "insufficient-scope",
        &msg,
    )
    .error_response_with_status();
    let challenge =
        format!(r#"Bearer realm="engraft", error="insufficient_scope", scope="{scope}""#);
    if let Ok(v) = header::HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

fn token_in_query(req: &ServiceRequest) -> bool {
    req.query_string()
        .split('&')
        .any(|kv| kv.split('=').next() == Some("access_token"))
}

/// Checks the request against its route's need. `Ok` lets it through (with its principal in
/// the request extensions); `Err` is the answer to send instead.
pub async fn gate(state: &AppState, req: &ServiceRequest) -> Result<(), HttpResponse> {
    let Some(pattern) = req.match_pattern() else {
        return Ok(()); // unknown route: 404 follows
    };
    // Path parameters are matched after middleware runs: read `{type}` off the path.
    let type_param = pattern
        .split('/')
        .zip(req.path().split('/'))
        .find(|(p, _)| *p == "{type}")
        .map(|(_, v)| v);
    let need = super::routes::need_of(req.method().as_str(), &pattern, type_param);
    let Some(need) = need else {
        if !super::routes::is_listed(&pattern) {
            // A handler registered without a route-table entry would be open by omission:
            // refuse instead (and say so in the log; it is a bug to fix).
            tracing::error!(route = %pattern, "route missing from the route table: refused");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "unlisted-route",
                "This route declares no scope and is refused.",
            )
            .error_response_with_status());
        }
        return Ok(()); // open route, or a method the route does not take (405 follows)
    };
    let auth = match &state.auth {
        AuthMode::InsecureDevNoAuth => {
            tracing::warn!(
                route = %pattern,
                "AUTHENTICATION DISABLED (--insecure-dev-no-auth): request let through unchecked"
            );
            req.extensions_mut().insert(Principal {
                client_id: "insecure-dev-no-auth".into(),
                issuer: String::new(),
                scopes: Scopes::new(["system/*.cruds"]),
                expires_at: u64::MAX,
            });
            return Ok(());
        }
        AuthMode::Enforce(a) => a,
    };
    if token_in_query(req) {
        return Err(unauthorized(&TokenError::InQuery));
    }
    let token = match req.headers().get(header::AUTHORIZATION) {
        None => return Err(unauthorized(&TokenError::Missing)),
        Some(h) => {
            let h = h.to_str().unwrap_or("");
            match h.split_once(' ') {
                Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim().to_string(),
                _ => return Err(unauthorized(&TokenError::NotBearer)),
            }
        }
    };
    let principal = match auth.verifier.verify(&token).await {
        Ok(p) => p,
        Err(TokenError::KeysUnavailable) => {
            let mut res = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "keys-unavailable",
                &TokenError::KeysUnavailable.to_string(),
            )
            .error_response_with_status();
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            return Err(res);
        }
        Err(e) => {
            state
                .metrics
                .auth
                .with_label_values(&["invalid_token"])
                .inc();
            return Err(unauthorized(&e));
        }
    };
    if !principal.scopes.allows(&need.resource, need.interaction) {
        state
            .metrics
            .auth
            .with_label_values(&["insufficient_scope"])
            .inc();
        tracing::info!(client_id = %principal.client_id, need = %need.scope(), "insufficient scope");
        return Err(forbidden(&need));
    }
    req.extensions_mut().insert(principal);
    Ok(())
}

impl ApiError {
    fn error_response_with_status(&self) -> HttpResponse {
        actix_web::ResponseError::error_response(self)
    }
}

fn oauth_json(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// `POST /auth/token` (form-encoded). Answers per RFC 6749: JSON, not OperationOutcome.
pub async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let AuthMode::Enforce(auth) = &state.auth else {
        return oauth_json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "unsupported_grant_type", "error_description": "authentication is disabled on this server"}),
        );
    };
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let form: Option<HashMap<String, String>> = if is_form {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .ok()
            .and_then(|pairs| {
                // A parameter given twice is an error (RFC 6749 §3.2).
                let n = pairs.len();
                let map: HashMap<_, _> = pairs.into_iter().collect();
                (map.len() == n).then_some(map)
            })
    } else {
        None
    };
    let Some(form) = form else {
        return oauth_json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "invalid_request", "error_description": "send application/x-www-form-urlencoded parameters, each once"}),
        );
    };
    match auth.authz.token(&form, &state.store).await {
        Ok(t) => {
            state
                .metrics
                .auth
                .with_label_values(&["token_issued"])
                .inc();
            oauth_json(StatusCode::OK, serde_json::to_value(t).unwrap_or_default())
        }
        Err(e) => {
            state.metrics.auth.with_label_values(&[e.error]).inc();
            tracing::info!(error = e.error, reason = %e.description, "token request refused");
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            oauth_json(
                status,
                serde_json::json!({"error": e.error, "error_description": e.description}),
            )
        }
    }
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let body = match &state.auth {
        AuthMode::Enforce(a) => a.jwks(),
        AuthMode::InsecureDevNoAuth => serde_json::json!({"keys": []}),
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=60"))
        .json(body)
}

/// `GET /fhir/.well-known/smart-configuration`.
pub async fn smart_configuration(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match &state.auth {
        AuthMode::Enforce(a) => Ok(HttpResponse::Ok().json(a.smart_configuration())),
        AuthMode::InsecureDevNoAuth => Err(ApiError::not_found(
            "Authentication is disabled on this server (--insecure-dev-no-auth).",
        )),
    }
}
