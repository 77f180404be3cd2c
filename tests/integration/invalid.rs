//! Each invalid fixture yields exactly its expected issues (code and location) and no bundle.

use std::io::BufReader;

use engraft::convert::{Converter, Outcome};
use engraft::fhir::OutcomeIssue;
use engraft::record::csv as record_csv;
use serde_json::Value;

use super::helpers::*;

/// An OutcomeIssue's expression back as a record JSON pointer.
fn pointer(i: &OutcomeIssue) -> String {
    let e = i.expression.strip_prefix("Record").unwrap_or(&i.expression);
    let mut out = String::new();
    for part in e.split('.').filter(|p| !p.is_empty()) {
        match part.split_once('[') {
            Some((name, rest)) => {
                out.push('/');
                out.push_str(name);
                out.push('/');
                out.push_str(rest.trim_end_matches(']'));
            }
            None => {
                out.push('/');
                out.push_str(part);
            }
        }
    }
    out
}

fn expected(v: &Value) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<_> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["code"].as_str().unwrap().to_string(),
                i["pointer"].as_str().unwrap().to_string(),
                i["csv"].as_str().map(str::to_string),
            )
        })
        .collect();
    out.sort();
    out
}

fn got(issues: &[OutcomeIssue], with_csv: bool) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<_> = issues
        .iter()
        .map(|i| {
            let csv = if with_csv {
                i.location.as_ref().map(|l| {
                    l.split_once(' ')
                        .map(|(_, rest)| rest.to_string())
                        .unwrap_or_default()
                })
            } else {
                None
            };
            (i.detail.clone(), pointer(i), csv)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_invalid_json_record_yields_exactly_its_expected_issues() {
    let conv = Converter::default();
    let mut failures = Vec::new();
    let cases: Vec<_> = files("invalid", "json")
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    assert!(cases.len() >= 20, "only {} invalid fixtures", cases.len());
    for path in cases {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let want = expected(&read_json(
            &path.with_file_name(format!("{stem}.expected.json")),
        ));
        match conv.convert_value(read_json(&path), NOW) {
            Outcome::Converted(_) => {
                failures.push(format!("{stem}: converted, but it must be rejected"))
            }
            Outcome::Rejected(r) => {
                let have = got(&r.issues, false);
                if have != want {
                    failures.push(format!("{stem}:\n  expected {want:?}\n  got      {have:?}"));
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for i in &r.issues {
                    assert!(i.severity != "fatal", "{stem}: internal error {i:?}");
                    // No patient values in messages: no date or identifier of the record is echoed.
                    for needle in ["1986-04-12", "UPN-", "MRN-", "55501"] {
                        assert!(
                            !i.diagnostics.contains(needle) || !text.contains(needle),
                            "{stem}: message echoes a patient value: {}",
                            i.diagnostics
                        );
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn csv_problems_name_their_line_and_column() {
    let path = fixtures("invalid").join("eu-csv-bad-cells.csv");
    let want = read_json(&fixtures("invalid").join("eu-csv-bad-cells.expected.json"));
    let scales = vec!["edss".to_string()];
    let reader = record_csv::open(
        "eu-csv-bad-cells.csv",
        BufReader::new(std::fs::File::open(&path).unwrap()),
        None,
        &scales,
    )
    .unwrap();
    let conv = Converter::default();
    let mut seen = 0;
    for (item, exp) in reader.zip(want["records"].as_array().unwrap()) {
        seen += 1;
        let issues = match item {
            Ok(cr) => match conv.convert_located(cr.record.clone(), NOW, |i| cr.locate(i)) {
                Outcome::Rejected(r) => r.issues,
                Outcome::Converted(_) => panic!("{} converted", exp["recordId"]),
            },
            Err((id, issues)) => {
                assert_eq!(id.as_deref(), exp["recordId"].as_str());
                issues.iter().map(OutcomeIssue::from).collect()
            }
        };
        assert_eq!(
            got(&issues, true),
            expected(exp),
            "record {}",
            exp["recordId"]
        );
    }
    assert_eq!(seen, 3);
}

#[test]
fn malformed_json_is_one_clear_issue() {
    let err = engraft::record::records_from_json(b"{\"recordId\": \"R1\", ").unwrap_err();
    assert_eq!(err.code.as_str(), "json-syntax");
    assert!(err.message.contains("line 1"));
}

#[test]
fn duplicate_keys_are_refused() {
    let text = br#"{"recordId": "R1", "recordId": "R2"}"#;
    let err = engraft::record::records_from_json(text).unwrap_err();
    assert_eq!(err.code.as_str(), "json-syntax");
    let array = br#"[{"recordId": "R1", "registry": "A", "registry": "B"}]"#;
    assert!(engraft::record::records_from_json(array).is_err());
}
