//! Patient, Consent and Provenance.

use fhirbolt::model::r4::resources::{
    Consent, ConsentPolicy, ConsentProvision, Patient, PatientDeceased, PatientLink, Provenance,
    ProvenanceAgent, ProvenanceEntity,
};
use fhirbolt::model::r4::types::{Identifier, Instant, Reference};
use fhirbolt::model::r4::Resource;

use super::build::*;
use super::{ids, resource_type, Mapper};
use crate::record::model::{ConsentStatus, Vital};
use crate::terminology::BASE;

/// The CRID identifier system of the CIBMTR IG's profiles (registry destinations may be
/// configured with the connection guide's `http://cibmtr.org/identifier/CRID`).
pub const CRID_SYSTEM: &str = "http://terminology.cibmtr.org/identifier/CRID";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

impl Mapper<'_> {
    pub fn map_patient(&mut self) {
        let rec = self.rec;
        let p = &rec.patient;
        let mut identifiers = vec![Identifier {
            r#use: Some(code("official")),
            r#type: Some(Box::new(cc_text(
                vec![coding(V2_0203, "RI", Some("Resource identifier"))],
                "Registry UPN",
            ))),
            ..identifier(&ids::upn_system(&rec.registry, &rec.centre.code), &p.upn)
        }];
        for m in &p.mrns {
            identifiers.push(Identifier {
                r#use: Some(code("usual")),
                r#type: Some(Box::new(cc(vec![coding(
                    V2_0203,
                    "MR",
                    Some("Medical record number"),
                )]))),
                ..super::build::identifier(&m.system, &m.value)
            });
        }
        if let Some(crid) = &p.crid {
            identifiers.push(super::build::identifier(CRID_SYSTEM, crid));
        }
        let deceased = match (rec.vital_status.status, &rec.vital_status.death_date) {
            (Vital::Dead, Some(d)) => Some(PatientDeceased::DateTime(
                self.dt(d, || "/vitalStatus/deathDate".into()),
            )),
            _ => None,
        };
        let link = p
            .linked_identifiers
            .iter()
            .map(|l| PatientLink {
                other: Box::new(Reference {
                    r#type: Some(uri("Patient")),
                    identifier: Some(Box::new(super::build::identifier(&l.system, &l.value))),
                    ..Default::default()
                }),
                r#type: code(&l.link_type),
                ..Default::default()
            })
            .collect();
        let est = self.res.estimated.contains("/patient/birthDate");
        let patient = Patient {
            meta: meta("engraft-patient"),
            identifier: identifiers,
            gender: Some(code(p.sex.fhir_code())),
            birth_date: Some(date(&p.birth_date, est)),
            deceased,
            link,
            ..Default::default()
        };
        let url = format!(
            "Patient?identifier={}%7C{}",
            ids::upn_system(&rec.registry, &rec.centre.code),
            p.upn
        );
        let full = self.patient.clone();
        self.push_with(full, Resource::Patient(Box::new(patient)), url);
    }

    pub fn map_consent(&mut self) {
        let c = &self.rec.consent;
        if c.status != ConsentStatus::Granted {
            self.not_mapped(
                "/consent".into(),
                "No Consent resource is sent when consent was not asked.",
            );
            return;
        }
        let item = self.item("consent");
        let consent = Consent {
            meta: meta("engraft-consent"),
            identifier: vec![item.identifier.clone()],
            status: code("active"),
            scope: Box::new(cc(vec![coding(
                "http://terminology.hl7.org/CodeSystem/consentscope",
                "research",
                Some("Research"),
            )])),
            category: vec![cc(vec![coding(
                "http://loinc.org",
                "59284-0",
                Some("Patient Consent"),
            )])],
            patient: Some(self.subject()),
            date_time: c
                .date
                .as_ref()
                .map(|d| self.dt(d, || "/consent/date".into())),
            policy: vec![ConsentPolicy {
                uri: Some(uri(format!(
                    "{BASE}/policy/{}/registry-data-transfer",
                    self.rec.registry
                ))),
                ..Default::default()
            }],
            provision: Some(ConsentProvision {
                r#type: Some(code("permit")),
                period: c
                    .date
                    .as_ref()
                    .map(|d| Box::new(period(self.dt(d, || "/consent/date".into()), None))),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.push(item, Resource::Consent(Box::new(consent)));
    }

    /// One Provenance per record version naming every resource made from it.
    pub fn map_provenance(&mut self, now: &str) {
        let rec = self.rec;
        let key = format!("provenance/v{}", rec.version);
        let id = ids::item_uuid(&self.scope_key(), &key);
        let target = self
            .entries
            .iter()
            .filter_map(|e| e.full_url.as_ref()?.value.clone())
            .map(|u| reference(&u))
            .collect();
        let activity = if rec.version <= 1 { "CREATE" } else { "UPDATE" };
        let provenance = Provenance {
            id: Some(id.to_string().into()),
            meta: meta("engraft-provenance"),
            target,
            recorded: Instant::from(now.to_string()),
            activity: Some(Box::new(cc(vec![coding(
                "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                activity,
                Some(if activity == "CREATE" {
                    "create"
                } else {
                    "revise"
                }),
            )]))),
            agent: vec![
                ProvenanceAgent {
                    r#type: Some(Box::new(cc(vec![coding(
                        "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                        "author",
                        Some("Author"),
                    )]))),
                    who: Box::new(Reference {
                        r#type: Some(uri("Organization")),
                        identifier: Some(Box::new(identifier(
                            &ids::centre_system(&rec.registry),
                            &rec.centre.code,
                        ))),
                        display: rec.centre.name.as_deref().map(s),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ProvenanceAgent {
                    r#type: Some(Box::new(cc(vec![coding(
                        "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                        "assembler",
                        Some("Assembler"),
                    )]))),
                    who: Box::new(Reference {
                        r#type: Some(uri("Device")),
                        display: Some(s("Engraft")),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            entity: vec![ProvenanceEntity {
                role: code("source"),
                what: Box::new(Reference {
                    identifier: Some(Box::new(identifier(
                        &ids::record_system(&rec.registry),
                        &rec.record_id,
                    ))),
                    display: Some(s(format!("registry record version {}", rec.version))),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let resource = Resource::Provenance(Box::new(provenance));
        let url = format!("{}/{}", resource_type(&resource), id);
        self.push_with(format!("urn:uuid:{id}"), resource, url);
    }

    fn scope_key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.rec.registry, self.rec.centre.code, self.rec.patient.upn
        )
    }
}
