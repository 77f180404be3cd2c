//! The `engraft` binary: exit codes, outputs and files, run as a user would.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::helpers::*;

pub(crate) fn engraft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("engraft runs")
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn converting_one_record_writes_its_bundle_to_stdout() {
    let o = engraft(&[
        "convert",
        "fixtures/records/ms-rrms-auto-beam-atg.json",
        "--now",
        NOW,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bundle: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        bundle,
        read_json(&fixtures("bundles").join("ms-rrms-auto-beam-atg.json"))
    );
    assert!(stderr(&o).contains("1 converted, 0 rejected"));
}

#[test]
fn converting_a_directory_writes_one_bundle_per_record() {
    let out = tempfile::tempdir().unwrap();
    let o = engraft(&[
        "convert",
        "fixtures/records",
        "--out",
        out.path().to_str().unwrap(),
        "--now",
        NOW,
        "--report",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let golden = files("bundles", "json");
    for g in &golden {
        let stem = g.file_stem().unwrap().to_string_lossy().to_string();
        // CSV goldens are named <csv-stem>.<recordId>; the CLI names files by record id.
        let id = stem
            .rsplit_once('.')
            .map(|(_, id)| id.to_string())
            .unwrap_or_else(|| {
                read_json(&fixtures("records").join(format!("{stem}.json")))["recordId"]
                    .as_str()
                    .unwrap()
                    .to_string()
            });
        let written = read_json(&out.path().join(format!("{id}.json")));
        assert_eq!(written, read_json(g), "{stem}");
        let report = read_json(&out.path().join(format!("{id}.report.json")));
        assert_eq!(report["recordId"], id.as_str());
    }
    assert!(golden.len() >= 30);
}

#[test]
fn a_rejected_record_exits_1_with_an_operation_outcome() {
    let o = engraft(&["convert", "fixtures/invalid/withdrawn-consent.json"]);
    assert_eq!(code(&o), 1);
    assert!(
        o.stdout.is_empty(),
        "nothing is written for a rejected record"
    );
    let err = stderr(&o);
    let start = err.find('{').unwrap();
    let end = err.rfind('}').unwrap() + 1;
    let oo: Value = serde_json::from_str(&err[start..end]).unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(
        oo["issue"][0]["details"]["coding"][0]["code"],
        "consent-not-given"
    );
    assert_eq!(oo["issue"][0]["expression"][0], "Record.consent.status");

    let out = tempfile::tempdir().unwrap();
    let o = engraft(&[
        "convert",
        "fixtures/invalid",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    let written: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(!written.is_empty());
    for name in &written {
        assert!(
            name.ends_with(".outcome.json"),
            "{name}: only OperationOutcomes are written for invalid records"
        );
        assert_eq!(
            read_json(&out.path().join(name))["resourceType"],
            "OperationOutcome"
        );
    }
    assert!(!out.path().join("..").join("etc").exists());
    // The unsafe record id is not used as a file name.
    assert!(std::fs::read_dir(out.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("passwd")));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&engraft(&["convert"])), 2);
    assert_eq!(code(&engraft(&["convert", "--frobnicate", "x"])), 2);
    assert_eq!(code(&engraft(&["convert", "no/such/file.json"])), 2);
    assert_eq!(code(&engraft(&["convert", "README.md"])), 2);
    assert_eq!(
        code(&engraft(&[
            "convert",
            "fixtures/records/ms-rrms-auto-beam-atg.json",
            "--now",
            "yesterday"
        ])),
        2
    );
    assert_eq!(code(&engraft(&["nonsense"])), 2);
}

#[test]
fn csv_exports_convert_with_their_follow_ups() {
    let o = engraft(&[
        "convert",
        "fixtures/records/eu-registry-export.csv",
        "--now",
        NOW,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        read_json(&fixtures("bundles").join("eu-registry-export.EU-0001.json"))
    );
    assert_eq!(
        with_profile(&lines[0], "engraft-followup-encounter").len(),
        6,
        "the follow-ups file was paired"
    );
}

#[test]
fn generated_records_stream_through_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gen.ndjson");
    let o = engraft(&[
        "fixtures",
        "generate",
        "--count",
        "50",
        "--seed",
        "3",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 50);
    let o = engraft(&["convert", file.to_str().unwrap(), "--compact"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bundles: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bundles.len(), 50);
    assert!(bundles.iter().all(|b| b["type"] == "transaction"));
    // Same seed, same records.
    let again = dir.path().join("again.ndjson");
    engraft(&[
        "fixtures",
        "generate",
        "--count",
        "50",
        "--seed",
        "3",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn the_record_schema_describes_the_fixtures() {
    let o = engraft(&["schema", "record"]);
    assert_eq!(code(&o), 0);
    let schema: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(schema["title"], "Engraft registry record");
    let validator = jsonschema::validator_for(&schema).unwrap();
    for path in files("records", "json") {
        let v = read_json(&path);
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
    let mut bad = base();
    bad["transplants"][0]["donorType"] = Value::from("auto");
    assert!(!validator.is_valid(&bad));
}

#[test]
fn validate_accepts_the_golden_bundles_and_rejects_broken_resources() {
    let o = engraft(&["validate", "fixtures/bundles"]);
    assert_eq!(
        code(&o),
        0,
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"resourceType": "Observation", "status": "done", "code": {}, "valueFoo": 1}"#,
    )
    .unwrap();
    let o = engraft(&["validate", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let oo: Value = serde_json::from_slice(&o.stdout).unwrap();
    let exprs: Vec<&str> = oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["expression"][0].as_str().unwrap())
        .collect();
    assert!(
        exprs.contains(&"Observation.status") && exprs.contains(&"Observation.valueFoo"),
        "{exprs:?}"
    );
    assert!(Path::new(env!("CARGO_BIN_EXE_engraft")).exists());
}
