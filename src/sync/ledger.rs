//! The ledger of what a destination holds, per (destination, local resource): the remote id
//! and version the destination gave it, and a hash of what was sent. Pure: [`plan`] turns a
//! record's Bundle into what still has to be sent (unchanged resources are left out, and
//! references to them point at their remote ids), and [`confirmed`] reads the
//! transaction-response into new ledger rows.

use std::collections::HashMap;

use serde_json::Value;

/// What the destination holds of one local resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// `Type/id` at the destination.
    pub remote: String,
    pub version: Option<String>,
    /// SHA-256 (hex) of the resource as last sent.
    pub hash: String,
}

/// A ledger row to write: (type, local id) -> held.
pub type Row = ((String, String), Held);

/// The Bundle to send (None: nothing changed) and, entry by entry, what was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub bundle: Option<Value>,
    /// (type, local id, hash) of each entry of `bundle`, in order.
    pub sent: Vec<(String, String, String)>,
    pub unchanged: usize,
}

fn hash(v: &Value) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, v.to_string().as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn local_key(entry: &Value) -> Option<(String, String)> {
    let t = entry["resource"]["resourceType"].as_str()?;
    let id = entry["fullUrl"].as_str()?.strip_prefix("urn:uuid:")?;
    Some((t.to_string(), id.to_string()))
}

fn rewrite(v: &mut Value, map: &HashMap<String, String>) {
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

/// What of `bundle` still has to be sent to a destination holding `ledger`. Takes the Bundle
/// (its entries move into the plan; nothing is copied).
pub fn plan(mut bundle: Value, ledger: &HashMap<(String, String), Held>) -> Plan {
    let entries = match bundle.get_mut("entry").map(Value::take) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let mut keep = Vec::with_capacity(entries.len());
    let mut sent = Vec::new();
    let mut remote_of_unchanged = HashMap::new();
    for e in entries {
        let h = hash(&e["resource"]);
        match local_key(&e) {
            Some(key) => match ledger.get(&key) {
                Some(held) if held.hash == h => {
                    if let Some(f) = e["fullUrl"].as_str() {
                        remote_of_unchanged.insert(f.to_string(), held.remote.clone());
                    }
                }
                _ => {
                    sent.push((key.0, key.1, h));
                    keep.push(e);
                }
            },
            // Not a urn:uuid entry: always sent, never in the ledger.
            None => keep.push(e),
        }
    }
    let unchanged = remote_of_unchanged.len();
    if sent.is_empty() && keep.is_empty() {
        return Plan {
            bundle: None,
            sent,
            unchanged,
        };
    }
    if !remote_of_unchanged.is_empty() {
        for e in &mut keep {
            rewrite(&mut e["resource"], &remote_of_unchanged);
        }
    }
    bundle["entry"] = Value::Array(keep);
    Plan {
        bundle: Some(bundle),
        sent,
        unchanged,
    }
}

/// The ledger rows a transaction-response confirms: entry `i` of the response answers entry
/// `i` of the request; its `location` (`Type/id/_history/v`) names the remote resource.
pub fn confirmed(plan: &Plan, response: &Value) -> Vec<Row> {
    let answers = response["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let request = plan
        .bundle
        .as_ref()
        .and_then(|b| b["entry"].as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for (e, a) in request.iter().zip(answers) {
        let Some(key) = local_key(e) else { continue };
        let Some((_, _, h)) = plan
            .sent
            .iter()
            .find(|(t, id, _)| (t, id) == (&key.0, &key.1))
        else {
            continue;
        };
        let Some(location) = a["response"]["location"].as_str() else {
            continue;
        };
        let mut parts = location.split('/');
        let (Some(t), Some(id)) = (parts.next(), parts.next()) else {
            continue;
        };
        let version = match (parts.next(), parts.next()) {
            (Some("_history"), Some(v)) => Some(v.to_string()),
            _ => None,
        };
        out.push((
            key,
            Held {
                remote: format!("{t}/{id}"),
                version,
                hash: h.clone(),
            },
        ));
    }
    out
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

    #[test]
    fn first_everything_then_only_what_changed_with_references_to_remote_ids() {
        let empty = HashMap::new();
        let first = plan(bundle(3.0), &empty);
        assert_eq!(first.sent.len(), 2);
        let response = json!({"entry": [
            {"response": {"status": "201 Created", "location": "Patient/r9/_history/1"}},
            {"response": {"status": "201 Created", "location": "Observation/r10/_history/1"}},
        ]});
        let rows = confirmed(&first, &response);
        assert_eq!(rows[0].1.remote, "Patient/r9");
        assert_eq!(rows[1].1.version.as_deref(), Some("1"));
        let ledger: HashMap<_, _> = rows.into_iter().collect();

        assert_eq!(plan(bundle(3.0), &ledger).bundle, None, "nothing changed");
        let second = plan(bundle(3.5), &ledger);
        let b = second.bundle.unwrap();
        assert_eq!(b["entry"].as_array().unwrap().len(), 1);
        assert_eq!(
            b["entry"][0]["resource"]["subject"]["reference"],
            "Patient/r9"
        );
        assert_eq!(second.unchanged, 1);
    }
}
