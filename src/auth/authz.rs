//! The built-in authorization server: SMART Backend Services (`client_credentials` with a
//! `private_key_jwt` client assertion), so a standalone deployment needs no IdP.
//!
//! A request is granted when: `grant_type=client_credentials`; the assertion type is
//! `jwt-bearer`; the assertion's `iss` and `sub` are one registered `client_id`; its header
//! names an allowed algorithm and a kid of the client's JWKS; the signature verifies; `aud` is
//! the token URL; `exp` is at most five minutes ahead; its `jti` was never seen within its
//! lifetime (the replay cache lives in the store, so it holds across instances); and every
//! requested scope is within the client's allowed scopes. Errors follow RFC 6749 §5.2.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use super::jwks::{CachedJwks, JwksError};
use super::keys::SigningKey;
use super::scope::{self, ScopeError, Scopes};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// SMART Backend Services: an assertion's `exp` is at most five minutes ahead.
const MAX_ASSERTION_LIFETIME: u64 = 300;

/// An RFC 6749 §5.2 error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            error,
            description: description.into(),
        }
    }

    /// 401 for client authentication failures, 503 when the store is down, else 400.
    pub fn status(&self) -> u16 {
        match self.error {
            "invalid_client" => 401,
            "temporarily_unavailable" => 503,
            _ => 400,
        }
    }
}

/// Records a `jti` as used. `Ok(false)`: it was already used (a replay).
pub trait ReplayGuard {
    fn first_use(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> impl std::future::Future<Output = Result<bool, String>> + Send;
}

/// A registered client.
pub struct Client {
    pub scopes: Scopes,
    pub algorithms: Vec<Algorithm>,
    pub keys: CachedJwks,
}

/// The successful answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub scope: String,
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    scope: &'a str,
}

#[derive(Deserialize)]
struct AssertionClaims {
    exp: u64,
    jti: Option<String>,
}

/// Engraft's token endpoint.
pub struct AuthorizationServer {
    /// `iss` of the tokens issued (Engraft's base URL).
    pub issuer: String,
    /// `aud` of the tokens issued.
    pub audience: String,
    /// What client assertions must carry as `aud`.
    pub token_url: String,
    pub lifetime: u64,
    pub leeway: u64,
    pub signing_key: SigningKey,
    pub clients: HashMap<String, Client>,
}

fn peek_iss_sub(assertion: &str) -> Option<(String, Option<String>)> {
    #[derive(Deserialize)]
    struct P {
        iss: Option<String>,
        sub: Option<String>,
    }
    let payload = assertion.split('.').nth(1)?;
    let p: P = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some((p.iss?, p.sub))
}

impl AuthorizationServer {
    /// Handles a token request (its form fields).
    pub async fn token(
        &self,
        form: &HashMap<String, String>,
        replay: &impl ReplayGuard,
    ) -> Result<TokenResponse, OAuthError> {
        let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
        match field("grant_type") {
            Some("client_credentials") => {}
            Some(_) => {
                return Err(OAuthError::new(
                    "unsupported_grant_type",
                    "only client_credentials is supported",
                ))
            }
            None => return Err(OAuthError::new("invalid_request", "grant_type is required")),
        }
        if field("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::new(
                "invalid_request",
                format!("client_assertion_type must be {JWT_BEARER}"),
            ));
        }
        let assertion = field("client_assertion")
            .ok_or_else(|| OAuthError::new("invalid_request", "client_assertion is required"))?;
        let requested =
            field("scope").ok_or_else(|| OAuthError::new("invalid_scope", "scope is required"))?;

        let (client_id, client) = self.authenticate(assertion, replay).await?;

        let requested = Scopes::from_space_separated(requested);
        let allowed: Vec<_> = client.scopes.grants().collect();
        for s in requested.iter() {
            let why = match scope::parse(s) {
                Ok(g) if allowed.iter().any(|a| g.within(a)) => continue,
                Ok(_) => "is not allowed for this client",
                Err(ScopeError::NotSystem) => "is not a system scope (backend services only)",
                Err(ScopeError::Granular) => "has a query; granular scopes are not supported",
                Err(ScopeError::Malformed) => "does not parse",
            };
            return Err(OAuthError::new("invalid_scope", format!("{s} {why}")));
        }
        let scope = requested.to_string();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = AccessClaims {
            iss: &self.issuer,
            sub: &client_id,
            client_id: &client_id,
            aud: &self.audience,
            iat: now,
            nbf: now,
            exp: now + self.lifetime,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: &scope,
        };
        let access_token = self
            .signing_key
            .sign(&claims)
            .map_err(|_| OAuthError::new("server_error", "the token could not be signed"))?;
        Ok(TokenResponse {
            access_token,
            token_type: "bearer".into(),
            expires_in: self.lifetime,
            scope,
        })
    }

    /// Verifies the client assertion; returns the client.
    async fn authenticate(
        &self,
        assertion: &str,
        replay: &impl ReplayGuard,
    ) -> Result<(String, &Client), OAuthError> {
        let invalid = |why: &str| OAuthError::new("invalid_client", why.to_string());
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| invalid("the client assertion is not a well-formed JWT"))?;
        let (iss, sub) =
            peek_iss_sub(assertion).ok_or_else(|| invalid("the client assertion has no iss"))?;
        if sub.as_deref() != Some(iss.as_str()) {
            return Err(invalid(
                "the client assertion's iss and sub must both be the client_id",
            ));
        }
        let client = self
            .clients
            .get(&iss)
            .ok_or_else(|| invalid("unknown client"))?;
        if !client.algorithms.contains(&header.alg) {
            return Err(invalid(
                "the assertion's algorithm is not allowed for this client",
            ));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| invalid("the assertion header has no kid"))?;
        let (key, _) = client.keys.key(kid).await.map_err(|e| match e {
            JwksError::UnknownKid => invalid("no key with the assertion's kid is registered"),
            JwksError::Unavailable => OAuthError::new(
                "temporarily_unavailable",
                "the client's key set could not be fetched",
            ),
        })?;
        if !key.accepts(header.alg) {
            return Err(invalid("the assertion's algorithm does not fit the key"));
        }
        let mut v = Validation::new(header.alg);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        v.set_issuer(&[&iss]);
        v.sub = Some(iss.clone());
        v.set_audience(&[&self.token_url]);
        let data =
            jsonwebtoken::decode::<AssertionClaims>(assertion, &key.decoding, &v).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                invalid(match e.kind() {
                    K::InvalidSignature => "the assertion's signature does not verify",
                    K::ExpiredSignature => "the assertion has expired",
                    K::ImmatureSignature => "the assertion is not valid yet",
                    K::InvalidAudience => "the assertion's aud must be the token URL",
                    _ => "the assertion's claims are incomplete or malformed",
                })
            })?;
        let now = jsonwebtoken::get_current_timestamp();
        if data.claims.exp > now + MAX_ASSERTION_LIFETIME + self.leeway {
            return Err(invalid(
                "the assertion's exp is more than five minutes ahead",
            ));
        }
        let jti = data
            .claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| invalid("the assertion has no jti"))?;
        let first = replay
            .first_use(&iss, &jti, (data.claims.exp + self.leeway) as i64)
            .await
            .map_err(|_| {
                OAuthError::new("temporarily_unavailable", "the replay cache is unavailable")
            })?;
        if !first {
            return Err(invalid("the assertion's jti has been used before"));
        }
        Ok((iss, client))
    }
}
