//! The CIBMTR Direct FHIR workflow profile, pure: what a registry submission sends and how
//! the registry's answers read. No IO; [`super::registry`] does the HTTP.
//!
//! - CRID registration bodies: the CRID API's own JSON (`PUT <root>/CRID`) and the R4
//!   `Patient/$crid-assignment` Parameters; the CRID read back from either answer.
//! - The registry-side Patient: de-identified (the CRID as its only identifier, no names,
//!   addresses, MRNs, dates or contacts; `text.status = empty`).
//! - The submission Bundle: the record's Bundle without its Provenance (our own audit trail,
//!   with no business identifier to keep it from duplicating), every resource tagged with the
//!   centre's security label `rc_<CCN>`, and no conditional requests (the registry has none):
//!   new resources are `POST`ed, known ones `PUT` by the id the registry gave them.
//! - Per-entry results of a transaction-response.

use serde_json::{json, Value};

use super::remote::Registry;

/// Matches the registry's `^rc_[0-9]{5}$` rule for the centre tag.
pub fn valid_tag(code: &str) -> bool {
    code.strip_prefix("rc_")
        .is_some_and(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a Patient cannot be registered for a CRID: the registry needs five fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Patient cannot be registered for a CRID: {0}")]
pub struct CridError(pub String);

/// The demographics CRID registration needs: first and last name, birth date, gender M/F.
struct Demographics<'a> {
    first: &'a str,
    last: &'a str,
    birth_date: &'a str,
    gender: &'static str,
}

/// Reads them from the canonical registry record (`patient.name`, `patient.birthDate`,
/// `patient.sex`): the name is kept there only, never in a FHIR resource.
fn demographics(record: &Value) -> Result<Demographics<'_>, CridError> {
    let p = &record["patient"];
    let last = p["name"]["family"]
        .as_str()
        .filter(|s| !s.trim().is_empty());
    let first = p["name"]["given"][0]
        .as_str()
        .filter(|s| !s.trim().is_empty());
    let birth_date = p["birthDate"].as_str();
    let gender = match p["sex"].as_str() {
        Some("male") => Some("M"),
        Some("female") => Some("F"),
        _ => None,
    };
    let mut missing = Vec::new();
    if first.is_none() {
        missing.push("patient.name.given");
    }
    if last.is_none() {
        missing.push("patient.name.family");
    }
    // A full date: the CRID API takes YYYY-MM-DD only.
    if birth_date.is_none_or(|d| d.len() != 10) {
        missing.push("patient.birthDate (a full date, YYYY-MM-DD)");
    }
    if gender.is_none() {
        missing.push("patient.sex (male or female)");
    }
    if !missing.is_empty() {
        return Err(CridError(format!(
            "missing or unusable {}",
            missing.join(", ")
        )));
    }
    Ok(Demographics {
        first: first.unwrap_or_default(),
        last: last.unwrap_or_default(),
        birth_date: birth_date.unwrap_or_default(),
        gender: gender.unwrap_or_default(),
    })
}

/// The CRID a record already carries: a Patient identifier in the configured CRID system or
/// the IG's.
pub fn crid_in(patient: &Value, crid_system: &str) -> Option<String> {
    patient["identifier"].as_array()?.iter().find_map(|i| {
        let s = i["system"].as_str()?;
        (s == crid_system || s == crate::mapping::CRID_SYSTEM)
            .then(|| i["value"].as_str().map(str::to_string))
            .flatten()
    })
}

/// The body of `PUT <root>/CRID` (CIBMTR JSON, not FHIR) for a registry `record`: centre
/// number and the five required fields, nothing optional.
pub fn crid_api_request(record: &Value, ccn: &str) -> Result<Value, CridError> {
    let d = demographics(record)?;
    Ok(json!({
        "ccn": ccn,
        "patient": {
            "firstName": d.first,
            "lastName": d.last,
            "birthDate": d.birth_date,
            "gender": d.gender,
        }
    }))
}

/// The Parameters of `POST <fhir>/Patient/$crid-assignment` for a registry `record`: a
/// Patient of the same five fields, tagged with the centre, and the centre number.
pub fn crid_assignment_request(record: &Value, r: &Registry) -> Result<Value, CridError> {
    let d = demographics(record)?;
    let gender = if d.gender == "M" { "male" } else { "female" };
    Ok(json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "resource": {
                "resourceType": "Patient",
                "meta": {"security": [{"system": r.security.0, "code": r.security.1}]},
                "name": [{"use": "official", "family": d.last, "given": [d.first]}],
                "gender": gender,
                "birthDate": d.birth_date,
            }},
            {"name": "ccn", "valueString": r.ccn},
        ]
    }))
}

/// The CRID in a registration answer: the CRID API's `{"crid": ...}` (number or string), or
/// the `identifier` out-parameter of `$crid-assignment` (in the CRID system, or the only one).
pub fn crid_of(answer: &Value, crid_system: &str) -> Option<String> {
    let scalar = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(c) = ["crid", "CRID"].iter().find_map(|k| scalar(&answer[*k])) {
        return Some(c);
    }
    let params = answer["parameter"].as_array()?;
    let ids: Vec<&Value> = params
        .iter()
        .filter(|p| p["name"] == "identifier")
        .map(|p| &p["valueIdentifier"])
        .collect();
    let id = ids
        .iter()
        .find(|i| i["system"] == crid_system)
        .or_else(|| (ids.len() == 1).then(|| &ids[0]))?;
    scalar(&id["value"])
}

/// The registry-side Patient: only the centre tag and the CRID. The registry strips PII
/// anyway; Engraft never sends it there in the first place.
pub fn deidentified_patient(crid: &str, r: &Registry) -> Value {
    json!({
        "resourceType": "Patient",
        "meta": {"security": [{"system": r.security.0, "code": r.security.1}]},
        "text": {
            "status": "empty",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">No human-readable text provided</div>"
        },
        "identifier": [{"system": r.crid_system, "value": crid}],
    })
}

/// The search for the registry-side Patient of `crid`, within the centre's tag.
pub fn patient_search(crid: &str, r: &Registry) -> String {
    format!(
        "Patient?_security={}&identifier={}",
        token(&r.security.0, &r.security.1),
        token(&r.crid_system, crid)
    )
}

/// The search for what the registry holds of one entry: its first identifier, within the
/// centre's tag. `None` for a resource with no identifier.
pub fn entry_search(resource: &Value, r: &Registry) -> Option<String> {
    let t = resource["resourceType"].as_str()?;
    let id = resource["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["system"].is_string() && i["value"].is_string())?;
    Some(format!(
        "{t}?_security={}&identifier={}",
        token(&r.security.0, &r.security.1),
        token(id["system"].as_str()?, id["value"].as_str()?)
    ))
}

/// A `system|value` search token, percent-encoded for a query string.
fn token(system: &str, value: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z'
                | b'a'..=b'z'
                | b'0'..=b'9'
                | b'-'
                | b'.'
                | b'_'
                | b'~'
                | b':'
                | b'/' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!("{}%7C{}", enc(system), enc(value))
}

/// The record's Bundle as the registry takes it: without Provenance, every resource tagged
/// with the centre. The Patient entry stays (the ledger maps it to the registry's Patient,
/// so it is referenced, never sent).
pub fn submission_bundle(mut bundle: Value, r: &Registry) -> Value {
    if let Some(entries) = bundle["entry"].as_array_mut() {
        entries.retain(|e| e["resource"]["resourceType"] != "Provenance");
        for e in entries {
            tag(&mut e["resource"], r);
        }
    }
    bundle
}

/// Adds the centre tag to `resource.meta.security` unless it is there.
fn tag(resource: &mut Value, r: &Registry) {
    let label = json!({"system": r.security.0, "code": r.security.1});
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let security = meta
        .as_object_mut()
        .map(|m| m.entry("security").or_insert_with(|| json!([])));
    if let Some(Value::Array(list)) = security {
        if !list.contains(&label) {
            list.push(label);
        }
    }
}

/// The request of an entry the ledger does not know: `PUT Type/<id>` when the registry
/// already holds it (found by identifier after an attempt whose outcome was unknown), else
/// `POST Type`. Never a conditional request.
pub fn unconditional(entry: &mut Value, found: Option<&str>) {
    let t = entry["resource"]["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    entry["request"] = match found {
        Some(id) => json!({"method": "PUT", "url": format!("{t}/{id}")}),
        None => json!({"method": "POST", "url": t}),
    };
}

/// How the registry answered one entry of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryResult {
    /// HTTP status of the entry (`response.status`'s leading code; 0 when absent).
    pub status: u16,
    pub location: Option<String>,
    /// The registry's reason, from `response.outcome` (diagnostics or details text).
    pub reason: Option<String>,
    pub outcome: Option<Value>,
}

impl EntryResult {
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Entry `i` of the response answers entry `i` of the request; a response with fewer
/// entries leaves the rest unanswered (status 0).
pub fn entry_results(sent: usize, response: &Value) -> Vec<EntryResult> {
    let answers = response["entry"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    (0..sent)
        .map(|i| {
            let r = answers.get(i).map(|a| &a["response"]);
            let status = r
                .and_then(|r| r["status"].as_str())
                .and_then(|s| s.split_whitespace().next())
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let outcome = r.map(|r| r["outcome"].clone()).filter(|o| !o.is_null());
            let reason = outcome.as_ref().and_then(|o| {
                let reasons: Vec<&str> = o["issue"]
                    .as_array()?
                    .iter()
                    .filter_map(|i| {
                        i["diagnostics"]
                            .as_str()
                            .or_else(|| i["details"]["text"].as_str())
                    })
                    .collect();
                (!reasons.is_empty()).then(|| reasons.join("; "))
            });
            EntryResult {
                status,
                location: r.and_then(|r| r["location"].as_str()).map(str::to_string),
                reason,
                outcome,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CridRegistration;

    fn registry() -> Registry {
        Registry {
            root: "http://r".into(),
            security: (
                "http://cibmtr.org/codesystem/transplant-center".into(),
                "rc_12345".into(),
            ),
            ccn: "12345".into(),
            crid_system: "http://cibmtr.org/identifier/CRID".into(),
            crid_registration: CridRegistration::CridApi,
        }
    }

    fn record() -> Value {
        json!({"recordId": "R1", "patient": {"upn": "U1", "name": {"family": "Doe", "given": ["Jane"]},
               "sex": "female", "birthDate": "1980-02-03",
               "mrns": [{"system": "urn:mrn", "value": "MRN-1"}]}})
    }

    #[test]
    fn the_centre_tag_follows_the_registry_rule() {
        assert!(valid_tag("rc_12345"));
        for bad in ["rc_1234", "rc_123456", "rc_1234a", "12345", "RC_12345"] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn crid_registration_sends_the_five_fields_and_nothing_else() {
        let body = crid_api_request(&record(), "12345").unwrap();
        assert_eq!(
            body,
            json!({"ccn": "12345", "patient": {"firstName": "Jane", "lastName": "Doe",
                   "birthDate": "1980-02-03", "gender": "F"}})
        );
        let params = crid_assignment_request(&record(), &registry()).unwrap();
        let p = &params["parameter"][0]["resource"];
        assert_eq!(p["meta"]["security"][0]["code"], "rc_12345");
        assert_eq!(p["name"][0]["family"], "Doe");
        assert!(p["identifier"].is_null(), "no MRN or UPN");
        assert_eq!(params["parameter"][1]["valueString"], "12345");
        let mut partial = record();
        partial["patient"]["birthDate"] = json!("1980");
        partial["patient"]["sex"] = json!("unknown");
        let e = crid_api_request(&partial, "12345").unwrap_err();
        assert!(
            e.0.contains("birthDate") && e.0.contains("patient.sex"),
            "{e}"
        );
        assert!(!e.0.contains("1980"), "no patient values in messages");
    }

    #[test]
    fn the_crid_is_read_from_either_answer() {
        let sys = "http://cibmtr.org/identifier/CRID";
        assert_eq!(
            crid_of(&json!({"crid": 4236876428u64}), sys).as_deref(),
            Some("4236876428")
        );
        assert_eq!(
            crid_of(&json!({"CRID": " 77 "}), sys).as_deref(),
            Some("77")
        );
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "identifier", "valueIdentifier": {"system": "urn:other", "value": "x"}},
            {"name": "identifier", "valueIdentifier": {"system": sys, "value": "99"}}]});
        assert_eq!(crid_of(&params, sys).as_deref(), Some("99"));
        assert_eq!(
            crid_of(&json!({"resourceType": "OperationOutcome"}), sys),
            None
        );
    }

    #[test]
    fn the_registry_patient_holds_no_pii() {
        let p = deidentified_patient("99", &registry());
        let mut keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["identifier", "meta", "resourceType", "text"]);
        assert_eq!(p["text"]["status"], "empty");
        assert_eq!(p["identifier"][0]["value"], "99");
    }

    #[test]
    fn every_resource_is_tagged_once_and_provenance_stays_home() {
        let b = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Observation", "meta": {"security": [
                {"system": "http://cibmtr.org/codesystem/transplant-center", "code": "rc_12345"}]}}},
            {"resource": {"resourceType": "Condition"}},
            {"resource": {"resourceType": "Provenance"}}]});
        let out = submission_bundle(b, &registry());
        let entries = out["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        for e in entries {
            assert_eq!(
                e["resource"]["meta"]["security"].as_array().unwrap().len(),
                1
            );
            assert!(valid_tag(
                e["resource"]["meta"]["security"][0]["code"]
                    .as_str()
                    .unwrap()
            ));
        }
    }

    #[test]
    fn searches_are_scoped_to_the_centre_and_encoded() {
        let r = registry();
        assert_eq!(
            patient_search("99", &r),
            "Patient?_security=http://cibmtr.org/codesystem/transplant-center%7Crc_12345&identifier=http://cibmtr.org/identifier/CRID%7C99"
        );
        let o = json!({"resourceType": "Observation", "identifier": [{"system": "urn:x", "value": "a b&c"}]});
        assert!(entry_search(&o, &r)
            .unwrap()
            .ends_with("identifier=urn:x%7Ca%20b%26c"));
        assert_eq!(
            entry_search(&json!({"resourceType": "Observation"}), &r),
            None
        );
    }

    #[test]
    fn entry_results_read_status_location_and_reason() {
        let resp = json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
            {"response": {"status": "201 Created", "location": "Observation/1/_history/1"}},
            {"response": {"status": "422 Unprocessable Entity", "outcome": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "code-invalid", "diagnostics": "not a priority variable"}]}}}]});
        let r = entry_results(3, &resp);
        assert!(r[0].accepted());
        assert_eq!(r[0].location.as_deref(), Some("Observation/1/_history/1"));
        assert!(!r[1].accepted());
        assert_eq!(r[1].reason.as_deref(), Some("not a priority variable"));
        assert_eq!(r[2].status, 0);
    }
}
