//! One submission attempt of a record to a registry destination (the CIBMTR Direct FHIR
//! workflow; pure parts in [`super::cibmtr`]):
//!
//! 1. The patient's CRID: from the store, else from the record, else registered once (`PUT <root>/CRID` or
//!    `Patient/$crid-assignment`, by config) and kept.
//! 2. The registry-side Patient: from the ledger, else searched by the centre tag and the
//!    CRID, else created de-identified; kept in the ledger as the registry's own (referenced,
//!    never rewritten).
//! 3. The plan against the ledger: unchanged resources are not sent, changed ones are `PUT`
//!    by the id the registry gave them, new ones `POST`ed. When the registry may already hold
//!    a resource the ledger does not know (an earlier attempt whose answer was lost), it is
//!    looked up by its identifier first, so nothing is created twice.
//! 4. Transaction Bundles of at most `max_entries`, to the FHIR endpoint; every entry's answer
//!    read on its own: accepted ones go to the ledger, rejected ones fail the delivery with
//!    the registry's reasons (a replay sends only them).
//!
//! Every attempt leaves a report (per resource: what was sent, what the registry answered).

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::cibmtr::{self, EntryResult};
use super::ledger::{self, Held, Key, Plan};
use super::push::judge;
use super::remote::{Destination, Registry, Reply};
use crate::config::CridRegistration;
use crate::store::{Attempt, Delivery, SqlStore, StoreError};

/// One resource's line in a submission report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Line {
    /// `Type/<local id>`.
    pub resource: String,
    /// `create`, `update`, or for a dry run also `unchanged`.
    pub action: &'static str,
    /// `accepted`, `rejected`, `not-sent` (the attempt stopped before it), or `planned`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The registry's id for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The registry's reason for a rejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What one attempt did: the lines, how many resources were unchanged, and the registry
/// Patient and CRID used.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    pub record: String,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    pub unchanged: usize,
    pub resources: Vec<Line>,
    /// Resources a new record version dropped: the registry takes no deletes, so they stay
    /// there; listed for the data manager.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_deleted: Vec<String>,
    /// How the attempt ended (`delivered`, `retry`, `failed`, `skipped`) and why.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn failed(reason: &'static str, error: String) -> Attempt {
    Attempt::Failed {
        reason,
        status: None,
        error,
        outcome: None,
    }
}

/// `Type/<local id>` of an entry.
fn label(e: &Value) -> String {
    ledger::local_key(e)
        .map(|(t, id)| format!("{t}/{id}"))
        .unwrap_or_else(|| "(entry without a urn:uuid fullUrl)".into())
}

/// One attempt; the report is kept in the store whatever the outcome.
pub async fn attempt(
    store: &SqlStore,
    dest: &Destination,
    reg: &Registry,
    d: &Delivery,
    record: &str,
    bundle: Value,
) -> Result<Attempt, StoreError> {
    let mut report = Report {
        record: d.record.clone(),
        version: d.record_version,
        ..Report::default()
    };
    let record: Value = serde_json::from_str(record).unwrap_or_default();
    let outcome = submit(store, dest, reg, d, &record, bundle, &mut report).await?;
    let (name, error) = match &outcome {
        Attempt::Delivered { .. } => ("delivered", None),
        Attempt::Retry { error, .. } => ("retry", Some(error.clone())),
        Attempt::Failed { error, .. } => ("failed", Some(error.clone())),
        Attempt::Skipped { why } => ("skipped", Some(why.clone())),
    };
    report.outcome = name.into();
    report.error = error;
    let value = serde_json::to_value(&report).unwrap_or_default();
    store
        .save_report(&dest.name, &d.record, d.record_version, &value)
        .await?;
    Ok(outcome)
}

async fn submit(
    store: &SqlStore,
    dest: &Destination,
    reg: &Registry,
    d: &Delivery,
    record: &Value,
    bundle: Value,
    report: &mut Report,
) -> Result<Attempt, StoreError> {
    let bundle = cibmtr::submission_bundle(bundle, reg);
    let Some(patient_entry) = bundle["entry"].as_array().and_then(|es| {
        es.iter()
            .find(|e| e["resource"]["resourceType"] == "Patient")
    }) else {
        return Ok(failed(
            "validation",
            "the record's Bundle has no Patient".into(),
        ));
    };
    let Some(patient_key) = ledger::local_key(patient_entry) else {
        return Ok(failed(
            "validation",
            "the record's Patient has no urn:uuid fullUrl".into(),
        ));
    };
    let mut held = store.ledger(&dest.name, &d.record).await?;
    // Whether the registry may hold resources the ledger does not know: any time but when
    // its Patient was created just now.
    let mut may_hold_unknown = true;
    if let Some(h) = held.get(&patient_key) {
        report.patient = Some(h.remote.clone());
    } else {
        let patient = &patient_entry["resource"];
        let crid = match crid(store, dest, reg, &patient_key.1, patient, record).await? {
            Ok(c) => c,
            Err(stop) => return Ok(stop(dest, d)),
        };
        report.crid = Some(crid.clone());
        let (remote, created) = match registry_patient(dest, reg, &crid).await {
            Ok(p) => p,
            Err(stop) => return Ok(stop(dest, d)),
        };
        may_hold_unknown = !created;
        let row = (
            patient_key.clone(),
            Held {
                remote: remote.clone(),
                version: None,
                hash: String::new(),
                matched: true,
            },
        );
        store
            .ledger_update(&dest.name, &d.record, std::slice::from_ref(&row))
            .await?;
        held.insert(row.0, row.1);
        report.patient = Some(remote);
    }
    if report.crid.is_none() {
        report.crid = store.crid(&dest.name, &patient_key.1).await?;
    }
    let support = match dest.support().await {
        Ok(s) => s,
        Err(reply) => return Ok(judge(dest, d, &reply)),
    };
    let mut plan = ledger::plan(bundle, &held, support);
    // The registry's own Patient counts as unchanged in the plan; it is not ours to count.
    report.unchanged = plan.unchanged.saturating_sub(1);
    report.not_deleted = plan
        .deletes
        .iter()
        .map(|((t, id), _)| format!("{t}/{id}"))
        .collect();
    if !report.not_deleted.is_empty() {
        tracing::warn!(destination = %dest.name, record = %d.record, n = report.not_deleted.len(), "resources dropped from the record stay at the registry (it takes no deletes)");
    }
    if plan.entries.is_empty() {
        return Ok(Attempt::Skipped {
            why: "nothing changed since the last submission".into(),
        });
    }
    if let Err(stop) = resolve_unknown(dest, reg, &held, &mut plan, may_hold_unknown).await {
        return Ok(stop(dest, d));
    }
    send(store, dest, d, &plan, report).await
}

/// How an attempt stops early: by the retry policy on a reply, or with a given outcome.
type Stop = Box<dyn FnOnce(&Destination, &Delivery) -> Attempt + Send>;

fn by_policy(reply: Reply) -> Stop {
    Box::new(move |dest, d| judge(dest, d, &reply))
}

fn with(a: Attempt) -> Stop {
    Box::new(move |_, _| a)
}

/// The patient's CRID: kept from before, else registered (once) and kept.
async fn crid(
    store: &SqlStore,
    dest: &Destination,
    reg: &Registry,
    patient: &str,
    resource: &Value,
    record: &Value,
) -> Result<Result<String, Stop>, StoreError> {
    if let Some(c) = store.crid(&dest.name, patient).await? {
        return Ok(Ok(c));
    }
    if let Some(c) = cibmtr::crid_in(resource, &reg.crid_system) {
        return Ok(Ok(store.keep_crid(&dest.name, patient, &c).await?));
    }
    let request = match reg.crid_registration {
        CridRegistration::CridApi => cibmtr::crid_api_request(record, &reg.ccn),
        CridRegistration::CridAssignment => cibmtr::crid_assignment_request(record, reg),
    };
    let body = match request {
        Ok(b) => b.to_string(),
        Err(e) => {
            return Ok(Err(with(failed(
                "validation",
                format!("{e}; add them to the record or give the patient's CRID (patient.crid), then replay"),
            ))))
        }
    };
    let reply = match reg.crid_registration {
        CridRegistration::CridApi => {
            dest.request(
                Method::PUT,
                &format!("{}/CRID", reg.root),
                Some(body),
                "application/json",
                &[],
            )
            .await
        }
        CridRegistration::CridAssignment => {
            dest.call(Method::POST, "Patient/$crid-assignment", Some(body), &[])
                .await
        }
    };
    if !reply.ok() {
        return Ok(Err(by_policy(reply)));
    }
    match cibmtr::crid_of(&reply.json(), &reg.crid_system) {
        Some(c) => Ok(Ok(store.keep_crid(&dest.name, patient, &c).await?)),
        None => Ok(Err(with(Attempt::Failed {
            reason: "server",
            status: reply.status(),
            error: "the registry's CRID answer holds no CRID".into(),
            outcome: None,
        }))),
    }
}

/// The registry-side Patient of `crid`: found by the centre tag and the CRID, else created
/// de-identified. Returns its `Patient/<id>` and whether it was created now.
async fn registry_patient(
    dest: &Destination,
    reg: &Registry,
    crid: &str,
) -> Result<(String, bool), Stop> {
    let found = dest
        .search_all(&cibmtr::patient_search(crid, reg))
        .await
        .map_err(by_policy)?;
    match found.as_slice() {
        [p] => {
            let id = p["id"].as_str().unwrap_or_default();
            return Ok((format!("Patient/{id}"), false));
        }
        [] => {}
        many => {
            return Err(with(failed(
                "conflict",
                format!(
                    "{} Patients at the registry hold this CRID under the centre's tag; not guessing which",
                    many.len()
                ),
            )))
        }
    }
    let reply = dest
        .call(
            Method::POST,
            "Patient",
            Some(cibmtr::deidentified_patient(crid, reg).to_string()),
            &[],
        )
        .await;
    if !reply.ok() {
        return Err(by_policy(reply));
    }
    match reply.written().and_then(|l| ledger::parse_location(&l)) {
        Some((remote, _)) => Ok((remote, true)),
        None => Err(with(Attempt::Failed {
            reason: "server",
            status: reply.status(),
            error: "the registry created the Patient but said not where".into(),
            outcome: None,
        })),
    }
}

/// Turns every entry the ledger does not know into an unconditional request: `PUT` to what
/// the registry already holds under its identifier (when it may hold anything), else `POST`.
async fn resolve_unknown(
    dest: &Destination,
    reg: &Registry,
    held: &HashMap<Key, Held>,
    plan: &mut Plan,
    may_hold_unknown: bool,
) -> Result<(), Stop> {
    for e in &mut plan.entries {
        let known = ledger::local_key(e).is_some_and(|k| held.contains_key(&k));
        if known {
            continue;
        }
        let search = if may_hold_unknown {
            cibmtr::entry_search(&e["resource"], reg)
        } else {
            None
        };
        let found = match search {
            Some(q) => dest.search_all(&q).await.map_err(by_policy)?,
            None => Vec::new(),
        };
        match found.as_slice() {
            [] => cibmtr::unconditional(e, None),
            [r] => cibmtr::unconditional(e, r["id"].as_str()),
            many => {
                return Err(with(failed(
                    "conflict",
                    format!(
                        "{} {} resources at the registry hold this entry's identifier; not guessing which",
                        many.len(),
                        e["resource"]["resourceType"].as_str().unwrap_or("?")
                    ),
                )))
            }
        }
    }
    Ok(())
}

/// Sends the plan's entries in transactions of at most `max_entries` and reads every entry's
/// answer.
async fn send(
    store: &SqlStore,
    dest: &Destination,
    d: &Delivery,
    plan: &Plan,
    report: &mut Report,
) -> Result<Attempt, StoreError> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut rejected: Vec<(usize, String, EntryResult)> = Vec::new();
    let mut last = 200;
    let chunks: Vec<&[Value]> = plan.entries.chunks(dest.max_entries).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        let mut sent = chunk.to_vec();
        for e in &mut sent {
            ledger::rewrite(&mut e["resource"], &map);
        }
        let reply = dest
            .call(
                Method::POST,
                "",
                Some(ledger::transaction(sent.clone()).to_string()),
                &[],
            )
            .await;
        if !reply.ok() {
            // This chunk and every later one were not (or not knowably) applied: the next
            // attempt finds what was, by identifier.
            for e in chunks[n..].iter().flat_map(|c| c.iter()) {
                report.resources.push(line(e, "not-sent", None));
            }
            return Ok(judge(dest, d, &reply));
        }
        last = reply.status().unwrap_or(200);
        let results = cibmtr::entry_results(sent.len(), &reply.json());
        let mut rows = Vec::new();
        for (i, (e, r)) in sent.iter().zip(results).enumerate() {
            let mut l = line(
                e,
                if r.accepted() { "accepted" } else { "rejected" },
                Some(&r),
            );
            if r.accepted() {
                let row = r
                    .location
                    .as_deref()
                    .and_then(|loc| ledger::confirmed_one(plan, e, loc, None));
                match row {
                    Some(row) => {
                        l.remote = Some(row.1.remote.clone());
                        map.insert(
                            e["fullUrl"].as_str().unwrap_or_default().to_string(),
                            row.1.remote.clone(),
                        );
                        rows.push(row);
                    }
                    // Accepted without saying where: the next attempt finds it by identifier.
                    None => l.result = "unconfirmed",
                }
            } else {
                rejected.push((n * dest.max_entries + i, label(e), r));
            }
            report.resources.push(l);
        }
        store.ledger_update(&dest.name, &d.record, &rows).await?;
    }
    if rejected.is_empty() {
        return Ok(Attempt::Delivered { status: last });
    }
    let total = plan.entries.len();
    let issues: Vec<Value> = rejected
        .iter()
        .map(|(i, what, r)| {
            json!({"severity": "error", "code": "processing",
                   "diagnostics": format!("{what}: {} {}", r.status, r.reason.as_deref().unwrap_or("rejected")),
                   "expression": [format!("Bundle.entry[{i}]")]})
        })
        .collect();
    Ok(Attempt::Failed {
        reason: "validation",
        status: rejected.first().map(|(_, _, r)| r.status),
        error: format!(
            "the registry rejected {} of {total} entries ({}); the rest were accepted; a replay sends only the rejected ones",
            rejected.len(),
            rejected
                .iter()
                .map(|(_, what, r)| format!("{what}: {}", r.reason.as_deref().unwrap_or("no reason given")))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        outcome: Some(json!({"resourceType": "OperationOutcome", "issue": issues}).to_string()),
    })
}

fn line(e: &Value, result: &'static str, r: Option<&EntryResult>) -> Line {
    Line {
        resource: label(e),
        action: if e["request"]["method"] == "POST" {
            "create"
        } else {
            "update"
        },
        result,
        status: r.map(|r| r.status),
        remote: None,
        reason: r.and_then(|r| r.reason.clone()),
    }
}

/// What a submission of `bundle` would send, from the ledger alone (nothing is asked of the
/// registry): per resource create / update / unchanged, and whether the patient still needs
/// a CRID.
pub async fn dry_run(
    store: &SqlStore,
    dest: &Destination,
    reg: &Registry,
    record: &str,
    version: i64,
    bundle: Value,
) -> Result<Report, StoreError> {
    let bundle = cibmtr::submission_bundle(bundle, reg);
    let held = store.ledger(&dest.name, record).await?;
    let mut report = Report {
        record: record.into(),
        version,
        outcome: "dry-run".into(),
        ..Report::default()
    };
    for e in bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let Some(key) = ledger::local_key(e) else {
            continue;
        };
        let what = format!("{}/{}", key.0, key.1);
        let (action, remote) = match held.get(&key) {
            Some(h) if key.0 == "Patient" && h.matched => {
                report.patient = Some(h.remote.clone());
                continue;
            }
            Some(h) if h.hash == ledger::hash(&e["resource"]) => {
                ("unchanged", Some(h.remote.clone()))
            }
            Some(h) => ("update", Some(h.remote.clone())),
            None if key.0 == "Patient" => {
                report.crid = store.crid(&dest.name, &key.1).await?;
                ("create", None)
            }
            None => ("create", None),
        };
        if action == "unchanged" {
            report.unchanged += 1;
        }
        report.resources.push(Line {
            resource: what,
            action,
            result: "planned",
            status: None,
            remote,
            reason: (key.0 == "Patient").then(|| {
                if report.crid.is_some() {
                    "the CRID is known; the registry Patient is looked up, else created de-identified".into()
                } else {
                    "the patient is registered for a CRID first; the registry Patient is looked up, else created de-identified".into()
                }
            }),
        });
    }
    Ok(report)
}
