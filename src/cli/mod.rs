//! The `engraft` command line. Library calls only; exit codes: 0 success, 1 some records
//! rejected or invalid, 2 usage or IO error.

mod convert;
mod fixtures;
mod input;
mod keygen;
mod profiles;
mod sandbox;
mod serve;
mod submit;
mod sync;
mod token;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "engraft",
    version,
    about = "FHIR R4 gateway for autoimmune HSCT registries"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Convert registry records (JSON, NDJSON or CSV) to FHIR R4 transaction Bundles.
    Convert(convert::Args),
    /// Run the gateway's HTTP server.
    Serve(serve::ServeArgs),
    /// Work with the server configuration.
    Config {
        #[command(subcommand)]
        command: serve::ConfigCommand,
    },
    /// Validate FHIR resources and Bundles against base R4 and Engraft's profiles.
    Validate(validate::Args),
    /// Make a signing key pair: a private PEM (mode 0600) and the public JWKS to register.
    Keygen(keygen::Args),
    /// The EHR delivery queue: status, retry of failures, a foreground push.
    Sync {
        #[command(subcommand)]
        command: sync::Command,
    },
    /// Submit records to a registry destination (CIBMTR style), or plan it with --dry-run.
    Submit(submit::Args),
    /// Run the sandbox EHR: an in-memory FHIR R4 server with fault injection, for testing.
    SandboxEhr(sandbox::Args),
    /// Get an access token as a SMART Backend Services client and print it.
    Token(token::Args),
    /// Print a schema.
    Schema {
        #[command(subcommand)]
        what: SchemaKind,
    },
    /// Work on the FHIR package in `profiles/`.
    Profiles {
        #[command(subcommand)]
        command: profiles::Command,
    },
    /// Synthetic registry records for tests, load and benchmarks.
    Fixtures {
        #[command(subcommand)]
        command: fixtures::Command,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaKind {
    /// The JSON Schema of the canonical registry record.
    Record,
}

/// Parses arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Convert(a) => convert::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Schema {
            what: SchemaKind::Record,
        } => {
            let schema = crate::record::record_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schema serialises")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Fixtures { command } => fixtures::run(command),
        Command::Profiles { command } => profiles::run(command),
        Command::Serve(a) => serve::run_serve(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Token(a) => token::run(a),
        Command::SandboxEhr(a) => sandbox::run(a),
        Command::Sync { command } => sync::run(command),
        Command::Submit(a) => submit::run(a),
        Command::Config { command } => serve::run_config(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("engraft: {e:#}");
            ExitCode::from(2)
        }
    }
}
