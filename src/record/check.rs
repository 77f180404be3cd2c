//! Checks before mapping ("parse, don't validate"): a [`Record`] becomes a [`Checked`] record
//! only when every rule holds. All problems are collected in one pass, each with a JSON
//! pointer, a stable code and a message without patient values. Units are normalised here,
//! and what the mapping needs to know (which transplant a follow-up counts from, the regimen
//! code, the diagnosis valid at day 0) is resolved once.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::date::RecordDate;
use super::issue::{Issue, IssueCode as C};
use super::model::*;
use super::units::{self, Quantity, UnitProblem};
use crate::terminology::Terminology;

/// A record that passed every check, with its units normalised.
#[derive(Debug, Clone)]
pub struct Checked {
    pub record: Record,
    pub warnings: Vec<Issue>,
    pub resolved: Resolved,
    /// What the checks converted, derived or ignored, for the mapping report.
    pub notes: Vec<ReportEntry>,
}

/// Facts the checks resolved for the mapping.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Per follow-up: index of the transplant it counts from.
    pub followup_transplant: Vec<usize>,
    /// Per follow-up: the time point it is sent under (duplicates in one window become
    /// `unscheduled`, edge case 30).
    pub followup_time_point: Vec<String>,
    /// Per transplant: the regimen code of `engraft-regimen`, when conditioning is given.
    pub regimen: Vec<Option<String>>,
    /// Per transplant: index of the diagnosis valid at day 0 (edge case 26).
    pub reason_diagnosis: Vec<usize>,
    /// Per transplant: age at HSCT in whole years and whether Engraft computed it.
    pub age_at_hsct: Vec<Option<(u32, bool)>>,
    /// Body surface area at baseline in m2, computed by Mosteller.
    pub bsa: Option<f64>,
    /// JSON pointers of dates the source estimated.
    pub estimated: HashSet<String>,
}

/// One line of the mapping report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportEntry {
    pub pointer: String,
    pub status: ReportStatus,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportStatus {
    /// The source field has no FHIR target and was not sent.
    NotMapped,
    /// A default was used in place of the source value.
    Defaulted,
    /// Engraft computed a value the source did not give.
    Derived,
    /// A value was converted to another unit.
    Converted,
}

/// Runs every check. `Err` holds every problem (errors and warnings) when any is an error.
pub fn check(mut record: Record, term: &Terminology) -> Result<Checked, Vec<Issue>> {
    let mut cx = Cx {
        term,
        issues: Vec::new(),
        notes: Vec::new(),
    };
    let resolved = cx.run(&mut record);
    if cx.issues.iter().any(Issue::is_error) {
        return Err(cx.issues);
    }
    Ok(Checked {
        record,
        warnings: cx.issues,
        resolved,
        notes: cx.notes,
    })
}

struct Cx<'t> {
    term: &'t Terminology,
    issues: Vec<Issue>,
    notes: Vec<ReportEntry>,
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

fn is_absolute_uri(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://") || s.starts_with("urn:"))
        && !s.contains(char::is_whitespace)
}

impl Cx<'_> {
    fn err(&mut self, code: C, ptr: impl Into<String>, msg: impl Into<String>) {
        self.issues.push(Issue::error(code, ptr, msg));
    }
    fn warn(&mut self, code: C, ptr: impl Into<String>, msg: impl Into<String>) {
        self.issues.push(Issue::warning(code, ptr, msg));
    }
    fn note(&mut self, ptr: impl Into<String>, status: ReportStatus, reason: impl Into<String>) {
        self.notes.push(ReportEntry {
            pointer: ptr.into(),
            status,
            reason: reason.into(),
        });
    }

    fn code_in(&mut self, cs: &str, code: &str, ptr: &str, what: &str) -> bool {
        if self.term.has(cs, code) {
            true
        } else {
            self.err(
                C::UnknownCode,
                ptr,
                format!("{what} is not a code of CodeSystem {cs}."),
            );
            false
        }
    }

    /// `earlier` must not be certainly after `later`.
    fn order(&mut self, earlier: &RecordDate, later: &RecordDate, ptr: &str, rule: &str) {
        if earlier.is_definitely_after(later) {
            self.err(C::DateOrder, ptr, format!("Date order violated: {rule}."));
        }
    }

    fn run(&mut self, r: &mut Record) -> Resolved {
        let mut res = Resolved::default();
        self.identifiers(r);
        self.consent(r);
        self.diagnoses(r);
        self.prior_therapies(r);
        self.transplants(r, &mut res);
        if let Some(b) = r.baseline.as_mut() {
            let first_day0 = r.transplants.first().map(|t| t.infusion_date.clone());
            self.baseline(
                b,
                &r.patient.birth_date,
                first_day0.as_ref(),
                &r.diagnoses,
                &mut res,
            );
        }
        self.follow_ups(r, &mut res);
        self.vital_status(r);
        self.edss_vs_death(r);
        self.dates_everywhere(r, &mut res);
        res
    }

    fn identifiers(&mut self, r: &Record) {
        for (ptr, v) in [
            ("/recordId", &r.record_id),
            ("/registry", &r.registry),
            ("/centre/code", &r.centre.code),
            ("/patient/upn", &r.patient.upn),
        ] {
            if v.trim().is_empty() {
                self.err(C::MissingMandatory, ptr, "This mandatory item is blank.");
            } else if !is_id(v) {
                self.err(
                    C::IdFormat,
                    ptr,
                    "Identifiers may use letters, digits, '.', '_' and '-' only (at most 64, starting with a letter or digit).",
                );
            }
        }
        for (i, m) in r.patient.mrns.iter().enumerate() {
            if !is_absolute_uri(&m.system) {
                self.err(
                    C::IdFormat,
                    format!("/patient/mrns/{i}/system"),
                    "An identifier system must be an absolute URI.",
                );
            }
            if m.value.trim().is_empty() {
                self.err(
                    C::MissingMandatory,
                    format!("/patient/mrns/{i}/value"),
                    "An MRN value is blank.",
                );
            }
        }
        for (i, l) in r.patient.linked_identifiers.iter().enumerate() {
            if !is_absolute_uri(&l.system) {
                self.err(
                    C::IdFormat,
                    format!("/patient/linkedIdentifiers/{i}/system"),
                    "An identifier system must be an absolute URI.",
                );
            }
            if !matches!(
                l.link_type.as_str(),
                "seealso" | "replaced-by" | "replaces" | "refer"
            ) {
                self.err(
                    C::UnknownCode,
                    format!("/patient/linkedIdentifiers/{i}/linkType"),
                    "The link type must be seealso, replaced-by, replaces or refer.",
                );
            }
        }
        if let Some(crid) = &r.patient.crid {
            if !is_id(crid) {
                self.err(
                    C::IdFormat,
                    "/patient/crid",
                    "A CRID may use letters, digits, '.', '_' and '-' only.",
                );
            }
        }
    }

    fn consent(&mut self, r: &Record) {
        match r.consent.status {
            ConsentStatus::Withdrawn | ConsentStatus::Refused => self.err(
                C::ConsentNotGiven,
                "/consent/status",
                "Consent is withdrawn or refused: this record must not be exported (edge case 14).",
            ),
            ConsentStatus::NotAsked => self.warn(
                C::ConsentNotAsked,
                "/consent/status",
                "Consent was not asked: no Consent resource is sent; check the data-sharing agreement.",
            ),
            ConsentStatus::Granted => {}
        }
        if r.consent.withdrawn_date.is_some() && r.consent.status != ConsentStatus::Withdrawn {
            self.err(
                C::VitalStatusConflict,
                "/consent/withdrawnDate",
                "A withdrawal date is given but the consent status is not withdrawn.",
            );
        }
    }

    fn diagnoses(&mut self, r: &Record) {
        if r.diagnoses.is_empty() {
            self.err(
                C::MissingMandatory,
                "/diagnoses",
                "At least one diagnosis is required.",
            );
        }
        for (i, d) in r.diagnoses.iter().enumerate() {
            let p = format!("/diagnoses/{i}");
            if d.disease.trim().is_empty() {
                self.err(
                    C::MissingMandatory,
                    format!("{p}/disease"),
                    "The disease is blank.",
                );
            } else if self.code_in(
                "engraft-disease",
                &d.disease,
                &format!("{p}/disease"),
                "The disease",
            ) {
                if let Some(s) = &d.subtype {
                    if self.code_in("engraft-disease", s, &format!("{p}/subtype"), "The subtype")
                        && !self.term.is_a("engraft-disease", s, &d.disease)
                    {
                        self.err(
                            C::UnknownCode,
                            format!("{p}/subtype"),
                            "The subtype is not a subtype of the disease.",
                        );
                    }
                }
            }
            if let Some(o) = &d.onset_date {
                self.order(
                    o,
                    &d.diagnosis_date,
                    &format!("{p}/onsetDate"),
                    "first symptoms on or before diagnosis",
                );
            }
            self.order(
                &r.patient.birth_date,
                &d.diagnosis_date,
                &format!("{p}/diagnosisDate"),
                "birth before diagnosis",
            );
            if let Some(rev) = &d.revision {
                self.order(
                    &d.diagnosis_date,
                    &rev.date,
                    &format!("{p}/revision/date"),
                    "diagnosis before its revision",
                );
            }
            for (j, c) in d.codes.iter().enumerate() {
                self.source_code(c, &format!("{p}/codes/{j}"));
            }
        }
    }

    /// Source codes are kept verbatim, so they must be what they claim (edge cases 24, 25).
    fn source_code(&mut self, c: &SourceCode, p: &str) {
        let code = c.code.trim();
        match c.system.as_str() {
            "icd-10-cm" | crate::terminology::ICD10CM => {
                if !icd10_shape(code, 4) {
                    self.err(
                        C::CodeSystemMismatch,
                        format!("{p}/code"),
                        "The code is not shaped like an ICD-10-CM code.",
                    );
                    return;
                }
                let year: Option<u32> = c.version.as_deref().and_then(|v| v.parse().ok());
                let g35_split = year.is_some_and(|y| y >= 2026);
                if code == "G35" && g35_split {
                    self.err(
                        C::CodeVersion,
                        format!("{p}/code"),
                        "G35 is a non-billable header from ICD-10-CM FY2026 on; use G35.A-G35.D.",
                    );
                } else if code.starts_with("G35.") && year.is_some_and(|y| y < 2026) {
                    self.err(
                        C::CodeVersion,
                        format!("{p}/code"),
                        "G35.A-G35.D exist only from ICD-10-CM FY2026 on.",
                    );
                } else if code.starts_with("G35.") && year.is_none() {
                    self.warn(
                        C::CodeVersion,
                        format!("{p}/version"),
                        "An ICD-10-CM code of the FY2026 G35 split is sent without a version.",
                    );
                }
            }
            "icd-10" | crate::terminology::ICD10 => {
                // WHO ICD-10 has at most one character after the dot and no letters there.
                if !icd10_shape(code, 1)
                    || code
                        .split('.')
                        .nth(1)
                        .is_some_and(|s| !s.bytes().all(|b| b.is_ascii_digit()))
                {
                    self.err(C::CodeSystemMismatch, format!("{p}/code"), "The code is not a WHO ICD-10 code (an ICD-10-CM code sent as WHO ICD-10?).");
                }
            }
            "snomed" | crate::terminology::SNOMED => {
                if !(6..=18).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
                    self.err(
                        C::CodeSystemMismatch,
                        format!("{p}/code"),
                        "A SNOMED CT concept id has 6 to 18 digits.",
                    );
                } else if code.as_bytes()[code.len() - 3] == b'1' {
                    self.warn(C::SnomedExtension, format!("{p}/code"), "This is a SNOMED CT extension concept; the International Edition code is sent next to it.");
                }
            }
            other if is_absolute_uri(other) => {}
            _ => self.err(
                C::CodeSystemMismatch,
                format!("{p}/system"),
                "The system must be icd-10-cm, icd-10, snomed or an absolute URI.",
            ),
        }
    }

    fn prior_therapies(&mut self, r: &Record) {
        let first_day0 = r
            .transplants
            .iter()
            .map(|t| &t.infusion_date)
            .min_by_key(|d| d.earliest());
        for (i, t) in r.prior_therapies.iter().enumerate() {
            let p = format!("/priorTherapies/{i}");
            self.drug_code(&t.agent, &format!("{p}/agent"));
            if let (Some(a), Some(b)) = (&t.start_date, &t.stop_date) {
                self.order(a, b, &format!("{p}/stopDate"), "therapy start before stop");
            }
            if let (Some(a), Some(d0)) = (&t.start_date, first_day0) {
                self.order(
                    a,
                    d0,
                    &format!("{p}/startDate"),
                    "prior therapy starts before the first HSCT",
                );
            }
            if let Some(s) = &t.stop_reason {
                self.code_in(
                    "engraft-stop-reason",
                    s,
                    &format!("{p}/stopReason"),
                    "The stop reason",
                );
            }
        }
    }

    fn drug_code(&mut self, code: &str, ptr: &str) {
        if matches!(
            code.to_ascii_lowercase().as_str(),
            "atg" | "antithymocyte-globulin" | "anti-thymocyte-globulin"
        ) {
            self.err(C::AtgProduct, ptr, "ATG must be coded at product level: atg-rabbit or atg-horse (doses differ by product).");
        } else {
            self.code_in("engraft-drug", code, ptr, "The drug");
        }
    }

    fn measure(&mut self, what: Quantity<'_>, m: &mut Measure, ptr: &str) -> bool {
        match units::normalise(what, m.value, &m.unit) {
            Ok(n) => {
                if n.converted || n.unit != m.unit {
                    if n.converted {
                        self.note(
                            ptr,
                            ReportStatus::Converted,
                            format!("Converted to {}.", n.unit),
                        );
                    }
                    m.value = n.value;
                    m.unit = n.unit.to_string();
                }
                true
            }
            Err(UnitProblem::NotAllowed { allowed }) => {
                self.err(
                    C::UnitInvalid,
                    format!("{ptr}/unit"),
                    format!("The unit is missing or not allowed here; allowed: {allowed}."),
                );
                false
            }
            Err(UnitProblem::Implausible { range }) => {
                self.err(C::ImplausibleValue, format!("{ptr}/value"), format!("The value is outside the plausible range {range} (wrong unit or wrong item?)."));
                false
            }
        }
    }

    fn drugs(&mut self, drugs: &mut [DrugGiven], base: &str) {
        for (i, d) in drugs.iter_mut().enumerate() {
            let p = format!("{base}/{i}");
            self.drug_code(&d.drug, &format!("{p}/drug"));
            self.measure(Quantity::Dose, &mut d.dose, &format!("{p}/dose"));
            if let Some(t) = d.total_dose.as_mut() {
                self.measure(Quantity::Dose, t, &format!("{p}/totalDose"));
            }
            if let Some(e) = &d.end_date {
                self.order(
                    &d.start_date,
                    e,
                    &format!("{p}/endDate"),
                    "drug start before end",
                );
            }
        }
    }

    fn transplants(&mut self, r: &mut Record, res: &mut Resolved) {
        if r.transplants.is_empty() {
            self.err(
                C::MissingMandatory,
                "/transplants",
                "At least one transplant is required.",
            );
        }
        let mut numbers = HashSet::new();
        for (i, t) in r.transplants.iter().enumerate() {
            if !numbers.insert(t.number) || t.number == 0 {
                self.err(
                    C::TransplantOrder,
                    format!("/transplants/{i}/number"),
                    "Transplant numbers must be unique and start at 1.",
                );
            }
            if i > 0 {
                let prev = &r.transplants[i - 1];
                if prev.number > t.number
                    || !t.infusion_date.is_definitely_after(&prev.infusion_date)
                {
                    self.err(
                        C::TransplantOrder,
                        format!("/transplants/{i}/infusionDate"),
                        "Transplants must be listed in number order with later day-0 dates.",
                    );
                }
            }
        }
        let death = r.vital_status.death_date.clone();
        let last_contact = r.vital_status.last_contact_date.clone();
        let next_day0: Vec<Option<RecordDate>> = (0..r.transplants.len())
            .map(|i| r.transplants.get(i + 1).map(|t| t.infusion_date.clone()))
            .collect();
        let diagnoses = r.diagnoses.clone();
        let birth = r.patient.birth_date.clone();
        for (i, t) in r.transplants.iter_mut().enumerate() {
            let p = format!("/transplants/{i}");
            let day0 = t.infusion_date.clone();
            // Donor items on autologous records: warning, ignored (edge case 10).
            if !t.donor_type.is_allogeneic() && t.donor.as_ref().is_some_and(|d| !d.is_empty()) {
                self.warn(
                    C::DonorOnAutologous,
                    format!("{p}/donor"),
                    "Donor items on an autologous transplant are ignored.",
                );
                self.note(
                    format!("{p}/donor"),
                    ReportStatus::NotMapped,
                    "Donor items on an autologous transplant.",
                );
            }
            if let Some(d) = &t.donor {
                if t.donor_type.is_allogeneic() {
                    if let Some(h) = &d.hla_match {
                        if parse_hla(h).is_none() {
                            self.err(
                                C::ImplausibleValue,
                                format!("{p}/donor/hlaMatch"),
                                "HLA match must be matched/typed loci such as 10/10 or 7/8.",
                            );
                        }
                    }
                    for (field, v) in [
                        ("relationship", &d.relationship),
                        ("cmvIgg", &d.cmv_igg),
                        ("abo", &d.abo),
                    ] {
                        if v.is_some() {
                            self.note(format!("{p}/donor/{field}"), ReportStatus::NotMapped, "Donor characteristics need a donor resource, which this mapping does not emit yet.");
                        }
                    }
                    if d.sex.is_some() {
                        self.note(format!("{p}/donor/sex"), ReportStatus::NotMapped, "Donor characteristics need a donor resource, which this mapping does not emit yet.");
                    }
                }
            }
            if let Some(m) = t.mobilisation.as_mut() {
                let mp = format!("{p}/mobilisation");
                if m.poor_mobiliser.is_some() {
                    self.note(
                        format!("{mp}/poorMobiliser"),
                        ReportStatus::NotMapped,
                        "The poor-mobiliser flag has no FHIR target in this mapping yet.",
                    );
                }
                self.code_in(
                    "engraft-mobilisation-regimen",
                    &m.regimen,
                    &format!("{mp}/regimen"),
                    "The mobilisation regimen",
                );
                self.order(
                    &birth,
                    &m.start_date,
                    &format!("{mp}/startDate"),
                    "birth before mobilisation",
                );
                for d in &diagnoses {
                    self.order(
                        &d.diagnosis_date,
                        &m.start_date,
                        &format!("{mp}/startDate"),
                        "diagnosis before mobilisation",
                    );
                }
                self.drugs(&mut m.drugs, &format!("{mp}/drugs"));
                for (j, a) in m.aphereses.iter_mut().enumerate() {
                    let ap = format!("{mp}/aphereses/{j}");
                    self.order(
                        &m.start_date,
                        &a.date,
                        &format!("{ap}/date"),
                        "mobilisation start before apheresis",
                    );
                    self.order(
                        &a.date,
                        &day0,
                        &format!("{ap}/date"),
                        "apheresis before day 0",
                    );
                    if let Some(c) = a.cd34_collected.as_mut() {
                        self.measure(Quantity::Cd34Collected, c, &format!("{ap}/cd34Collected"));
                    }
                }
                self.order(
                    &m.start_date,
                    &day0,
                    &format!("{mp}/startDate"),
                    "mobilisation before day 0",
                );
                if let Some(c) = &t.conditioning {
                    self.order(
                        &m.start_date,
                        &c.start_date,
                        &format!("{mp}/startDate"),
                        "mobilisation before conditioning",
                    );
                }
            }
            if let Some(g) = &t.graft_manipulation {
                self.code_in(
                    "engraft-graft-manipulation",
                    g,
                    &format!("{p}/graftManipulation"),
                    "The graft manipulation",
                );
            }
            if let Some(m) = t.cd34_dose.as_mut() {
                self.measure(Quantity::Cd34Dose, m, &format!("{p}/cd34Dose"));
            }
            if let Some(m) = t.tnc_dose.as_mut() {
                self.measure(Quantity::TncDose, m, &format!("{p}/tncDose"));
            }
            let mut regimen = None;
            if let Some(c) = t.conditioning.as_mut() {
                let cp = format!("{p}/conditioning");
                for d in &diagnoses {
                    self.order(
                        &d.diagnosis_date,
                        &c.start_date,
                        &format!("{cp}/startDate"),
                        "diagnosis before conditioning",
                    );
                }
                self.order(
                    &c.start_date,
                    &day0,
                    &format!("{cp}/startDate"),
                    "conditioning before day 0",
                );
                if let Some(e) = &c.end_date {
                    self.order(
                        &c.start_date,
                        e,
                        &format!("{cp}/endDate"),
                        "conditioning start before end",
                    );
                }
                let key = regimen_key(&c.regimen);
                let code = self
                    .term
                    .translate("engraft-regimen-text", &key, &[])
                    .next()
                    .map(|t| t.code.clone());
                if code.is_none() {
                    self.warn(C::RegimenUnmapped, format!("{cp}/regimen"), "The regimen name is not in ConceptMap engraft-regimen-text; it is sent as 'other' with its text.");
                    self.note(format!("{cp}/regimen"), ReportStatus::Defaulted, "Regimen code defaulted to 'other'; the original name is kept in code.text.");
                }
                regimen = Some(code.unwrap_or_else(|| "other".into()));
                if let Some(s) = &c.intensity {
                    self.code_in(
                        "engraft-intensity",
                        s,
                        &format!("{cp}/intensity"),
                        "The intensity",
                    );
                }
                self.drugs(&mut c.drugs, &format!("{cp}/drugs"));
                if let Some(tbi) = &c.tbi {
                    let tp = format!("{cp}/tbi");
                    if !(tbi.dose_gy > 0.0 && tbi.dose_gy <= 16.0) {
                        self.err(
                            C::ImplausibleValue,
                            format!("{tp}/doseGy"),
                            "The TBI dose is outside the plausible range 0-16 Gy.",
                        );
                    }
                    if tbi.fractions == 0 || tbi.fractions > 20 {
                        self.err(
                            C::ImplausibleValue,
                            format!("{tp}/fractions"),
                            "TBI fractions must be 1 to 20.",
                        );
                    }
                    self.order(
                        &tbi.start_date,
                        &day0,
                        &format!("{tp}/startDate"),
                        "TBI before day 0",
                    );
                    if let Some(e) = &tbi.end_date {
                        self.order(
                            &tbi.start_date,
                            e,
                            &format!("{tp}/endDate"),
                            "TBI start before end",
                        );
                    }
                }
            }
            res.regimen.push(regimen);
            if let Some(e) = &t.infusion_end_date {
                self.order(
                    &day0,
                    e,
                    &format!("{p}/infusionEndDate"),
                    "infusion start (day 0) before its end",
                );
            }
            for (j, s) in t.supplemental_infusions.iter().enumerate() {
                let sp = format!("{p}/supplementalInfusions/{j}");
                if !self
                    .term
                    .in_value_set("engraft-supplemental-infusion", &s.kind)
                {
                    self.err(
                        C::UnknownCode,
                        format!("{sp}/kind"),
                        "A supplemental infusion is a boost, top-up or dli.",
                    );
                }
                if let Some(d) = &death {
                    self.order(
                        &s.date,
                        d,
                        &format!("{sp}/date"),
                        "supplemental infusion before death",
                    );
                }
            }
            // Engraftment (edge cases 3, 4, 5).
            if let Some(e) = &t.engraftment {
                for (name, rec) in [("neutrophil", &e.neutrophil), ("platelet", &e.platelet)] {
                    let ep = format!("{p}/engraftment/{name}");
                    match (rec.status, &rec.date) {
                        (RecoveryStatus::Engrafted, None) => self.err(C::EngraftmentDateMissing, format!("{ep}/date"), "An engrafted recovery needs the date of the first of the three qualifying days."),
                        (RecoveryStatus::Engrafted, Some(d)) => {
                            if !d.is_definitely_after(&day0) {
                                self.err(C::DateOrder, format!("{ep}/date"), "Date order violated: recovery after day 0 (counts before the nadir do not count).");
                            } else if d.days_since(&day0).is_some_and(|n| n < 5) {
                                self.warn(C::EngraftmentEarly, format!("{ep}/date"), "A recovery this soon after day 0 may be counted before the nadir.");
                            }
                            if death.as_ref().is_some_and(|x| d.is_definitely_after(x))
                                || next_day0[i].as_ref().is_some_and(|x| d.is_definitely_after(x))
                            {
                                self.err(C::EngraftmentAfterDeath, format!("{ep}/date"), "A recovery is dated after death or after the next transplant.");
                            }
                        }
                        (_, Some(_)) => self.err(C::AbsentValue, format!("{ep}/date"), "Only an engrafted recovery has a date."),
                        (RecoveryStatus::Failure, None) => {
                            let days = if t.stem_cell_source.is_cord() { 42 } else { 30 };
                            let horizon = death.as_ref().unwrap_or(&last_contact);
                            let ok = horizon.naive().zip(day0.naive()).is_some_and(|(h, d)| (h - d).num_days() >= days);
                            if !ok {
                                self.err(C::EngraftmentFailureEarly, format!("{ep}/status"), format!("Graft failure needs follow-up to day +{days}; before that the recovery is not evaluable."));
                            }
                        }
                        _ => {}
                    }
                }
            }
            for (j, c) in t.complications.iter().enumerate() {
                let cp = format!("{p}/complications/{j}");
                self.code_in(
                    "engraft-complication",
                    &c.kind,
                    &format!("{cp}/kind"),
                    "The complication",
                );
                let is_gvhd = matches!(c.kind.as_str(), "acute-gvhd" | "chronic-gvhd");
                if is_gvhd && !t.donor_type.is_allogeneic() {
                    self.warn(
                        C::GvhdAutologous,
                        format!("{cp}/kind"),
                        "GvHD is reported after an autologous transplant; sent as reported.",
                    );
                }
                if let Some(g) = &c.grade {
                    let ok = match c.kind.as_str() {
                        "acute-gvhd" => matches!(g.as_str(), "I" | "II" | "III" | "IV"),
                        "chronic-gvhd" => matches!(
                            g.as_str(),
                            "mild" | "moderate" | "severe" | "limited" | "extensive"
                        ),
                        _ => matches!(g.as_str(), "1" | "2" | "3" | "4" | "5"),
                    };
                    if !ok {
                        self.err(C::UnknownCode, format!("{cp}/grade"), "The grade does not fit the complication (acute GvHD I-IV, chronic GvHD NIH or legacy, else CTCAE 1-5).");
                    }
                }
                for (k, o) in c.organs.iter().enumerate() {
                    self.code_in("engraft-organ", o, &format!("{cp}/organs/{k}"), "The organ");
                }
                for (k, sc) in c.codes.iter().enumerate() {
                    self.source_code(sc, &format!("{cp}/codes/{k}"));
                }
                let first = t
                    .mobilisation
                    .as_ref()
                    .map(|m| &m.start_date)
                    .or(t.conditioning.as_ref().map(|c| &c.start_date))
                    .unwrap_or(&day0);
                self.order(
                    first,
                    &c.onset_date,
                    &format!("{cp}/onsetDate"),
                    "complication onset after the transplant course began",
                );
                if let Some(rd) = &c.resolved_date {
                    self.order(
                        &c.onset_date,
                        rd,
                        &format!("{cp}/resolvedDate"),
                        "complication onset before resolution",
                    );
                }
            }
            // The diagnosis valid at day 0 (edge case 26).
            let valid = diagnoses.iter().position(|d| {
                !d.diagnosis_date.is_definitely_after(&day0)
                    && d.revision
                        .as_ref()
                        .is_none_or(|rv| rv.date.is_definitely_after(&day0))
            });
            res.reason_diagnosis.push(valid.unwrap_or(0));
            if valid.is_none() && !diagnoses.is_empty() {
                self.warn(
                    C::DiagnosisMissing,
                    format!("{p}/infusionDate"),
                    "No diagnosis is valid at day 0; the first diagnosis is named as the reason.",
                );
            }
            // Age at HSCT (edge case 32).
            let age = match (birth.whole_years_until(&day0), t.stated_age_years) {
                (Some(a), _) => Some((a, true)),
                (None, Some(a)) => Some((a, false)),
                (None, None) => {
                    self.note(
                        format!("{p}/statedAgeYears"),
                        ReportStatus::NotMapped,
                        "Age at HSCT: the birth date is too partial and no stated age was given.",
                    );
                    None
                }
            };
            if age.is_some_and(|(_, derived)| derived) {
                self.note(
                    format!("{p}/infusionDate"),
                    ReportStatus::Derived,
                    "Age at HSCT computed from birth date and day 0.",
                );
            }
            res.age_at_hsct.push(age);
        }
    }

    fn baseline(
        &mut self,
        b: &mut Baseline,
        birth: &RecordDate,
        first_day0: Option<&RecordDate>,
        diagnoses: &[Diagnosis],
        res: &mut Resolved,
    ) {
        if let Some(d0) = first_day0 {
            self.order(
                &b.date,
                d0,
                "/baseline/date",
                "baseline assessment before the first HSCT",
            );
        }
        if let Some(perf) = &b.performance {
            let (max, step) = match perf.scale {
                PerformanceScale::Karnofsky | PerformanceScale::Lansky => (100, 10),
                PerformanceScale::Ecog => (5, 1),
            };
            if perf.value > max {
                self.err(
                    C::ScaleRange,
                    "/baseline/performance/value",
                    format!("The performance score is outside 0-{max}."),
                );
            } else if perf.value % step != 0 {
                self.err(
                    C::ScaleStep,
                    "/baseline/performance/value",
                    format!("The performance score moves in steps of {step}."),
                );
            }
            if let Some(age) = birth.whole_years_until(&b.date) {
                match perf.scale {
                    PerformanceScale::Lansky if age >= 16 => self.warn(
                        C::PerformanceAge,
                        "/baseline/performance/scale",
                        "Lansky is for patients under 16; this patient is 16 or older.",
                    ),
                    PerformanceScale::Karnofsky if age < 16 => self.warn(
                        C::PerformanceAge,
                        "/baseline/performance/scale",
                        "Karnofsky is for patients 16 or older; use Lansky under 16.",
                    ),
                    _ => {}
                }
            }
        }
        if b.hct_ci.is_some_and(|v| v > 30) {
            self.err(
                C::ScaleRange,
                "/baseline/hctCi",
                "The HCT-CI is outside 0-30.",
            );
        }
        let w = match b.weight.as_mut() {
            Some(m) => self
                .measure(Quantity::Weight, m, "/baseline/weight")
                .then_some(m.value),
            None => None,
        };
        let h = match b.height.as_mut() {
            Some(m) => self
                .measure(Quantity::Height, m, "/baseline/height")
                .then_some(m.value),
            None => None,
        };
        // BSA only when both are present (edge case 20).
        if let (Some(w), Some(h)) = (w, h) {
            res.bsa = Some(units::bsa_mosteller(w, h));
            self.note(
                "/baseline",
                ReportStatus::Derived,
                "Body surface area computed by Mosteller from weight and height.",
            );
        }
        let ctx = disease_context(diagnoses, self.term);
        for (i, s) in b.scores.iter().enumerate() {
            self.score(s, &format!("/baseline/scores/{i}"), &ctx);
        }
        for (i, l) in b.labs.iter_mut().enumerate() {
            self.lab(l, &format!("/baseline/labs/{i}"));
        }
    }

    fn score(&mut self, s: &Score, p: &str, diseases: &[&'static str]) {
        if s.scale == "das28" {
            self.err(
                C::ScaleVariant,
                format!("{p}/scale"),
                "DAS28 needs its variant: das28-esr or das28-crp.",
            );
            return;
        }
        if !self.code_in(
            "engraft-scale",
            &s.scale,
            &format!("{p}/scale"),
            "The scale",
        ) {
            return;
        }
        if s.scale == "cdai"
            && !diseases
                .iter()
                .any(|d| matches!(*d, "rheumatoid-arthritis" | "crohns-disease"))
        {
            self.err(C::ScaleVariant, format!("{p}/scale"), "CDAI is ambiguous without rheumatoid arthritis or Crohn's disease in the record; use crohn-cdai or record the disease.");
        }
        match (s.value, s.absent_reason) {
            (Some(_), Some(_)) | (None, None) => {
                self.err(
                    C::AbsentValue,
                    format!("{p}/value"),
                    "Give either a value or an absent reason.",
                );
            }
            (None, Some(_)) => {}
            (Some(v), None) => {
                let c = self
                    .term
                    .concept("engraft-scale", &s.scale)
                    .expect("checked above");
                let (min, max) = (
                    c.decimal("min").unwrap_or(f64::MIN),
                    c.decimal("max").unwrap_or(f64::MAX),
                );
                if !v.is_finite() || v < min || v > max {
                    self.err(
                        C::ScaleRange,
                        format!("{p}/value"),
                        format!("The score is outside the scale's range {min}-{max}."),
                    );
                    return;
                }
                let excluded = c
                    .text("excluded")
                    .map(|x| {
                        x.split(',')
                            .filter_map(|t| t.trim().parse::<f64>().ok())
                            .any(|e| (e - v).abs() < 1e-9)
                    })
                    .unwrap_or(false);
                let off_step = c.decimal("step").is_some_and(|st| {
                    let k = (v - min) / st;
                    (k - k.round()).abs() > 1e-9
                });
                let non_int = c.boolean("integer") == Some(true) && v.fract() != 0.0;
                if excluded || off_step || non_int {
                    self.err(
                        C::ScaleStep,
                        format!("{p}/value"),
                        "The score is not one of the scale's valid values.",
                    );
                }
            }
        }
    }

    fn lab(&mut self, l: &mut Lab, p: &str) {
        if !self.code_in("engraft-lab", &l.test, &format!("{p}/test"), "The test") {
            return;
        }
        let mut m = Measure {
            value: l.value,
            unit: l.unit.clone(),
        };
        let test = l.test.clone();
        if self.measure(Quantity::Lab(&test), &mut m, p) {
            l.value = m.value;
            l.unit = m.unit;
        }
    }

    fn follow_ups(&mut self, r: &mut Record, res: &mut Resolved) {
        let ctx = disease_context(&r.diagnoses, self.term);
        let day0s: Vec<(u32, RecordDate)> = r
            .transplants
            .iter()
            .map(|t| (t.number, t.infusion_date.clone()))
            .collect();
        let mut seen: HashMap<(usize, String), Vec<(usize, i64)>> = HashMap::new();
        for (i, f) in r.follow_ups.iter_mut().enumerate() {
            let p = format!("/followUps/{i}");
            let tx = match f.transplant {
                Some(n) => match day0s.iter().position(|(num, _)| *num == n) {
                    Some(ix) => ix,
                    None => {
                        self.err(
                            C::TransplantReference,
                            format!("{p}/transplant"),
                            "The follow-up names a transplant number the record does not have.",
                        );
                        0
                    }
                },
                None => day0s
                    .iter()
                    .rposition(|(_, d)| !d.is_definitely_after(&f.date))
                    .unwrap_or(0),
            };
            res.followup_transplant.push(tx);
            res.followup_time_point.push(f.time_point.clone());
            if let Some((_, d0)) = day0s.get(tx) {
                self.order(
                    d0,
                    &f.date,
                    &format!("{p}/date"),
                    "follow-up after the day 0 it counts from",
                );
                if self.code_in(
                    "engraft-time-point",
                    &f.time_point,
                    &format!("{p}/timePoint"),
                    "The time point",
                ) {
                    let c = self
                        .term
                        .concept("engraft-time-point", &f.time_point)
                        .expect("checked");
                    if let (Some(target), Some(window), Some(days)) = (
                        c.integer("targetDay"),
                        c.integer("windowDays"),
                        f.date.days_since(d0),
                    ) {
                        if (days - target).abs() > window {
                            self.warn(C::TimePointWindow, format!("{p}/date"), format!("The assessment is outside the window of its time point (day {target} +/- {window}); the real date is sent."));
                        }
                        seen.entry((tx, f.time_point.clone()))
                            .or_default()
                            .push((i, (days - target).abs()));
                    }
                }
            }
            for (j, s) in f.scores.iter().enumerate() {
                self.score(s, &format!("{p}/scores/{j}"), &ctx);
            }
            for (j, l) in f.labs.iter_mut().enumerate() {
                self.lab(l, &format!("{p}/labs/{j}"));
            }
            if let Some(resp) = &f.response {
                self.code_in(
                    "engraft-response",
                    resp,
                    &format!("{p}/response"),
                    "The response",
                );
            }
            for (j, e) in f.events.iter().enumerate() {
                let ep = format!("{p}/events/{j}");
                if !matches!(
                    e.kind.as_str(),
                    "relapse" | "progression" | "pseudo-relapse" | "secondary-autoimmunity-flare"
                ) {
                    self.err(C::UnknownCode, format!("{ep}/kind"), "An event is relapse, progression, pseudo-relapse or secondary-autoimmunity-flare.");
                }
                self.order(
                    &e.date,
                    &f.date,
                    &format!("{ep}/date"),
                    "event on or before the visit that reports it",
                );
                if let Some((_, d0)) = day0s.get(tx) {
                    self.order(d0, &e.date, &format!("{ep}/date"), "event after day 0");
                }
            }
            for (j, t) in f.therapy_restarts.iter().enumerate() {
                let tp = format!("{p}/therapyRestarts/{j}");
                self.drug_code(&t.agent, &format!("{tp}/agent"));
                if let Some((_, d0)) = day0s.get(tx) {
                    self.order(
                        d0,
                        &t.start_date,
                        &format!("{tp}/startDate"),
                        "therapy restart after day 0",
                    );
                }
            }
        }
        // Several assessments in one window: the one closest to the target keeps the time
        // point, the others are sent as unscheduled (edge case 30).
        let mut groups: Vec<_> = seen.into_iter().filter(|(_, v)| v.len() > 1).collect();
        groups.sort_by_key(|(k, _)| k.clone());
        for ((_, tp), mut v) in groups {
            if tp == "unscheduled" {
                continue;
            }
            v.sort_by_key(|(i, dist)| (*dist, *i));
            for (i, _) in v.into_iter().skip(1) {
                res.followup_time_point[i] = "unscheduled".into();
                self.note(format!("/followUps/{i}/timePoint"), ReportStatus::Defaulted, "Another assessment is closer to this time point's target day; this one is sent as unscheduled.");
            }
        }
    }

    fn vital_status(&mut self, r: &Record) {
        let v = &r.vital_status;
        match (v.status, &v.death_date) {
            (Vital::Dead, None) => self.err(
                C::MissingMandatory,
                "/vitalStatus/deathDate",
                "A dead patient needs a death date.",
            ),
            (Vital::Alive | Vital::Unknown, Some(_)) => self.err(
                C::VitalStatusConflict,
                "/vitalStatus/deathDate",
                "A death date is given but the vital status is not dead (edge case 12).",
            ),
            (Vital::Dead, Some(d)) if v.last_contact_date.is_definitely_after(d) => self.err(
                C::VitalStatusConflict,
                "/vitalStatus/lastContactDate",
                "The last contact is after the death date (edge case 12).",
            ),
            _ => {}
        }
        if let Some(c) = &v.cause_of_death {
            if v.status != Vital::Dead {
                self.err(
                    C::VitalStatusConflict,
                    "/vitalStatus/causeOfDeath",
                    "A cause of death is given but the vital status is not dead.",
                );
            }
            self.code_in(
                "engraft-cause-of-death",
                c,
                "/vitalStatus/causeOfDeath",
                "The cause of death",
            );
        }
        for (i, f) in r.follow_ups.iter().enumerate() {
            self.order(
                &f.date,
                &v.last_contact_date,
                &format!("/followUps/{i}/date"),
                "follow-up on or before the last contact",
            );
        }
        for (i, t) in r.transplants.iter().enumerate() {
            self.order(
                &t.infusion_date,
                &v.last_contact_date,
                &format!("/transplants/{i}/infusionDate"),
                "day 0 on or before the last contact",
            );
        }
    }

    /// EDSS 10 means death due to MS (edge case 13).
    fn edss_vs_death(&mut self, r: &Record) {
        let v = &r.vital_status;
        let mut any_ten = false;
        for (i, f) in r.follow_ups.iter().enumerate() {
            for (j, s) in f.scores.iter().enumerate() {
                if s.scale == "edss" && s.value == Some(10.0) {
                    any_ten = true;
                    let when = s.date.as_ref().unwrap_or(&f.date);
                    let consistent = v.status == Vital::Dead
                        && v.death_date
                            .as_ref()
                            .is_some_and(|d| d.definite_cmp(when).is_eq());
                    if !consistent {
                        self.err(C::EdssDeathConflict, format!("/followUps/{i}/scores/{j}/value"), "EDSS 10 means death due to MS, but the patient is not recorded as dead on that date.");
                    }
                }
            }
        }
        let ms_like = r.diagnoses.iter().any(|d| {
            self.term
                .is_a("engraft-disease", &d.disease, "multiple-sclerosis")
                || d.disease == "nmosd"
        });
        if v.status == Vital::Dead
            && v.cause_of_death.as_deref() == Some("primary-disease")
            && ms_like
            && !any_ten
        {
            self.warn(
                C::EdssDeathConflict,
                "/vitalStatus/causeOfDeath",
                "Death due to MS is recorded without a final EDSS of 10.",
            );
        }
    }

    /// Rules over every date: death last, dropped times, estimated-date pointers. Pointers are
    /// only built for dates that have a problem.
    fn dates_everywhere(&mut self, r: &Record, res: &mut Resolved) {
        let death = r.vital_status.death_date.as_ref();
        let last_contact = &r.vital_status.last_contact_date;
        let mut found: Vec<(String, bool, bool)> = Vec::new();
        visit_dates(r, &mut |ptr, d| {
            let dropped = d.time_dropped();
            let after_death = death.is_some_and(|dd| {
                !std::ptr::eq(d, dd) && !std::ptr::eq(d, last_contact) && d.is_definitely_after(dd)
            });
            if dropped || after_death {
                found.push((ptr(), dropped, after_death));
            }
        });
        for (ptr, dropped, after_death) in found {
            if dropped {
                self.warn(C::TimeWithoutZone, ptr.clone(), "A time of day without a zone was dropped; only the date is sent (edge case 31).");
            }
            if after_death {
                self.err(
                    C::DateOrder,
                    ptr,
                    "Date order violated: nothing may follow death.",
                );
            }
        }
        if !r.estimated_dates.is_empty() {
            let mut all = Vec::new();
            visit_dates(r, &mut |ptr, _| all.push(ptr()));
            for (i, p) in r.estimated_dates.iter().enumerate() {
                if all.contains(p) {
                    res.estimated.insert(p.clone());
                } else {
                    self.err(
                        C::Structure,
                        format!("/estimatedDates/{i}"),
                        "An estimated-date pointer does not point at a date of this record.",
                    );
                }
            }
        }
    }
}

/// Calls `f` with every date of the record and a closure that builds its JSON pointer.
pub fn visit_dates<'r>(r: &'r Record, visit: &mut dyn FnMut(&dyn Fn() -> String, &'r RecordDate)) {
    visit(
        &|| String::from("/patient/birthDate"),
        &r.patient.birth_date,
    );
    if let Some(d) = &r.consent.date {
        visit(&|| String::from("/consent/date"), d);
    }
    for (i, d) in r.diagnoses.iter().enumerate() {
        if let Some(o) = &d.onset_date {
            visit(&|| format!("/diagnoses/{i}/onsetDate"), o);
        }
        visit(
            &|| format!("/diagnoses/{i}/diagnosisDate"),
            &d.diagnosis_date,
        );
        if let Some(rv) = &d.revision {
            visit(&|| format!("/diagnoses/{i}/revision/date"), &rv.date);
        }
    }
    for (i, t) in r.prior_therapies.iter().enumerate() {
        if let Some(d) = &t.start_date {
            visit(&|| format!("/priorTherapies/{i}/startDate"), d);
        }
        if let Some(d) = &t.stop_date {
            visit(&|| format!("/priorTherapies/{i}/stopDate"), d);
        }
    }
    if let Some(b) = &r.baseline {
        visit(&|| String::from("/baseline/date"), &b.date);
    }
    for (i, t) in r.transplants.iter().enumerate() {
        let p = format!("/transplants/{i}");
        if let Some(m) = &t.mobilisation {
            visit(&|| format!("{p}/mobilisation/startDate"), &m.start_date);
            for (j, d) in m.drugs.iter().enumerate() {
                visit(
                    &|| format!("{p}/mobilisation/drugs/{j}/startDate"),
                    &d.start_date,
                );
                if let Some(e) = &d.end_date {
                    visit(&|| format!("{p}/mobilisation/drugs/{j}/endDate"), e);
                }
            }
            for (j, a) in m.aphereses.iter().enumerate() {
                visit(&|| format!("{p}/mobilisation/aphereses/{j}/date"), &a.date);
            }
        }
        if let Some(c) = &t.conditioning {
            visit(&|| format!("{p}/conditioning/startDate"), &c.start_date);
            if let Some(e) = &c.end_date {
                visit(&|| format!("{p}/conditioning/endDate"), e);
            }
            for (j, d) in c.drugs.iter().enumerate() {
                visit(
                    &|| format!("{p}/conditioning/drugs/{j}/startDate"),
                    &d.start_date,
                );
                if let Some(e) = &d.end_date {
                    visit(&|| format!("{p}/conditioning/drugs/{j}/endDate"), e);
                }
            }
            if let Some(tbi) = &c.tbi {
                visit(
                    &|| format!("{p}/conditioning/tbi/startDate"),
                    &tbi.start_date,
                );
                if let Some(e) = &tbi.end_date {
                    visit(&|| format!("{p}/conditioning/tbi/endDate"), e);
                }
            }
        }
        visit(&|| format!("{p}/infusionDate"), &t.infusion_date);
        if let Some(e) = &t.infusion_end_date {
            visit(&|| format!("{p}/infusionEndDate"), e);
        }
        for (j, s) in t.supplemental_infusions.iter().enumerate() {
            visit(&|| format!("{p}/supplementalInfusions/{j}/date"), &s.date);
        }
        if let Some(e) = &t.engraftment {
            if let Some(d) = &e.neutrophil.date {
                visit(&|| format!("{p}/engraftment/neutrophil/date"), d);
            }
            if let Some(d) = &e.platelet.date {
                visit(&|| format!("{p}/engraftment/platelet/date"), d);
            }
        }
        for (j, c) in t.complications.iter().enumerate() {
            visit(
                &|| format!("{p}/complications/{j}/onsetDate"),
                &c.onset_date,
            );
            if let Some(d) = &c.resolved_date {
                visit(&|| format!("{p}/complications/{j}/resolvedDate"), d);
            }
        }
    }
    for (i, f) in r.follow_ups.iter().enumerate() {
        visit(&|| format!("/followUps/{i}/date"), &f.date);
        for (j, s) in f.scores.iter().enumerate() {
            if let Some(d) = &s.date {
                visit(&|| format!("/followUps/{i}/scores/{j}/date"), d);
            }
        }
        for (j, e) in f.events.iter().enumerate() {
            visit(&|| format!("/followUps/{i}/events/{j}/date"), &e.date);
        }
        for (j, t) in f.therapy_restarts.iter().enumerate() {
            visit(
                &|| format!("/followUps/{i}/therapyRestarts/{j}/startDate"),
                &t.start_date,
            );
        }
    }
    visit(
        &|| String::from("/vitalStatus/lastContactDate"),
        &r.vital_status.last_contact_date,
    );
    if let Some(d) = &r.vital_status.death_date {
        visit(&|| String::from("/vitalStatus/deathDate"), d);
    }
}

/// The top-level diseases of the record (`rheumatoid-arthritis`, `crohns-disease`...).
fn disease_context(diagnoses: &[Diagnosis], term: &Terminology) -> Vec<&'static str> {
    const ROOTS: &[&str] = &[
        "rheumatoid-arthritis",
        "crohns-disease",
        "multiple-sclerosis",
        "nmosd",
        "systemic-sclerosis",
        "sle",
    ];
    ROOTS
        .iter()
        .copied()
        .filter(|root| {
            diagnoses
                .iter()
                .any(|d| term.is_a("engraft-disease", &d.disease, root))
        })
        .collect()
}

/// The key a free-text regimen name is looked up by: upper case, letters and digits only.
pub fn regimen_key(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `10/10` -> (10, 10): matched loci over typed loci.
pub fn parse_hla(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('/')?;
    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (b > 0 && a <= b && b <= 12).then_some((a, b))
}

/// ICD-10 shape: letter, two characters, optionally a dot and up to `max_ext` characters.
fn icd10_shape(code: &str, max_ext: usize) -> bool {
    let (cat, ext) = match code.split_once('.') {
        Some((c, e)) => (c, Some(e)),
        None => (code, None),
    };
    let b = cat.as_bytes();
    b.len() == 3
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_digit()
        && b[2].is_ascii_alphanumeric()
        && ext.is_none_or(|e| {
            !e.is_empty()
                && e.len() <= max_ext
                && e.bytes()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regimen_names_normalise_to_one_key() {
        assert_eq!(regimen_key("BEAM/ATG"), "BEAMATG");
        assert_eq!(regimen_key("Cy/ATG/Ritux"), "CYATGRITUX");
        assert_eq!(regimen_key("CY200+rATG"), "CY200RATG");
    }

    #[test]
    fn hla_match_is_matched_over_typed() {
        assert_eq!(parse_hla("9/10"), Some((9, 10)));
        assert_eq!(parse_hla("11/10"), None);
        assert_eq!(parse_hla("full"), None);
    }

    #[test]
    fn icd10_shapes() {
        assert!(icd10_shape("G35.A", 4));
        assert!(icd10_shape("M34.81", 4));
        assert!(!icd10_shape("M34.81", 1));
        assert!(icd10_shape("G35", 1));
        assert!(!icd10_shape("35.1", 4));
    }
}
