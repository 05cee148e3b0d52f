//! synapsor-runner: a database authority layer between AI agents and Postgres/MySQL/SQLite.
//!
//! Agents get reviewed capabilities only: scoped reads and proposals. Approval happens outside
//! the model; a trusted apply re-verifies everything and writes back under tenant, version and
//! idempotency guards. Every step lands in a ledger and can be replayed.
//!
//! The embedding API is what this page documents: [`Runner`] and its options and results, the
//! [`Executor`] trait for in-process callbacks, [`agent`] (what the model sees and calls),
//! [`Error`], and [`embed`] for bindings. The modules hidden from these docs are shared with this
//! workspace's CLI, MCP server and bindings; they are not a stable API.

#![deny(missing_docs)]

pub mod agent;
#[doc(hidden)]
pub mod apply;
#[doc(hidden)]
pub mod capability;
pub mod codes;
#[doc(hidden)]
pub mod config;
pub mod context;
#[doc(hidden)]
pub mod demo;
pub mod embed;
pub mod envelope;
pub mod error;
#[doc(hidden)]
pub mod ledger;
#[doc(hidden)]
pub mod policy;
#[doc(hidden)]
pub mod protocol;
#[doc(hidden)]
pub mod recipe;
#[doc(hidden)]
pub mod review;
pub mod runner;
#[doc(hidden)]
pub mod schema;
#[doc(hidden)]
pub mod source;
#[doc(hidden)]
pub mod sql;
#[doc(hidden)]
pub mod values;
#[doc(hidden)]
pub mod write;

pub use agent::tools::{Tool, ToolNaming};
pub use apply::{ApplyOptions, ApplyOutcome};
pub use config::{LoadedConfig, RunnerConfig, load_config};
pub use context::{ResolvedContext, TrustedContext};
pub use envelope::{ProposalResult, ReadResult};
pub use error::{Error, ErrorFamily, Result};
pub use ledger::{Approver, Ledger, LedgerLocation, StoredProposal};
pub use runner::{OpenOptions, Reconciled, Runner};
pub use write::executor::{Executor, ExecutorFailure, ExecutorJob, GuardedTx, Statement};

/// Crate version, shown by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
