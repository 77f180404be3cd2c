//! What one EHR destination is sent of a record's Bundle, by its configuration: only the
//! resource types it takes, with its own code-system URIs, with or without Engraft's profile
//! claims. Pure.
//!
//! Leaving a type out also takes out every reference to its resources: an element of a list
//! (`partOf`, `focus`, `reasonReference`, `Provenance.target`) or an extension whose value is
//! such a reference goes, and so does a single reference element (`Observation.encounter`). A
//! resource that lost a reference no longer claims Engraft's profiles (some of them require
//! the reference), so what is sent stays true to what it claims. The Patient is always sent:
//! everything refers to it (the configuration check refuses a list without it).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// The canonical base of Engraft's profiles.
const PROFILE_BASE: &str = "https://engraft.dev/fhir/StructureDefinition/";

/// A destination's shaping of the Bundles it is sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// The resource types sent (`None`: all).
    pub types: Option<HashSet<String>>,
    /// Whether `meta.profile` is removed from every resource.
    pub drop_profiles: bool,
    /// Code-system URIs replaced in every coding (and quantity): Engraft's URI -> the
    /// destination's.
    pub systems: HashMap<String, String>,
}

impl Shape {
    /// Whether this shape leaves every Bundle as it is.
    pub fn is_identity(&self) -> bool {
        self.types.is_none() && !self.drop_profiles && self.systems.is_empty()
    }

    /// Whether resources of `resource_type` are sent. Those that are not are never touched at
    /// the destination: what was sent before the configuration changed stays as it is (a
    /// record version that drops such a resource does not delete it there either).
    pub fn sends(&self, resource_type: &str) -> bool {
        self.types
            .as_ref()
            .is_none_or(|t| t.contains(resource_type))
    }

    /// Shapes `bundle` in place.
    pub fn apply(&self, bundle: &mut Value) {
        if self.is_identity() {
            return;
        }
        let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) else {
            return;
        };
        let mut gone: HashSet<String> = HashSet::new();
        if let Some(types) = &self.types {
            entries.retain(|e| {
                let t = e["resource"]["resourceType"].as_str().unwrap_or("");
                if types.contains(t) {
                    return true;
                }
                if let Some(f) = e["fullUrl"].as_str() {
                    gone.insert(f.to_string());
                }
                false
            });
        }
        for e in entries.iter_mut() {
            let Some(resource) = e.get_mut("resource") else {
                continue;
            };
            if !gone.is_empty() && prune(resource, &gone) {
                unclaim(resource, |p| p.starts_with(PROFILE_BASE));
            }
            if self.drop_profiles {
                unclaim(resource, |_| true);
            }
            if !self.systems.is_empty() {
                recode(resource, &self.systems);
            }
        }
    }
}

/// Whether `v` is a reference to a resource in `gone`.
fn dangling(v: &Value, gone: &HashSet<String>) -> bool {
    v.get("reference")
        .and_then(Value::as_str)
        .is_some_and(|r| gone.contains(r))
}

/// Takes every reference to `gone` out of `v`; returns whether any was.
fn prune(v: &mut Value, gone: &HashSet<String>) -> bool {
    let mut removed = false;
    match v {
        Value::Object(o) => {
            let before = o.len();
            o.retain(|_, c| !dangling(c, gone));
            removed |= o.len() != before;
            for c in o.values_mut() {
                removed |= prune(c, gone);
            }
            // FHIR has no empty objects or arrays: what pruning emptied goes too.
            o.retain(|_, c| !is_empty(c));
        }
        Value::Array(a) => {
            let before = a.len();
            a.retain(|c| {
                !(dangling(c, gone) || c.get("valueReference").is_some_and(|r| dangling(r, gone)))
            });
            removed |= a.len() != before;
            for c in a.iter_mut() {
                removed |= prune(c, gone);
            }
        }
        _ => {}
    }
    removed
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Removes the profile claims `which` selects from `resource.meta.profile` (and what that
/// empties).
fn unclaim(resource: &mut Value, which: impl Fn(&str) -> bool) {
    let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(Value::Array(p)) = meta.get_mut("profile") {
        p.retain(|c| !c.as_str().is_some_and(&which));
        if p.is_empty() {
            meta.remove("profile");
        }
    }
    if meta.is_empty() {
        resource.as_object_mut().map(|o| o.remove("meta"));
    }
}

/// Replaces code-system URIs: the `system` of every object that also has a `code` (Coding,
/// Quantity); identifier and contact systems (no `code`) are left alone.
fn recode(v: &mut Value, systems: &HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            if o.contains_key("code") {
                if let Some(Value::String(s)) = o.get_mut("system") {
                    if let Some(to) = systems.get(s.as_str()) {
                        *s = to.clone();
                    }
                }
            }
            o.values_mut().for_each(|c| recode(c, systems));
        }
        Value::Array(a) => a.iter_mut().for_each(|c| recode(c, systems)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle() -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient",
                "meta": {"profile": ["https://engraft.dev/fhir/StructureDefinition/engraft-patient"]},
                "identifier": [{"system": "http://snomed.info/sct", "value": "1"}]}},
            {"fullUrl": "urn:uuid:h", "resource": {"resourceType": "Procedure",
                "subject": {"reference": "urn:uuid:p"}}},
            {"fullUrl": "urn:uuid:e", "resource": {"resourceType": "Encounter",
                "subject": {"reference": "urn:uuid:p"}}},
            {"fullUrl": "urn:uuid:o", "resource": {"resourceType": "Observation",
                "meta": {"profile": ["https://engraft.dev/fhir/StructureDefinition/engraft-cell-dose", "http://other/p"]},
                "extension": [
                    {"url": "x", "valueReference": {"reference": "urn:uuid:h"}},
                    {"url": "y", "valueInteger": 1}],
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]},
                "valueQuantity": {"value": 2, "system": "http://unitsofmeasure.org", "code": "mg"},
                "subject": {"reference": "urn:uuid:p"},
                "encounter": {"reference": "urn:uuid:e"},
                "partOf": [{"reference": "urn:uuid:h"}]}},
            {"fullUrl": "urn:uuid:v", "resource": {"resourceType": "Provenance",
                "target": [{"reference": "urn:uuid:p"}, {"reference": "urn:uuid:h"}]}},
        ]})
    }

    #[test]
    fn the_default_shape_sends_the_bundle_as_it_is() {
        let mut b = bundle();
        Shape::default().apply(&mut b);
        assert_eq!(b, bundle());
        assert!(Shape::default().sends("Encounter"));
    }

    #[test]
    fn types_left_out_take_their_references_and_the_profile_claims_they_break() {
        let shape = Shape {
            types: Some(
                ["Patient", "Observation", "Provenance"]
                    .map(String::from)
                    .into(),
            ),
            ..Shape::default()
        };
        let mut b = bundle();
        shape.apply(&mut b);
        assert!(shape.sends("Observation") && !shape.sends("Procedure"));
        let types: Vec<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["Patient", "Observation", "Provenance"]);
        let obs = &b["entry"][1]["resource"];
        assert_eq!(obs["extension"], json!([{"url": "y", "valueInteger": 1}]));
        assert!(obs.get("partOf").is_none() && obs.get("encounter").is_none());
        assert_eq!(obs["subject"]["reference"], "urn:uuid:p");
        // Engraft's claim goes (the profile requires partOf); another stays.
        assert_eq!(obs["meta"]["profile"], json!(["http://other/p"]));
        assert_eq!(
            b["entry"][2]["resource"]["target"],
            json!([{"reference": "urn:uuid:p"}])
        );
        // The Patient lost nothing and keeps its claim.
        assert_eq!(b["entry"][0], bundle()["entry"][0]);
    }

    #[test]
    fn code_systems_are_replaced_in_codings_and_quantities_not_identifiers() {
        let shape = Shape {
            systems: [
                ("http://snomed.info/sct", "urn:oid:2.16.840.1.113883.6.96"),
                ("http://unitsofmeasure.org", "urn:oid:2.16.840.1.113883.6.8"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
            drop_profiles: true,
            ..Shape::default()
        };
        let mut b = bundle();
        shape.apply(&mut b);
        let obs = &b["entry"][3]["resource"];
        assert_eq!(
            obs["code"]["coding"][0]["system"],
            "urn:oid:2.16.840.1.113883.6.96"
        );
        assert_eq!(
            obs["valueQuantity"]["system"],
            "urn:oid:2.16.840.1.113883.6.8"
        );
        let patient = &b["entry"][0]["resource"];
        assert_eq!(patient["identifier"][0]["system"], "http://snomed.info/sct");
        assert!(patient.get("meta").is_none());
        assert!(obs.get("meta").is_none());
    }
}
