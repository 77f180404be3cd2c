//! `engraft sandbox-ehr`: the in-memory FHIR R4 server for trying a setup (see `crate::sandbox`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::sandbox::{Faults, Options, Rules, SandboxClient};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Share of write requests (0 to 1) answered with an injected fault.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Seed of the fault generator (the same seed gives the same faults in the same order).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// A directory of transaction Bundles (*.json) applied at start.
    #[arg(long)]
    load: Option<PathBuf>,
    /// Behave as a server without transactions: `POST /` is refused and the
    /// CapabilityStatement says so (Engraft then delivers resource by resource).
    #[arg(long)]
    no_transactions: bool,
    /// Behave as a server without conditional create and update.
    #[arg(long)]
    no_conditional: bool,
    /// Largest transaction taken, in entries (larger ones get 413).
    #[arg(long)]
    max_entries: Option<usize>,
    /// Require SMART Backend Services tokens from this client...
    #[arg(long, requires = "client_jwks")]
    client_id: Option<String>,
    /// ...whose public keys are in this JWKS file.
    #[arg(long, requires = "client_id")]
    client_jwks: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&a.fault_rate) {
        eprintln!("engraft sandbox-ehr: --fault-rate must be between 0 and 1");
        return Ok(ExitCode::from(2));
    }
    let mut load = Vec::new();
    if let Some(dir) = &a.load {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            load.push(serde_json::from_str(&std::fs::read_to_string(&f)?)?);
        }
    }
    let client = match (a.client_id, a.client_jwks) {
        (Some(client_id), Some(f)) => Some(SandboxClient {
            client_id,
            jwks: serde_json::from_str(&std::fs::read_to_string(f)?)?,
        }),
        _ => None,
    };
    let faults = Faults {
        rate: a.fault_rate,
        seed: a.seed,
        latency: Duration::from_millis(a.latency_ms),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let options = Options {
            faults,
            client,
            load,
            transactions: !a.no_transactions,
            rules: Rules {
                conditional: !a.no_conditional,
                max_entries: a.max_entries,
            },
        };
        let (server, addr) = crate::sandbox::start(&format!("127.0.0.1:{}", a.port), options)?;
        println!("sandbox-ehr listening on http://{addr}");
        server.await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
