//! The ledger: proposals, evidence, query audit, approvals, jobs, receipts, append-only events
//! and replay records.
//!
//! [`Ledger`] is the handle every caller uses; its methods are `async` and the store behind it
//! decides where the work runs. The SQLite store (one file, WAL) runs on a thread of its own, so
//! no caller blocks an async runtime's worker on the file or on another caller's write.

mod pg_schema;
mod postgres;
mod schema;
pub(crate) mod secrets;
mod sqlite;

#[cfg(test)]
pub(crate) use postgres::valid_schema_name;
pub use secrets::{REDACTED, assert_no_secret_material, redact_secrets};

use crate::error::{Error, Result};
use crate::protocol::{ChangeSet, ExecutionReceipt, WritebackJob};
use chrono::{SecondsFormat, Utc};
use postgres::PgLedger;
use serde::Serialize;
use serde_json::{Value, json};
use sqlite::SqliteLedger;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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

/// A proposal row as both stores read it, before its change set is parsed.
pub(crate) struct ProposalRow {
    pub proposal_id: String,
    pub proposal_version: u32,
    pub proposal_hash: String,
    pub action: String,
    pub state: String,
    pub tenant_id: String,
    pub principal: Option<String>,
    pub business_object: String,
    pub object_id: String,
    pub source_kind: String,
    pub source_id: String,
    pub source_schema: String,
    pub source_table: String,
    pub source_database_mutated: bool,
    pub change_set_json: String,
    pub created_at: String,
    pub updated_at: String,
}

impl ProposalRow {
    /// The stored proposal, its change set parsed and validated (a damaged one is named).
    pub(crate) fn into_stored(self) -> Result<StoredProposal> {
        let change_set = match serde_json::from_str::<ChangeSet>(&self.change_set_json) {
            // Read straight into the typed change set: no JSON tree built, copied and dropped.
            Ok(cs) => {
                cs.validate()?;
                cs
            }
            // The precise error: not JSON, or JSON that is not a change set.
            Err(_) => {
                let cs_value: Value = serde_json::from_str(&self.change_set_json).map_err(|e| {
                    Error::LedgerStorage(format!("stored change set is not JSON: {e}"), None)
                })?;
                ChangeSet::parse(&cs_value)?
            }
        };
        let state = crate::policy::ProposalState::parse(&self.state).ok_or_else(|| {
            Error::LedgerStorage(
                format!(
                    "proposal {} has an unknown state {:?}",
                    self.proposal_id, self.state
                ),
                None,
            )
        })?;
        Ok(StoredProposal {
            proposal_id: self.proposal_id,
            proposal_version: self.proposal_version,
            proposal_hash: self.proposal_hash,
            action: self.action,
            state,
            tenant_id: self.tenant_id,
            principal: self.principal,
            business_object: self.business_object,
            object_id: self.object_id,
            source_kind: self.source_kind,
            source_id: self.source_id,
            source_schema: self.source_schema,
            source_table: self.source_table,
            source_database_mutated: self.source_database_mutated,
            change_set,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Refuse secret material in an evidence bundle before either store writes it.
pub(crate) fn check_bundle(bundle: &EvidenceBundle) -> Result<()> {
    assert_no_secret_material(&bundle.payload, "evidence_bundle.payload")?;
    secrets::assert_no_secret_material_in_list(&bundle.items, "evidence_bundle.items")
}

/// Whether the proposal's mode lets it be approved, turned into a job or given a receipt.
pub(crate) fn mode_gate(p: &StoredProposal, operation: &str) -> Result<()> {
    crate::policy::may_write_back(&p.change_set.mode, &p.proposal_id, operation)
}

/// A `state` filter must name a known state (an unknown one would silently list nothing).
pub(crate) fn check_state_filter(state: Option<&str>) -> Result<()> {
    match state {
        Some(s) if !PROPOSAL_STATES.contains(&s) => Err(Error::argument_field(
            "PROPOSAL_STATE_UNKNOWN",
            "state",
            format!(
                "unknown proposal state {s:?}; one of {}",
                PROPOSAL_STATES.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether `approver` may approve `p` now: its mode, its state and the required role.
pub(crate) fn check_approval(p: &StoredProposal, approver: &Approver) -> Result<()> {
    mode_gate(p, "approved")?;
    if !p.state.may_approve() {
        return Err(Error::ledger(
            "PROPOSAL_NOT_PENDING_REVIEW",
            format!(
                "proposal {} is {}, not pending review",
                p.proposal_id, p.state
            ),
        ));
    }
    if let Some(role) = p.change_set.approval.required_role.as_deref()
        && !approver.roles.iter().any(|r| r == role)
    {
        return Err(Error::ApproverRoleMissing {
            approver: approver.id.clone(),
            role: role.to_string(),
        });
    }
    Ok(())
}

/// What `store check` looks at for one proposal, however the store gathered it.
pub(crate) struct CheckInput<'a> {
    pub proposal_id: &'a str,
    pub proposal_hash: &'a str,
    pub state: &'a str,
    pub change_set_json: &'a str,
    /// Whether the evidence bundle the change set names is in the ledger.
    pub evidence_present: bool,
    /// Approvals and jobs that name another hash than the proposal's.
    pub other_hash_approvals: bool,
    pub other_hash_jobs: bool,
    /// `(kind, created_at)` in event order.
    pub events: &'a [(String, String)],
    /// `(receipt_json, status)` in receipt order.
    pub receipts: &'a [(String, String)],
}

/// The problems `store check` reports for one proposal: `{code, proposal_id, detail}` each.
pub(crate) fn check_proposal(p: &CheckInput<'_>, problems: &mut Vec<Value>) {
    let id = p.proposal_id;
    let mut problem = |code: &str, detail: String| {
        problems.push(serde_json::json!({"code": code, "proposal_id": id, "detail": detail}));
    };
    match serde_json::from_str::<ChangeSet>(p.change_set_json) {
        Err(e) => problem("CHANGE_SET_UNREADABLE", e.to_string()),
        Ok(cs) => {
            let computed = cs.compute_hash();
            if computed != p.proposal_hash || cs.integrity.proposal_hash != p.proposal_hash {
                problem(
                    "PROPOSAL_HASH_MISMATCH",
                    format!(
                        "stored {}, the change set digests to {computed}",
                        p.proposal_hash
                    ),
                );
            }
            if !p.evidence_present {
                problem(
                    "EVIDENCE_MISSING",
                    format!(
                        "evidence bundle {} is not in the ledger",
                        cs.evidence.bundle_id
                    ),
                );
            }
        }
    }
    for (other, what) in [
        (p.other_hash_approvals, "an approval"),
        (p.other_hash_jobs, "a writeback job"),
    ] {
        if other {
            problem(
                "APPROVED_HASH_MISMATCH",
                format!("{what} names a different proposal hash"),
            );
        }
    }
    if p.events.first().map(|e| e.0.as_str()) != Some("proposal_created") {
        problem(
            "EVENTS_OUT_OF_ORDER",
            "the first event is not proposal_created".into(),
        );
    }
    if p.events.windows(2).any(|w| w[1].1 < w[0].1) {
        problem(
            "EVENTS_OUT_OF_ORDER",
            "an event is recorded earlier than the one before it".into(),
        );
    }
    for (json, _) in p.receipts {
        match serde_json::from_str::<ExecutionReceipt>(json) {
            Ok(r) if r.compute_hash() != r.receipt_hash => problem(
                "RECEIPT_HASH_MISMATCH",
                format!(
                    "receipt of job {} does not match its digest",
                    r.writeback_job_id
                ),
            ),
            Ok(_) => {}
            Err(e) => problem("RECEIPT_UNREADABLE", e.to_string()),
        }
    }
    if p.state == "applied"
        && !p
            .receipts
            .iter()
            .any(|(_, s)| s == "applied" || s == "already_applied")
    {
        problem(
            "STATE_WITHOUT_RECEIPT",
            "the proposal is applied but no applied receipt is recorded".into(),
        );
    }
}

/// One piece of work for the store, run on the ledger's thread.
enum Job {
    /// Any call, run alone.
    Call(Box<dyn FnOnce(&mut SqliteLedger) + Send>),
    /// A read's evidence and audit. Reads queued one after another are written in one
    /// transaction (a group commit), each answered with its own result.
    Read(Box<ReadRecord>),
}

struct ReadRecord {
    bundle: EvidenceBundle,
    audit: QueryAudit,
    reply: tokio::sync::oneshot::Sender<Result<()>>,
}

/// The most reads one transaction writes.
const READ_BATCH: usize = 64;

#[cfg(test)]
static READ_TRANSACTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The ledger thread: runs jobs in order; consecutive reads share a transaction.
fn serve(store: &mut SqliteLedger, queue: std::sync::mpsc::Receiver<Job>) {
    let mut next = queue.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Call(f) => {
                // A panic fails only its own call (its answer is dropped unsent).
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(store)));
            }
            Job::Read(first) => {
                let mut batch = vec![*first];
                while batch.len() < READ_BATCH {
                    match queue.try_recv() {
                        Ok(Job::Read(r)) => batch.push(*r),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let (records, replies): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .map(|r| ((r.bundle, r.audit), r.reply))
                    .unzip();
                #[cfg(test)]
                READ_TRANSACTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    store.record_reads(&records)
                }));
                if let Ok(results) = outcome {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(result);
                    }
                }
            }
        }
        if next.is_none() {
            next = queue.recv().ok();
        }
    }
}

/// What recording a proposal did, on the store's side.
pub(crate) enum Created {
    New,
    /// The same change is already active; this is that proposal.
    Duplicate(Box<StoredProposal>),
}

/// Where a ledger lives: a SQLite file next to one process, or a PostgreSQL schema any number
/// of runner instances share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerLocation {
    /// A SQLite file (`:memory:` for one that lives as long as its handle).
    Sqlite(PathBuf),
    /// A schema in a PostgreSQL database whose URL is in the variable `url_env`.
    Postgres {
        /// The variable holding the connection URL (never the URL itself).
        url_env: String,
        /// The schema the ledger's tables live in.
        schema: String,
    },
}

impl std::fmt::Display for LedgerLocation {
    /// The file, or `postgres:$VAR/schema`: never the URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerLocation::Sqlite(p) => write!(f, "{}", p.display()),
            LedgerLocation::Postgres { url_env, schema } => {
                write!(f, "postgres:${url_env}/{schema}")
            }
        }
    }
}

impl LedgerLocation {
    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            LedgerLocation::Sqlite(p) => Some(p),
            LedgerLocation::Postgres { .. } => None,
        }
    }

    /// What `doctor` reports of the ledger, changing nothing: for PostgreSQL whether it
    /// connects, its schema version against this runner's (`schema_version`,
    /// `runner_schema_version`; 0 before the first start) and `missing_privileges`.
    pub async fn probe(&self, env: &HashMap<String, String>) -> Result<Value> {
        match self {
            LedgerLocation::Sqlite(p) => {
                Ok(json!({"path": p.display().to_string(), "exists": p.exists()}))
            }
            LedgerLocation::Postgres { url_env, schema } => {
                let url = Self::url(url_env, env)?;
                postgres::probe(&url, schema, url_env).await
            }
        }
    }

    fn url(url_env: &str, env: &HashMap<String, String>) -> Result<String> {
        env.get(url_env)
            .cloned()
            .or_else(|| std::env::var(url_env).ok())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::ConfigFile {
                code: "LEDGER_URL_MISSING",
                message: format!(
                    "the ledger is in PostgreSQL (storage.engine \"postgres\") and {url_env} is not set; set it to the ledger database's URL"
                ),
            })
    }

    /// Open the ledger here (creating and migrating it as needed). A PostgreSQL URL is looked
    /// up in `env` first, then in the process environment.
    pub async fn open(&self, env: &HashMap<String, String>) -> Result<Ledger> {
        match self {
            LedgerLocation::Sqlite(p) => Ledger::open(p),
            LedgerLocation::Postgres { url_env, schema } => {
                let url = Self::url(url_env, env)?;
                Ledger::open_postgres(&url, schema, url_env).await
            }
        }
    }
}

/// The store behind a [`Ledger`].
enum Store {
    /// The SQLite store, run on a thread of its own.
    Sqlite {
        jobs: Option<std::sync::mpsc::Sender<Job>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
    Postgres(Box<PgLedger>),
}

/// The ledger handle. Share it behind an `Arc`; the store decides how calls are serialized (one
/// thread for SQLite; row locks and constraints for PostgreSQL).
pub struct Ledger {
    store: Store,
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
            .spawn(move || serve(&mut store, queue))
            .map_err(|e| Error::Internal(format!("cannot start the ledger thread: {e}")))?;
        Ok(Ledger {
            store: Store::Sqlite {
                jobs: Some(jobs),
                thread: Some(thread),
            },
            read_only,
        })
    }

    /// Open (creating and migrating as needed) the ledger in schema `schema` of the PostgreSQL
    /// database at `url`. `url_label` names where the URL came from, for errors; the URL
    /// itself is never shown.
    pub async fn open_postgres(url: &str, schema: &str, url_label: &str) -> Result<Self> {
        Ok(Ledger {
            store: Store::Postgres(Box::new(PgLedger::open(url, schema, url_label).await?)),
            read_only: false,
        })
    }

    fn pg(&self) -> Option<&PgLedger> {
        match &self.store {
            Store::Postgres(p) => Some(p),
            Store::Sqlite { .. } => None,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.store {
            Store::Postgres(_) => "postgres",
            Store::Sqlite { .. } => "sqlite",
        }
    }

    /// Run `f` against the store on its thread and wait for its answer.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut SqliteLedger) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let stopped = || Error::Internal("the ledger stopped before answering".into());
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job::Call(Box::new(move |store| {
            let _ = reply.send(f(store));
        }));
        let Store::Sqlite { jobs, .. } = &self.store else {
            return Err(Error::Internal("not a SQLite ledger".into()));
        };
        jobs.as_ref()
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
        if let Some(pg) = self.pg() {
            return pg.schema_version().await;
        }
        self.call(|l| l.schema_version()).await
    }

    /// Record the evidence and audit of a read capability call.
    pub async fn record_read(&self, bundle: EvidenceBundle, audit: QueryAudit) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.record_read(&bundle, &audit).await;
        }
        let stopped = || Error::Internal("the ledger stopped before answering".into());
        let Store::Sqlite { jobs, .. } = &self.store else {
            return Err(Error::Internal("not a SQLite ledger".into()));
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let record = ReadRecord {
            bundle,
            audit,
            reply,
        };
        jobs.as_ref()
            .ok_or_else(stopped)?
            .send(Job::Read(Box::new(record)))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Record a new proposal with its evidence and audit, unless the same change is already
    /// active (then that proposal is returned).
    pub async fn create_proposal(
        &self,
        cs: ChangeSet,
        bundle: EvidenceBundle,
        audit: QueryAudit,
    ) -> Result<CreateOutcome> {
        if let Some(pg) = self.pg() {
            return Ok(match pg.create_proposal(&cs, &bundle, &audit).await? {
                Created::New => CreateOutcome::Created(Box::new(cs)),
                Created::Duplicate(p) => CreateOutcome::Duplicate(p),
            });
        }
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
        if let Some(pg) = self.pg() {
            return pg.proposal(id).await;
        }
        let id = id.to_string();
        self.call(move |l| l.proposal(&id)).await
    }

    /// Resolve `latest` (newest by creation) or return the id as given.
    pub async fn resolve_selector(&self, selector: &str) -> Result<String> {
        if let Some(pg) = self.pg() {
            return pg.resolve_selector(selector).await;
        }
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
        if let Some(pg) = self.pg() {
            return pg.list_proposals(state, tenant, limit).await;
        }
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
        if let Some(pg) = self.pg() {
            return pg.approve(id, approver, reason).await;
        }
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
        if let Some(pg) = self.pg() {
            return pg.reject(id, approver, reason).await;
        }
        let (id, approver, reason) = (id.to_string(), approver.clone(), reason.to_string());
        self.call(move |l| l.reject(&id, &approver, &reason)).await
    }

    /// The latest approval of a proposal, as recorded.
    pub async fn approval_record(&self, id: &str) -> Result<Option<Value>> {
        if let Some(pg) = self.pg() {
            return pg.approval_record(id).await;
        }
        let id = id.to_string();
        self.call(move |l| l.approval_record(&id)).await
    }

    /// Record a writeback job before it runs (the proposal moves to `pending_worker`).
    pub async fn prepare_job(&self, job: &WritebackJob, executor: &str, actor: &str) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.prepare_job(job, executor, actor).await;
        }
        let (job, executor, actor) = (job.clone(), executor.to_string(), actor.to_string());
        self.call(move |l| l.prepare_job(&job, &executor, &actor))
            .await
    }

    /// Writeback jobs whose proposal is still `pending_worker`: an apply started and never
    /// reported back (a crash, a killed process, a ledger write that failed), or is running now.
    /// Each with its executor type.
    pub async fn pending_jobs(&self) -> Result<Vec<(WritebackJob, String)>> {
        if let Some(pg) = self.pg() {
            return pg.pending_jobs().await;
        }
        self.call(|l| l.pending_jobs()).await
    }

    /// Put a `pending_worker` proposal back to `approved`, recording why.
    pub async fn release_job(&self, job: &WritebackJob, actor: &str, why: &str) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.release_job(job, actor, why).await;
        }
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
        if let Some(pg) = self.pg() {
            return pg.record_receipt(receipt, retryable).await;
        }
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
        if let Some(pg) = self.pg() {
            return pg.record_event(proposal_id, kind, actor, payload).await;
        }
        let (id, kind, actor) = (proposal_id.to_string(), kind.to_string(), actor.to_string());
        self.call(move |l| l.record_event(&id, &kind, &actor, payload))
            .await
    }

    /// The replay record of a proposal (stored as a replay record unless read-only).
    pub async fn replay(&self, id: &str) -> Result<Value> {
        if let Some(pg) = self.pg() {
            return pg.replay_record(id, true).await;
        }
        let id = id.to_string();
        self.call(move |l| l.replay(&id)).await
    }

    /// The same record for display only (approval previews): nothing is written.
    pub async fn replay_view(&self, id: &str) -> Result<Value> {
        if let Some(pg) = self.pg() {
            return pg.replay_record(id, false).await;
        }
        let id = id.to_string();
        self.call(move |l| l.replay_view(&id)).await
    }

    /// An evidence bundle with its items.
    pub async fn evidence_bundle(&self, id: &str) -> Result<Option<Value>> {
        if let Some(pg) = self.pg() {
            return pg.evidence_bundle(id).await;
        }
        let id = id.to_string();
        self.call(move |l| l.evidence_bundle(&id)).await
    }

    /// Rows in one of the ledger's tables.
    pub async fn count(&self, table: &str) -> Result<i64> {
        if let Some(pg) = self.pg() {
            return pg.count(table).await;
        }
        let table = table.to_string();
        self.call(move |l| l.count(&table)).await
    }

    /// Rows in every table and the file's size in pages (`page_count`, `page_size`,
    /// `approx_bytes`).
    pub async fn stats(&self) -> Result<Value> {
        if let Some(pg) = self.pg() {
            return pg.stats().await;
        }
        self.call(|l| l.stats()).await
    }

    /// Recompute every proposal's and receipt's digest and check event order, evidence links and
    /// applied states: `{checked: {proposals}, problems: [{code, proposal_id, detail}]}`.
    pub async fn check(&self) -> Result<Value> {
        if let Some(pg) = self.pg() {
            return pg.check().await;
        }
        self.call(|l| l.check()).await
    }

    /// Remove (or, with `dry_run`, count) the evidence and query audit of reads recorded before
    /// `cutoff` (ISO-8601) that no proposal references. Proposals and everything recorded about
    /// them (approvals, jobs, receipts, events, their evidence) are never pruned. Returns
    /// `{cutoff, dry_run, deleted: {table: rows}}`.
    pub async fn prune_reads(&self, cutoff: &str, dry_run: bool) -> Result<Value> {
        if let Some(pg) = self.pg() {
            return pg.prune_reads(cutoff, dry_run).await;
        }
        let cutoff = cutoff.to_string();
        self.call(move |l| l.prune_reads(&cutoff, dry_run)).await
    }

    /// Rebuild the ledger file to reclaim free pages; the approximate size before and after.
    pub async fn vacuum(&self) -> Result<(i64, i64)> {
        if let Some(pg) = self.pg() {
            return pg.vacuum().await;
        }
        self.call(|l| l.vacuum()).await
    }

    /// Evidence bundles, newest first, with their item and query-audit counts.
    pub async fn list_evidence(&self, filter: &ListFilter) -> Result<Vec<Value>> {
        if let Some(pg) = self.pg() {
            return pg.list_evidence(filter).await;
        }
        let filter = filter.clone();
        self.call(move |l| l.list_evidence(&filter)).await
    }

    /// Proposal events after `filter.after_id`: the newest `limit`, oldest first.
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<Value>> {
        if let Some(pg) = self.pg() {
            return pg.list_events(filter).await;
        }
        let filter = filter.clone();
        self.call(move |l| l.list_events(&filter)).await
    }

    /// One replay entry per proposal, newest first.
    pub async fn list_replays(&self, filter: &ListFilter) -> Result<Vec<Value>> {
        if let Some(pg) = self.pg() {
            return pg.list_replays(filter).await;
        }
        let filter = filter.clone();
        self.call(move |l| l.list_replays(&filter)).await
    }

    /// Query-audit rows, newest first.
    pub async fn list_query_audit(&self, filter: &ListFilter) -> Result<Vec<Value>> {
        if let Some(pg) = self.pg() {
            return pg.list_query_audit(filter).await;
        }
        let filter = filter.clone();
        self.call(move |l| l.list_query_audit(&filter)).await
    }

    /// One query-audit row by its number.
    pub async fn query_audit(&self, audit_id: i64) -> Result<Option<Value>> {
        if let Some(pg) = self.pg() {
            return pg.query_audit(audit_id).await;
        }
        self.call(move |l| l.query_audit(audit_id)).await
    }

    /// Execution receipts, newest first.
    pub async fn list_receipts(&self, filter: &ReceiptFilter) -> Result<Vec<Value>> {
        if let Some(pg) = self.pg() {
            return pg.list_receipts(filter).await;
        }
        let filter = filter.clone();
        self.call(move |l| l.list_receipts(&filter)).await
    }

    /// One execution receipt by its number.
    pub async fn receipt(&self, receipt_id: i64) -> Result<Option<Value>> {
        if let Some(pg) = self.pg() {
            return pg.receipt(receipt_id).await;
        }
        self.call(move |l| l.receipt(receipt_id)).await
    }

    /// How SQLite looks up a proposal's active twin (tests check it uses the index).
    pub async fn active_lookup_plan(&self) -> Result<String> {
        if let Some(pg) = self.pg() {
            return pg.active_lookup_plan().await;
        }
        self.call(|l| l.active_lookup_plan()).await
    }

    /// Copy this SQLite ledger, whole, into `target`, an empty PostgreSQL ledger (`store
    /// migrate`). Every digest is checked on both sides; the copy is one transaction, so an
    /// interrupted run leaves the target empty. Copying again into a target that already holds
    /// exactly these proposals does nothing (`already_migrated: true`); any other non-empty
    /// target is refused (`LEDGER_NOT_EMPTY`).
    pub async fn copy_to(&self, target: &Ledger) -> Result<Value> {
        let (Store::Sqlite { .. }, Some(pg)) = (&self.store, target.pg()) else {
            return Err(Error::ledger(
                "STORE_MIGRATE_UNSUPPORTED",
                "store migrate copies a SQLite ledger into a PostgreSQL ledger",
            ));
        };
        let source_check = self.check().await?;
        if source_check["problems"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
        {
            return Err(Error::ledger(
                "STORE_CHECK_FAILED",
                format!(
                    "the SQLite ledger fails store check ({} problems); run `store check` and fix them before copying",
                    source_check["problems"].as_array().map_or(0, Vec::len)
                ),
            ));
        }
        const ORDER: [&str; 10] = [
            "proposals",
            "evidence_bundles",
            "evidence_items",
            "query_audit",
            "approvals",
            "writeback_jobs",
            "writeback_receipts",
            "proposal_events",
            "replay_records",
            "runner_state",
        ];
        let mut tables = Vec::new();
        for t in ORDER {
            let rows = self.call(move |l| l.export_table(t)).await?;
            tables.push((t, rows));
        }
        let mut source_hashes: Vec<(String, String)> = tables[0]
            .1
            .iter()
            .map(|p| {
                (
                    p["proposal_id"].as_str().unwrap_or_default().to_string(),
                    p["proposal_hash"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        source_hashes.sort();
        if !pg.is_empty().await? {
            let mut same = pg.proposal_hashes().await? == source_hashes;
            for (t, rows) in &tables {
                same = same && pg.count(t).await? == rows.len() as i64;
            }
            if same {
                return Ok(json!({"already_migrated": true, "proposals": source_hashes.len()}));
            }
            return Err(Error::ledger(
                "LEDGER_NOT_EMPTY",
                "the PostgreSQL ledger already holds other records; copy into an empty schema (storage.schema) instead",
            ));
        }
        let copied = pg.import(&tables).await?;
        let check = target.check().await?;
        if pg.proposal_hashes().await? != source_hashes {
            return Err(Error::ledger(
                "STORE_MIGRATE_MISMATCH",
                "the copied proposals do not match the SQLite ledger's",
            ));
        }
        Ok(
            json!({"already_migrated": false, "proposals": source_hashes.len(), "copied": copied, "check": check}),
        )
    }

    /// Remove a PostgreSQL ledger's schema and everything in it (`store reset --yes`).
    pub async fn drop_postgres_schema(&self) -> Result<()> {
        match self.pg() {
            Some(pg) => pg.reset().await,
            None => Err(Error::Internal("not a PostgreSQL ledger".into())),
        }
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
        if let Store::Sqlite { jobs, thread } = &mut self.store {
            jobs.take();
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod read_batch_tests {
    use super::*;

    fn read(i: usize) -> (EvidenceBundle, QueryAudit) {
        let bundle = EvidenceBundle {
            evidence_bundle_id: format!("ev_batch_{i}"),
            tenant_id: "acme".into(),
            principal: "agent:test".into(),
            capability: "billing.inspect_invoice".into(),
            source_id: "billing".into(),
            source_table: "invoices".into(),
            business_object: "invoice".into(),
            object_id: format!("INV-{i}"),
            query_fingerprint: "fp".into(),
            payload: json!({}),
            items: vec![json!({"visible_row": {"id": i}})],
        };
        let audit = QueryAudit {
            source_id: "billing".into(),
            query_fingerprint: "fp".into(),
            table_name: "invoices".into(),
            row_count: 1,
            payload: json!({}),
            primary_key_value: format!("INV-{i}"),
        };
        (bundle, audit)
    }

    /// Reads queued behind a slow call are written together, not one transaction each.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_reads_share_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = std::sync::Arc::new(Ledger::open(&dir.path().join("l.db")).unwrap());
        let slow = {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                ledger
                    .call(|_| {
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        Ok(())
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let before = READ_TRANSACTIONS.load(std::sync::atomic::Ordering::Relaxed);
        let reads: Vec<_> = (0..30)
            .map(|i| {
                let ledger = ledger.clone();
                tokio::spawn(async move {
                    let (b, a) = read(i);
                    ledger.record_read(b, a).await
                })
            })
            .collect();
        for r in reads {
            r.await.unwrap().unwrap();
        }
        slow.await.unwrap().unwrap();
        let transactions = READ_TRANSACTIONS.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert!(
            transactions <= 3,
            "30 queued reads took {transactions} transactions"
        );
        assert_eq!(ledger.count("evidence_bundles").await.unwrap(), 30);
        assert_eq!(ledger.count("query_audit").await.unwrap(), 30);
    }
}
