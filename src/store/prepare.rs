//! What the store writes for one accepted record, computed without IO: the record's gateway id,
//! and each resource of its Bundle with a server id (the UUID of its `urn:uuid:` fullUrl),
//! references rewritten to `Type/id`, and its search index entries.

use serde_json::{Map, Value};

/// The namespace of gateway record ids (UUID v5 over registry and recordId).
const RECORD_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5d1c_0e2a_8f3b_4c1e_9a47_2b6f_0d8e_7c31);

/// The gateway id of a registry record: stable for (registry, recordId), so two submissions of
/// one record meet at one row whatever process or order they come in.
pub fn record_key(registry: &str, record_id: &str) -> String {
    // Length-prefixed, so no (registry, recordId) pair can spell another.
    let key = format!("{}:{registry}|{record_id}", registry.len());
    uuid::Uuid::new_v5(&RECORD_NAMESPACE, key.as_bytes()).to_string()
}

/// A record ready to store.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub id: String,
    pub registry: String,
    pub record_id: String,
    /// The canonical record JSON.
    pub record: String,
    /// The transaction Bundle as mapped (what the sync engine sends).
    pub bundle: String,
    /// Mapping report and validation outcome.
    pub report: String,
    pub resources: Vec<PreparedResource>,
}

/// One resource of the record's Bundle, as the FHIR API serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedResource {
    pub resource_type: String,
    pub id: String,
    /// `Patient/<id>`: the patient every resource of the record belongs to.
    pub patient: String,
    /// The clinically relevant date (effective, performed, onset, period start...), for `date`.
    pub date: Option<String>,
    /// Search tokens: (param, system, value) for `identifier` and `code`.
    pub tokens: Vec<(&'static str, String, String)>,
    /// The resource, without `meta.versionId`/`meta.lastUpdated` (the store sets them).
    pub body: Value,
}

/// Why a Bundle cannot be stored (it came from our own mapping, so this is a bug).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the mapped Bundle cannot be stored: {0}")]
pub struct PrepareError(pub &'static str);

/// Prepares the resources of a mapped transaction Bundle.
pub fn resources(bundle: &Value) -> Result<Vec<PreparedResource>, PrepareError> {
    let entries = bundle["entry"]
        .as_array()
        .ok_or(PrepareError("no entries"))?;
    // urn:uuid:X -> Type/X for every entry.
    let mut refs = std::collections::HashMap::new();
    for e in entries {
        let full = e["fullUrl"]
            .as_str()
            .ok_or(PrepareError("entry without fullUrl"))?;
        let id = full
            .strip_prefix("urn:uuid:")
            .ok_or(PrepareError("fullUrl is not a urn:uuid"))?;
        let rt = e["resource"]["resourceType"]
            .as_str()
            .ok_or(PrepareError("entry without resourceType"))?;
        refs.insert(full.to_string(), format!("{rt}/{id}"));
    }
    let patient = entries
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .and_then(|e| refs.get(e["fullUrl"].as_str()?))
        .cloned()
        .ok_or(PrepareError("no Patient entry"))?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let mut body = e["resource"].clone();
        let reference = &refs[e["fullUrl"].as_str().unwrap_or_default()];
        let (rt, id) = reference.split_once('/').unwrap_or_default();
        rewrite_references(&mut body, &refs);
        if let Some(o) = body.as_object_mut() {
            o.insert("id".into(), Value::String(id.to_string()));
        }
        out.push(PreparedResource {
            resource_type: rt.to_string(),
            id: id.to_string(),
            patient: patient.clone(),
            date: date_of(&body),
            tokens: tokens_of(&body),
            body,
        });
    }
    Ok(out)
}

fn rewrite_references(v: &mut Value, refs: &std::collections::HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("reference") {
                if let Some(to) = refs.get(r.as_str()) {
                    *r = to.clone();
                }
            }
            for (_, child) in o.iter_mut() {
                rewrite_references(child, refs);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_references(i, refs)),
        _ => {}
    }
}

/// The date `date` searches: the first of these elements the resource has.
fn date_of(r: &Value) -> Option<String> {
    const PATHS: &[&[&str]] = &[
        &["effectiveDateTime"],
        &["effectivePeriod", "start"],
        &["performedDateTime"],
        &["performedPeriod", "start"],
        &["onsetDateTime"],
        &["recordedDate"],
        &["period", "start"],
        &["dateTime"],
        &["recorded"],
        &["birthDate"],
    ];
    PATHS.iter().find_map(|p| {
        let mut cur = r;
        for k in *p {
            cur = cur.get(*k)?;
        }
        cur.as_str().map(str::to_string)
    })
}

/// `identifier` tokens from `identifier`, `code` tokens from the resource's main code.
fn tokens_of(r: &Value) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let ids: Vec<&Value> = match &r["identifier"] {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![&r["identifier"]],
        _ => Vec::new(),
    };
    for i in ids {
        if let Some(v) = i["value"].as_str() {
            out.push((
                "identifier",
                i["system"].as_str().unwrap_or_default().to_string(),
                v.to_string(),
            ));
        }
    }
    for key in ["code", "medicationCodeableConcept", "productCode"] {
        let codings: Vec<&Map<String, Value>> = r[key]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .collect();
        for c in codings {
            if let Some(code) = c.get("code").and_then(Value::as_str) {
                out.push((
                    "code",
                    c.get("system")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    code.to_string(),
                ));
            }
        }
    }
    if let Some(types) = r["type"].as_array() {
        for t in types {
            for c in t["coding"].as_array().into_iter().flatten() {
                if let Some(code) = c["code"].as_str() {
                    out.push((
                        "code",
                        c["system"].as_str().unwrap_or_default().to_string(),
                        code.to_string(),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_come_from_full_urls_and_references_are_rewritten() {
        let b = json!({"resourceType": "Bundle", "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-5111-8111-111111111111",
             "resource": {"resourceType": "Patient", "identifier": [{"system": "s", "value": "v"}], "birthDate": "1980"}},
            {"fullUrl": "urn:uuid:22222222-2222-5222-8222-222222222222",
             "resource": {"resourceType": "Observation", "subject": {"reference": "urn:uuid:11111111-1111-5111-8111-111111111111"},
                          "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]}, "effectivePeriod": {"start": "2020-01"}}}
        ]});
        let r = resources(&b).unwrap();
        assert_eq!(r[1].id, "22222222-2222-5222-8222-222222222222");
        assert_eq!(r[1].body["id"], "22222222-2222-5222-8222-222222222222");
        assert_eq!(
            r[1].body["subject"]["reference"],
            "Patient/11111111-1111-5111-8111-111111111111"
        );
        assert_eq!(r[1].patient, "Patient/11111111-1111-5111-8111-111111111111");
        assert_eq!(r[1].date.as_deref(), Some("2020-01"));
        assert_eq!(
            r[1].tokens,
            vec![("code", "http://loinc.org".to_string(), "1-8".to_string())]
        );
        assert_eq!(
            r[0].tokens,
            vec![("identifier", "s".to_string(), "v".to_string())]
        );
    }

    #[test]
    fn record_keys_are_stable_and_distinct() {
        assert_eq!(record_key("EBMT", "A"), record_key("EBMT", "A"));
        assert_ne!(record_key("EBMT", "A"), record_key("EBMT", "B"));
        assert_ne!(record_key("EB|MT", "A"), record_key("EB", "MT|A"));
    }
}
