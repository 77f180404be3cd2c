//! The sandbox EHR's data: an in-memory, versioned FHIR R4 resource store with honest
//! transaction semantics (all or nothing; conditional create and update by identifier; a
//! conditional write matching two resources is 412; a stale `If-Match` is 412; references to
//! `fullUrl`s rewritten to the ids assigned). Pure: no IO, no clock (the caller gives instants).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

/// One resource's versions, oldest first.
type Versions = Vec<Value>;

/// A refusal: HTTP status and an OperationOutcome diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
    }
}

impl Refusal {
    pub fn outcome(&self) -> Value {
        json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": self.code, "diagnostics": self.message
        }]})
    }
}

/// The store.
#[derive(Debug, Default)]
pub struct MemoryFhir {
    resources: BTreeMap<(String, String), Versions>,
    /// (type, system, value) -> ids holding that identifier now.
    by_identifier: HashMap<(String, String, String), Vec<String>>,
    next_id: u64,
}

/// `identifier=system|value` (percent-decoded) from a query string.
pub fn identifier_param(query: &str) -> Option<(String, String)> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=')?;
        if k == "identifier" {
            let v = percent_decode(v);
            let (s, val) = v.split_once('|')?;
            return Some((s.to_string(), val.to_string()));
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn identifiers(resource: &Value) -> Vec<(String, String)> {
    resource["identifier"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|i| Some((i["system"].as_str()?.into(), i["value"].as_str()?.into())))
                .collect()
        })
        .unwrap_or_default()
}

/// What one transaction entry will do once every entry is resolved.
struct Planned {
    rtype: String,
    id: String,
    created: bool,
    resource: Value,
    /// For a conditional create that matched: nothing to write.
    unchanged: bool,
}

fn rewrite_refs(v: &mut Value, map: &HashMap<String, String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("reference") {
                if let Some(target) = map.get(r.as_str()) {
                    *r = target.clone();
                }
            }
            for child in o.values_mut() {
                rewrite_refs(child, map);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| rewrite_refs(c, map)),
        _ => {}
    }
}

impl MemoryFhir {
    pub fn read(&self, rtype: &str, id: &str) -> Option<&Value> {
        self.resources
            .get(&(rtype.to_string(), id.to_string()))
            .and_then(|v| v.last())
    }

    /// The current versions of `rtype`, optionally those holding `identifier`.
    pub fn search(&self, rtype: &str, identifier: Option<&(String, String)>) -> Vec<&Value> {
        match identifier {
            Some((s, v)) => self
                .by_identifier
                .get(&(rtype.to_string(), s.clone(), v.clone()))
                .map(|ids| ids.iter().filter_map(|id| self.read(rtype, id)).collect())
                .unwrap_or_default(),
            None => self
                .resources
                .range((rtype.to_string(), String::new())..)
                .take_while(|((t, _), _)| t == rtype)
                .filter_map(|(_, v)| v.last())
                .collect(),
        }
    }

    /// Every current resource, ordered by type and id.
    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.resources.values().filter_map(|v| v.last())
    }

    /// How many versions were written in all (duplicates show up here and in `all`).
    pub fn versions_written(&self) -> usize {
        self.resources.values().map(Vec::len).sum()
    }

    fn matches(&self, rtype: &str, ident: &(String, String)) -> Vec<String> {
        self.by_identifier
            .get(&(rtype.to_string(), ident.0.clone(), ident.1.clone()))
            .cloned()
            .unwrap_or_default()
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("s{:06}", self.next_id)
    }

    /// A `PUT {type}/{id}` outside a transaction.
    pub fn update(
        &mut self,
        rtype: &str,
        id: &str,
        resource: Value,
        if_match: Option<&str>,
        at: &str,
    ) -> Result<(Value, bool), Refusal> {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": resource,
            "request": {"method": "PUT", "url": format!("{rtype}/{id}"), "ifMatch": if_match}
        }]});
        let response = self.transaction(&bundle, at)?;
        let created = response["entry"][0]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("201"));
        let stored = self.read(rtype, id).cloned().unwrap_or(Value::Null);
        Ok((stored, created))
    }

    /// Processes a transaction Bundle: every entry or none. Returns the transaction-response.
    pub fn transaction(&mut self, bundle: &Value, at: &str) -> Result<Value, Refusal> {
        if bundle["resourceType"] != "Bundle" || bundle["type"] != "transaction" {
            return Err(refuse(400, "invalid", "expected a transaction Bundle"));
        }
        let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let mut plan: Vec<Planned> = Vec::with_capacity(entries.len());
        let mut full_urls: HashMap<String, String> = HashMap::new();
        let mut claimed: HashMap<(String, String), usize> = HashMap::new();
        for (n, e) in entries.iter().enumerate() {
            let method = e["request"]["method"].as_str().unwrap_or("");
            let url = e["request"]["url"].as_str().unwrap_or("");
            let resource = e["resource"].clone();
            let rtype = resource["resourceType"].as_str().unwrap_or("").to_string();
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            if rtype.is_empty() || !path.starts_with(&rtype) {
                return Err(refuse(
                    400,
                    "invalid",
                    format!("entry {n}: the url does not name the resource's type"),
                ));
            }
            let (id, created, unchanged) = match (method, path.split_once('/')) {
                ("PUT", Some((_, id))) => {
                    let current = self.read(&rtype, id);
                    if let Some(m) = e["request"]["ifMatch"].as_str() {
                        let now = current.and_then(|c| c["meta"]["versionId"].as_str());
                        if now.map(|v| format!("W/\"{v}\"")).as_deref() != Some(m) {
                            return Err(refuse(
                                412,
                                "conflict",
                                format!("entry {n}: If-Match does not match the current version"),
                            ));
                        }
                    }
                    (id.to_string(), current.is_none(), false)
                }
                ("PUT", None) => {
                    let ident = identifier_param(query).ok_or_else(|| {
                        refuse(
                            400,
                            "invalid",
                            format!(
                                "entry {n}: a conditional update needs identifier=system|value"
                            ),
                        )
                    })?;
                    match self.matches(&rtype, &ident).as_slice() {
                        [] => (self.new_id(), true, false),
                        [one] => (one.clone(), false, false),
                        _ => {
                            return Err(refuse(
                                412,
                                "multiple-matches",
                                format!("entry {n}: the condition matches more than one resource"),
                            ))
                        }
                    }
                }
                ("POST", None) => match e["request"]["ifNoneExist"].as_str() {
                    Some(cond) => {
                        let ident = identifier_param(cond).ok_or_else(|| {
                            refuse(
                                400,
                                "invalid",
                                format!("entry {n}: ifNoneExist needs identifier=system|value"),
                            )
                        })?;
                        match self.matches(&rtype, &ident).as_slice() {
                            [] => (self.new_id(), true, false),
                            [one] => (one.clone(), false, true),
                            _ => {
                                return Err(refuse(
                                    412,
                                    "multiple-matches",
                                    format!(
                                        "entry {n}: ifNoneExist matches more than one resource"
                                    ),
                                ))
                            }
                        }
                    }
                    None => (self.new_id(), true, false),
                },
                _ => {
                    return Err(refuse(
                        400,
                        "not-supported",
                        format!("entry {n}: only PUT and POST entries are supported"),
                    ))
                }
            };
            // Two entries resolving to one resource is an error, not a silent merge.
            if let Some(prev) = claimed.insert((rtype.clone(), id.clone()), n) {
                return Err(refuse(
                    400,
                    "duplicate",
                    format!("entries {prev} and {n} resolve to the same resource"),
                ));
            }
            if let Some(f) = e["fullUrl"].as_str() {
                full_urls.insert(f.to_string(), format!("{rtype}/{id}"));
            }
            plan.push(Planned {
                rtype,
                id,
                created,
                resource,
                unchanged,
            });
        }
        let mut response = Vec::with_capacity(plan.len());
        for mut p in plan {
            if p.unchanged {
                let v = self
                    .read(&p.rtype, &p.id)
                    .map(|c| c["meta"]["versionId"].clone());
                response.push(json!({"response": {
                    "status": "200 OK",
                    "location": format!("{}/{}/_history/{}", p.rtype, p.id, v.as_ref().and_then(Value::as_str).unwrap_or("1")),
                }}));
                continue;
            }
            rewrite_refs(&mut p.resource, &full_urls);
            let (version, location) = self.write(&p.rtype, &p.id, p.resource, at);
            response.push(json!({"response": {
                "status": if p.created { "201 Created" } else { "200 OK" },
                "location": location,
                "etag": format!("W/\"{version}\""),
                "lastModified": at,
            }}));
        }
        Ok(json!({"resourceType": "Bundle", "type": "transaction-response", "entry": response}))
    }

    fn write(&mut self, rtype: &str, id: &str, mut resource: Value, at: &str) -> (u64, String) {
        let key = (rtype.to_string(), id.to_string());
        let versions = self.resources.entry(key).or_default();
        let version = versions.len() as u64 + 1;
        let old_ids = versions.last().map(identifiers).unwrap_or_default();
        resource["id"] = json!(id);
        resource["meta"] = json!({"versionId": version.to_string(), "lastUpdated": at});
        let new_ids = identifiers(&resource);
        versions.push(resource);
        for (s, v) in old_ids {
            if let Some(list) = self.by_identifier.get_mut(&(rtype.to_string(), s, v)) {
                list.retain(|x| x != id);
            }
        }
        for (s, v) in new_ids {
            let list = self
                .by_identifier
                .entry((rtype.to_string(), s, v))
                .or_default();
            if !list.iter().any(|x| x == id) {
                list.push(id.to_string());
            }
        }
        (version, format!("{rtype}/{id}/_history/{version}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(entries: Vec<Value>) -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    }

    fn patient(upn: &str) -> Value {
        json!({"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient",
            "identifier": [{"system": "urn:upn", "value": upn}]},
            "request": {"method": "PUT", "url": format!("Patient?identifier=urn:upn%7C{upn}")}})
    }

    fn obs(key: &str) -> Value {
        json!({"resource": {"resourceType": "Observation", "status": "final",
            "identifier": [{"system": "urn:item", "value": key}],
            "subject": {"reference": "urn:uuid:p"}},
            "request": {"method": "PUT", "url": format!("Observation?identifier=urn:item%7C{key}")}})
    }

    #[test]
    fn conditional_updates_are_idempotent_and_references_follow_ids() {
        let mut m = MemoryFhir::default();
        let b = tx(vec![patient("U1"), obs("o1")]);
        let r1 = m.transaction(&b, "t1").unwrap();
        assert_eq!(r1["entry"][0]["response"]["status"], "201 Created");
        let r2 = m.transaction(&b, "t2").unwrap();
        assert_eq!(r2["entry"][0]["response"]["status"], "200 OK");
        assert_eq!(m.all().count(), 2, "sent twice, stored once");
        let o = m.search("Observation", None)[0];
        let pid = m.search("Patient", None)[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(o["subject"]["reference"], format!("Patient/{pid}"));
        assert_eq!(o["meta"]["versionId"], "2");
    }

    #[test]
    fn two_matches_or_a_stale_if_match_are_412_and_change_nothing() {
        let mut m = MemoryFhir::default();
        m.transaction(&tx(vec![patient("U1")]), "t").unwrap();
        // A second Patient with the same identifier, by id.
        m.update(
            "Patient",
            "dup",
            json!({"resourceType": "Patient", "identifier": [{"system": "urn:upn", "value": "U1"}]}),
            None,
            "t",
        )
        .unwrap();
        let before = m.versions_written();
        let e = m
            .transaction(&tx(vec![obs("o9"), patient("U1")]), "t")
            .unwrap_err();
        assert_eq!(e.status, 412);
        assert_eq!(
            m.versions_written(),
            before,
            "nothing of the failed transaction was written"
        );
        let e = m
            .update(
                "Patient",
                "dup",
                json!({"resourceType": "Patient"}),
                Some("W/\"7\""),
                "t",
            )
            .unwrap_err();
        assert_eq!(e.status, 412);
    }

    #[test]
    fn identifiers_decode_from_queries() {
        assert_eq!(
            identifier_param("identifier=https://x.org/sid%7CA%2FB&_count=1"),
            Some(("https://x.org/sid".into(), "A/B".into()))
        );
        assert_eq!(identifier_param("_count=1"), None);
    }
}
