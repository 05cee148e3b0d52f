//! synapsor-runner: a database authority layer between AI agents and Postgres/MySQL/SQLite.
//!
//! Agents get reviewed capabilities only: scoped reads and proposals. Approval happens outside
//! the model; a trusted apply re-verifies everything and writes back under tenant, version and
//! idempotency guards. Every step lands in a ledger and can be replayed.

pub mod agent;
pub mod apply;
pub mod capability;
pub mod config;
pub mod context;
pub mod demo;
pub mod embed;
pub mod envelope;
pub mod error;
pub mod ledger;
pub mod policy;
pub mod protocol;
pub mod recipe;
pub mod runner;
pub mod source;
pub mod sql;
pub mod values;
pub mod write;

pub use agent::tools::{Tool, ToolNaming};
pub use apply::{ApplyOptions, ApplyOutcome};
pub use config::{LoadedConfig, RunnerConfig, load_config};
pub use context::{ResolvedContext, TrustedContext};
pub use envelope::{ProposalResult, ReadResult};
pub use error::{Error, ErrorFamily, Result};
pub use ledger::{Approver, Ledger, StoredProposal};
pub use runner::{OpenOptions, Reconciled, Runner};

/// Crate version, shown by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
