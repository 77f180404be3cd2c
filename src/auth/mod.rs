//! OAuth 2 in both directions.
//!
//! - [`scope`]: SMART v1/v2 system scopes and what routes need (pure);
//! - [`keys`]: signing keys (generate, load, publish as JWK);
//! - [`jwks`]: public key sets from inline JSON, files or URLs, cached, refreshed on unknown kid;
//! - [`verify`]: inbound bearer tokens to a [`verify::Principal`];
//! - [`authz`]: the built-in token endpoint (SMART Backend Services);
//! - [`outbound`]: token providers for Engraft's own calls (SMART, client secret, password);
//! - [`secret`]: values that never print.
//!
//! HTTP stays in `server::auth`; this module is called from there and from the CLI.

pub mod authz;
pub mod jwks;
pub mod keys;
pub mod outbound;
pub mod scope;
pub mod secret;
pub mod verify;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::config::Config;
use jwks::{CachedJwks, KeySet, PublicKey};
use keys::{parse_alg, SigningKey};
use secret::SecretSource;

/// Everything the server needs to authenticate callers and issue tokens.
pub struct Auth {
    pub verifier: verify::Verifier,
    pub authz: authz::AuthorizationServer,
    /// Engraft's public keys with the instant (seconds) after which each stops being published.
    published: Vec<(Value, Option<u64>)>,
    pub base_url: String,
}

fn alg_list(list: &[String]) -> Vec<jsonwebtoken::Algorithm> {
    list.iter().filter_map(|a| parse_alg(a)).collect()
}

impl Auth {
    /// Builds the verifier and the token endpoint from the configuration (already checked by
    /// `Config::problems`). Loads Engraft's signing keys, or makes an ephemeral one.
    pub fn from_config(config: &Config) -> anyhow::Result<Auth> {
        let a = &config.auth;
        let base_url = config.base_url();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(a.jwks_timeout_secs))
            .connect_timeout(Duration::from_secs(a.jwks_timeout_secs))
            .build()?;
        let interval = Duration::from_secs(a.jwks_refresh_interval_secs);
        let now = jsonwebtoken::get_current_timestamp();

        let mut signing = Vec::new();
        for (i, k) in a.signing_keys.iter().enumerate() {
            let alg = parse_alg(&k.alg).context("auth.signing_keys.alg")?;
            let pem = SecretSource::File(k.file.clone())
                .load()
                .map_err(anyhow::Error::msg)?;
            let key = SigningKey::from_pem(&k.kid, alg, &pem)
                .with_context(|| format!("auth.signing_keys: key {}", k.kid))?;
            let retired_at = if i == 0 {
                None
            } else {
                Some(match &k.retired_at {
                    Some(r) => chrono::DateTime::parse_from_rfc3339(r)
                        .context("auth.signing_keys.retired_at")?
                        .timestamp()
                        .max(0) as u64,
                    None => now,
                })
            };
            signing.push((key, retired_at));
        }
        if signing.is_empty() {
            let kid = format!(
                "ephemeral-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            tracing::warn!(
                %kid,
                "no auth.signing_keys configured: tokens are signed with an ephemeral key; they do not survive a restart nor work across instances"
            );
            signing.push((
                SigningKey::generate(&kid, jsonwebtoken::Algorithm::ES384)?.0,
                None,
            ));
        }

        let mut own = KeySet::new();
        let mut published = Vec::new();
        for (key, retired_at) in &signing {
            let (kid, mut public) = PublicKey::from_jwk(key.jwk()).map_err(anyhow::Error::msg)?;
            public.issued_no_later_than = *retired_at;
            own.insert(kid, Arc::new(public));
            published.push((
                key.jwk().clone(),
                retired_at.map(|r| r + a.token_lifetime_secs + a.leeway_secs),
            ));
        }
        let mut issuers = HashMap::new();
        issuers.insert(
            base_url.clone(),
            verify::Issuer {
                algorithms: keys::ASYMMETRIC.to_vec(),
                keys: CachedJwks::fixed(own),
            },
        );
        for i in &a.issuers {
            issuers.insert(
                i.issuer.clone(),
                verify::Issuer {
                    algorithms: alg_list(&i.algorithms),
                    keys: CachedJwks::new(i.jwks.source(), http.clone(), interval),
                },
            );
        }
        let audiences = vec![base_url.clone(), format!("{base_url}/fhir")];
        let verifier = verify::Verifier::new(issuers, audiences, a.leeway_secs);

        let clients = a
            .clients
            .iter()
            .map(|c| {
                (
                    c.client_id.clone(),
                    authz::Client {
                        scopes: scope::Scopes::new(c.scopes.iter().cloned()),
                        algorithms: alg_list(&c.algorithms),
                        keys: CachedJwks::new(c.jwks.source(), http.clone(), interval),
                    },
                )
            })
            .collect();
        let active = signing.into_iter().next().expect("one key at least").0;
        let authz = authz::AuthorizationServer {
            issuer: base_url.clone(),
            audience: base_url.clone(),
            token_url: format!("{base_url}/auth/token"),
            lifetime: a.token_lifetime_secs,
            leeway: a.leeway_secs,
            signing_key: active,
            clients,
        };
        Ok(Auth {
            verifier,
            authz,
            published,
            base_url,
        })
    }

    /// `/.well-known/jwks.json`: the active key and retired keys whose tokens may still live.
    pub fn jwks(&self) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        let keys: Vec<&Value> = self
            .published
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| now <= u))
            .map(|(k, _)| k)
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// `/fhir/.well-known/smart-configuration`.
    pub fn smart_configuration(&self) -> Value {
        serde_json::json!({
            "issuer": self.base_url,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.base_url),
            "token_endpoint": self.authz.token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384", "RS256", "ES256"],
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": [
                "system/*.cruds", "system/*.rs", "system/*.read", "system/*.write",
                "system/RegistryRecord.cruds", "system/Metrics.r"
            ],
            "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
        })
    }
}
