//! Shared helpers: fixture paths, conversion with a fixed clock, readable JSON diffs.

use std::path::{Path, PathBuf};

use engraft::convert::{Converter, Outcome};
use engraft::record::{self, Issue, Record};
use engraft::terminology::Terminology;
use serde_json::Value;

/// The conversion instant used for golden files.
pub const NOW: &str = "2026-01-01T00:00:00Z";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn fixtures(sub: &str) -> PathBuf {
    root().join("fixtures").join(sub)
}

/// Sorted files of a fixtures folder with the given extension.
pub fn files(sub: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The base fixture record as JSON, for tests that change one thing in it.
pub fn base() -> Value {
    read_json(&fixtures("records").join("ms-rrms-auto-beam-atg.json"))
}

pub fn record(v: Value) -> Record {
    record::record_from_value(v).expect("the test record is well-formed")
}

/// Checks a record; `Ok` holds the warnings.
pub fn check(v: Value) -> Result<Vec<Issue>, Vec<Issue>> {
    record::check(record(v), Terminology::bundled()).map(|c| c.warnings)
}

/// The (code, pointer) pairs of issues.
pub fn codes(issues: &[Issue]) -> Vec<(String, String)> {
    let mut v: Vec<_> = issues
        .iter()
        .map(|i| (i.code.as_str().to_string(), i.location.pointer.clone()))
        .collect();
    v.sort();
    v
}

/// Converts a record to its Bundle as JSON, panicking with the issues if rejected.
pub fn bundle(v: Value) -> Value {
    match Converter::default().convert_value(v, NOW) {
        Outcome::Converted(c) => serde_json::from_slice(&c.bundle).unwrap(),
        Outcome::Rejected(r) => panic!("rejected: {:#?}", r.issues),
    }
}

/// Resources of a bundle with the given profile suffix (`engraft-engraftment`).
pub fn with_profile<'a>(bundle: &'a Value, profile: &str) -> Vec<&'a Value> {
    entries(bundle)
        .into_iter()
        .filter(|r| {
            r["meta"]["profile"][0]
                .as_str()
                .is_some_and(|p| p.ends_with(&format!("/{profile}")))
        })
        .collect()
}

pub fn entries(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect()
}

/// Resources whose `code` has the given code in any coding.
pub fn with_code<'a>(bundle: &'a Value, code: &str) -> Vec<&'a Value> {
    entries(bundle)
        .into_iter()
        .filter(|r| {
            r["code"]["coding"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["code"] == code))
        })
        .collect()
}

/// A unified diff of two JSON values, pretty-printed.
pub fn json_diff(expected: &Value, actual: &Value) -> String {
    let a = serde_json::to_string_pretty(expected).unwrap();
    let b = serde_json::to_string_pretty(actual).unwrap();
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(4)
        .header("expected (golden)", "actual")
        .to_string()
}

/// The address a freshly spawned Engraft process prints as its first line
/// (`<prefix><url>`), read from its piped stdout.
pub(crate) fn listening_on(child: &mut std::process::Child, prefix: &str) -> String {
    use std::io::BufRead as _;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string()
}

/// GET `url` with `client`; the JSON body.
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// A port free on 127.0.0.1 now (for a process that must be started on a known address).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A subscriber for the whole test binary that is interested in every callsite and enables
/// nothing itself, so each event is left to its thread's own subscriber.
///
/// tracing caches each callsite's interest for the whole process, computed against the
/// subscriber of the thread that reaches it first. A test thread with none would cache `never`
/// and silence that callsite for a test that captures logs with `set_default` (seen once in a
/// full parallel run: `outbound::client_secret_basic_...` captured nothing).
struct KeepInterest;

impl tracing::Subscriber for KeepInterest {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Installs [`KeepInterest`] as the global subscriber, once; call it before `set_default`
/// (whose new dispatcher then recomputes every interest cached so far).
pub(crate) fn keep_tracing_interest() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(KeepInterest)
            .expect("no other global subscriber in the test binary");
    });
}
