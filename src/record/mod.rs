//! The internal registry record: its typed model, the JSON and CSV readers, and the checks
//! that turn a record into a [`check::Checked`] one ready for mapping. No FHIR, no IO.

pub mod check;
pub mod csv;
pub mod date;
pub mod issue;
pub mod model;
pub mod units;

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

pub use check::{check, Checked, ReportEntry, ReportStatus};
pub use date::RecordDate;
pub use issue::{Issue, IssueCode, Location, Severity};
pub use model::Record;

/// The JSON Schema of the canonical record format (`engraft schema record`).
pub fn record_schema() -> Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Record)).expect("schema serialises");
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            Value::from(format!("{}/schema/record.json", crate::terminology::BASE)),
        );
        obj.insert("title".into(), Value::from("Engraft registry record"));
    }
    schema
}

fn schema_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let mut schema = record_schema();
        unwrap_optional(&mut schema);
        jsonschema::validator_for(&schema).expect("the generated schema compiles")
    })
}

/// `anyOf: [X, {type: null}]` (an `Option<X>`) becomes `X`, so the validator reports the
/// problem inside X with its own path instead of one "matches no alternative" at the parent.
fn unwrap_optional(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(alts)) = map.get("anyOf") {
                if alts.len() == 2 && alts[1] == serde_json::json!({"type": "null"}) {
                    let inner = alts[0].clone();
                    map.remove("anyOf");
                    if let Value::Object(inner) = inner {
                        map.extend(inner);
                    }
                }
            }
            map.values_mut().for_each(unwrap_optional);
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_optional),
        _ => {}
    }
}

/// Reads one record from a JSON value. On failure every structural problem is reported, each
/// with its JSON pointer, without the offending values.
pub fn record_from_value(v: Value) -> Result<Record, Vec<Issue>> {
    match Record::deserialize(&v) {
        Ok(r) => Ok(r),
        Err(first) => Err(structure_issues(&v, &first)),
    }
}

/// Every structural problem of a record that failed to deserialise.
fn structure_issues(v: &Value, first: &serde_json::Error) -> Vec<Issue> {
    let mut issues: Vec<Issue> = schema_validator()
        .iter_errors(v)
        .map(|e| schema_issue(e.instance_path().as_str(), e.kind()))
        .collect();
    if issues.is_empty() {
        // The schema cannot see everything (impossible calendar dates, for one).
        let text = first.to_string();
        let code = if text.contains("date") || text.contains("month") {
            IssueCode::DateFormat
        } else {
            IssueCode::Structure
        };
        issues.push(Issue::error(
            code,
            "",
            format!("The record could not be read: {}.", scrub(&text)),
        ));
    }
    issues.sort_by(|a, b| a.location.pointer.cmp(&b.location.pointer));
    issues.dedup();
    issues
}

/// Reads JSON text holding one record or an array of records. A well-formed record is
/// deserialised straight from the text; the generic JSON tree is built only to explain
/// problems.
pub fn records_from_json(text: &[u8]) -> Result<Vec<Result<Record, Vec<Issue>>>, Issue> {
    let first_byte = text.iter().find(|b| !b.is_ascii_whitespace());
    if first_byte != Some(&b'[') {
        // serde's derived structs reject duplicated fields, so this fast path is as strict as
        // the duplicate-refusing parser below.
        if let Ok(r) = serde_json::from_slice::<Record>(text) {
            return Ok(vec![Ok(r)]);
        }
    }
    let v: Value = crate::json::parse(text).map_err(|e| {
        Issue::error(
            IssueCode::JsonSyntax,
            "",
            format!(
                "The input is not well-formed JSON (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )
    })?;
    Ok(match v {
        Value::Array(items) => items.into_iter().map(record_from_value).collect(),
        other => vec![record_from_value(other)],
    })
}

/// serde messages quote the offending value; keep only the part before the quote.
fn scrub(msg: &str) -> String {
    let cut = msg.find(['`', '"']).unwrap_or(msg.len());
    let head = msg[..cut].trim_end_matches([' ', ':', ',']);
    let tail = msg.rfind(" at line ").map(|i| &msg[i..]).unwrap_or("");
    format!("{head}{tail}")
}

fn schema_issue(path: &str, kind: &jsonschema::error::ValidationErrorKind) -> Issue {
    use jsonschema::error::ValidationErrorKind as K;
    let (code, msg) = match kind {
        K::AdditionalProperties { unexpected } => (
            IssueCode::Structure,
            format!("Unknown field(s): {}.", unexpected.join(", ")),
        ),
        K::Required { property } => (
            IssueCode::MissingMandatory,
            format!(
                "The mandatory field {} is missing.",
                property.to_string().trim_matches('"')
            ),
        ),
        K::Type { kind } => (
            IssueCode::Structure,
            format!("The value has the wrong JSON type (expected {kind:?}).")
                .replace("Single(", "")
                .replace(')', ""),
        ),
        K::Enum { options } => (
            IssueCode::UnknownCode,
            format!("The value is not one of {}.", options),
        ),
        K::Pattern { .. } => (
            IssueCode::DateFormat,
            "The value is not a date of the form YYYY, YYYY-MM or YYYY-MM-DD.".into(),
        ),
        K::Minimum { .. } | K::Maximum { .. } => (
            IssueCode::ScaleRange,
            "The number is out of range for this field.".into(),
        ),
        _ => (
            IssueCode::Structure,
            "The value does not match the record schema.".into(),
        ),
    };
    Issue::error(code, path.to_string(), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_structural_problems_are_reported_at_once() {
        let v = serde_json::json!({
            "recordId": "R1", "registry": "EBMT",
            "centre": {"code": "C1"},
            "patient": {"upn": "U1", "sex": "femme", "birthDate": "1980-13"},
            "consent": {"status": "granted"},
            "diagnoses": [], "transplants": [], "vitalStatus": {"status": "alive"},
            "surprise": 1
        });
        let issues = record_from_value(v).unwrap_err();
        let ptrs: Vec<_> = issues.iter().map(|i| i.location.pointer.as_str()).collect();
        assert!(ptrs.contains(&"/patient/sex"), "{ptrs:?}");
        assert!(ptrs.contains(&"/vitalStatus"), "{ptrs:?}");
        assert!(ptrs.contains(&""), "{ptrs:?}");
        assert!(issues.iter().all(|i| !i.message.contains("femme")));
    }

    #[test]
    fn impossible_calendar_dates_are_a_date_format_problem() {
        let mut v: Value = serde_json::from_str(include_str!(
            "../../fixtures/records/ms-rrms-auto-beam-atg.json"
        ))
        .unwrap();
        v["patient"]["birthDate"] = Value::from("1985-02-30");
        let issues = record_from_value(v).unwrap_err();
        assert_eq!(issues[0].code, IssueCode::DateFormat);
        assert!(!issues[0].message.contains("1985"));
    }
}
