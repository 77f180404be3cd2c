//! Conditions (the autoimmune disease, complications, GvHD) and MedicationStatements (prior
//! therapy, therapy restarted after HSCT).

use fhirbolt::model::r4::resources::{
    Condition, ConditionAbatement, ConditionEvidence, ConditionOnset, ConditionStage,
    MedicationStatement, MedicationStatementEffective, MedicationStatementMedication,
};
use fhirbolt::model::r4::types::{CodeableConcept, Coding, ExtensionValue};
use fhirbolt::model::r4::Resource;

use super::build::*;
use super::Mapper;
use crate::record::model::{Complication, RevisionKind, SourceCode};
use crate::terminology::{ICD10, ICD10CM, RXNORM, SNOMED};

const CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const ASSERTED: &str = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate";
const DUE_TO: &str = "http://hl7.org/fhir/StructureDefinition/condition-dueTo";

fn source_coding(c: &SourceCode) -> Coding {
    let system = match c.system.as_str() {
        "icd-10-cm" => ICD10CM,
        "icd-10" => ICD10,
        "snomed" => SNOMED,
        other => other,
    };
    Coding {
        version: c.version.as_deref().map(s),
        ..coding(system, c.code.trim(), None)
    }
}

/// Adds codings not already present (same system and code).
fn add_unique(codings: &mut Vec<Coding>, c: Coding) {
    let same = |a: &Coding| a.system == c.system && a.code == c.code;
    if !codings.iter().any(same) {
        codings.push(c);
    }
}

impl Mapper<'_> {
    pub fn map_diagnoses(&mut self) {
        let rec = self.rec;
        for (i, d) in rec.diagnoses.iter().enumerate() {
            let item = self.item(&format!(
                "diagnosis/{}/{}",
                d.disease,
                d.diagnosis_date.fhir_date()
            ));
            let specific = d.subtype.as_deref().unwrap_or(&d.disease);
            let mut codings = vec![local(self.term, "engraft-disease", &d.disease)];
            if let Some(st) = &d.subtype {
                codings.push(local(self.term, "engraft-disease", st));
            }
            for system in [SNOMED, ICD10CM] {
                if let Some(t) = self
                    .term
                    .translate_to("engraft-disease-to-standard", specific, system, &[])
                    .or_else(|| {
                        self.term.translate_to(
                            "engraft-disease-to-standard",
                            &d.disease,
                            system,
                            &[],
                        )
                    })
                {
                    add_unique(&mut codings, from_target(t));
                }
            }
            for sc in &d.codes {
                add_unique(&mut codings, source_coding(sc));
            }
            let (clinical, verification, abatement) = match &d.revision {
                Some(r) if r.kind == RevisionKind::Refuted => ("inactive", "refuted", None),
                Some(r) => (
                    "inactive",
                    "confirmed",
                    Some(ConditionAbatement::DateTime(
                        self.dt(&r.date, || format!("/diagnoses/{i}/revision/date")),
                    )),
                ),
                None => ("active", "confirmed", None),
            };
            let asserted = self.dt(&d.diagnosis_date, || {
                format!("/diagnoses/{i}/diagnosisDate")
            });
            let condition = Condition {
                meta: meta("engraft-autoimmune-condition"),
                extension: vec![extension(ASSERTED, ExtensionValue::DateTime(asserted))],
                identifier: vec![item.identifier.clone()],
                clinical_status: Some(Box::new(cc(vec![coding(CLINICAL, clinical, None)]))),
                verification_status: Some(Box::new(cc(vec![coding(
                    VERIFICATION,
                    verification,
                    None,
                )]))),
                category: vec![cc(vec![coding(
                    CATEGORY,
                    "problem-list-item",
                    Some("Problem List Item"),
                )])],
                code: Some(Box::new(cc(codings))),
                subject: self.subject(),
                onset: d.onset_date.as_ref().map(|o| {
                    ConditionOnset::DateTime(self.dt(o, || format!("/diagnoses/{i}/onsetDate")))
                }),
                abatement,
                ..Default::default()
            };
            let url = self.push(item, Resource::Condition(Box::new(condition)));
            self.diagnosis.push(url);
        }
    }

    /// A drug as CodeableConcept: the local code and RxNorm where the map has it.
    pub fn drug(&self, code_: &str) -> CodeableConcept {
        let mut codings = vec![local(self.term, "engraft-drug", code_)];
        if let Some(t) = self
            .term
            .translate_to("engraft-drug-to-rxnorm", code_, RXNORM, &[])
        {
            codings.push(from_target(t));
        }
        cc(codings)
    }

    pub fn map_prior_therapies(&mut self) {
        let rec = self.rec;
        let reason = self.diagnosis.first().cloned();
        for (i, t) in rec.prior_therapies.iter().enumerate() {
            let start = t
                .start_date
                .as_ref()
                .map(|d| d.fhir_date())
                .unwrap_or_else(|| "unknown".into());
            let item = self.item(&format!("prior/{}/{start}", t.agent));
            let status = if t.stop_date.is_some() {
                "completed"
            } else {
                "unknown"
            };
            let effective = match (&t.start_date, &t.stop_date) {
                (None, None) => None,
                (a, b) => Some(MedicationStatementEffective::Period(Box::new(
                    fhirbolt::model::r4::types::Period {
                        start: a
                            .as_ref()
                            .map(|d| self.dt(d, || format!("/priorTherapies/{i}/startDate"))),
                        end: b
                            .as_ref()
                            .map(|d| self.dt(d, || format!("/priorTherapies/{i}/stopDate"))),
                        ..Default::default()
                    },
                ))),
            };
            let statement = MedicationStatement {
                meta: meta("engraft-prior-therapy"),
                identifier: vec![item.identifier.clone()],
                status: code(status),
                status_reason: t
                    .stop_reason
                    .iter()
                    .map(|r| cc(vec![local(self.term, "engraft-stop-reason", r)]))
                    .collect(),
                medication: MedicationStatementMedication::CodeableConcept(Box::new(
                    self.drug(&t.agent),
                )),
                subject: self.subject(),
                effective,
                reason_reference: reason.iter().map(|r| reference(r)).collect(),
                ..Default::default()
            };
            self.push(item, Resource::MedicationStatement(Box::new(statement)));
        }
    }

    pub fn map_therapy_restart(&mut self, fu: usize, j: usize, tx: usize) {
        let t = &self.rec.follow_ups[fu].therapy_restarts[j];
        let item = self.item(&format!("restart/{}/{}", t.agent, t.start_date.fhir_date()));
        let start = self.dt(&t.start_date, || {
            format!("/followUps/{fu}/therapyRestarts/{j}/startDate")
        });
        let statement = MedicationStatement {
            meta: meta("engraft-therapy-restart"),
            extension: vec![extension(
                &ext_url("relative-to-transplant"),
                ExtensionValue::Reference(Box::new(reference(&self.hsct[tx]))),
            )],
            identifier: vec![item.identifier.clone()],
            status: code("active"),
            medication: MedicationStatementMedication::CodeableConcept(Box::new(
                self.drug(&t.agent),
            )),
            subject: self.subject(),
            effective: Some(MedicationStatementEffective::Period(Box::new(period(
                start, None,
            )))),
            reason_reference: self
                .diagnosis
                .first()
                .iter()
                .map(|r| reference(r))
                .collect(),
            ..Default::default()
        };
        self.push(item, Resource::MedicationStatement(Box::new(statement)));
    }

    pub fn map_complication(&mut self, tx: usize, j: usize, c: &Complication) {
        let number = self.rec.transplants[tx].number;
        let item = self.item(&format!(
            "tx{number}/complication/{}/{}",
            c.kind,
            c.onset_date.fhir_date()
        ));
        let mut codings = vec![local(self.term, "engraft-complication", &c.kind)];
        for t in self
            .term
            .translate("engraft-complication-to-standard", &c.kind, &[])
        {
            add_unique(&mut codings, from_target(t));
        }
        for sc in &c.codes {
            add_unique(&mut codings, source_coding(sc));
        }
        let gvhd = matches!(c.kind.as_str(), "acute-gvhd" | "chronic-gvhd");
        let p = format!("/transplants/{tx}/complications/{j}");
        let condition = Condition {
            meta: meta(if gvhd {
                "engraft-gvhd"
            } else {
                "engraft-complication"
            }),
            extension: vec![extension(
                DUE_TO,
                ExtensionValue::Reference(Box::new(reference(&self.hsct[tx]))),
            )],
            identifier: vec![item.identifier.clone()],
            clinical_status: Some(Box::new(cc(vec![coding(
                CLINICAL,
                if c.resolved_date.is_some() {
                    "resolved"
                } else {
                    "active"
                },
                None,
            )]))),
            verification_status: Some(Box::new(cc(vec![coding(VERIFICATION, "confirmed", None)]))),
            category: vec![cc(vec![coding(
                CATEGORY,
                "problem-list-item",
                Some("Problem List Item"),
            )])],
            code: Some(Box::new(cc(codings))),
            body_site: c
                .organs
                .iter()
                .map(|o| cc(vec![local(self.term, "engraft-organ", o)]))
                .collect(),
            subject: self.subject(),
            onset: Some(ConditionOnset::DateTime(
                self.dt(&c.onset_date, || format!("{p}/onsetDate")),
            )),
            abatement: c
                .resolved_date
                .as_ref()
                .map(|d| ConditionAbatement::DateTime(self.dt(d, || format!("{p}/resolvedDate")))),
            stage: c
                .grade
                .iter()
                .map(|g| ConditionStage {
                    summary: Some(Box::new(cc(vec![local(self.term, "engraft-grade", g)]))),
                    ..Default::default()
                })
                .collect(),
            evidence: c
                .organism
                .iter()
                .map(|o| ConditionEvidence {
                    code: vec![CodeableConcept {
                        text: Some(s(o)),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        self.push(item, Resource::Condition(Box::new(condition)));
    }
}
