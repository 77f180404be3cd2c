//! The conversion pipeline: registry record in, FHIR R4 Bundle (serialised) out, or the
//! issues that stopped it. Pure: callers do the IO.

use serde_json::Value;

use crate::fhir::{self, OutcomeIssue};
use crate::mapping::{self, MappingReport};
use crate::record::{self, Issue, Record};
use crate::terminology::Terminology;
use crate::validation::{has_errors, Validator};

/// What became of one record.
#[derive(Debug)]
pub enum Outcome {
    Converted(Converted),
    Rejected(Rejected),
}

#[derive(Debug)]
pub struct Converted {
    pub record_id: String,
    /// The transaction Bundle as FHIR JSON.
    pub bundle: Vec<u8>,
    pub report: MappingReport,
    /// `bundle` as parsed for validation (`None` when the converter does not validate), so
    /// a caller that needs the tree (the store's preparation) does not parse it again.
    pub parsed: Option<Value>,
}

#[derive(Debug)]
pub struct Rejected {
    /// The record id, when the input had a readable one.
    pub record_id: Option<String>,
    pub issues: Vec<OutcomeIssue>,
}

/// Conversion settings.
#[derive(Debug, Clone)]
pub struct Converter {
    pub terminology: &'static Terminology,
    /// Validate every bundle against base R4 and Engraft's profiles before it is written (on
    /// by default).
    pub validate: bool,
    pub pretty: bool,
}

impl Default for Converter {
    fn default() -> Self {
        Converter {
            terminology: Terminology::bundled(),
            validate: true,
            pretty: true,
        }
    }
}

impl Converter {
    /// Checks and maps a record, then serialises (and validates) its Bundle.
    pub fn convert(&self, record: Record, now: &str) -> Outcome {
        self.convert_located(record, now, |_| {})
    }

    /// As [`Converter::convert`]; `locate` adds source locations (CSV cells) to check issues.
    pub fn convert_located(
        &self,
        record: Record,
        now: &str,
        locate: impl FnOnce(&mut [Issue]),
    ) -> Outcome {
        let record_id = record.record_id.clone();
        let checked = match record::check(record, self.terminology) {
            Ok(c) => c,
            Err(mut issues) => {
                locate(&mut issues);
                return rejected(Some(record_id), &issues);
            }
        };
        let mapped = mapping::map_record(&checked, self.terminology, now);
        let resource = fhirbolt::model::r4::Resource::Bundle(Box::new(mapped.bundle));
        let bundle = match fhir::to_json(&resource, self.pretty) {
            Ok(b) => b,
            Err(_) => return internal(record_id, "The mapped Bundle could not be serialised."),
        };
        // Validate the bytes that will be written, not the typed model: what is checked is
        // exactly what is sent (one parse of our own output, about a fifth of a validated
        // conversion; the tree is handed on in `Converted::parsed`).
        let parsed = if self.validate {
            // Checked as UTF-8 once, in bulk: parsed from bytes, serde_json checks every
            // string on its own (2% of a validated conversion).
            let Some(value) = std::str::from_utf8(&bundle)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
            else {
                return internal(record_id, "The serialised Bundle is not valid JSON.");
            };
            let issues = Validator::bundled().validate(&value, None);
            if has_errors(&issues) {
                return Outcome::Rejected(Rejected {
                    record_id: Some(record_id),
                    issues,
                });
            }
            Some(value)
        } else {
            None
        };
        Outcome::Converted(Converted {
            record_id,
            bundle,
            report: mapped.report,
            parsed,
        })
    }

    /// Converts one record given as a JSON value.
    pub fn convert_value(&self, v: Value, now: &str) -> Outcome {
        let id = v
            .get("recordId")
            .and_then(Value::as_str)
            .map(str::to_string);
        match record::record_from_value(v) {
            Ok(r) => self.convert(r, now),
            Err(issues) => rejected(id, &issues),
        }
    }
}

/// The outcome for a record stopped by `issues`.
pub fn rejected(record_id: Option<String>, issues: &[Issue]) -> Outcome {
    Outcome::Rejected(Rejected {
        record_id,
        issues: issues.iter().map(OutcomeIssue::from).collect(),
    })
}

fn internal(record_id: String, msg: &str) -> Outcome {
    Outcome::Rejected(Rejected {
        record_id: Some(record_id),
        issues: vec![OutcomeIssue {
            severity: "fatal",
            code: "exception",
            detail: "internal".into(),
            diagnostics: msg.into(),
            expression: "Bundle".into(),
            location: None,
        }],
    })
}

/// The current time as a FHIR instant (seconds precision, UTC).
pub fn now_instant() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typical() -> Record {
        let text = include_str!("../fixtures/records/ms-rrms-auto-beam-atg.json");
        serde_json::from_str(text).expect("the fixture parses")
    }

    #[test]
    fn a_validated_conversion_hands_on_the_tree_it_validated() {
        let at = "2026-01-01T00:00:00Z";
        let Outcome::Converted(c) = Converter::default().convert(typical(), at) else {
            panic!("the fixture converts");
        };
        let reparsed: Value = serde_json::from_slice(&c.bundle).unwrap();
        assert_eq!(c.parsed, Some(reparsed), "the tree is the Bundle's text");
        let fast = Converter {
            validate: false,
            ..Converter::default()
        };
        let Outcome::Converted(f) = fast.convert(typical(), at) else {
            panic!("the fixture converts");
        };
        assert_eq!(f.parsed, None, "nothing parsed without validation");
        assert_eq!(f.bundle, c.bundle);
    }
}
