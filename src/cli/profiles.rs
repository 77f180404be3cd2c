//! `engraft profiles snapshot`: writes the snapshot of every StructureDefinition in a
//! profiles directory (see `crate::profiles::snapshot`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::profiles::snapshot::{self, BaseDefinitions};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Generate the snapshots of the StructureDefinitions in DIR against base R4 and write
    /// them into the files (differentials are put in snapshot order).
    Snapshot {
        /// The profiles directory.
        #[arg(long, default_value = "profiles")]
        dir: PathBuf,
        /// Write nothing; exit 1 if any committed snapshot is stale.
        #[arg(long)]
        check: bool,
    },
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    let Command::Snapshot { dir, check } = c;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("StructureDefinition-") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    let base = BaseDefinitions::bundled();
    let (mut stale, mut failed) = (0usize, 0usize);
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let mut sd: serde_json::Value = crate::json::parse(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        match snapshot::apply(&mut sd, base) {
            Ok(false) => {}
            Ok(true) => {
                stale += 1;
                if check {
                    println!("stale: {}", f.display());
                } else {
                    let mut out = serde_json::to_string_pretty(&sd)?;
                    out.push('\n');
                    std::fs::write(f, out).with_context(|| format!("writing {}", f.display()))?;
                    println!("wrote: {}", f.display());
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {e}", f.display());
            }
        }
    }
    eprintln!(
        "{} StructureDefinitions, {} {}, {} failed",
        files.len(),
        stale,
        if check { "stale" } else { "updated" },
        failed
    );
    Ok(if failed > 0 || (check && stale > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
