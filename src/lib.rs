//! Engraft: an HL7 FHIR R4 gateway for autoimmune stem cell transplant registries.
//!
//! Data flow: a registry record (JSON or CSV, [`record`]) is checked ([`record::check`]), mapped
//! to a FHIR R4 transaction Bundle ([`mapping`]) with codes from the bundled terminology
//! ([`terminology`], `profiles/`), and checked against the R4 definitions ([`validation`]).
//! [`fixtures`] generates synthetic records; [`cli`] is the command line. Mapping and checks
//! are pure: no IO below `cli`.

pub mod auth;
pub mod cli;
pub mod config;
pub mod convert;
pub mod fhir;
pub mod fixtures;
pub mod json;
pub mod mapping;
pub mod net;
pub mod profiles;
pub mod record;
pub mod reverse;
pub mod sandbox;
pub mod server;
pub mod store;
pub mod sync;
pub mod terminology;
pub mod validation;

/// mimalloc: the mapping allocates many small strings per resource, and glibc's allocator
/// spent half the conversion time in malloc/free (measured with perf on `cargo bench`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
