//! Public keys by `kid`, from a JWK Set that is inline, in a file, or at an https URL; cached,
//! and refetched when a token names an unknown `kid`, at most once per configured interval (so
//! a flood of tokens with random kids cannot turn Engraft into a load generator against the
//! issuer).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::keys::parse_alg;

/// Where a key set comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum JwksSource {
    Inline(Value),
    File(PathBuf),
    Url(String),
}

impl JwksSource {
    /// `https://...` (or `http://` to a loopback address), a path, or inline JSON.
    pub fn parse(s: &str) -> JwksSource {
        if s.starts_with("https://") || s.starts_with("http://") {
            JwksSource::Url(s.to_string())
        } else {
            JwksSource::File(PathBuf::from(s.strip_prefix("file:").unwrap_or(s)))
        }
    }

    /// Why the source cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match self {
            JwksSource::Url(u) if u.starts_with("http://") && !is_loopback_url(u) => {
                Some("a JWKS URL must be https (plain http only to a loopback address)".into())
            }
            JwksSource::File(p) if !p.is_file() => {
                Some(format!("JWKS file {} does not exist", p.display()))
            }
            _ => None,
        }
    }
}

/// Whether Engraft may send credentials or PHI to `u`: https, or plain http to a loopback
/// address only (a sandbox on the same machine).
pub fn is_secure_url(u: &str) -> bool {
    u.starts_with("https://") || (u.starts_with("http://") && is_loopback_url(u))
}

pub(crate) fn is_loopback_url(u: &str) -> bool {
    let rest = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Which family and curve a key is, so an algorithm can be matched against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rsa,
    P256,
    P384,
}

/// One public key.
pub struct PublicKey {
    pub decoding: DecodingKey,
    kind: Kind,
    /// The `alg` the JWK declares, if any: then only that one.
    alg: Option<Algorithm>,
    /// For a retired signing key of Engraft's own: tokens it signed must be issued no later.
    pub issued_no_later_than: Option<u64>,
}

impl PublicKey {
    /// Whether a token signed with `alg` may be verified with this key.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        let fits = match self.kind {
            Kind::Rsa => matches!(alg, Algorithm::RS256 | Algorithm::RS384),
            Kind::P256 => alg == Algorithm::ES256,
            Kind::P384 => alg == Algorithm::ES384,
        };
        fits && self.alg.is_none_or(|a| a == alg)
    }

    /// From one JWK. Symmetric (`oct`) keys and unsupported types are refused: a key set must
    /// never make an HMAC secret out of anything.
    pub fn from_jwk(v: &Value) -> Result<(String, PublicKey), String> {
        let kid = v["kid"]
            .as_str()
            .filter(|k| !k.is_empty())
            .ok_or("a key without kid")?
            .to_string();
        if v["use"].as_str().is_some_and(|u| u != "sig") {
            return Err(format!("key {kid} is not for signatures"));
        }
        let alg = match v["alg"].as_str() {
            None => None,
            Some(a) => {
                Some(parse_alg(a).ok_or_else(|| format!("key {kid}: algorithm {a} not accepted"))?)
            }
        };
        let jwk: Jwk =
            serde_json::from_value(v.clone()).map_err(|_| format!("key {kid} does not parse"))?;
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Kind::Rsa,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Kind::P256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => Kind::P384,
            _ => {
                return Err(format!(
                    "key {kid}: only RSA, P-256 and P-384 keys are accepted"
                ))
            }
        };
        let decoding =
            DecodingKey::from_jwk(&jwk).map_err(|_| format!("key {kid} does not parse"))?;
        Ok((
            kid,
            PublicKey {
                decoding,
                kind,
                alg,
                issued_no_later_than: None,
            },
        ))
    }
}

/// Keys by kid.
pub type KeySet = HashMap<String, Arc<PublicKey>>;

/// Parses a JWK Set; keys that cannot be used are skipped with the reason.
pub fn parse_jwks(v: &Value) -> (KeySet, Vec<String>) {
    let mut keys = KeySet::new();
    let mut skipped = Vec::new();
    for k in v["keys"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        match PublicKey::from_jwk(k) {
            Ok((kid, key)) => {
                keys.insert(kid, Arc::new(key));
            }
            Err(e) => skipped.push(e),
        }
    }
    if v["keys"].as_array().is_none() {
        skipped.push("not a JWK Set (no keys array)".into());
    }
    (keys, skipped)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("no key with that kid")]
    UnknownKid,
    #[error("the issuer's key set could not be fetched")]
    Unavailable,
}

/// A cached key set with refresh on unknown kid.
pub struct CachedJwks {
    source: JwksSource,
    http: reqwest::Client,
    keys: RwLock<Arc<KeySet>>,
    /// When the set was last (re)loaded and whether that worked; held while loading, so one
    /// caller loads at a time.
    loaded: tokio::sync::Mutex<Option<(Instant, bool)>>,
    min_interval: Duration,
}

impl CachedJwks {
    pub fn new(source: JwksSource, http: reqwest::Client, min_interval: Duration) -> CachedJwks {
        let (keys, loaded) = match &source {
            JwksSource::Inline(v) => (parse_jwks(v).0, Some((Instant::now(), true))),
            _ => (KeySet::new(), None),
        };
        CachedJwks {
            source,
            http,
            keys: RwLock::new(Arc::new(keys)),
            loaded: tokio::sync::Mutex::new(loaded),
            min_interval,
        }
    }

    /// A fixed set (Engraft's own keys): never reloaded.
    pub fn fixed(keys: KeySet) -> CachedJwks {
        CachedJwks {
            source: JwksSource::Inline(Value::Null),
            http: reqwest::Client::new(),
            keys: RwLock::new(Arc::new(keys)),
            loaded: tokio::sync::Mutex::new(Some((Instant::now(), true))),
            min_interval: Duration::MAX,
        }
    }

    fn cached(&self, kid: &str) -> Option<Arc<PublicKey>> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned()
    }

    /// The key `kid`: from the cache, else after one reload if the last was long enough ago.
    /// Returns whether the set changed, so verified-token caches can be dropped.
    pub async fn key(&self, kid: &str) -> Result<(Arc<PublicKey>, bool), JwksError> {
        if let Some(k) = self.cached(kid) {
            return Ok((k, false));
        }
        let mut loaded = self.loaded.lock().await;
        // Another caller may have reloaded while this one waited.
        if let Some(k) = self.cached(kid) {
            return Ok((k, false));
        }
        if matches!(self.source, JwksSource::Inline(_)) {
            return Err(JwksError::UnknownKid);
        }
        if let Some((at, ok)) = *loaded {
            if at.elapsed() < self.min_interval {
                // Within the interval the last answer stands: no key, or no key set at all.
                return Err(if ok {
                    JwksError::UnknownKid
                } else {
                    JwksError::Unavailable
                });
            }
        }
        let fetched = self.fetch().await;
        *loaded = Some((Instant::now(), fetched.is_ok()));
        let fresh = fetched?;
        let found = fresh.get(kid).cloned();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        found.map(|k| (k, true)).ok_or(JwksError::UnknownKid)
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        let value: Value = match &self.source {
            JwksSource::Inline(v) => v.clone(),
            JwksSource::File(p) => {
                let text = tokio::fs::read_to_string(p).await.map_err(|e| {
                    tracing::warn!(file = %p.display(), error = %e, "JWKS file unreadable");
                    JwksError::Unavailable
                })?;
                serde_json::from_str(&text).map_err(|_| {
                    tracing::warn!(file = %p.display(), "JWKS file is not JSON");
                    JwksError::Unavailable
                })?
            }
            JwksSource::Url(u) => {
                let res = self.http.get(u).send().await.map_err(|e| {
                    tracing::warn!(url = %u, timeout = e.is_timeout(), "JWKS fetch failed");
                    JwksError::Unavailable
                })?;
                if !res.status().is_success() {
                    tracing::warn!(url = %u, status = %res.status(), "JWKS fetch failed");
                    return Err(JwksError::Unavailable);
                }
                res.json().await.map_err(|_| {
                    tracing::warn!(url = %u, "JWKS answer is not JSON");
                    JwksError::Unavailable
                })?
            }
        };
        let (keys, skipped) = parse_jwks(&value);
        for s in skipped {
            tracing::warn!(reason = %s, "JWKS key skipped");
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::SigningKey;
    use serde_json::json;

    #[test]
    fn symmetric_and_kidless_keys_are_never_used() {
        let (ec, _) = SigningKey::generate("ec", Algorithm::ES384).unwrap();
        let set = json!({"keys": [
            ec.jwk(),
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
        ]});
        let (keys, skipped) = parse_jwks(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        let k = &keys["ec"];
        assert!(k.accepts(Algorithm::ES384));
        assert!(!k.accepts(Algorithm::ES256));
        assert!(!k.accepts(Algorithm::RS384));
        assert!(!k.accepts(Algorithm::HS256));
    }

    #[test]
    fn loopback_urls_are_told_apart() {
        assert!(is_secure_url("https://idp.example/token"));
        assert!(is_secure_url("http://127.0.0.1:8/token"));
        assert!(!is_secure_url("http://idp.example/token"));
        assert!(!is_secure_url("ftp://idp.example/token"));
        assert!(!is_secure_url("//idp.example/token"));
        assert!(is_loopback_url("http://127.0.0.1:9/jwks"));
        assert!(is_loopback_url("http://localhost/jwks"));
        assert!(is_loopback_url("http://[::1]:80/jwks"));
        assert!(!is_loopback_url("http://127.0.0.1.evil.example/jwks"));
        assert!(!is_loopback_url("http://127.0.0.1@evil.example/jwks"));
        assert!(!is_loopback_url("http://idp.example/jwks"));
        assert!(JwksSource::parse("http://idp.example/jwks")
            .problem()
            .is_some());
        assert!(JwksSource::parse("https://idp.example/jwks")
            .problem()
            .is_none());
    }
}
