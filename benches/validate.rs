//! Validation speed: a golden bundle warm (definitions and profiles loaded), and a cold start
//! (parsing and indexing the bundled R4 definitions, profiles and terminology).
//! Run with `cargo bench --bench validate`.

use criterion::{criterion_group, criterion_main, Criterion};
use engraft::validation::{Definitions, Profiles, Validator};

fn bench(c: &mut Criterion) {
    let text = include_str!("../fixtures/bundles/ms-rrms-auto-beam-atg.json");
    let bundle: serde_json::Value = serde_json::from_str(text).unwrap();
    let entries = bundle["entry"].as_array().unwrap().len();
    let v = Validator::bundled();
    assert!(v.validate(&bundle, None).is_empty());
    let mut g = c.benchmark_group("validate");
    g.bench_function(format!("golden_bundle_{entries}_entries_warm"), |b| {
        b.iter(|| v.validate(&bundle, None).len())
    });
    g.bench_function("cold_start_definitions_profiles_terminology", |b| {
        b.iter(|| {
            let d = Definitions::parse(include_str!("../definitions/r4-core.json")).unwrap();
            let p = Profiles::from_sources(engraft::profiles::bundled_files());
            let t =
                engraft::terminology::Terminology::from_sources(engraft::profiles::bundled_files())
                    .unwrap();
            (
                d.element("Observation.status").is_some(),
                p.len(),
                t.counts(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
