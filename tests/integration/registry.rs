//! Registry submission (CIBMTR Direct FHIR style): the real gateway submitting to the real
//! registry sandbox (`engraft sandbox-ehr --registry`, another process) over 127.0.0.1, with
//! the password grant and a cached token, CRID registration, a de-identified Patient, centre
//! tags, 50-entry transactions and entry-level answers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fixtures, get_json, listening_on};
use crate::server::{authed_client, outcome, Server};
use crate::sync::post_record;

const TAG_SYSTEM: &str = "http://cibmtr.org/codesystem/transplant-center";

/// The registry sandbox (password grant required) and the secret files Engraft reads.
pub(crate) struct Registry {
    sandbox: crate::sync::Sandbox,
    secrets: tempfile::TempDir,
}

pub(crate) fn registry(args: &[&str]) -> Registry {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_engraft"));
    cmd.args(["sandbox-ehr", "--registry", "--port", "0"])
        .args(["--basic-client", "engraft-test:client-secret-1"])
        .args(["--user", "datamanager:owner-password-2"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let base = listening_on(&mut child, "sandbox-registry listening on ");
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("client"), "client-secret-1\n").unwrap();
    std::fs::write(secrets.path().join("password"), "owner-password-2\n").unwrap();
    Registry {
        sandbox: crate::sync::Sandbox::new(child, base),
        secrets,
    }
}

impl Registry {
    fn base(&self) -> &str {
        &self.sandbox.base
    }

    /// The `[[destinations]]` entry for this registry; `timeout_secs` as given.
    pub(crate) fn destination(&self, timeout_secs: u64) -> String {
        let (base, dir) = (self.base(), self.secrets.path());
        format!(
            r#"[[destinations]]
name = "cibmtr"
kind = "registry"
base_url = "{base}"
concurrency = 2
max_attempts = 6
backoff_base_ms = 20
backoff_max_secs = 1
timeout_secs = {timeout_secs}
[destinations.registry]
ccn = "12345"
[destinations.auth]
method = "password"
client_id = "engraft-test"
token_url = "{base}/oauth2/v1/token"
scope = "openid"
client_secret = {{ file = {client:?} }}
username = "datamanager"
password = {{ file = {password:?} }}
"#,
            client = dir.join("client").display().to_string(),
            password = dir.join("password").display().to_string(),
        )
    }

    pub(crate) async fn stats(&self) -> Value {
        get_json(
            &reqwest::Client::new(),
            &format!("{}/_sandbox/stats", self.base()),
        )
        .await
    }

    pub(crate) async fn held(&self) -> Vec<Value> {
        serde_json::from_value(
            get_json(
                &reqwest::Client::new(),
                &format!("{}/_sandbox/resources", self.base()),
            )
            .await,
        )
        .unwrap()
    }

    async fn control(&self, what: &str, body: Value) {
        let res = reqwest::Client::new()
            .post(format!("{}/_sandbox/{what}", self.base()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
}

/// A fixture record with what CRID registration needs: a name and a full birth date
/// (pseudonymised exports often hold only the year and month).
pub(crate) fn with_demographics(mut r: Value, n: usize) -> Value {
    r["patient"]["name"] = json!({"family": format!("Family{n}"), "given": [format!("Given{n}")]});
    let born = r["patient"]["birthDate"]
        .as_str()
        .unwrap_or("1970")
        .to_string();
    let full = match born.len() {
        4 => format!("{born}-06-15"),
        7 => format!("{born}-15"),
        _ => born,
    };
    r["patient"]["birthDate"] = json!(full);
    if !matches!(r["patient"]["sex"].as_str(), Some("male" | "female")) {
        r["patient"]["sex"] = json!("female");
    }
    r
}

/// One fixture record (file stem), with demographics.
fn fixture_record(name: &str) -> Value {
    fixture_patient(name, 0)
}

/// One fixture record (file stem), with the demographics of patient `n`.
fn fixture_patient(name: &str, n: usize) -> Value {
    let text = std::fs::read_to_string(fixtures("records").join(format!("{name}.json"))).unwrap();
    with_demographics(serde_json::from_str(&text).unwrap(), n)
}

fn fixture_records() -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(fixtures("records"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .enumerate()
        .map(|(n, p)| {
            with_demographics(
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap(),
                n,
            )
        })
        .collect()
}

/// Submits through the API and waits for the report.
pub(crate) async fn submit(s: &Server, body: Value) -> Value {
    let location = start_submission(s, body).await;
    report_when_done(s, &location).await
}

/// Asks for a submission; its location.
async fn start_submission(s: &Server, body: Value) -> String {
    let res = authed_client()
        .post(s.url("/registry/submissions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    res.headers()["location"].to_str().unwrap().to_string()
}

/// The report of the submission at `location`, once it is done.
async fn report_when_done(s: &Server, location: &str) -> Value {
    let started = Instant::now();
    loop {
        let sub = get_json(&authed_client(), &s.url(location)).await;
        if sub["status"] == "done" {
            return sub["report"].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{sub}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many Patients the registry holds.
fn patients(held: &[Value]) -> usize {
    held.iter()
        .filter(|r| r["resourceType"] == "Patient")
        .count()
}

/// No resource (but the registry's Patients) is held twice: by type and business identifier.
fn assert_held_once(held: &[Value]) {
    let mut seen = std::collections::HashSet::new();
    for r in held.iter().filter(|r| r["resourceType"] != "Patient") {
        let key = (
            r["resourceType"].to_string(),
            r["identifier"][0]["value"].to_string(),
        );
        assert!(seen.insert(key), "a resource arrived twice: {r}");
    }
}

fn record_of<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record"] == id)
        .unwrap()
}

/// Everything at the registry is valid R4 (and valid against the Engraft profile it declares),
/// carries the centre tag, and Patients hold only tag, text and CRID.
pub(crate) fn assert_registry_shape(held: &[Value]) {
    let validator = engraft::validation::Validator::bundled();
    for r in held {
        let issues = validator.validate(r, None);
        assert!(issues.is_empty(), "{issues:?}\n{r}");
        let tags = r["meta"]["security"].as_array().expect("a security label");
        assert!(
            tags.iter()
                .any(|t| t["system"] == TAG_SYSTEM && t["code"] == "rc_12345"),
            "{r}"
        );
        assert_ne!(r["resourceType"], "Provenance");
        if r["resourceType"] == "Patient" {
            for pii in ["name", "birthDate", "address", "telecom", "gender"] {
                assert!(r[pii].is_null(), "the registry Patient holds {pii}");
            }
            let ids = r["identifier"].as_array().unwrap();
            assert_eq!(ids.len(), 1, "only the CRID: {r}");
            assert_eq!(ids[0]["system"], "http://cibmtr.org/identifier/CRID");
            assert_eq!(r["text"]["status"], "empty");
        }
    }
}

#[tokio::test]
async fn every_fixture_record_is_submitted_once_and_a_resubmission_sends_nothing() {
    let reg = registry(&[]);
    let s = Server::start_with(&reg.destination(10), &[], &[]);
    let records = fixture_records();
    let mut ids = Vec::new();
    for r in &records {
        ids.push(post_record(&s, r).await);
    }
    let first = submit(&s, json!({"destination": "cibmtr", "all": true})).await;
    assert_eq!(first["totals"]["delivered"], ids.len(), "{first:#}");
    let held = reg.held().await;
    assert_registry_shape(&held);
    // What was accepted is exactly what the registry holds besides the Patients.
    let patients = patients(&held);
    assert_eq!(
        patients,
        ids.len(),
        "one registry Patient per fixture patient"
    );
    assert_eq!(
        held.len() - patients,
        first["accepted"].as_u64().unwrap() as usize
    );
    // A CRID is asked for once per patient whose record does not carry one already.
    let stats = reg.stats().await;
    let known = records
        .iter()
        .filter(|r| r["patient"]["crid"].is_string())
        .count();
    assert_eq!(stats["crid_requests"], ids.len() - known, "{stats}");
    assert_eq!(stats["crids"], ids.len() - known);
    assert_eq!(stats["token_requests"], 1, "the token is cached: {stats}");
    // Every Bundle as submitted references the registry's Patient, never ours.
    for r in held.iter().filter(|r| r["resourceType"] == "Observation") {
        let subject = r["subject"]["reference"].as_str().unwrap();
        assert!(held.iter().any(|p| p["resourceType"] == "Patient"
            && format!("Patient/{}", p["id"].as_str().unwrap()) == subject));
    }

    // Again: nothing new, nothing rewritten, no CRID asked for again.
    let again = submit(&s, json!({"destination": "cibmtr", "all": true})).await;
    assert_eq!(again["totals"]["unchanged"], ids.len(), "{again:#}");
    assert_eq!(again["sent"], 0);
    let after = reg.stats().await;
    assert_eq!(after["resources_total"], stats["resources_total"]);
    assert_eq!(after["versions_written"], stats["versions_written"]);
    assert_eq!(after["crid_requests"], stats["crid_requests"]);
}

#[tokio::test]
async fn one_changed_follow_up_updates_exactly_that_resource() {
    let reg = registry(&[]);
    let s = Server::start_with(&reg.destination(10), &[], &[]);
    let mut record = fixture_record("anca-vasculitis-relapse-restart");
    let id = post_record(&s, &record).await;
    let first = submit(&s, json!({"destination": "cibmtr", "records": [id]})).await;
    assert_eq!(first["totals"]["delivered"], 1, "{first:#}");
    let before = reg.stats().await;

    // One follow-up score changes (a corrected BVAS).
    let fu = record["followUps"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["scores"].as_array().is_some_and(|s| !s.is_empty()))
        .unwrap();
    let old = fu["scores"][0]["value"].as_f64().unwrap();
    fu["scores"][0]["value"] = json!(if old >= 1.0 { old - 1.0 } else { old + 1.0 });
    record["version"] = json!(record["version"].as_i64().unwrap_or(1) + 1);
    let current = authed_client()
        .get(s.url(&format!("/registry/records/{id}")))
        .send()
        .await
        .unwrap();
    let etag = current.headers()["etag"].to_str().unwrap().to_string();
    let res = authed_client()
        .put(s.url(&format!("/registry/records/{id}")))
        .header("if-match", etag)
        .json(&record)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // The dry run says so before anything is sent.
    let plan = submit(
        &s,
        json!({"destination": "cibmtr", "records": [id], "dryRun": true}),
    )
    .await;
    let lines = plan["records"][0]["report"]["resources"]
        .as_array()
        .unwrap();
    let changed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["action"] != "unchanged")
        .collect();
    assert_eq!(changed.len(), 1, "{plan:#}");
    assert_eq!(changed[0]["action"], "update");
    assert_eq!(
        reg.stats().await["versions_written"],
        before["versions_written"]
    );

    let second = submit(&s, json!({"destination": "cibmtr", "records": [id]})).await;
    let r = record_of(&second, &id);
    assert_eq!(r["outcome"], "delivered", "{second:#}");
    assert_eq!(r["accepted"], 1);
    let sent = r["report"]["resources"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["action"], "update");
    let after = reg.stats().await;
    assert_eq!(after["resources_total"], before["resources_total"]);
    assert_eq!(
        after["versions_written"].as_u64().unwrap(),
        before["versions_written"].as_u64().unwrap() + 1
    );
}

#[tokio::test]
async fn a_record_of_sixty_observations_goes_as_two_bundles() {
    let reg = registry(&[]);
    let s = Server::start_with(&reg.destination(10), &[], &[]);
    // 19 observations, then 11 more visits of four each (EDSS, MRI lesions, response): 63.
    let mut record = fixture_record("ms-edss10-death");
    let visits = record["followUps"].as_array_mut().unwrap();
    for m in 0..11 {
        // Between the D100 visit and death, three a month.
        visits.push(json!({"timePoint": "unscheduled",
            "date": format!("2019-{:02}-{}", 4 + m / 3, ["05", "15", "25"][m % 3]),
            "scores": [{"scale": "edss", "value": 6.5}, {"scale": "mri-new-t2", "value": 0},
                       {"scale": "mri-gd", "value": 0}],
            "response": "sd"}));
    }
    let id = post_record(&s, &record).await;
    let bundle = get_json(
        &authed_client(),
        &s.url(&format!("/registry/records/{id}/bundle")),
    )
    .await;
    let entries = bundle["entry"].as_array().unwrap();
    let observations = entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .count();
    assert!(observations >= 60, "{observations}");
    // Sent: everything but the Patient (registered on its own) and the Provenance.
    let sent = entries.len() - 2;
    assert!(sent > 50 && sent <= 100, "{sent}");
    let report = submit(&s, json!({"destination": "cibmtr", "records": [id]})).await;
    assert_eq!(report["totals"]["delivered"], 1, "{report:#}");
    assert_eq!(report["accepted"], sent);
    let stats = reg.stats().await;
    assert_eq!(stats["transactions"], 2, "{stats}");
    assert_eq!(stats["resources_total"], sent + 1);
}

#[tokio::test]
async fn a_rejected_entry_is_reported_and_a_replay_sends_only_it() {
    // The registry refuses EDSS (not one of its priority variables, say).
    let reg = registry(&["--reject-code", "edss"]);
    let s = Server::start_with(&reg.destination(10), &[], &[]);
    let record = fixture_record("ms-rrms-auto-beam-atg");
    let id = post_record(&s, &record).await;
    let bundle = get_json(
        &authed_client(),
        &s.url(&format!("/registry/records/{id}/bundle")),
    )
    .await;
    let edss: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["resource"]["code"]["coding"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["code"] == "edss"))
        })
        .collect();
    assert!(!edss.is_empty(), "the fixture has EDSS observations");
    let report = submit(&s, json!({"destination": "cibmtr", "records": [id]})).await;
    let r = record_of(&report, &id);
    assert_eq!(r["outcome"], "failed", "{report:#}");
    assert_eq!(r["rejected"], edss.len());
    let rejected: Vec<&Value> = r["report"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["result"] == "rejected")
        .collect();
    for l in &rejected {
        assert_eq!(l["status"], 422);
        assert!(
            l["reason"].as_str().unwrap().contains("not accepted"),
            "{l}"
        );
    }
    // The failure is visible with the registry's reasons, and replayable.
    let failed = get_json(&authed_client(), &s.url("/sync/failed")).await;
    let row = failed["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["record"] == id.as_str())
        .unwrap_or_else(|| panic!("{failed:#}"))
        .clone();
    assert_eq!(row["reason"], "validation");
    let oo: Value = serde_json::from_str(row["outcome"].as_str().unwrap()).unwrap();
    assert_eq!(oo["issue"].as_array().unwrap().len(), edss.len());
    let before = reg.stats().await;

    reg.control("reject", json!({"codes": []})).await;
    let res = authed_client()
        .post(s.url(&format!("/sync/failed/{}/retry", row["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let status = crate::sync::drained(&s, Duration::from_secs(60)).await;
    assert_eq!(status["failed"], 0, "{status}");
    let after = reg.stats().await;
    assert_eq!(
        after["resources_total"].as_u64().unwrap(),
        before["resources_total"].as_u64().unwrap() + edss.len() as u64
    );
    assert_eq!(
        after["versions_written"].as_u64().unwrap(),
        before["versions_written"].as_u64().unwrap() + edss.len() as u64,
        "only the rejected entries were sent"
    );
    assert_eq!(
        after["transactions"].as_u64().unwrap(),
        before["transactions"].as_u64().unwrap() + 1
    );
}

#[tokio::test]
async fn a_timeout_after_the_registry_applied_a_bundle_creates_no_duplicates() {
    let reg = registry(&[]);
    let s = Server::start_with(&reg.destination(2), &[], &[]);
    let record = fixture_record("ms-rrms-auto-beam-atg");
    let id = post_record(&s, &record).await;
    let bundle = get_json(
        &authed_client(),
        &s.url(&format!("/registry/records/{id}/bundle")),
    )
    .await;
    // Everything but the Provenance; the Patient as the registry's de-identified one.
    let expected = bundle["entry"].as_array().unwrap().len() as u64 - 1;
    // The first transaction is applied, then answered after Engraft gave up waiting.
    reg.control("late", json!({"seconds": 4})).await;
    let first = submit(&s, json!({"destination": "cibmtr", "records": [id]})).await;
    let r = record_of(&first, &id);
    assert_eq!(r["outcome"], "retry", "{first:#}");
    let applied = reg.stats().await["resources_total"].as_u64().unwrap();
    assert!(applied > 1, "the registry applied the first bundle");
    // The queue retries it: every entry is found by its identifier and updated in place.
    let status = crate::sync::drained(&s, Duration::from_secs(60)).await;
    assert_eq!(status["failed"], 0, "{status}");
    let after = reg.stats().await;
    assert_eq!(
        after["resources_total"].as_u64().unwrap(),
        expected,
        "{after}"
    );
    let held = reg.held().await;
    assert_held_once(&held);
    assert_registry_shape(&held);
}

#[tokio::test]
async fn bad_submission_requests_get_every_problem_at_once() {
    let reg = registry(&[]);
    let extra = format!(
        "{}\n[[destinations]]\nname = \"ehr\"\nbase_url = \"{}\"\n[destinations.auth]\nmethod = \"none\"\n",
        reg.destination(10),
        reg.base()
    );
    let s = Server::start_with(&extra, &[], &[]);
    let res = authed_client()
        .post(s.url("/registry/submissions"))
        .json(&json!({"destination": "nowhere", "records": ["no-such-record"], "all": true}))
        .send()
        .await
        .unwrap();
    let codes = outcome(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(codes, ["destination", "records", "record"]);
    let res = authed_client()
        .post(s.url("/registry/submissions"))
        .json(&json!({"destination": "ehr", "all": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::BAD_REQUEST).await, ["destination"]);
    let res = authed_client()
        .get(s.url("/registry/submissions/unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::NOT_FOUND).await, ["not-found"]);
    assert_eq!(reg.stats().await["requests"], 0);
}

/// `engraft submit`: dry run first (nothing sent), then the submission, as JSON.
#[tokio::test]
async fn the_cli_plans_then_submits_and_reports() {
    let reg = registry(&[]);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("engraft.db").display());
    let s = Server::start_on_with(&db, &reg.destination(10));
    let mut record = fixture_record("anca-vasculitis-relapse-restart");
    let id = post_record(&s, &record).await;
    // A second record without what CRID registration needs fails with a clear reason.
    record["recordId"] = json!("ENG-NO-NAME");
    record["patient"]["upn"] = json!("UPN-NO-NAME");
    record["patient"].as_object_mut().unwrap().remove("name");
    let unnamed = post_record(&s, &record).await;
    drop(s);
    let config = dir.path().join("engraft.toml");
    std::fs::write(
        &config,
        format!("[store]\nurl = \"{db}\"\n{}", reg.destination(10)),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_engraft"))
            .arg("submit")
            .args([
                "--config",
                config.to_str().unwrap(),
                "--destination",
                "cibmtr",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let plan = run(&["--all", "--dry-run"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["totals"]["planned"], 2, "{plan:#}");
    assert_eq!(reg.stats().await["requests"], 0, "a dry run sends nothing");

    let out = run(&["--record", &id, "--record", "ENG-NO-NAME"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        record_of(&report, &id)["outcome"],
        "delivered",
        "{report:#}"
    );
    let bad = record_of(&report, &unnamed);
    assert_eq!(bad["outcome"], "failed");
    let why = bad["error"].as_str().unwrap();
    assert!(
        why.contains("patient.name") && why.contains("patient.crid"),
        "{why}"
    );
    assert!(
        !why.contains("UPN-NO-NAME"),
        "no patient values in messages"
    );

    let unknown = run(&["--record", "ENG-NOPE"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[tokio::test]
async fn a_later_submission_that_delivers_clears_the_earlier_failure() {
    let reg = registry(&["--reject-code", "edss"]);
    let s = Server::start_with(&reg.destination(10), &[], &[]);
    let id = post_record(&s, &fixture_record("ms-rrms-auto-beam-atg")).await;
    let first = submit(&s, json!({"destination": "cibmtr", "records": [id]})).await;
    assert_eq!(record_of(&first, &id)["outcome"], "failed", "{first:#}");
    let failed = get_json(&authed_client(), &s.url("/sync/failed")).await;
    assert_eq!(failed["failed"].as_array().unwrap().len(), 1, "{failed:#}");

    reg.control("reject", json!({"codes": []})).await;
    let second = submit(&s, json!({"destination": "cibmtr", "records": [id]})).await;
    let r = record_of(&second, &id);
    assert_eq!(r["outcome"], "delivered", "{second:#}");
    assert_eq!(
        r["accepted"], 7,
        "only the rejected EDSS observations are sent"
    );
    let failed = get_json(&authed_client(), &s.url("/sync/failed")).await;
    assert!(
        failed["failed"].as_array().unwrap().is_empty(),
        "{failed:#}"
    );
}

/// The gateway is killed (SIGKILL) in the middle of a submission. The next gateway on the same
/// store finds it stopped (its heartbeat went silent), takes it over and finishes it: every
/// record ends delivered or unchanged, each is held at the registry once, and the report says
/// the submission was resumed.
#[tokio::test]
async fn a_submission_whose_gateway_is_killed_is_resumed_by_the_next_one() {
    // Every registry answer takes 400 ms, so the submission is still running when killed.
    let reg = registry(&["--latency-ms", "400"]);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("engraft.db").display());
    let s = Server::start_on_with(&db, &reg.destination(1));
    let mut ids = Vec::new();
    for (n, name) in [
        "ms-rrms-auto-beam-atg",
        "ssc-diffuse-auto-cy-atg",
        "anca-vasculitis-relapse-restart",
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(post_record(&s, &fixture_patient(name, n)).await);
    }
    let location = start_submission(&s, json!({"destination": "cibmtr", "all": true})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(s);

    let s = Server::start_on_with(&db, &reg.destination(1));
    let sub = get_json(&authed_client(), &s.url(&location)).await;
    assert_eq!(sub["status"], "running", "killed before it finished: {sub}");
    let report = report_when_done(&s, &location).await;
    assert_eq!(report["resumed"], true, "{report:#}");
    for id in &ids {
        let outcome = &record_of(&report, id)["outcome"];
        assert!(
            outcome == "delivered" || outcome == "unchanged",
            "{report:#}"
        );
    }
    let status = crate::sync::drained(&s, Duration::from_secs(60)).await;
    assert_eq!(status["failed"], 0, "{status}");
    let held = reg.held().await;
    assert_registry_shape(&held);
    let patients = patients(&held);
    assert_eq!(patients, ids.len(), "one registry Patient per record");
    assert_held_once(&held);
    // What the three bundles hold (less their Provenance and our Patient) is all there.
    let mut expected = 0;
    for id in &ids {
        let bundle = get_json(
            &authed_client(),
            &s.url(&format!("/registry/records/{id}/bundle")),
        )
        .await;
        expected += bundle["entry"].as_array().unwrap().len() - 2;
    }
    assert_eq!(held.len() - patients, expected);
}
