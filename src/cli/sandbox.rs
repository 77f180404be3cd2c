//! `engraft sandbox-ehr`: the in-memory FHIR R4 server for trying a setup (see `crate::sandbox`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::sandbox::registry::{Credentials, RegistryOptions};
use crate::sandbox::{Fault, Faults, Options, Rules, SandboxClient};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Share of write requests (0 to 1) answered with an injected fault.
    #[arg(long, default_value_t = 0.0, conflicts_with = "registry")]
    fault_rate: f64,
    /// The kinds of fault injected, comma-separated (default: all of them, evenly).
    #[arg(long, value_delimiter = ',', conflicts_with = "registry")]
    faults: Vec<Fault>,
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
    /// Behave as an outcome registry in the shape of the CIBMTR Direct FHIR API instead of
    /// an EHR: `PUT /CRID`, FHIR under `/r4`, no conditional operations, 50 entries per
    /// transaction (or --max-entries), entries answered one by one, centre tags required.
    #[arg(long)]
    registry: bool,
    /// Registry mode: refuse resources with this code (any system), entry by entry
    /// (repeatable); `POST /_sandbox/reject` changes the list at run time.
    #[arg(long = "reject-code", requires = "registry")]
    reject_codes: Vec<String>,
    /// Registry mode: require password-grant tokens from `POST /oauth2/v1/token`, for this
    /// client (`CLIENT_ID:CLIENT_SECRET`, HTTP Basic)...
    #[arg(long, requires_all = ["registry", "user"])]
    basic_client: Option<String>,
    /// ...and this resource owner (`USERNAME:PASSWORD`).
    #[arg(long, requires = "basic_client")]
    user: Option<String>,
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
    if a.registry {
        return registry(a);
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
        kinds: a.faults,
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

fn registry(a: Args) -> anyhow::Result<ExitCode> {
    let pair = |s: &str| {
        s.split_once(':')
            .map(|(x, y)| (x.to_string(), y.to_string()))
    };
    let credentials = match (a.basic_client.as_deref(), a.user.as_deref()) {
        (Some(c), Some(u)) => match (pair(c), pair(u)) {
            (Some((client_id, client_secret)), Some((username, password))) => Some(Credentials {
                client_id,
                client_secret,
                username,
                password,
            }),
            _ => {
                eprintln!("engraft sandbox-ehr: --basic-client and --user take ID:SECRET and NAME:PASSWORD");
                return Ok(ExitCode::from(2));
            }
        },
        _ => None,
    };
    let options = RegistryOptions {
        max_entries: a.max_entries.unwrap_or(50),
        reject_codes: a.reject_codes,
        credentials,
        latency: Duration::from_millis(a.latency_ms),
        ..RegistryOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (server, addr) =
            crate::sandbox::registry::start(&format!("127.0.0.1:{}", a.port), options)?;
        println!("sandbox-registry listening on http://{addr}");
        server.await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
