//! `engraft fixtures generate`: synthetic records for load and benchmark work.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::fixtures::generate;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write N realistic synthetic records (deterministic for a seed).
    Generate {
        #[arg(long, default_value_t = 100)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A directory (one `<recordId>.json` per record) or a `.ndjson` file.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(c: Command) -> anyhow::Result<ExitCode> {
    let Command::Generate { count, seed, out } = c;
    let ndjson = out
        .extension()
        .is_some_and(|e| e == "ndjson" || e == "jsonl");
    if ndjson {
        let f = std::fs::File::create(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let mut w = BufWriter::new(f);
        for i in 0..count {
            serde_json::to_writer(&mut w, &generate(seed, i))?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    } else {
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        for i in 0..count {
            let r = generate(seed, i);
            let text = serde_json::to_vec_pretty(&r)?;
            std::fs::write(out.join(format!("{}.json", r.record_id)), text)?;
        }
    }
    eprintln!(
        "engraft fixtures: wrote {count} records to {}",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
