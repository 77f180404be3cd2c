//! `engraft submit`: records to a registry destination now, on the store the configuration
//! names (no server needed), with a report per record. Exit codes: 0 every record delivered,
//! unchanged or planned; 1 some failed, were rejected in part or are left for a retry;
//! 2 usage, configuration or store error.

use anyhow::Context as _;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::store::SqlStore;
use crate::sync::submit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The registry destination (a `[[destinations]]` entry with `kind = "registry"`).
    #[arg(long)]
    destination: String,
    /// A record to submit, by gateway id or registry recordId (repeatable).
    #[arg(
        long = "record",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    records: Vec<String>,
    /// Every live record.
    #[arg(long)]
    all: bool,
    /// Print what would be sent and why (new / changed / unchanged per resource); send nothing.
    #[arg(long)]
    dry_run: bool,
    /// The report as JSON (the default when standard output is not a terminal).
    #[arg(long)]
    json: bool,
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let config = match super::serve::load(a.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let Some(d) = config.destinations.iter().find(|d| d.name == a.destination) else {
        eprintln!(
            "engraft submit: no destination {:?} in the configuration",
            a.destination
        );
        return Ok(ExitCode::from(2));
    };
    if d.registry.is_none() {
        eprintln!(
            "engraft submit: {:?} is not a registry destination (kind = \"registry\")",
            d.name
        );
        return Ok(ExitCode::from(2));
    }
    let dest = crate::sync::remote::Destination::from_config(d).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = SqlStore::open(&config.store.url)
            .await
            .context("store.url: the store could not be opened")?
            .with_destinations(config.queued_destinations());
        let ids = if a.all {
            store.live_records().await?
        } else {
            let mut ids = Vec::new();
            let mut unknown = Vec::new();
            for r in &a.records {
                match store.find_record(r).await? {
                    Some(id) => ids.push(id),
                    None => unknown.push(r.as_str()),
                }
            }
            if !unknown.is_empty() {
                eprintln!(
                    "engraft submit: no record (or more than one) named {}",
                    unknown.join(", ")
                );
                return Ok(ExitCode::from(2));
            }
            ids
        };
        let owner = format!(
            "cli-submit-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.set_message(format!(
            "{} {} records for {}",
            if a.dry_run { "planning" } else { "submitting" },
            ids.len(),
            dest.name
        ));
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        let results = submit::submit(&store, &dest, &ids, a.dry_run, &owner).await;
        spinner.finish_and_clear();
        if a.json || !std::io::stdout().is_terminal() {
            let summary = submit::summary(&dest.name, a.dry_run, &results);
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{}", submit::table(&results));
        }
        let clean = results
            .iter()
            .all(|r| matches!(r.outcome.as_str(), "delivered" | "unchanged" | "planned"));
        Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
