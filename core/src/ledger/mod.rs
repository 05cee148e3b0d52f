//! The ledger: proposals, evidence, query audit, approvals, jobs, receipts, append-only events
//! and replay records.
//!
//! [`Ledger`] is the handle every caller uses; its methods are `async` and the store behind it
//! decides where the work runs. The SQLite store (one file, WAL) runs on a thread of its own, so
//! no caller blocks an async runtime's worker on the file or on another caller's write.

mod schema;
pub(crate) mod secrets;
mod sqlite;

pub use secrets::{REDACTED, assert_no_secret_material, redact_secrets};

use crate::error::{Error, Result};
use crate::protocol::{ChangeSet, ExecutionReceipt, WritebackJob};
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlite::{Created, SqliteLedger};
use std::path::Path;

/// ISO-8601 UTC with microseconds: sortable as text.
pub fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// States in which a proposal blocks a different proposal for the same object.
pub const ACTIVE_STATES: &[&str] = &["pending_review", "approved", "pending_worker"];
/// Every state a proposal can be in.
pub const PROPOSAL_STATES: &[&str] = &[
    "pending_review",
    "approved",
    "pending_worker",
    "applied",
    "rejected",
    "conflict",
    "failed",
    "canceled",
];

/// A proposal as stored.
#[derive(Debug, Clone, Serialize)]
pub struct StoredProposal {
    pub proposal_id: String,
    pub proposal_version: u32,
    pub proposal_hash: String,
    pub action: String,
    pub state: crate::policy::ProposalState,
    pub tenant_id: String,
    pub principal: Option<String>,
    pub business_object: String,
    pub object_id: String,
    pub source_kind: String,
    pub source_id: String,
    pub source_schema: String,
    pub source_table: String,
    pub source_database_mutated: bool,
    pub change_set: ChangeSet,
    pub created_at: String,
    pub updated_at: String,
}

impl StoredProposal {
    /// What the apply-time authority checks look at.
    pub fn view(&self) -> crate::policy::apply::ProposalView<'_> {
        crate::policy::apply::ProposalView {
            proposal_id: &self.proposal_id,
            object_id: &self.object_id,
            state: self.state,
            proposal_hash: &self.proposal_hash,
            proposal_version: self.proposal_version,
            change_set: &self.change_set,
        }
    }
}

/// An evidence bundle to record.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceBundle {
    pub evidence_bundle_id: String,
    pub tenant_id: String,
    pub principal: String,
    pub capability: String,
    pub source_id: String,
    pub source_table: String,
    pub business_object: String,
    pub object_id: String,
    pub query_fingerprint: String,
    pub payload: Value,
    pub items: Vec<Value>,
}

/// A query-audit row to record (parameters are never stored).
#[derive(Debug, Clone, Serialize)]
pub struct QueryAudit {
    pub source_id: String,
    pub query_fingerprint: String,
    pub table_name: String,
    pub row_count: u64,
    pub payload: Value,
    pub primary_key_value: String,
}

/// Who approved or rejected, with the roles they hold and how those were established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approver {
    pub id: String,
    pub roles: Vec<String>,
    /// `host` (the embedding app vouched), `operator_env`, or `asserted_local_cli`.
    pub role_assertion: String,
}

impl Approver {
    /// An approver whose roles the calling application has verified.
    pub fn new(id: impl Into<String>) -> Self {
        Approver {
            id: id.into(),
            roles: vec![],
            role_assertion: "host".into(),
        }
    }
    /// Add a role the approver holds.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }
    pub fn assertion(mut self, how: impl Into<String>) -> Self {
        self.role_assertion = how.into();
        self
    }
}

/// Outcome of recording a new proposal.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// Recorded; this is the change set as stored.
    Created(Box<ChangeSet>),
    /// The same change is already active; this is that proposal.
    Duplicate(Box<StoredProposal>),
}

/// Every table of the ledger, as `store stats` counts them.
pub const TABLES: &[&str] = &[
    "proposals",
    "proposal_events",
    "approvals",
    "writeback_jobs",
    "writeback_receipts",
    "evidence_bundles",
    "evidence_items",
    "query_audit",
    "replay_records",
    "runner_state",
];

/// Which evidence bundles or query-audit rows a list shows. `None` matches anything; every
/// given filter must hold.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub tenant: Option<String>,
    pub principal: Option<String>,
    pub capability: Option<String>,
    pub proposal: Option<String>,
    pub evidence: Option<String>,
    /// The business object or table (`invoices`, `public.invoices`).
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub source: Option<String>,
    /// The table, with or without its schema.
    pub table: Option<String>,
    /// Query audit only: the primary key value read.
    pub primary_key: Option<String>,
    /// Replays only: the proposal's state.
    pub state: Option<String>,
    /// Replays only: a receipt of the proposal has this status.
    pub status: Option<String>,
    /// Replays only: the proposal has this receipt.
    pub receipt: Option<i64>,
    pub query_fingerprint: Option<String>,
    /// Recorded at or after (ISO-8601 text; a date such as `2026-06-01` works).
    pub from: Option<String>,
    /// Recorded at or before.
    pub to: Option<String>,
    pub limit: u32,
}

/// Which proposal events `events tail` shows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events after this one (0: from the start).
    pub after_id: i64,
    pub proposal: Option<String>,
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: u32,
}

/// Which execution receipts `receipts list` shows. `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct ReceiptFilter {
    pub proposal: Option<String>,
    pub writeback_job: Option<String>,
    pub idempotency_key: Option<String>,
    pub status: Option<String>,
    /// Recorded at or after (ISO-8601 text; a date such as `2026-06-01` works).
    pub from: Option<String>,
    /// Recorded at or before.
    pub to: Option<String>,
    pub limit: u32,
}

/// One piece of work for the store, run on the ledger's thread.
type Job = Box<dyn FnOnce(&mut SqliteLedger) + Send>;

/// The ledger handle. Share it behind an `Arc`; calls are serialized by the store.
pub struct Ledger {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Opened from a file this process may not write: reads and replay work, writes fail.
    read_only: bool,
}

impl Ledger {
    /// Open (creating if needed) a ledger file and run pending migrations once. A new ledger
    /// file is created readable by its owner only (`0600`, in folders created `0700`): it holds
    /// evidence rows. A file this process may not write is opened read-only (listing and
    /// replay work). A ledger written by a newer runner is refused (`LEDGER_SCHEMA_TOO_NEW`).
    pub fn open(path: &Path) -> Result<Self> {
        Self::start(SqliteLedger::open(path)?)
    }

    /// A ledger that lives only as long as this handle.
    pub fn open_in_memory() -> Result<Self> {
        Self::start(SqliteLedger::open_in_memory()?)
    }

    /// An existing ledger, for reading only (an audit copy, a read-only mount).
    pub fn open_read_only(path: &Path) -> Result<Self> {
        Self::start(SqliteLedger::open_read_only(path)?)
    }

    fn start(mut store: SqliteLedger) -> Result<Self> {
        let read_only = store.is_read_only();
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("synapsor-ledger".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    // A panic fails only its own call (its answer is dropped unsent).
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut store)));
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the ledger thread: {e}")))?;
        Ok(Ledger {
            jobs: Some(jobs),
            thread: Some(thread),
            read_only,
        })
    }

    /// Run `f` against the store on its thread and wait for its answer.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteLedger) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let stopped = || Error::Internal("the ledger stopped before answering".into());
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Whether this handle may only read (see [`Ledger::open_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Schema version after migrations.
    pub async fn schema_version(&self) -> Result<i64> {
        self.call(|l| l.schema_version()).await
    }

    /// Record the evidence and audit of a read capability call.
    pub async fn record_read(&self, bundle: EvidenceBundle, audit: QueryAudit) -> Result<()> {
        self.call(move |l| l.record_read(&bundle, &audit)).await
    }

    /// Record a new proposal with its evidence and audit, unless the same change is already
    /// active (then that proposal is returned).
    pub async fn create_proposal(
        &self,
        cs: ChangeSet,
        bundle: EvidenceBundle,
        audit: QueryAudit,
    ) -> Result<CreateOutcome> {
        self.call(move |l| {
            Ok(match l.create_proposal(&cs, &bundle, &audit)? {
                Created::New => CreateOutcome::Created(Box::new(cs)),
                Created::Duplicate(p) => CreateOutcome::Duplicate(p),
            })
        })
        .await
    }

    /// One stored proposal (`PROPOSAL_NOT_FOUND` when there is none).
    pub async fn proposal(&self, id: &str) -> Result<StoredProposal> {
        let id = id.to_string();
        self.call(move |l| l.proposal(&id)).await
    }

    /// Resolve `latest` (newest by creation) or return the id as given.
    pub async fn resolve_selector(&self, selector: &str) -> Result<String> {
        let selector = selector.to_string();
        self.call(move |l| l.resolve_selector(&selector)).await
    }

    /// Proposals, newest first, optionally of one state and one tenant.
    pub async fn list_proposals(
        &self,
        state: Option<&str>,
        tenant: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredProposal>> {
        let (state, tenant) = (state.map(String::from), tenant.map(String::from));
        self.call(move |l| l.list_proposals(state.as_deref(), tenant.as_deref(), limit))
            .await
    }

    /// Approve a pending proposal.
    pub async fn approve(
        &self,
        id: &str,
        approver: &Approver,
        reason: Option<&str>,
    ) -> Result<StoredProposal> {
        let (id, approver, reason) = (id.to_string(), approver.clone(), reason.map(String::from));
        self.call(move |l| l.approve(&id, &approver, reason.as_deref()))
            .await
    }

    /// Reject a pending or approved proposal.
    pub async fn reject(
        &self,
        id: &str,
        approver: &Approver,
        reason: &str,
    ) -> Result<StoredProposal> {
        let (id, approver, reason) = (id.to_string(), approver.clone(), reason.to_string());
        self.call(move |l| l.reject(&id, &approver, &reason)).await
    }

    /// The latest approval of a proposal, as recorded.
    pub async fn approval_record(&self, id: &str) -> Result<Option<Value>> {
        let id = id.to_string();
        self.call(move |l| l.approval_record(&id)).await
    }

    /// Record a writeback job before it runs (the proposal moves to `pending_worker`).
    pub async fn prepare_job(&self, job: &WritebackJob, executor: &str, actor: &str) -> Result<()> {
        let (job, executor, actor) = (job.clone(), executor.to_string(), actor.to_string());
        self.call(move |l| l.prepare_job(&job, &executor, &actor))
            .await
    }

    /// Writeback jobs whose proposal is still `pending_worker`: an apply started and never
    /// reported back (a crash, a killed process, a ledger write that failed), or is running now.
    /// Each with its executor type.
    pub async fn pending_jobs(&self) -> Result<Vec<(WritebackJob, String)>> {
        self.call(|l| l.pending_jobs()).await
    }

    /// Put a `pending_worker` proposal back to `approved`, recording why.
    pub async fn release_job(&self, job: &WritebackJob, actor: &str, why: &str) -> Result<()> {
        let (job, actor, why) = (job.clone(), actor.to_string(), why.to_string());
        self.call(move |l| l.release_job(&job, &actor, &why)).await
    }

    /// Record an execution receipt. Returns whether a new receipt row was written (a retry
    /// that finds the change already applied only appends an event).
    pub async fn record_receipt(
        &self,
        receipt: &ExecutionReceipt,
        retryable: bool,
    ) -> Result<bool> {
        let receipt = receipt.clone();
        self.call(move |l| l.record_receipt(&receipt, retryable))
            .await
    }

    /// Append an event to a proposal's history.
    pub async fn record_event(
        &self,
        proposal_id: &str,
        kind: &str,
        actor: &str,
        payload: Value,
    ) -> Result<()> {
        let (id, kind, actor) = (proposal_id.to_string(), kind.to_string(), actor.to_string());
        self.call(move |l| l.record_event(&id, &kind, &actor, payload))
            .await
    }

    /// The replay record of a proposal (stored as a replay record unless read-only).
    pub async fn replay(&self, id: &str) -> Result<Value> {
        let id = id.to_string();
        self.call(move |l| l.replay(&id)).await
    }

    /// The same record for display only (approval previews): nothing is written.
    pub async fn replay_view(&self, id: &str) -> Result<Value> {
        let id = id.to_string();
        self.call(move |l| l.replay_view(&id)).await
    }

    /// An evidence bundle with its items.
    pub async fn evidence_bundle(&self, id: &str) -> Result<Option<Value>> {
        let id = id.to_string();
        self.call(move |l| l.evidence_bundle(&id)).await
    }

    /// Rows in one of the ledger's tables.
    pub async fn count(&self, table: &str) -> Result<i64> {
        let table = table.to_string();
        self.call(move |l| l.count(&table)).await
    }

    /// Rows in every table and the file's size in pages (`page_count`, `page_size`,
    /// `approx_bytes`).
    pub async fn stats(&self) -> Result<Value> {
        self.call(|l| l.stats()).await
    }

    /// Recompute every proposal's and receipt's digest and check event order, evidence links and
    /// applied states: `{checked: {proposals}, problems: [{code, proposal_id, detail}]}`.
    pub async fn check(&self) -> Result<Value> {
        self.call(|l| l.check()).await
    }

    /// Remove (or, with `dry_run`, count) the evidence and query audit of reads recorded before
    /// `cutoff` (ISO-8601) that no proposal references. Proposals and everything recorded about
    /// them (approvals, jobs, receipts, events, their evidence) are never pruned. Returns
    /// `{cutoff, dry_run, deleted: {table: rows}}`.
    pub async fn prune_reads(&self, cutoff: &str, dry_run: bool) -> Result<Value> {
        let cutoff = cutoff.to_string();
        self.call(move |l| l.prune_reads(&cutoff, dry_run)).await
    }

    /// Rebuild the ledger file to reclaim free pages; the approximate size before and after.
    pub async fn vacuum(&self) -> Result<(i64, i64)> {
        self.call(|l| l.vacuum()).await
    }

    /// Evidence bundles, newest first, with their item and query-audit counts.
    pub async fn list_evidence(&self, filter: &ListFilter) -> Result<Vec<Value>> {
        let filter = filter.clone();
        self.call(move |l| l.list_evidence(&filter)).await
    }

    /// Proposal events after `filter.after_id`: the newest `limit`, oldest first.
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<Value>> {
        let filter = filter.clone();
        self.call(move |l| l.list_events(&filter)).await
    }

    /// One replay entry per proposal, newest first.
    pub async fn list_replays(&self, filter: &ListFilter) -> Result<Vec<Value>> {
        let filter = filter.clone();
        self.call(move |l| l.list_replays(&filter)).await
    }

    /// Query-audit rows, newest first.
    pub async fn list_query_audit(&self, filter: &ListFilter) -> Result<Vec<Value>> {
        let filter = filter.clone();
        self.call(move |l| l.list_query_audit(&filter)).await
    }

    /// One query-audit row by its number.
    pub async fn query_audit(&self, audit_id: i64) -> Result<Option<Value>> {
        self.call(move |l| l.query_audit(audit_id)).await
    }

    /// Execution receipts, newest first.
    pub async fn list_receipts(&self, filter: &ReceiptFilter) -> Result<Vec<Value>> {
        let filter = filter.clone();
        self.call(move |l| l.list_receipts(&filter)).await
    }

    /// One execution receipt by its number.
    pub async fn receipt(&self, receipt_id: i64) -> Result<Option<Value>> {
        self.call(move |l| l.receipt(receipt_id)).await
    }

    /// How SQLite looks up a proposal's active twin (tests check it uses the index).
    pub async fn active_lookup_plan(&self) -> Result<String> {
        self.call(|l| l.active_lookup_plan()).await
    }

    /// Direct connection access for tests and tooling.
    #[doc(hidden)]
    pub async fn raw<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        self.call(move |l| l.raw(f)).await
    }
}

impl Drop for Ledger {
    /// Close the store before returning, so the file is released when the handle is gone.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
