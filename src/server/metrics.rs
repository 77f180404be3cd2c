//! Prometheus metrics: requests by route, method and status with latency histograms, records
//! converted and rejected, validation failures. Exposed at `GET /metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub records: IntCounterVec,
    pub validations: IntCounterVec,
    pub auth: IntCounterVec,
    pub deliveries: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("engraft".into()), None).expect("a valid metrics prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status.",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let records = IntCounterVec::new(
            Opts::new("records_total", "Registry records converted, by outcome."),
            &["outcome"],
        )
        .expect("valid metric");
        let validations = IntCounterVec::new(
            Opts::new("validations_total", "FHIR validations, by result."),
            &["result"],
        )
        .expect("valid metric");
        let auth = IntCounterVec::new(
            Opts::new(
                "auth_total",
                "Authentication outcomes: invalid_token, insufficient_scope, token_issued, or the OAuth error of a refused token request.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let deliveries = IntCounterVec::new(
            Opts::new(
                "sync_delivery_attempts_total",
                "Delivery attempts by destination and outcome (delivered, retry, failed, skipped).",
            ),
            &["destination", "outcome"],
        )
        .expect("valid metric");
        for c in [&requests, &records, &validations, &auth, &deliveries] {
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
        }
        registry
            .register(Box::new(latency.clone()))
            .expect("metric registered once");
        Metrics {
            registry,
            requests,
            latency,
            records,
            validations,
            auth,
            deliveries,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
