//! What the benches share: the process's CPU time, and generated records ready to store.

use engraft::convert::{Converter, Outcome};
use engraft::record::model::PersonName;
use engraft::store::{prepare, Prepared};

/// User + system CPU time of this process.
pub fn cpu() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    std::time::Duration::from_millis(ticks * 10)
}

/// Generated record `i` of `seed`, converted and prepared for the store; `named` adds the
/// demographics registry CRID registration needs.
pub fn prepared(seed: u64, i: u64, named: bool) -> Prepared {
    let mut record = engraft::fixtures::generate(seed, i);
    if named {
        record.patient.name = Some(PersonName {
            family: format!("Family{i}"),
            given: vec![format!("Given{i}")],
        });
    }
    let record_json = serde_json::to_string(&record).unwrap();
    let (registry, record_id) = (record.registry.clone(), record.record_id.clone());
    let Outcome::Converted(c) =
        Converter::default().convert_located(record, "2026-01-01T00:00:00Z", |_| {})
    else {
        panic!("generated records convert")
    };
    let bundle: serde_json::Value = serde_json::from_slice(&c.bundle).unwrap();
    Prepared {
        id: engraft::store::record_key(&registry, &record_id),
        registry,
        record_id,
        record: record_json,
        resources: prepare::resources(&bundle).unwrap(),
        bundle_packed: prepare::pack(std::str::from_utf8(&c.bundle).unwrap()).unwrap(),
        bundle: String::from_utf8(c.bundle).unwrap(),
        report: "{}".into(),
    }
}
