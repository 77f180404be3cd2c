//! The FHIR package in `profiles/`, embedded at build time (see `build.rs`).

include!(concat!(env!("OUT_DIR"), "/bundled_profiles.rs"));

/// (file name, JSON text) of every bundled profile, CodeSystem, ValueSet and ConceptMap.
pub fn bundled_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    BUNDLED.iter().copied()
}

pub mod snapshot;
