//! Crash safety: `engraft serve` killed with SIGKILL twenty times at seeded random points while
//! records are being accepted and synced, restarted each time on the same store. Afterwards:
//! every acknowledged record is there exactly once and whole (its versions, resources and
//! deliveries), every delivery is still queued or delivered (and the queue drains with every
//! resource at the EHR exactly once), and the database passes its integrity check. The same
//! while records are submitted to a registry (`submit = "auto"`): one registry Patient and one
//! CRID per record, nothing held twice. On SQLite and on PostgreSQL.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use rand::{Rng as _, SeedableRng as _};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection as _, Row as _};

use crate::server::{authed_client, Server};
use crate::store_api::Backend;
use crate::sync::{assert_sandbox_holds_exactly, destination, drained, sandbox};

const KILLS: usize = 20;

/// Posts generated records one after another until the server stops answering; the ids of
/// those acknowledged with 201. `named`: with the demographics CRID registration needs.
async fn ingest(base: String, seed: u64, from: u64, named: bool) -> Vec<String> {
    let client = authed_client();
    let mut acked = Vec::new();
    for i in from.. {
        let mut record = serde_json::to_value(engraft::fixtures::generate(seed, i)).unwrap();
        if named {
            record = crate::registry::with_demographics(record, i as usize);
        }
        let res = client
            .post(format!("{base}/registry/records"))
            .header("content-type", "application/json")
            .body(record.to_string())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match res {
            Ok(r) if r.status() == StatusCode::CREATED => {
                let v: Value = match r.json().await {
                    Ok(v) => v,
                    // Killed between the answer's head and its body: acknowledged or not,
                    // the client cannot know; not counted.
                    Err(_) => break,
                };
                acked.push(v["id"].as_str().unwrap().to_string());
            }
            Ok(r) => panic!("record {i}: {}", r.status()),
            Err(_) => break,
        }
    }
    acked
}

/// Per record: (versions, history rows, resources of its current version, outbox rows).
async fn wholeness(url: &str) -> Vec<(String, i64, i64, i64, i64, i64)> {
    let sql = "SELECT r.id, r.version, \
         (SELECT COUNT(*) FROM record_history h WHERE h.id = r.id), \
         (SELECT COUNT(*) FROM resources x WHERE x.record = r.id), \
         (SELECT COUNT(*) FROM outbox o WHERE o.record = r.id), \
         (SELECT COUNT(*) FROM audit a WHERE a.entity_id = r.id) \
         FROM records r ORDER BY r.id";
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        let ok: String = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get(0);
        assert_eq!(ok, "ok", "SQLite integrity check");
        sqlx::query(sql)
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        // PostgreSQL's own check: every index agrees with its table (amcheck is not always
        // installed; a full scan of each table through its primary key is).
        for t in ["records", "record_history", "resources", "outbox", "audit"] {
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {t}"))
                .fetch_one(&mut c)
                .await
                .unwrap()
                .get(0);
            let m: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) FROM (SELECT * FROM {t} ORDER BY 1) s"
            ))
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get(0);
            assert_eq!(n, m, "{t}");
        }
        sqlx::query(sql)
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect()
    };
    rows
}

/// Twenty rounds of: start `engraft serve` with `config` on the store at `url`, post records,
/// kill -9 it at a seeded random point. Then checks that every acknowledged record is there,
/// whole (one version, its history row, its resources, one delivery, one audit row), and
/// returns the stored record ids.
async fn twenty_kills(url: &str, config: &str, seed: u64, named: bool) -> Vec<String> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut acked: Vec<String> = Vec::new();
    let mut next = 0u64;
    for _ in 0..KILLS {
        let s = Server::start_on_with(url, config);
        let posting = tokio::spawn(ingest(s.base.clone(), seed, next, named));
        // Anywhere from the first request to well into the sync.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..1000))).await;
        let _ = Command::new("kill")
            .args(["-KILL", &s.child.id().to_string()])
            .status();
        let got = posting.await.unwrap();
        // Unacknowledged records may or may not have been committed; the next round starts
        // after them so no id is ever posted twice.
        next += got.len() as u64 + 2;
        acked.extend(got);
        drop(s);
    }
    assert!(
        acked.len() >= KILLS,
        "only {} records acknowledged",
        acked.len()
    );

    // Whole: each record's single version has its history row, its resources, one delivery
    // and one audit row.
    let rows = wholeness(url).await;
    let stored: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    for id in &acked {
        assert!(
            stored.contains(id.as_str()),
            "acknowledged record {id} is missing"
        );
    }
    for (id, version, history, resources, outbox, audit) in &rows {
        assert_eq!(
            (*version, *history, *outbox, *audit),
            (1, 1, 1, 1),
            "record {id}"
        );
        assert!(*resources > 10, "record {id} has {resources} resources");
    }
    println!(
        "{KILLS} kills: {} records acknowledged, {} stored, all whole",
        acked.len(),
        rows.len()
    );
    rows.into_iter().map(|r| r.0).collect()
}

/// Every delivery is still queued or delivered: a final run drains them all. A worker killed
/// after its writes were confirmed but before it recorded the outcome leaves a delivery that
/// finds nothing left to send: `skipped`, never sent twice.
async fn drains_all(s: &Server, records: usize) {
    let status = drained(s, Duration::from_secs(180)).await;
    let done = status["delivered"].as_u64().unwrap() + status["skipped"].as_u64().unwrap();
    if done != records as u64 || status["failed"] != 0 {
        // Say why: the failed deliveries with their reasons and the server's answers.
        let failed: Value =
            crate::helpers::get_json(&authed_client(), &s.url("/sync/failed")).await;
        panic!("{records} records, not all delivered: {status}\nfailed: {failed}");
    }
}

/// Ingest and EHR sync through 10% injected faults, killed twenty times; then the EHR holds
/// every resource exactly once.
async fn kills_during_ehr_sync(url: &str, seed: u64) {
    let ehr = sandbox(
        &["--latency-ms", "20", "--fault-rate", "0.1", "--seed", "3"],
        None,
    );
    let config = destination(&ehr.base).replace("timeout_secs = 5", "timeout_secs = 2");
    let records = twenty_kills(url, &config, seed, false).await;
    let s = Server::start_on_with(url, &config);
    drains_all(&s, records.len()).await;
    assert_sandbox_holds_exactly(&s, &ehr, &records).await;
}

/// Ingest and automatic registry submission (CRID registration, a registry Patient, 50-entry
/// transactions), killed twenty times; then the registry holds one Patient per record with a
/// distinct CRID, no resource twice, and a resubmission of everything sends nothing.
async fn kills_during_registry_submission(url: &str, seed: u64) {
    let reg = crate::registry::registry(&["--latency-ms", "20"]);
    let config = reg.destination(2).replace(
        "[destinations.registry]\n",
        "[destinations.registry]\nsubmit = \"auto\"\n",
    );
    let records = twenty_kills(url, &config, seed, true).await;
    let s = Server::start_on_with(url, &config);
    drains_all(&s, records.len()).await;

    let held = reg.held().await;
    crate::registry::assert_registry_shape(&held);
    let mut seen = BTreeSet::new();
    for key in crate::sync::keys(held.iter()) {
        assert!(seen.insert(key.clone()), "held twice: {key:?}");
    }
    let patients = held
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .count();
    assert_eq!(patients, records.len(), "one registry Patient per record");
    assert_eq!(reg.stats().await["crids"], records.len());

    let again = crate::registry::submit(&s, json!({"destination": "cibmtr", "all": true})).await;
    assert_eq!(again["totals"]["unchanged"], records.len(), "{again:#}");
    assert_eq!(again["sent"], 0, "{again:#}");
    assert_eq!(reg.held().await.len(), held.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9s_during_ingest_and_sync_lose_and_duplicate_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("engraft.db").display());
    kills_during_ehr_sync(&url, 41).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9s_during_ingest_and_sync_lose_and_duplicate_nothing_on_postgres() {
    let Some(db) = crate::store_api::postgres("twenty_kill_9s_on_postgres").await else {
        return;
    };
    let url = db.url();
    kills_during_ehr_sync(&url, 43).await;
    drop::<Backend>(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9s_during_registry_submission_lose_and_duplicate_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("engraft.db").display());
    kills_during_registry_submission(&url, 47).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9s_during_registry_submission_lose_and_duplicate_nothing_on_postgres() {
    let Some(db) = crate::store_api::postgres("twenty_kill_9s_registry_on_postgres").await else {
        return;
    };
    let url = db.url();
    kills_during_registry_submission(&url, 53).await;
    drop::<Backend>(db);
}
