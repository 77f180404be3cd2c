//! Engraft: an HL7 FHIR R4 gateway for autoimmune stem cell transplant registries.
//!
//! Data flow: a registry record (JSON or CSV, [`record`]) is checked ([`record::check`]), mapped
//! to a FHIR R4 transaction Bundle ([`mapping`]) with codes from the bundled terminology
//! ([`terminology`], `profiles/`), and checked against the R4 definitions ([`validation`]).
//! [`fixtures`] generates synthetic records; [`cli`] is the command line. Mapping and checks
//! are pure: no IO below `cli`.

pub mod cli;
pub mod validation;
pub mod convert;
pub mod fhir;
pub mod fixtures;
pub mod mapping;
pub mod profiles;
pub mod record;
pub mod terminology;
