//! Bundle rules: unique fullUrls (bdl-7), no version-specific fullUrl (bdl-8), a request on
//! every batch or transaction entry (bdl-3), responses only in responses (bdl-4), search data
//! only in search sets (bdl-1, bdl-2), an entry with something in it (bdl-5), and, in
//! transaction, batch and document Bundles (what is sent or filed as a unit), every
//! reference of an entry resolving to an entry of the Bundle unless it is conditional or
//! absolute. Search sets and histories refer to resources on the server and are not judged.

use std::collections::HashMap;

use serde_json::Value;

use crate::fhir::OutcomeIssue;

fn issue(code: &'static str, key: &str, expr: String, msg: &str) -> OutcomeIssue {
    OutcomeIssue {
        severity: "error",
        code,
        detail: key.to_string(),
        diagnostics: msg.to_string(),
        expression: expr,
        location: None,
    }
}

/// fullUrl -> resourceType of the entries of a Bundle.
pub fn index(bundle: &Value) -> HashMap<String, String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["fullUrl"].as_str()?.to_string(),
                e["resource"]["resourceType"].as_str()?.to_string(),
            ))
        })
        .collect()
}

pub fn validate(bundle: &Value, full_urls: &HashMap<String, String>) -> Vec<OutcomeIssue> {
    let mut out = Vec::new();
    let ty = bundle["type"].as_str().unwrap_or("");
    if bundle.get("total").is_some() && !matches!(ty, "searchset" | "history") {
        out.push(issue(
            "invariant",
            "bdl-1",
            "Bundle.total".into(),
            "total only when a search or history (bdl-1).",
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, e) in bundle["entry"].as_array().into_iter().flatten().enumerate() {
        let ex = format!("Bundle.entry[{i}]");
        if e.get("search").is_some() && ty != "searchset" {
            out.push(issue(
                "invariant",
                "bdl-2",
                format!("{ex}.search"),
                "entry.search only when a search (bdl-2).",
            ));
        }
        if matches!(ty, "batch" | "transaction" | "history") && e.get("request").is_none() {
            out.push(issue(
                "invariant",
                "bdl-3",
                format!("{ex}.request"),
                "entry.request is mandatory for batch, transaction and history (bdl-3).",
            ));
        }
        if e.get("response").is_some()
            && !matches!(ty, "batch-response" | "transaction-response" | "history")
        {
            out.push(issue(
                "invariant",
                "bdl-4",
                format!("{ex}.response"),
                "entry.response only for responses and history (bdl-4).",
            ));
        }
        if e.get("resource").is_none() && e.get("request").is_none() && e.get("response").is_none()
        {
            out.push(issue(
                "invariant",
                "bdl-5",
                ex.clone(),
                "An entry must have a resource, a request or a response (bdl-5).",
            ));
        }
        if let Some(u) = e["fullUrl"].as_str() {
            if u.contains("/_history/") {
                out.push(issue(
                    "invariant",
                    "bdl-8",
                    format!("{ex}.fullUrl"),
                    "fullUrl cannot be a version-specific reference (bdl-8).",
                ));
            }
            let version = e["resource"]["meta"]["versionId"].as_str().unwrap_or("");
            let key = if version.is_empty() { u } else { "" };
            if !key.is_empty() {
                if let Some(first) = seen.insert(u, i) {
                    out.push(issue("invariant", "bdl-7", format!("{ex}.fullUrl"), &format!("fullUrl must be unique in a Bundle; entry {first} has the same (bdl-7).")));
                }
            }
        }
        let self_contained = matches!(ty, "transaction" | "batch" | "document");
        if let Some(r) = e.get("resource").filter(|_| self_contained) {
            references(r, &mut Vec::new(), &mut |path, reference| {
                if dangling(ty, reference, full_urls) {
                    out.push(issue(
                        "not-found",
                        "reference",
                        expression(&format!("{ex}.resource"), path),
                        "The reference does not resolve to an entry of the Bundle.",
                    ));
                }
            });
        }
    }
    out
}

/// A reference of an entry of a `ty` Bundle that should and does not resolve inside it.
/// A `urn:` reference means nothing outside the Bundle. A relative one (`Patient/123`) must
/// resolve in a document; in a transaction or batch it may name a resource the receiving
/// server already holds. Conditional references are resolved by the receiver.
fn dangling(ty: &str, reference: &str, full_urls: &HashMap<String, String>) -> bool {
    let local = reference.starts_with("urn:uuid:")
        || reference.starts_with("urn:oid:")
        || (ty == "document" && !reference.contains("://") && !reference.starts_with('#'));
    let conditional = reference.contains('?');
    local
        && !conditional
        && !full_urls.contains_key(reference)
        && !resolves_relative(reference, full_urls)
}

/// `Patient/123` resolves when an entry's fullUrl ends with it.
fn resolves_relative(reference: &str, full_urls: &HashMap<String, String>) -> bool {
    !reference.starts_with("urn:")
        && full_urls
            .keys()
            .any(|u| u.ends_with(&format!("/{reference}")))
}

/// One step below an entry's resource: a key, and the index when the key holds an array.
type Step<'v> = (&'v str, Option<usize>);

/// The FHIRPath of `path` below `root`, ending at the `reference` it leads to.
fn expression(root: &str, path: &[Step<'_>]) -> String {
    let mut out = root.to_string();
    for (k, i) in path {
        out.push('.');
        out.push_str(k);
        if let Some(i) = i {
            out.push_str(&format!("[{i}]"));
        }
    }
    out.push_str(".reference");
    out
}

/// Calls `found` with the path and value of every `reference` below `v` (contained
/// resources excluded). The path is a stack of steps, written out only for an issue.
fn references<'v>(
    v: &'v Value,
    path: &mut Vec<Step<'v>>,
    found: &mut impl FnMut(&[Step<'v>], &'v str),
) {
    let Value::Object(m) = v else {
        return;
    };
    for (k, x) in m {
        if k == "reference" {
            if let Some(s) = x.as_str() {
                found(path, s);
            }
            continue;
        }
        if k == "contained" {
            continue;
        }
        match x {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push((k, Some(i)));
                    references(item, path, found);
                    path.pop();
                }
            }
            Value::Object(_) => {
                path.push((k, None));
                references(x, path, found);
                path.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_full_urls_missing_requests_and_dangling_references() {
        let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "Observation", "subject": {"reference": "urn:uuid:b"}, "performer": [{"reference": "Patient?identifier=x|y"}], "basedOn": [{"reference": "ServiceRequest/held-by-the-server"}]}}
        ]});
        let got: Vec<(String, String)> = validate(&b, &index(&b))
            .into_iter()
            .map(|i| (i.detail, i.expression))
            .collect();
        assert_eq!(
            got,
            vec![
                ("bdl-3".to_string(), "Bundle.entry[1].request".to_string()),
                ("bdl-7".to_string(), "Bundle.entry[1].fullUrl".to_string()),
                (
                    "reference".to_string(),
                    "Bundle.entry[1].resource.subject.reference".to_string()
                ),
            ]
        );
    }
}
