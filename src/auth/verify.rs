//! Inbound bearer tokens: who is calling and with which scopes.
//!
//! A token is accepted when its `iss` is a trusted issuer, its header names an algorithm on
//! that issuer's allow-list and a `kid` in its key set whose type fits the algorithm, the
//! signature verifies, `exp` (required) and `nbf` hold within the leeway, and `aud` is
//! Engraft's base URL. Verified tokens are remembered (keyed by their SHA-256) until they
//! expire, so a client reusing its token pays for one signature check, not one per request.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::jwks::{CachedJwks, JwksError};
use super::scope::Scopes;

/// The caller, as a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `client_id`, else `azp`, else `sub`: the audit log's "who".
    pub client_id: String,
    pub issuer: String,
    pub scopes: Scopes,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
}

/// Why a token is refused. Messages name the check, never the token or its claims' values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token: send Authorization: Bearer <token>")]
    Missing,
    #[error("access tokens are not accepted in the query string; send Authorization: Bearer")]
    InQuery,
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's issuer is not trusted")]
    UnknownIssuer,
    #[error("the token's algorithm is not accepted for its issuer")]
    Algorithm,
    #[error("the token names no key, or a key its issuer does not publish")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not meant for this server (aud)")]
    Audience,
    #[error("the token lacks a required claim or a claim has the wrong type")]
    Claims,
    /// Not the client's fault: the issuer's keys could not be fetched.
    #[error("the issuer's keys could not be fetched; try again later")]
    KeysUnavailable,
}

/// A trusted issuer: its accepted algorithms and its keys.
pub struct Issuer {
    pub algorithms: Vec<Algorithm>,
    pub keys: CachedJwks,
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeList {
    Spaced(String),
    List(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    exp: u64,
    iat: Option<u64>,
    sub: Option<String>,
    client_id: Option<String>,
    azp: Option<String>,
    scope: Option<ScopeList>,
    /// Okta and Azure AD put scopes here.
    scp: Option<ScopeList>,
}

const MAX_TOKEN_LEN: usize = 16 * 1024;
const MAX_CACHED: usize = 10_000;

/// Verifies tokens against the trusted issuers.
pub struct Verifier {
    issuers: HashMap<String, Issuer>,
    audiences: Vec<String>,
    leeway: u64,
    verified: Mutex<HashMap<[u8; 32], Principal>>,
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

impl Verifier {
    /// `audiences`: the values `aud` may take (Engraft's base URL, with and without `/fhir`).
    pub fn new(issuers: HashMap<String, Issuer>, audiences: Vec<String>, leeway: u64) -> Verifier {
        Verifier {
            issuers,
            audiences,
            leeway,
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.keys().map(String::as_str)
    }

    /// Verifies a bearer token.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
            return Err(TokenError::Malformed);
        }
        let digest: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes");
        if let Some(p) = self.remembered(&digest) {
            return Ok(p);
        }
        let principal = self.verify_uncached(token).await?;
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            let t = now();
            cache.retain(|_, p| p.expires_at + self.leeway >= t);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(digest, principal.clone());
        Ok(principal)
    }

    fn remembered(&self, digest: &[u8; 32]) -> Option<Principal> {
        let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        let p = cache.get(digest)?;
        (p.expires_at + self.leeway >= now()).then(|| p.clone())
    }

    fn forget_all(&self) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Verifies without the verified-token cache: the full cost of a token seen for the first
    /// time (key cached). Used by benchmarks.
    pub async fn verify_uncached(&self, token: &str) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let payload = token.split('.').nth(1).ok_or(TokenError::Malformed)?;
        let peek: Peek = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        let iss = peek.iss.ok_or(TokenError::Claims)?;
        let issuer = self.issuers.get(&iss).ok_or(TokenError::UnknownIssuer)?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let (key, changed) = issuer.keys.key(kid).await.map_err(|e| match e {
            JwksError::UnknownKid => TokenError::UnknownKey,
            JwksError::Unavailable => TokenError::KeysUnavailable,
        })?;
        if changed {
            // A rotated key set may have dropped keys tokens in the cache were verified with.
            self.forget_all();
        }
        if !key.accepts(header.alg) {
            return Err(TokenError::Algorithm);
        }
        let mut v = Validation::new(header.alg);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.set_issuer(&[&iss]);
        v.set_audience(&self.audiences);
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenError::Signature,
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidAudience => TokenError::Audience,
                K::InvalidAlgorithm => TokenError::Algorithm,
                K::MissingRequiredClaim(_) | K::InvalidIssuer | K::Json(_) => TokenError::Claims,
                _ => TokenError::Malformed,
            }
        })?;
        let c = data.claims;
        if let Some(limit) = key.issued_no_later_than {
            // A retired key of Engraft's own only vouches for tokens issued before it retired.
            if c.iat.is_none_or(|iat| iat > limit) {
                return Err(TokenError::UnknownKey);
            }
        }
        let scopes = match c.scope.or(c.scp) {
            Some(ScopeList::Spaced(s)) => Scopes::from_space_separated(&s),
            Some(ScopeList::List(l)) => Scopes::new(l),
            None => Scopes::default(),
        };
        let client_id = c.client_id.or(c.azp).or(c.sub).ok_or(TokenError::Claims)?;
        Ok(Principal {
            client_id,
            issuer: c.iss,
            scopes,
            expires_at: c.exp,
        })
    }
}
