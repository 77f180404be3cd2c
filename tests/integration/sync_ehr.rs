//! EHR sync against what real EHRs differ in: servers without transactions or conditional
//! writes, transaction size limits, resources changed at the EHR since Engraft wrote them,
//! Patients found by MRN, consent withdrawal that deletes, and pull into the review queue.
//! Real processes over 127.0.0.1: the gateway and `engraft sandbox-ehr`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fixtures, get_json};
use crate::server::{authed_client, record_text, Server};
use crate::sync::{
    assert_sandbox_holds_exactly, destination, drained, post_record, sandbox, Sandbox,
};

/// `destination(base)` with `settings` (TOML lines) added to the destination.
fn destination_with(base: &str, settings: &str) -> String {
    destination(base).replace(
        "[destinations.auth]",
        &format!("{settings}\n[destinations.auth]"),
    )
}

async fn held(ehr: &Sandbox) -> Vec<Value> {
    serde_json::from_value(
        get_json(
            &reqwest::Client::new(),
            &format!("{}/_sandbox/resources", ehr.base),
        )
        .await,
    )
    .unwrap()
}

async fn stats(ehr: &Sandbox) -> Value {
    get_json(
        &reqwest::Client::new(),
        &format!("{}/_sandbox/stats", ehr.base),
    )
    .await
}

/// `POST /sync/sandbox/pull`: its report.
async fn pull(s: &Server) -> Value {
    let res = authed_client()
        .post(s.url("/sync/sandbox/pull"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()
}

async fn failed(s: &Server) -> Vec<Value> {
    get_json(&authed_client(), &s.url("/sync/failed")).await["failed"]
        .as_array()
        .unwrap()
        .clone()
}

async fn put_record(s: &Server, id: &str, record: &Value, version: u64) {
    let res = authed_client()
        .put(s.url(&format!("/registry/records/{id}")))
        .header("content-type", "application/json")
        .header("if-match", format!("W/\"{version}\""))
        .body(record.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// The fixture record with another identity (record id, UPN, MRN).
fn another(n: u32, mrn: &str) -> Value {
    let mut r: Value = serde_json::from_str(&record_text()).unwrap();
    r["recordId"] = json!(format!("ENG-09{n:02}"));
    r["patient"]["upn"] = json!(format!("UPN-19{n:02}"));
    r["patient"]["mrns"][0]["value"] = json!(mrn);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_transactions_or_conditional_writes_gets_each_resource_exactly_once() {
    // Its CapabilityStatement says so; nothing in the config does. Faults include dropped
    // connections and writes applied before a 500: the identifier search before each create
    // keeps them from duplicating anything.
    let ehr = sandbox(
        &[
            "--no-transactions",
            "--no-conditional",
            "--fault-rate",
            "0.2",
            "--seed",
            "11",
        ],
        None,
    );
    let s = Server::start_with(
        &destination_with(&ehr.base, "circuit_open_secs = 1"),
        &[],
        &[],
    );
    let mut ids = Vec::new();
    for i in 0..6 {
        let record = serde_json::to_value(engraft::fixtures::generate(31, i)).unwrap();
        ids.push(post_record(&s, &record).await);
    }
    let status = drained(&s, Duration::from_secs(120)).await;
    assert_eq!(status["delivered"], 6, "{status}");
    assert_eq!(status["failed"], 0, "{status}");
    assert_sandbox_holds_exactly(&s, &ehr, &ids).await;
    let st = stats(&ehr).await;
    let faults = st["faults"].as_object().unwrap();
    assert!(faults.contains_key("applied-then-500"), "{st}");
    assert!(faults.contains_key("dropped"), "{st}");
}

#[tokio::test]
async fn an_attempt_that_outlasts_its_lease_keeps_it_and_writes_nothing_twice() {
    // With `timeout_secs = 1` a lease lasts 7 s; resource by resource (a search and a write
    // each) at 150 ms a request, one record takes about twice that. The worker extends its
    // lease as it goes, so no second worker takes the record over halfway.
    let ehr = sandbox(
        &[
            "--no-transactions",
            "--no-conditional",
            "--latency-ms",
            "150",
        ],
        None,
    );
    let config = destination(&ehr.base).replace("timeout_secs = 5", "timeout_secs = 1");
    let s = Server::start_with(&config, &[], &[]);
    let id = post_record(&s, &serde_json::from_str(&record_text()).unwrap()).await;
    let status = drained(&s, Duration::from_secs(90)).await;
    assert_eq!(status["delivered"], 1, "{status}");
    assert_sandbox_holds_exactly(&s, &ehr, std::slice::from_ref(&id)).await;
    let bundle = get_json(
        &authed_client(),
        &s.url(&format!("/registry/records/{id}/bundle")),
    )
    .await;
    let entries = bundle["entry"].as_array().unwrap().len() as u64;
    // One search and one write per entry but the Provenance (PUT by id, no search): one
    // attempt, nothing sent twice.
    assert_eq!(stats(&ehr).await["requests"], 2 * entries - 1);
}

#[tokio::test]
async fn a_record_larger_than_the_transaction_limit_goes_in_several_in_dependency_order() {
    let ehr = sandbox(&["--max-entries", "10"], None);
    let s = Server::start_with(&destination_with(&ehr.base, "max_entries = 10"), &[], &[]);
    let id = post_record(&s, &serde_json::from_str(&record_text()).unwrap()).await;
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["delivered"], 1, "{status}");
    assert_sandbox_holds_exactly(&s, &ehr, std::slice::from_ref(&id)).await;
    let bundle = get_json(
        &authed_client(),
        &s.url(&format!("/registry/records/{id}/bundle")),
    )
    .await;
    let entries = bundle["entry"].as_array().unwrap().len() as u64;
    // One transaction per 10 entries: the sandbox refuses anything larger.
    assert_eq!(stats(&ehr).await["requests"], entries.div_ceil(10));
}

#[tokio::test]
async fn a_change_made_in_the_ehr_is_a_visible_conflict_and_a_replay_with_overwrite_resolves_it() {
    let ehr = sandbox(&[], None);
    let s = Server::start_with(&destination(&ehr.base), &[], &[]);
    let v1: Value = serde_json::from_str(&record_text()).unwrap();
    let id = post_record(&s, &v1).await;
    drained(&s, Duration::from_secs(30)).await;

    // Someone edits every Observation in the EHR.
    let http = reqwest::Client::new();
    for mut o in held(&ehr)
        .await
        .into_iter()
        .filter(|r| r["resourceType"] == "Observation")
    {
        o["note"] = json!([{"text": "edited in the EHR"}]);
        let url = format!("{}/Observation/{}", ehr.base, o["id"].as_str().unwrap());
        let res = http.put(url).body(o.to_string()).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    // The registry changes one follow-up score.
    let mut v2 = v1.clone();
    let fu = v2["followUps"].as_array_mut().unwrap();
    let last = fu.len() - 1;
    fu[last]["scores"][0]["value"] = json!(4.0);
    put_record(&s, &id, &v2, 1).await;
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["failed"], 1, "{status}");
    let f = failed(&s).await;
    assert_eq!(f[0]["reason"], "conflict", "{f:?}");
    assert_eq!(f[0]["http_status"], 412);
    assert!(f[0]["error"].as_str().unwrap().contains("not overwritten"));
    assert!(
        held(&ehr)
            .await
            .iter()
            .filter(|r| r["resourceType"] == "Observation")
            .all(|o| o["note"].is_array()),
        "the EHR's edits were not overwritten"
    );

    // A person decides the registry wins.
    let res = authed_client()
        .post(s.url(&format!("/sync/failed/{}/retry?overwrite=true", f[0]["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["failed"], 0, "{status}");
    assert_sandbox_holds_exactly(&s, &ehr, std::slice::from_ref(&id)).await;
    assert!(held(&ehr).await.iter().all(|r| r["note"].is_null()));

    // A version without the last follow-up: its resources are deleted at the destination.
    let mut v3 = v2.clone();
    v3["followUps"].as_array_mut().unwrap().pop();
    put_record(&s, &id, &v3, 2).await;
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["failed"], 0, "{status}");
    assert_sandbox_holds_exactly(&s, &ehr, std::slice::from_ref(&id)).await;
}

#[tokio::test]
async fn patients_are_found_by_mrn_never_guessed_and_unmatched_ones_are_held() {
    let ehr = sandbox(&[], Some(&fixtures("ehr")));
    let config = destination_with(
        &ehr.base,
        "patient_identifier_system = \"urn:oid:1.2.840.99999.1.1\"\nunmatched_patient = \"hold\"",
    );
    let s = Server::start_with(&config, &[], &[]);
    let patients_before = held(&ehr)
        .await
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .count();
    post_record(&s, &serde_json::from_str(&record_text()).unwrap()).await;
    post_record(&s, &another(1, "MRN-55599")).await;
    post_record(&s, &another(2, "MRN-55777")).await;
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(
        (status["delivered"].as_i64(), status["failed"].as_i64()),
        (Some(1), Some(2)),
        "{status}"
    );
    let f = failed(&s).await;
    let mut reasons: Vec<&str> = f.iter().map(|f| f["reason"].as_str().unwrap()).collect();
    reasons.sort();
    assert_eq!(reasons, ["conflict", "unmatched"]);

    // The matched record references the EHR's own Patient, which Engraft did not write.
    let all = held(&ehr).await;
    let patients: Vec<&Value> = all
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .collect();
    assert_eq!(
        patients.len(),
        patients_before,
        "no Patient created, none changed"
    );
    let ehr_patient = patients
        .iter()
        .find(|p| p["identifier"][0]["value"] == "MRN-55501")
        .unwrap();
    assert_eq!(ehr_patient["meta"]["versionId"], "1");
    let pref = format!("Patient/{}", ehr_patient["id"].as_str().unwrap());
    let ours: Vec<&Value> = all
        .iter()
        .filter(|r| {
            r["resourceType"] == "Observation"
                && r["identifier"][0]["system"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://engraft.dev")
        })
        .collect();
    assert!(!ours.is_empty());
    assert!(ours
        .iter()
        .all(|o| o["subject"]["reference"] == pref.as_str()));

    // The hospital registers the unmatched patient; the held record is replayed.
    let res = reqwest::Client::new()
        .post(format!("{}/Patient", ehr.base))
        .body(json!({"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.840.99999.1.1", "value": "MRN-55777"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let unmatched = f.iter().find(|f| f["reason"] == "unmatched").unwrap();
    let res = authed_client()
        .post(s.url(&format!("/sync/failed/{}/retry", unmatched["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(
        (status["delivered"].as_i64(), status["failed"].as_i64()),
        (Some(2), Some(1)),
        "{status}"
    );
}

#[tokio::test]
async fn a_withdrawal_deletes_what_engraft_created_and_is_audited() {
    let ehr = sandbox(&[], None);
    let s = Server::start_with(
        &destination_with(&ehr.base, "on_withdrawal = \"delete\""),
        &[],
        &[],
    );
    let id = post_record(&s, &serde_json::from_str(&record_text()).unwrap()).await;
    drained(&s, Duration::from_secs(30)).await;
    assert!(!held(&ehr).await.is_empty());
    let res = authed_client()
        .delete(s.url(&format!("/registry/records/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["failed"], 0, "{status}");
    assert_eq!(
        held(&ehr).await.len(),
        0,
        "nothing of the record is left at the destination"
    );
    let db = sqlx::SqlitePool::connect(&s.db_url).await.unwrap();
    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, action FROM audit WHERE action LIKE 'withdrawal%'")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].0, "sync:sandbox");
    assert!(
        actions[0].1.starts_with("withdrawal-delete:"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn pull_proposes_relevant_ehr_changes_for_review_once_each() {
    let ehr = sandbox(&[], Some(&fixtures("ehr")));
    let config = destination_with(
        &ehr.base,
        "patient_identifier_system = \"urn:oid:1.2.840.99999.1.1\"",
    );
    let s = Server::start_with(&config, &[], &[]);
    post_record(&s, &serde_json::from_str(&record_text()).unwrap()).await;
    drained(&s, Duration::from_secs(30)).await;
    let first = pull(&s).await;
    assert_eq!(first["patients"], 1, "{first}");
    assert_eq!(
        first["proposed"], 2,
        "the MS Condition and the Karnofsky score: {first}"
    );
    assert_eq!(first["not_relevant"], 1, "the heart rate: {first}");
    assert!(
        first["ours"].as_u64().unwrap() > 10,
        "Engraft's own writes are left out: {first}"
    );
    let reviews = get_json(&authed_client(), &s.url("/sync/reviews?status=proposed")).await;
    let items = reviews["reviews"].as_array().unwrap();
    let mut codes: Vec<&str> = items.iter().map(|r| r["code"].as_str().unwrap()).collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            "http://loinc.org|89243-0",
            "http://snomed.info/sct|24700007"
        ]
    );
    assert_eq!(
        pull(&s).await["proposed"],
        0,
        "nothing new since the watermark"
    );

    // The EHR records a new Karnofsky score: one new item.
    let kps = items
        .iter()
        .find(|r| r["code"] == "http://loinc.org|89243-0")
        .unwrap();
    let mut changed = kps["resource"].clone();
    changed["valueInteger"] = json!(70);
    let res = reqwest::Client::new()
        .put(format!("{}/{}", ehr.base, kps["remote"].as_str().unwrap()))
        .body(changed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(pull(&s).await["proposed"], 1);

    // Decisions: once each, audited with who decided. A Karnofsky score from a visit after
    // day 0 has no place in the record (performance status is kept at baseline): accepting
    // it says so and changes nothing, until a person has entered it by hand.
    let id = kps["id"].as_i64().unwrap();
    let decide = |verb: &'static str, id: i64| {
        let url = s.url(&format!("/sync/reviews/{id}/{verb}"));
        async move { authed_client().post(url).send().await.unwrap() }
    };
    let res = decide("accept", id).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(
        outcome["issue"][0]["details"]["coding"][0]["code"], "performance-after-baseline",
        "{outcome}"
    );
    let res = decide("accept?manual=true", id).await;
    assert_eq!(res.status(), StatusCode::OK);
    let r: Value = res.json().await.unwrap();
    assert_eq!(
        (r["status"].as_str(), r["outcome"].as_str()),
        (Some("accepted"), Some("manual"))
    );
    assert!(r["decided_by"].is_string());
    assert_eq!(decide("reject", id).await.status(), StatusCode::CONFLICT);
    assert_eq!(
        decide("accept", 999_999).await.status(),
        StatusCode::NOT_FOUND
    );
    let res = authed_client()
        .get(s.url("/sync/reviews?status=maybe"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// The record's version and JSON, from the registry API.
async fn record_now(s: &Server, id: &str) -> (String, Value) {
    let res = authed_client()
        .get(s.url(&format!("/registry/records/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    (etag, res.json().await.unwrap())
}

#[tokio::test]
async fn an_accepted_review_item_becomes_the_records_next_version_and_is_not_sent_back() {
    let ehr = sandbox(&[], Some(&fixtures("ehr")));
    let config = destination_with(
        &ehr.base,
        "patient_identifier_system = \"urn:oid:1.2.840.99999.1.1\"",
    );
    let s = Server::start_with(&config, &[], &[]);
    let id = post_record(&s, &serde_json::from_str(&record_text()).unwrap()).await;
    drained(&s, Duration::from_secs(30)).await;
    let patient = held(&ehr)
        .await
        .into_iter()
        .find(|r| r["resourceType"] == "Patient" && r["identifier"][0]["value"] == "MRN-55501")
        .unwrap();
    // The hospital measures an ANC long after the record's last follow-up.
    let anc = json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
        "subject": {"reference": format!("Patient/{}", patient["id"].as_str().unwrap())},
        "effectiveDateTime": "2024-05-10T09:15:00+02:00",
        "valueQuantity": {"value": 2.4, "unit": "10^9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"}
    });
    let res = reqwest::Client::new()
        .post(format!("{}/Observation", ehr.base))
        .body(anc.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(pull(&s).await["proposed"], 3, "MS, Karnofsky and the ANC");
    let items = get_json(&authed_client(), &s.url("/sync/reviews?status=proposed")).await;
    let item = |code: &str| {
        items["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == code)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (anc_item, ms_item) = (
        item("http://loinc.org|751-8"),
        item("http://snomed.info/sct|24700007"),
    );
    let accept = |id: i64| {
        let url = s.url(&format!("/sync/reviews/{id}/accept"));
        async move { authed_client().post(url).send().await.unwrap() }
    };

    // What accepting would do, before it is done.
    let shown = get_json(
        &authed_client(),
        &s.url(&format!("/sync/reviews/{anc_item}")),
    )
    .await;
    let proposal = &shown["proposal"];
    assert_eq!(proposal["change"], "patch", "{shown}");
    assert_eq!(proposal["recordVersion"], 1);
    assert_eq!(proposal["patch"][0]["op"], "add");
    assert_eq!(proposal["patch"][0]["path"], "/followUps/6");
    assert_eq!(proposal["patch"][0]["value"]["timePoint"], "unscheduled");

    // The MS diagnosis is in the record already: accepted, nothing changes.
    let res = accept(ms_item).await;
    assert_eq!(res.status(), StatusCode::OK);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["outcome"], "already-in-record");
    assert_eq!(record_now(&s, &id).await.0, "W/\"1\"");

    // The ANC: the record's next version, through the checks, mapping and validation.
    let res = accept(anc_item).await;
    assert_eq!(res.status(), StatusCode::OK);
    let r: Value = res.json().await.unwrap();
    assert_eq!(
        (r["outcome"].as_str(), r["record_version"].as_i64()),
        (Some("applied"), Some(2)),
        "{r}"
    );
    assert_eq!(r["patch"][0]["path"], "/followUps/6");
    let (etag, rec) = record_now(&s, &id).await;
    assert_eq!(etag, "W/\"2\"");
    let last = rec["followUps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["date"], "2024-05-10");
    assert_eq!(last["labs"][0]["test"], "anc");
    assert_eq!(rec["vitalStatus"]["lastContactDate"], "2024-05-10");
    assert_eq!(
        rec["version"], 3,
        "the source version after the fixture's 2"
    );
    assert_eq!(accept(anc_item).await.status(), StatusCode::CONFLICT);

    // The new version is synced; the EHR's own ANC stands for the record's, so the EHR never
    // gets a copy of what it gave.
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["failed"], 0, "{status}");
    let ancs: Vec<Value> = held(&ehr)
        .await
        .into_iter()
        .filter(|r| {
            r["resourceType"] == "Observation"
                && r["code"]["coding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["code"] == "751-8")
        })
        .collect();
    assert_eq!(ancs.len(), 1, "{ancs:?}");
    assert_eq!(ancs[0]["effectiveDateTime"], "2024-05-10T09:15:00+02:00");
    let visits = held(&ehr)
        .await
        .into_iter()
        .filter(|r| r["resourceType"] == "Encounter" && r["period"]["start"] == "2024-05-10")
        .count();
    assert_eq!(visits, 1, "the new unscheduled visit is sent");
    assert_eq!(
        pull(&s).await["proposed"],
        0,
        "nothing new, nothing of ours"
    );

    let db = sqlx::SqlitePool::connect(&s.db_url).await.unwrap();
    let audit: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT entity, action, version FROM audit WHERE action LIKE 'review%' ORDER BY seq",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            ("review".to_string(), "review-accepted".to_string(), None),
            ("record".to_string(), "review-accept".to_string(), Some(2)),
            ("review".to_string(), "review-accepted".to_string(), Some(2)),
        ]
    );
}

fn count_by_type(held: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut n = std::collections::BTreeMap::new();
    for r in held {
        *n.entry(r["resourceType"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    n
}

#[tokio::test]
async fn a_destination_gets_only_its_resource_types_with_its_code_systems_and_loses_nothing_when_they_change(
) {
    // First every type is sent; then the destination is narrowed to Patient, Condition and
    // Observation, with SNOMED CT by OID and no profile claims, and a new version arrives.
    let ehr = sandbox(&[], None);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("engraft.db").display());
    let v1: Value = serde_json::from_str(&record_text()).unwrap();
    let id = {
        let s = Server::start_on_with(&url, &destination(&ehr.base));
        let id = post_record(&s, &v1).await;
        drained(&s, Duration::from_secs(30)).await;
        id
    };
    let before = count_by_type(&held(&ehr).await);
    assert!(before.contains_key("Procedure") && before.contains_key("Encounter"));

    const OID: &str = "urn:oid:2.16.840.1.113883.6.96";
    let s = Server::start_on_with(
        &url,
        &destination_with(
            &ehr.base,
            &format!("resource_types = [\"Patient\", \"Condition\", \"Observation\"]\nprofiles = \"drop\"\ncode_systems = {{ \"http://snomed.info/sct\" = \"{OID}\" }}"),
        ),
    );
    let mut v2 = v1.clone();
    v2["version"] = json!(v1["version"].as_u64().unwrap_or(1) + 1);
    let fu = v2["followUps"].as_array_mut().unwrap();
    let last = fu.len() - 1;
    fu[last]["scores"][0]["value"] = json!(4.0);
    put_record(&s, &id, &v2, 1).await;
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["failed"], 0, "{status}");
    assert_eq!(status["delivered"], 2, "{status}");

    let now = held(&ehr).await;
    // Nothing deleted because the configuration changed, nothing doubled.
    assert_eq!(count_by_type(&now), before);
    let mut snomed = 0;
    for r in now.iter().filter(|r| {
        matches!(
            r["resourceType"].as_str(),
            Some("Condition" | "Observation")
        )
    }) {
        // Re-sent shaped: no profile claims, SNOMED CT by OID, references to the Patient only.
        assert!(r["meta"]["profile"].is_null(), "{r}");
        let text = r.to_string();
        assert!(!text.contains("http://snomed.info/sct"), "{text}");
        snomed += text.matches(OID).count();
        let mut refs = Vec::new();
        engraft::sync::order::references(r, &mut refs);
        assert!(refs.iter().all(|x| x.starts_with("Patient/")), "{refs:?}");
    }
    assert!(snomed > 0);
    // The types left out keep what was sent before.
    let procedure = now
        .iter()
        .find(|r| r["resourceType"] == "Procedure")
        .unwrap();
    assert!(procedure.to_string().contains("http://snomed.info/sct"));
}

#[tokio::test]
async fn a_patient_engraft_comes_to_know_later_is_pulled_from_its_beginning() {
    let ehr = sandbox(&[], Some(&fixtures("ehr")));
    // A second hospital patient with an MS Condition, in the EHR before anything is pulled.
    let c = reqwest::Client::new();
    let res = c
        .post(format!("{}/Patient", ehr.base))
        .body(
            json!({"resourceType": "Patient", "identifier": [
            {"system": "urn:oid:1.2.840.99999.1.1", "value": "MRN-55777"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let pid = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let condition = json!({"resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "24700007"}]},
        "subject": {"reference": format!("Patient/{pid}")}});
    let res = c
        .post(format!("{}/Condition", ehr.base))
        .body(condition.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let config = destination_with(
        &ehr.base,
        "patient_identifier_system = \"urn:oid:1.2.840.99999.1.1\"",
    );
    let s = Server::start_with(&config, &[], &[]);
    // Only the first patient is known: its watermark moves past the second one's Condition.
    post_record(&s, &serde_json::from_str(&record_text()).unwrap()).await;
    drained(&s, Duration::from_secs(30)).await;
    let first = pull(&s).await;
    assert_eq!(
        (first["patients"].as_u64(), first["proposed"].as_u64()),
        (Some(1), Some(2)),
        "{first}"
    );

    // The second patient's record arrives and is matched to the EHR's Patient by MRN.
    post_record(&s, &another(1, "MRN-55777")).await;
    drained(&s, Duration::from_secs(30)).await;
    let second = pull(&s).await;
    assert_eq!(second["patients"], 2, "{second}");
    assert_eq!(
        second["proposed"], 1,
        "the Condition written before the first pull: {second}"
    );
    let reviews = get_json(&authed_client(), &s.url("/sync/reviews?status=proposed")).await;
    let theirs: Vec<&Value> = reviews["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resource"]["subject"]["reference"] == format!("Patient/{pid}"))
        .collect();
    assert_eq!(theirs.len(), 1, "{reviews}");
    assert_eq!(theirs[0]["code"], "http://snomed.info/sct|24700007");
    assert_eq!(
        pull(&s).await["proposed"],
        0,
        "nothing new since either watermark"
    );
}

/// Three records to a destination whose every write is answered 2 s late, one delivery at a
/// time (`concurrency = 1`) with `slow_spare_slots` more while answers are slow: every
/// resource arrives once, and the sandbox never has more requests at once than that.
async fn slow_answers_with_spare_slots(spare: usize) -> Value {
    let ehr = sandbox(&["--fault-rate", "1", "--faults", "slow"], None);
    let config = destination_with(&ehr.base, &format!("slow_spare_slots = {spare}"))
        .replace("concurrency = 4", "concurrency = 1");
    let s = Server::start_with(&config, &[], &[]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let record = serde_json::to_value(engraft::fixtures::generate(47, i)).unwrap();
        ids.push(post_record(&s, &record).await);
    }
    let status = drained(&s, Duration::from_secs(60)).await;
    assert_eq!(status["delivered"], 3, "{status}");
    assert_sandbox_holds_exactly(&s, &ehr, &ids).await;
    let st = stats(&ehr).await;
    assert_eq!(st["faults"], json!({"slow": 3}), "{st}");
    st
}

#[tokio::test]
async fn a_slow_answer_lends_a_spare_slot_and_never_more() {
    // Until eight answers are known, a request is slow after 1 s: each 2 s write turns slow
    // while it waits, and the next delivery goes out beside it, one beside it at most.
    let st = slow_answers_with_spare_slots(1).await;
    assert_eq!(st["max_in_flight"], 2, "{st}");
}

#[tokio::test]
async fn without_spare_slots_concurrency_is_a_hard_limit() {
    let st = slow_answers_with_spare_slots(0).await;
    assert_eq!(st["max_in_flight"], 1, "{st}");
}
