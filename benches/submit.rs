//! Registry submission throughput and gateway CPU per submitted resource, against the registry
//! sandbox (another process, `sandbox-ehr --registry`) with 10 ms added latency, the password
//! grant, and the destination's default concurrency (4). The store is filled first; then
//! every record is submitted (CRID registration, registry Patient, 50-entry transactions) and
//! the process CPU time spent meanwhile is divided by the resources accepted. Then everything
//! is submitted again: nothing may be sent. Run with `cargo bench --bench submit`
//! (RECORDS=500 by default).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use engraft::config::DestinationConfig;
use engraft::store::{Prepared, SqlStore};
use engraft::sync::remote::Destination;
use engraft::sync::submit;

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: then a short smoke run.
    let measuring = std::env::args().any(|a| a == "--bench");
    let records: u64 = std::env::var("RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 500 } else { 3 });
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args([
            "sandbox-ehr",
            "--registry",
            "--port",
            "0",
            "--latency-ms",
            "10",
        ])
        .args([
            "--basic-client",
            "bench:bench-secret",
            "--user",
            "centre:centre-password",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sandbox.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("sandbox-registry listening on ")
        .unwrap()
        .to_string();
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("client"), "bench-secret").unwrap();
    std::fs::write(secrets.path().join("password"), "centre-password").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = SqlStore::open(&url).await.unwrap();
        let all: Vec<Prepared> = (0..records).map(|i| common::prepared(7, i, true)).collect();
        for chunk in all.chunks(50) {
            store.create_many(chunk.to_vec(), "bench").await.unwrap();
        }
        let ids: Vec<String> = all.iter().map(|p| p.id.clone()).collect();
        let config: DestinationConfig = toml::from_str(&format!(
            r#"name = "cibmtr"
kind = "registry"
base_url = "{base}"
registry = {{ ccn = "12345" }}
auth = {{ method = "password", client_id = "bench", token_url = "{base}/oauth2/v1/token", scope = "openid", client_secret = {{ file = {client:?} }}, username = "centre", password = {{ file = {password:?} }} }}
"#,
            client = secrets.path().join("client").display().to_string(),
            password = secrets.path().join("password").display().to_string(),
        ))
        .unwrap();
        let dest = Destination::from_config(&config).unwrap();
        for round in ["first submission", "resubmission"] {
            let (cpu0, t0) = (common::cpu(), Instant::now());
            let results = submit::submit(&store, &dest, &ids, false, "bench").await;
            let (elapsed, spent) = (t0.elapsed(), common::cpu() - cpu0);
            let summary = submit::summary("cibmtr", false, &results);
            let accepted = summary["accepted"].as_u64().unwrap();
            let per = if accepted > 0 {
                format!("{:.0} µs", spent.as_secs_f64() * 1e6 / accepted as f64)
            } else {
                "n/a".into()
            };
            println!(
                "registry {round}: {records} records, {accepted} resources accepted, {} rejected, totals {}: {:.2} s = {:.0} resources/s ({:.1} records/s); gateway CPU {per} per resource",
                summary["rejected"],
                summary["totals"],
                elapsed.as_secs_f64(),
                accepted as f64 / elapsed.as_secs_f64(),
                records as f64 / elapsed.as_secs_f64(),
            );
        }
        let stats: serde_json::Value = reqwest::get(format!("{base}/_sandbox/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        println!(
            "  registry holds {} resources; {} transactions, {} CRID requests, {} token requests",
            stats["resources_total"], stats["transactions"], stats["crid_requests"], stats["token_requests"]
        );
        assert_eq!(stats["token_requests"], 1, "the token is cached");
    });
    let _ = sandbox.kill();
    let _ = sandbox.wait();
}
