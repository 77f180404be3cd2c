//! `engraft profiles snapshot`: the committed snapshots are current, complete, and the CLI
//! finds and fixes a stale one.

use std::path::Path;

use engraft::profiles::snapshot::{self, BaseDefinitions};
use serde_json::Value;

use crate::cli::{code, engraft};
use crate::helpers::{read_json, root};

fn structure_definitions(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("StructureDefinition-")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn committed_snapshots_are_current() {
    let files = structure_definitions(&root().join("profiles"));
    assert_eq!(files.len(), 37);
    let stale: Vec<String> = files
        .iter()
        .filter(|f| !snapshot::is_current(&read_json(f), BaseDefinitions::bundled()).unwrap())
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        stale.is_empty(),
        "stale snapshots (run `cargo run -- profiles snapshot`): {stale:?}"
    );
}

#[test]
fn every_snapshot_holds_each_differential_element_and_the_whole_base() {
    for f in structure_definitions(&root().join("profiles")) {
        let sd = read_json(&f);
        let snap = sd["snapshot"]["element"].as_array().unwrap();
        let ids: Vec<&str> = snap.iter().map(|e| e["id"].as_str().unwrap()).collect();
        for d in sd["differential"]["element"].as_array().unwrap() {
            let id = d["id"].as_str().unwrap();
            let el = snap.iter().find(|e| e["id"] == id);
            let el = el.unwrap_or_else(|| panic!("{}: {id} missing", f.display()));
            for (k, v) in d.as_object().unwrap() {
                if k != "constraint" {
                    assert_eq!(&el[k], v, "{}: {id}.{k}", f.display());
                }
            }
        }
        for e in snap {
            for k in ["path", "min", "max", "base"] {
                assert!(
                    e.get(k).is_some(),
                    "{}: {} has no {k}",
                    f.display(),
                    e["id"]
                );
            }
        }
        // Every element of the base type is there, in base order.
        let ty = sd["type"].as_str().unwrap();
        let base_ids: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|i| !i.contains(':') && i.matches('.').count() <= 1)
            .collect();
        assert_eq!(base_ids[0], ty);
        assert!(base_ids.len() > 4, "{}", f.display());
        // Constraints of base R4 travel with the snapshot (third-party validators need them).
        assert!(
            snap[0]["constraint"]
                .as_array()
                .is_some_and(|c| c.iter().all(|c| c["expression"].is_string()) && !c.is_empty()),
            "{}",
            f.display()
        );
    }
}

#[test]
fn the_cli_finds_a_stale_snapshot_and_rewrites_it() {
    let tmp = tempfile::tempdir().unwrap();
    for f in structure_definitions(&root().join("profiles")) {
        std::fs::copy(&f, tmp.path().join(f.file_name().unwrap())).unwrap();
    }
    let dir = tmp.path().to_str().unwrap();
    let o = engraft(&["profiles", "snapshot", "--check", "--dir", dir]);
    assert_eq!(code(&o), 0);

    // Tighten a differential without regenerating: the snapshot is now stale.
    let p = tmp.path().join("StructureDefinition-engraft-patient.json");
    let mut sd: Value = read_json(&p);
    let diff = sd["differential"]["element"].as_array_mut().unwrap();
    let gender = diff
        .iter_mut()
        .find(|e| e["id"] == "Patient.gender")
        .unwrap();
    gender["short"] = Value::String("Administrative gender, always sent".into());
    std::fs::write(&p, serde_json::to_string_pretty(&sd).unwrap()).unwrap();

    let o = engraft(&["profiles", "snapshot", "--check", "--dir", dir]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stdout).contains("stale: "));
    assert!(String::from_utf8_lossy(&o.stdout).contains("engraft-patient"));

    let o = engraft(&["profiles", "snapshot", "--dir", dir]);
    assert_eq!(code(&o), 0);
    let fixed = read_json(&p);
    let el = fixed["snapshot"]["element"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "Patient.gender")
        .unwrap()
        .clone();
    assert_eq!(el["short"], "Administrative gender, always sent");
    assert_eq!(el["min"], 1);
    assert_eq!(
        code(&engraft(&["profiles", "snapshot", "--check", "--dir", dir])),
        0
    );
}

#[test]
fn a_differential_that_loosens_the_base_fails_with_its_element() {
    let tmp = tempfile::tempdir().unwrap();
    let src = root().join("profiles/StructureDefinition-engraft-lab.json");
    let mut sd = read_json(&src);
    sd["differential"]["element"].as_array_mut().unwrap().push(
        serde_json::json!({"id": "Observation.code", "path": "Observation.code", "max": "*"}),
    );
    let p = tmp.path().join("StructureDefinition-engraft-lab.json");
    std::fs::write(&p, serde_json::to_string_pretty(&sd).unwrap()).unwrap();
    let o = engraft(&[
        "profiles",
        "snapshot",
        "--dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Observation.code: max is above the base's"),
        "{err}"
    );
}
