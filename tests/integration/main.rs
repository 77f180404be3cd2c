//! Engraft's integration tests: one binary (faster to link), one module per capability.

mod auth;
mod cli;
mod crash;
mod edge_cases;
mod golden;
mod helpers;
mod hostile;
mod invalid;
mod outbound;
mod registry;
mod robustness;
mod server;
mod snapshots;
mod store_api;
mod sync;
mod sync_ehr;
mod tls;
mod validation;
