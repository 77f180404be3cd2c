//! Flat CSV import: the shape registry spreadsheets come in.
//!
//! The records file has one row per transplant; rows of one record are consecutive and share
//! the patient columns (taken from the record's first row). Follow-ups come either as repeated
//! columns `fu1_time_point`, `fu1_date`, `fu1_<scale>`, `fu1_response`... in the records file,
//! or as rows of a second file (`record_id`, `transplant_number`, `time_point`, `date`,
//! `response`, `relapse_date`, `progression_date` and one column per scale code). A file
//! delimited by `;` is read with decimal commas and `.` thousands separators (EU exports,
//! edge case 21); a `,`-delimited file with `.` decimals and `,` thousands separators.
//!
//! Compact cells: drugs `drug dose unit start[..end]`, complications
//! `kind[:grade] onset[..resolved]`, apheresis dates `date|date`, several items joined by `|`.

use std::collections::HashMap;
use std::io::Read;

use super::date::RecordDate;
use super::issue::{CsvCell, Issue, IssueCode as C};
use super::model::*;

/// Columns of the records file.
const RECORD_COLUMNS: &[&str] = &[
    "record_id",
    "version",
    "registry",
    "centre_code",
    "centre_name",
    "upn",
    "crid",
    "mrn_system",
    "mrn",
    "sex",
    "birth_date",
    "consent_status",
    "consent_date",
    "consent_withdrawn_date",
    "disease",
    "subtype",
    "onset_date",
    "diagnosis_date",
    "dx_code_system",
    "dx_code_version",
    "dx_code",
    "baseline_date",
    "performance_scale",
    "performance_value",
    "hct_ci",
    "weight",
    "weight_unit",
    "height",
    "height_unit",
    "transplant_number",
    "donor_type",
    "stem_cell_source",
    "hla_match",
    "mobilisation_start",
    "mobilisation_regimen",
    "mobilisation_drugs",
    "apheresis_dates",
    "graft_manipulation",
    "cryopreserved",
    "cd34_dose",
    "cd34_dose_unit",
    "tnc_dose",
    "tnc_dose_unit",
    "conditioning_regimen",
    "conditioning_intensity",
    "conditioning_start",
    "conditioning_end",
    "conditioning_drugs",
    "tbi_dose_gy",
    "tbi_fractions",
    "tbi_start",
    "tbi_end",
    "infusion_date",
    "infusion_end_date",
    "neutrophil_status",
    "neutrophil_date",
    "platelet_status",
    "platelet_date",
    "complications",
    "vital_status",
    "last_contact_date",
    "death_date",
    "cause_of_death",
];

const REQUIRED: &[&str] = &[
    "record_id",
    "registry",
    "centre_code",
    "upn",
    "sex",
    "birth_date",
    "consent_status",
    "disease",
    "diagnosis_date",
    "transplant_number",
    "donor_type",
    "stem_cell_source",
    "infusion_date",
    "vital_status",
    "last_contact_date",
];

const FOLLOWUP_FIELDS: &[&str] = &[
    "time_point",
    "date",
    "response",
    "relapse_date",
    "progression_date",
];

/// The disease score codes a CSV may carry as `<code>` columns (sorted).
pub fn scale_codes(term: &crate::terminology::Terminology) -> Vec<String> {
    let mut v: Vec<String> = term
        .code_system(&crate::terminology::cs("engraft-scale"))
        .map(|c| c.concepts.keys().cloned().collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A record read from CSV, with the cell each record field came from.
#[derive(Debug)]
pub struct CsvRecord {
    pub record: Record,
    cells: Vec<(String, CsvCell)>,
}

impl CsvRecord {
    /// Adds the CSV cell to every issue whose pointer lies in a field read from CSV.
    pub fn locate(&self, issues: &mut [Issue]) {
        for issue in issues {
            let best = self
                .cells
                .iter()
                .filter(|(p, _)| {
                    issue.location.pointer == *p
                        || issue.location.pointer.starts_with(&format!("{p}/"))
                })
                .max_by_key(|(p, _)| p.len());
            if let Some((_, cell)) = best {
                issue.location.csv = Some(cell.clone());
            }
        }
    }
}

/// The byte stream a [`CsvReader`] reads: the sniffed first line, then the rest.
pub type CsvSource<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, R>;

/// A CSV file's rows, grouped into records as they stream by.
pub struct CsvReader<R: Read> {
    file: String,
    rows: csv::StringRecordsIntoIter<R>,
    header: Vec<String>,
    col: HashMap<String, usize>,
    decimal_comma: bool,
    pending: Option<(u64, csv::StringRecord)>,
    followups: FollowupRows,
    followup_file: String,
    scales: Vec<String>,
}

/// Problems that stop a whole file.
#[derive(Debug)]
pub struct FileError(pub Vec<Issue>);

fn sniff_delimiter(first_line: &str) -> u8 {
    if first_line.matches(';').count() > first_line.matches(',').count() {
        b';'
    } else {
        b','
    }
}

fn file_issue(code: C, file: &str, line: u64, column: &str, msg: impl Into<String>) -> Issue {
    let mut i = Issue::error(code, "", msg);
    i.location.csv = Some(CsvCell {
        file: file.into(),
        line,
        column: column.into(),
    });
    i
}

/// Opens a records CSV (`text` is the whole file's bytes or a reader over them).
/// Opens a records CSV. `input` streams: only the first line is read ahead, to tell the
/// delimiter (and with it the decimal convention). `followups` is the optional second file.
pub fn open<R: std::io::BufRead>(
    file: &str,
    mut input: R,
    followups: Option<(&str, &[u8])>,
    scales: &[String],
) -> Result<CsvReader<CsvSource<R>>, FileError> {
    let mut first = Vec::new();
    input.read_until(b'\n', &mut first).map_err(|_| {
        FileError(vec![file_issue(
            C::CsvSyntax,
            file,
            1,
            "",
            "The file could not be read.",
        )])
    })?;
    let delim = sniff_delimiter(&String::from_utf8_lossy(&first));
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(std::io::Cursor::new(first).chain(input));
    let header = read_header(&mut rdr, file)?;
    let mut problems = Vec::new();
    for h in &header {
        if !RECORD_COLUMNS.contains(&h.as_str()) && !is_followup_column(h, scales) {
            problems.push(file_issue(C::CsvColumn, file, 1, h, "Unknown column."));
        }
    }
    for r in REQUIRED {
        if !header.iter().any(|h| h == r) {
            problems.push(file_issue(
                C::CsvColumn,
                file,
                1,
                r,
                "Required column is missing.",
            ));
        }
    }
    let mut fu_map = HashMap::new();
    let mut fu_name = String::new();
    if let Some((name, bytes)) = followups {
        fu_name = name.to_string();
        match read_followups(name, bytes, scales) {
            Ok(m) => fu_map = m,
            Err(FileError(mut e)) => problems.append(&mut e),
        }
    }
    if !problems.is_empty() {
        return Err(FileError(problems));
    }
    let col = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), i))
        .collect();
    Ok(CsvReader {
        file: file.to_string(),
        rows: rdr.into_records(),
        header,
        col,
        decimal_comma: delim == b';',
        pending: None,
        followups: fu_map,
        followup_file: fu_name,
        scales: scales.to_vec(),
    })
}

fn is_followup_column(h: &str, scales: &[String]) -> bool {
    let Some(rest) = h.strip_prefix("fu") else {
        return false;
    };
    let Some((n, field)) = rest.split_once('_') else {
        return false;
    };
    n.parse::<u32>().is_ok()
        && (FOLLOWUP_FIELDS.contains(&field)
            || scales
                .iter()
                .any(|s| s.replace('-', "_") == field || s == field))
}

/// The header row, lower-cased, without a byte-order mark.
fn read_header<R: Read>(rdr: &mut csv::Reader<R>, file: &str) -> Result<Vec<String>, FileError> {
    let header = rdr.headers().map_err(|_| {
        FileError(vec![file_issue(
            C::CsvSyntax,
            file,
            1,
            "",
            "The header row cannot be read (not UTF-8 or malformed).",
        )])
    })?;
    Ok(header
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect())
}

type FollowupRows = HashMap<String, Vec<(u64, String, HashMap<String, String>)>>;

fn read_followups(file: &str, bytes: &[u8], scales: &[String]) -> Result<FollowupRows, FileError> {
    let first = String::from_utf8_lossy(bytes.split(|b| *b == b'\n').next().unwrap_or_default())
        .to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(&first))
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = read_header(&mut rdr, file)?;
    let mut problems = Vec::new();
    for h in &header {
        let known = ["record_id", "transplant_number"].contains(&h.as_str())
            || FOLLOWUP_FIELDS.contains(&h.as_str())
            || scales.iter().any(|s| s == h || s.replace('-', "_") == *h);
        if !known {
            problems.push(file_issue(C::CsvColumn, file, 1, h, "Unknown column."));
        }
    }
    for r in ["record_id", "time_point", "date"] {
        if !header.iter().any(|h| h == r) {
            problems.push(file_issue(
                C::CsvColumn,
                file,
                1,
                r,
                "Required column is missing.",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(FileError(problems));
    }
    let mut out: FollowupRows = HashMap::new();
    for (i, row) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let row = row.map_err(|_| {
            FileError(vec![file_issue(
                C::CsvSyntax,
                file,
                line,
                "",
                "The row cannot be read (wrong number of fields or not UTF-8).",
            )])
        })?;
        let mut fields = HashMap::new();
        for (h, v) in header.iter().zip(row.iter()) {
            if !v.is_empty() {
                fields.insert(h.clone(), v.to_string());
            }
        }
        let id = fields.get("record_id").cloned().unwrap_or_default();
        out.entry(id)
            .or_default()
            .push((line, file.to_string(), fields));
    }
    Ok(out)
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = Result<CsvRecord, (Option<String>, Vec<Issue>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut rows: Vec<(u64, csv::StringRecord)> = Vec::new();
        if let Some(p) = self.pending.take() {
            rows.push(p);
        }
        loop {
            let line = self.rows.reader().position().line();
            match self.rows.next() {
                None => break,
                Some(Err(_)) => {
                    let issue = file_issue(
                        C::CsvSyntax,
                        &self.file,
                        line.max(2),
                        "",
                        "The row cannot be read (wrong number of fields or not UTF-8).",
                    );
                    if rows.is_empty() {
                        return Some(Err((None, vec![issue])));
                    }
                    self.pending = None;
                    break;
                }
                Some(Ok(row)) => {
                    let id = self
                        .col
                        .get("record_id")
                        .and_then(|&i| row.get(i))
                        .unwrap_or("")
                        .to_string();
                    let same = rows.first().is_none_or(|(_, r)| {
                        self.col.get("record_id").and_then(|&i| r.get(i)) == Some(id.as_str())
                    });
                    if same {
                        rows.push((line, row));
                    } else {
                        self.pending = Some((line, row));
                        break;
                    }
                }
            }
        }
        if rows.is_empty() {
            return None;
        }
        Some(self.build(rows))
    }
}

/// Reads one record's cells, collecting every problem.
struct Builder<'a> {
    file: &'a str,
    header: &'a [String],
    decimal_comma: bool,
    issues: Vec<Issue>,
    cells: Vec<(String, CsvCell)>,
    /// (line, column) of every cell the reader looked at.
    read: std::collections::HashSet<(u64, String)>,
}

/// Columns that describe the patient and repeat on every row of a record.
fn is_patient_column(c: &str) -> bool {
    let split = RECORD_COLUMNS
        .iter()
        .position(|x| *x == "transplant_number")
        .expect("listed");
    RECORD_COLUMNS[..split].contains(&c)
        || matches!(
            c,
            "vital_status" | "last_contact_date" | "death_date" | "cause_of_death"
        )
}

impl Builder<'_> {
    fn cell(&self, line: u64, column: &str) -> CsvCell {
        CsvCell {
            file: self.file.to_string(),
            line,
            column: column.to_string(),
        }
    }
    fn problem(&mut self, code: C, pointer: &str, line: u64, column: &str, msg: &str) {
        let mut i = Issue::error(code, pointer, msg);
        i.location.csv = Some(self.cell(line, column));
        self.issues.push(i);
    }
    fn track(&mut self, pointer: &str, line: u64, column: &str) {
        self.cells
            .push((pointer.to_string(), self.cell(line, column)));
    }
    fn text(
        &mut self,
        row: &HashMap<&str, &str>,
        line: u64,
        col: &str,
        pointer: &str,
    ) -> Option<String> {
        self.read.insert((line, col.to_string()));
        let v = row.get(col).copied().filter(|v| !v.is_empty())?;
        self.track(pointer, line, col);
        Some(v.to_string())
    }
    fn required(
        &mut self,
        row: &HashMap<&str, &str>,
        line: u64,
        col: &str,
        pointer: &str,
    ) -> String {
        match self.text(row, line, col, pointer) {
            Some(v) => v,
            None => {
                self.problem(
                    C::MissingMandatory,
                    pointer,
                    line,
                    col,
                    "This mandatory (MED-A) item is blank.",
                );
                String::new()
            }
        }
    }
    fn date(
        &mut self,
        row: &HashMap<&str, &str>,
        line: u64,
        col: &str,
        pointer: &str,
    ) -> Option<RecordDate> {
        let v = self.text(row, line, col, pointer)?;
        match RecordDate::parse(&v) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(C::DateFormat, pointer, line, col, &format!("The date {e}."));
                None
            }
        }
    }
    fn number(
        &mut self,
        row: &HashMap<&str, &str>,
        line: u64,
        col: &str,
        pointer: &str,
    ) -> Option<f64> {
        let v = self.text(row, line, col, pointer)?;
        match parse_number(&v, self.decimal_comma) {
            Some(n) => Some(n),
            None => {
                self.problem(
                    C::NumberFormat,
                    pointer,
                    line,
                    col,
                    if self.decimal_comma {
                        "Not a number (this file uses decimal commas)."
                    } else {
                        "Not a number (this file uses decimal points)."
                    },
                );
                None
            }
        }
    }
    fn enumerated<T: serde::de::DeserializeOwned>(
        &mut self,
        row: &HashMap<&str, &str>,
        line: u64,
        col: &str,
        pointer: &str,
    ) -> Option<T> {
        let v = self.text(row, line, col, pointer)?;
        match serde_json::from_value(serde_json::Value::String(
            v.to_ascii_lowercase().replace('_', "-"),
        )) {
            Ok(t) => Some(t),
            Err(_) => {
                self.problem(
                    C::UnknownCode,
                    pointer,
                    line,
                    col,
                    "The value is not one of the allowed codes.",
                );
                None
            }
        }
    }
    fn measure(
        &mut self,
        row: &HashMap<&str, &str>,
        line: u64,
        col: &str,
        unit_col: &str,
        pointer: &str,
    ) -> Option<Measure> {
        let unit = self
            .text(row, line, unit_col, &format!("{pointer}/unit"))
            .unwrap_or_default();
        let value = self.number(row, line, col, &format!("{pointer}/value"))?;
        Some(Measure { value, unit })
    }
    fn drugs(
        &mut self,
        row: &HashMap<&str, &str>,
        line: u64,
        col: &str,
        pointer: &str,
    ) -> Vec<DrugGiven> {
        let Some(v) = self.text(row, line, col, pointer) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in v
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let p = format!("{pointer}/{i}");
            let parts: Vec<&str> = item.split_whitespace().collect();
            let parsed = (parts.len() == 4)
                .then(|| {
                    let dose = parse_number(parts[1], self.decimal_comma)?;
                    let (start, end) = split_range(parts[3])?;
                    Some(DrugGiven {
                        drug: parts[0].to_string(),
                        dose: Measure {
                            value: dose,
                            unit: parts[2].to_string(),
                        },
                        total_dose: None,
                        start_date: start,
                        end_date: end,
                    })
                })
                .flatten();
            match parsed {
                Some(d) => out.push(d),
                None => self.problem(
                    C::Structure,
                    &p,
                    line,
                    col,
                    "A drug item must read 'drug dose unit start[..end]'.",
                ),
            }
        }
        out
    }
    fn complications(
        &mut self,
        row: &HashMap<&str, &str>,
        line: u64,
        col: &str,
        pointer: &str,
    ) -> Vec<Complication> {
        let Some(v) = self.text(row, line, col, pointer) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in v
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let parts: Vec<&str> = item.split_whitespace().collect();
            let parsed = (parts.len() == 2)
                .then(|| {
                    let (kind, grade) = match parts[0].split_once(':') {
                        Some((k, g)) => (k.to_string(), Some(g.to_string())),
                        None => (parts[0].to_string(), None),
                    };
                    let (onset, resolved) = split_range(parts[1])?;
                    Some(Complication {
                        kind,
                        onset_date: onset,
                        resolved_date: resolved,
                        grade,
                        organism: None,
                        organs: Vec::new(),
                        codes: Vec::new(),
                    })
                })
                .flatten();
            match parsed {
                Some(c) => out.push(c),
                None => self.problem(
                    C::Structure,
                    &format!("{pointer}/{i}"),
                    line,
                    col,
                    "A complication item must read 'kind[:grade] onset[..resolved]'.",
                ),
            }
        }
        out
    }
}

fn split_range(s: &str) -> Option<(RecordDate, Option<RecordDate>)> {
    match s.split_once("..") {
        Some((a, b)) => Some((RecordDate::parse(a).ok()?, Some(RecordDate::parse(b).ok()?))),
        None => Some((RecordDate::parse(s).ok()?, None)),
    }
}

/// Parses a number with the file's decimal convention; thousands separators only in groups of
/// three (`1.234,5` with decimal commas, `1,234.5` with points).
pub fn parse_number(s: &str, decimal_comma: bool) -> Option<f64> {
    let s = s.trim();
    let (thousands, decimal) = if decimal_comma {
        ('.', ',')
    } else {
        (',', '.')
    };
    let (int_part, frac) = match s.split_once(decimal) {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let int_digits = if int_part.contains(thousands) {
        let groups: Vec<&str> = int_part.trim_start_matches('-').split(thousands).collect();
        let ok = !groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3);
        if !ok {
            return None;
        }
        int_part.replace(thousands, "")
    } else {
        int_part.to_string()
    };
    let text = match frac {
        Some(f) if f.bytes().all(|b| b.is_ascii_digit()) && !f.is_empty() => {
            format!("{int_digits}.{f}")
        }
        Some(_) => return None,
        None => int_digits,
    };
    if text.is_empty()
        || !text
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.')
    {
        return None;
    }
    text.parse().ok().filter(|v: &f64| v.is_finite())
}

impl<R: Read> CsvReader<R> {
    fn build(
        &mut self,
        rows: Vec<(u64, csv::StringRecord)>,
    ) -> Result<CsvRecord, (Option<String>, Vec<Issue>)> {
        let mut b = Builder {
            file: &self.file,
            header: &self.header,
            decimal_comma: self.decimal_comma,
            issues: Vec::new(),
            cells: Vec::new(),
            read: Default::default(),
        };
        let maps: Vec<(u64, HashMap<&str, &str>)> = rows
            .iter()
            .map(|(line, r)| {
                (
                    *line,
                    b.header.iter().map(String::as_str).zip(r.iter()).collect(),
                )
            })
            .collect();
        let (line, first) = &maps[0];
        let line = *line;
        let record_id = b.required(first, line, "record_id", "/recordId");
        let version = b
            .number(first, line, "version", "/version")
            .map(|v| v as u32)
            .unwrap_or(1);
        let registry = b.required(first, line, "registry", "/registry");
        let centre = Centre {
            code: b.required(first, line, "centre_code", "/centre/code"),
            name: b.text(first, line, "centre_name", "/centre/name"),
        };
        let mrns = match (
            b.text(first, line, "mrn_system", "/patient/mrns/0/system"),
            b.text(first, line, "mrn", "/patient/mrns/0/value"),
        ) {
            (Some(system), Some(value)) => vec![SystemValue { system, value }],
            _ => Vec::new(),
        };
        let sex = b.enumerated(first, line, "sex", "/patient/sex");
        if first.get("sex").is_none_or(|v| v.is_empty()) {
            b.problem(
                C::MissingMandatory,
                "/patient/sex",
                line,
                "sex",
                "This mandatory (MED-A) item is blank.",
            );
        }
        let birth = b.date(first, line, "birth_date", "/patient/birthDate");
        if birth.is_none() && first.get("birth_date").is_none_or(|v| v.is_empty()) {
            b.problem(
                C::MissingMandatory,
                "/patient/birthDate",
                line,
                "birth_date",
                "This mandatory (MED-A) item is blank.",
            );
        }
        let patient_upn = b.required(first, line, "upn", "/patient/upn");
        let crid = b.text(first, line, "crid", "/patient/crid");
        let consent_status = b.enumerated(first, line, "consent_status", "/consent/status");
        let consent = ConsentInfo {
            status: consent_status.unwrap_or(ConsentStatus::NotAsked),
            date: b.date(first, line, "consent_date", "/consent/date"),
            withdrawn_date: b.date(
                first,
                line,
                "consent_withdrawn_date",
                "/consent/withdrawnDate",
            ),
        };
        let codes = match b.text(first, line, "dx_code", "/diagnoses/0/codes/0/code") {
            Some(code) => vec![SourceCode {
                system: b
                    .text(first, line, "dx_code_system", "/diagnoses/0/codes/0/system")
                    .unwrap_or_else(|| "icd-10-cm".into()),
                version: b.text(
                    first,
                    line,
                    "dx_code_version",
                    "/diagnoses/0/codes/0/version",
                ),
                code,
            }],
            None => Vec::new(),
        };
        let diagnosis_date = b.date(first, line, "diagnosis_date", "/diagnoses/0/diagnosisDate");
        let diagnosis = Diagnosis {
            disease: b.required(first, line, "disease", "/diagnoses/0/disease"),
            subtype: b.text(first, line, "subtype", "/diagnoses/0/subtype"),
            onset_date: b.date(first, line, "onset_date", "/diagnoses/0/onsetDate"),
            diagnosis_date: diagnosis_date
                .clone()
                .unwrap_or_else(|| RecordDate::parse("1900").expect("valid")),
            codes,
            revision: None,
        };
        if diagnosis_date.is_none() && first.get("diagnosis_date").is_none_or(|v| v.is_empty()) {
            b.problem(
                C::MissingMandatory,
                "/diagnoses/0/diagnosisDate",
                line,
                "diagnosis_date",
                "This mandatory (MED-A) item is blank.",
            );
        }
        let baseline = match b.date(first, line, "baseline_date", "/baseline/date") {
            Some(date) => {
                let performance = match (
                    b.enumerated::<PerformanceScale>(
                        first,
                        line,
                        "performance_scale",
                        "/baseline/performance/scale",
                    ),
                    b.number(
                        first,
                        line,
                        "performance_value",
                        "/baseline/performance/value",
                    ),
                ) {
                    (Some(scale), Some(v)) => Some(Performance {
                        scale,
                        value: v as u32,
                    }),
                    _ => None,
                };
                Some(Baseline {
                    date,
                    performance,
                    hct_ci: b
                        .number(first, line, "hct_ci", "/baseline/hctCi")
                        .map(|v| v as u32),
                    weight: b.measure(first, line, "weight", "weight_unit", "/baseline/weight"),
                    height: b.measure(first, line, "height", "height_unit", "/baseline/height"),
                    scores: Vec::new(),
                    labs: Vec::new(),
                })
            }
            None => None,
        };
        let mut transplants = Vec::new();
        let mut follow_ups = Vec::new();
        for (i, (line, row)) in maps.iter().enumerate() {
            let line = *line;
            let p = format!("/transplants/{i}");
            let number = b
                .number(row, line, "transplant_number", &format!("{p}/number"))
                .map(|v| v as u32)
                .unwrap_or(0);
            let donor_type = b.enumerated(row, line, "donor_type", &format!("{p}/donorType"));
            let source = b.enumerated(
                row,
                line,
                "stem_cell_source",
                &format!("{p}/stemCellSource"),
            );
            let infusion = b.date(row, line, "infusion_date", &format!("{p}/infusionDate"));
            for (col, ptr, missing) in [
                ("donor_type", "donorType", donor_type.is_none()),
                ("stem_cell_source", "stemCellSource", source.is_none()),
                ("infusion_date", "infusionDate", infusion.is_none()),
            ] {
                if missing && row.get(col).is_none_or(|v| v.is_empty()) {
                    b.problem(
                        C::MissingMandatory,
                        &format!("{p}/{ptr}"),
                        line,
                        col,
                        "This mandatory (MED-A) item is blank.",
                    );
                }
            }
            let mobilisation = match b.date(
                row,
                line,
                "mobilisation_start",
                &format!("{p}/mobilisation/startDate"),
            ) {
                Some(start) => {
                    let aphereses = b
                        .text(
                            row,
                            line,
                            "apheresis_dates",
                            &format!("{p}/mobilisation/aphereses"),
                        )
                        .map(|v| {
                            v.split('|')
                                .filter_map(|d| RecordDate::parse(d.trim()).ok())
                                .map(|date| Apheresis {
                                    date,
                                    cd34_collected: None,
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Some(Mobilisation {
                        start_date: start,
                        regimen: b
                            .text(
                                row,
                                line,
                                "mobilisation_regimen",
                                &format!("{p}/mobilisation/regimen"),
                            )
                            .unwrap_or_else(|| "other".into()),
                        drugs: b.drugs(
                            row,
                            line,
                            "mobilisation_drugs",
                            &format!("{p}/mobilisation/drugs"),
                        ),
                        aphereses,
                        poor_mobiliser: None,
                    })
                }
                None => None,
            };
            let conditioning = match (
                b.text(
                    row,
                    line,
                    "conditioning_regimen",
                    &format!("{p}/conditioning/regimen"),
                ),
                b.date(
                    row,
                    line,
                    "conditioning_start",
                    &format!("{p}/conditioning/startDate"),
                ),
            ) {
                (Some(regimen), Some(start)) => {
                    let tbi = match (
                        b.number(
                            row,
                            line,
                            "tbi_dose_gy",
                            &format!("{p}/conditioning/tbi/doseGy"),
                        ),
                        b.date(
                            row,
                            line,
                            "tbi_start",
                            &format!("{p}/conditioning/tbi/startDate"),
                        ),
                    ) {
                        (Some(dose_gy), Some(start_date)) => Some(Tbi {
                            dose_gy,
                            fractions: b
                                .number(
                                    row,
                                    line,
                                    "tbi_fractions",
                                    &format!("{p}/conditioning/tbi/fractions"),
                                )
                                .map(|v| v as u32)
                                .unwrap_or(1),
                            start_date,
                            end_date: b.date(
                                row,
                                line,
                                "tbi_end",
                                &format!("{p}/conditioning/tbi/endDate"),
                            ),
                        }),
                        _ => None,
                    };
                    Some(Conditioning {
                        regimen,
                        intensity: b.text(
                            row,
                            line,
                            "conditioning_intensity",
                            &format!("{p}/conditioning/intensity"),
                        ),
                        start_date: start,
                        end_date: b.date(
                            row,
                            line,
                            "conditioning_end",
                            &format!("{p}/conditioning/endDate"),
                        ),
                        drugs: b.drugs(
                            row,
                            line,
                            "conditioning_drugs",
                            &format!("{p}/conditioning/drugs"),
                        ),
                        tbi,
                    })
                }
                _ => None,
            };
            let recovery = |b: &mut Builder<'_>, name: &str| -> Option<Recovery> {
                let status = b.enumerated(
                    row,
                    line,
                    &format!("{name}_status"),
                    &format!("{p}/engraftment/{name}/status"),
                )?;
                Some(Recovery {
                    status,
                    date: b.date(
                        row,
                        line,
                        &format!("{name}_date"),
                        &format!("{p}/engraftment/{name}/date"),
                    ),
                })
            };
            let engraftment = match (recovery(&mut b, "neutrophil"), recovery(&mut b, "platelet")) {
                (Some(neutrophil), Some(platelet)) => Some(Engraftment {
                    neutrophil,
                    platelet,
                }),
                _ => None,
            };
            let hla = b.text(row, line, "hla_match", &format!("{p}/donor/hlaMatch"));
            transplants.push(Transplant {
                number,
                donor_type: donor_type.unwrap_or(DonorType::Autologous),
                stem_cell_source: source.unwrap_or(StemCellSource::PeripheralBlood),
                donor: hla.map(|h| Donor {
                    hla_match: Some(h),
                    relationship: None,
                    sex: None,
                    cmv_igg: None,
                    abo: None,
                }),
                mobilisation,
                graft_manipulation: b.text(
                    row,
                    line,
                    "graft_manipulation",
                    &format!("{p}/graftManipulation"),
                ),
                cryopreserved: b
                    .text(row, line, "cryopreserved", &format!("{p}/cryopreserved"))
                    .map(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "1" | "y")),
                cd34_dose: b.measure(
                    row,
                    line,
                    "cd34_dose",
                    "cd34_dose_unit",
                    &format!("{p}/cd34Dose"),
                ),
                tnc_dose: b.measure(
                    row,
                    line,
                    "tnc_dose",
                    "tnc_dose_unit",
                    &format!("{p}/tncDose"),
                ),
                conditioning,
                infusion_date: infusion
                    .unwrap_or_else(|| RecordDate::parse("1900").expect("valid")),
                infusion_end_date: b.date(
                    row,
                    line,
                    "infusion_end_date",
                    &format!("{p}/infusionEndDate"),
                ),
                supplemental_infusions: Vec::new(),
                stated_age_years: None,
                engraftment,
                complications: b.complications(
                    row,
                    line,
                    "complications",
                    &format!("{p}/complications"),
                ),
            });
            // Follow-ups as repeated columns.
            for n in 1..=40 {
                let prefix = format!("fu{n}_");
                if !row
                    .keys()
                    .any(|k| k.starts_with(&prefix) && !row[k].is_empty())
                {
                    continue;
                }
                let fields: HashMap<String, String> = row
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((k.strip_prefix(&prefix)?.to_string(), v.to_string()))
                    })
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                let fp = format!("/followUps/{}", follow_ups.len());
                let cols: HashMap<String, String> = fields
                    .keys()
                    .map(|k| (k.clone(), format!("{prefix}{k}")))
                    .collect();
                if let Some(f) = followup(
                    &mut b,
                    &self.scales,
                    &fields,
                    Some(number),
                    line,
                    &fp,
                    &cols,
                ) {
                    follow_ups.push(f);
                }
            }
        }
        // Follow-ups from the second file.
        if let Some(rows) = self.followups.remove(&record_id) {
            for (line, _fname, fields) in rows {
                let fp = format!("/followUps/{}", follow_ups.len());
                let transplant = fields.get("transplant_number").and_then(|v| v.parse().ok());
                let cols: HashMap<String, String> =
                    fields.keys().map(|k| (k.clone(), k.clone())).collect();
                let saved = b.file;
                b.file = &self.followup_file;
                if let Some(f) =
                    followup(&mut b, &self.scales, &fields, transplant, line, &fp, &cols)
                {
                    follow_ups.push(f);
                }
                b.file = saved;
            }
        }
        let (last_line, last) = maps.last().expect("one row at least");
        let vital = VitalStatus {
            status: b
                .enumerated(last, *last_line, "vital_status", "/vitalStatus/status")
                .unwrap_or(Vital::Unknown),
            last_contact_date: b
                .date(
                    last,
                    *last_line,
                    "last_contact_date",
                    "/vitalStatus/lastContactDate",
                )
                .unwrap_or_else(|| RecordDate::parse("1900").expect("valid")),
            death_date: b.date(last, *last_line, "death_date", "/vitalStatus/deathDate"),
            cause_of_death: b.text(
                last,
                *last_line,
                "cause_of_death",
                "/vitalStatus/causeOfDeath",
            ),
        };
        for (col, ptr) in [
            ("vital_status", "/vitalStatus/status"),
            ("last_contact_date", "/vitalStatus/lastContactDate"),
            ("consent_status", "/consent/status"),
        ] {
            if last.get(col).is_none_or(|v| v.is_empty())
                && first.get(col).is_none_or(|v| v.is_empty())
            {
                b.problem(
                    C::MissingMandatory,
                    ptr,
                    *last_line,
                    col,
                    "This mandatory (MED-A) item is blank.",
                );
            }
        }
        // A filled cell nobody read belongs to a group whose key cell is blank (weight without
        // baseline_date, tbi_dose_gy without tbi_start...): never drop data silently.
        let last_index = maps.len() - 1;
        for (k, (line, row)) in maps.iter().enumerate() {
            for (col, v) in row {
                if v.is_empty() || b.read.contains(&(*line, col.to_string())) {
                    continue;
                }
                // Patient cells repeat on every row: read from the first row, vital status
                // from the last.
                let vital = matches!(
                    *col,
                    "vital_status" | "last_contact_date" | "death_date" | "cause_of_death"
                );
                if is_patient_column(col) && ((vital && k != last_index) || (!vital && k != 0)) {
                    continue;
                }
                b.problem(C::CsvColumn, "", *line, col, "This cell is filled but cannot be used: the cell that starts its group is blank (baseline_date, mobilisation_start, conditioning_regimen and conditioning_start, tbi_start, both engraftment statuses).");
            }
        }
        let id = (!record_id.is_empty()).then(|| record_id.clone());
        if !b.issues.is_empty() {
            return Err((id, b.issues));
        }
        let record = Record {
            record_id,
            version,
            registry,
            centre,
            patient: PatientInfo {
                upn: patient_upn,
                mrns,
                crid,
                name: None,
                sex: sex.unwrap_or(Sex::Unknown),
                birth_date: birth.unwrap_or_else(|| RecordDate::parse("1900").expect("valid")),
                linked_identifiers: Vec::new(),
            },
            consent,
            diagnoses: vec![diagnosis],
            prior_therapies: Vec::new(),
            baseline,
            transplants,
            follow_ups,
            vital_status: vital,
            estimated_dates: Vec::new(),
        };
        Ok(CsvRecord {
            record,
            cells: b.cells,
        })
    }
}

/// One follow-up from named fields (`time_point`, `date`, scale codes...).
fn followup(
    b: &mut Builder<'_>,
    scales: &[String],
    fields: &HashMap<String, String>,
    transplant: Option<u32>,
    line: u64,
    fp: &str,
    cols: &HashMap<String, String>,
) -> Option<FollowUp> {
    let row: HashMap<&str, &str> = fields
        .iter()
        .map(|(k, v)| (cols[k].as_str(), v.as_str()))
        .collect();
    let col = |name: &str| cols.get(name).cloned().unwrap_or_else(|| name.to_string());
    let time_point = b.text(&row, line, &col("time_point"), &format!("{fp}/timePoint"));
    let date = b.date(&row, line, &col("date"), &format!("{fp}/date"));
    let (Some(time_point), Some(date)) = (time_point, date) else {
        b.problem(
            C::MissingMandatory,
            fp,
            line,
            &col("date"),
            "A follow-up needs its time point and date.",
        );
        return None;
    };
    let mut scores = Vec::new();
    for s in scales {
        let key = if fields.contains_key(s) {
            s.clone()
        } else {
            s.replace('-', "_")
        };
        if fields.contains_key(&key) {
            let ptr = format!("{fp}/scores/{}", scores.len());
            if let Some(v) = b.number(&row, line, &col(&key), &format!("{ptr}/value")) {
                scores.push(Score {
                    scale: s.clone(),
                    value: Some(v),
                    absent_reason: None,
                    date: None,
                });
            }
        }
    }
    let mut events = Vec::new();
    for (kind, key) in [
        ("relapse", "relapse_date"),
        ("progression", "progression_date"),
    ] {
        if let Some(d) = b.date(
            &row,
            line,
            &col(key),
            &format!("{fp}/events/{}/date", events.len()),
        ) {
            events.push(DiseaseEvent {
                kind: kind.into(),
                date: d,
            });
        }
    }
    Some(FollowUp {
        transplant,
        time_point,
        date,
        scores,
        labs: Vec::new(),
        response: b.text(&row, line, &col("response"), &format!("{fp}/response")),
        events,
        therapy_restarts: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_file_convention() {
        assert_eq!(parse_number("2,5", true), Some(2.5));
        assert_eq!(parse_number("1.234,5", true), Some(1234.5));
        assert_eq!(parse_number("1,234.5", false), Some(1234.5));
        assert_eq!(parse_number("2,5", false), None);
        assert_eq!(parse_number("2.5", true), None);
        assert_eq!(parse_number("12.34,5", true), None);
        assert_eq!(parse_number("abc", false), None);
    }
}
