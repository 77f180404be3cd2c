//! `engraft serve` and `engraft config check`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see engraft.example.toml); defaults apply without one.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log format, overriding the configuration: text or json.
    #[arg(long, value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// Turn authentication off, for local experiments with synthetic data only: binds to
    /// loopback only and logs a warning at start and on every request.
    #[arg(long)]
    insecure_dev_no_auth: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Load a configuration (file, then ENGRAFT__* variables) and say what is wrong with it;
    /// print the effective configuration when nothing is.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// The configuration (file, then `ENGRAFT__*` variables), or exit code 2 with every problem
/// printed.
pub(super) fn load(path: Option<&PathBuf>) -> Result<Config, ExitCode> {
    Config::load(path.map(PathBuf::as_path), std::env::vars()).map_err(|errors| {
        for e in &errors {
            eprintln!("config error: {e}");
        }
        ExitCode::from(2)
    })
}

pub fn run_serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = match load(a.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Some(f) = a.log_format {
        config.log.format = f;
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (server, addr) = crate::server::start(&config, a.insecure_dev_no_auth).await?;
        // One line on stdout for scripts and tests that bind port 0.
        println!("engraft listening on http://{addr}");
        tracing::info!(%addr, "listening");
        server.await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_config(c: ConfigCommand) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Check { config } = c;
    match load(config.as_ref()) {
        Ok(c) => {
            print!("{}", toml::to_string_pretty(&c)?);
            eprintln!("configuration ok");
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => Ok(ExitCode::from(1)),
    }
}
