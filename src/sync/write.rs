//! Carrying out a [`Plan`] at a destination: as transaction Bundles of at most `max_entries`
//! entries, or resource by resource where the server takes no transactions. Entries go in
//! dependency order; each confirmed write goes to the ledger before the next is sent, so an
//! attempt cut short (crash, fault) resumes where it stopped and sends nothing twice. A write
//! without a conditional form is made idempotent by searching its business identifier first.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::Value;

use super::capability::Support;
use super::ledger::{self, Held, Key, Plan, Row};
use super::remote::{Destination, Reply};
use crate::store::{Attempt, SqlStore, StoreError};

/// How carrying out a plan ended: everything written (with the last HTTP status), or stopped
/// with an attempt outcome.
pub enum Done {
    All(u16),
    Stopped(Attempt),
    /// The reply to judge by the retry policy.
    Failed(Reply),
}

/// Writes `plan`'s entries then its deletes.
pub async fn apply(
    store: &SqlStore,
    dest: &Destination,
    record: &str,
    support: &Support,
    plan: &Plan,
) -> Result<Done, StoreError> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut last = 200;
    if support.transactions {
        for chunk in plan.entries.chunks(dest.max_entries) {
            // Only chunks after the first can refer to what an earlier chunk created; the
            // first (usually the only one) is sent as planned, without a copy.
            let rewritten: Option<Vec<Value>> = (!map.is_empty()).then(|| {
                let mut c = chunk.to_vec();
                for e in &mut c {
                    ledger::rewrite(&mut e["resource"], &map);
                }
                c
            });
            let chunk = rewritten.as_deref().unwrap_or(chunk);
            let body = format!(
                r#"{{"resourceType":"Bundle","type":"transaction","entry":{}}}"#,
                serde_json::to_string(chunk).unwrap_or_else(|_| "[]".into())
            );
            let reply = dest.call(Method::POST, "", Some(body), &[]).await;
            if !reply.ok() {
                return stopped(store, dest, record, plan, chunk, reply).await;
            }
            let rows = ledger::confirmed(plan, chunk, &reply.json());
            remember(&mut map, &rows);
            store.ledger_update(&dest.name, record, &rows).await?;
            last = reply.status().unwrap_or(200);
        }
        let deletes = plan.delete_entries();
        for (n, chunk) in deletes.chunks(dest.max_entries).enumerate() {
            let reply = dest
                .call(
                    Method::POST,
                    "",
                    Some(ledger::transaction(chunk.to_vec()).to_string()),
                    &[],
                )
                .await;
            if !reply.ok() {
                return Ok(Done::Failed(reply));
            }
            let start = n * dest.max_entries;
            let keys: Vec<Key> = plan.deletes[start..start + chunk.len()]
                .iter()
                .map(|(k, _)| k.clone())
                .collect();
            store.ledger_remove(&dest.name, &keys).await?;
            last = reply.status().unwrap_or(200);
        }
        return Ok(Done::All(last));
    }
    for e in &plan.entries {
        let mut e = e.clone();
        ledger::rewrite(&mut e["resource"], &map);
        let reply = match one_with_retries(dest, support, &e).await {
            Ok(r) => r,
            Err(done) => return Ok(done),
        };
        if !reply.ok() {
            return stopped(store, dest, record, plan, std::slice::from_ref(&e), reply).await;
        }
        let row = reply
            .written()
            .and_then(|l| ledger::confirmed_one(plan, &e, &l, reply.etag.as_deref()));
        if let Some(row) = row {
            remember(&mut map, std::slice::from_ref(&row));
            store.ledger_update(&dest.name, record, &[row]).await?;
        }
        last = reply.status().unwrap_or(200);
    }
    for (key, remote) in &plan.deletes {
        let reply = dest.call(Method::DELETE, remote, None, &[]).await;
        // Already gone is what we wanted.
        if !(reply.ok() || matches!(reply.status(), Some(404 | 410))) {
            return Ok(Done::Failed(reply));
        }
        store
            .ledger_remove(&dest.name, std::slice::from_ref(key))
            .await?;
        last = reply.status().unwrap_or(200);
    }
    Ok(Done::All(last))
}

fn remember(map: &mut HashMap<String, String>, rows: &[Row]) {
    for ((_, id), held) in rows {
        map.insert(format!("urn:uuid:{id}"), held.remote.clone());
    }
}

/// Transient failures of a single write are retried in place (a few times, by the retry
/// policy's backoff or the server's `Retry-After`), so a record of fifty resources is not
/// started over for each fault. Safe: [`one`] searches the identifier before any create, so a
/// write applied before its answer was lost is found, not repeated.
async fn one_with_retries(dest: &Destination, support: &Support, e: &Value) -> Result<Reply, Done> {
    const TRIES: i64 = 4;
    let mut n = 1;
    loop {
        let reply = one(dest, support, e).await?;
        if reply.ok() || n >= TRIES {
            return Ok(reply);
        }
        let unit: f64 = rand::Rng::gen(&mut rand::thread_rng());
        let now = chrono::Utc::now();
        match super::policy::decide(&dest.policy, n, &reply.answer, now, unit) {
            Attempt::Retry { at, .. } => {
                let wait = (at - now).to_std().unwrap_or_default();
                // A long wait (a server asking for minutes) is the queue's job, not ours.
                if wait > std::time::Duration::from_secs(10) {
                    return Ok(reply);
                }
                tokio::time::sleep(wait).await;
            }
            _ => return Ok(reply),
        }
        n += 1;
    }
}

/// One entry written on its own. `Err` when it cannot be written at all (two resources hold
/// its identifier).
async fn one(dest: &Destination, support: &Support, e: &Value) -> Result<Reply, Done> {
    let rtype = e["resource"]["resourceType"].as_str().unwrap_or("");
    let url = e["request"]["url"].as_str().unwrap_or("");
    let method = e["request"]["method"].as_str().unwrap_or("PUT");
    let body = Some(e["resource"].to_string());
    let if_match = e["request"]["ifMatch"].as_str();
    let headers: Vec<(&str, &str)> = if_match.map(|m| ("if-match", m)).into_iter().collect();
    let condition = match (method, url.split_once('?')) {
        ("PUT", Some((_, q))) => Some(q),
        ("POST", _) => e["request"]["ifNoneExist"].as_str(),
        _ => None,
    };
    let Some(condition) = condition else {
        // A write to a known id (or a create with no condition).
        let m = if method == "POST" {
            Method::POST
        } else {
            Method::PUT
        };
        let path = if method == "POST" { rtype } else { url };
        return Ok(dest.call(m, path, body, &headers).await);
    };
    if support.conditional(rtype) {
        return Ok(match method {
            "POST" => {
                dest.call(Method::POST, rtype, body, &[("if-none-exist", condition)])
                    .await
            }
            _ => dest.call(Method::PUT, url, body, &headers).await,
        });
    }
    // No conditional writes there: look the identifier up, then create or update.
    let found = dest
        .search_all(&format!("{rtype}?{condition}"))
        .await
        .map_err(Done::Failed)?;
    match found.as_slice() {
        [] => Ok(dest.call(Method::POST, rtype, body, &[]).await),
        [r] => {
            let id = r["id"].as_str().unwrap_or("");
            Ok(dest
                .call(Method::PUT, &format!("{rtype}/{id}"), body, &[])
                .await)
        }
        many => Err(Done::Stopped(Attempt::Failed {
            reason: "conflict",
            status: None,
            error: format!(
                "{} {rtype} resources at the destination hold this entry's business identifier; not guessing which",
                many.len()
            ),
            outcome: None,
        })),
    }
}

/// A write was refused. A 412 on writes guarded by `If-Match` is looked into: when the
/// destination holds exactly what Engraft sent (our write was applied and its answer lost),
/// the ledger catches up and the delivery is retried at once; otherwise someone changed the
/// resource there, which is a conflict to resolve, never an overwrite.
async fn stopped(
    store: &SqlStore,
    dest: &Destination,
    record: &str,
    plan: &Plan,
    sent: &[Value],
    reply: Reply,
) -> Result<Done, StoreError> {
    let guarded: Vec<&Value> = sent
        .iter()
        .filter(|e| e["request"]["ifMatch"].is_string())
        .collect();
    if reply.status() != Some(412) || guarded.is_empty() {
        return Ok(Done::Failed(reply));
    }
    let mut caught_up: Vec<Row> = Vec::new();
    let mut changed = Vec::new();
    for e in guarded {
        let url = e["request"]["url"].as_str().unwrap_or("");
        let current = dest.call(Method::GET, url, None, &[]).await;
        if !current.ok() {
            return Ok(Done::Failed(current));
        }
        let theirs = current.json();
        let version = theirs["meta"]["versionId"].as_str().map(str::to_string);
        match (same_content(&theirs, &e["resource"]), ledger::local_key(e)) {
            (true, Some(key)) => {
                let Some(h) = plan.hashes.get(&key) else {
                    continue;
                };
                caught_up.push((
                    key,
                    Held {
                        remote: url.to_string(),
                        version,
                        hash: h.clone(),
                        matched: false,
                    },
                ));
            }
            _ => changed.push(url.to_string()),
        }
    }
    store.ledger_update(&dest.name, record, &caught_up).await?;
    if changed.is_empty() {
        return Ok(Done::Stopped(Attempt::Retry {
            at: chrono::Utc::now(),
            reason: "conflict",
            status: Some(412),
            error:
                "the destination already held our last write (its answer was lost); ledger updated"
                    .into(),
        }));
    }
    Ok(Done::Stopped(Attempt::Failed {
        reason: "conflict",
        status: Some(412),
        error: format!(
            "changed at the destination since Engraft last wrote it, not overwritten: {}. Replay with overwrite to replace the destination's version",
            changed.join(", ")
        ),
        outcome: Some(reply.body().chars().take(65_536).collect()),
    }))
}

/// Whether the destination's copy is what we sent: equal apart from `id`, `meta` and `text`
/// (which servers set themselves).
fn same_content(theirs: &Value, ours: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            for k in ["id", "meta", "text"] {
                o.remove(k);
            }
        }
        v
    };
    strip(theirs) == strip(ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_destinations_bookkeeping_is_not_a_change() {
        let ours = json!({"resourceType": "Observation", "id": "local", "meta": {"profile": ["p"]}, "status": "final"});
        let theirs = json!({"resourceType": "Observation", "id": "r1", "meta": {"versionId": "2"}, "status": "final"});
        assert!(same_content(&theirs, &ours));
        let edited = json!({"resourceType": "Observation", "id": "r1", "status": "amended"});
        assert!(!same_content(&edited, &ours));
    }
}
