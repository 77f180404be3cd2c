//! `engraft validate`: FHIR resources and Bundles against base R4 and Engraft's profiles.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::fhir::{self, OutcomeIssue};
use crate::validation::{has_errors, Validator};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// FHIR JSON files or directories of them.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
    /// Also validate each top-level resource against this profile (canonical URL).
    #[arg(long)]
    profile: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for p in &a.inputs {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "json"))
                .collect();
            v.sort();
            files.extend(v);
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    let validator = Validator::bundled();
    if let Some(p) = &a.profile {
        if validator.profiles.get(p).is_none() {
            anyhow::bail!("--profile {p}: not a profile in profiles/");
        }
    }
    let mut failed = 0;
    for f in &files {
        let text = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        let issues: Vec<OutcomeIssue> = match crate::json::parse(&text) {
            Ok(v) => validator.validate(&v, a.profile.as_deref()),
            Err(e) => vec![OutcomeIssue {
                severity: "error",
                code: "structure",
                detail: "json-syntax".into(),
                diagnostics: format!(
                    "Not well-formed JSON, or a repeated key (line {}, column {}).",
                    e.line(),
                    e.column()
                ),
                expression: "Resource".into(),
                location: None,
            }],
        };
        let errors = issues
            .iter()
            .filter(|i| matches!(i.severity, "error" | "fatal"))
            .count();
        if errors > 0 {
            failed += 1;
        }
        match a.format {
            OutputFormat::Text => {
                if !has_errors(&issues) {
                    println!("{}: valid", f.display());
                }
                for i in &issues {
                    println!(
                        "{}: {} [{}] {}: {}",
                        f.display(),
                        i.severity,
                        i.detail,
                        i.expression,
                        i.diagnostics
                    );
                }
            }
            OutputFormat::Json => {
                let oo = fhir::operation_outcome(&issues);
                let text = fhir::to_json(
                    &fhirbolt::model::r4::Resource::OperationOutcome(Box::new(oo)),
                    false,
                )?;
                println!("{}", String::from_utf8_lossy(&text));
            }
        }
    }
    eprintln!(
        "engraft validate: {} files, {} with errors",
        files.len(),
        failed
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
