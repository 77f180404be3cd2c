//! Every fixture record converts to its golden bundle (fixtures/bundles/), deterministically;
//! every bundle is valid base R4, round-trips through fhirbolt Strict mode unchanged, declares
//! bundled profiles and resolves all its references. `GOLDEN_UPDATE=1` rewrites the goldens.

use std::collections::HashSet;
use std::io::BufReader;

use engraft::convert::{Converter, Outcome};
use engraft::record::csv as record_csv;
use engraft::terminology::Terminology;
use engraft::validation::Validator;
use serde_json::Value;

use super::helpers::*;

/// (golden file stem, bundle) for every fixture record, JSON and CSV.
fn all_bundles() -> Vec<(String, Value)> {
    let conv = Converter::default();
    let mut out = Vec::new();
    for path in files("records", "json") {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        match conv.convert_value(read_json(&path), NOW) {
            Outcome::Converted(c) => out.push((stem, serde_json::from_slice(&c.bundle).unwrap())),
            Outcome::Rejected(r) => panic!("{stem} was rejected: {:#?}", r.issues),
        }
    }
    let scales: Vec<String> = {
        let t = Terminology::bundled();
        let mut v: Vec<String> = t
            .code_system(&engraft::terminology::cs("engraft-scale"))
            .unwrap()
            .concepts
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    };
    for path in files("records", "csv")
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".followups.csv"))
    {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let fu_path = path.with_file_name(format!("{stem}.followups.csv"));
        let fu = fu_path.exists().then(|| std::fs::read(&fu_path).unwrap());
        let reader = record_csv::open(
            &stem,
            BufReader::new(std::fs::File::open(&path).unwrap()),
            fu.as_deref().map(|b| ("followups", b)),
            &scales,
        )
        .unwrap_or_else(|e| panic!("{stem}: {:#?}", e.0));
        for item in reader {
            let cr = item.unwrap_or_else(|(id, issues)| panic!("{stem} {id:?}: {issues:#?}"));
            let id = cr.record.record_id.clone();
            match conv.convert(cr.record, NOW) {
                Outcome::Converted(c) => out.push((
                    format!("{stem}.{id}"),
                    serde_json::from_slice(&c.bundle).unwrap(),
                )),
                Outcome::Rejected(r) => panic!("{stem} {id} was rejected: {:#?}", r.issues),
            }
        }
    }
    out
}

#[test]
fn fixture_set_is_large_and_varied_enough() {
    let bundles = all_bundles();
    assert!(
        bundles.len() >= 30,
        "only {} fixture records",
        bundles.len()
    );
    let diseases: HashSet<String> = bundles
        .iter()
        .flat_map(|(_, b)| {
            with_profile(b, "engraft-autoimmune-condition")
                .into_iter()
                .map(|c| c["code"]["coding"][0]["code"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for d in [
        "multiple-sclerosis",
        "systemic-sclerosis",
        "sle",
        "rheumatoid-arthritis",
        "crohns-disease",
        "cidp",
        "nmosd",
        "type-1-diabetes",
        "vasculitis",
    ] {
        assert!(diseases.contains(d), "no fixture for {d}");
    }
    let donor_types: HashSet<String> = bundles
        .iter()
        .flat_map(|(_, b)| {
            with_profile(b, "engraft-hsct-procedure")
                .into_iter()
                .map(|p| {
                    p["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for d in ["autologous", "allogeneic-related", "allogeneic-unrelated"] {
        assert!(donor_types.contains(d), "no fixture with donor type {d}");
    }
}

#[test]
fn every_fixture_converts_to_its_golden_bundle() {
    let update = std::env::var_os("GOLDEN_UPDATE").is_some();
    let dir = fixtures("bundles");
    let mut failures = Vec::new();
    let mut expected_files = HashSet::new();
    for (stem, bundle) in all_bundles() {
        let path = dir.join(format!("{stem}.json"));
        expected_files.insert(path.clone());
        if update {
            let mut text = serde_json::to_string_pretty(&bundle).unwrap();
            text.push('\n');
            std::fs::write(&path, text).unwrap();
            continue;
        }
        if !path.exists() {
            failures.push(format!(
                "{stem}: no golden bundle (run with GOLDEN_UPDATE=1 and review it)"
            ));
            continue;
        }
        let golden = read_json(&path);
        if golden != bundle {
            failures.push(format!(
                "{stem}: bundle differs from {}\n{}",
                path.display(),
                json_diff(&golden, &bundle)
            ));
        }
    }
    for path in files("bundles", "json") {
        if !expected_files.contains(&path) {
            failures.push(format!(
                "{}: golden bundle without a fixture record",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn conversion_is_deterministic_apart_from_the_clock() {
    let conv = Converter::default();
    let a = match conv.convert_value(base(), NOW) {
        Outcome::Converted(c) => c.bundle,
        _ => panic!(),
    };
    let b = match conv.convert_value(base(), NOW) {
        Outcome::Converted(c) => c.bundle,
        _ => panic!(),
    };
    assert_eq!(a, b);
    let later = match conv.convert_value(base(), "2027-05-05T10:00:00Z") {
        Outcome::Converted(c) => c.bundle,
        _ => panic!(),
    };
    let (mut a, mut later): (Value, Value) = (
        serde_json::from_slice(&a).unwrap(),
        serde_json::from_slice(&later).unwrap(),
    );
    for v in [&mut a, &mut later] {
        v["timestamp"] = Value::Null;
        let last = v["entry"].as_array().unwrap().len() - 1;
        v["entry"][last]["resource"]["recorded"] = Value::Null;
    }
    assert_eq!(
        a, later,
        "only Bundle.timestamp and Provenance.recorded may depend on the clock"
    );
}

#[test]
fn every_bundle_is_valid_against_r4_and_the_profiles_and_round_trips_through_strict_mode() {
    for (stem, bundle) in all_bundles() {
        // Not even a warning: base R4, every meta.profile, Bundle rules.
        let issues = Validator::bundled().validate(&bundle, None);
        assert!(issues.is_empty(), "{stem}: {issues:#?}");
        let text = serde_json::to_vec(&bundle).unwrap();
        let parsed = engraft::fhir::from_json_strict(&text)
            .unwrap_or_else(|e| panic!("{stem}: strict parse failed: {e}"));
        let again: Value =
            serde_json::from_slice(&engraft::fhir::to_json(&parsed, false).unwrap()).unwrap();
        assert!(
            again == bundle,
            "{stem}: strict round trip changed the bundle\n{}",
            json_diff(&bundle, &again)
        );
    }
}

#[test]
fn every_resource_declares_a_bundled_profile_and_every_reference_resolves() {
    let profiles: HashSet<String> = engraft::profiles::bundled_files()
        .filter_map(|(_, text)| {
            let v: Value = serde_json::from_str(text).ok()?;
            (v["resourceType"] == "StructureDefinition")
                .then(|| v["url"].as_str().unwrap().to_string())
        })
        .collect();
    for (stem, bundle) in all_bundles() {
        assert!(profiles.contains(bundle["meta"]["profile"][0].as_str().unwrap()));
        let full_urls: HashSet<&str> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap())
            .collect();
        assert_eq!(
            full_urls.len(),
            bundle["entry"].as_array().unwrap().len(),
            "{stem}: duplicate fullUrl"
        );
        for e in bundle["entry"].as_array().unwrap() {
            let r = &e["resource"];
            let profile = r["meta"]["profile"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{stem}: {} without meta.profile", r["resourceType"]));
            assert!(
                profiles.contains(profile),
                "{stem}: {profile} is not bundled"
            );
            assert_eq!(e["request"]["method"], "PUT");
            let mut refs = Vec::new();
            collect_refs(r, &mut refs);
            for reference in refs {
                assert!(
                    full_urls.contains(reference.as_str()),
                    "{stem}: {} refers to {reference}, not in the bundle",
                    r["resourceType"]
                );
            }
        }
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "reference" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[test]
fn repeated_items_get_distinct_url_safe_identifiers() {
    let mut r = base();
    let c = r["transplants"][0]["complications"][0].clone();
    r["transplants"][0]["complications"]
        .as_array_mut()
        .unwrap()
        .push(c);
    let b = bundle(r);
    let ids: Vec<&str> = with_code(&b, "febrile-neutropenia")
        .iter()
        .map(|c| c["identifier"][0]["value"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[1].ends_with("~2"), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    for e in b["entry"].as_array().unwrap() {
        assert!(!e["request"]["url"].as_str().unwrap().contains('#'));
    }
    assert!(Validator::bundled().validate(&b, None).is_empty());
}
