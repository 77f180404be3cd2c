//! Validation of FHIR R4 resources. [`base`] checks a resource against the official R4
//! (4.0.1) definitions: unknown elements, cardinality at every level, JSON types of
//! primitives, and required bindings to enumerable ValueSets. It works on the JSON form, so it
//! sees exactly what is sent, and it reports every issue with a FHIRPath location.

pub mod base;

pub use base::{validate_resource, Definitions};
