//! The FHIRPath invariants of base R4 that apply to the resources and datatypes Engraft emits,
//! written natively: each is a few lines over the JSON, where a FHIRPath engine would be a
//! large dependency for a handful of fixed expressions. The walker in [`super::base`] calls
//! them with each node's type, so they run exactly where the spec attaches them.
//!
//! Covered: ele-1, ext-1, per-1, qty-3, rat-1, ref-1, dom-2..5, obs-6, obs-7, con-3, con-4,
//! con-5, ppc-1..5, mad-1, pat-1. Not covered (warnings in the spec, or for types Engraft does
//! not emit): dom-6 (narrative, a best-practice warning), and every other resource's own.

use serde_json::{Map, Value};

/// A failed invariant: its key and a sentence (the expression is the caller's node).
pub type Failure = (&'static str, &'static str);

/// ele-1: an element has a value or children other than `id`.
pub fn element(obj: &Map<String, Value>) -> Option<Failure> {
    (obj.is_empty() || (obj.len() == 1 && obj.contains_key("id"))).then_some((
        "ele-1",
        "All FHIR elements must have a @value or children (ele-1).",
    ))
}

/// Invariants of a datatype instance.
pub fn datatype(ty: &str, obj: &Map<String, Value>) -> Vec<Failure> {
    const QUANTITIES: &[&str] = &[
        "Quantity",
        "SimpleQuantity",
        "Age",
        "Duration",
        "Count",
        "Distance",
        "MoneyQuantity",
    ];
    let mut out = Vec::new();
    if ty == "Extension" {
        let has_value = obj.keys().any(|k| k.starts_with("value"));
        let has_ext = obj
            .get("extension")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if has_value == has_ext {
            out.push((
                "ext-1",
                "An extension must have either extensions or value[x], not both (ext-1).",
            ));
        }
    }
    if ty == "Period" {
        if let (Some(s), Some(e)) = (
            obj.get("start").and_then(Value::as_str),
            obj.get("end").and_then(Value::as_str),
        ) {
            if starts_after_end(s, e) {
                out.push((
                    "per-1",
                    "If present, start SHALL have a lower value than end (per-1).",
                ));
            }
        }
    }
    if QUANTITIES.contains(&ty) && obj.contains_key("code") && !obj.contains_key("system") {
        out.push((
            "qty-3",
            "If a code for the unit is present, the system SHALL also be present (qty-3).",
        ));
    }
    if ty == "Ratio" && obj.contains_key("numerator") != obj.contains_key("denominator") {
        out.push((
            "rat-1",
            "Numerator and denominator SHALL both be present, or both absent (rat-1).",
        ));
    }
    out
}

/// The earliest instant a FHIR date/dateTime can mean, as a sortable string, and the latest.
fn bounds(s: &str) -> (String, String) {
    let date = &s[..s.len().min(10)];
    let (lo, hi) = match date.len() {
        4 => (format!("{date}-01-01"), format!("{date}-12-31")),
        7 => (format!("{date}-01"), format!("{date}-31")),
        _ => (date.to_string(), date.to_string()),
    };
    (lo, hi)
}

/// per-1 with partial dates: only a start certainly after the end fails. Times on the same day
/// are compared when both carry one (same zone assumed only if equal suffixes).
fn starts_after_end(start: &str, end: &str) -> bool {
    let (s_lo, _) = bounds(start);
    let (_, e_hi) = bounds(end);
    if s_lo != e_hi || start.len() <= 10 || end.len() <= 10 {
        return s_lo > e_hi;
    }
    // Same day, both with times: compare when the zones are written the same way.
    let zone = |t: &str| {
        t.rfind(['Z', '+', '-'])
            .filter(|i| *i > 10)
            .map(|i| t[i..].to_string())
    };
    zone(start) == zone(end) && start > end
}

/// Invariants of a resource (the walker calls this for every resource, contained ones too).
pub fn resource(rt: &str, obj: &Map<String, Value>, contained: bool) -> Vec<Failure> {
    let mut out = Vec::new();
    let has = |k: &str| obj.contains_key(k);
    let value_x = obj
        .keys()
        .any(|k| k.starts_with("value") && k.len() > 5 && k.as_bytes()[5].is_ascii_uppercase());
    if contained {
        if has("contained") {
            out.push((
                "dom-2",
                "A contained resource SHALL NOT contain nested resources (dom-2).",
            ));
        }
        if obj
            .get("meta")
            .is_some_and(|m| m.get("versionId").is_some() || m.get("lastUpdated").is_some())
        {
            out.push(("dom-4", "A contained resource SHALL NOT have a meta.versionId or a meta.lastUpdated (dom-4)."));
        }
        if obj.get("meta").is_some_and(|m| m.get("security").is_some()) {
            out.push((
                "dom-5",
                "A contained resource SHALL NOT have a security label (dom-5).",
            ));
        }
    } else if let Some(list) = obj.get("contained").and_then(Value::as_array) {
        // dom-3: every contained resource is referenced from elsewhere in the resource.
        let mut refs = Vec::new();
        local_refs_of(obj, &mut refs);
        for c in list {
            let id = c.get("id").and_then(Value::as_str).unwrap_or("");
            if !refs.iter().any(|r| r == &format!("#{id}")) {
                out.push(("dom-3", "A contained resource SHALL be referred to from elsewhere in the resource (dom-3)."));
            }
        }
    }
    // ref-1: a local reference needs a contained resource with that id.
    let mut refs = Vec::new();
    local_refs_of(obj, &mut refs);
    let ids: Vec<&str> = obj
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("id")?.as_str())
        .collect();
    if refs.iter().any(|r| r != "#" && !ids.contains(&&r[1..])) {
        out.push((
            "ref-1",
            "A local reference (#id) SHALL point to a contained resource (ref-1).",
        ));
    }
    match rt {
        "Observation" => {
            if has("dataAbsentReason") && value_x {
                out.push(("obs-6", "dataAbsentReason SHALL only be present if Observation.value[x] is not present (obs-6)."));
            }
            let code = obj
                .get("code")
                .and_then(|c| c.get("coding"))
                .and_then(Value::as_array);
            let component_repeats_code = obj
                .get("component")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        let cc = c
                            .get("code")
                            .and_then(|x| x.get("coding"))
                            .and_then(Value::as_array);
                        match (code, cc) {
                            (Some(a), Some(b)) => a.iter().any(|x| {
                                b.iter().any(|y| {
                                    x.get("system") == y.get("system")
                                        && x.get("code") == y.get("code")
                                })
                            }),
                            _ => false,
                        }
                    })
                });
            if value_x && component_repeats_code {
                out.push(("obs-7", "If Observation.code is the same as a component code then the value element associated with the code SHALL NOT be present (obs-7)."));
            }
        }
        "Condition" => {
            let codes = |k: &str| -> Vec<String> {
                obj.get(k)
                    .and_then(|c| c.get("coding"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("code")?.as_str().map(str::to_string))
                    .collect()
            };
            let verification = codes("verificationStatus");
            let clinical = codes("clinicalStatus");
            let problem_list = obj
                .get("category")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    c.get("coding")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|x| x.get("code").and_then(Value::as_str) == Some("problem-list-item"))
                });
            let entered_in_error = verification.iter().any(|c| c == "entered-in-error");
            if problem_list && !entered_in_error && !has("clinicalStatus") {
                out.push(("con-3", "Condition.clinicalStatus SHALL be present if verificationStatus is not entered-in-error and category is problem-list-item (con-3)."));
            }
            let abated = obj.keys().any(|k| k.starts_with("abatement"));
            if abated
                && !clinical.is_empty()
                && !clinical
                    .iter()
                    .any(|c| matches!(c.as_str(), "inactive" | "resolved" | "remission"))
            {
                out.push(("con-4", "If condition is abated, then clinicalStatus must be either inactive, resolved, or remission (con-4)."));
            }
            if entered_in_error && has("clinicalStatus") {
                out.push(("con-5", "Condition.clinicalStatus SHALL NOT be present if verification Status is entered-in-error (con-5)."));
            }
        }
        "Consent" => {
            if !has("policy") && !has("policyRule") {
                out.push(("ppc-1", "Either a Policy or PolicyRule (ppc-1)."));
            }
            let scope: Vec<&str> = obj
                .get("scope")
                .and_then(|s| s.get("coding"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("code")?.as_str())
                .collect();
            for (key, code, msg) in [
                (
                    "ppc-2",
                    "patient-privacy",
                    "IF Scope=privacy, there must be a patient (ppc-2).",
                ),
                (
                    "ppc-3",
                    "research",
                    "IF Scope=research, there must be a patient (ppc-3).",
                ),
                (
                    "ppc-4",
                    "adr",
                    "IF Scope=adr, there must be a patient (ppc-4).",
                ),
                (
                    "ppc-5",
                    "treatment",
                    "IF Scope=treatment, there must be a patient (ppc-5).",
                ),
            ] {
                if scope.contains(&code) && !has("patient") {
                    out.push((key, msg));
                }
            }
        }
        "MedicationAdministration" => {
            if let Some(d) = obj.get("dosage").and_then(Value::as_object) {
                if !d.contains_key("text")
                    && !d.contains_key("dose")
                    && !d.keys().any(|k| k.starts_with("rate"))
                {
                    out.push(("mad-1", "If dosage is present, it SHALL have at least one of dosage.text, dosage.dose or dosage.rate[x] (mad-1)."));
                }
            }
        }
        "Patient" => {
            let bad_contact = obj
                .get("contact")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    ["name", "telecom", "address", "organization"]
                        .iter()
                        .all(|k| c.get(k).is_none())
                });
            if bad_contact {
                out.push(("pat-1", "A contact SHALL have a name, a telecom, an address or an organization (pat-1)."));
            }
        }
        _ => {}
    }
    out
}

/// Local (`#id`) references of a resource, not looking into its contained resources.
fn local_refs_of(resource: &Map<String, Value>, out: &mut Vec<String>) {
    for (k, x) in resource {
        if k != "contained" {
            local_refs(x, out);
        }
    }
}

fn local_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "reference" {
                    if let Some(r) = x.as_str().filter(|r| r.starts_with('#')) {
                        out.push(r.to_string());
                    }
                } else {
                    local_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| local_refs(x, out)),
        _ => {}
    }
}

/// Engraft's own invariants, declared as `constraint`s in `profiles/` (with a FHIRPath
/// expression, for third-party validators) and evaluated here. `None`: no native
/// implementation (a test keeps every declared key implemented).
pub fn profile(key: &str, v: &Value) -> Option<bool> {
    // On a value of the wrong type the expression is empty: the type check reports it.
    let quantity = v.is_object();
    Some(match key {
        // Observation.component:dayPostHsct.value[x]: whole days, UCUM `d`.
        "eng-1" => {
            !quantity
                || v["system"] == "http://unitsofmeasure.org"
                    && v["code"] == "d"
                    && v["value"].as_f64().is_some_and(|d| d.fract() == 0.0)
        }
        // MedicationAdministration.dosage.dose: a dose is greater than zero.
        "eng-2" => !quantity || v["value"].as_f64().is_none_or(|d| d > 0.0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_compare_partial_dates_conservatively() {
        assert!(starts_after_end("2020-02-01", "2020-01-31"));
        assert!(!starts_after_end("2020", "2020-01-31"));
        assert!(!starts_after_end("2020-01-31", "2020-01"));
        assert!(starts_after_end(
            "2020-01-31T10:00:00Z",
            "2020-01-31T09:00:00Z"
        ));
        assert!(!starts_after_end(
            "2020-01-31T10:00:00+02:00",
            "2020-01-31T09:00:00Z"
        ));
    }
}
