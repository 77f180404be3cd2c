//! Engraft's side of the side-by-side comparisons in `PERFORMANCE.md`
//! (`scripts/perf/compare.sh` runs it with the Node and Python counterparts on the same files).
//!
//! ```text
//! cargo run --release --example perf_compare -- <operation> <seconds> <file.json>...
//! ```
//!
//! Operations, each timed from the file's bytes in memory, one operation at a time on one
//! thread:
//! - `validate`: parse the JSON, validate against base R4 and Engraft's profiles (what
//!   `$validate` and every mapping do);
//! - `validate-base`: parse the JSON, validate against base R4 and the Bundle rules only (the
//!   same scope as `@medplum/core`'s `validateResource`);
//! - `roundtrip`: parse into fhirbolt's typed R4 model (strict) and serialise back to JSON
//!   (the same work as `fhir.resources`' `model_validate_json` + `model_dump_json`).
//!
//! Prints one JSON line per file: the median time of one operation in microseconds, the
//! number of timed operations, and the error and warning counts of one run.

use std::time::{Duration, Instant};

use engraft::validation::{bundle, validate_resource, Validator};
use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: perf_compare validate|validate-base|roundtrip <seconds> <file.json>...";
    let (Some(op), Some(secs)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Ok(secs) = secs.parse::<f64>() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let budget = Duration::from_secs_f64(secs);
    let validator = Validator::bundled();
    for file in &args[2..] {
        let text = std::fs::read(file).unwrap_or_else(|e| {
            eprintln!("{file}: {e}");
            std::process::exit(2)
        });
        let run: Box<dyn Fn() -> (usize, usize)> = match op.as_str() {
            "validate" => Box::new(|| {
                let v = engraft::json::parse(&text).expect("well-formed JSON");
                count(&validator.validate(&v, None))
            }),
            "validate-base" => Box::new(|| {
                let v = engraft::json::parse(&text).expect("well-formed JSON");
                let root = v["resourceType"].as_str().unwrap_or("Resource");
                let mut issues = validate_resource(validator.definitions, &v, root);
                issues.extend(bundle::validate(&v, &bundle::index(&v)));
                count(&issues)
            }),
            "roundtrip" => Box::new(|| {
                let r = engraft::fhir::from_json_strict(&text).expect("strict R4 parse");
                std::hint::black_box(engraft::fhir::to_json(&r, false).expect("serialises"));
                (0, 0)
            }),
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        };
        let (errors, warnings) = run();
        let (median, samples) = measure(budget, &*run);
        let entries = serde_json::from_slice::<Value>(&text)
            .ok()
            .and_then(|v| v["entry"].as_array().map(Vec::len))
            .unwrap_or(1);
        println!(
            "{}",
            json!({
                "implementation": "engraft",
                "operation": op,
                "file": file,
                "entries": entries,
                "median_us": median.as_secs_f64() * 1e6,
                "samples": samples,
                "errors": errors,
                "warnings": warnings,
            })
        );
    }
}

fn count(issues: &[engraft::fhir::OutcomeIssue]) -> (usize, usize) {
    let errors = issues
        .iter()
        .filter(|i| matches!(i.severity, "error" | "fatal"))
        .count();
    (errors, issues.len() - errors)
}

/// Warms up for a tenth of the budget, then times single operations until the budget is
/// spent (at least 10); returns the median.
fn measure(budget: Duration, run: &dyn Fn() -> (usize, usize)) -> (Duration, usize) {
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        std::hint::black_box(run());
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || samples.len() < 10 {
        let t = Instant::now();
        std::hint::black_box(run());
        samples.push(t.elapsed());
    }
    samples.sort();
    (samples[samples.len() / 2], samples.len())
}
