//! The records CSV importer (delimiter and decimal detection, columns, cells), then mapping.
#![no_main]

use std::sync::OnceLock;

use engraft::convert::Converter;
use libfuzzer_sys::fuzz_target;

fn converter() -> &'static Converter {
    static C: OnceLock<Converter> = OnceLock::new();
    C.get_or_init(Converter::default)
}

fn scales() -> &'static [String] {
    static S: OnceLock<Vec<String>> = OnceLock::new();
    S.get_or_init(|| engraft::record::csv::scale_codes(engraft::terminology::Terminology::bundled()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = engraft::record::csv::open("fuzz.csv", data, None, scales()) else {
        return;
    };
    for row in reader.take(64).flatten() {
        let _ = converter().convert(row.record, "2026-01-01T00:00:00Z");
    }
});
