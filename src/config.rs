//! Configuration of `engraft serve`: one TOML file (see `engraft.example.toml`), then
//! environment overrides `ENGRAFT__<SECTION>__<KEY>` (for example
//! `ENGRAFT__SERVER__BIND=0.0.0.0:8080`), on top of embedded defaults. Unknown keys are errors,
//! so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    /// Where Engraft sends data (EHRs, registries), each with how it authenticates there.
    pub destinations: Vec<DestinationConfig>,
}

impl Config {
    /// The destinations every accepted record version is queued for (see
    /// [`DestinationConfig::queues_every_record`]).
    pub fn queued_destinations(&self) -> Vec<String> {
        self.destinations
            .iter()
            .filter(|d| d.queues_every_record())
            .map(|d| d.name.clone())
            .collect()
    }
}

/// A destination: an EHR or registry FHIR server Engraft calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    pub name: String,
    /// Its FHIR base URL (for a registry: the API root; FHIR is under `registry.fhir_path`).
    pub base_url: String,
    /// An EHR (the default) or an outcome registry (then `[destinations.registry]` says how).
    #[serde(default)]
    pub kind: DestinationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryConfig>,
    pub auth: DestinationAuth,
    /// Deliveries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Extra deliveries let in flight while requests wait on answers far slower than this
    /// destination's usual ones (default: `concurrency`; 0: never more than `concurrency`).
    /// Slow requests are never abandoned or re-sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_spare_slots: Option<usize>,
    /// Attempts before a delivery is `failed` (a permanent error fails at once).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i64,
    /// Backoff: full jitter over `backoff_base_ms * 2^attempt`, capped at `backoff_max_secs`.
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    #[serde(default = "default_backoff_max_secs")]
    pub backoff_max_secs: u64,
    /// Timeout of one request to the destination.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Consecutive transient failures that open the circuit breaker...
    #[serde(default = "default_circuit_failures")]
    pub circuit_failures: u32,
    /// ...for this many seconds; then one delivery probes.
    #[serde(default = "default_circuit_open_secs")]
    pub circuit_open_secs: u64,
    /// Largest transaction Bundle sent; a record with more entries goes in several, in
    /// dependency order (references to earlier ones rewritten to the ids the server gave).
    /// Default 500, and 50 for a registry (CIBMTR's limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<usize>,
    /// Requests per second to this destination, at most (0: no limit).
    #[serde(default)]
    pub rate_limit_per_sec: u32,
    /// Overrides of what the CapabilityStatement says (unset: detected from
    /// `GET <base_url>/metadata` on the first delivery).
    #[serde(default)]
    pub transactions: Option<bool>,
    #[serde(default)]
    pub conditional_update: Option<bool>,
    #[serde(default)]
    pub if_match: Option<bool>,
    /// The hospital's MRN identifier system. When set, a record's Patient is first looked for
    /// at the destination by this identifier: one match is used (never overwritten), two are
    /// an error, none follows `unmatched_patient`.
    #[serde(default)]
    pub patient_identifier_system: Option<String>,
    #[serde(default)]
    pub unmatched_patient: UnmatchedPatient,
    /// What a withdrawn-consent record does at this destination.
    #[serde(default)]
    pub on_withdrawal: OnWithdrawal,
    /// Pull every this many seconds (0: only `engraft sync pull`).
    #[serde(default)]
    pub pull_interval_secs: u64,
    /// The resource types sent there (unset: every type Engraft maps). It must hold
    /// `Patient`; references to the types left out are taken out of what is sent.
    #[serde(default)]
    pub resource_types: Option<Vec<String>>,
    /// Whether resources are sent with Engraft's profile claims (`meta.profile`): `keep` (the
    /// default) or `drop`, for servers that refuse profiles they do not know.
    #[serde(default)]
    pub profiles: ProfileClaims,
    /// Code-system URIs the destination knows by another name, Engraft's URI -> its URI
    /// (for example SNOMED CT by OID); replaced in every coding and quantity sent there.
    #[serde(default)]
    pub code_systems: std::collections::BTreeMap<String, String>,
    /// A PEM file of CA certificates trusted for this destination (and its token endpoint)
    /// besides the built-in Mozilla roots: for servers behind a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
}

/// Whether Engraft's profile claims are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileClaims {
    #[default]
    Keep,
    Drop,
}

/// When no Patient at the destination has the record's MRN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnmatchedPatient {
    /// Create the Patient there.
    #[default]
    Create,
    /// Hold the record as `failed` with reason `unmatched` until a person links or creates
    /// the Patient in the EHR and replays it.
    Hold,
}

/// What a consent withdrawal does at a destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnWithdrawal {
    /// Stop syncing the record; what was sent stays.
    #[default]
    Stop,
    /// Delete every resource Engraft created there for the record.
    Delete,
}

/// What a destination is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationKind {
    /// A hospital EHR: kept in sync (push, pull, conflicts, patient matching).
    #[default]
    Ehr,
    /// An outcome registry: records are submitted to it (CRID registration, de-identified
    /// Patient, centre security tag, no conditional operations).
    Registry,
}

/// How records are submitted to a registry destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The registry's workflow profile (only `cibmtr`: the Direct FHIR connection guide).
    #[serde(default)]
    pub workflow: RegistryWorkflow,
    /// The centre's CIBMTR Center Number (5 digits); every resource carries the security tag
    /// `rc_<ccn>`.
    pub ccn: String,
    /// System of the centre security tag (the registry's documents disagree: the connection
    /// guide uses this default, the IG's profiles `http://terminology.cibmtr.org/codesystem/transplant-center`).
    #[serde(default = "default_security_system")]
    pub security_system: String,
    /// System of the CRID identifier (likewise; the IG uses `http://terminology.cibmtr.org/identifier/CRID`).
    #[serde(default = "default_crid_system")]
    pub crid_system: String,
    /// How a patient's CRID is obtained: `crid-api` (`PUT <base_url>/CRID`, CIBMTR JSON) or
    /// `crid-assignment` (`POST <fhir>/Patient/$crid-assignment`, FHIR Parameters).
    #[serde(default)]
    pub crid_registration: CridRegistration,
    /// Where FHIR lives under `base_url`; transactions are POSTed there (never to `/Bundle`,
    /// which only stores them).
    #[serde(default = "default_fhir_path")]
    pub fhir_path: String,
    /// `manual` (the default): only `engraft submit` / `POST /registry/submissions` send
    /// records; `auto`: every accepted record version is queued like an EHR delivery.
    #[serde(default)]
    pub submit: SubmitMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistryWorkflow {
    #[default]
    Cibmtr,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CridRegistration {
    #[default]
    CridApi,
    CridAssignment,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubmitMode {
    #[default]
    Manual,
    Auto,
}

fn default_security_system() -> String {
    "http://cibmtr.org/codesystem/transplant-center".into()
}
fn default_crid_system() -> String {
    "http://cibmtr.org/identifier/CRID".into()
}
fn default_fhir_path() -> String {
    "r4".into()
}

fn default_circuit_failures() -> u32 {
    5
}
fn default_circuit_open_secs() -> u64 {
    30
}

fn default_concurrency() -> usize {
    4
}
fn default_max_attempts() -> i64 {
    10
}
fn default_backoff_base_ms() -> u64 {
    500
}
fn default_backoff_max_secs() -> u64 {
    300
}
/// The longest a destination's request may take.
const MAX_TIMEOUT_SECS: u64 = 3600;

fn default_timeout_secs() -> u64 {
    30
}

/// How Engraft gets tokens for a destination. Secrets are `{ env = "VAR" }` or
/// `{ file = "path" }`, never inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DestinationAuth {
    /// No token (a sandbox, or a server behind a trusted network boundary).
    None {},
    /// SMART Backend Services: a client assertion signed with Engraft's key for this EHR.
    SmartBackendServices {
        client_id: String,
        /// Default: discovered from `<base_url>/.well-known/smart-configuration`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_url: Option<String>,
        scope: String,
        private_key: crate::auth::secret::SecretSource,
        kid: String,
        /// RS384 or ES384.
        alg: String,
        #[serde(default = "default_margin")]
        refresh_margin_secs: u64,
    },
    /// `client_credentials` with HTTP Basic client authentication.
    ClientSecretBasic {
        client_id: String,
        token_url: String,
        scope: String,
        client_secret: crate::auth::secret::SecretSource,
        #[serde(default = "default_margin")]
        refresh_margin_secs: u64,
    },
    /// The password grant with HTTP Basic client authentication (CIBMTR's Okta flow).
    Password {
        client_id: String,
        token_url: String,
        scope: String,
        client_secret: crate::auth::secret::SecretSource,
        username: String,
        password: crate::auth::secret::SecretSource,
        #[serde(default = "default_margin")]
        refresh_margin_secs: u64,
    },
}

fn default_margin() -> u64 {
    60
}

impl DestinationConfig {
    /// What is wrong with `resource_types`, `profiles` and `code_systems`.
    fn shape_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let shaped = self.resource_types.is_some()
            || self.profiles != ProfileClaims::Keep
            || !self.code_systems.is_empty();
        if self.kind == DestinationKind::Registry && shaped {
            out.push(format!(
                "destinations.{}: resource_types, profiles and code_systems are for EHR destinations (a registry is sent what its workflow defines)",
                self.name
            ));
        }
        if let Some(types) = &self.resource_types {
            for t in types {
                if !crate::mapping::RESOURCE_TYPES.contains(&t.as_str()) {
                    out.push(format!(
                        "destinations.{}.resource_types: {t:?} is not a type Engraft sends (one of {})",
                        self.name,
                        crate::mapping::RESOURCE_TYPES.join(", ")
                    ));
                }
            }
            if !types.iter().any(|t| t == "Patient") {
                out.push(format!(
                    "destinations.{}.resource_types: must hold \"Patient\" (every resource refers to it)",
                    self.name
                ));
            }
        }
        for (ours, theirs) in &self.code_systems {
            if ours.is_empty() || theirs.is_empty() || theirs.chars().any(char::is_whitespace) {
                out.push(format!(
                    "destinations.{}.code_systems: {ours:?} = {theirs:?}: both must be code-system URIs",
                    self.name
                ));
            }
        }
        out
    }

    /// How Bundles are shaped for this destination.
    pub fn shape(&self) -> crate::sync::shape::Shape {
        crate::sync::shape::Shape {
            types: self
                .resource_types
                .as_ref()
                .map(|t| t.iter().cloned().collect()),
            drop_profiles: self.profiles == ProfileClaims::Drop,
            systems: self
                .code_systems
                .iter()
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect(),
        }
    }

    /// The extra CA certificates of `ca_bundle`, read and parsed (none without it).
    pub fn ca_certificates(&self) -> Result<Vec<reqwest::Certificate>, String> {
        let Some(path) = &self.ca_bundle else {
            return Ok(Vec::new());
        };
        let key = format!("destinations.{}.ca_bundle", self.name);
        let pem = std::fs::read(path).map_err(|e| format!("{key}: cannot read {path}: {e}"))?;
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certs) if !certs.is_empty() => Ok(certs),
            _ => Err(format!("{key}: {path} holds no PEM certificate")),
        }
    }

    /// The HTTP client for this destination and its token endpoint: `timeout` per request,
    /// the built-in roots plus `ca_bundle`.
    pub fn http_client(&self, timeout: std::time::Duration) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        for cert in self.ca_certificates()? {
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build()
            .map_err(|e| format!("destinations.{}: HTTP client: {e}", self.name))
    }

    /// Largest transaction Bundle: as configured, else 500 (50 for a registry).
    pub fn max_entries(&self) -> usize {
        self.max_entries
            .unwrap_or(match self.kind {
                DestinationKind::Ehr => 500,
                DestinationKind::Registry => 50,
            })
            .max(1)
    }

    /// Whether every accepted record version is queued for this destination (EHRs and
    /// `submit = "auto"` registries) rather than sent only when submitted.
    pub fn queues_every_record(&self) -> bool {
        self.registry
            .as_ref()
            .is_none_or(|r| r.submit == SubmitMode::Auto)
    }

    /// The destination's token provider, with its secrets loaded. The error names the key.
    pub fn token_provider(
        &self,
        http: reqwest::Client,
    ) -> Result<Option<crate::auth::outbound::TokenProvider>, String> {
        use crate::auth::keys::{parse_alg, SigningKey};
        use crate::auth::outbound::{Grant, TokenProvider, TokenUrl};
        let n = &self.name;
        let (url, grant, scope, margin) = match &self.auth {
            DestinationAuth::None {} => return Ok(None),
            DestinationAuth::SmartBackendServices {
                client_id,
                token_url,
                scope,
                private_key,
                kid,
                alg,
                refresh_margin_secs,
            } => {
                let alg = parse_alg(alg).ok_or_else(|| {
                    format!("destinations.{n}.auth.alg: not RS256, RS384, ES256 or ES384")
                })?;
                let pem = private_key
                    .load()
                    .map_err(|e| format!("destinations.{n}.auth.private_key: {e}"))?;
                let key = SigningKey::from_pem(kid, alg, &pem)
                    .map_err(|e| format!("destinations.{n}.auth.private_key: {e}"))?;
                let url = match token_url {
                    Some(u) => TokenUrl::Fixed(u.clone()),
                    None => TokenUrl::Discover {
                        fhir_base: self.base_url.clone(),
                    },
                };
                let grant = Grant::SmartBackend {
                    client_id: client_id.clone(),
                    key,
                };
                (url, grant, scope, *refresh_margin_secs)
            }
            DestinationAuth::ClientSecretBasic {
                client_id,
                token_url,
                scope,
                client_secret,
                refresh_margin_secs,
            } => {
                let secret = client_secret
                    .load()
                    .map_err(|e| format!("destinations.{n}.auth.client_secret: {e}"))?;
                let grant = Grant::ClientSecretBasic {
                    client_id: client_id.clone(),
                    secret,
                };
                (
                    TokenUrl::Fixed(token_url.clone()),
                    grant,
                    scope,
                    *refresh_margin_secs,
                )
            }
            DestinationAuth::Password {
                client_id,
                token_url,
                scope,
                client_secret,
                username,
                password,
                refresh_margin_secs,
            } => {
                let grant = Grant::Password {
                    client_id: client_id.clone(),
                    client_secret: client_secret
                        .load()
                        .map_err(|e| format!("destinations.{n}.auth.client_secret: {e}"))?,
                    username: username.clone(),
                    password: password
                        .load()
                        .map_err(|e| format!("destinations.{n}.auth.password: {e}"))?,
                };
                (
                    TokenUrl::Fixed(token_url.clone()),
                    grant,
                    scope,
                    *refresh_margin_secs,
                )
            }
        };
        Ok(Some(TokenProvider::new(
            http,
            url,
            grant,
            scope,
            std::time::Duration::from_secs(margin),
        )))
    }

    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let insecure = |u: &str| !crate::auth::jwks::is_secure_url(u);
        if insecure(&self.base_url) {
            out.push(format!(
                "destinations.{}.base_url: must be https (plain http only to a loopback address)",
                self.name
            ));
        }
        let token_url = match &self.auth {
            DestinationAuth::None {} => None,
            DestinationAuth::SmartBackendServices { token_url, .. } => token_url.as_deref(),
            DestinationAuth::ClientSecretBasic { token_url, .. }
            | DestinationAuth::Password { token_url, .. } => Some(token_url.as_str()),
        };
        if token_url.is_some_and(insecure) {
            out.push(format!("destinations.{}.auth.token_url: must be https (plain http only to a loopback address)", self.name));
        }
        if let Err(e) = self.token_provider(reqwest::Client::new()) {
            out.push(e);
        }
        if let Err(e) = self.ca_certificates() {
            out.push(e);
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            out.push(format!(
                "destinations.{}.concurrency: must be 1 to 64",
                self.name
            ));
        }
        if self.max_entries == Some(0) {
            out.push(format!(
                "destinations.{}.max_entries: must be at least 1",
                self.name
            ));
        }
        match (self.kind, &self.registry) {
            (DestinationKind::Registry, None) => out.push(format!(
                "destinations.{}: kind = \"registry\" needs a [destinations.registry] table",
                self.name
            )),
            (DestinationKind::Ehr, Some(_)) => out.push(format!(
                "destinations.{}.registry: only for kind = \"registry\"",
                self.name
            )),
            (DestinationKind::Registry, Some(r)) => {
                if r.ccn.len() != 5 || !r.ccn.bytes().all(|b| b.is_ascii_digit()) {
                    out.push(format!(
                        "destinations.{}.registry.ccn: must be the 5-digit centre number (the tag rc_<ccn> must match ^rc_[0-9]{{5}}$)",
                        self.name
                    ));
                }
                if self.on_withdrawal == OnWithdrawal::Delete {
                    out.push(format!(
                        "destinations.{}.on_withdrawal: a registry takes no deletes; use \"stop\"",
                        self.name
                    ));
                }
                if self.transactions == Some(false)
                    || self.conditional_update == Some(true)
                    || self.patient_identifier_system.is_some()
                {
                    out.push(format!(
                        "destinations.{}: a registry takes transactions and no conditional operations, and its patients are found by CRID; drop transactions, conditional_update and patient_identifier_system",
                        self.name
                    ));
                }
            }
            (DestinationKind::Ehr, None) => {}
        }
        out.extend(self.shape_problems());
        if self.max_attempts < 1 || self.timeout_secs == 0 || self.backoff_base_ms == 0 {
            out.push(format!("destinations.{}: max_attempts, timeout_secs and backoff_base_ms must be at least 1", self.name));
        }
        // A delivery's lease is twice the timeout (`sync::push::lease_secs`): an hour per
        // request keeps a crashed worker's rows from waiting more than about two.
        if self.timeout_secs > MAX_TIMEOUT_SECS {
            out.push(format!(
                "destinations.{}.timeout_secs: must be at most {MAX_TIMEOUT_SECS} (one hour per request)",
                self.name
            ));
        }
        out
    }
}

/// Inbound authentication and the built-in authorization server (see README "Authorization").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Engraft's base URL as clients address it (default `http://<server.bind>`). Access
    /// tokens must carry it (or it with `/fhir`) as `aud`; the token endpoint is
    /// `<base_url>/auth/token` and client assertions must carry that as `aud`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// An unknown `kid` refetches its issuer's JWKS at most once per this many seconds.
    pub jwks_refresh_interval_secs: u64,
    /// Timeout of a JWKS fetch, in seconds.
    pub jwks_timeout_secs: u64,
    /// Lifetime of the access tokens the built-in token endpoint issues, in seconds.
    pub token_lifetime_secs: u64,
    /// Engraft's signing keys (PKCS#8 PEM from `engraft keygen`): the first signs; the others
    /// are retired and stay published until tokens they signed have expired. None: an
    /// ephemeral key per process (tokens do not survive a restart nor work across instances).
    pub signing_keys: Vec<SigningKeyConfig>,
    /// External authorization servers whose tokens are accepted.
    pub issuers: Vec<IssuerConfig>,
    /// Clients of the built-in token endpoint (SMART Backend Services).
    pub clients: Vec<ClientConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            base_url: None,
            leeway_secs: 30,
            jwks_refresh_interval_secs: 60,
            jwks_timeout_secs: 5,
            token_lifetime_secs: 300,
            signing_keys: Vec::new(),
            issuers: Vec::new(),
            clients: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    pub kid: String,
    /// RS384 or ES384 (RS256 and ES256 also work).
    pub alg: String,
    /// The private key file (mode 0600).
    pub file: std::path::PathBuf,
    /// For a retired key: when it stopped signing (RFC 3339). Without it, a retired key counts
    /// as retired when the process starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
}

/// A JWK Set: a location (`https://...`, or a file path) or the set inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JwksConfig {
    Location(String),
    Inline(toml::Table),
}

impl JwksConfig {
    pub fn source(&self) -> crate::auth::jwks::JwksSource {
        match self {
            JwksConfig::Location(s) => crate::auth::jwks::JwksSource::parse(s),
            JwksConfig::Inline(t) => crate::auth::jwks::JwksSource::Inline(
                serde_json::to_value(t).unwrap_or(serde_json::Value::Null),
            ),
        }
    }
}

fn default_algorithms() -> Vec<String> {
    vec!["RS384".into(), "ES384".into()]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` its tokens carry.
    pub issuer: String,
    pub jwks: JwksConfig,
    /// Accepted signature algorithms (RS256, RS384, ES256, ES384).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    /// The client's public keys, which verify its assertions.
    pub jwks: JwksConfig,
    /// The scopes it may be granted (`system/*.rs`, `system/RegistryRecord.cruds`...).
    pub scopes: Vec<String>,
    /// Algorithms its assertions may use.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://FILE` (created, WAL, migrated at start) or `postgres://user@host/db`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://engraft.db".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: String,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Largest request body accepted, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Most records one POST /registry/records may carry (more: 413).
    pub max_batch: usize,
    /// Largest `_count` a search may ask for (more: 400).
    pub max_count: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter (`info`, `engraft=debug,actix_web=info`...).
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            max_body_bytes: 8 * 1024 * 1024,
            shutdown_timeout_secs: 30,
            max_batch: 100,
            max_count: 1000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// Why a configuration cannot be used. Each names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{var}: {message}")]
    Env { var: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// A PostgreSQL URL read as the driver reads it, so a bad option (`sslmode=on`) is reported by
/// `engraft config check` and at start, not at the first connection; and the certificate
/// files it names (`sslrootcert`, `sslcert`, `sslkey`) readable. Messages name the option and
/// the file, never the URL (it may hold a password).
fn postgres_url_problems(url: &str) -> Vec<ConfigError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Vec::new();
    }
    let invalid = |message: String| ConfigError::Invalid {
        key: "store.url",
        message,
    };
    let mut out = Vec::new();
    if let Err(e) = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url) {
        out.push(invalid(format!("not a usable PostgreSQL URL: {e}")));
    }
    if let Ok(parsed) = reqwest::Url::parse(url) {
        for (option, value) in parsed.query_pairs() {
            let names_a_file = matches!(
                option.as_ref(),
                "sslrootcert"
                    | "ssl-root-cert"
                    | "ssl-ca"
                    | "sslcert"
                    | "ssl-cert"
                    | "sslkey"
                    | "ssl-key"
            );
            if names_a_file && std::fs::File::open(value.as_ref()).is_err() {
                out.push(invalid(format!("{option}: cannot read {value}")));
            }
        }
    }
    out
}

impl Config {
    /// Defaults, then `file` (if given), then `ENGRAFT__*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut table = toml::Table::new();
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                vec![ConfigError::File {
                    path: shown.clone(),
                    message: e.to_string(),
                }]
            })?;
            table = text.parse::<toml::Table>().map_err(|e| {
                vec![ConfigError::File {
                    path: shown.clone(),
                    message: e.message().to_string(),
                }]
            })?;
        }
        let mut errors = Vec::new();
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ENGRAFT__"))
            .collect();
        vars.sort();
        for (var, value) in vars {
            let path: Vec<String> = var["ENGRAFT__".len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            if path.len() != 2 || path.iter().any(String::is_empty) {
                errors.push(ConfigError::Env {
                    var,
                    message: "expected ENGRAFT__<SECTION>__<KEY>".into(),
                });
                continue;
            }
            let section = table
                .entry(path[0].clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match section.as_table_mut() {
                Some(t) => {
                    t.insert(path[1].clone(), scalar(&value));
                }
                None => errors.push(ConfigError::Env {
                    var,
                    message: format!("{} is not a section", path[0]),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let source = file
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "environment".into());
                vec![ConfigError::File {
                    path: format!("{source}: {}", e.path()),
                    message: e.inner().message().to_string(),
                }]
            })?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Everything wrong with values that parse.
    pub fn problems(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        if self.server.bind.parse::<SocketAddr>().is_err() {
            out.push(ConfigError::Invalid {
                key: "server.bind",
                message: "expected an address and port such as 127.0.0.1:8080".into(),
            });
        }
        if self.server.max_body_bytes < 1024 {
            out.push(ConfigError::Invalid {
                key: "server.max_body_bytes",
                message: "must be at least 1024".into(),
            });
        }
        if self.server.workers > 256 {
            out.push(ConfigError::Invalid {
                key: "server.workers",
                message: "must be 0 (one per core) to 256".into(),
            });
        }
        if !(self.store.url.starts_with("sqlite://")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            out.push(ConfigError::Invalid {
                key: "store.url",
                message: "expected sqlite://FILE or postgres://...".into(),
            });
        }
        out.extend(postgres_url_problems(&self.store.url));
        if self.server.max_batch == 0 || self.server.max_count == 0 {
            out.push(ConfigError::Invalid {
                key: "server.max_batch/max_count",
                message: "must be at least 1".into(),
            });
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            out.push(ConfigError::Invalid {
                key: "log.format",
                message: "must be text or json".into(),
            });
        }
        out.extend(self.auth_problems());
        let mut names = std::collections::HashSet::new();
        for d in &self.destinations {
            if d.name.is_empty() || !names.insert(&d.name) {
                out.push(ConfigError::Invalid {
                    key: "destinations.name",
                    message: format!("{:?} is empty or used twice", d.name),
                });
            }
            for message in d.problems() {
                out.push(ConfigError::Invalid {
                    key: "destinations",
                    message: message.trim_start_matches("destinations.").to_string(),
                });
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            out.push(ConfigError::Invalid {
                key: "log.level",
                message: "not a tracing filter (try info or engraft=debug)".into(),
            });
        }
        out
    }
}

impl Config {
    /// Engraft's base URL: `auth.base_url`, else `http://<server.bind>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.auth
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.bind))
            .trim_end_matches('/')
            .to_string()
    }

    fn auth_problems(&self) -> Vec<ConfigError> {
        use crate::auth::keys::parse_alg;
        let mut out = Vec::new();
        let mut bad =
            |key: &'static str, message: String| out.push(ConfigError::Invalid { key, message });
        if let Some(b) = &self.auth.base_url {
            if !(b.starts_with("https://") || b.starts_with("http://")) {
                bad("auth.base_url", "expected an http(s) URL".into());
            }
        }
        if self.auth.token_lifetime_secs == 0 || self.auth.token_lifetime_secs > 3600 {
            bad("auth.token_lifetime_secs", "must be 1 to 3600".into());
        }
        if self.auth.leeway_secs > 300 {
            bad("auth.leeway_secs", "must be at most 300".into());
        }
        if self.auth.jwks_timeout_secs == 0 {
            bad("auth.jwks_timeout_secs", "must be at least 1".into());
        }
        let mut kids = std::collections::HashSet::new();
        for k in &self.auth.signing_keys {
            if parse_alg(&k.alg).is_none() {
                bad(
                    "auth.signing_keys.alg",
                    format!("{}: {} is not RS256, RS384, ES256 or ES384", k.kid, k.alg),
                );
            }
            if !kids.insert(&k.kid) || k.kid.is_empty() {
                bad(
                    "auth.signing_keys.kid",
                    format!("{:?} is empty or used twice", k.kid),
                );
            }
            if !k.file.is_file() {
                bad(
                    "auth.signing_keys.file",
                    format!("{}: {} does not exist", k.kid, k.file.display()),
                );
            }
            if let Some(r) = &k.retired_at {
                if chrono::DateTime::parse_from_rfc3339(r).is_err() {
                    bad(
                        "auth.signing_keys.retired_at",
                        format!("{}: not an RFC 3339 instant", k.kid),
                    );
                }
            }
        }
        let algs = |list: &[String]| {
            list.iter()
                .filter(|a| parse_alg(a).is_none())
                .cloned()
                .collect::<Vec<_>>()
        };
        for i in &self.auth.issuers {
            let wrong = algs(&i.algorithms);
            if !wrong.is_empty() || i.algorithms.is_empty() {
                bad(
                    "auth.issuers.algorithms",
                    format!(
                        "{}: only RS256, RS384, ES256, ES384 (not {})",
                        i.issuer,
                        wrong.join(", ")
                    ),
                );
            }
            if let Some(p) = i.jwks.source().problem() {
                bad("auth.issuers.jwks", format!("{}: {p}", i.issuer));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.auth.clients {
            if !ids.insert(&c.client_id) || c.client_id.is_empty() {
                bad(
                    "auth.clients.client_id",
                    format!("{:?} is empty or used twice", c.client_id),
                );
            }
            let wrong = algs(&c.algorithms);
            if !wrong.is_empty() || c.algorithms.is_empty() {
                bad(
                    "auth.clients.algorithms",
                    format!(
                        "{}: only RS256, RS384, ES256, ES384 (not {})",
                        c.client_id,
                        wrong.join(", ")
                    ),
                );
            }
            if let Some(p) = c.jwks.source().problem() {
                bad("auth.clients.jwks", format!("{}: {p}", c.client_id));
            }
            for s in &c.scopes {
                if crate::auth::scope::parse(s).is_err() {
                    bad(
                        "auth.clients.scopes",
                        format!("{}: {s} is not a system scope Engraft grants", c.client_id),
                    );
                }
            }
        }
        out
    }
}

/// An environment value as TOML: integers and booleans typed, anything else a string.
fn scalar(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.bind, "127.0.0.1:8080");
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("engraft.example.toml");
        assert_eq!(
            Config::load(Some(&path), env(&[])).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[server]\nbind = \"127.0.0.1:9000\"\nworkers = 2\n").unwrap();
        let c = Config::load(
            Some(&f),
            env(&[
                ("ENGRAFT__SERVER__BIND", "0.0.0.0:7000"),
                ("ENGRAFT__LOG__FORMAT", "json"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.bind, "0.0.0.0:7000");
        assert_eq!(c.server.workers, 2);
        assert_eq!(c.log.format, "json");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let errs = Config::load(
            None,
            env(&[
                ("ENGRAFT__SERVER__BIND", "localhost"),
                ("ENGRAFT__LOG__FORMAT", "xml"),
                ("ENGRAFT__SERVER__MAX_BODY_BYTES", "10"),
            ]),
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].starts_with("server.bind: "));
        assert!(text[1].starts_with("server.max_body_bytes: "));
        assert!(text[2].starts_with("log.format: "));
    }

    #[test]
    fn destinations_name_each_missing_secret_and_insecure_url() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            r#"
[[destinations]]
name = "cibmtr"
base_url = "http://registry.example/fhir"
[destinations.auth]
method = "password"
client_id = "app"
token_url = "https://idp.example/oauth2/token"
scope = "system/*.cru"
client_secret = { env = "ENGRAFT_TEST_UNSET_SECRET" }
username = "centre"
password = { file = "/nonexistent/password" }
[[destinations]]
name = "ehr"
base_url = "https://ehr.example/fhir"
[destinations.auth]
method = "smart-backend-services"
client_id = "engraft"
scope = "system/Patient.cru"
private_key = { file = "/nonexistent/key.pem" }
kid = "k"
alg = "RS384"
"#,
        )
        .unwrap();
        let errs = Config::load(Some(&f), env(&[])).unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].contains("cibmtr.base_url: must be https"),
            "{}",
            text[0]
        );
        assert!(
            text[1].contains(
                "cibmtr.auth.client_secret: environment variable ENGRAFT_TEST_UNSET_SECRET"
            ),
            "{}",
            text[1]
        );
        assert!(
            text[2].contains("ehr.auth.private_key: cannot read /nonexistent/key.pem"),
            "{}",
            text[2]
        );
    }

    #[test]
    fn a_destination_timeout_is_at_least_a_second_and_at_most_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let dest = |name: &str, timeout: u64| {
            format!("[[destinations]]\nname = \"{name}\"\nbase_url = \"https://ehr.example/fhir\"\ntimeout_secs = {timeout}\n[destinations.auth]\nmethod = \"none\"\n")
        };
        std::fs::write(
            &f,
            [
                dest("zero", 0),
                dest("hour", 3600),
                dest("forever", 1_000_000_000_000),
            ]
            .concat(),
        )
        .unwrap();
        let errs = Config::load(Some(&f), env(&[])).unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "destinations: zero: max_attempts, timeout_secs and backoff_base_ms must be at least 1",
                "destinations: forever.timeout_secs: must be at most 3600 (one hour per request)",
            ]
        );
    }

    #[test]
    fn resource_types_and_code_systems_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[[destinations]]\nname = \"ehr\"\nbase_url = \"https://ehr.example\"\n\
             resource_types = [\"Condition\", \"Specimen\"]\nprofiles = \"drop\"\n\
             code_systems = { \"http://snomed.info/sct\" = \"\" }\n[destinations.auth]\nmethod = \"none\"\n",
        )
        .unwrap();
        let errs = Config::load(Some(&f), env(&[])).unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].contains("ehr.resource_types: \"Specimen\" is not a type Engraft sends"));
        assert!(text[1].contains("ehr.resource_types: must hold \"Patient\""));
        assert!(text[2].contains("ehr.code_systems: \"http://snomed.info/sct\""));
        std::fs::write(
            &f,
            "[[destinations]]\nname = \"ehr\"\nbase_url = \"https://ehr.example\"\n\
             resource_types = [\"Patient\", \"Observation\"]\nprofiles = \"drop\"\n\
             code_systems = { \"http://snomed.info/sct\" = \"urn:oid:2.16.840.1.113883.6.96\" }\n[destinations.auth]\nmethod = \"none\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&f), env(&[])).unwrap();
        let shape = c.destinations[0].shape();
        assert!(shape.drop_profiles && shape.types.unwrap().len() == 2);
        assert_eq!(
            shape.systems["http://snomed.info/sct"],
            "urn:oid:2.16.840.1.113883.6.96"
        );
    }

    #[test]
    fn a_postgres_url_is_read_as_the_driver_reads_it() {
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls/test-ca.pem");
        let check = |url: String| -> Vec<String> {
            match Config::load(None, env(&[("ENGRAFT__STORE__URL", &url)])) {
                Ok(_) => Vec::new(),
                Err(errs) => errs.iter().map(ToString::to_string).collect(),
            }
        };
        let base = "postgres://engraft:s3cret@db.example:5432/engraft";
        assert_eq!(
            check(format!(
                "{base}?sslmode=verify-full&sslrootcert={}",
                ca.display()
            )),
            Vec::<String>::new()
        );
        assert_eq!(
            check(format!("{base}?sslmode=require")),
            Vec::<String>::new()
        );
        let bad_mode = check(format!("{base}?sslmode=sometimes"));
        assert_eq!(bad_mode.len(), 1, "{bad_mode:?}");
        assert!(
            bad_mode[0].starts_with("store.url: not a usable PostgreSQL URL"),
            "{bad_mode:?}"
        );
        let missing = check(format!(
            "{base}?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem&sslcert={}",
            ca.display()
        ));
        assert_eq!(
            missing,
            vec!["store.url: sslrootcert: cannot read /nonexistent/ca.pem".to_string()]
        );
        for message in bad_mode.iter().chain(&missing) {
            assert!(
                !message.contains("s3cret"),
                "the password leaked: {message}"
            );
        }
    }

    #[test]
    fn a_ca_bundle_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls/test-ca.pem");
        let f = dir.path().join("c.toml");
        let dest = |name: &str, bundle: &Path| {
            format!(
                "[[destinations]]\nname = \"{name}\"\nbase_url = \"https://ehr.example\"\nca_bundle = {:?}\n[destinations.auth]\nmethod = \"none\"\n",
                bundle.display().to_string()
            )
        };
        std::fs::write(
            &f,
            [
                dest("missing", &dir.path().join("nope.pem")),
                dest("garbage", &garbage),
                dest("good", &ca),
            ]
            .concat(),
        )
        .unwrap();
        let errs = Config::load(Some(&f), env(&[])).unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].contains("missing.ca_bundle: cannot read"),
            "{}",
            text[0]
        );
        assert!(
            text[1].contains("garbage.ca_bundle:") && text[1].contains("no PEM"),
            "{}",
            text[1]
        );
        std::fs::write(&f, dest("good", &ca)).unwrap();
        let c = Config::load(Some(&f), env(&[])).unwrap();
        assert_eq!(c.destinations[0].ca_certificates().unwrap().len(), 1);
        assert!(c.destinations[0]
            .http_client(std::time::Duration::from_secs(1))
            .is_ok());
    }

    #[test]
    fn registry_destinations_are_checked_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            r#"
[[destinations]]
name = "bad-ccn"
kind = "registry"
base_url = "https://registry.example"
on_withdrawal = "delete"
conditional_update = true
[destinations.registry]
ccn = "1234x"
[destinations.auth]
method = "none"
[[destinations]]
name = "no-table"
kind = "registry"
base_url = "https://registry.example"
[destinations.auth]
method = "none"
[[destinations]]
name = "ehr-with-table"
base_url = "https://ehr.example"
[destinations.registry]
ccn = "12345"
[destinations.auth]
method = "none"
[[destinations]]
name = "good"
kind = "registry"
base_url = "https://registry.example"
[destinations.registry]
ccn = "12345"
crid_registration = "crid-assignment"
[destinations.auth]
method = "none"
"#,
        )
        .unwrap();
        let errs = Config::load(Some(&f), env(&[])).unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 5, "{text:?}");
        assert!(
            text[0].contains("bad-ccn.registry.ccn: must be the 5-digit"),
            "{}",
            text[0]
        );
        assert!(text[1].contains("bad-ccn.on_withdrawal"), "{}", text[1]);
        assert!(
            text[2].contains("bad-ccn: a registry takes transactions"),
            "{}",
            text[2]
        );
        assert!(
            text[3].contains("no-table: kind = \"registry\" needs"),
            "{}",
            text[3]
        );
        assert!(
            text[4].contains("ehr-with-table.registry: only for"),
            "{}",
            text[4]
        );

        // The good one alone loads, with the registry's defaults.
        let good = std::fs::read_to_string(&f).unwrap();
        let good = &good[good.find("[[destinations]]\nname = \"good\"").unwrap()..];
        std::fs::write(&f, good).unwrap();
        let c = Config::load(Some(&f), env(&[])).unwrap();
        let d = &c.destinations[0];
        assert_eq!(d.max_entries(), 50);
        assert!(!d.queues_every_record());
        assert!(c.queued_destinations().is_empty());
        let r = d.registry.as_ref().unwrap();
        assert_eq!(
            r.security_system,
            "http://cibmtr.org/codesystem/transplant-center"
        );
        assert_eq!(r.crid_registration, CridRegistration::CridAssignment);
    }

    #[test]
    fn unknown_keys_and_bad_types_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[server]\nbnid = \"127.0.0.1:9000\"\n").unwrap();
        let e = Config::load(Some(&f), env(&[])).unwrap_err();
        assert!(e[0].to_string().contains("bnid"), "{}", e[0]);
        let e = Config::load(None, env(&[("ENGRAFT__SERVER__WORKERS", "many")])).unwrap_err();
        assert!(e[0].to_string().contains("workers") || e[0].to_string().contains("integer"));
        let e = Config::load(None, env(&[("ENGRAFT__BIND", "x")])).unwrap_err();
        assert!(e[0].to_string().starts_with("ENGRAFT__BIND: "));
    }
}
