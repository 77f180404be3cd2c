//! Push throughput and gateway CPU per delivered resource, against the sandbox EHR (another
//! process) with 10 ms added latency and no faults, default concurrency (4). The store is
//! filled first (records converted and written, deliveries queued); then the delivery worker
//! drains the queue and the process CPU time spent meanwhile is divided by the resources
//! delivered. Then the same with 20% injected faults (lost answers included), checking every
//! resource arrived once. Run with `cargo bench --bench sync` (RECORDS=1000 by default; defaults of a destination: concurrency 4, backoff from 500 ms).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engraft::config::DestinationConfig;
use engraft::store::{Prepared, SqlStore};
use engraft::sync::push::run;
use engraft::sync::remote::Destination;

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: then a short smoke run.
    let measuring = std::env::args().any(|a| a == "--bench");
    let records: u64 = std::env::var("RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 1000 } else { 5 });
    let clean = drain(records, "0");
    let faulty = drain(records, "0.2");
    println!(
        "drain time with 20% faults: {:.1}x the fault-free time",
        faulty.as_secs_f64() / clean.as_secs_f64()
    );
}

/// Fills a store, drains it to a fresh sandbox with `fault_rate`; returns the drain time.
fn drain(records: u64, fault_rate: &str) -> Duration {
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_engraft"))
        .args([
            "sandbox-ehr",
            "--port",
            "0",
            "--latency-ms",
            "10",
            "--fault-rate",
            fault_rate,
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
        .strip_prefix("sandbox-ehr listening on ")
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let elapsed = rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = SqlStore::open(&url).await.unwrap().with_destinations(vec!["sandbox".into()]);
        let all: Vec<Prepared> = (0..records).map(|i| common::prepared(5, i, false)).collect();
        let resources: usize = all.iter().map(|p| p.resources.len()).sum();
        for chunk in all.chunks(50) {
            store.create_many(chunk.to_vec(), "bench").await.unwrap();
        }
        let config: DestinationConfig = toml::from_str(&format!(
            "name = \"sandbox\"\nbase_url = \"{base}\"\nauth = {{ method = \"none\" }}\n"
        ))
        .unwrap();
        let dest = Arc::new(Destination::from_config(&config).unwrap());
        let attempts = prometheus::IntCounterVec::new(
            prometheus::Opts::new("attempts", "attempts"),
            &["destination", "outcome"],
        )
        .unwrap();
        let (_stop, stop_rx) = tokio::sync::watch::channel(false);
        let (cpu0, t0) = (common::cpu(), Instant::now());
        tokio::spawn(run(store.clone(), dest, "bench".into(), stop_rx, attempts.clone()));
        loop {
            let s = &store.sync_status().await.unwrap()[0];
            if s.queued == 0 && s.in_flight == 0 {
                assert_eq!(s.delivered as u64, records, "{s:?}");
                break;
            }
            // Often enough for the drain time, seldom enough not to count as gateway CPU.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let (elapsed, spent) = (t0.elapsed(), common::cpu() - cpu0);
        println!(
            "sync push: {records} records, {resources} resources, fault rate {fault_rate}: drained in {:.2} s = {:.0} resources/s ({:.0} records/s); gateway CPU {:.0} µs per resource; attempts retried: {}",
            elapsed.as_secs_f64(),
            resources as f64 / elapsed.as_secs_f64(),
            records as f64 / elapsed.as_secs_f64(),
            spent.as_secs_f64() * 1e6 / resources as f64,
            attempts.with_label_values(&["sandbox", "retry"]).get(),
        );
        // Exactly once: the sandbox holds as many resources as were sent, no more.
        let stats: serde_json::Value = reqwest::get(format!("{base}/_sandbox/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["resources_total"], resources, "{stats}");
        println!("  sandbox holds {resources} resources (none missing, none twice); faults injected: {}", stats["faults"]);
        elapsed
    });
    let _ = sandbox.kill();
    let _ = sandbox.wait();
    elapsed
}
