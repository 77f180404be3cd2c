//! The ledger of what a destination holds, per (destination, local resource): the remote id
//! and version the destination gave it, and a hash of what was sent. Pure: [`plan`] turns a
//! record's Bundle into what still has to be sent (unchanged resources are left out, and
//! references to them point at their remote ids), and [`confirmed`] reads the
//! transaction-response into new ledger rows.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::capability::Support;

/// What the destination holds of one local resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// `Type/id` at the destination.
    pub remote: String,
    pub version: Option<String>,
    /// SHA-256 (hex) of the resource as last sent.
    pub hash: String,
    /// The destination's own resource (its Patient, found by MRN): referenced, never written
    /// or deleted by Engraft.
    pub matched: bool,
}

/// A ledger key: (resource type, local id).
pub type Key = (String, String);

/// A ledger row to write: (type, local id) -> held.
pub type Row = (Key, Held);

/// What still has to be done at a destination for one record version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Entries to write, in dependency order. Resources the destination already holds are
    /// updated by their remote id (with `If-Match` where the destination honours it);
    /// references to unchanged resources point at their remote ids.
    pub entries: Vec<Value>,
    /// Hash of each entry of `entries` that has a local key.
    pub hashes: HashMap<Key, String>,
    /// Resources the destination holds that this version no longer has: key and remote.
    pub deletes: Vec<(Key, String)>,
    pub unchanged: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.deletes.is_empty()
    }

    /// Delete entries for [`Plan::deletes`].
    pub fn delete_entries(&self) -> Vec<Value> {
        self.deletes
            .iter()
            .map(|(_, remote)| json!({"request": {"method": "DELETE", "url": remote}}))
            .collect()
    }
}

/// A transaction Bundle of `entries`.
pub fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// SHA-256 (hex) of a resource as serialised. The serialiser writes straight into the digest
/// through a small buffer (no copy of the whole text: this runs for every resource of every
/// delivery).
pub fn hash(v: &Value) -> String {
    struct Digest {
        ctx: ring::digest::Context,
        buf: Vec<u8>,
    }
    impl std::io::Write for Digest {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.buf.len() + b.len() > self.buf.capacity() {
                self.ctx.update(&self.buf);
                self.buf.clear();
            }
            if b.len() >= self.buf.capacity() {
                self.ctx.update(b);
            } else {
                self.buf.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Digest {
        ctx: ring::digest::Context::new(&ring::digest::SHA256),
        buf: Vec::with_capacity(4096),
    };
    // Neither serialising a Value nor this writer can fail.
    let _ = serde_json::to_writer(&mut w, v);
    w.ctx.update(&w.buf);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in w.ctx.finish().as_ref() {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

/// The ledger key of an entry: its type and the local id of its `urn:uuid:` fullUrl.
pub fn local_key(entry: &Value) -> Option<Key> {
    let t = entry["resource"]["resourceType"].as_str()?;
    let id = entry["fullUrl"].as_str()?.strip_prefix("urn:uuid:")?;
    Some((t.to_string(), id.to_string()))
}

/// Rewrites every `reference` found in `map` (fullUrl -> remote `Type/id`).
pub fn rewrite(v: &mut Value, map: &HashMap<String, String>) {
    if map.is_empty() {
        return;
    }
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("reference") {
                if let Some(to) = map.get(r.as_str()) {
                    *r = to.clone();
                }
            }
            for child in o.values_mut() {
                rewrite(child, map);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| rewrite(c, map)),
        _ => {}
    }
}

/// What of `bundle` still has to be sent to a destination holding `ledger` and supporting
/// `support`. Takes the Bundle (its entries move into the plan; nothing is copied).
pub fn plan(mut bundle: Value, ledger: &HashMap<Key, Held>, support: &Support) -> Plan {
    let entries = match bundle.get_mut("entry").map(Value::take) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let mut keep = Vec::with_capacity(entries.len());
    let mut hashes = HashMap::new();
    let mut present = std::collections::HashSet::new();
    let mut remote_of_unchanged = HashMap::new();
    for mut e in entries {
        let Some(key) = local_key(&e) else {
            // Not a urn:uuid entry: always sent, never in the ledger.
            keep.push(e);
            continue;
        };
        present.insert(key.clone());
        let h = hash(&e["resource"]);
        match ledger.get(&key) {
            Some(held) if held.hash == h || held.matched => {
                if let Some(f) = e["fullUrl"].as_str() {
                    remote_of_unchanged.insert(f.to_string(), held.remote.clone());
                }
            }
            Some(held) => {
                // Known there: an update of that resource, guarded by its version.
                let mut request = json!({"method": "PUT", "url": held.remote});
                if let Some(v) = held.version.as_ref().filter(|_| support.if_match(&key.0)) {
                    request["ifMatch"] = json!(format!("W/\"{v}\""));
                }
                e["request"] = request;
                hashes.insert(key, h);
                keep.push(e);
            }
            None => {
                hashes.insert(key, h);
                keep.push(e);
            }
        }
    }
    let unchanged = remote_of_unchanged.len();
    for e in &mut keep {
        rewrite(&mut e["resource"], &remote_of_unchanged);
    }
    let mut deletes = deletable(ledger);
    deletes.retain(|(k, _)| !present.contains(k));
    Plan {
        entries: crate::sync::order::dependency_order(keep),
        hashes,
        deletes,
        unchanged,
    }
}

/// What of `held` may be deleted at the destination (not its own matched Patient), referring
/// resources before what they refer to.
pub fn deletable(held: &HashMap<Key, Held>) -> Vec<(Key, String)> {
    let mut out: Vec<(Key, String)> = held
        .iter()
        .filter(|(_, h)| !h.matched)
        .map(|(k, h)| (k.clone(), h.remote.clone()))
        .collect();
    // Referring resources before what they refer to: Provenance first, Patient last.
    let rank = |t: &str| match t {
        "Provenance" => 0,
        "Patient" => 3,
        "Encounter" | "Condition" | "Procedure" | "BiologicallyDerivedProduct" => 2,
        _ => 1,
    };
    out.sort_by(|a, b| rank(&a.0 .0).cmp(&rank(&b.0 .0)).then(a.cmp(b)));
    out
}

/// Splits a `Type/id[/_history/v]` location (absolute or relative) into `Type/id` and version.
pub fn parse_location(location: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = location.trim_end_matches('/').split('/').collect();
    let at = parts.iter().rposition(|p| *p == "_history");
    let (t, id, v) = match at {
        Some(h) if h >= 2 => (
            parts[h - 2],
            parts[h - 1],
            parts.get(h + 1).map(|v| v.to_string()),
        ),
        _ if parts.len() >= 2 => (parts[parts.len() - 2], parts[parts.len() - 1], None),
        _ => return None,
    };
    if t.is_empty() || id.is_empty() {
        return None;
    }
    Some((format!("{t}/{id}"), v))
}

/// The ledger row for `entry` once the destination answered with `location` (and maybe a
/// version).
pub fn confirmed_one(
    plan: &Plan,
    entry: &Value,
    location: &str,
    etag: Option<&str>,
) -> Option<Row> {
    let key = local_key(entry)?;
    let h = plan.hashes.get(&key)?;
    let (remote, mut version) = parse_location(location)?;
    if version.is_none() {
        version = etag.map(|e| e.trim_start_matches("W/").trim_matches('"').to_string());
    }
    Some((
        key,
        Held {
            remote,
            version,
            hash: h.clone(),
            matched: false,
        },
    ))
}

/// The ledger rows a transaction-response confirms for `sent` (the request's entries): entry
/// `i` of the response answers entry `i` of the request.
pub fn confirmed(plan: &Plan, sent: &[Value], response: &Value) -> Vec<Row> {
    let answers = response["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    sent.iter()
        .zip(answers)
        .filter_map(|(e, a)| {
            confirmed_one(
                plan,
                e,
                a["response"]["location"].as_str()?,
                a["response"]["etag"].as_str(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle(value: f64) -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "gender": "female"},
             "request": {"method": "PUT", "url": "Patient?identifier=s%7C1"}},
            {"fullUrl": "urn:uuid:o1", "resource": {"resourceType": "Observation",
                "subject": {"reference": "urn:uuid:p1"}, "valueQuantity": {"value": value}},
             "request": {"method": "PUT", "url": "Observation?identifier=s%7Co1"}},
        ]})
    }

    fn support(if_match: bool) -> Support {
        Support {
            transactions: true,
            if_match_override: Some(if_match),
            conditional_override: Some(true),
            ..Support::default()
        }
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_compact_text_as_ledgers_already_hold() {
        // Ledgers written by earlier versions hold hashes of `to_string()`: the streamed hash
        // must be the same, or an upgrade would re-send every resource.
        let of_text = |v: &Value| -> String {
            let d = ring::digest::digest(&ring::digest::SHA256, v.to_string().as_bytes());
            d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
        };
        let r = bundle(1.5)["entry"][1]["resource"].clone();
        assert_eq!(hash(&r), of_text(&r));
        assert_ne!(hash(&r), hash(&bundle(2.5)["entry"][1]["resource"]));
        // Larger than the writer's buffer, with text that needs escaping, and a single string
        // written in one piece larger than the buffer.
        let big = json!({"resourceType": "Observation", "note": [{"text": "é\"\n".repeat(5000)}]});
        assert_eq!(hash(&big), of_text(&big));
        let long = json!({"resourceType": "Observation", "id": "x".repeat(10_000)});
        assert_eq!(hash(&long), of_text(&long));
    }

    #[test]
    fn first_everything_then_only_what_changed_with_references_to_remote_ids() {
        let empty = HashMap::new();
        let first = plan(bundle(3.0), &empty, &support(true));
        assert_eq!(first.entries.len(), 2);
        let response = json!({"entry": [
            {"response": {"status": "201 Created", "location": "Patient/r9/_history/1"}},
            {"response": {"status": "201 Created", "location": "Observation/r10/_history/1"}},
        ]});
        let rows = confirmed(&first, &first.entries, &response);
        assert_eq!(rows[0].1.remote, "Patient/r9");
        assert_eq!(rows[1].1.version.as_deref(), Some("1"));
        let ledger: HashMap<_, _> = rows.into_iter().collect();

        assert!(
            plan(bundle(3.0), &ledger, &support(true)).is_empty(),
            "nothing changed"
        );
        let second = plan(bundle(3.5), &ledger, &support(true));
        assert_eq!(second.entries.len(), 1);
        let e = &second.entries[0];
        assert_eq!(e["resource"]["subject"]["reference"], "Patient/r9");
        assert_eq!(
            e["request"]["url"], "Observation/r10",
            "an update of the remote resource"
        );
        assert_eq!(
            e["request"]["ifMatch"], "W/\"1\"",
            "guarded by the version we wrote"
        );
        assert_eq!(second.unchanged, 1);
        let unguarded = plan(bundle(3.5), &ledger, &support(false));
        assert!(unguarded.entries[0]["request"].get("ifMatch").is_none());
    }

    #[test]
    fn resources_the_record_lost_are_deleted_and_matched_ones_never_written() {
        let mut ledger = HashMap::new();
        let held = |remote: &str, matched| Held {
            remote: remote.into(),
            version: Some("1".into()),
            hash: "old".into(),
            matched,
        };
        ledger.insert(("Patient".into(), "p1".into()), held("Patient/ehr7", true));
        ledger.insert(
            ("Observation".into(), "gone".into()),
            held("Observation/r3", false),
        );
        let p = plan(bundle(1.0), &ledger, &support(true));
        assert_eq!(p.entries.len(), 1, "the EHR's own Patient is not written");
        assert_eq!(
            p.entries[0]["resource"]["subject"]["reference"],
            "Patient/ehr7"
        );
        assert_eq!(
            p.deletes,
            vec![(
                ("Observation".into(), "gone".into()),
                "Observation/r3".into()
            )]
        );
        assert_eq!(p.delete_entries()[0]["request"]["method"], "DELETE");
    }

    #[test]
    fn locations_parse_absolute_relative_and_without_version() {
        assert_eq!(
            parse_location("https://ehr.example/fhir/Observation/7/_history/3"),
            Some(("Observation/7".into(), Some("3".into())))
        );
        assert_eq!(
            parse_location("Patient/1"),
            Some(("Patient/1".into(), None))
        );
        assert_eq!(parse_location("x"), None);
    }
    #[test]
    fn deletions_go_from_referring_resources_to_the_patient_and_spare_matched_ones() {
        let h = |r: &str, matched| Held {
            remote: r.into(),
            version: None,
            hash: String::new(),
            matched,
        };
        let mut held = HashMap::new();
        held.insert(("Patient".into(), "p".into()), h("Patient/1", false));
        held.insert(
            ("Observation".into(), "o".into()),
            h("Observation/2", false),
        );
        held.insert(("Provenance".into(), "v".into()), h("Provenance/3", false));
        held.insert(("Condition".into(), "c".into()), h("Condition/4", false));
        let order: Vec<String> = deletable(&held).into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            order,
            ["Provenance/3", "Observation/2", "Condition/4", "Patient/1"]
        );
        held.insert(("Patient".into(), "p".into()), h("Patient/1", true));
        assert_eq!(deletable(&held).len(), 3);
    }
}
