//! FHIR back to the registry record: what an EHR resource, accepted by a person from the
//! review queue, changes in a registry record. Pure, in two steps:
//!
//! - [`read`] says what the resource states in the record's vocabulary (a [`Finding`]): a
//!   laboratory value, a disease score, a performance status, a disease event, a complication,
//!   or a diagnosis or transplant the record should already hold. Codes come back through
//!   Engraft's ConceptMaps (`equivalent` targets only, see [`Terminology::reverse`]).
//! - [`apply`] places the finding in a record and says where, as JSON Patch operations
//!   (RFC 6902) on the record: into the follow-up or baseline assessment of the same day, or
//!   into a new `unscheduled` follow-up. The result goes through the same checks, mapping and
//!   validation as any record a client sends.
//!
//! What the record cannot hold without a guess is [`NotApplicable`], with a reason a data
//! manager can act on; it is never forced in. Messages name no patient values.

use serde_json::{json, Value};

use crate::record::model::{
    Baseline, Complication, DiseaseEvent, FollowUp, Lab, Performance, PerformanceScale, Record,
    Score, SourceCode, Vital,
};
use crate::record::RecordDate;
use crate::terminology::{cs, Terminology, ICD10, ICD10CM, SNOMED, UCUM};

/// What an EHR resource states, in the record's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// A laboratory value on a day.
    Lab { date: RecordDate, lab: Lab },
    /// A disease score or organ function value on a day.
    Score { date: RecordDate, score: Score },
    /// A performance status (the registry keeps it at baseline).
    Performance {
        date: RecordDate,
        performance: Performance,
    },
    /// Relapse, progression, pseudo-relapse or a flare, as the EHR classified it.
    Event(DiseaseEvent),
    /// A complication after a transplant.
    Complication(Complication),
    /// An autoimmune disease: the record should already list it as an indication.
    Diagnosis { disease: String },
    /// A stem cell transplant on a day: the record should already hold it.
    Transplant { date: RecordDate },
}

/// Why a resource cannot change the record. `code` is stable; `message` says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotApplicable {
    pub code: &'static str,
    pub message: &'static str,
}

const fn na(code: &'static str, message: &'static str) -> NotApplicable {
    NotApplicable { code, message }
}

/// The record as changed, or why it stays.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The record already says this; nothing changes.
    AlreadyThere,
    /// The next version of the record, and the change as JSON Patch operations.
    Changed {
        record: Box<Record>,
        patch: Vec<Value>,
    },
}

const EVENTS: [&str; 4] = [
    "relapse",
    "progression",
    "pseudo-relapse",
    "secondary-autoimmunity-flare",
];

/// The (system, code) pairs of `resource.code`.
fn codings(resource: &Value) -> impl Iterator<Item = (&str, &str, &Value)> {
    resource["code"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["system"].as_str()?, c["code"].as_str()?, c)))
}

/// The first coding that is a code of Engraft CodeSystem `local` or translates back to one
/// through ConceptMap `map`.
fn back(term: &Terminology, resource: &Value, local: &str, map: &str) -> Option<String> {
    let own = cs(local);
    codings(resource).find_map(|(system, code, _)| {
        if system == own {
            return term.concept(local, code).map(|_| code.to_string());
        }
        term.reverse(map, local, system, code).map(str::to_string)
    })
}

/// A day from a FHIR date or dateTime (the time of day is not kept: the registry records days).
fn day(v: &Value) -> Option<RecordDate> {
    let s = v.as_str()?;
    RecordDate::parse(&s[..s.find('T').unwrap_or(s.len())]).ok()
}

fn first_day(r: &Value, paths: &[(&str, Option<&str>)]) -> Option<RecordDate> {
    paths.iter().find_map(|(a, b)| match b {
        Some(b) => day(&r[*a][*b]),
        None => day(&r[*a]),
    })
}

/// What `resource` (an EHR Observation, Condition or Procedure) states.
pub fn read(term: &Terminology, resource: &Value) -> Result<Finding, NotApplicable> {
    match resource["resourceType"].as_str() {
        Some("Observation") => observation(term, resource),
        Some("Condition") => condition(term, resource),
        Some("Procedure") => procedure(term, resource),
        _ => Err(na(
            "unsupported-type",
            "Only Observations, Conditions and Procedures map back onto a registry record.",
        )),
    }
}

fn observation(term: &Terminology, r: &Value) -> Result<Finding, NotApplicable> {
    if !matches!(
        r["status"].as_str(),
        Some("final" | "amended" | "corrected")
    ) {
        return Err(na(
            "not-final",
            "The Observation is not final (or was entered in error); accept it once the EHR has a final result.",
        ));
    }
    let date = first_day(
        r,
        &[
            ("effectiveDateTime", None),
            ("effectivePeriod", Some("start")),
            ("effectiveInstant", None),
        ],
    )
    .ok_or(na(
        "no-date",
        "The Observation has no effective date, so it cannot be placed at a visit.",
    ))?;
    let quantity = || -> Result<(f64, Option<String>), NotApplicable> {
        let q = &r["valueQuantity"];
        let value = q["value"]
            .as_f64()
            .or_else(|| r["valueInteger"].as_f64())
            .ok_or(na(
                "no-value",
                "The Observation has no numeric value (valueQuantity or valueInteger).",
            ))?;
        let unit = match (q["system"].as_str(), q["code"].as_str()) {
            (Some(UCUM), Some(c)) => Some(c.to_string()),
            _ => q["unit"].as_str().map(str::to_string),
        };
        Ok((value, unit))
    };
    if let Some(test) = back(term, r, "engraft-lab", "engraft-lab-to-code") {
        let (value, unit) = quantity()?;
        let unit = unit.ok_or(na(
            "no-unit",
            "The laboratory value has no unit; the registry keeps every value with its unit.",
        ))?;
        return Ok(Finding::Lab {
            date,
            lab: Lab {
                test,
                value,
                unit,
                date: None,
            },
        });
    }
    if let Some(scale) = back(term, r, "engraft-scale", "engraft-scale-to-code") {
        let (value, _) = quantity()?;
        return Ok(Finding::Score {
            date,
            score: Score {
                scale,
                value: Some(value),
                absent_reason: None,
                date: None,
            },
        });
    }
    let performance = codings(r).find_map(|(system, code, _)| {
        term.reverse(
            "engraft-performance-to-code",
            "engraft-observation",
            system,
            code,
        )
    });
    if let Some(p) = performance {
        let scale = match p {
            "karnofsky" => PerformanceScale::Karnofsky,
            "lansky" => PerformanceScale::Lansky,
            _ => PerformanceScale::Ecog,
        };
        let (value, _) = quantity()?;
        if value < 0.0 || value.fract() != 0.0 || value > u32::MAX as f64 {
            return Err(na(
                "not-a-score",
                "A performance status is a whole number; the EHR's value is not.",
            ));
        }
        return Ok(Finding::Performance {
            date,
            performance: Performance {
                scale,
                value: value as u32,
            },
        });
    }
    let event = codings(r).find_map(|(system, code, _)| {
        (system == cs("engraft-observation") && EVENTS.contains(&code)).then(|| code.to_string())
    });
    if let Some(kind) = event {
        if r["valueBoolean"].as_bool() == Some(false) {
            return Err(na(
                "negative",
                "The Observation states that the event did not happen; the registry records events that did.",
            ));
        }
        return Ok(Finding::Event(DiseaseEvent { kind, date }));
    }
    Err(na(
        "no-reverse-mapping",
        "Engraft has no way to place this Observation's code in a registry record; enter it by hand.",
    ))
}

fn condition(term: &Terminology, r: &Value) -> Result<Finding, NotApplicable> {
    let status = |field: &str| {
        r[field]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["code"].as_str())
            .any(|c| matches!(c, "entered-in-error" | "refuted"))
    };
    if status("verificationStatus") {
        return Err(na(
            "refuted",
            "The EHR marks this Condition refuted or entered in error.",
        ));
    }
    if let Some(disease) = back(term, r, "engraft-disease", "engraft-disease-to-standard") {
        return Ok(Finding::Diagnosis { disease });
    }
    let Some(kind) = back(
        term,
        r,
        "engraft-complication",
        "engraft-complication-to-standard",
    ) else {
        return Err(na(
            "no-reverse-mapping",
            "Engraft has no way to place this Condition's code in a registry record; enter it by hand.",
        ));
    };
    let onset = first_day(
        r,
        &[
            ("onsetDateTime", None),
            ("onsetPeriod", Some("start")),
            ("recordedDate", None),
        ],
    )
    .ok_or(na(
        "no-date",
        "The Condition has no onset or recorded date, so it cannot be placed after a transplant.",
    ))?;
    let resolved = first_day(
        r,
        &[
            ("abatementDateTime", None),
            ("abatementPeriod", Some("end")),
        ],
    );
    let codes = codings(r)
        .filter_map(|(system, code, c)| {
            let system = match system {
                ICD10CM => "icd-10-cm",
                ICD10 => "icd-10",
                SNOMED => "snomed",
                _ => return None,
            };
            Some(SourceCode {
                system: system.into(),
                version: c["version"].as_str().map(str::to_string),
                code: code.into(),
            })
        })
        .collect();
    Ok(Finding::Complication(Complication {
        kind,
        onset_date: onset,
        resolved_date: resolved,
        grade: None,
        organism: None,
        organs: Vec::new(),
        codes,
    }))
}

fn procedure(term: &Terminology, r: &Value) -> Result<Finding, NotApplicable> {
    let hsct = codings(r).any(|(system, code, _)| {
        system == SNOMED && term.is_target("engraft-transplant-to-snomed", system, code)
    });
    if !hsct {
        return Err(na(
            "no-reverse-mapping",
            "Engraft has no way to place this Procedure in a registry record; enter it by hand.",
        ));
    }
    let date = first_day(
        r,
        &[
            ("performedDateTime", None),
            ("performedPeriod", Some("start")),
        ],
    )
    .ok_or(na(
        "no-date",
        "The Procedure has no performed date, so it cannot be matched to a transplant.",
    ))?;
    Ok(Finding::Transplant { date })
}

/// The same calendar day.
fn same_day(a: &RecordDate, b: &RecordDate) -> bool {
    a.fhir_date() == b.fhir_date()
}

const PREDATES_DAY0: NotApplicable = na(
    "before-transplant",
    "The resource predates day 0 and no baseline assessment of that day is in the record; enter it by hand.",
);

/// Where a finding dated `date` goes: an assessment of the same day, or a new one.
enum Visit {
    Baseline,
    NewBaseline,
    FollowUp(usize),
    /// A new follow-up at this index of `followUps` (date order).
    NewFollowUp(usize),
}

fn visit(rec: &Record, date: &RecordDate, baseline_allowed: bool) -> Result<Visit, NotApplicable> {
    if let Some(i) = rec.follow_ups.iter().position(|f| same_day(&f.date, date)) {
        return Ok(Visit::FollowUp(i));
    }
    let before_day0 = rec
        .transplants
        .first()
        .is_some_and(|t| t.infusion_date.is_definitely_after(date));
    if baseline_allowed {
        match &rec.baseline {
            Some(b) if same_day(&b.date, date) => return Ok(Visit::Baseline),
            None if before_day0 => return Ok(Visit::NewBaseline),
            _ => {}
        }
    }
    if before_day0 {
        return Err(PREDATES_DAY0);
    }
    let at = rec
        .follow_ups
        .iter()
        .position(|f| f.date.is_definitely_after(date))
        .unwrap_or(rec.follow_ups.len());
    Ok(Visit::NewFollowUp(at))
}

fn to_value<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap_or(Value::Null)
}

/// Places `finding` in `rec`.
pub fn apply(
    term: &Terminology,
    rec: &Record,
    finding: &Finding,
) -> Result<Applied, NotApplicable> {
    let mut next = rec.clone();
    let mut patch = Vec::new();
    let date = match finding {
        Finding::Lab { date, lab } => {
            if !put(&mut next, date, lab, &mut patch)? {
                return Ok(Applied::AlreadyThere);
            }
            date.clone()
        }
        Finding::Score { date, score } => {
            if !put(&mut next, date, score, &mut patch)? {
                return Ok(Applied::AlreadyThere);
            }
            date.clone()
        }
        Finding::Performance { date, performance } => {
            match visit(rec, date, true)? {
                Visit::Baseline => {
                    let b = next.baseline.as_mut().expect("baseline found");
                    if b.performance.as_ref() == Some(performance) {
                        return Ok(Applied::AlreadyThere);
                    }
                    let op = if b.performance.is_some() { "replace" } else { "add" };
                    b.performance = Some(performance.clone());
                    patch.push(json!({"op": op, "path": "/baseline/performance", "value": to_value(performance)}));
                }
                Visit::NewBaseline => {
                    let b = Baseline {
                        performance: Some(performance.clone()),
                        ..empty_baseline(date)
                    };
                    patch.push(json!({"op": "add", "path": "/baseline", "value": to_value(&b)}));
                    next.baseline = Some(b);
                }
                Visit::FollowUp(_) | Visit::NewFollowUp(_) => {
                    return Err(na(
                        "performance-after-baseline",
                        "The registry keeps performance status at the baseline assessment only; this one is from a later visit.",
                    ))
                }
            }
            date.clone()
        }
        Finding::Event(event) => {
            let date = &event.date;
            match visit(rec, date, false)? {
                Visit::FollowUp(i) => {
                    let f = &mut next.follow_ups[i];
                    if f.events
                        .iter()
                        .any(|e| e.kind == event.kind && same_day(&e.date, date))
                    {
                        return Ok(Applied::AlreadyThere);
                    }
                    f.events.push(event.clone());
                    patch.push(json!({"op": "add", "path": format!("/followUps/{i}/events/-"), "value": to_value(event)}));
                }
                Visit::NewFollowUp(at) => {
                    let f = FollowUp {
                        events: vec![event.clone()],
                        ..unscheduled(date)
                    };
                    patch.push(json!({"op": "add", "path": format!("/followUps/{at}"), "value": to_value(&f)}));
                    next.follow_ups.insert(at, f);
                }
                // Not offered when the baseline is not allowed; said as what it would mean.
                Visit::Baseline | Visit::NewBaseline => return Err(PREDATES_DAY0),
            }
            date.clone()
        }
        Finding::Complication(c) => {
            let Some(tx) = rec
                .transplants
                .iter()
                .rposition(|t| !t.infusion_date.is_definitely_after(&c.onset_date))
            else {
                return Err(na(
                    "before-transplant",
                    "The complication began before the first transplant; the registry records complications after day 0.",
                ));
            };
            let list = &mut next.transplants[tx].complications;
            match list
                .iter()
                .position(|x| x.kind == c.kind && same_day(&x.onset_date, &c.onset_date))
            {
                Some(k) => {
                    let held = &mut list[k];
                    match &c.resolved_date {
                        Some(r) if held.resolved_date.as_ref().is_none_or(|h| !same_day(h, r)) => {
                            let op = if held.resolved_date.is_some() {
                                "replace"
                            } else {
                                "add"
                            };
                            held.resolved_date = Some(r.clone());
                            patch.push(json!({"op": op, "path": format!("/transplants/{tx}/complications/{k}/resolvedDate"), "value": r.to_string()}));
                        }
                        _ => return Ok(Applied::AlreadyThere),
                    }
                }
                None => {
                    list.push(c.clone());
                    patch.push(json!({"op": "add", "path": format!("/transplants/{tx}/complications/-"), "value": to_value(c)}));
                }
            }
            c.onset_date.clone()
        }
        Finding::Diagnosis { disease } => {
            let held = rec.diagnoses.iter().any(|d| {
                [Some(&d.disease), d.subtype.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|h| {
                        term.is_a("engraft-disease", h, disease)
                            || term.is_a("engraft-disease", disease, h)
                    })
            });
            return if held {
                Ok(Applied::AlreadyThere)
            } else {
                Err(na(
                    "other-disease",
                    "The EHR records an autoimmune disease the record does not list as an indication; whether it is a revised diagnosis or secondary autoimmunity is for the registry to decide, by hand.",
                ))
            };
        }
        Finding::Transplant { date } => {
            return if rec
                .transplants
                .iter()
                .any(|t| same_day(&t.infusion_date, date))
            {
                Ok(Applied::AlreadyThere)
            } else {
                Err(na(
                    "transplant-not-taken",
                    "The record holds no transplant on that day; a transplant is entered in the registry with its donor, source and conditioning, not taken from an EHR Procedure.",
                ))
            };
        }
    };
    // An EHR finding about a living patient is contact on that day.
    let v = &mut next.vital_status;
    if v.status == Vital::Alive && date.is_definitely_after(&v.last_contact_date) {
        v.last_contact_date = date.clone();
        patch.push(json!({"op": "replace", "path": "/vitalStatus/lastContactDate", "value": date.to_string()}));
    }
    next.version = rec.version + 1;
    patch.push(json!({"op": "replace", "path": "/version", "value": next.version}));
    Ok(Applied::Changed {
        record: Box::new(next),
        patch,
    })
}

/// The entry of a record's new Bundle (`new`) that a change made: of type `rtype`, coded with
/// one of `codes` (system, code), and absent from the old Bundle (`old`). None when the change
/// made no new resource (it changed a value) or when more than one fits.
pub fn made<'a>(
    old: &Value,
    new: &'a Value,
    rtype: &str,
    codes: &[(&str, &str)],
) -> Option<&'a Value> {
    let before: std::collections::HashSet<&str> = old["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["fullUrl"].as_str())
        .collect();
    let mut found = new["entry"].as_array()?.iter().filter(|e| {
        e["resource"]["resourceType"] == rtype
            && e["fullUrl"].as_str().is_some_and(|f| !before.contains(f))
            && codings(&e["resource"]).any(|(s, c, _)| codes.contains(&(s, c)))
    });
    match (found.next(), found.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// The (system, code) pairs of a resource's `code`.
pub fn codes_of(resource: &Value) -> Vec<(&str, &str)> {
    codings(resource).map(|(s, c, _)| (s, c)).collect()
}

fn empty_baseline(date: &RecordDate) -> Baseline {
    Baseline {
        date: date.clone(),
        performance: None,
        hct_ci: None,
        weight: None,
        height: None,
        scores: Vec::new(),
        labs: Vec::new(),
    }
}

fn unscheduled(date: &RecordDate) -> FollowUp {
    FollowUp {
        transplant: None,
        time_point: "unscheduled".into(),
        date: date.clone(),
        scores: Vec::new(),
        labs: Vec::new(),
        response: None,
        events: Vec::new(),
        therapy_restarts: Vec::new(),
    }
}

/// What a visit lists by test or scale (labs, scores).
trait Listed: Clone + serde::Serialize {
    /// The list's name in the record (`labs`).
    const LIST: &'static str;
    /// The same test or scale, on `day` (an item without a date of its own is the visit's).
    fn same_item(&self, other: &Self, day: &RecordDate) -> bool;
    fn same_value(&self, other: &Self) -> bool;
    /// `self` with the date `held` had.
    fn dated_as(&self, held: &Self) -> Self;
    fn in_baseline(b: &mut Baseline) -> &mut Vec<Self>;
    fn in_follow_up(f: &mut FollowUp) -> &mut Vec<Self>;
}

impl Listed for Lab {
    const LIST: &'static str = "labs";
    fn same_item(&self, other: &Self, day: &RecordDate) -> bool {
        self.test == other.test && self.date.as_ref().is_none_or(|d| same_day(d, day))
    }
    fn same_value(&self, other: &Self) -> bool {
        self.value == other.value && self.unit == other.unit
    }
    fn dated_as(&self, held: &Self) -> Self {
        Lab {
            date: held.date.clone(),
            ..self.clone()
        }
    }
    fn in_baseline(b: &mut Baseline) -> &mut Vec<Self> {
        &mut b.labs
    }
    fn in_follow_up(f: &mut FollowUp) -> &mut Vec<Self> {
        &mut f.labs
    }
}

impl Listed for Score {
    const LIST: &'static str = "scores";
    fn same_item(&self, other: &Self, day: &RecordDate) -> bool {
        self.scale == other.scale && self.date.as_ref().is_none_or(|d| same_day(d, day))
    }
    fn same_value(&self, other: &Self) -> bool {
        self.value == other.value
    }
    fn dated_as(&self, held: &Self) -> Self {
        Score {
            date: held.date.clone(),
            ..self.clone()
        }
    }
    fn in_baseline(b: &mut Baseline) -> &mut Vec<Self> {
        &mut b.scores
    }
    fn in_follow_up(f: &mut FollowUp) -> &mut Vec<Self> {
        &mut f.scores
    }
}

/// Puts `item` into the list of the visit of `date` (the baseline, a follow-up, or a new
/// one): added, or replacing the same test's other value. Returns whether anything changed.
fn put<T: Listed>(
    next: &mut Record,
    date: &RecordDate,
    item: &T,
    patch: &mut Vec<Value>,
) -> Result<bool, NotApplicable> {
    let list = T::LIST;
    let edit = |items: &mut Vec<T>, ptr: &str| match items
        .iter()
        .position(|h| h.same_item(item, date))
    {
        Some(k) if items[k].same_value(item) => None,
        Some(k) => {
            items[k] = item.dated_as(&items[k]);
            Some(
                json!({"op": "replace", "path": format!("{ptr}/{list}/{k}"), "value": to_value(&items[k])}),
            )
        }
        None => {
            items.push(item.clone());
            Some(json!({"op": "add", "path": format!("{ptr}/{list}/-"), "value": to_value(item)}))
        }
    };
    let op = match visit(next, date, true)? {
        Visit::Baseline => {
            let b = next.baseline.as_mut().expect("baseline found");
            edit(T::in_baseline(b), "/baseline")
        }
        Visit::FollowUp(i) => edit(
            T::in_follow_up(&mut next.follow_ups[i]),
            &format!("/followUps/{i}"),
        ),
        Visit::NewBaseline => {
            let mut b = empty_baseline(date);
            T::in_baseline(&mut b).push(item.clone());
            let op = json!({"op": "add", "path": "/baseline", "value": to_value(&b)});
            next.baseline = Some(b);
            Some(op)
        }
        Visit::NewFollowUp(at) => {
            let mut f = unscheduled(date);
            T::in_follow_up(&mut f).push(item.clone());
            let op =
                json!({"op": "add", "path": format!("/followUps/{at}"), "value": to_value(&f)});
            next.follow_ups.insert(at, f);
            Some(op)
        }
    };
    Ok(op.map(|op| patch.push(op)).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term() -> &'static Terminology {
        Terminology::bundled()
    }

    /// MS, autologous, day 0 2018-12-09; baseline 2018-10-01 (Karnofsky 90); follow-ups
    /// D100 2019-03-18 ... Y4 2022-12-01; alive, last contact 2022-12-01.
    fn record() -> Record {
        serde_json::from_str(include_str!(
            "../fixtures/records/ms-rrms-auto-beam-atg.json"
        ))
        .unwrap()
    }

    fn obs(system: &str, code: &str, date: &str, value: Value) -> Value {
        let mut o = json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": system, "code": code}]},
            "effectiveDateTime": date,
        });
        o.as_object_mut()
            .unwrap()
            .extend(value.as_object().unwrap().clone());
        o
    }

    fn anc(date: &str, value: f64) -> Value {
        obs(
            "http://loinc.org",
            "751-8",
            date,
            json!({"valueQuantity": {"value": value, "unit": "10^9/L", "system": UCUM, "code": "10*9/L"}}),
        )
    }

    fn changed(r: &Record, resource: &Value) -> (Record, Vec<Value>) {
        let f = read(term(), resource).unwrap();
        match apply(term(), r, &f).unwrap() {
            Applied::Changed { record, patch } => (*record, patch),
            Applied::AlreadyThere => panic!("nothing changed"),
        }
    }

    fn refused(r: &Record, resource: &Value) -> &'static str {
        match read(term(), resource).and_then(|f| apply(term(), r, &f)) {
            Err(e) => e.code,
            Ok(a) => panic!("applied: {a:?}"),
        }
    }

    #[test]
    fn a_lab_on_a_new_day_is_a_new_unscheduled_follow_up_in_date_order_that_passes_the_checks() {
        let r = record();
        let (next, patch) = changed(&r, &anc("2019-09-02T08:30:00+02:00", 2.4));
        // Between M6 (2019-06-10) and Y1 (2019-12-12).
        assert_eq!(next.follow_ups.len(), r.follow_ups.len() + 1);
        let f = &next.follow_ups[2];
        assert_eq!(
            (f.time_point.as_str(), f.date.to_string().as_str()),
            ("unscheduled", "2019-09-02")
        );
        assert_eq!(f.labs[0].test, "anc");
        assert_eq!((f.labs[0].value, f.labs[0].unit.as_str()), (2.4, "10*9/L"));
        assert_eq!(next.version, r.version + 1);
        assert_eq!(patch[0]["op"], "add");
        assert_eq!(patch[0]["path"], "/followUps/2");
        assert_eq!(patch.last().unwrap()["path"], "/version");
        crate::record::check(next, term()).expect("the changed record passes the checks");
    }

    #[test]
    fn a_lab_on_a_visit_day_joins_that_visit_once_and_a_new_value_replaces_it() {
        let r = record();
        let (next, patch) = changed(&r, &anc("2019-03-18", 2.4));
        assert_eq!(next.follow_ups.len(), r.follow_ups.len());
        assert_eq!(patch[0]["path"], "/followUps/0/labs/-");
        let again = apply(
            term(),
            &next,
            &read(term(), &anc("2019-03-18", 2.4)).unwrap(),
        );
        assert_eq!(again, Ok(Applied::AlreadyThere));
        let (fixed, patch) = changed(&next, &anc("2019-03-18", 2.6));
        assert_eq!(patch[0]["op"], "replace");
        assert_eq!(patch[0]["path"], "/followUps/0/labs/0");
        assert_eq!(fixed.follow_ups[0].labs.len(), 1);
        assert_eq!(fixed.follow_ups[0].labs[0].value, 2.6);
    }

    #[test]
    fn a_finding_after_the_last_contact_of_a_living_patient_moves_the_last_contact() {
        let r = record();
        let (next, patch) = changed(&r, &anc("2024-05-10", 2.4));
        assert_eq!(
            next.vital_status.last_contact_date.to_string(),
            "2024-05-10"
        );
        assert!(patch
            .iter()
            .any(|p| p["path"] == "/vitalStatus/lastContactDate"));
        assert_eq!(next.follow_ups.last().unwrap().time_point, "unscheduled");
        crate::record::check(next, term()).expect("passes the checks");
    }

    #[test]
    fn scores_come_back_from_loinc_and_from_engraft_codes() {
        let r = record();
        let edss = obs(
            &cs("engraft-observation"),
            "edss",
            "2019-12-12",
            json!({"valueQuantity": {"value": 3.0}}),
        );
        let (next, patch) = changed(&r, &edss);
        assert_eq!(
            patch[0]["op"], "replace",
            "Y1 holds an EDSS already: {patch:?}"
        );
        assert_eq!(
            next.follow_ups[2]
                .scores
                .iter()
                .filter(|s| s.scale == "edss")
                .count(),
            1
        );
        let fvc = obs(
            "http://loinc.org",
            "19872-1",
            "2020-12-07",
            json!({"valueQuantity": {"value": 88.0, "unit": "%"}}),
        );
        let (next, _) = changed(&r, &fvc);
        assert!(next.follow_ups[3]
            .scores
            .iter()
            .any(|s| s.scale == "fvc-percent"));
    }

    #[test]
    fn performance_status_goes_to_the_baseline_only() {
        let r = record();
        let kps = |date, v: i64| {
            obs(
                "http://loinc.org",
                "89243-0",
                date,
                json!({"valueInteger": v}),
            )
        };
        assert_eq!(
            refused(&r, &kps("2024-05-10", 80)),
            "performance-after-baseline"
        );
        let held = r.baseline.as_ref().unwrap().performance.clone().unwrap();
        assert_eq!(
            apply(
                term(),
                &r,
                &read(term(), &kps("2018-10-01", held.value as i64)).unwrap()
            ),
            Ok(Applied::AlreadyThere)
        );
        let (next, patch) = changed(&r, &kps("2018-10-01", 70));
        assert_eq!(patch[0]["path"], "/baseline/performance");
        assert_eq!(next.baseline.unwrap().performance.unwrap().value, 70);
    }

    #[test]
    fn a_complication_joins_the_transplant_before_it_with_its_source_code() {
        let r = record();
        let gvhd_like = json!({
            "resourceType": "Condition",
            "code": {"coding": [{"system": ICD10CM, "code": "D69.3"}]},
            "onsetDateTime": "2020-02-01",
            "abatementDateTime": "2020-06-01",
        });
        let (next, patch) = changed(&r, &gvhd_like);
        assert_eq!(patch[0]["path"], "/transplants/0/complications/-");
        let c = next.transplants[0].complications.last().unwrap();
        assert_eq!(c.kind, "secondary-itp");
        assert_eq!(c.codes[0].system, "icd-10-cm");
        assert_eq!(c.resolved_date.as_ref().unwrap().to_string(), "2020-06-01");
        crate::record::check(next.clone(), term()).expect("passes the checks");
        assert_eq!(
            apply(term(), &next, &read(term(), &gvhd_like).unwrap()),
            Ok(Applied::AlreadyThere)
        );
        let mut early = gvhd_like.clone();
        early["onsetDateTime"] = json!("2017-01-01");
        assert_eq!(refused(&r, &early), "before-transplant");
        let mut refuted = gvhd_like.clone();
        refuted["verificationStatus"] = json!({"coding": [{"code": "refuted"}]});
        assert_eq!(refused(&r, &refuted), "refuted");
    }

    #[test]
    fn diagnoses_and_transplants_are_confirmed_never_added() {
        let r = record();
        let condition = |code: &str| json!({"resourceType": "Condition", "code": {"coding": [{"system": SNOMED, "code": code}]}});
        for ms in ["24700007", "426373005"] {
            assert_eq!(
                apply(term(), &r, &read(term(), &condition(ms)).unwrap()),
                Ok(Applied::AlreadyThere)
            );
        }
        assert_eq!(refused(&r, &condition("55464009")), "other-disease");
        let hsct = |date: &str| json!({"resourceType": "Procedure", "status": "completed", "code": {"coding": [{"system": SNOMED, "code": "425983008"}]}, "performedDateTime": date});
        assert_eq!(
            apply(term(), &r, &read(term(), &hsct("2018-12-09")).unwrap()),
            Ok(Applied::AlreadyThere)
        );
        assert_eq!(refused(&r, &hsct("2021-01-01")), "transplant-not-taken");
    }

    #[test]
    fn what_cannot_be_placed_says_why() {
        let r = record();
        let mut prelim = anc("2019-03-18", 2.4);
        prelim["status"] = json!("preliminary");
        assert_eq!(refused(&r, &prelim), "not-final");
        let mut undated = anc("2019-03-18", 2.4);
        undated.as_object_mut().unwrap().remove("effectiveDateTime");
        assert_eq!(refused(&r, &undated), "no-date");
        let mut unitless = anc("2019-03-18", 2.4);
        unitless["valueQuantity"] = json!({"value": 2.4});
        assert_eq!(refused(&r, &unitless), "no-unit");
        let hr = obs(
            "http://loinc.org",
            "8867-4",
            "2019-03-18",
            json!({"valueQuantity": {"value": 70}}),
        );
        assert_eq!(refused(&r, &hr), "no-reverse-mapping");
        assert_eq!(refused(&r, &anc("2018-11-01", 2.4)), "before-transplant");
        let relapse = |v: bool| {
            obs(
                &cs("engraft-observation"),
                "relapse",
                "2021-03-01",
                json!({"valueBoolean": v}),
            )
        };
        assert_eq!(refused(&r, &relapse(false)), "negative");
        let (next, _) = changed(&r, &relapse(true));
        crate::record::check(next, term()).expect("passes the checks");
    }
}
