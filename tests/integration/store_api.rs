//! The registry API and the FHIR REST API over a real store, as one suite run twice: on a
//! fresh SQLite file, and on a fresh PostgreSQL database when `ENGRAFT_TEST_DATABASE_URL`
//! names a server (for example `postgres://postgres@127.0.0.1:5432/postgres`). Without it the
//! PostgreSQL runs say so and pass; `.ci/run` always sets it (and `ENGRAFT_REQUIRE_POSTGRES`).

use engraft::store::{Counts, SqlStore, Submission};
use engraft::validation::Validator;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, Row};

use crate::helpers::{fixtures, get_json, read_json};
use crate::server::{outcome, record_text, Server};

/// A backend for one run of the suite: its URL and what to drop afterwards.
pub(crate) enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres { admin: String, db: String },
}

impl Backend {
    pub(crate) fn url(&self) -> String {
        match self {
            Backend::Sqlite(d) => format!("sqlite://{}", d.path().join("engraft.db").display()),
            Backend::Postgres { admin, db } => {
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
                format!("{base}/{db}")
            }
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Postgres { admin, db } = self {
            let (admin, db) = (admin.clone(), db.clone());
            // Best effort: a fresh database per run is dropped when the run ends.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                            .execute(&mut c)
                            .await;
                    }
                })
            })
            .join();
        }
    }
}

fn sqlite() -> Backend {
    Backend::Sqlite(tempfile::tempdir().unwrap())
}

/// A fresh PostgreSQL database, or `None` (said plainly) when no server is configured.
pub(crate) async fn postgres(test: &str) -> Option<Backend> {
    let Ok(admin) = std::env::var("ENGRAFT_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("ENGRAFT_REQUIRE_POSTGRES").is_err(),
            "ENGRAFT_REQUIRE_POSTGRES is set but ENGRAFT_TEST_DATABASE_URL is not"
        );
        eprintln!("{test}: PostgreSQL run not done: set ENGRAFT_TEST_DATABASE_URL=postgres://... to run it");
        return None;
    };
    let db = format!("engraft_test_{}", uuid::Uuid::new_v4().simple());
    let mut c = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("ENGRAFT_TEST_DATABASE_URL does not connect: {e}"));
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut c)
        .await
        .unwrap();
    Some(Backend::Postgres { admin, db })
}

/// A plain connection to the test database, to look at (and age) rows directly.
async fn connect(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.unwrap()
}

async fn counts(url: &str) -> Counts {
    SqlStore::open(url).await.unwrap().counts().await.unwrap()
}

fn client() -> reqwest::Client {
    crate::server::authed_client()
}

async fn post_json(s: &Server, path: &str, body: String) -> reqwest::Response {
    client()
        .post(s.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The base fixture's next registry version, with one EDSS value changed.
fn edited_record() -> String {
    let mut r: Value = serde_json::from_str(&record_text()).unwrap();
    r["version"] = json!(r["version"].as_u64().unwrap_or(1) + 1);
    let fu = r["followUps"].as_array_mut().unwrap();
    let last = fu.len() - 1;
    let scores = fu[last]["scores"].as_array_mut().unwrap();
    scores[0]["value"] = json!(4.0);
    r.to_string()
}

async fn registry_round_trip(b: &Backend) {
    let url = b.url();
    let s = Server::start_on(&url, &[]);
    let c = client();

    let res = post_json(&s, "/registry/records", record_text()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(res.headers()["etag"], "W/\"1\"");
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/registry/records/{id}"));
    let after_create = counts(&url).await;
    assert_eq!(
        (
            after_create.records,
            after_create.outbox,
            after_create.audit
        ),
        (1, 1, 1)
    );
    assert_eq!(after_create.resources, 58);

    // Read back: the record, its bundle (valid), its report.
    let rec = c.get(s.url(&location)).send().await.unwrap();
    assert_eq!(rec.headers()["etag"], "W/\"1\"");
    assert!(rec.headers().contains_key("last-modified"));
    let rec: Value = rec.json().await.unwrap();
    assert_eq!(rec["recordId"], "ENG-0001");
    let bundle: Value = get_json(&c, &s.url(&format!("{location}/bundle"))).await;
    assert!(Validator::bundled().validate(&bundle, None).is_empty());

    // The Bundle is stored zstd-packed, not as text; a row written before packing existed
    // (text, no bytes) reads back the same.
    let mut db = connect(&url).await;
    let row = sqlx::query("SELECT bundle, bundle_zstd FROM records")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let (text, packed): (String, Vec<u8>) = (row.get(0), row.get(1));
    assert_eq!(text, "");
    let bundle_text = bundle.to_string();
    assert!(
        packed.len() * 5 < bundle_text.len(),
        "{} bytes",
        packed.len()
    );
    sqlx::query("UPDATE records SET bundle = $1, bundle_zstd = NULL")
        .bind(&bundle_text)
        .execute(&mut db)
        .await
        .unwrap();
    let legacy: Value = get_json(&c, &s.url(&format!("{location}/bundle"))).await;
    assert_eq!(legacy, bundle);
    sqlx::query("UPDATE records SET bundle = '', bundle_zstd = $1")
        .bind(&packed)
        .execute(&mut db)
        .await
        .unwrap();

    let report: Value = get_json(&c, &s.url(&format!("{location}/report"))).await;
    assert_eq!(report["mapping"]["resources"], 58);
    assert_eq!(report["validation"]["valid"], true);

    // The same record again: 409, nothing written.
    let res = post_json(&s, "/registry/records", record_text()).await;
    assert_eq!(outcome(res, StatusCode::CONFLICT).await, ["record-exists"]);
    assert_eq!(counts(&url).await, after_create);

    // Another recordId for the same patient (registry, centre, UPN): 409, nothing written.
    let mut rekeyed: Value = serde_json::from_str(&record_text()).unwrap();
    rekeyed["recordId"] = json!("ENG-0001-B");
    let res = post_json(&s, "/registry/records", rekeyed.to_string()).await;
    assert_eq!(
        outcome(res, StatusCode::CONFLICT).await,
        ["patient-held-elsewhere"]
    );
    assert_eq!(counts(&url).await, after_create);

    // PUT: If-Match required, a stale version is 412, nothing written.
    let put = |etag: Option<&str>, body: String| {
        let mut r = c
            .put(s.url(&location))
            .header("content-type", "application/json")
            .body(body);
        if let Some(e) = etag {
            r = r.header("if-match", e);
        }
        r.send()
    };
    let res = put(None, edited_record()).await.unwrap();
    assert_eq!(
        outcome(res, StatusCode::PRECONDITION_REQUIRED).await,
        ["if-match"]
    );
    let res = put(Some("W/\"7\""), edited_record()).await.unwrap();
    assert_eq!(
        outcome(res, StatusCode::PRECONDITION_FAILED).await,
        ["version-conflict"]
    );
    assert_eq!(counts(&url).await, after_create);

    // A real update: the changed Observation gets a new version and the new record version
    // a new Provenance (the first stays: it tells what version 1 was); nothing else changes.
    let res = put(Some("W/\"1\""), edited_record()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "W/\"2\"");
    let after_update = counts(&url).await;
    assert_eq!(after_update.records, 1);
    assert_eq!(after_update.record_versions, 2);
    assert_eq!(after_update.resource_versions, 58 + 2);
    assert_eq!(after_update.outbox, 2);

    // FHIR read, vread, history of the changed Observation.
    let search: Value = get_json(&c, &s.url("/fhir/Observation?code=https://engraft.dev/fhir/CodeSystem/engraft-observation|edss&_sort=-_lastUpdated&_count=1")).await;
    assert_eq!(search["type"], "searchset");
    let obs = &search["entry"][0]["resource"];
    assert_eq!(obs["meta"]["versionId"], "2");
    assert_eq!(obs["valueQuantity"]["value"], 4.0);
    let obs_id = obs["id"].as_str().unwrap();
    let read = c
        .get(s.url(&format!("/fhir/Observation/{obs_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.headers()["etag"], "W/\"2\"");
    let v1: Value = get_json(
        &c,
        &s.url(&format!("/fhir/Observation/{obs_id}/_history/1")),
    )
    .await;
    assert_eq!(v1["meta"]["versionId"], "1");
    assert_ne!(v1["valueQuantity"]["value"], 4.0);
    let hist: Value = get_json(&c, &s.url(&format!("/fhir/Observation/{obs_id}/_history"))).await;
    assert_eq!(hist["type"], "history");
    assert_eq!(hist["total"], 2);
    assert!(Validator::bundled()
        .validate(&hist, None)
        .iter()
        .all(|i| i.severity != "error"));

    // Consent withdrawn: a tombstone; record and resources answer 410.
    let del = c.delete(s.url(&location)).send().await.unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(del.headers()["etag"], "W/\"3\"");
    let res = c.get(s.url(&location)).send().await.unwrap();
    assert_eq!(outcome(res, StatusCode::GONE).await, ["deleted"]);
    let res = c
        .get(s.url(&format!("/fhir/Observation/{obs_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::GONE).await, ["deleted"]);
    let after_delete = counts(&url).await;
    assert_eq!(after_delete.outbox, 3);
    assert_eq!(after_delete.audit, 3);
    assert_eq!(after_update.resources, 59);
    assert_eq!(after_delete.resource_versions, 58 + 2 + 59);
    // The superseded versions are still there: version 2 of the Observation reads, version 3
    // is its deletion, and its history lists all three.
    let v2 = c
        .get(s.url(&format!("/fhir/Observation/{obs_id}/_history/2")))
        .send()
        .await
        .unwrap();
    assert_eq!(v2.status(), StatusCode::OK);
    let v2: Value = v2.json().await.unwrap();
    assert_eq!(v2["valueQuantity"]["value"], 4.0);
    let res = c
        .get(s.url(&format!("/fhir/Observation/{obs_id}/_history/3")))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::GONE).await, ["deleted"]);
    let hist: Value = get_json(&c, &s.url(&format!("/fhir/Observation/{obs_id}/_history"))).await;
    assert_eq!(hist["total"], 3);
    let versions: Vec<&str> = hist["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["meta"]["versionId"]
                .as_str()
                .unwrap_or("deleted")
        })
        .collect();
    assert_eq!(versions, ["deleted", "2", "1"]);
    let res = c.delete(s.url(&location)).send().await.unwrap();
    assert_eq!(outcome(res, StatusCode::GONE).await, ["deleted"]);

    // Unknown and malformed ids.
    let res = c
        .get(s.url("/registry/records/00000000-0000-4000-8000-000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::NOT_FOUND).await, ["not-found"]);
    let res = c
        .get(s.url("/registry/records/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::NOT_FOUND).await, ["not-found"]);
    let res = c
        .get(s.url("/fhir/Observation/nope/_history/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::NOT_FOUND).await, ["not-found"]);
}

async fn bad_input_changes_nothing(b: &Backend) {
    let url = b.url();
    let s = Server::start_on(&url, &[("ENGRAFT__SERVER__MAX_BATCH", "3")]);
    let c = client();
    let before = counts(&url).await;
    let bad =
        std::fs::read_to_string(fixtures("invalid").join("alive-with-death-date.json")).unwrap();
    let res = post_json(&s, "/registry/records", bad.clone()).await;
    assert_eq!(
        outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await,
        ["vital-status-conflict"]
    );
    // One bad record in an array: every issue, nothing stored.
    let batch = format!("[{}, {bad}]", record_text());
    let res = post_json(&s, "/registry/records", batch).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["issue"][0]["location"][0], "record 1");
    // Too many records.
    let many = format!("[{0},{0},{0},{0}]", record_text());
    let res = post_json(&s, "/registry/records", many).await;
    assert_eq!(
        outcome(res, StatusCode::PAYLOAD_TOO_LARGE).await,
        ["batch-too-large"]
    );
    // Wrong media type, malformed JSON, a JSON scalar.
    let res = c
        .post(s.url("/registry/records"))
        .header("content-type", "application/xml")
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await,
        ["media-type"]
    );
    let res = post_json(&s, "/registry/records", "{\"recordId\":".into()).await;
    assert_eq!(outcome(res, StatusCode::BAD_REQUEST).await, ["json"]);
    let res = post_json(&s, "/registry/records", "42".into()).await;
    assert_eq!(outcome(res, StatusCode::BAD_REQUEST).await, ["record"]);
    let res = post_json(&s, "/registry/records", "[]".into()).await;
    assert_eq!(outcome(res, StatusCode::BAD_REQUEST).await, ["empty-batch"]);
    // A CSV with a bad cell.
    let csv = std::fs::read(fixtures("invalid").join("eu-csv-bad-cells.csv")).unwrap();
    let res = c
        .post(s.url("/registry/records"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // PUT and DELETE on records that do not exist.
    let res = c
        .put(s.url("/registry/records/00000000-0000-4000-8000-000000000000"))
        .header("content-type", "application/json")
        .header("if-match", "W/\"1\"")
        .body(record_text())
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "the body's record has another id"
    );
    let res = c
        .delete(s.url("/registry/records/00000000-0000-4000-8000-000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(res, StatusCode::NOT_FOUND).await, ["not-found"]);
    assert_eq!(
        counts(&url).await,
        before,
        "a refused request wrote something"
    );

    // A batch and a CSV export are accepted whole.
    let two: Vec<Value> = (0..2)
        .map(|i| serde_json::to_value(engraft::fixtures::generate(7, i)).unwrap())
        .collect();
    let res = post_json(&s, "/registry/records", Value::Array(two).to_string()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["records"].as_array().unwrap().len(), 2);
    let csv = std::fs::read(fixtures("records").join("us-registry-export.csv")).unwrap();
    let res = c
        .post(s.url("/registry/records"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(counts(&url).await.records, 4);
}

async fn search_pages_and_includes(b: &Backend) {
    let url = b.url();
    let s = Server::start_on(&url, &[]);
    let c = client();
    let res = post_json(&s, "/registry/records", record_text()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let other = serde_json::to_value(engraft::fixtures::generate(3, 1)).unwrap();
    assert_eq!(
        post_json(&s, "/registry/records", other.to_string())
            .await
            .status(),
        201
    );
    let get = |q: String| {
        let c = c.clone();
        let u = s.url(&q);
        async move { c.get(u).send().await.unwrap() }
    };
    let patients: Value = get(
        "/fhir/Patient?identifier=https://engraft.dev/fhir/sid/upn/EBMT/CIC-204|UPN-1001".into(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(patients["total"], 1);
    let pid = patients["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let all: Value = get(format!("/fhir/Observation?patient={pid}&_count=1000"))
        .await
        .json()
        .await
        .unwrap();
    let golden = read_json(&fixtures("bundles").join("ms-rrms-auto-beam-atg.json"));
    let n_obs = golden["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .count();
    assert_eq!(all["total"], n_obs);
    // Paging: _count=7 walks every result once via next links.
    let mut seen = Vec::new();
    let mut next = Some(s.url(&format!(
        "/fhir/Observation?patient=Patient/{pid}&_count=7&_sort=_lastUpdated"
    )));
    while let Some(u) = next {
        let page: Value = c.get(u).send().await.unwrap().json().await.unwrap();
        for e in page["entry"].as_array().into_iter().flatten() {
            seen.push(e["resource"]["id"].as_str().unwrap().to_string());
        }
        next = page["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_string());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n_obs);
    // date, code, _include.
    let dated: Value = get(format!(
        "/fhir/Observation?patient={pid}&date=ge2021-01-01&date=lt2022"
    ))
    .await
    .json()
    .await
    .unwrap();
    for e in dated["entry"].as_array().unwrap() {
        let d = e["resource"]["effectiveDateTime"].as_str().unwrap();
        assert!(d.starts_with("2021"), "{d}");
    }
    assert!(dated["total"].as_i64().unwrap() > 0);
    let inc: Value = get(format!(
        "/fhir/Observation?patient={pid}&code=edss&_include=Observation:patient"
    ))
    .await
    .json()
    .await
    .unwrap();
    let modes: Vec<&str> = inc["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["search"]["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes.iter().filter(|m| **m == "include").count(), 1);
    assert!(modes.iter().filter(|m| **m == "match").count() >= 2);
    assert!(Validator::bundled()
        .validate(&inc, None)
        .iter()
        .all(|i| i.severity != "error"));
    // Every problem of a bad query at once.
    let res = get("/fhir/Observation?colour=red&date=tomorrow&_count=5000&_sort=code".into()).await;
    let codes = outcome(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        codes,
        ["search-param", "search-date", "search-count", "search-sort"]
    );
    let res = get("/fhir/Spaceship?_id=1".into()).await;
    assert_eq!(outcome(res, StatusCode::NOT_FOUND).await, ["not-found"]);
}

macro_rules! both_backends {
    ($name:ident, $scenario:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                $scenario(&super::sqlite()).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(b) = super::postgres(stringify!($name)).await {
                    $scenario(&b).await;
                }
            }
        }
    };
}

/// The token endpoint's replay cache, as two instances sharing one database see it: a jti is
/// accepted exactly once, even when both race for it; expired entries are forgotten.
async fn replay_cache_is_shared(b: &Backend) {
    use engraft::auth::authz::ReplayGuard as _;
    let url = b.url();
    let (one, two) = (
        SqlStore::open(&url).await.unwrap(),
        SqlStore::open(&url).await.unwrap(),
    );
    let later = chrono::Utc::now().timestamp() + 300;
    assert!(one.first_use("c1", "jti-a", later).await.unwrap());
    assert!(
        !two.first_use("c1", "jti-a", later).await.unwrap(),
        "a replay on the other instance"
    );
    assert!(
        two.first_use("c2", "jti-a", later).await.unwrap(),
        "jtis are per client"
    );
    let mut races = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        races.push(tokio::spawn(async move {
            store.first_use("c1", "jti-race", later).await.unwrap()
        }));
    }
    let mut won = 0;
    for r in races {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one of twenty racing uses is accepted");
    let past = chrono::Utc::now().timestamp() - 1;
    assert!(one.first_use("c1", "jti-old", past).await.unwrap());
    assert!(
        two.first_use("c1", "jti-old", later).await.unwrap(),
        "an expired entry is forgotten"
    );
}

/// A delivery lease is fenced by owner and attempt number: once it ran out and was taken
/// over (even by the same worker process, as its next attempt), the old attempt can neither
/// extend it nor record an outcome; a live attempt extends its lease as long as it runs.
async fn delivery_leases_are_fenced(b: &Backend) {
    use engraft::store::{Attempt, Prepared};
    let store = SqlStore::open(&b.url())
        .await
        .unwrap()
        .with_destinations(vec!["ehr".into()]);
    let p = Prepared {
        id: "lease-fence".into(),
        registry: "test".into(),
        record_id: "LEASE-1".into(),
        record: "{}".into(),
        bundle: r#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#.into(),
        bundle_packed: engraft::store::prepare::pack(
            r#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#,
        )
        .unwrap(),
        report: "{}".into(),
        resources: Vec::new(),
    };
    store.create(p, "test").await.unwrap();
    let first = store.lease_deliveries("ehr", "w", 4, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    let first = &first[0];
    assert!(store.extend_lease(first, "w", 1).await.unwrap());
    assert!(
        store
            .lease_deliveries("ehr", "w", 4, 60)
            .await
            .unwrap()
            .is_empty(),
        "a held lease is not handed out"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let second = store.lease_deliveries("ehr", "w", 4, 60).await.unwrap();
    assert_eq!(second.len(), 1, "a lease that ran out is taken over");
    let second = &second[0];
    assert_eq!(
        (second.seq, second.attempts),
        (first.seq, first.attempts + 1)
    );
    let delivered = Attempt::Delivered { status: 200 };
    assert!(!store.extend_lease(first, "w", 60).await.unwrap());
    assert!(!store.finish_delivery(first, "w", &delivered).await.unwrap());
    assert!(store.extend_lease(second, "w", 60).await.unwrap());
    assert!(!store
        .finish_delivery(second, "other", &delivered)
        .await
        .unwrap());
    assert!(store
        .finish_delivery(second, "w", &delivered)
        .await
        .unwrap());
    let status = store.sync_status().await.unwrap();
    assert_eq!(status[0].delivered, 1);
}

/// Concurrent creates (on SQLite: gathered into group commits) each get exactly their own
/// outcome: a request whose second record already exists fails whole, with nothing of its
/// first record written, while every other request is stored.
async fn concurrent_creates_get_their_own_outcomes(b: &Backend) {
    use engraft::store::{Prepared, StoreError};
    let store = SqlStore::open(&b.url())
        .await
        .unwrap()
        .with_destinations(vec!["ehr".into()]);
    let prepared = |n: &str| Prepared {
        id: format!("group-{n}"),
        registry: "test".into(),
        record_id: format!("GROUP-{n}"),
        record: "{}".into(),
        bundle: r#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#.into(),
        bundle_packed: engraft::store::prepare::pack(
            r#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#,
        )
        .unwrap(),
        report: "{}".into(),
        resources: Vec::new(),
    };
    store.create(prepared("held"), "test").await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (store, p) = (store.clone(), prepared(&i.to_string()));
        tasks.spawn(async move { (i, store.create_many(vec![p], "test").await) });
    }
    let (s2, pair) = (store.clone(), vec![prepared("pair-new"), prepared("held")]);
    tasks.spawn(async move { (-1, s2.create_many(pair, "test").await) });
    let mut stored = 0;
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            (-1, Err(StoreError::Exists(id))) => assert_eq!(id, "group-held"),
            (-1, other) => panic!("the pair must fail whole: {other:?}"),
            (_, Ok(w)) => {
                assert_eq!(w.len(), 1);
                stored += 1;
            }
            (i, Err(e)) => panic!("request {i} failed: {e}"),
        }
    }
    assert_eq!(stored, 40);
    assert!(matches!(
        store.record("group-pair-new").await,
        Err(StoreError::NotFound)
    ));
    let c = store.counts().await.unwrap();
    assert_eq!(
        (c.records, c.record_versions, c.outbox, c.audit),
        (41, 41, 41, 41)
    );
}

/// Accepting a review item writes the record's next version, the decision and the ledger
/// link in one transaction; a stale record version or an item decided meanwhile writes none
/// of them.
async fn review_decisions_are_one_transaction(b: &Backend) {
    use engraft::store::{Decision, NewReview, Prepared, StoreError};
    use engraft::sync::ledger::Held;
    let store = SqlStore::open(&b.url())
        .await
        .unwrap()
        .with_destinations(vec!["ehr".into()]);
    let prepared = |record: &str| Prepared {
        id: "reviewed".into(),
        registry: "test".into(),
        record_id: "REVIEWED-1".into(),
        record: record.into(),
        bundle: r#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#.into(),
        bundle_packed: engraft::store::prepare::pack(
            r#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#,
        )
        .unwrap(),
        report: "{}".into(),
        resources: Vec::new(),
    };
    store.create(prepared("{}"), "test").await.unwrap();
    let item = |n: u32| NewReview {
        destination: "ehr".into(),
        record: "reviewed".into(),
        remote: format!("Observation/ehr-{n}"),
        remote_version: "1".into(),
        resource_type: "Observation".into(),
        code: "http://loinc.org|751-8".into(),
        display: None,
        resource: "{}".into(),
    };
    assert_eq!(
        store
            .queue_reviews("ehr", "Observation", &[item(1), item(2)], &[])
            .await
            .unwrap(),
        2
    );
    let ids: Vec<i64> = store
        .reviews(Some("proposed"), 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    let link = (
        ("Observation".to_string(), "local-1".to_string()),
        Held {
            remote: "Observation/ehr-1".into(),
            version: Some("1".into()),
            hash: "h".into(),
            matched: true,
        },
    );
    let patch = r#"[{"op":"add","path":"/x","value":1}]"#;
    // A stale record version: nothing is written, the item stays proposed.
    let stale = store
        .apply_review(
            ids[0],
            "reviewed",
            7,
            &prepared(r#"{"v":2}"#),
            patch,
            Some(("ehr", &link)),
            "dm",
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current: 1 })),
        "{stale:?}"
    );
    assert_eq!(store.reviews(Some("proposed"), 10).await.unwrap().len(), 2);
    assert!(store.ledger("ehr", "reviewed").await.unwrap().is_empty());
    let r = store
        .apply_review(
            ids[0],
            "reviewed",
            1,
            &prepared(r#"{"v":2}"#),
            patch,
            Some(("ehr", &link)),
            "dm",
        )
        .await
        .unwrap();
    assert_eq!(
        (
            r.status.as_str(),
            r.outcome.as_deref(),
            r.record_version,
            r.decided_by.as_deref()
        ),
        ("accepted", Some("applied"), Some(2), Some("dm"))
    );
    assert_eq!(r.patch.unwrap()[0]["path"], "/x");
    assert_eq!(store.record("reviewed").await.unwrap().version, 2);
    let ledger = store.ledger("ehr", "reviewed").await.unwrap();
    assert!(ledger[&link.0].matched);
    // Decided once: a second acceptance writes nothing.
    let again = store
        .apply_review(
            ids[0],
            "reviewed",
            2,
            &prepared(r#"{"v":3}"#),
            patch,
            None,
            "dm",
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Exists(ref s)) if s == "accepted"),
        "{again:?}"
    );
    assert_eq!(store.record("reviewed").await.unwrap().version, 2);
    let manual = Decision {
        status: "accepted",
        outcome: Some("manual"),
        actor: "dm",
    };
    let r = store.decide_review(ids[1], manual).await.unwrap();
    assert_eq!(
        (r.outcome.as_deref(), r.record_version),
        (Some("manual"), None)
    );
}

both_backends!(delivery_leases_are_fenced_on, delivery_leases_are_fenced);
both_backends!(review_decisions_on, review_decisions_are_one_transaction);
both_backends!(
    concurrent_creates_on,
    concurrent_creates_get_their_own_outcomes
);
both_backends!(replay_cache_is_shared_on, replay_cache_is_shared);
both_backends!(registry_round_trip_on, registry_round_trip);
both_backends!(bad_input_changes_nothing_on, bad_input_changes_nothing);
both_backends!(search_pages_and_includes_on, search_pages_and_includes);
both_backends!(
    stopped_submissions_on,
    stopped_submissions_are_taken_over_once
);

/// A running submission whose heartbeat stopped is found and taken over by exactly one of two
/// racing processes; one still beating, or finished, never is.
async fn stopped_submissions_are_taken_over_once(b: &Backend) {
    let url = b.url();
    let (one, two) = (
        SqlStore::open(&url).await.unwrap(),
        SqlStore::open(&url).await.unwrap(),
    );
    let submission = |id: &str| Submission {
        id: id.into(),
        destination: "cibmtr".into(),
        dry_run: false,
        status: "running".into(),
        records: vec!["r1".into(), "r2".into()],
        report: None,
        created_by: "test".into(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        finished_at: None,
    };
    for id in ["alive", "stopped", "finished"] {
        one.create_submission(&submission(id)).await.unwrap();
    }
    one.finish_submission("finished", &json!({"records": []}))
        .await
        .unwrap();
    // The processes of "stopped" and "finished" last marked them alive long ago.
    let mut db = connect(&url).await;
    sqlx::query("UPDATE registry_submissions SET heartbeat_at = $1 WHERE id <> 'alive'")
        .bind("2000-01-01T00:00:00.000Z")
        .execute(&mut db)
        .await
        .unwrap();
    let before = chrono::Utc::now() - chrono::Duration::seconds(30);
    let found = one.stopped_submissions(before).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "stopped");
    assert_eq!(found[0].records, ["r1", "r2"]);

    let (a, b) = tokio::join!(
        one.claim_submission("stopped", before),
        two.claim_submission("stopped", before)
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one process takes it over");
    assert!(one.stopped_submissions(before).await.unwrap().is_empty());
    assert!(!one.claim_submission("finished", before).await.unwrap());
    assert!(!one.claim_submission("alive", before).await.unwrap());
    // A beat keeps it alive; a submission stored before heartbeats existed counts as stopped.
    one.beat_submission("stopped").await.unwrap();
    sqlx::query("UPDATE registry_submissions SET heartbeat_at = NULL WHERE id = 'alive'")
        .execute(&mut db)
        .await
        .unwrap();
    let found = one.stopped_submissions(before).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "alive");
}

/// Two `engraft serve` processes on one PostgreSQL database under concurrent writes: every
/// record stored once, one outbox row each, and leases that never overlap.
#[tokio::test]
async fn two_servers_share_one_postgres_database() {
    let Some(b) = postgres("two_servers_share_one_postgres_database").await else {
        return;
    };
    let url = b.url();
    let s1 = Server::start_on(&url, &[]);
    let s2 = Server::start_on(&url, &[]);
    let records: Vec<String> = (0..24)
        .map(|i| {
            serde_json::to_value(engraft::fixtures::generate(11, i))
                .unwrap()
                .to_string()
        })
        .collect();
    // Every record is sent to both servers at once.
    let mut tasks = Vec::new();
    for r in &records {
        for s in [&s1, &s2] {
            let (c, u, body) = (client(), s.url("/registry/records"), r.clone());
            tasks.push(tokio::spawn(async move {
                c.post(u)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, records.len(), "each record created exactly once");
    let c = counts(&url).await;
    assert_eq!(
        (c.records, c.record_versions, c.outbox, c.audit),
        (24, 24, 24, 24)
    );

    // Two workers lease concurrently: disjoint, and together everything.
    let (a, b2) = (
        SqlStore::open(&url).await.unwrap(),
        SqlStore::open(&url).await.unwrap(),
    );
    let (la, lb) = tokio::join!(
        a.lease_outbox("worker-a", 15, 60),
        b2.lease_outbox("worker-b", 15, 60)
    );
    let (la, lb) = (la.unwrap(), lb.unwrap());
    let mut seqs: Vec<i64> = la.iter().chain(lb.iter()).map(|r| r.seq).collect();
    let n = seqs.len();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a row was leased twice");
    assert_eq!(n, 24);
    assert!(a.complete_outbox(la[0].seq, "worker-a").await.unwrap());
    assert!(
        !a.complete_outbox(lb[0].seq, "worker-a").await.unwrap(),
        "only the owner completes"
    );
}

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let join = if url.contains('?') { '&' } else { '?' };
    format!("{url}{join}{params}")
}

/// The server's view of the connections named `application_name`: how many there are, and how
/// many of them are encrypted (`pg_stat_ssl`).
async fn connections_of(admin: &mut sqlx::AnyConnection, application_name: &str) -> (i64, i64) {
    let row = sqlx::query(
        "SELECT count(*)::bigint, (count(*) FILTER (WHERE s.ssl))::bigint \
         FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
         WHERE a.application_name = $1",
    )
    .bind(application_name)
    .fetch_one(&mut *admin)
    .await
    .unwrap();
    (row.get(0), row.get(1))
}

/// A `postgres://` URL that asks for TLS gets it (managed PostgreSQL services require it).
/// Against the machine's PostgreSQL, whose certificate (Debian's, in `ssl_cert_file`) is
/// issued for `localhost`:
/// - `sslmode=require`: every connection of the store is encrypted, as the server sees it;
/// - `sslmode=disable`: none is (so the check above tells the two apart);
/// - `sslmode=verify-full` with that certificate as `sslrootcert`: a whole `engraft serve`
///   round trip over verified TLS;
/// - the same for `127.0.0.1`, a name the certificate does not hold: refused, and the error
///   says why.
#[tokio::test]
async fn postgres_connections_use_tls_as_the_url_asks() {
    let Some(b) = postgres("postgres_connections_use_tls_as_the_url_asks").await else {
        return;
    };
    let url = b.url();
    let mut admin = connect(&url).await;
    let ssl: String = sqlx::query("SHOW ssl")
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        ssl, "on",
        "the test PostgreSQL has TLS off (Debian's default is on, with its snakeoil certificate)"
    );
    let cert: String = sqlx::query("SHOW ssl_cert_file")
        .fetch_one(&mut admin)
        .await
        .unwrap()
        .get(0);

    // A store opened with `sslmode`, kept open while its connections are looked at.
    let mut open_with = async |sslmode: &str| {
        let name = format!("engraft_{}", sslmode.replace('-', "_"));
        let params = format!("sslmode={sslmode}&application_name={name}");
        let store = SqlStore::open(&with_params(&url, &params)).await.unwrap();
        store.ping().await.unwrap();
        let (all, encrypted) = connections_of(&mut admin, &name).await;
        assert!(all >= 1, "the store holds no connection");
        (store, all, encrypted)
    };
    let (_tls, all, encrypted) = open_with("require").await;
    assert_eq!(encrypted, all, "a connection of the store is not encrypted");
    let (_plain, _, encrypted) = open_with("disable").await;
    assert_eq!(encrypted, 0, "sslmode=disable encrypted a connection");

    // Verified TLS end to end: the server's certificate is the trusted root, the host the
    // name it was issued for.
    let mut verified = reqwest::Url::parse(&url).unwrap();
    verified.set_host(Some("localhost")).unwrap();
    let verified = with_params(
        verified.as_str(),
        &format!("sslmode=verify-full&sslrootcert={cert}&application_name=engraft_serve_tls"),
    );
    let s = Server::start_on(&verified, &[]);
    let res = post_json(&s, "/registry/records", record_text()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (all, encrypted) = connections_of(&mut admin, "engraft_serve_tls").await;
    assert!(all >= 1, "the server holds no connection");
    assert_eq!(encrypted, all);
    assert_eq!(counts(&url).await.records, 1);
    drop(s);

    let wrong_name = with_params(&url, &format!("sslmode=verify-full&sslrootcert={cert}"));
    let err = SqlStore::open(&wrong_name)
        .await
        .expect_err("a certificate not issued for 127.0.0.1 is refused")
        .to_string();
    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(err.contains("not valid for name"), "{err}");
}
