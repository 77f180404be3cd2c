//! Pure mapping of a checked registry record to a FHIR R4 transaction Bundle.
//!
//! One file per group of resources; each `map_*` adds entries through [`Mapper::push`], which
//! gives every resource its deterministic id, business identifier and conditional-update
//! request. The Provenance naming every target is added last. Nothing here does IO.

mod build;
mod clinical;
pub mod ids;
mod observation;
mod patient;
pub use patient::CRID_SYSTEM;
mod transplant;

use foldhash::HashMap;

use fhirbolt::model::r4::resources::{Bundle, BundleEntry, BundleEntryRequest};
use fhirbolt::model::r4::types::{DateTime, Identifier, Instant};
use fhirbolt::model::r4::Resource;
use serde::Serialize;

use crate::record::check::{Checked, ReportEntry, ReportStatus, Resolved};
use crate::record::{Issue, Record, RecordDate};
use crate::terminology::Terminology;

pub use build::decimal;

/// A mapped record: the Bundle and what the mapping did with each source field.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub bundle: Bundle,
    pub report: MappingReport,
}

/// Per-record mapping report: fields not mapped, defaulted, derived or converted, and the
/// warnings the checks raised.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingReport {
    pub record_id: String,
    pub version: u32,
    pub resources: usize,
    pub entries: Vec<ReportEntry>,
    pub warnings: Vec<Issue>,
}

/// Maps a checked record. `now` is the FHIR instant of the conversion, used for
/// `Bundle.timestamp` and `Provenance.recorded`; everything else depends on the record alone.
pub fn map_record(checked: &Checked, term: &Terminology, now: &str) -> Mapped {
    let rec = &checked.record;
    let mut m = Mapper::new(rec, &checked.resolved, term);
    m.map_patient();
    m.map_consent();
    m.map_diagnoses();
    m.map_prior_therapies();
    m.map_baseline();
    for i in 0..rec.transplants.len() {
        m.map_transplant(i);
    }
    m.map_follow_ups();
    m.map_vital_status();
    m.map_provenance(now);
    let resources = m.entries.len();
    let mut entries = checked.notes.clone();
    entries.append(&mut m.report);
    let bundle = Bundle {
        meta: build::meta("engraft-bundle"),
        r#type: build::code("transaction"),
        timestamp: Some(Instant::from(now.to_string())),
        entry: m.entries,
        ..Default::default()
    };
    Mapped {
        bundle,
        report: MappingReport {
            record_id: rec.record_id.clone(),
            version: rec.version,
            resources,
            entries,
            warnings: checked.warnings.clone(),
        },
    }
}

/// One emitted item: its bundle fullUrl and business identifier.
pub(crate) struct Item {
    pub full_url: String,
    pub identifier: Identifier,
    /// The conditional-update URL query value.
    search: String,
}

pub(crate) struct Mapper<'a> {
    pub term: &'a Terminology,
    pub rec: &'a Record,
    pub res: &'a Resolved,
    scope: String,
    item_system: String,
    used_keys: HashMap<String, u32>,
    pub entries: Vec<BundleEntry>,
    pub patient: String,
    /// fullUrl of each transplant's HSCT Procedure.
    pub hsct: Vec<String>,
    /// fullUrl of each diagnosis Condition.
    pub diagnosis: Vec<String>,
    pub report: Vec<ReportEntry>,
}

impl<'a> Mapper<'a> {
    fn new(rec: &'a Record, res: &'a Resolved, term: &'a Terminology) -> Self {
        let scope = format!("{}/{}/{}", rec.registry, rec.centre.code, rec.patient.upn);
        let mut m = Mapper {
            term,
            rec,
            res,
            scope,
            item_system: ids::item_system(),
            used_keys: HashMap::default(),
            entries: Vec::with_capacity(64),
            patient: String::new(),
            hsct: Vec::new(),
            diagnosis: Vec::new(),
            report: Vec::new(),
        };
        m.patient = m.full_url_of("patient");
        m.hsct = (0..rec.transplants.len())
            .map(|i| m.full_url_of(&format!("tx{}/hsct", rec.transplants[i].number)))
            .collect();
        m
    }

    fn full_url_of(&self, key: &str) -> String {
        format!("urn:uuid:{}", ids::item_uuid(&self.scope, key))
    }

    /// Reserves the item `key`. A key that repeats in one record (two infections of the same
    /// kind on the same day) gets `~2`, `~3`...: `~` is unreserved in URLs, so the conditional
    /// update URL keeps working (`#` would start a fragment).
    pub fn item(&mut self, key: &str) -> Item {
        let n = match self.used_keys.get_mut(key) {
            Some(n) => {
                *n += 1;
                *n
            }
            None => {
                self.used_keys.insert(key.to_string(), 1);
                1
            }
        };
        // `value` is `registry/centre/upn/key`, the UUID v5 name of the item.
        let mut value = String::with_capacity(self.scope.len() + key.len() + 4);
        value.push_str(&self.scope);
        value.push('/');
        value.push_str(key);
        if n > 1 {
            value.push('~');
            value.push_str(&n.to_string());
        }
        let uuid = ids::uuid_of(&value);
        let full_url = uuid
            .urn()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .to_string();
        let search = [self.item_system.as_str(), "%7C", value.as_str()].concat();
        Item {
            full_url,
            identifier: build::identifier(&self.item_system, &value),
            search,
        }
    }

    /// Adds a resource as a conditional update on its business identifier.
    pub fn push(&mut self, item: Item, resource: Resource) -> String {
        let url = [
            resource_type(&resource),
            "?identifier=",
            item.search.as_str(),
        ]
        .concat();
        self.push_with(item.full_url, resource, url)
    }

    pub fn push_with(&mut self, full_url: String, resource: Resource, url: String) -> String {
        self.entries.push(BundleEntry {
            full_url: Some(build::uri(full_url.clone())),
            resource: Some(resource),
            request: Some(BundleEntryRequest {
                method: build::code("PUT"),
                url: build::uri(url),
                ..Default::default()
            }),
            ..Default::default()
        });
        full_url
    }

    /// A dateTime, flagged when the source estimated the date at `ptr`.
    pub fn dt(&self, d: &RecordDate, ptr: impl FnOnce() -> String) -> DateTime {
        let est = !self.res.estimated.is_empty() && self.res.estimated.contains(&ptr());
        build::date_time(d, est)
    }

    pub fn not_mapped(&mut self, ptr: String, reason: &str) {
        self.report.push(ReportEntry {
            pointer: ptr,
            status: ReportStatus::NotMapped,
            reason: reason.to_string(),
        });
    }

    /// An extension of Engraft's whose value is one code of an Engraft CodeSystem.
    pub fn coded_extension(
        &self,
        ext: &str,
        cs_id: &str,
        code: &str,
    ) -> fhirbolt::model::r4::types::Extension {
        build::extension(
            &build::ext_url(ext),
            fhirbolt::model::r4::types::ExtensionValue::CodeableConcept(Box::new(build::cc(vec![
                build::local(self.term, cs_id, code),
            ]))),
        )
    }

    /// The `day-post-hsct` component: days since the day 0 a value counts from.
    pub fn day_component(&self, days: i64) -> fhirbolt::model::r4::resources::ObservationComponent {
        fhirbolt::model::r4::resources::ObservationComponent {
            code: Box::new(build::cc(vec![build::local(
                self.term,
                "engraft-observation",
                "day-post-hsct",
            )])),
            value: Some(
                fhirbolt::model::r4::resources::ObservationComponentValue::Quantity(Box::new(
                    build::ucum(days as f64, "d"),
                )),
            ),
            ..Default::default()
        }
    }

    pub fn subject(&self) -> Box<fhirbolt::model::r4::types::Reference> {
        Box::new(build::reference(&self.patient))
    }
}

/// The resource types a mapped record contains.
pub const RESOURCE_TYPES: &[&str] = &[
    "Patient",
    "Consent",
    "Condition",
    "MedicationStatement",
    "MedicationAdministration",
    "Procedure",
    "BiologicallyDerivedProduct",
    "Observation",
    "Encounter",
    "Provenance",
];

/// The resource type name of a resource.
pub fn resource_type(r: &Resource) -> &'static str {
    match r {
        Resource::Patient(_) => "Patient",
        Resource::Consent(_) => "Consent",
        Resource::Condition(_) => "Condition",
        Resource::Procedure(_) => "Procedure",
        Resource::Observation(_) => "Observation",
        Resource::MedicationAdministration(_) => "MedicationAdministration",
        Resource::MedicationStatement(_) => "MedicationStatement",
        Resource::Encounter(_) => "Encounter",
        Resource::BiologicallyDerivedProduct(_) => "BiologicallyDerivedProduct",
        Resource::Provenance(_) => "Provenance",
        Resource::Bundle(_) => "Bundle",
        Resource::OperationOutcome(_) => "OperationOutcome",
        _ => "Resource",
    }
}
