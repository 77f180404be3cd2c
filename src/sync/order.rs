//! Dependency order of a Bundle's entries: an entry comes after every entry it references
//! (by `fullUrl`), so a server without transactions, or a transaction split in chunks, always
//! finds a reference's target already written. Pure.

use std::collections::HashMap;

use serde_json::Value;

/// Every `reference` in `v`, in document order.
pub fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("reference") {
                out.push(r.clone());
            }
            o.values().for_each(|c| references(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| references(c, out)),
        _ => {}
    }
}

/// `entries` reordered so that referenced entries come first; otherwise the original order is
/// kept. Entries in a reference cycle (which no server without transactions could write
/// either) keep their original order after everything else.
pub fn dependency_order(entries: Vec<Value>) -> Vec<Value> {
    let position: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((e["fullUrl"].as_str()?, i)))
        .collect();
    let needs: Vec<Vec<usize>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut refs = Vec::new();
            references(&e["resource"], &mut refs);
            let mut n: Vec<usize> = refs
                .iter()
                .filter_map(|r| position.get(r.as_str()).copied())
                .filter(|&j| j != i)
                .collect();
            n.sort_unstable();
            n.dedup();
            n
        })
        .collect();
    let mut done = vec![false; entries.len()];
    let mut order = Vec::with_capacity(entries.len());
    // Repeated passes in original order: stable, and bundles are shallow (a few levels).
    loop {
        let before = order.len();
        for i in 0..entries.len() {
            if !done[i] && needs[i].iter().all(|&j| done[j]) {
                done[i] = true;
                order.push(i);
            }
        }
        if order.len() == entries.len() || order.len() == before {
            break;
        }
    }
    order.extend((0..entries.len()).filter(|&i| !done[i]));
    let mut slots: Vec<Option<Value>> = entries.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: &str, refs: &[&str]) -> Value {
        let refs: Vec<Value> = refs
            .iter()
            .map(|r| json!({"reference": format!("urn:uuid:{r}")}))
            .collect();
        json!({"fullUrl": format!("urn:uuid:{id}"), "resource": {"resourceType": "Basic", "r": refs}})
    }

    fn ids(v: &[Value]) -> Vec<&str> {
        v.iter()
            .map(|e| {
                e["fullUrl"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("urn:uuid:")
            })
            .collect()
    }

    #[test]
    fn targets_come_first_and_the_rest_keeps_its_order() {
        let e = vec![
            entry("p", &[]),
            entry("proc", &["p", "product"]),
            entry("obs", &["p", "proc"]),
            entry("product", &["p"]),
            entry("prov", &["p", "proc", "obs", "product"]),
        ];
        assert_eq!(
            ids(&dependency_order(e)),
            ["p", "product", "proc", "obs", "prov"]
        );
    }

    #[test]
    fn a_cycle_goes_last_in_original_order() {
        let e = vec![entry("a", &["b"]), entry("b", &["a"]), entry("c", &[])];
        assert_eq!(ids(&dependency_order(e)), ["c", "a", "b"]);
    }
}
