//! `engraft validate`: FHIR resources and Bundles against the base R4 definitions.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::fhir::{self, OutcomeIssue};
use crate::validation::{validate_resource, Definitions};

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
    let mut failed = 0;
    for f in &files {
        let text = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        let issues: Vec<OutcomeIssue> = match serde_json::from_slice::<serde_json::Value>(&text) {
            Ok(v) => {
                let root = v.get("resourceType").and_then(|r| r.as_str()).unwrap_or("Resource").to_string();
                validate_resource(Definitions::r4(), &v, &root)
            }
            Err(e) => vec![OutcomeIssue {
                severity: "error",
                code: "structure",
                detail: "json-syntax".into(),
                diagnostics: format!("Not well-formed JSON (line {}, column {}).", e.line(), e.column()),
                expression: "Resource".into(),
                location: None,
            }],
        };
        let errors = issues.iter().filter(|i| matches!(i.severity, "error" | "fatal")).count();
        if errors > 0 {
            failed += 1;
        }
        match a.format {
            OutputFormat::Text => {
                if issues.is_empty() {
                    println!("{}: valid", f.display());
                }
                for i in &issues {
                    println!("{}: {} [{}] {}: {}", f.display(), i.severity, i.detail, i.expression, i.diagnostics);
                }
            }
            OutputFormat::Json => {
                let oo = fhir::operation_outcome(&issues);
                let text = fhir::to_json(&fhirbolt::model::r4::Resource::OperationOutcome(Box::new(oo)), false)?;
                println!("{}", String::from_utf8_lossy(&text));
            }
        }
    }
    eprintln!("engraft validate: {} files, {} with errors", files.len(), failed);
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
