//! One transplant: the HSCT Procedure (day 0), its product, cell doses, mobilisation and
//! apheresis, conditioning with its drugs and TBI, supplemental infusions, engraftment, age
//! and HLA match, and its complications.

use fhirbolt::model::r4::resources::{
    BiologicallyDerivedProduct, BiologicallyDerivedProductCollection,
    BiologicallyDerivedProductCollectionCollected, BiologicallyDerivedProductProcessing,
    BiologicallyDerivedProductStorage, MedicationAdministration, MedicationAdministrationDosage,
    MedicationAdministrationEffective, MedicationAdministrationMedication, Observation,
    ObservationEffective, ObservationValue, Procedure, ProcedurePerformed,
};
use fhirbolt::model::r4::types::{CodeableConcept, ExtensionValue, Ratio};
use fhirbolt::model::r4::Resource;

use super::build::*;
use super::Mapper;
use crate::record::check::parse_hla;
use crate::record::model::{DrugGiven, Measure, RecoveryStatus};
use crate::terminology::{LOINC, SNOMED};

const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const DAR: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";

pub fn obs_category(code_: &str) -> Vec<CodeableConcept> {
    vec![cc(vec![coding(OBS_CATEGORY, code_, None)])]
}

impl Mapper<'_> {
    pub fn map_transplant(&mut self, i: usize) {
        let t = &self.rec.transplants[i];
        let n = t.number;
        let p = format!("/transplants/{i}");
        let hsct_url = self.hsct[i].clone();

        // The product: one per transplant; all apheresis days of one mobilisation are one
        // product (edge case 8).
        let product_item = self.item(&format!("tx{n}/product"));
        let product_url = product_item.full_url.clone();

        // HSCT procedure.
        let item = self.item(&format!("tx{n}/hsct"));
        debug_assert_eq!(item.full_url, hsct_url);
        let mut code_codings = vec![coding(
            SNOMED,
            "234336002",
            Some("Hemopoietic stem cell transplant"),
        )];
        let key = format!("{}|{}", t.donor_type.code(), t.stem_cell_source.code());
        if let Some(tg) = self
            .term
            .translate_to("engraft-transplant-to-snomed", &key, SNOMED, &[])
        {
            code_codings.push(from_target(tg));
        }
        let day0 = self.dt(&t.infusion_date, || format!("{p}/infusionDate"));
        let performed = match &t.infusion_end_date {
            Some(e) => ProcedurePerformed::Period(Box::new(period(
                day0.clone(),
                Some(self.dt(e, || format!("{p}/infusionEndDate"))),
            ))),
            None => ProcedurePerformed::DateTime(day0.clone()),
        };
        let reason = self.diagnosis.get(self.res.reason_diagnosis[i]).cloned();
        let hsct = Procedure {
            meta: meta("engraft-hsct-procedure"),
            extension: vec![
                self.coded_extension("donor-type", "engraft-donor-type", t.donor_type.code()),
                self.coded_extension(
                    "stem-cell-source",
                    "engraft-stem-cell-source",
                    t.stem_cell_source.code(),
                ),
                extension(
                    &ext_url("hsct-product"),
                    ExtensionValue::Reference(Box::new(reference(&product_url))),
                ),
            ],
            identifier: vec![item.identifier.clone()],
            status: code("completed"),
            category: Some(Box::new(cc(vec![coding(
                SNOMED,
                "77465005",
                Some("Transplantation"),
            )]))),
            code: Some(Box::new(cc(code_codings))),
            subject: self.subject(),
            performed: Some(performed),
            reason_reference: reason.iter().map(|r| reference(r)).collect(),
            ..Default::default()
        };
        self.push(item, Resource::Procedure(Box::new(hsct)));

        // Mobilisation and apheresis.
        let mut collected = None;
        if let Some(m) = &t.mobilisation {
            let mob_item = self.item(&format!("tx{n}/mobilisation"));
            let start = self.dt(&m.start_date, || format!("{p}/mobilisation/startDate"));
            let last = m
                .aphereses
                .iter()
                .map(|a| &a.date)
                .max_by_key(|d| d.latest());
            let end = last.map(|d| d.fhir_date_time().into());
            let mob = Procedure {
                meta: meta("engraft-mobilisation-procedure"),
                identifier: vec![mob_item.identifier.clone()],
                part_of: vec![reference(&hsct_url)],
                status: code("completed"),
                code: Some(Box::new(cc(vec![
                    local(self.term, "engraft-procedure", "mobilisation"),
                    local(self.term, "engraft-mobilisation-regimen", &m.regimen),
                ]))),
                subject: self.subject(),
                performed: Some(ProcedurePerformed::Period(Box::new(period(start, end)))),
                ..Default::default()
            };
            let mob_url = self.push(mob_item, Resource::Procedure(Box::new(mob)));
            for (j, d) in m.drugs.iter().enumerate() {
                self.map_drug(
                    d,
                    &mob_url,
                    &format!("tx{n}/mobilisation"),
                    &format!("{p}/mobilisation/drugs/{j}"),
                );
            }
            for (j, a) in m.aphereses.iter().enumerate() {
                let ap_item = self.item(&format!("tx{n}/apheresis/{}", a.date.fhir_date()));
                let ap = Procedure {
                    meta: meta("engraft-apheresis-procedure"),
                    identifier: vec![ap_item.identifier.clone()],
                    part_of: vec![reference(&mob_url)],
                    status: code("completed"),
                    code: Some(Box::new(cc(vec![coding(
                        SNOMED,
                        "418576007",
                        Some("Harvesting of peripheral blood stem cells"),
                    )]))),
                    subject: self.subject(),
                    performed: Some(ProcedurePerformed::DateTime(
                        self.dt(&a.date, || format!("{p}/mobilisation/aphereses/{j}/date")),
                    )),
                    ..Default::default()
                };
                let ap_url = self.push(ap_item, Resource::Procedure(Box::new(ap)));
                if let Some(c) = &a.cd34_collected {
                    let key = format!("tx{n}/apheresis/{}/cd34", a.date.fhir_date());
                    let code_ = cc(vec![local(
                        self.term,
                        "engraft-observation",
                        "cd34-collected",
                    )]);
                    let eff = self.dt(&a.date, || format!("{p}/mobilisation/aphereses/{j}/date"));
                    self.cell_dose(&key, code_, c, eff, &ap_url, &product_url);
                }
            }
            let first = m
                .aphereses
                .iter()
                .map(|a| &a.date)
                .min_by_key(|d| d.earliest());
            collected = match (first, last) {
                (Some(a), Some(b)) if a != b => Some(
                    BiologicallyDerivedProductCollectionCollected::Period(Box::new(period(
                        a.fhir_date_time().into(),
                        Some(b.fhir_date_time().into()),
                    ))),
                ),
                (Some(a), _) => Some(BiologicallyDerivedProductCollectionCollected::DateTime(
                    a.fhir_date_time().into(),
                )),
                _ => None,
            };
        }

        // Product.
        let mut processing = Vec::new();
        if let Some(g) = t.graft_manipulation.as_deref().filter(|g| *g != "none") {
            let proc_code = match g {
                "cd34-selection" | "t-cell-depletion" => local(self.term, "engraft-procedure", g),
                other => local(self.term, "engraft-graft-manipulation", other),
            };
            processing.push(BiologicallyDerivedProductProcessing {
                procedure: Some(Box::new(cc(vec![proc_code]))),
                ..Default::default()
            });
        }
        let product = BiologicallyDerivedProduct {
            meta: meta("engraft-stem-cell-product"),
            extension: vec![self.coded_extension(
                "stem-cell-source",
                "engraft-stem-cell-source",
                t.stem_cell_source.code(),
            )],
            identifier: vec![product_item.identifier.clone()],
            product_category: Some(code("cells")),
            product_code: Some(Box::new(cc(vec![local(
                self.term,
                "engraft-stem-cell-source",
                t.stem_cell_source.code(),
            )]))),
            collection: (collected.is_some() || !t.donor_type.is_allogeneic()).then(|| {
                BiologicallyDerivedProductCollection {
                    source: (!t.donor_type.is_allogeneic()).then(|| self.subject()),
                    collected,
                    ..Default::default()
                }
            }),
            processing,
            storage: if t.cryopreserved == Some(true) {
                vec![BiologicallyDerivedProductStorage {
                    description: Some(s("Cryopreserved")),
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        self.push(
            product_item,
            Resource::BiologicallyDerivedProduct(Box::new(product)),
        );

        // Cell doses infused.
        if let Some(c) = &t.cd34_dose {
            let code_ = cc(vec![coding(
                LOINC,
                "78002-3",
                Some("CD34 cells [#/mass] in Hematopoietic progenitor cell transfusion"),
            )]);
            self.cell_dose(
                &format!("tx{n}/cd34-dose"),
                code_,
                c,
                day0.clone(),
                &hsct_url,
                &product_url,
            );
        }
        if let Some(c) = &t.tnc_dose {
            let code_ = cc(vec![coding(
                LOINC,
                "78003-1",
                Some("Nucleated cells [#/mass] in Hematopoietic progenitor cell transfusion"),
            )]);
            self.cell_dose(
                &format!("tx{n}/tnc-dose"),
                code_,
                c,
                day0.clone(),
                &hsct_url,
                &product_url,
            );
        }

        // Conditioning.
        if let Some(c) = &t.conditioning {
            let item = self.item(&format!("tx{n}/conditioning"));
            let regimen = self.res.regimen[i].as_deref().unwrap_or("other");
            let start = self.dt(&c.start_date, || format!("{p}/conditioning/startDate"));
            let end = c
                .end_date
                .as_ref()
                .map(|e| self.dt(e, || format!("{p}/conditioning/endDate")));
            let mut ext = Vec::new();
            if let Some(int) = &c.intensity {
                ext.push(self.coded_extension("regimen-intensity", "engraft-intensity", int));
            }
            let proc = Procedure {
                meta: meta("engraft-conditioning-procedure"),
                extension: ext,
                identifier: vec![item.identifier.clone()],
                part_of: vec![reference(&hsct_url)],
                status: code("completed"),
                code: Some(Box::new(cc_text(
                    vec![
                        local(self.term, "engraft-procedure", "conditioning"),
                        local(self.term, "engraft-regimen", regimen),
                    ],
                    &c.regimen,
                ))),
                subject: self.subject(),
                performed: Some(ProcedurePerformed::Period(Box::new(period(start, end)))),
                ..Default::default()
            };
            let cond_url = self.push(item, Resource::Procedure(Box::new(proc)));
            for (j, d) in c.drugs.iter().enumerate() {
                self.map_drug(
                    d,
                    &cond_url,
                    &format!("tx{n}/conditioning"),
                    &format!("{p}/conditioning/drugs/{j}"),
                );
            }
            if let Some(tbi) = &c.tbi {
                let item = self.item(&format!("tx{n}/tbi"));
                let start = self.dt(&tbi.start_date, || {
                    format!("{p}/conditioning/tbi/startDate")
                });
                let end = tbi
                    .end_date
                    .as_ref()
                    .map(|e| self.dt(e, || format!("{p}/conditioning/tbi/endDate")));
                let proc = Procedure {
                    meta: meta("engraft-tbi-procedure"),
                    extension: vec![
                        extension(
                            &ext_url("tbi-dose"),
                            ExtensionValue::Quantity(Box::new(ucum(tbi.dose_gy, "Gy"))),
                        ),
                        extension(
                            &ext_url("tbi-fractions"),
                            ExtensionValue::PositiveInt(tbi.fractions.into()),
                        ),
                    ],
                    identifier: vec![item.identifier.clone()],
                    part_of: vec![reference(&cond_url)],
                    status: code("completed"),
                    code: Some(Box::new(cc(vec![
                        coding(SNOMED, "1287742003", Some("Radiotherapy")),
                        local(self.term, "engraft-procedure", "tbi"),
                    ]))),
                    subject: self.subject(),
                    performed: Some(ProcedurePerformed::Period(Box::new(period(start, end)))),
                    ..Default::default()
                };
                self.push(item, Resource::Procedure(Box::new(proc)));
            }
        }

        // Supplemental infusions: not new transplants (edge case 7).
        for (j, sup) in t.supplemental_infusions.iter().enumerate() {
            let item = self.item(&format!(
                "tx{n}/supplemental/{}/{}",
                sup.kind,
                sup.date.fhir_date()
            ));
            let proc = Procedure {
                meta: meta("engraft-supplemental-infusion"),
                identifier: vec![item.identifier.clone()],
                part_of: vec![reference(&hsct_url)],
                status: code("completed"),
                code: Some(Box::new(cc(vec![local(
                    self.term,
                    "engraft-procedure",
                    &sup.kind,
                )]))),
                subject: self.subject(),
                performed: Some(ProcedurePerformed::DateTime(
                    self.dt(&sup.date, || format!("{p}/supplementalInfusions/{j}/date")),
                )),
                ..Default::default()
            };
            self.push(item, Resource::Procedure(Box::new(proc)));
        }

        // Engraftment.
        if let Some(e) = &t.engraftment {
            for (name, rec, code_) in [
                ("neutrophil", &e.neutrophil, "neutrophil-engraftment"),
                ("platelet", &e.platelet, "platelet-engraftment"),
            ] {
                let item = self.item(&format!("tx{n}/engraftment/{name}"));
                let (value, absent, component) = match (rec.status, &rec.date) {
                    (RecoveryStatus::Engrafted, Some(d)) => {
                        let days = d.days_since(&t.infusion_date);
                        let component = days.map(|v| self.day_component(v));
                        (
                            Some(ObservationValue::DateTime(
                                self.dt(d, || format!("{p}/engraftment/{name}/date")),
                            )),
                            None,
                            component,
                        )
                    }
                    (RecoveryStatus::NotApplicable, _) => (None, Some("not-applicable"), None),
                    (RecoveryStatus::Unknown, _) | (RecoveryStatus::Engrafted, None) => {
                        (None, Some("unknown"), None)
                    }
                    (RecoveryStatus::NotEvaluable, _) => (
                        Some(ObservationValue::CodeableConcept(Box::new(cc(vec![
                            local(self.term, "engraft-recovery-status", "not-evaluable"),
                        ])))),
                        None,
                        None,
                    ),
                    (RecoveryStatus::Failure, _) => (
                        Some(ObservationValue::CodeableConcept(Box::new(cc(vec![
                            local(self.term, "engraft-recovery-status", "failure"),
                        ])))),
                        None,
                        None,
                    ),
                };
                let obs = Observation {
                    meta: meta("engraft-engraftment"),
                    identifier: vec![item.identifier.clone()],
                    part_of: vec![reference(&hsct_url)],
                    status: code("final"),
                    category: obs_category("laboratory"),
                    code: Box::new(cc(vec![local(self.term, "engraft-observation", code_)])),
                    subject: Some(self.subject()),
                    value,
                    data_absent_reason: absent.map(|a| Box::new(cc(vec![coding(DAR, a, None)]))),
                    component: component.into_iter().collect(),
                    ..Default::default()
                };
                self.push(item, Resource::Observation(Box::new(obs)));
            }
        }

        // Age at HSCT (edge case 32) and HLA match, both as of day 0.
        if let Some((age, _)) = self.res.age_at_hsct[i] {
            let value = ObservationValue::Quantity(Box::new(ucum(age as f64, "a")));
            self.transplant_fact(n, "age-at-hsct", &hsct_url, day0.clone(), value);
        }
        if t.donor_type.is_allogeneic() {
            if let Some((a, b)) = t
                .donor
                .as_ref()
                .and_then(|d| d.hla_match.as_deref())
                .and_then(parse_hla)
            {
                let value = ObservationValue::Ratio(Box::new(Ratio {
                    numerator: Some(Box::new(ucum(a as f64, "{loci}"))),
                    denominator: Some(Box::new(ucum(b as f64, "{loci}"))),
                    ..Default::default()
                }));
                self.transplant_fact(n, "hla-match", &hsct_url, day0.clone(), value);
            }
        }

        for (j, c) in t.complications.iter().enumerate() {
            self.map_complication(i, j, c);
        }
    }

    /// An `engraft-transplant-observation` (`age-at-hsct`, `hla-match`) of transplant `n`.
    fn transplant_fact(
        &mut self,
        n: u32,
        code_: &str,
        hsct: &str,
        effective: fhirbolt::model::r4::types::DateTime,
        value: ObservationValue,
    ) {
        let item = self.item(&format!("tx{n}/{code_}"));
        let obs = Observation {
            meta: meta("engraft-transplant-observation"),
            identifier: vec![item.identifier.clone()],
            part_of: vec![reference(hsct)],
            status: code("final"),
            code: Box::new(cc(vec![local(self.term, "engraft-observation", code_)])),
            subject: Some(self.subject()),
            effective: Some(ObservationEffective::DateTime(effective)),
            value: Some(value),
            ..Default::default()
        };
        self.push(item, Resource::Observation(Box::new(obs)));
    }

    fn cell_dose(
        &mut self,
        key: &str,
        code_: CodeableConcept,
        m: &Measure,
        effective: fhirbolt::model::r4::types::DateTime,
        part_of: &str,
        product: &str,
    ) {
        let item = self.item(key);
        let obs = Observation {
            meta: meta("engraft-cell-dose"),
            identifier: vec![item.identifier.clone()],
            part_of: vec![reference(part_of)],
            status: code("final"),
            category: obs_category("laboratory"),
            code: Box::new(code_),
            subject: Some(self.subject()),
            focus: vec![reference(product)],
            effective: Some(ObservationEffective::DateTime(effective)),
            value: Some(ObservationValue::Quantity(Box::new(ucum(m.value, &m.unit)))),
            ..Default::default()
        };
        self.push(item, Resource::Observation(Box::new(obs)));
    }

    fn map_drug(&mut self, d: &DrugGiven, part_of: &str, key_prefix: &str, p: &str) {
        let item = self.item(&format!(
            "{key_prefix}/{}/{}",
            d.drug,
            d.start_date.fhir_date()
        ));
        let start = self.dt(&d.start_date, || format!("{p}/startDate"));
        let effective = match &d.end_date {
            Some(e) if e != &d.start_date => MedicationAdministrationEffective::Period(Box::new(
                period(start, Some(self.dt(e, || format!("{p}/endDate")))),
            )),
            _ => MedicationAdministrationEffective::DateTime(start),
        };
        let ext = d
            .total_dose
            .iter()
            .map(|t| {
                extension(
                    &ext_url("total-dose"),
                    ExtensionValue::Quantity(Box::new(ucum(t.value, &t.unit))),
                )
            })
            .collect();
        let ma = MedicationAdministration {
            meta: meta("engraft-medication-administration"),
            extension: ext,
            identifier: vec![item.identifier.clone()],
            part_of: vec![reference(part_of)],
            status: code("completed"),
            medication: MedicationAdministrationMedication::CodeableConcept(Box::new(
                self.drug(&d.drug),
            )),
            subject: self.subject(),
            effective,
            dosage: Some(MedicationAdministrationDosage {
                dose: Some(Box::new(ucum(d.dose.value, &d.dose.unit))),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(item, Resource::MedicationAdministration(Box::new(ma)));
    }
}
