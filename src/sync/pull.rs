//! Pull: EHR changes become proposed registry updates, never silent overwrites. For every
//! patient Engraft knows at a destination (its ledger's Patients), the Conditions, Procedures
//! and Observations changed since that patient's stored `_lastUpdated` watermark are fetched,
//! page by page (a patient Engraft comes to know later starts from the beginning).
//! Those Engraft wrote itself are left out; those coded with a code Engraft works with (its
//! ValueSets and the standard targets of its ConceptMaps) wait in the review queue for a
//! person to accept or reject.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use super::ledger;
use super::remote::{Destination, Reply};
use crate::store::{NewReview, Review, SqlStore, StoreError};

/// The resource types pulled.
pub const TYPES: [&str; 3] = ["Condition", "Procedure", "Observation"];

/// What one pull found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PullReport {
    pub destination: String,
    pub patients: usize,
    pub fetched: usize,
    /// Written by Engraft itself.
    pub ours: usize,
    /// Coded with nothing Engraft works with.
    pub not_relevant: usize,
    /// New review items (a version already queued is not queued again).
    pub proposed: u64,
}

/// Why a pull stopped.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("the destination answered {0}")]
    Remote(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn remote_error(reply: &Reply) -> PullError {
    PullError::Remote(match reply.status() {
        Some(s) => format!("HTTP {s}"),
        None => format!("{:?}", reply.answer).to_lowercase(),
    })
}

/// The first coding of `resource.code` that Engraft knows.
pub fn relevant_code<'a>(
    resource: &'a Value,
    known: &HashSet<(String, String)>,
) -> Option<(&'a str, &'a str, Option<&'a str>)> {
    resource["code"]["coding"].as_array()?.iter().find_map(|c| {
        let (s, v) = (c["system"].as_str()?, c["code"].as_str()?);
        known
            .contains(&(s.to_string(), v.to_string()))
            .then(|| (s, v, c["display"].as_str()))
    })
}

/// The ledger row that makes the EHR's own resource stand for the one review item `r` added
/// to its record (`old` and `new`: the record's Bundle before and after): `matched`, so it is
/// referenced, never sent or deleted, and the data the EHR gave is not sent back to it as a
/// copy. None when the change made no new resource (a changed value) or not exactly one.
pub fn stand_in(old: &Value, new: &Value, r: &Review) -> Option<ledger::Row> {
    let code = r.code.split_once('|')?;
    let one = crate::reverse::made(old, new, &r.resource_type, &[code])?;
    Some((
        ledger::local_key(one)?,
        ledger::Held {
            remote: r.remote.clone(),
            version: Some(r.remote_version.clone()).filter(|v| !v.is_empty()),
            hash: ledger::hash(&one["resource"]),
            matched: true,
        },
    ))
}

/// Pulls `dest` once.
pub async fn pull(
    store: &SqlStore,
    dest: &Destination,
    known: &HashSet<(String, String)>,
) -> Result<PullReport, PullError> {
    let patients = store.ledger_patients(&dest.name).await?;
    let ours = store.ledger_remotes(&dest.name).await?;
    let mut report = PullReport {
        destination: dest.name.clone(),
        patients: patients.len(),
        ..PullReport::default()
    };
    for rtype in TYPES {
        let marks = store.watermarks(&dest.name, rtype).await?;
        let mut moved = Vec::new();
        let mut items = Vec::new();
        for (record, patient) in &patients {
            let since = marks.get(patient);
            let mut newest = since.cloned();
            let id = patient.trim_start_matches("Patient/");
            let mut query = vec![("patient", id.to_string()), ("_count", "100".into())];
            if let Some(w) = since {
                query.push(("_lastUpdated", format!("ge{w}")));
            }
            let query = serde_urlencoded::to_string(&query).unwrap_or_default();
            let found = dest
                .search_all(&format!("{rtype}?{query}"))
                .await
                .map_err(|r| remote_error(&r))?;
            for r in found {
                report.fetched += 1;
                let at = r["meta"]["lastUpdated"].as_str().map(str::to_string);
                if at.is_some() && at > newest {
                    newest = at;
                }
                let remote = format!("{rtype}/{}", r["id"].as_str().unwrap_or(""));
                if ours.contains(&remote) {
                    report.ours += 1;
                    continue;
                }
                let Some((system, code, display)) = relevant_code(&r, known) else {
                    report.not_relevant += 1;
                    continue;
                };
                items.push(NewReview {
                    destination: dest.name.clone(),
                    record: record.clone(),
                    remote,
                    remote_version: r["meta"]["versionId"].as_str().unwrap_or("").to_string(),
                    resource_type: rtype.to_string(),
                    code: format!("{system}|{code}"),
                    display: display.map(str::to_string),
                    resource: r.to_string(),
                });
            }
            if let Some(w) = newest.filter(|w| Some(w) != since) {
                moved.push((patient.clone(), w));
            }
        }
        // Reviews and watermarks together: a crash between them re-fetches, and the review
        // rows are unique per remote version, so nothing is queued twice.
        report.proposed += store
            .queue_reviews(&dest.name, rtype, &items, &moved)
            .await?;
    }
    tracing::info!(destination = %dest.name, patients = report.patients, fetched = report.fetched, proposed = report.proposed, "pull finished");
    Ok(report)
}

/// Pulls `dest` every `interval` until `stop` turns true; a failed pull is logged and tried
/// again at the next tick.
pub async fn scheduled(
    store: SqlStore,
    dest: std::sync::Arc<Destination>,
    interval: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let known = crate::terminology::Terminology::bundled().known_codes();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return },
        }
        if let Err(e) = pull(&store, &dest, &known).await {
            tracing::warn!(destination = %dest.name, error = %e, "scheduled pull failed");
        }
    }
}
