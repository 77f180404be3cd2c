//! EHR sync, push side: workers lease a destination's deliveries from the store's outbox,
//! send the record's transaction Bundle (conditional updates on business identifiers, so a
//! re-send after an answer was lost changes nothing), and record how each attempt ended
//! ([`policy`]). Every accepted record is either delivered or sits in a visible state
//! (queued, failed with its reason, skipped with why) until replayed.

pub mod circuit;
pub mod ledger;
pub mod policy;
pub mod push;
