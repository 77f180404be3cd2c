//! Input discovery: files, directories and standard input.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One record or an array of records.
    Json,
    /// One record per line.
    Ndjson,
    /// Flat CSV, one row per transplant.
    Csv,
}

#[derive(Debug, Clone)]
pub struct Input {
    /// `None` for standard input.
    pub path: Option<PathBuf>,
    pub format: Format,
    /// Follow-ups CSV paired with a CSV input.
    pub followups: Option<PathBuf>,
}

impl Input {
    pub fn label(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<stdin>".into())
    }
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()? {
        "json" => Some(Format::Json),
        "ndjson" | "jsonl" => Some(Format::Ndjson),
        "csv" => Some(Format::Csv),
        _ => None,
    }
}

fn is_followups_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".followups.csv"))
}

/// The follow-ups file paired with `x.csv`: `x.followups.csv` next to it.
fn paired_followups(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_str()?;
    let p = path.with_file_name(format!("{stem}.followups.csv"));
    p.exists().then_some(p)
}

/// A file input; a CSV gets its follow-ups file (the one given, or `X.followups.csv`).
fn file_input(path: PathBuf, format: Format, followups: Option<&Path>) -> Input {
    let followups = if format == Format::Csv {
        followups
            .map(Path::to_path_buf)
            .or_else(|| paired_followups(&path))
    } else {
        None
    };
    Input {
        path: Some(path),
        format,
        followups,
    }
}

/// Expands the command-line inputs. Returns the inputs and whether a directory was given.
pub fn expand(
    args: &[String],
    forced: Option<Format>,
    followups: Option<&Path>,
) -> anyhow::Result<(Vec<Input>, bool)> {
    let mut out = Vec::new();
    let mut saw_dir = false;
    for a in args {
        if a == "-" {
            out.push(Input {
                path: None,
                format: forced.unwrap_or(Format::Json),
                followups: followups.map(Path::to_path_buf),
            });
            continue;
        }
        let p = PathBuf::from(a);
        if p.is_dir() {
            saw_dir = true;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
                .with_context(|| format!("cannot read directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && format_of(f).is_some() && !is_followups_file(f))
                .collect();
            files.sort();
            for f in files {
                let format = forced.unwrap_or_else(|| format_of(&f).expect("filtered"));
                out.push(file_input(f, format, followups));
            }
        } else if p.is_file() {
            // X.followups.csv given next to X.csv is read through X.csv.
            if is_followups_file(&p) && forced.is_none() {
                let stem = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(|n| n.trim_end_matches(".followups.csv").to_string())
                    .unwrap_or_default();
                if p.with_file_name(format!("{stem}.csv")).exists() {
                    continue;
                }
            }
            let Some(format) = forced.or_else(|| format_of(&p)) else {
                bail!(
                    "{}: unknown file type; use --format json|ndjson|csv",
                    p.display()
                );
            };
            out.push(file_input(p, format, followups));
        } else {
            bail!("{a}: no such file or directory");
        }
    }
    Ok((out, saw_dir))
}
