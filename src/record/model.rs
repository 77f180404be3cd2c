//! The typed registry record: one patient's entry in a centre's autoimmune HSCT registry.
//!
//! This is the canonical JSON format (`engraft schema record` prints its JSON Schema). Field
//! names are camelCase. Clinical vocabularies (disease, drug, regimen, complication, response,
//! time point...) are codes of Engraft's CodeSystems in `profiles/`; the checks in
//! [`crate::record::check`] verify them against the loaded terminology, so the tables live in
//! one place. Enumerations that drive logic (sex, donor type, stem cell source, engraftment
//! status...) are Rust enums.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::date::RecordDate;

/// One patient's registry record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    /// The registry's id for this record (stable across versions).
    pub record_id: String,
    /// The record's version in the source registry (1, 2, ...).
    #[serde(default = "one")]
    pub version: u32,
    /// The registry this record belongs to, e.g. `EBMT` or a centre's own registry name.
    pub registry: String,
    /// The transplant centre.
    pub centre: Centre,
    pub patient: PatientInfo,
    pub consent: ConsentInfo,
    /// Diagnoses: the autoimmune indication(s), including revised ones (edge case 26).
    pub diagnoses: Vec<Diagnosis>,
    #[serde(default)]
    pub prior_therapies: Vec<PriorTherapy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// One or more transplants (tandem, second HSCT...), each with its own day 0.
    pub transplants: Vec<Transplant>,
    #[serde(default)]
    pub follow_ups: Vec<FollowUp>,
    pub vital_status: VitalStatus,
    /// Dates the source registry estimated (JSON pointers into this record, edge case 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub estimated_dates: Vec<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Centre {
    /// Centre code in the registry (EBMT CIC, CIBMTR CCN...).
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatientInfo {
    /// Unique patient number within the centre.
    pub upn: String,
    /// Hospital medical record numbers.
    #[serde(default)]
    pub mrns: Vec<SystemValue>,
    /// Registry research id (CIBMTR CRID), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crid: Option<String>,
    /// The patient's name, when the centre's registry holds it. Never mapped to FHIR (the
    /// Patient profile allows no name); used only to register the patient with a registry for
    /// a CRID, through the registry's PII endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PersonName>,
    pub sex: Sex,
    /// Birth date; year or year-month in pseudonymised exports.
    pub birth_date: RecordDate,
    /// The same person in another registry or centre (edge case 15): linked, never merged.
    #[serde(default)]
    pub linked_identifiers: Vec<LinkedIdentifier>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonName {
    pub family: String,
    /// Given names, first one first.
    pub given: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemValue {
    /// An identifier system URI.
    pub system: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkedIdentifier {
    pub system: String,
    pub value: String,
    /// `seealso` (another registration of the same person) or `replaced-by`.
    #[serde(default = "seealso")]
    pub link_type: String,
}

fn seealso() -> String {
    "seealso".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub fn fhir_code(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentInfo {
    pub status: ConsentStatus,
    /// When consent was given (or refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<RecordDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_date: Option<RecordDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentStatus {
    Granted,
    Withdrawn,
    Refused,
    NotAsked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Diagnosis {
    /// Code of `https://engraft.dev/fhir/CodeSystem/engraft-disease` (e.g. `multiple-sclerosis`).
    pub disease: String,
    /// Subtype code of the same CodeSystem (e.g. `rrms`, `diffuse-cutaneous-ssc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// Date of first symptoms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset_date: Option<RecordDate>,
    pub diagnosis_date: RecordDate,
    /// Codes the source registry gave (ICD-10-CM, WHO ICD-10, SNOMED CT...), kept verbatim.
    #[serde(default)]
    pub codes: Vec<SourceCode>,
    /// Revision of this diagnosis (CIS -> MS, MS -> NMOSD, RRMS -> SPMS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<Revision>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceCode {
    /// `icd-10-cm`, `icd-10`, `snomed`, or a system URI.
    pub system: String,
    /// Code system version, e.g. the ICD-10-CM fiscal year `2026`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revision {
    pub date: RecordDate,
    pub kind: RevisionKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionKind {
    /// The diagnosis was wrong (MS later found to be NMOSD).
    Refuted,
    /// The disease evolved (CIS -> MS, RRMS -> SPMS).
    Evolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriorTherapy {
    /// Code of `engraft-drug`.
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<RecordDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_date: Option<RecordDate>,
    /// Code of `engraft-stop-reason` (failure, intolerance...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Baseline {
    /// Date of the pre-transplant assessment.
    pub date: RecordDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<Performance>,
    /// HCT-CI (Sorror) total score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hct_ci: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Measure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<Measure>,
    /// Organ function and disease scores at baseline.
    #[serde(default)]
    pub scores: Vec<Score>,
    #[serde(default)]
    pub labs: Vec<Lab>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Performance {
    pub scale: PerformanceScale,
    pub value: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PerformanceScale {
    Karnofsky,
    Lansky,
    Ecog,
}

/// A measured value with its unit as the source wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Measure {
    pub value: f64,
    /// The unit; UCUM where possible (`kg`, `cm`, `[lb_av]`, `10*6/kg`, `mg/m2`...).
    pub unit: String,
}

/// A disease score or organ function value (EDSS, mRSS, FVC %...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Score {
    /// Scale code of `engraft-observation` (`edss`, `mrss`, `fvc-percent`, `dlco-percent`,
    /// `sledai-2k`, `das28-esr`, `das28-crp`, `cdai`, `sdai`, `crohn-cdai`, `ses-cd`, `incat`,
    /// `bvas`, `hct-ci`...).
    pub scale: String,
    /// The value; absent together with `absentReason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Why the value is missing (edge case 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent_reason: Option<AbsentReason>,
    /// Assessment date, when it differs from the visit date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<RecordDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AbsentReason {
    Unknown,
    AskedUnknown,
    NotPerformed,
    NotApplicable,
}

impl AbsentReason {
    pub fn fhir_code(self) -> &'static str {
        match self {
            AbsentReason::Unknown => "unknown",
            AbsentReason::AskedUnknown => "asked-unknown",
            AbsentReason::NotPerformed => "not-performed",
            AbsentReason::NotApplicable => "not-applicable",
        }
    }
}

/// A laboratory value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lab {
    /// Code of `engraft-lab` (`anc`, `platelets`, `cmv-dna`, `c-peptide`...).
    pub test: String,
    pub value: f64,
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<RecordDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transplant {
    /// 1 for the first HSCT, 2 for the second...
    pub number: u32,
    pub donor_type: DonorType,
    pub stem_cell_source: StemCellSource,
    /// Allogeneic donor items; ignored with a warning on autologous records (edge case 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub donor: Option<Donor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobilisation: Option<Mobilisation>,
    /// Code of `engraft-graft-manipulation` (`none`, `cd34-selection`, `t-cell-depletion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graft_manipulation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cryopreserved: Option<bool>,
    /// CD34+ cells infused, unit `10*6/kg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cd34_dose: Option<Measure>,
    /// Total nucleated cells infused, unit `10*8/kg` (or `10*7/kg` for cord).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tnc_dose: Option<Measure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditioning: Option<Conditioning>,
    /// Day 0: the (first) infusion date.
    pub infusion_date: RecordDate,
    /// Last day of a multi-day infusion (edge case 9); day 0 stays the first day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infusion_end_date: Option<RecordDate>,
    /// Boosts, top-ups and DLI: not new transplants (edge case 7).
    #[serde(default)]
    pub supplemental_infusions: Vec<SupplementalInfusion>,
    /// Age at HSCT as the registry states it, used when the birth date is too partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stated_age_years: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engraftment: Option<Engraftment>,
    #[serde(default)]
    pub complications: Vec<Complication>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DonorType {
    Autologous,
    AllogeneicRelated,
    AllogeneicUnrelated,
    Syngeneic,
}

impl DonorType {
    pub fn code(self) -> &'static str {
        match self {
            DonorType::Autologous => "autologous",
            DonorType::AllogeneicRelated => "allogeneic-related",
            DonorType::AllogeneicUnrelated => "allogeneic-unrelated",
            DonorType::Syngeneic => "syngeneic",
        }
    }
    pub fn is_allogeneic(self) -> bool {
        !matches!(self, DonorType::Autologous)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StemCellSource {
    PeripheralBlood,
    BoneMarrow,
    Cord,
    MultipleCord,
    PeripheralBloodAndBoneMarrow,
}

impl StemCellSource {
    pub fn code(self) -> &'static str {
        match self {
            StemCellSource::PeripheralBlood => "peripheral-blood",
            StemCellSource::BoneMarrow => "bone-marrow",
            StemCellSource::Cord => "cord",
            StemCellSource::MultipleCord => "multiple-cord",
            StemCellSource::PeripheralBloodAndBoneMarrow => "peripheral-blood-and-bone-marrow",
        }
    }
    pub fn is_cord(self) -> bool {
        matches!(self, StemCellSource::Cord | StemCellSource::MultipleCord)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Donor {
    /// HLA match as matched/typed loci, e.g. `10/10`, `8/8`, `5/10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hla_match: Option<String>,
    /// Relationship of a related donor (`sibling`, `parent`, `child`, `twin`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmv_igg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abo: Option<String>,
}

impl Donor {
    pub fn is_empty(&self) -> bool {
        self.hla_match.is_none()
            && self.relationship.is_none()
            && self.sex.is_none()
            && self.cmv_igg.is_none()
            && self.abo.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mobilisation {
    pub start_date: RecordDate,
    /// Code of `engraft-mobilisation-regimen` (`cy-gcsf`, `gcsf`, `gcsf-plerixafor`...).
    pub regimen: String,
    #[serde(default)]
    pub drugs: Vec<DrugGiven>,
    /// Apheresis sessions from this mobilisation: together they are one product (edge case 8).
    #[serde(default)]
    pub aphereses: Vec<Apheresis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poor_mobiliser: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Apheresis {
    pub date: RecordDate,
    /// CD34+ cells collected in this session, unit `10*6/kg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cd34_collected: Option<Measure>,
}

/// One drug given in a mobilisation or conditioning regimen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrugGiven {
    /// Code of `engraft-drug` at product level for ATG (`atg-rabbit`, `atg-horse`).
    pub drug: String,
    /// Dose per administration day, with its basis in the unit (`mg/kg`, `mg/m2`, `mg`, `ug/kg`).
    pub dose: Measure,
    /// Total dose over the course, when the registry records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_dose: Option<Measure>,
    pub start_date: RecordDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<RecordDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Conditioning {
    /// Regimen name as the registry wrote it ("BEAM/ATG", "CY200+rATG"...), mapped through the
    /// regimen ConceptMap (edge case 28).
    pub regimen: String,
    /// Intensity as reported (`high`, `intermediate`, `low`); never derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity: Option<String>,
    pub start_date: RecordDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<RecordDate>,
    #[serde(default)]
    pub drugs: Vec<DrugGiven>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tbi: Option<Tbi>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tbi {
    pub dose_gy: f64,
    pub fractions: u32,
    pub start_date: RecordDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<RecordDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupplementalInfusion {
    pub date: RecordDate,
    /// `boost`, `top-up` or `dli`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Engraftment {
    pub neutrophil: Recovery,
    pub platelet: Recovery,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recovery {
    pub status: RecoveryStatus,
    /// First of the three qualifying days; required when `engrafted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<RecordDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryStatus {
    Engrafted,
    /// Platelets never fell below 20x10^9/L and no transfusion (edge case 3).
    NotApplicable,
    /// Death or another transplant before recovery could be judged (edge case 5).
    NotEvaluable,
    /// Graft failure (no recovery by day +30, or +42 for cord).
    Failure,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Complication {
    /// Code of `engraft-complication` (`infection`, `cmv-reactivation`, `acute-gvhd`...).
    pub kind: String,
    pub onset_date: RecordDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_date: Option<RecordDate>,
    /// Grade as reported: GvHD `I`-`IV` (acute), `mild`/`moderate`/`severe` (chronic), CTCAE `1`-`5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    /// Organism for infections (free text as reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organism: Option<String>,
    /// Affected organ code of `engraft-organ` (`skin`, `liver`, `gut`, `lung`, `kidney`, `heart`...).
    #[serde(default)]
    pub organs: Vec<String>,
    /// Source codes kept verbatim (ICD-10-CM D69.3...).
    #[serde(default)]
    pub codes: Vec<SourceCode>,
}

/// A follow-up assessment at a registry time point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FollowUp {
    /// The transplant this follow-up is relative to; defaults to the latest one before `date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transplant: Option<u32>,
    /// Code of `engraft-time-point` (`D100`, `M6`, `Y1`, ... `unscheduled`).
    pub time_point: String,
    /// The real assessment date (edge case 30).
    pub date: RecordDate,
    #[serde(default)]
    pub scores: Vec<Score>,
    #[serde(default)]
    pub labs: Vec<Lab>,
    /// Code of `engraft-response` (`cr`, `pr`, `sd`, `pd`, `neda`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Disease events since the previous visit (relapse, progression, pseudo-relapse...).
    #[serde(default)]
    pub events: Vec<DiseaseEvent>,
    /// Immunosuppression or DMT restarted after HSCT.
    #[serde(default)]
    pub therapy_restarts: Vec<TherapyRestart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiseaseEvent {
    /// `relapse`, `progression`, `pseudo-relapse` or `secondary-autoimmunity-flare`, kept as
    /// the registry classified it (edge case 27).
    pub kind: String,
    pub date: RecordDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TherapyRestart {
    /// Code of `engraft-drug`.
    pub agent: String,
    pub start_date: RecordDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VitalStatus {
    pub status: Vital,
    pub last_contact_date: RecordDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub death_date: Option<RecordDate>,
    /// Code of `engraft-cause-of-death`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_of_death: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Vital {
    Alive,
    Dead,
    Unknown,
}
