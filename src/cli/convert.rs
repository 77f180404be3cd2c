//! `engraft convert`: records in, one Bundle per record out, streamed.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::input::{expand, Format, Input};
use crate::convert::{now_instant, rejected, Converter, Outcome};
use crate::fhir;
use crate::record::{self, csv as record_csv};
use crate::terminology::Terminology;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Record files (.json, .ndjson, .csv), directories of them, or - for standard input.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Input format, when it cannot be told from the file extension.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Follow-ups CSV for a CSV input (default: X.followups.csv next to X.csv).
    #[arg(long)]
    followups: Option<PathBuf>,
    /// Write `<recordId>.json` bundles (and `.outcome.json` for rejected records) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write `<recordId>.report.json`, the mapping report (needs --out).
    #[arg(long, requires = "out")]
    report: bool,
    /// The conversion instant (Bundle.timestamp, Provenance.recorded); default now.
    #[arg(long)]
    now: Option<String>,
    /// Skip validating each Bundle (base R4, profiles, Bundle rules) before writing it.
    #[arg(long)]
    no_validate: bool,
    /// Write compact JSON.
    #[arg(long)]
    compact: bool,
}

struct Sink {
    out: Option<PathBuf>,
    report: bool,
    stdout: BufWriter<std::io::Stdout>,
    converted: u64,
    rejected: u64,
    unnamed: u64,
}

fn safe_name(id: Option<&str>) -> Option<&str> {
    id.filter(|s| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !s.starts_with('.')
    })
}

impl Sink {
    fn emit(&mut self, label: &str, outcome: Outcome) -> anyhow::Result<()> {
        match outcome {
            Outcome::Converted(c) => {
                self.converted += 1;
                match self.out.clone() {
                    Some(dir) => {
                        let name = safe_name(Some(&c.record_id))
                            .map(str::to_string)
                            .unwrap_or_else(|| self.next_unnamed());
                        std::fs::write(dir.join(format!("{name}.json")), &c.bundle)
                            .with_context(|| format!("cannot write to {}", dir.display()))?;
                        if self.report {
                            let text = serde_json::to_vec_pretty(&c.report)?;
                            std::fs::write(dir.join(format!("{name}.report.json")), text)?;
                        }
                    }
                    None => {
                        // In NDJSON mode the converter writes compact Bundles: one per line.
                        self.stdout.write_all(&c.bundle)?;
                        self.stdout.write_all(b"\n")?;
                    }
                }
            }
            Outcome::Rejected(r) => {
                self.rejected += 1;
                let oo = fhir::operation_outcome(&r.issues);
                let text = fhir::to_json(
                    &fhirbolt::model::r4::Resource::OperationOutcome(Box::new(oo)),
                    true,
                )
                .context("cannot serialise an OperationOutcome")?;
                match self.out.clone() {
                    Some(dir) => {
                        let name = safe_name(r.record_id.as_deref())
                            .map(str::to_string)
                            .unwrap_or_else(|| self.next_unnamed());
                        std::fs::write(dir.join(format!("{name}.outcome.json")), &text)?;
                    }
                    None => {
                        let id =
                            safe_name(r.record_id.as_deref()).unwrap_or("(no readable record id)");
                        eprintln!("{label}: record {id} rejected:");
                        let mut err = std::io::stderr().lock();
                        err.write_all(&text)?;
                        err.write_all(b"\n")?;
                    }
                }
            }
        }
        Ok(())
    }

    fn next_unnamed(&mut self) -> String {
        self.unnamed += 1;
        format!("unnamed-{}", self.unnamed)
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let (inputs, saw_dir) = expand(&a.inputs, a.format, a.followups.as_deref())?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let now = a.now.clone().unwrap_or_else(now_instant);
    if !now_is_instant(&now) {
        anyhow::bail!("--now must be a FHIR instant such as 2026-01-01T00:00:00Z");
    }
    // On standard output, one JSON record gives one pretty Bundle; anything else is NDJSON,
    // one compact Bundle per line.
    let single = inputs.len() == 1 && inputs[0].format == Format::Json && !saw_dir;
    let compact = a.compact || (!single && a.out.is_none());
    let converter = Converter {
        terminology: Terminology::bundled(),
        validate: !a.no_validate,
        pretty: !compact,
    };
    let mut sink = Sink {
        out: a.out.clone(),
        report: a.report,
        stdout: BufWriter::new(std::io::stdout()),
        converted: 0,
        rejected: 0,
        unnamed: 0,
    };
    let bar = if saw_dir {
        let b =
            ProgressBar::with_draw_target(Some(inputs.len() as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} {msg}")
                .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let scales = scale_codes();
    for input in &inputs {
        convert_input(input, &converter, &now, &mut sink, &scales)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    sink.stdout.flush()?;
    let secs = started.elapsed().as_secs_f64();
    let total = sink.converted + sink.rejected;
    eprintln!(
        "engraft convert: {} converted, {} rejected, {:.2} s ({:.0} records/s)",
        sink.converted,
        sink.rejected,
        secs,
        total as f64 / secs.max(1e-9)
    );
    Ok(if sink.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn now_is_instant(s: &str) -> bool {
    record::RecordDate::parse(s).is_ok_and(|d| d.precision() == record::date::Precision::DateTime)
}

/// Scale codes, which name follow-up columns in CSV.
pub fn scale_codes() -> Vec<String> {
    record_csv::scale_codes(Terminology::bundled())
}

fn open(input: &Input) -> anyhow::Result<Box<dyn BufRead>> {
    Ok(match &input.path {
        Some(p) => Box::new(BufReader::new(
            File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => Box::new(BufReader::new(std::io::stdin())),
    })
}

fn convert_input(
    input: &Input,
    conv: &Converter,
    now: &str,
    sink: &mut Sink,
    scales: &[String],
) -> anyhow::Result<()> {
    let label = input.label();
    match input.format {
        Format::Json => {
            let mut text = Vec::new();
            open(input)?.read_to_end(&mut text)?;
            match record::records_from_json(&text) {
                Ok(items) => {
                    // An array on standard output is NDJSON too.
                    let compact_conv;
                    let conv = if items.len() > 1 && sink.out.is_none() {
                        compact_conv = Converter {
                            pretty: false,
                            ..conv.clone()
                        };
                        &compact_conv
                    } else {
                        conv
                    };
                    for item in items {
                        let outcome = match item {
                            Ok(r) => conv.convert(r, now),
                            Err(issues) => rejected(None, &issues),
                        };
                        sink.emit(&label, outcome)?;
                    }
                }
                Err(issue) => sink.emit(&label, rejected(None, &[issue]))?,
            }
        }
        Format::Ndjson => {
            for (n, line) in open(input)?.lines().enumerate() {
                let line = line.with_context(|| format!("{label}: cannot read line {}", n + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                let outcome = match record::records_from_json(line.as_bytes()) {
                    Ok(mut items) if items.len() == 1 => match items.remove(0) {
                        Ok(r) => conv.convert(r, now),
                        Err(issues) => rejected(None, &issues),
                    },
                    Ok(_) => rejected(
                        None,
                        &[record::Issue::error(
                            record::IssueCode::Structure,
                            "",
                            format!("Line {} must hold exactly one record.", n + 1),
                        )],
                    ),
                    Err(issue) => rejected(
                        None,
                        &[record::Issue::error(
                            issue.code,
                            "",
                            format!("Line {}: {}", n + 1, issue.message),
                        )],
                    ),
                };
                sink.emit(&label, outcome)?;
            }
        }
        Format::Csv => {
            let followups = match &input.followups {
                Some(p) => Some((
                    p.display().to_string(),
                    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
                )),
                None => None,
            };
            let fu = followups.as_ref().map(|(n, b)| (n.as_str(), b.as_slice()));
            let file_name = input
                .path
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "<stdin>".into());
            match record_csv::open(&file_name, open(input)?, fu, scales) {
                Err(record_csv::FileError(issues)) => sink.emit(&label, rejected(None, &issues))?,
                Ok(reader) => {
                    for item in reader {
                        let outcome = match item {
                            Ok(cr) => {
                                let located = &cr;
                                conv.convert_located(cr.record.clone(), now, |issues| {
                                    located.locate(issues)
                                })
                            }
                            Err((id, issues)) => rejected(id, &issues),
                        };
                        sink.emit(&label, outcome)?;
                    }
                }
            }
        }
    }
    Ok(())
}
