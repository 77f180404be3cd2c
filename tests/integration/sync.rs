//! EHR sync, push side: the real gateway delivering to the real sandbox EHR (`engraft
//! sandbox-ehr`, another process) over 127.0.0.1, with injected faults, including answers
//! lost after the transaction was applied. The sandbox's final state is compared resource by
//! resource with the bundles Engraft holds.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{free_port, get_json, listening_on};
use crate::server::{authed_client, Server};

pub(crate) struct Sandbox {
    child: Child,
    pub(crate) base: String,
}

impl Sandbox {
    pub(crate) fn new(child: Child, base: String) -> Sandbox {
        Sandbox { child, base }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn sandbox(args: &[&str], load: Option<&std::path::Path>) -> Sandbox {
    sandbox_on(0, args, load)
}

/// The sandbox on `port` (0: any free one).
pub(crate) fn sandbox_on(port: u16, args: &[&str], load: Option<&std::path::Path>) -> Sandbox {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_engraft"));
    cmd.args(["sandbox-ehr", "--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(dir) = load {
        cmd.arg("--load").arg(dir);
    }
    let mut child = cmd.spawn().unwrap();
    let base = listening_on(&mut child, "sandbox-ehr listening on ");
    Sandbox { child, base }
}

pub(crate) fn destination(base: &str) -> String {
    format!(
        "[[destinations]]\nname = \"sandbox\"\nbase_url = \"{base}\"\nconcurrency = 4\nmax_attempts = 30\nbackoff_base_ms = 20\nbackoff_max_secs = 1\ntimeout_secs = 5\n[destinations.auth]\nmethod = \"none\"\n"
    )
}

pub(crate) async fn post_record(s: &Server, record: &Value) -> String {
    let res = authed_client()
        .post(s.url("/registry/records"))
        .header("content-type", "application/json")
        .body(record.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Polls `/sync/status` until nothing is queued or in flight; returns the destination's row.
pub(crate) async fn drained(s: &Server, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let status: Value = get_json(&authed_client(), &s.url("/sync/status")).await;
        let d = status["destinations"][0].clone();
        if d["queued"] == 0 && d["in_flight"] == 0 {
            return d;
        }
        assert!(started.elapsed() < within, "not drained in time: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (type, identifier system|value) of every entry of a Bundle or list of resources.
pub(crate) fn keys<'a>(resources: impl Iterator<Item = &'a Value>) -> Vec<(String, String)> {
    resources
        .map(|r| {
            let t = r["resourceType"].as_str().unwrap().to_string();
            let ident = r["identifier"][0]
                .as_object()
                .map(|i| {
                    format!(
                        "{}|{}",
                        i["system"].as_str().unwrap(),
                        i["value"].as_str().unwrap()
                    )
                })
                .unwrap_or_else(|| format!("id:{}", r["id"].as_str().unwrap_or("")));
            (t, ident)
        })
        .collect()
}

/// What the sandbox holds is exactly what Engraft's bundles say: no resource missing, none
/// twice (the Provenance of each record is PUT by id, so it counts by id), and references
/// pointing at the sandbox's own ids.
pub(crate) async fn assert_sandbox_holds_exactly(s: &Server, ehr: &Sandbox, ids: &[String]) {
    let mut expected = Vec::new();
    for id in ids {
        let bundle: Value = get_json(
            &authed_client(),
            &s.url(&format!("/registry/records/{id}/bundle")),
        )
        .await;
        for e in bundle["entry"].as_array().unwrap() {
            let mut r = e["resource"].clone();
            if r["identifier"].is_null() {
                let url = e["request"]["url"].as_str().unwrap();
                r["id"] = json!(url.split_once('/').unwrap().1);
            }
            expected.push(r);
        }
    }
    let held: Vec<Value> = serde_json::from_value(
        get_json(
            &reqwest::Client::new(),
            &format!("{}/_sandbox/resources", ehr.base),
        )
        .await,
    )
    .unwrap();
    let want = keys(expected.iter());
    let got = keys(held.iter());
    let mut seen: BTreeMap<&(String, String), usize> = BTreeMap::new();
    for k in &got {
        *seen.entry(k).or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "a resource arrived twice");
    assert_eq!(
        want.iter().collect::<BTreeSet<_>>(),
        got.iter().collect::<BTreeSet<_>>(),
        "the sandbox holds exactly the expected resources"
    );
    assert_eq!(want.len(), got.len());
    // References point at the sandbox's own ids.
    let patients: BTreeSet<String> = held
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .map(|r| format!("Patient/{}", r["id"].as_str().unwrap()))
        .collect();
    for r in held.iter().filter(|r| r["resourceType"] == "Observation") {
        assert!(patients.contains(r["subject"]["reference"].as_str().unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_arrives_exactly_once_through_injected_faults() {
    let ehr = sandbox(&["--fault-rate", "0.3", "--seed", "7"], None);
    let s = Server::start_with(&destination(&ehr.base), &[], &[]);
    let mut ids = Vec::new();
    for i in 0..30 {
        let record = serde_json::to_value(engraft::fixtures::generate(2024, i)).unwrap();
        ids.push(post_record(&s, &record).await);
    }
    let status = drained(&s, Duration::from_secs(120)).await;
    assert_eq!(status["delivered"], 30, "{status}");
    assert_eq!(status["failed"], 0, "{status}");

    assert_sandbox_holds_exactly(&s, &ehr, &ids).await;
    // Faults were really injected, lost answers included.
    let stats: Value = get_json(
        &reqwest::Client::new(),
        &format!("{}/_sandbox/stats", ehr.base),
    )
    .await;
    let faults = stats["faults"].as_object().unwrap();
    assert!(
        faults.values().map(|v| v.as_u64().unwrap()).sum::<u64>() >= 5,
        "{stats}"
    );
    assert!(faults.contains_key("applied-then-500"), "{stats}");
    // And counted per destination.
    let metrics = authed_client()
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "engraft_sync_delivery_attempts_total{destination=\"sandbox\",outcome=\"delivered\"} 30"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("outcome=\"retry\""));
}

#[tokio::test]
async fn a_permanent_refusal_fails_with_the_servers_outcome_and_can_be_replayed() {
    // The sandbox already holds two Patients with the UPN of the record Engraft will send:
    // its conditional update matches twice, which honest FHIR answers with 412.
    let record = serde_json::to_value(engraft::fixtures::generate(99, 1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let probe = sandbox(&[], None);
    let s0 = Server::start_with(&destination(&probe.base), &[], &[]);
    let id0 = post_record(&s0, &record).await;
    let bundle: Value = get_json(
        &authed_client(),
        &s0.url(&format!("/registry/records/{id0}/bundle")),
    )
    .await;
    let patient = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .unwrap()["resource"]
        .clone();
    let twins = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient, "request": {"method": "PUT", "url": "Patient/twin-a"}},
        {"resource": patient, "request": {"method": "PUT", "url": "Patient/twin-b"}},
    ]});
    std::fs::write(dir.path().join("twins.json"), twins.to_string()).unwrap();
    drop(s0);
    drop(probe);

    let ehr = sandbox(&[], Some(dir.path()));
    let s = Server::start_with(&destination(&ehr.base), &[], &[]);
    post_record(&s, &record).await;
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["failed"], 1, "{status}");
    assert!(
        status["last_error"].as_str().unwrap().contains("HTTP 412"),
        "{status}"
    );
    let failed: Value = get_json(&authed_client(), &s.url("/sync/failed")).await;
    let f = &failed["failed"][0];
    assert_eq!(f["reason"], "conflict");
    assert_eq!(f["http_status"], 412);
    assert_eq!(f["attempts"], 1, "a permanent error is not retried");
    let outcome: Value = serde_json::from_str(f["outcome"].as_str().unwrap()).unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    // Replay: back in the queue, tried again (and, the cause not fixed, failed again).
    let id = f["id"].as_i64().unwrap();
    let res = authed_client()
        .post(s.url(&format!("/sync/failed/{id}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let res = authed_client()
        .post(s.url("/sync/failed/999999/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["failed"], 1);
    let stats: Value = get_json(
        &reqwest::Client::new(),
        &format!("{}/_sandbox/stats", ehr.base),
    )
    .await;
    assert_eq!(
        stats["resources_total"], 2,
        "nothing of the refused transactions was applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_sync_several_times_then_the_same_exact_final_state() {
    let ehr = sandbox(
        &["--fault-rate", "0.2", "--seed", "11", "--latency-ms", "30"],
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("engraft.db").display());
    let config = destination(&ehr.base).replace("timeout_secs = 5", "timeout_secs = 2");
    let mut s = Server::start_on_with(&url, &config);
    let mut ids = Vec::new();
    for i in 0..24 {
        let record = serde_json::to_value(engraft::fixtures::generate(31, i)).unwrap();
        ids.push(post_record(&s, &record).await);
    }
    // Killed at different points of the sync, three times, each time restarted on the same
    // database (a new process, a new lease owner).
    for pause in [300u64, 700, 450] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let _ = Command::new("kill")
            .args(["-KILL", &s.child.id().to_string()])
            .status();
        let _ = s.child.wait();
        drop(s);
        s = Server::start_on_with(&url, &config);
    }
    let status = drained(&s, Duration::from_secs(120)).await;
    // A process killed after its writes were confirmed (and in the ledger) but before it
    // recorded the outcome leaves a delivery that finds nothing left to send: `skipped`,
    // never sent twice. What the EHR holds is checked resource by resource below.
    let done = status["delivered"].as_u64().unwrap() + status["skipped"].as_u64().unwrap();
    assert_eq!(done, 24, "{status}");
    assert_eq!(status["failed"], 0, "{status}");
    assert_sandbox_holds_exactly(&s, &ehr, &ids).await;
}

/// Scale-out: two gateways on one PostgreSQL database share the delivery queue (leases with
/// `FOR UPDATE SKIP LOCKED`), through faults; still every resource exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_postgres_database_deliver_each_record_once() {
    let Some(db) = crate::store_api::postgres("two_gateways_deliver_each_record_once").await else {
        return;
    };
    let ehr = sandbox(&["--fault-rate", "0.2", "--seed", "5"], None);
    let config = destination(&ehr.base);
    let a = Server::start_on_with(&db.url(), &config);
    let b = Server::start_on_with(&db.url(), &config);
    let mut ids = Vec::new();
    for i in 0..20 {
        let record = serde_json::to_value(engraft::fixtures::generate(77, i)).unwrap();
        let via = if i % 2 == 0 { &a } else { &b };
        ids.push(post_record(via, &record).await);
    }
    let status = drained(&a, Duration::from_secs(120)).await;
    assert_eq!(status["delivered"], 20, "{status}");
    assert_eq!(status["failed"], 0, "{status}");
    assert_sandbox_holds_exactly(&a, &ehr, &ids).await;
    // Both gateways delivered (each leased its share).
    let mut by_gateway = Vec::new();
    for s in [&a, &b] {
        let m = authed_client()
            .get(s.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let delivered: u64 = m
            .lines()
            .find(|l| {
                l.starts_with("engraft_sync_delivery_attempts_total")
                    && l.contains("outcome=\"delivered\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        by_gateway.push(delivered);
    }
    assert_eq!(by_gateway.iter().sum::<u64>(), 20, "{by_gateway:?}");
    assert!(
        by_gateway.iter().all(|n| *n > 0),
        "both gateways delivered: {by_gateway:?}"
    );
}

/// A destination behind SMART Backend Services: Engraft gets its token from the sandbox's
/// token endpoint (discovered from its `.well-known`) with a key made by `engraft keygen`.
#[tokio::test]
async fn a_smart_protected_destination_is_delivered_to_with_a_discovered_token() {
    let dir = tempfile::tempdir().unwrap();
    let keygen = Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args([
            "keygen",
            "--alg",
            "RS384",
            "--kid",
            "engraft-ehr-1",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let jwks = dir.path().join("engraft-ehr-1.jwks.json");
    let ehr = sandbox(
        &[
            "--client-id",
            "engraft-at-centre",
            "--client-jwks",
            jwks.to_str().unwrap(),
        ],
        None,
    );
    // Without a token the sandbox refuses.
    let res = reqwest::Client::new()
        .post(format!("{}/", ehr.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let config = format!(
        "[[destinations]]\nname = \"sandbox\"\nbase_url = \"{}\"\n[destinations.auth]\nmethod = \"smart-backend-services\"\nclient_id = \"engraft-at-centre\"\nscope = \"system/*.cruds\"\nprivate_key = {{ file = {:?} }}\nkid = \"engraft-ehr-1\"\nalg = \"RS384\"\n",
        ehr.base,
        dir.path().join("engraft-ehr-1.key.pem").display().to_string()
    );
    let s = Server::start_with(&config, &[], &[]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let record = serde_json::to_value(engraft::fixtures::generate(8, i)).unwrap();
        ids.push(post_record(&s, &record).await);
    }
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["delivered"], 3, "{status}");
    assert_sandbox_holds_exactly(&s, &ehr, &ids).await;
}

/// A destination down for a while: the circuit opens (nothing is dropped, nothing fails), and
/// when the destination is back one probe closes it and the queue drains.
#[tokio::test]
async fn a_destination_down_for_a_while_opens_the_circuit_then_drains() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = destination(&base)
        .replace("max_attempts = 30", "max_attempts = 200")
        .replace(
            "[destinations.auth]",
            "circuit_failures = 3\ncircuit_open_secs = 2\n[destinations.auth]",
        );
    let s = Server::start_with(&config, &[], &[]);
    let mut ids = Vec::new();
    for i in 0..3 {
        let record = serde_json::to_value(engraft::fixtures::generate(21, i)).unwrap();
        ids.push(post_record(&s, &record).await);
    }
    let started = Instant::now();
    loop {
        let status = get_json(&authed_client(), &s.url("/sync/status")).await;
        let d = &status["destinations"][0];
        if d["circuit"] == "open" {
            assert_eq!(d["failed"], 0, "{d}");
            assert_eq!(d["delivered"], 0, "{d}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the circuit never opened: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A dry run says what would be sent: every resource of the three records, all creates.
    let dry = authed_client()
        .post(s.url("/sync/sandbox/dry-run"))
        .send()
        .await
        .unwrap();
    assert_eq!(dry.status(), StatusCode::OK);
    let dry: Value = dry.json().await.unwrap();
    assert_eq!(dry["queued"], 3, "{dry}");
    let mut expected = 0;
    for id in &ids {
        let b = get_json(
            &authed_client(),
            &s.url(&format!("/registry/records/{id}/bundle")),
        )
        .await;
        expected += b["entry"].as_array().unwrap().len();
    }
    assert_eq!(dry["resources_to_send"], expected);
    assert!(dry["records"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["send"].as_array().unwrap())
        .all(|e| e["action"] == "create"));
    let unknown = authed_client()
        .post(s.url("/sync/nowhere/dry-run"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // The destination comes back on its address.
    let ehr = sandbox_on(port, &[], None);
    let status = drained(&s, Duration::from_secs(60)).await;
    assert_eq!(status["delivered"], 3, "{status}");
    assert_eq!(status["circuit"], "closed", "{status}");
    assert_sandbox_holds_exactly(&s, &ehr, &ids).await;
}

/// `engraft sync push|status|retry` on the store a configuration names: records accepted while
/// the destination was down (and the gateway then killed) are delivered from the command line.
#[tokio::test]
async fn the_cli_drains_the_queue_a_dead_gateway_left() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("engraft.db").display());
    let dest = destination(&base).replace("timeout_secs = 5", "timeout_secs = 1");
    let mut s = Server::start_on_with(&url, &dest);
    let mut ids = Vec::new();
    for i in 0..3 {
        let record = serde_json::to_value(engraft::fixtures::generate(41, i)).unwrap();
        ids.push(post_record(&s, &record).await);
    }
    let _ = Command::new("kill")
        .args(["-KILL", &s.child.id().to_string()])
        .status();
    let _ = s.child.wait();
    let ehr = sandbox_on(port, &[], None);

    let config = dir.path().join("engraft.toml");
    std::fs::write(&config, format!("[store]\nurl = {url:?}\n{dest}")).unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_engraft"))
            .args(["sync"])
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let push = cli(&["push"]);
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    assert!(String::from_utf8_lossy(&push.stdout).contains("queue drained: 3 delivered"));
    let status = cli(&["status"]);
    let text = String::from_utf8(status.stdout).unwrap();
    let row = text.lines().find(|l| l.starts_with("sandbox")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[1..6], ["0", "0", "3", "0", "0"], "{text}");
    let retry = cli(&["retry", "--id", "12345"]);
    assert_eq!(retry.status.code(), Some(1), "no such failed delivery");

    // The sandbox holds exactly those records (checked through a server on the same store).
    s = Server::start_on_with(&url, "");
    assert_sandbox_holds_exactly(&s, &ehr, &ids).await;
}

/// The ledger: a record's second version sends only the resources that changed (references to
/// the unchanged ones point at the destination's ids); nothing else is written there again.
#[tokio::test]
async fn a_new_version_sends_only_what_changed() {
    let ehr = sandbox(&[], None);
    let s = Server::start_with(&destination(&ehr.base), &[], &[]);
    let v1: Value = serde_json::from_str(&crate::server::record_text()).unwrap();
    let id = post_record(&s, &v1).await;
    drained(&s, Duration::from_secs(30)).await;
    let bundle_url = s.url(&format!("/registry/records/{id}/bundle"));
    let b1 = get_json(&authed_client(), &bundle_url).await;
    let stats = |base: String| async move {
        get_json(&reqwest::Client::new(), &format!("{base}/_sandbox/stats")).await
    };
    let before = stats(ehr.base.clone()).await;

    let mut v2 = v1.clone();
    v2["version"] = json!(v1["version"].as_u64().unwrap_or(1) + 1);
    let fu = v2["followUps"].as_array_mut().unwrap();
    let last = fu.len() - 1;
    fu[last]["scores"][0]["value"] = json!(4.0);
    let res = authed_client()
        .put(s.url(&format!("/registry/records/{id}")))
        .header("content-type", "application/json")
        .header("if-match", "W/\"1\"")
        .body(v2.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let status = drained(&s, Duration::from_secs(30)).await;
    assert_eq!(status["delivered"], 2, "{status}");
    let b2 = get_json(&authed_client(), &bundle_url).await;
    let old: std::collections::HashMap<&str, &Value> = b1["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["fullUrl"].as_str().unwrap(), &e["resource"]))
        .collect();
    let changed = b2["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| old.get(e["fullUrl"].as_str().unwrap()) != Some(&&e["resource"]))
        .count();
    assert!((1..10).contains(&changed), "{changed}");
    let after = stats(ehr.base.clone()).await;
    let written = |v: &Value| v["versions_written"].as_u64().unwrap();
    assert_eq!(
        written(&after) - written(&before),
        changed as u64,
        "only the changed resources were written again"
    );
    // The changed resources still reference the destination's Patient.
    let held: Vec<Value> = serde_json::from_value(
        get_json(
            &reqwest::Client::new(),
            &format!("{}/_sandbox/resources", ehr.base),
        )
        .await,
    )
    .unwrap();
    let patient = held
        .iter()
        .find(|r| r["resourceType"] == "Patient")
        .unwrap();
    let pref = format!("Patient/{}", patient["id"].as_str().unwrap());
    assert!(held
        .iter()
        .filter(|r| r["resourceType"] == "Observation")
        .all(|r| r["subject"]["reference"] == pref));
}
