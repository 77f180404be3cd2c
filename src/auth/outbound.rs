//! Tokens for Engraft's own calls to EHRs and registries: SMART Backend Services
//! (`private_key_jwt`), `client_secret_basic` client credentials, and the password grant with
//! `client_secret_basic` (CIBMTR's Okta flow).
//!
//! One [`TokenProvider`] per (token URL, client, scopes), shared by every caller through
//! [`TokenProviders`]. A token is reused until `margin` before it expires; a refresh is
//! single-flight (concurrent callers wait for the one request in progress); a 401 from the
//! resource server forces one refresh and one retry ([`TokenProvider::send`]). Secrets are
//! [`Secret`]s: they never reach logs, errors or metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::authz::JWT_BEARER;
use super::keys::SigningKey;
use super::secret::Secret;

/// How a destination authenticates.
pub enum Grant {
    /// SMART Backend Services: a client assertion signed with the client's key.
    SmartBackend { client_id: String, key: SigningKey },
    /// `client_credentials` with HTTP Basic client authentication.
    ClientSecretBasic { client_id: String, secret: Secret },
    /// The resource owner password grant with HTTP Basic client authentication.
    Password {
        client_id: String,
        client_secret: Secret,
        username: String,
        password: Secret,
    },
}

impl Grant {
    pub fn client_id(&self) -> &str {
        match self {
            Grant::SmartBackend { client_id, .. }
            | Grant::ClientSecretBasic { client_id, .. }
            | Grant::Password { client_id, .. } => client_id,
        }
    }
}

/// Where the token endpoint is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenUrl {
    Fixed(String),
    /// Discovered from `{fhir_base}/.well-known/smart-configuration`.
    Discover {
        fhir_base: String,
    },
}

/// Why no token could be had. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("token endpoint discovery failed: {0}")]
    Discovery(String),
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the token endpoint refused: HTTP {status} {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        status: u16,
        error: String,
        description: Option<String>,
    },
    #[error("the token endpoint's answer is not a bearer token response")]
    BadResponse,
    #[error("the client assertion could not be signed")]
    Sign,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: String,
    error_description: Option<String>,
}

#[derive(Clone)]
struct Cached {
    token: Secret,
    refresh_at: Instant,
}

/// Tokens for one (token URL, client, scopes).
pub struct TokenProvider {
    http: reqwest::Client,
    url: TokenUrl,
    discovered: tokio::sync::OnceCell<String>,
    grant: Grant,
    scope: String,
    margin: Duration,
    cached: RwLock<Option<Cached>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl TokenProvider {
    pub fn new(
        http: reqwest::Client,
        url: TokenUrl,
        grant: Grant,
        scope: &str,
        margin: Duration,
    ) -> TokenProvider {
        TokenProvider {
            http,
            url,
            discovered: tokio::sync::OnceCell::new(),
            grant,
            scope: scope.to_string(),
            margin,
            cached: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Option<Secret> {
        let c = self.cached.read().unwrap_or_else(|p| p.into_inner());
        c.as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// A valid token: the cached one, or one fresh request shared with concurrent callers.
    pub async fn token(&self) -> Result<Secret, OutboundError> {
        if let Some(t) = self.current() {
            return Ok(t);
        }
        let _one = self.refreshing.lock().await;
        if let Some(t) = self.current() {
            return Ok(t);
        }
        self.fetch().await
    }

    /// After a 401 for `rejected`: a new token, unless another caller already got one.
    pub async fn refresh_after_rejection(
        &self,
        rejected: &Secret,
    ) -> Result<Secret, OutboundError> {
        let _one = self.refreshing.lock().await;
        if let Some(t) = self.current().filter(|t| t != rejected) {
            return Ok(t);
        }
        self.fetch().await
    }

    /// Sends the request `build` makes with a bearer token; on a 401, refreshes the token
    /// once and sends once more.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SendError> {
        let token = self.token().await.map_err(SendError::Token)?;
        let res = build(&self.http)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(SendError::Http)?;
        if res.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(res);
        }
        tracing::info!(client_id = %self.grant.client_id(), "401 from the resource server: refreshing the token once");
        let token = self
            .refresh_after_rejection(&token)
            .await
            .map_err(SendError::Token)?;
        build(&self.http)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(SendError::Http)
    }

    async fn token_url(&self) -> Result<&str, OutboundError> {
        match &self.url {
            TokenUrl::Fixed(u) => Ok(u),
            TokenUrl::Discover { fhir_base } => self
                .discovered
                .get_or_try_init(|| discover(&self.http, fhir_base))
                .await
                .map(String::as_str),
        }
    }

    async fn fetch(&self) -> Result<Secret, OutboundError> {
        let url = self.token_url().await?.to_string();
        let mut form: Vec<(&str, String)> = vec![("scope", self.scope.clone())];
        let mut req = self.http.post(&url).header("Accept", "application/json");
        match &self.grant {
            Grant::SmartBackend { client_id, key } => {
                let now = jsonwebtoken::get_current_timestamp();
                let claims = serde_json::json!({
                    "iss": client_id, "sub": client_id, "aud": url,
                    "iat": now, "exp": now + 300,
                    "jti": uuid::Uuid::new_v4().to_string(),
                });
                let assertion = key.sign(&claims).map_err(|_| OutboundError::Sign)?;
                form.push(("grant_type", "client_credentials".into()));
                form.push(("client_assertion_type", JWT_BEARER.into()));
                form.push(("client_assertion", assertion));
            }
            Grant::ClientSecretBasic { client_id, secret } => {
                form.push(("grant_type", "client_credentials".into()));
                req = req.basic_auth(form_encode(client_id), Some(form_encode(secret.expose())));
            }
            Grant::Password {
                client_id,
                client_secret,
                username,
                password,
            } => {
                form.push(("grant_type", "password".into()));
                form.push(("username", username.clone()));
                form.push(("password", password.expose().to_string()));
                req = req.basic_auth(
                    form_encode(client_id),
                    Some(form_encode(client_secret.expose())),
                );
            }
        }
        let started = Instant::now();
        let res = req
            .form(&form)
            .send()
            .await
            .map_err(|e| OutboundError::Unreachable(crate::net::transport_error(&e)))?;
        let status = res.status();
        if !status.is_success() {
            let err: Option<ErrorAnswer> = res.json().await.ok();
            return Err(OutboundError::Refused {
                status: status.as_u16(),
                error: err.as_ref().map(|e| e.error.clone()).unwrap_or_default(),
                description: err.and_then(|e| e.error_description),
            });
        }
        let answer: TokenAnswer = res.json().await.map_err(|_| OutboundError::BadResponse)?;
        if !answer.token_type.eq_ignore_ascii_case("bearer") || answer.access_token.is_empty() {
            return Err(OutboundError::BadResponse);
        }
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
        let refresh_at = started + lifetime.saturating_sub(self.margin);
        let token = Secret::new(answer.access_token);
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            token: token.clone(),
            refresh_at,
        });
        tracing::debug!(client_id = %self.grant.client_id(), expires_in = lifetime.as_secs(), "token obtained");
        Ok(token)
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn discover(http: &reqwest::Client, fhir_base: &str) -> Result<String, OutboundError> {
    let url = format!(
        "{}/.well-known/smart-configuration",
        fhir_base.trim_end_matches('/')
    );
    let res = http
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| OutboundError::Discovery(crate::net::transport_error(&e)))?;
    if !res.status().is_success() {
        return Err(OutboundError::Discovery(format!(
            "HTTP {}",
            res.status().as_u16()
        )));
    }
    let v: serde_json::Value = res
        .json()
        .await
        .map_err(|_| OutboundError::Discovery("the answer is not JSON".into()))?;
    let endpoint = v["token_endpoint"]
        .as_str()
        .ok_or_else(|| OutboundError::Discovery("no token_endpoint".into()))?;
    // The client assertion goes there: never in the clear, wherever discovery points.
    if !crate::auth::jwks::is_secure_url(endpoint) {
        return Err(OutboundError::Discovery(
            "the discovered token_endpoint is not https (plain http only to a loopback address)"
                .into(),
        ));
    }
    Ok(endpoint.to_string())
}

/// Why an authorised request failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Token(OutboundError),
    #[error("the request failed: {}", crate::net::transport_error(.0))]
    Http(reqwest::Error),
}

/// Providers shared by (token URL, client, scopes).
#[derive(Default)]
pub struct TokenProviders {
    providers: Mutex<HashMap<(TokenUrl, String, String), Arc<TokenProvider>>>,
}

impl TokenProviders {
    /// The provider for this token URL, client and scope; `make` builds it the first time.
    pub fn get(
        &self,
        url: &TokenUrl,
        client_id: &str,
        scope: &str,
        make: impl FnOnce() -> TokenProvider,
    ) -> Arc<TokenProvider> {
        let mut map = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((url.clone(), client_id.to_string(), scope.to_string()))
            .or_insert_with(|| Arc::new(make()))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        assert_eq!(form_encode("a b:c/d"), "a+b%3Ac%2Fd");
        assert_eq!(form_encode("plain-id_1.x"), "plain-id_1.x");
    }

    #[test]
    fn errors_never_show_secrets() {
        let e = OutboundError::Refused {
            status: 401,
            error: "invalid_client".into(),
            description: Some("bad credentials".into()),
        };
        assert_eq!(
            e.to_string(),
            "the token endpoint refused: HTTP 401 invalid_client (bad credentials)"
        );
    }
}
