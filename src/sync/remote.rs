//! One destination as an HTTP peer: its client, token provider, rate limit, and what it
//! supports (read once from its CapabilityStatement, overridable in config). Every request
//! comes back as a [`Reply`]: the [`Answer`] the retry policy judges, plus the `Location` and
//! `ETag` a write reports.

use std::num::NonZeroU32;
use std::time::Duration;

use reqwest::Method;

use super::capability::{self, Support};
use super::policy::{Answer, RetryPolicy};
use crate::auth::outbound::{SendError, TokenProvider};
use crate::config::{CridRegistration, DestinationConfig, OnWithdrawal, UnmatchedPatient};

/// A registry destination's submission settings (see [`crate::config::RegistryConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The API root (`base_url` as configured): the CRID API lives here.
    pub root: String,
    /// The centre security tag: system and `rc_<ccn>`.
    pub security: (String, String),
    pub ccn: String,
    pub crid_system: String,
    pub crid_registration: CridRegistration,
}

/// A reply from the destination (or the transport error instead of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub answer: Answer,
    pub location: Option<String>,
    pub etag: Option<String>,
}

impl Reply {
    fn failed(answer: Answer) -> Reply {
        Reply {
            answer,
            location: None,
            etag: None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.answer {
            Answer::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn ok(&self) -> bool {
        self.status().is_some_and(|s| (200..300).contains(&s))
    }

    pub fn body(&self) -> &str {
        match &self.answer {
            Answer::Http { body, .. } => body,
            _ => "",
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.body()).unwrap_or_default()
    }

    /// `Type/id/_history/v` of what a single write wrote: the `Location` header, else the
    /// returned resource's id and version.
    pub fn written(&self) -> Option<String> {
        if let Some(l) = &self.location {
            return Some(l.clone());
        }
        let r = self.json();
        let (t, id) = (r["resourceType"].as_str()?, r["id"].as_str()?);
        Some(match r["meta"]["versionId"].as_str() {
            Some(v) => format!("{t}/{id}/_history/{v}"),
            None => format!("{t}/{id}"),
        })
    }
}

/// A destination, ready to deliver to.
pub struct Destination {
    pub name: String,
    /// The FHIR base URL (no trailing slash).
    pub base_url: String,
    tokens: Option<TokenProvider>,
    http: reqwest::Client,
    pub policy: RetryPolicy,
    pub concurrency: usize,
    pub timeout: Duration,
    pub circuit: super::circuit::Circuit,
    pub max_entries: usize,
    limiter: Option<governor::DefaultDirectRateLimiter>,
    overrides: (Option<bool>, Option<bool>, Option<bool>),
    support: tokio::sync::OnceCell<Support>,
    pub patient_system: Option<String>,
    pub unmatched: UnmatchedPatient,
    pub on_withdrawal: OnWithdrawal,
    pub pull_interval: Option<Duration>,
    /// What of a record's Bundle this destination is sent.
    pub shape: super::shape::Shape,
    /// Set for a registry destination (then `base_url` is its FHIR endpoint).
    pub registry: Option<Registry>,
    /// Requests in flight and how long answers usually take.
    pub slow: super::slow::SlowAnswers,
    /// Extra deliveries in flight while requests answer slowly (see [`super::slow`]).
    pub slow_spare_slots: usize,
}

impl Destination {
    pub fn from_config(d: &DestinationConfig) -> Result<Destination, String> {
        let timeout = Duration::from_secs(d.timeout_secs);
        let http = d.http_client(timeout)?;
        let root = d.base_url.trim_end_matches('/').to_string();
        let registry = d.registry.as_ref().map(|r| Registry {
            root: root.clone(),
            security: (r.security_system.clone(), format!("rc_{}", r.ccn)),
            ccn: r.ccn.clone(),
            crid_system: r.crid_system.clone(),
            crid_registration: r.crid_registration,
        });
        let base_url = match &d.registry {
            Some(r) if !r.fhir_path.trim_matches('/').is_empty() => {
                format!("{root}/{}", r.fhir_path.trim_matches('/'))
            }
            _ => root,
        };
        // A registry takes transactions and no conditional operations (CIBMTR: create,
        // update, read, search and capabilities only); nothing to detect.
        let overrides = match &registry {
            Some(_) => (Some(true), Some(false), Some(false)),
            None => (d.transactions, d.conditional_update, d.if_match),
        };
        Ok(Destination {
            name: d.name.clone(),
            base_url,
            tokens: d.token_provider(http.clone())?,
            http,
            policy: RetryPolicy {
                max_attempts: d.max_attempts,
                base: Duration::from_millis(d.backoff_base_ms),
                max: Duration::from_secs(d.backoff_max_secs),
            },
            concurrency: d.concurrency,
            timeout,
            circuit: super::circuit::Circuit::new(
                d.circuit_failures,
                Duration::from_secs(d.circuit_open_secs),
            ),
            max_entries: d.max_entries(),
            limiter: NonZeroU32::new(d.rate_limit_per_sec)
                .map(|n| governor::RateLimiter::direct(governor::Quota::per_second(n))),
            overrides,
            support: tokio::sync::OnceCell::new(),
            patient_system: d.patient_identifier_system.clone(),
            unmatched: d.unmatched_patient,
            on_withdrawal: d.on_withdrawal,
            pull_interval: (d.pull_interval_secs > 0)
                .then(|| Duration::from_secs(d.pull_interval_secs)),
            shape: d.shape(),
            registry,
            slow: super::slow::SlowAnswers::default(),
            slow_spare_slots: d.slow_spare_slots.unwrap_or(d.concurrency),
        })
    }

    /// What the destination supports: its CapabilityStatement, read once, under the config
    /// overrides. A transport or server error is returned (the attempt is retried); a server
    /// with no readable CapabilityStatement is assumed to take transactions and conditional
    /// updates, as before detection existed, unless config says otherwise.
    pub async fn support(&self) -> Result<&Support, Reply> {
        self.support
            .get_or_try_init(|| async {
                let (tx, cond, if_match) = self.overrides;
                let mut s = match (tx, cond, if_match) {
                    (Some(_), Some(_), Some(_)) => Support::default(),
                    _ => {
                        let reply = self.call(Method::GET, "metadata", None, &[]).await;
                        match reply.status() {
                            Some(200..=299) => capability::detect(&reply.json()),
                            Some(404 | 405 | 501) => {
                                tracing::warn!(destination = %self.name, "no CapabilityStatement; assuming transactions and conditional updates");
                                Support::assumed()
                            }
                            _ => return Err(reply),
                        }
                    }
                };
                if let Some(t) = tx {
                    s.transactions = t;
                }
                s.conditional_override = cond.or(s.conditional_override);
                s.if_match_override = if_match.or(s.if_match_override);
                tracing::info!(destination = %self.name, transactions = s.transactions, "destination capabilities read");
                Ok(s)
            })
            .await
    }

    /// One request to `{base_url}/{path}` (`path` may hold a query), with a token when the
    /// destination needs one and within its rate limit.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        // The base itself for transactions and batches (`POST <base>`, e.g. CIBMTR's `/r4`).
        let url = if path.is_empty() {
            self.base_url.clone()
        } else {
            format!("{}/{}", self.base_url, path)
        };
        self.request(method, &url, body, "application/fhir+json", headers)
            .await
    }

    /// One request to an absolute `url` of this destination (a registry's non-FHIR API:
    /// `PUT <root>/CRID` takes `application/json`), with its token and rate limit.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        // From here to the answer the request counts as in flight (and maybe as slow).
        let _tracked = super::slow::Tracked::start(&self.slow);
        // Shared, not copied, when the request is built again (after a 401, with a new token).
        let body = body.map(bytes::Bytes::from);
        let build = |http: &reqwest::Client| {
            let mut r = http
                .request(method.clone(), url)
                .header("accept", "application/fhir+json, application/json");
            if let Some(b) = &body {
                r = r.header("content-type", content_type).body(b.clone());
            }
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r
        };
        let res = match &self.tokens {
            Some(t) => t.send(build).await,
            None => build(&self.http).send().await.map_err(SendError::Http),
        };
        let r = match res {
            Ok(r) => r,
            Err(SendError::Token(e)) => return Reply::failed(Answer::Token(e.to_string())),
            Err(SendError::Http(e)) if e.is_timeout() => return Reply::failed(Answer::Timeout),
            Err(SendError::Http(e)) => {
                return Reply::failed(Answer::Network(crate::net::transport_error(&e)))
            }
        };
        let status = r.status().as_u16();
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (retry_after, location, etag) =
            (header("retry-after"), header("location"), header("etag"));
        // A body cut off is a transport failure, whatever the status line said.
        match r.text().await {
            Ok(body) => Reply {
                answer: Answer::Http {
                    status,
                    retry_after,
                    body,
                },
                location,
                etag,
            },
            Err(e) if e.is_timeout() => Reply::failed(Answer::Timeout),
            Err(e) => Reply::failed(Answer::Network(crate::net::transport_error(&e))),
        }
    }

    /// `GET {path}` of a searchset, following `next` links; every matching resource. Stops
    /// at the first reply that is not a 2xx and returns it.
    pub async fn search_all(&self, path: &str) -> Result<Vec<serde_json::Value>, Reply> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        let mut pages = 0;
        while let Some(p) = next.take() {
            pages += 1;
            let reply = self.call(Method::GET, &p, None, &[]).await;
            if !reply.ok() {
                return Err(reply);
            }
            let mut page = reply.json();
            if let Some(entries) = page["entry"].as_array_mut() {
                for e in entries {
                    if e["search"]["mode"] != "include" {
                        out.push(e["resource"].take());
                    }
                }
            }
            next = page["link"]
                .as_array()
                .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .and_then(|u| self.relative(u));
            // A server that links a page to itself would loop for ever.
            if pages >= 10_000 {
                break;
            }
        }
        Ok(out)
    }

    /// A `next` link as a path under the base URL; a link elsewhere is not followed (it
    /// would send our token to another server).
    fn relative(&self, url: &str) -> Option<String> {
        if let Some(rest) = url.strip_prefix(&self.base_url) {
            return Some(rest.trim_start_matches('/').to_string());
        }
        (!url.contains("://")).then(|| url.trim_start_matches('/').to_string())
    }
}
