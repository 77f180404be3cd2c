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

/// What the server supports; a write it does not support is refused as a real server would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Conditional create (`ifNoneExist`) and conditional update (`PUT Type?identifier=`).
    pub conditional: bool,
    /// Largest transaction (entries); `None`: no limit.
    pub max_entries: Option<usize>,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            conditional: true,
            max_entries: None,
        }
    }
}

/// A search: by identifier, by security label, by patient (`subject` or `patient` reference)
/// and by `_lastUpdated` (`ge`/`gt`, instants compared as the RFC 3339 strings this store writes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub identifier: Option<(String, String)>,
    /// `_security=system|code`: only resources carrying that security label.
    pub security: Option<(String, String)>,
    pub patient: Option<String>,
    pub last_updated: Option<(String, String)>,
}

impl Query {
    /// Reads `identifier`, `patient`/`subject` and `_lastUpdated` from a query string.
    pub fn parse(query: &str) -> Query {
        let mut q = Query {
            identifier: identifier_param(query),
            ..Query::default()
        };
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            let v = percent_decode(v);
            match k {
                "patient" | "subject" => {
                    q.patient = Some(if v.contains('/') {
                        v
                    } else {
                        format!("Patient/{v}")
                    })
                }
                "_security" => {
                    q.security = v
                        .split_once('|')
                        .map(|(s, c)| (s.to_string(), c.to_string()))
                }
                "_lastUpdated" => {
                    let (op, at) = match v.get(..2) {
                        Some(op @ ("ge" | "gt" | "le" | "lt")) => {
                            (op.to_string(), v[2..].to_string())
                        }
                        _ => ("ge".to_string(), v),
                    };
                    q.last_updated = Some((op, at));
                }
                _ => {}
            }
        }
        q
    }

    fn admits(&self, r: &Value) -> bool {
        if let Some((system, code)) = &self.security {
            let labelled = r["meta"]["security"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|c| c["system"] == system.as_str() && c["code"] == code.as_str())
            });
            if !labelled {
                return false;
            }
        }
        if let Some(p) = &self.patient {
            let of = |k: &str| r[k]["reference"].as_str() == Some(p.as_str());
            if !(of("subject")
                || of("patient")
                || (r["resourceType"] == "Patient"
                    && format!("Patient/{}", r["id"].as_str().unwrap_or("")) == *p))
            {
                return false;
            }
        }
        if let Some((op, at)) = &self.last_updated {
            let t = r["meta"]["lastUpdated"].as_str().unwrap_or("");
            let ok = match op.as_str() {
                "gt" => t > at.as_str(),
                "le" => t <= at.as_str(),
                "lt" => t < at.as_str(),
                _ => t >= at.as_str(),
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

/// The store.
#[derive(Debug, Default)]
pub struct MemoryFhir {
    pub rules: Rules,
    resources: BTreeMap<(String, String), Versions>,
    /// Resources whose latest version is a deletion.
    deleted: std::collections::HashSet<(String, String)>,
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
    delete: bool,
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
        let key = (rtype.to_string(), id.to_string());
        if self.deleted.contains(&key) {
            return None;
        }
        self.resources.get(&key).and_then(|v| v.last())
    }

    /// The current versions of `rtype` that `q` admits, ordered by id.
    pub fn search(&self, rtype: &str, q: &Query) -> Vec<&Value> {
        let found: Vec<&Value> = match &q.identifier {
            Some((s, v)) => self
                .by_identifier
                .get(&(rtype.to_string(), s.clone(), v.clone()))
                .map(|ids| ids.iter().filter_map(|id| self.read(rtype, id)).collect())
                .unwrap_or_default(),
            None => self
                .resources
                .range((rtype.to_string(), String::new())..)
                .take_while(|((t, _), _)| t == rtype)
                .filter(|(k, _)| !self.deleted.contains(k))
                .filter_map(|(_, v)| v.last())
                .collect(),
        };
        found.into_iter().filter(|r| q.admits(r)).collect()
    }

    /// Every current resource, ordered by type and id.
    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.resources
            .iter()
            .filter(|(k, _)| !self.deleted.contains(k))
            .filter_map(|(_, v)| v.last())
    }

    /// A `POST {type}` outside a transaction (`if_none_exist`: a conditional create).
    pub fn create(
        &mut self,
        resource: Value,
        if_none_exist: Option<&str>,
        at: &str,
    ) -> Result<(Value, bool), Refusal> {
        let rtype = resource["resourceType"].as_str().unwrap_or("").to_string();
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": resource,
            "request": {"method": "POST", "url": rtype, "ifNoneExist": if_none_exist}
        }]});
        self.single(&bundle, at)
    }

    /// A `DELETE {type}/{id}` outside a transaction.
    pub fn delete(&mut self, rtype: &str, id: &str, at: &str) -> Result<(), Refusal> {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "request": {"method": "DELETE", "url": format!("{rtype}/{id}")}
        }]});
        self.transaction(&bundle, at).map(|_| ())
    }

    fn single(&mut self, bundle: &Value, at: &str) -> Result<(Value, bool), Refusal> {
        let response = self.transaction(bundle, at)?;
        let r = &response["entry"][0]["response"];
        let created = r["status"].as_str().is_some_and(|s| s.starts_with("201"));
        let location = r["location"].as_str().unwrap_or("");
        let mut parts = location.split('/');
        let stored = match (parts.next(), parts.next()) {
            (Some(t), Some(id)) => self.read(t, id).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        };
        Ok((stored, created))
    }

    /// Current resources per type, their total, and every version written: what the sandboxes'
    /// `/_sandbox/stats` report.
    pub fn counts(&self) -> Value {
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        for r in self.all() {
            *by_type
                .entry(r["resourceType"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        json!({
            "resources_total": by_type.values().sum::<usize>(),
            "resources": by_type,
            "versions_written": self.versions_written(),
        })
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
        self.single(&bundle, at)
    }

    /// A conditional update outside a transaction: `PUT {type}?{query}`.
    pub fn update_where(
        &mut self,
        rtype: &str,
        query: &str,
        resource: Value,
        at: &str,
    ) -> Result<(Value, bool), Refusal> {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": resource,
            "request": {"method": "PUT", "url": format!("{rtype}?{query}")}
        }]});
        self.single(&bundle, at)
    }

    /// Processes a transaction Bundle: every entry or none. Returns the transaction-response.
    pub fn transaction(&mut self, bundle: &Value, at: &str) -> Result<Value, Refusal> {
        if bundle["resourceType"] != "Bundle" || bundle["type"] != "transaction" {
            return Err(refuse(400, "invalid", "expected a transaction Bundle"));
        }
        let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if let Some(max) = self.rules.max_entries {
            if entries.len() > max {
                return Err(refuse(
                    413,
                    "too-costly",
                    format!("a transaction holds at most {max} entries"),
                ));
            }
        }
        let mut plan: Vec<Planned> = Vec::with_capacity(entries.len());
        let mut full_urls: HashMap<String, String> = HashMap::new();
        let mut claimed: HashMap<(String, String), usize> = HashMap::new();
        for (n, e) in entries.iter().enumerate() {
            let method = e["request"]["method"].as_str().unwrap_or("");
            let url = e["request"]["url"].as_str().unwrap_or("");
            let resource = e["resource"].clone();
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let rtype = match method {
                "DELETE" => path.split('/').next().unwrap_or("").to_string(),
                _ => resource["resourceType"].as_str().unwrap_or("").to_string(),
            };
            let conditional =
                query.contains("identifier=") || e["request"]["ifNoneExist"].is_string();
            if conditional && !self.rules.conditional {
                return Err(refuse(
                    400,
                    "not-supported",
                    format!("entry {n}: conditional create and update are not supported"),
                ));
            }
            if rtype.is_empty() || !path.starts_with(&rtype) {
                return Err(refuse(
                    400,
                    "invalid",
                    format!("entry {n}: the url does not name the resource's type"),
                ));
            }
            let mut delete = false;
            let (id, created, unchanged) = match (method, path.split_once('/')) {
                ("DELETE", Some((_, id))) => {
                    delete = true;
                    let gone = self.read(&rtype, id).is_none();
                    (id.to_string(), false, gone)
                }
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
                        format!("entry {n}: only PUT, POST and DELETE entries are supported"),
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
                delete,
            });
        }
        let mut response = Vec::with_capacity(plan.len());
        for mut p in plan {
            if p.delete {
                if !p.unchanged {
                    self.remove(&p.rtype, &p.id);
                }
                response.push(json!({"response": {"status": "204 No Content"}}));
                continue;
            }
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

    fn remove(&mut self, rtype: &str, id: &str) {
        let key = (rtype.to_string(), id.to_string());
        if let Some(current) = self.resources.get(&key).and_then(|v| v.last()) {
            for (s, v) in identifiers(current) {
                if let Some(list) = self.by_identifier.get_mut(&(rtype.to_string(), s, v)) {
                    list.retain(|x| x != id);
                }
            }
        }
        self.deleted.insert(key);
    }

    fn write(&mut self, rtype: &str, id: &str, mut resource: Value, at: &str) -> (u64, String) {
        let key = (rtype.to_string(), id.to_string());
        let was_deleted = self.deleted.remove(&key);
        let versions = self.resources.entry(key).or_default();
        let version = versions.len() as u64 + 1;
        let old_ids = match was_deleted {
            true => Vec::new(),
            false => versions.last().map(identifiers).unwrap_or_default(),
        };
        resource["id"] = json!(id);
        // The server's bookkeeping; the client's profiles, tags and security labels stay.
        if !resource["meta"].is_object() {
            resource["meta"] = json!({});
        }
        resource["meta"]["versionId"] = json!(version.to_string());
        resource["meta"]["lastUpdated"] = json!(at);
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
        let o = m.search("Observation", &Query::default())[0];
        let pid = m.search("Patient", &Query::default())[0]["id"]
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
    fn deletes_hide_resources_and_free_their_identifiers_and_searches_filter() {
        let mut m = MemoryFhir::default();
        m.transaction(
            &tx(vec![patient("U1"), obs("o1"), obs("o2")]),
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
        let pid = m.search("Patient", &Query::default())[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let by_patient = Query::parse(&format!("patient={pid}"));
        assert_eq!(m.search("Observation", &by_patient).len(), 2);
        let o1 = m.search("Observation", &Query::parse("identifier=urn:item%7Co1"))[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        m.transaction(&tx(vec![patient("U1"), obs("o2")]), "2026-02-01T00:00:00Z")
            .unwrap();
        let since = Query::parse("_lastUpdated=gt2026-01-15T00:00:00Z");
        assert_eq!(
            m.search("Observation", &since).len(),
            1,
            "only o2 changed since"
        );
        m.delete("Observation", &o1, "t").unwrap();
        assert!(m.read("Observation", &o1).is_none());
        assert_eq!(m.search("Observation", &by_patient).len(), 1);
        assert!(m
            .search("Observation", &Query::parse("identifier=urn:item%7Co1"))
            .is_empty());
        // A conditional update after the delete creates a new resource.
        m.transaction(&tx(vec![patient("U1"), obs("o1")]), "t")
            .unwrap();
        assert_eq!(m.all().count(), 3);
    }

    #[test]
    fn rules_refuse_conditional_writes_and_oversized_transactions() {
        let mut m = MemoryFhir {
            rules: Rules {
                conditional: false,
                max_entries: Some(1),
            },
            ..MemoryFhir::default()
        };
        assert_eq!(
            m.transaction(&tx(vec![patient("U1")]), "t")
                .unwrap_err()
                .status,
            400
        );
        let two = tx(vec![
            json!({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}),
        ]);
        assert_eq!(m.transaction(&two, "t").unwrap_err().status, 413);
        assert_eq!(m.all().count(), 0);
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
