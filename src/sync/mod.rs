//! EHR sync. Push: workers lease a destination's deliveries from the store's outbox, match
//! the record's Patient ([`matching`]), shape the Bundle for that destination ([`shape`]),
//! plan what the destination still lacks against the [`ledger`], and write it ([`write`]):
//! transaction Bundles in chunks, or resource by resource where the server takes no
//! transactions ([`capability`]), in dependency order ([`order`]). A request far slower than
//! the destination's usual answers lends the queue a spare slot ([`slow`]). Every attempt ends
//! by the retry policy ([`policy`]); every accepted record is either delivered or sits in a
//! visible state (queued, failed with its reason, skipped with why) until replayed. Pull
//! ([`pull`]) turns EHR changes into proposed registry updates for review. Registry
//! destinations take submissions instead ([`registry`], with the CIBMTR workflow's pure parts
//! in [`cibmtr`]): CRID, de-identified Patient, centre tag, no conditional writes.

pub mod capability;
pub mod cibmtr;
pub mod circuit;
pub mod ledger;
pub mod matching;
pub mod order;
pub mod policy;
pub mod pull;
pub mod push;
pub mod registry;
pub mod remote;
pub mod shape;
pub mod slow;
pub mod submit;
pub mod write;
