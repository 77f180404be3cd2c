//! Registry record JSON (one record or an array): parse, check, map, serialise, validate.
#![no_main]

use std::sync::OnceLock;

use engraft::convert::Converter;
use libfuzzer_sys::fuzz_target;

fn converter() -> &'static Converter {
    static C: OnceLock<Converter> = OnceLock::new();
    C.get_or_init(Converter::default)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = engraft::record::records_from_json(data) {
        for record in records.into_iter().flatten() {
            let _ = converter().convert(record, "2026-01-01T00:00:00Z");
        }
    }
});
