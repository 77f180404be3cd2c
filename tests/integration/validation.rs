//! The validation engine on hand-made invalid resources (`fixtures/invalid/fhir/`): each yields
//! exactly its expected issues (code and FHIRPath), and hostile input gives errors, never a
//! panic.

use engraft::validation::Validator;
use serde_json::Value;

use super::helpers::*;

#[test]
fn every_invalid_fhir_resource_yields_exactly_its_expected_issues() {
    let expected = read_json(&fixtures("invalid/fhir").join("expected.json"));
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let v = Validator::bundled();
    let mut failures = Vec::new();
    for (name, want) in cases {
        let resource = read_json(&fixtures("invalid/fhir").join(format!("{name}.json")));
        let mut got: Vec<(String, String)> = v
            .validate(&resource, None)
            .into_iter()
            .map(|i| (i.detail, i.expression))
            .collect();
        got.sort();
        let want: Vec<(String, String)> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        if got != want {
            failures.push(format!("{name}:\n  expected {want:?}\n  got      {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_profile_option_applies_a_profile_the_resource_does_not_declare() {
    let mut obs = read_json(&fixtures("invalid/fhir").join("lab-without-value.json"));
    obs["meta"] = Value::Null;
    obs.as_object_mut().unwrap().remove("meta");
    let v = Validator::bundled();
    assert!(v.validate(&obs, None).is_empty(), "valid base R4");
    let issues = v.validate(
        &obs,
        Some("https://engraft.dev/fhir/StructureDefinition/engraft-lab"),
    );
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].expression, "Observation.value");
}

#[test]
fn hostile_input_gives_errors_not_panics() {
    let v = Validator::bundled();
    // Truncated JSON is a parse error before validation.
    assert!(
        serde_json::from_str::<Value>(r#"{"resourceType": "Observation", "status": "fin"#).is_err()
    );
    // 10,000-deep nesting: the JSON parser refuses it (recursion limit), without a stack overflow.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(serde_json::from_str::<Value>(&deep).is_err());
    // Deep but parseable nesting inside a resource is reported as unknown structure.
    let mut nested = Value::from("x");
    for _ in 0..100 {
        nested = serde_json::json!({ "a": nested });
    }
    let r = serde_json::json!({"resourceType": "Basic", "code": {"text": "x"}, "extension": [{"url": "urn:x", "valueString": "y", "a": nested}]});
    let issues = v.validate(&r, None);
    assert!(issues.iter().any(|i| i.detail == "unknown-element"));
    // A 50 MB string is just a (too long) string.
    let big = serde_json::json!({"resourceType": "Observation", "status": "final", "code": {"text": "x".repeat(50 * 1024 * 1024)}});
    let issues = v.validate(&big, None);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].expression, "Observation.code.text");
    assert!(
        !issues[0].diagnostics.contains("xxx"),
        "no values in messages"
    );
    // Numbers out of range.
    let r = serde_json::json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueInteger": 1e300});
    assert_eq!(v.validate(&r, None)[0].detail, "format");
    // Not an object, no resourceType, an unknown resource type.
    for bad in [
        serde_json::json!([1, 2]),
        serde_json::json!({"status": "final"}),
        serde_json::json!({"resourceType": "Spaceship"}),
        serde_json::json!({"resourceType": "string"}),
    ] {
        assert!(!v.validate(&bad, None).is_empty());
    }
}

#[test]
fn every_profile_has_passing_and_failing_examples() {
    use std::collections::HashSet;
    let passing: HashSet<String> = files("bundles", "json")
        .iter()
        .flat_map(|p| {
            let b = read_json(p);
            let mut urls = vec![b["meta"]["profile"][0].as_str().unwrap().to_string()];
            urls.extend(
                entries(&b)
                    .iter()
                    .map(|r| r["meta"]["profile"][0].as_str().unwrap().to_string()),
            );
            urls
        })
        .collect();
    // (profile, issue code) pairs the invalid cases exhibit, crediting a Bundle entry's issue to
    // the entry's profile.
    let expected = read_json(&fixtures("invalid/fhir").join("expected.json"));
    let mut failing: HashSet<(String, String)> = HashSet::new();
    for (name, issues) in expected.as_object().unwrap() {
        let r = read_json(&fixtures("invalid/fhir").join(format!("{name}.json")));
        for i in issues.as_array().unwrap() {
            let (code, expr) = (i[0].as_str().unwrap(), i[1].as_str().unwrap());
            if let Some(p) = r["meta"]["profile"][0].as_str() {
                failing.insert((p.to_string(), code.to_string()));
            }
            if let Some(rest) = expr.strip_prefix("Bundle.entry[") {
                let n: usize = rest.split(']').next().unwrap().parse().unwrap();
                if let Some(p) = r["entry"][n]["resource"]["meta"]["profile"][0].as_str() {
                    failing.insert((p.to_string(), code.to_string()));
                }
            }
        }
    }
    let profiles: Vec<Value> = engraft::profiles::bundled_files()
        .filter_map(|(_, t)| {
            let v: Value = serde_json::from_str(t).ok()?;
            (v["resourceType"] == "StructureDefinition" && v["type"] != "Extension").then_some(v)
        })
        .collect();
    assert_eq!(profiles.len(), 28);
    let mut missing = Vec::new();
    for sd in &profiles {
        let url = sd["url"].as_str().unwrap();
        assert!(passing.contains(url), "{url}: no golden bundle uses it");
        for kind in constraint_kinds(sd) {
            if !failing.contains(&(url.to_string(), kind.clone())) {
                missing.push(format!("{url} {kind}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "constraint kinds without a failing example in fixtures/invalid/fhir: {missing:#?}"
    );
}

/// The issue codes a profile's differential can produce: one per kind of constraint it uses.
fn constraint_kinds(sd: &Value) -> std::collections::BTreeSet<String> {
    let mut kinds = std::collections::BTreeSet::new();
    for el in sd["differential"]["element"].as_array().unwrap() {
        let id = el["id"].as_str().unwrap();
        if id == sd["type"] {
            continue;
        }
        let o = el.as_object().unwrap();
        if o.contains_key("min") || o.contains_key("max") {
            kinds.insert(
                if o.contains_key("sliceName") {
                    "profile-slice"
                } else {
                    "profile-cardinality"
                }
                .to_string(),
            );
        }
        if o.keys().any(|k| k.starts_with("fixed")) {
            kinds.insert("profile-fixed".into());
        }
        // A pattern inside a slice is its discriminator: it sorts items, it cannot fail.
        if o.keys().any(|k| k.starts_with("pattern")) && !id.contains(':') {
            kinds.insert("profile-pattern".into());
        }
        if el["binding"]["strength"] == "required" {
            kinds.insert("profile-binding".into());
        }
        if id.ends_with("[x]") && o.contains_key("type") {
            kinds.insert("profile-type".into());
        }
        if el["type"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t.get("targetProfile").is_some())
        {
            kinds.insert("profile-target".into());
        }
        for c in el["constraint"].as_array().into_iter().flatten() {
            kinds.insert(c["key"].as_str().unwrap().to_string());
        }
        if el["slicing"]["rules"] == "closed" {
            kinds.insert("profile-slice-closed".into());
        }
    }
    kinds
}
