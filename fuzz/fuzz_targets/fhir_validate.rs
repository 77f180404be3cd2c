//! FHIR JSON in, validation against base R4 and the bundled profiles out.
#![no_main]

use std::sync::OnceLock;

use engraft::validation::Validator;
use libfuzzer_sys::fuzz_target;

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(Validator::bundled)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = validator().validate(&v, None);
    }
});
