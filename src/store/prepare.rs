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

/// How a record's Bundle is stored: zstd at its fastest level. FHIR JSON repeats its keys,
/// systems and profile URLs, so this is about a tenth of the text.
pub fn pack(bundle: &str) -> std::io::Result<Vec<u8>> {
    let mut packed = zstd::bulk::compress(bundle.as_bytes(), 1)?;
    // `compress` allocates its worst case, the input's size and more; a prepared record
    // waiting for the writer should hold only its tenth.
    packed.shrink_to_fit();
    Ok(packed)
}

/// The Bundle text of [`pack`]ed bytes; `None` if they are not a zstd frame of UTF-8.
pub fn unpack(packed: &[u8]) -> Option<String> {
    let bytes = zstd::stream::decode_all(packed).ok()?;
    String::from_utf8(bytes).ok()
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
    /// `bundle` as stored: zstd-compressed ([`pack`]), made before the write so the one
    /// SQLite writer does not spend its time compressing.
    pub bundle_packed: Vec<u8>,
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
    /// The resource as JSON text, with `meta.versionId`/`meta.lastUpdated` left for the store.
    pub body: Body,
}

/// A resource serialised once, when the record is prepared, with the place of
/// `meta.versionId` and `meta.lastUpdated` left open: `head` + those two fields + `tail`. The
/// store fills them in when it commits (the version and the commit time are known only then)
/// without parsing or serialising the resource again, so the one SQLite writer spends no time
/// on JSON, and a prepared record holds text rather than a `Value` tree several times its size.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    head: String,
    tail: String,
}

/// The two fields as `Body::new` writes them: JSON escapes control characters, so no value
/// of a resource can spell this.
const OPEN_META: &str = r#""versionId":"\u0001","lastUpdated":"\u0002""#;

impl Body {
    /// `resource` with the place of `meta.versionId` and `meta.lastUpdated` kept (any value
    /// they had is the store's to set, as before).
    fn new(mut resource: Value) -> Result<Body, PrepareError> {
        let o = resource
            .as_object_mut()
            .ok_or(PrepareError("an entry resource is not an object"))?;
        let meta = o
            .entry("meta")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or(PrepareError("meta is not an object"))?;
        // Removed first so both land, side by side, at the end of meta.
        meta.shift_remove("versionId");
        meta.shift_remove("lastUpdated");
        meta.insert("versionId".into(), Value::String("\u{1}".into()));
        meta.insert("lastUpdated".into(), Value::String("\u{2}".into()));
        let text = resource.to_string();
        let at = text
            .find(OPEN_META)
            .ok_or(PrepareError("a resource without its meta fields"))?;
        Ok(Body {
            head: text[..at].to_string(),
            tail: text[at + OPEN_META.len()..].to_string(),
        })
    }

    /// The resource as stored: version `version`, last updated `at` (an instant: nothing in
    /// it needs escaping).
    pub fn with_meta(&self, version: i64, at: &str) -> String {
        let mut out = String::with_capacity(self.head.len() + self.tail.len() + 64);
        out.push_str(&self.head);
        out.push_str(&format!(r#""versionId":"{version}","lastUpdated":"{at}""#));
        out.push_str(&self.tail);
        out
    }

    /// Whether `stored` (a body the store wrote) is this resource, whatever its version and
    /// time. The texts are compared first; a body written by another serialisation (an
    /// earlier release) is compared as JSON.
    pub fn same_as(&self, stored: &str) -> bool {
        let middle = stored
            .strip_prefix(self.head.as_str())
            .and_then(|rest| rest.strip_suffix(self.tail.as_str()));
        if let Some(m) = middle {
            if is_version_and_time(m) {
                return true;
            }
        }
        let strip = |text: &str| -> Option<Value> {
            let mut v: Value = serde_json::from_str(text).ok()?;
            if let Some(m) = v.get_mut("meta").and_then(Value::as_object_mut) {
                m.remove("versionId");
                m.remove("lastUpdated");
            }
            Some(v)
        };
        match (strip(stored), strip(&self.with_meta(0, ""))) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

/// `"versionId":"<digits>","lastUpdated":"<no quote>"`, as [`Body::with_meta`] writes it.
fn is_version_and_time(m: &str) -> bool {
    let Some(rest) = m.strip_prefix(r#""versionId":""#) else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let Some(time) = rest[digits..].strip_prefix(r#"","lastUpdated":""#) else {
        return false;
    };
    digits > 0 && time.strip_suffix('"').is_some_and(|t| !t.contains('"'))
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
            body: Body::new(body)?,
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
        let body: Value =
            serde_json::from_str(&r[1].body.with_meta(3, "2026-01-01T00:00:00.000Z")).unwrap();
        assert_eq!(body["id"], "22222222-2222-5222-8222-222222222222");
        assert_eq!(body["meta"]["versionId"], "3");
        assert_eq!(body["meta"]["lastUpdated"], "2026-01-01T00:00:00.000Z");
        assert_eq!(
            body["subject"]["reference"],
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
    fn a_body_knows_itself_at_any_version_and_only_itself() {
        let b = json!({"resourceType": "Bundle", "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-5111-8111-111111111111",
             "resource": {"resourceType": "Patient", "meta": {"profile": ["p"]}, "birthDate": "1980"}}
        ]});
        let body = &resources(&b).unwrap()[0].body;
        let v1 = body.with_meta(1, "2026-01-01T00:00:00.000Z");
        assert_eq!(
            v1,
            r#"{"resourceType":"Patient","meta":{"profile":["p"],"versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z"},"birthDate":"1980","id":"11111111-1111-5111-8111-111111111111"}"#
        );
        assert!(body.same_as(&v1));
        assert!(body.same_as(&body.with_meta(12, "2027-05-05T10:00:00.000Z")));
        // The same resource written with other spacing and key order (an earlier release).
        let mut other: Value = serde_json::from_str(&v1).unwrap();
        other["meta"]["versionId"] = json!("7");
        assert!(body.same_as(&serde_json::to_string_pretty(&other).unwrap()));
        // Another resource, or a broken text, is not the same.
        assert!(!body.same_as(&v1.replace("1980", "1981")));
        assert!(!body.same_as(&v1[..v1.len() - 1]));
        // The text fast path reads only what with_meta writes.
        assert!(is_version_and_time(r#""versionId":"12","lastUpdated":"t""#));
        assert!(!is_version_and_time(r#""versionId":"x","lastUpdated":"t""#));
        assert!(!is_version_and_time(
            r#""versionId":"1","lastUpdated":"t"x""#
        ));

        // A resource without meta gets one; a version it came with is the store's to set.
        let bare = json!({"resourceType": "Bundle", "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-5111-8111-111111111111",
             "resource": {"resourceType": "Patient"}}]});
        let v: Value =
            serde_json::from_str(&resources(&bare).unwrap()[0].body.with_meta(2, "t")).unwrap();
        assert_eq!(v["meta"], json!({"versionId": "2", "lastUpdated": "t"}));
        let mut versioned = bare.clone();
        versioned["entry"][0]["resource"]["meta"] =
            json!({"versionId": "4", "profile": ["p"], "lastUpdated": "x"});
        let v: Value =
            serde_json::from_str(&resources(&versioned).unwrap()[0].body.with_meta(5, "t"))
                .unwrap();
        assert_eq!(
            v["meta"],
            json!({"profile": ["p"], "versionId": "5", "lastUpdated": "t"})
        );
    }

    #[test]
    fn record_keys_are_stable_and_distinct() {
        assert_eq!(record_key("EBMT", "A"), record_key("EBMT", "A"));
        assert_ne!(record_key("EBMT", "A"), record_key("EBMT", "B"));
        assert_ne!(record_key("EB|MT", "A"), record_key("EB", "MT|A"));
    }
}
