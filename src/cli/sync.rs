//! `engraft sync status|retry|push|pull`: the delivery queue from the command line, on the store
//! the configuration names (no server needed).

use anyhow::Context as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::store::SqlStore;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Per destination: queued, in flight, delivered, failed, skipped, last success and error.
    Status {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Put failed deliveries back in the queue: one (--id) or all (--all).
    Retry {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        id: Option<i64>,
        #[arg(long)]
        all: bool,
    },
    /// Deliver the queue now, in the foreground, until nothing is queued or in flight; with a
    /// progress bar. Exits 1 if deliveries failed.
    Push {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Pull EHR changes for the patients Engraft knows there (one destination or all); relevant
    /// ones are queued for review (`GET /sync/reviews`). Exits 1 if a pull failed.
    Pull {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        destination: Option<String>,
    },
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    let path = match &c {
        Command::Status { config }
        | Command::Retry { config, .. }
        | Command::Push { config }
        | Command::Pull { config, .. } => config.clone(),
    };
    let config = match super::serve::load(path.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let names = config.queued_destinations();
        let store = SqlStore::open(&config.store.url)
            .await
            .context("store.url: the store could not be opened")?
            .with_destinations(names);
        match c {
            Command::Status { .. } => {
                println!(
                    "{:<24} {:>8} {:>9} {:>10} {:>7} {:>8}  last success / last error",
                    "destination", "queued", "in flight", "delivered", "failed", "skipped"
                );
                for r in store.sync_status().await? {
                    println!(
                        "{:<24} {:>8} {:>9} {:>10} {:>7} {:>8}  {} / {}",
                        r.destination,
                        r.queued,
                        r.in_flight,
                        r.delivered,
                        r.failed,
                        r.skipped,
                        r.last_success.as_deref().unwrap_or("-"),
                        r.last_error.as_deref().unwrap_or("-")
                    );
                }
                for f in store.failed_deliveries(1000).await? {
                    println!(
                        "failed #{}: {} record {} v{} after {} attempts: {} {}",
                        f.id,
                        f.destination,
                        f.record,
                        f.record_version,
                        f.attempts,
                        f.reason.as_deref().unwrap_or("-"),
                        f.error.as_deref().unwrap_or("")
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Retry { id, all, .. } => {
                let n = store.retry_failed(if all { None } else { id }).await?;
                println!("{n} deliveries back in the queue");
                Ok(if n == 0 && !all {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                })
            }
            Command::Push { .. } => push(store, &config).await,
            Command::Pull { destination, .. } => pull(store, &config, destination.as_deref()).await,
        }
    })
}

async fn pull(store: SqlStore, config: &Config, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let chosen: Vec<_> = config
        .destinations
        .iter()
        .filter(|d| only.is_none_or(|n| n == d.name))
        .collect();
    if chosen.is_empty() {
        eprintln!("engraft sync pull: no such destination in the configuration");
        return Ok(ExitCode::from(2));
    }
    let known = crate::terminology::Terminology::bundled().known_codes();
    let mut code = ExitCode::SUCCESS;
    for d in chosen {
        let dest = crate::sync::remote::Destination::from_config(d).map_err(anyhow::Error::msg)?;
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.set_message(format!("pulling {}", d.name));
        spinner.enable_steady_tick(Duration::from_millis(120));
        match crate::sync::pull::pull(&store, &dest, &known).await {
            Ok(r) => {
                spinner.finish_and_clear();
                println!(
                    "{}: {} patients, {} resources fetched, {} written by Engraft, {} not relevant, {} new for review",
                    r.destination, r.patients, r.fetched, r.ours, r.not_relevant, r.proposed
                );
            }
            Err(e) => {
                spinner.finish_and_clear();
                eprintln!("{}: pull failed: {e}", d.name);
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

async fn push(store: SqlStore, config: &Config) -> anyhow::Result<ExitCode> {
    if config.destinations.is_empty() {
        eprintln!("engraft sync push: no [[destinations]] in the configuration");
        return Ok(ExitCode::from(2));
    }
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let attempts = prometheus::IntCounterVec::new(
        prometheus::Opts::new("attempts", "delivery attempts"),
        &["destination", "outcome"],
    )?;
    let owner = format!(
        "cli-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    for d in &config.destinations {
        let dest =
            Arc::new(crate::sync::remote::Destination::from_config(d).map_err(anyhow::Error::msg)?);
        tokio::spawn(crate::sync::push::run(
            store.clone(),
            dest,
            owner.clone(),
            stop_rx.clone(),
            attempts.clone(),
        ));
    }
    let total = |rows: &[crate::store::DestinationStatus]| -> (u64, u64, u64) {
        rows.iter().fold((0, 0, 0), |(open, done, failed), r| {
            (
                open + (r.queued + r.in_flight) as u64,
                done + (r.delivered + r.skipped) as u64,
                failed + r.failed as u64,
            )
        })
    };
    let (open, done0, _) = total(&store.sync_status().await?);
    let bar = indicatif::ProgressBar::new(open);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} deliveries, {elapsed} elapsed, {msg}",
    )?);
    loop {
        let rows = store.sync_status().await?;
        let (open, done, failed) = total(&rows);
        bar.set_length(done - done0 + failed + open);
        bar.set_position(done - done0 + failed);
        bar.set_message(format!("{failed} failed"));
        if open == 0 {
            bar.finish();
            println!(
                "queue drained: {} delivered or skipped now, {failed} failed in all",
                done - done0
            );
            return Ok(if failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
