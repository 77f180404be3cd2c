//! FHIR search query strings: decoded as a form, then parsed for every searchable type.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    for t in ["Patient", "Observation", "Condition", "Procedure", "Provenance"] {
        let _ = engraft::server::fhir_rest::parse_search(t, &pairs, 500);
    }
});
