//! Patient matching: before a record's first delivery to a destination with an MRN system
//! configured, its Patient is looked for there by that identifier. One match is the EHR's own
//! Patient: referenced, never written. Two are an error, never a guess. None follows the
//! destination's policy: create ours, or hold the record as `unmatched` for a person.

use std::collections::HashMap;

use serde_json::Value;

use super::ledger::{self, Held, Key};
use super::remote::Destination;
use super::write::Done;
use crate::config::UnmatchedPatient;
use crate::store::{Attempt, SqlStore, StoreError};

/// The record's Patient entry and its MRN in `system`, if it has one.
pub fn mrn<'a>(bundle: &'a Value, system: &str) -> Option<(&'a Value, Option<&'a str>)> {
    let entry = bundle["entry"]
        .as_array()?
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")?;
    let value = entry["resource"]["identifier"]
        .as_array()
        .and_then(|ids| ids.iter().find(|i| i["system"] == system))
        .and_then(|i| i["value"].as_str());
    Some((entry, value))
}

fn unmatched(dest: &Destination, why: &str) -> Option<Done> {
    match dest.unmatched {
        UnmatchedPatient::Create => None,
        UnmatchedPatient::Hold => Some(Done::Stopped(Attempt::Failed {
            reason: "unmatched",
            status: None,
            error: format!(
                "{why}; create or link the Patient in the EHR, then replay (unmatched_patient = \"hold\")"
            ),
            outcome: None,
        })),
    }
}

/// Matches the record's Patient at `dest` when the ledger does not know it yet. `Some` stops
/// the attempt (held, two matches, or the search failed).
pub async fn patient(
    store: &SqlStore,
    dest: &Destination,
    record: &str,
    bundle: &Value,
    held: &mut HashMap<Key, Held>,
) -> Result<Option<Done>, StoreError> {
    let Some(system) = &dest.patient_system else {
        return Ok(None);
    };
    let Some((entry, value)) = mrn(bundle, system) else {
        return Ok(None);
    };
    let Some(key) = ledger::local_key(entry) else {
        return Ok(None);
    };
    if held.contains_key(&key) {
        return Ok(None);
    }
    let Some(value) = value else {
        return Ok(unmatched(
            dest,
            "the record has no MRN in the destination's identifier system",
        ));
    };
    let query = serde_urlencoded::to_string([("identifier", format!("{system}|{value}"))])
        .unwrap_or_default();
    let found = match dest.search_all(&format!("Patient?{query}")).await {
        Ok(f) => f,
        Err(reply) => return Ok(Some(Done::Failed(reply))),
    };
    match found.as_slice() {
        [] => Ok(unmatched(dest, "no Patient at the destination holds the record's MRN")),
        [p] => {
            let row = (
                key,
                Held {
                    remote: format!("Patient/{}", p["id"].as_str().unwrap_or("")),
                    version: p["meta"]["versionId"].as_str().map(str::to_string),
                    hash: ledger::hash(&entry["resource"]),
                    matched: true,
                },
            );
            store
                .ledger_update(&dest.name, record, std::slice::from_ref(&row))
                .await?;
            tracing::info!(destination = %dest.name, record, remote = %row.1.remote, "patient matched by MRN");
            held.insert(row.0, row.1);
            Ok(None)
        }
        many => Ok(Some(Done::Stopped(Attempt::Failed {
            reason: "conflict",
            status: None,
            error: format!(
                "{} Patients at the destination hold the record's MRN; merge or fix them in the EHR, then replay",
                many.len()
            ),
            outcome: None,
        }))),
    }
}
