//! Conversion throughput: one typical record (1 transplant, 6 follow-ups) checked, mapped and
//! serialised to a FHIR JSON Bundle, on one core. Run with `cargo bench --bench convert`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engraft::convert::{Converter, Outcome};
use engraft::record::Record;

fn typical() -> Record {
    let text = include_str!("../fixtures/records/ms-rrms-auto-beam-atg.json");
    let r: Record = serde_json::from_str(text).expect("fixture parses");
    assert_eq!((r.transplants.len(), r.follow_ups.len()), (1, 6));
    r
}

fn bench(c: &mut Criterion) {
    let record = typical();
    let mut g = c.benchmark_group("convert");
    g.throughput(Throughput::Elements(1));
    let fast = Converter {
        validate: false,
        pretty: false,
        ..Converter::default()
    };
    g.bench_function("typical_record_to_json_bundle", |b| {
        b.iter_batched(
            || record.clone(),
            |r| match fast.convert(r, "2026-01-01T00:00:00Z") {
                Outcome::Converted(c) => c.bundle.len(),
                Outcome::Rejected(_) => unreachable!("the fixture converts"),
            },
            BatchSize::SmallInput,
        )
    });
    let validated = Converter {
        validate: true,
        pretty: false,
        ..Converter::default()
    };
    g.bench_function("typical_record_to_json_bundle_validated_base_r4", |b| {
        b.iter_batched(
            || record.clone(),
            |r| match validated.convert(r, "2026-01-01T00:00:00Z") {
                Outcome::Converted(c) => c.bundle.len(),
                Outcome::Rejected(_) => unreachable!("the fixture converts"),
            },
            BatchSize::SmallInput,
        )
    });
    let text = include_str!("../fixtures/records/ms-rrms-auto-beam-atg.json");
    g.bench_function("typical_record_json_text_to_json_bundle", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            match fast.convert_value(v, "2026-01-01T00:00:00Z") {
                Outcome::Converted(c) => c.bundle.len(),
                Outcome::Rejected(_) => unreachable!("the fixture converts"),
            }
        })
    });
    g.finish();

    // The stages, to see where the time goes.
    let mut s = c.benchmark_group("stage");
    let term = engraft::terminology::Terminology::bundled();
    s.bench_function("check", |b| {
        b.iter_batched(
            || record.clone(),
            |r| engraft::record::check(r, term).is_ok(),
            BatchSize::SmallInput,
        )
    });
    let checked = engraft::record::check(record.clone(), term).unwrap();
    s.bench_function("map", |b| {
        b.iter(|| {
            engraft::mapping::map_record(&checked, term, "2026-01-01T00:00:00Z")
                .bundle
                .entry
                .len()
        })
    });
    let bundle = fhirbolt::model::r4::Resource::Bundle(Box::new(
        engraft::mapping::map_record(&checked, term, "2026-01-01T00:00:00Z").bundle,
    ));
    s.bench_function("serialise", |b| {
        b.iter(|| engraft::fhir::to_json(&bundle, false).unwrap().len())
    });
    // Our own output parsed back (what a validated conversion validates), and validated.
    let text = String::from_utf8(engraft::fhir::to_json(&bundle, false).unwrap()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    s.bench_function("parse_back", |b| {
        b.iter(|| {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap()
                .is_object()
        })
    });
    s.bench_function("validate", |b| {
        b.iter(|| {
            engraft::validation::Validator::bundled()
                .validate(&json, None)
                .len()
        })
    });
    s.bench_function("validate_base_r4", |b| {
        b.iter(|| {
            engraft::validation::validate_resource(
                engraft::validation::Definitions::r4(),
                &json,
                "Bundle",
            )
            .len()
        })
    });
    s.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
