//! Observations of the baseline, the follow-up visits (with their Encounter) and vital status.

use fhirbolt::model::r4::resources::{
    Encounter, Observation, ObservationEffective, ObservationValue,
};
use fhirbolt::model::r4::types::{CodeableConcept, DateTime, ExtensionValue};
use fhirbolt::model::r4::Resource;

use super::build::*;
use super::transplant::obs_category;
use super::Mapper;
use crate::record::model::{Lab, PerformanceScale, Score, Vital};
use crate::terminology::LOINC;

const DAR: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";

/// Where an observation sits: its date, visit, transplant and key prefix.
struct Ctx<'a> {
    key: &'a str,
    ptr: &'a str,
    effective: DateTime,
    encounter: Option<&'a str>,
    /// (HSCT fullUrl, days since day 0)
    transplant: Option<(&'a str, Option<i64>)>,
}

impl Mapper<'_> {
    fn disease_context(&self) -> Vec<(&'static str, &'static str)> {
        ["rheumatoid-arthritis", "crohns-disease"]
            .into_iter()
            .filter(|d| {
                self.rec
                    .diagnoses
                    .iter()
                    .any(|x| self.term.is_a("engraft-disease", &x.disease, d))
            })
            .map(|d| ("disease", d))
            .collect()
    }

    fn base_obs(
        &mut self,
        key: &str,
        profile: &str,
        code_: CodeableConcept,
        cx: &Ctx<'_>,
    ) -> (super::Item, Observation) {
        let item = self.item(&[cx.key, "/", key].concat());
        let mut obs = Observation {
            meta: meta(profile),
            identifier: vec![item.identifier.clone()],
            status: code("final"),
            code: Box::new(code_),
            subject: Some(self.subject()),
            encounter: cx.encounter.map(|e| Box::new(reference(e))),
            effective: Some(ObservationEffective::DateTime(cx.effective.clone())),
            ..Default::default()
        };
        if let Some((hsct, days)) = cx.transplant {
            obs.extension.push(extension(
                &ext_url("relative-to-transplant"),
                ExtensionValue::Reference(Box::new(reference(hsct))),
            ));
            if let Some(d) = days {
                obs.component.push(self.day_component(d));
            }
        }
        (item, obs)
    }

    fn map_score(&mut self, s: &Score, j: usize, cx: &Ctx<'_>) {
        let ctx = self.disease_context();
        let codings: Vec<_> = self
            .term
            .translate("engraft-scale-to-code", &s.scale, &ctx)
            .map(from_target)
            .collect();
        let concept = self
            .term
            .concept("engraft-scale", &s.scale)
            .expect("checked");
        let unit = concept.text("unit").unwrap_or("{score}").to_string();
        let integer = concept.boolean("integer") == Some(true);
        let category = concept.text("category").unwrap_or("survey").to_string();
        let display = concept.display.clone();
        let code_ = cc_text(codings, &display);
        let effective = match &s.date {
            Some(d) => self.dt(d, || format!("{}/scores/{j}/date", cx.ptr)),
            None => cx.effective.clone(),
        };
        let sub = Ctx { effective, ..*cx };
        let (item, mut obs) = self.base_obs(&s.scale, "engraft-disease-score", code_, &sub);
        obs.category = obs_category(&category);
        match (s.value, s.absent_reason) {
            (Some(v), _) if integer => {
                obs.value = Some(ObservationValue::Integer((v as i32).into()))
            }
            (Some(v), _) => obs.value = Some(ObservationValue::Quantity(Box::new(ucum(v, &unit)))),
            (None, Some(a)) => {
                obs.data_absent_reason = Some(Box::new(cc(vec![coding(DAR, a.fhir_code(), None)])))
            }
            (None, None) => {}
        }
        self.push(item, Resource::Observation(Box::new(obs)));
    }

    fn map_lab(&mut self, l: &Lab, j: usize, cx: &Ctx<'_>) {
        let codings: Vec<_> = self
            .term
            .translate("engraft-lab-to-code", &l.test, &[])
            .map(from_target)
            .collect();
        let effective = match &l.date {
            Some(d) => self.dt(d, || format!("{}/labs/{j}/date", cx.ptr)),
            None => cx.effective.clone(),
        };
        let sub = Ctx { effective, ..*cx };
        let (item, mut obs) =
            self.base_obs(&format!("lab/{}", l.test), "engraft-lab", cc(codings), &sub);
        obs.category = obs_category("laboratory");
        obs.value = Some(ObservationValue::Quantity(Box::new(ucum(l.value, &l.unit))));
        self.push(item, Resource::Observation(Box::new(obs)));
    }

    pub fn map_baseline(&mut self) {
        let Some(b) = &self.rec.baseline else { return };
        let effective = self.dt(&b.date, || "/baseline/date".into());
        let cx = Ctx {
            key: "baseline",
            ptr: "/baseline",
            effective,
            encounter: None,
            transplant: None,
        };
        if let Some(perf) = &b.performance {
            let (source, scale) = match perf.scale {
                PerformanceScale::Karnofsky => ("karnofsky", "Karnofsky"),
                PerformanceScale::Lansky => ("lansky", "Lansky"),
                PerformanceScale::Ecog => ("ecog", "ECOG"),
            };
            let codings: Vec<_> = self
                .term
                .translate("engraft-performance-to-code", source, &[])
                .map(from_target)
                .collect();
            let (item, mut obs) = self.base_obs(
                &format!("performance/{source}"),
                "engraft-performance-status",
                cc_text(codings, scale),
                &cx,
            );
            obs.category = obs_category("survey");
            obs.value = Some(ObservationValue::Integer((perf.value as i32).into()));
            self.push(item, Resource::Observation(Box::new(obs)));
        }
        if let Some(h) = b.hct_ci {
            let code_ = cc(vec![local(self.term, "engraft-observation", "hct-ci")]);
            let (item, mut obs) = self.base_obs("hct-ci", "engraft-disease-score", code_, &cx);
            obs.category = obs_category("survey");
            obs.value = Some(ObservationValue::Integer((h as i32).into()));
            self.push(item, Resource::Observation(Box::new(obs)));
        }
        let body: [(&str, Option<(f64, &str)>, _); 3] = [
            (
                "weight",
                b.weight.as_ref().map(|m| (m.value, m.unit.as_str())),
                coding(LOINC, "29463-7", Some("Body weight")),
            ),
            (
                "height",
                b.height.as_ref().map(|m| (m.value, m.unit.as_str())),
                coding(LOINC, "8302-2", Some("Body height")),
            ),
            (
                "bsa",
                self.res.bsa.map(|v| (v, "m2")),
                local(self.term, "engraft-observation", "body-surface-area"),
            ),
        ];
        for (key, value, coding_) in body {
            let Some((v, unit)) = value else { continue };
            let (item, mut obs) =
                self.base_obs(key, "engraft-body-measurement", cc(vec![coding_]), &cx);
            obs.category = obs_category("vital-signs");
            obs.value = Some(ObservationValue::Quantity(Box::new(ucum(v, unit))));
            if key == "bsa" {
                obs.method = Some(Box::new(CodeableConcept {
                    text: Some(s("Mosteller, computed by Engraft")),
                    ..Default::default()
                }));
            }
            self.push(item, Resource::Observation(Box::new(obs)));
        }
        for (j, sc) in b.scores.iter().enumerate() {
            self.map_score(sc, j, &cx);
        }
        for (j, l) in b.labs.iter().enumerate() {
            self.map_lab(l, j, &cx);
        }
    }

    pub fn map_follow_ups(&mut self) {
        let rec = self.rec;
        for (i, f) in rec.follow_ups.iter().enumerate() {
            let tx = self.res.followup_transplant[i];
            let t = &rec.transplants[tx];
            let time_point = self.res.followup_time_point[i].clone();
            let ptr = format!("/followUps/{i}");
            let key = format!("tx{}/fu/{}/{}", t.number, time_point, f.date.fhir_date());
            let hsct = self.hsct[tx].clone();
            let effective = self.dt(&f.date, || format!("{ptr}/date"));
            let enc_item = self.item(&key);
            let encounter = Encounter {
                meta: meta("engraft-followup-encounter"),
                extension: vec![extension(
                    &ext_url("relative-to-transplant"),
                    ExtensionValue::Reference(Box::new(reference(&hsct))),
                )],
                identifier: vec![enc_item.identifier.clone()],
                status: code("finished"),
                class: Box::new(coding(
                    "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "AMB",
                    Some("ambulatory"),
                )),
                r#type: vec![cc(vec![local(
                    self.term,
                    "engraft-time-point",
                    &time_point,
                )])],
                subject: Some(self.subject()),
                period: Some(Box::new(period(effective.clone(), None))),
                reason_reference: vec![reference(&hsct)],
                ..Default::default()
            };
            let enc_url = self.push(enc_item, Resource::Encounter(Box::new(encounter)));
            let days = f.date.days_since(&t.infusion_date);
            let cx = Ctx {
                key: &key,
                ptr: &ptr,
                effective,
                encounter: Some(&enc_url),
                transplant: Some((&hsct, days)),
            };
            for (j, sc) in f.scores.iter().enumerate() {
                self.map_score(sc, j, &cx);
            }
            for (j, l) in f.labs.iter().enumerate() {
                self.map_lab(l, j, &cx);
            }
            if let Some(r) = &f.response {
                let code_ = cc(vec![local(
                    self.term,
                    "engraft-observation",
                    "disease-response",
                )]);
                let (item, mut obs) = self.base_obs("response", "engraft-response", code_, &cx);
                obs.value = Some(ObservationValue::CodeableConcept(Box::new(cc(vec![
                    local(self.term, "engraft-response", r),
                ]))));
                self.push(item, Resource::Observation(Box::new(obs)));
            }
            for (j, e) in f.events.iter().enumerate() {
                // Kept as the registry classified it (edge case 27).
                let code_ = cc(vec![local(self.term, "engraft-observation", &e.kind)]);
                let effective = self.dt(&e.date, || format!("{ptr}/events/{j}/date"));
                let sub = Ctx {
                    effective,
                    transplant: Some((&hsct, e.date.days_since(&t.infusion_date))),
                    ..cx
                };
                let (item, mut obs) = self.base_obs(
                    &format!("event/{}/{}", e.kind, e.date.fhir_date()),
                    "engraft-disease-event",
                    code_,
                    &sub,
                );
                obs.value = Some(ObservationValue::Boolean(true.into()));
                self.push(item, Resource::Observation(Box::new(obs)));
            }
            for j in 0..f.therapy_restarts.len() {
                self.map_therapy_restart(i, j, tx);
            }
        }
    }

    pub fn map_vital_status(&mut self) {
        let v = &self.rec.vital_status;
        let status = match v.status {
            Vital::Alive => "alive",
            Vital::Dead => "dead",
            Vital::Unknown => "unknown",
        };
        let effective = self.dt(&v.last_contact_date, || {
            "/vitalStatus/lastContactDate".into()
        });
        let cx = Ctx {
            key: "vital",
            ptr: "/vitalStatus",
            effective,
            encounter: None,
            transplant: None,
        };
        let code_ = cc(vec![local(
            self.term,
            "engraft-observation",
            "vital-status",
        )]);
        let (item, mut obs) = self.base_obs("status", "engraft-vital-status", code_, &cx);
        obs.value = Some(ObservationValue::CodeableConcept(Box::new(cc(vec![
            local(self.term, "engraft-vital-status", status),
        ]))));
        self.push(item, Resource::Observation(Box::new(obs)));
        if let (Some(cause), Some(death)) = (&v.cause_of_death, &v.death_date) {
            let effective = self.dt(death, || "/vitalStatus/deathDate".into());
            let sub = Ctx { effective, ..cx };
            let code_ = cc(vec![local(
                self.term,
                "engraft-observation",
                "cause-of-death",
            )]);
            let (item, mut obs) =
                self.base_obs("cause-of-death", "engraft-vital-status", code_, &sub);
            obs.value = Some(ObservationValue::CodeableConcept(Box::new(cc(vec![
                local(self.term, "engraft-cause-of-death", cause),
            ]))));
            self.push(item, Resource::Observation(Box::new(obs)));
        }
    }
}
