//! Trusted apply: build or accept a job, re-verify authority against ledger and config, run the
//! executor, validate and record the receipt.

pub mod app_owned;
pub mod authority;
pub mod command_handler;

pub mod http_handler;
pub mod sql_update;

pub use authority::{idempotency_key_for, job_id_for, matching_capability, verify_authority};

use crate::ledger::{StoredProposal, now_iso};
use crate::protocol::{
    self, ColumnValue, ExecutionReceipt, JobConflictGuard, JobTarget, Lease, RunnerScope,
    WritebackJob,
};
use serde::Serialize;
use serde_json::{Map, Value};

/// Options for one apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub dry_run: bool,
    pub runner_id: String,
    pub project_id: String,
    pub lease_seconds: i64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            dry_run: false,
            runner_id: std::env::var("SYNAPSOR_RUNNER_ID")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "local_runner".into()),
            project_id: "local".into(),
            lease_seconds: 300,
        }
    }
}

/// What an apply did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyOutcome {
    pub receipt: ExecutionReceipt,
    /// The executor type that ran (`sql_update`, ...).
    pub executor: String,
    pub dry_run: bool,
    /// Whether a new receipt row was written (false for idempotent retries and dry runs).
    pub recorded: bool,
    /// A transient failure: the proposal stays approved and a later apply may succeed.
    pub retryable: bool,
}

/// The writeback job for an approved proposal, exactly as stored (direct SQL).
pub fn job_from_proposal(p: &StoredProposal, engine: &str, opts: &ApplyOptions) -> WritebackJob {
    job_for_executor(p, engine, "sql_update", opts)
}

/// The writeback job for an approved proposal routed to an executor of `executor_type`.
pub fn job_for_executor(
    p: &StoredProposal,
    engine: &str,
    executor_type: &str,
    opts: &ApplyOptions,
) -> WritebackJob {
    let cs = &p.change_set;
    let ev = &cs.guards.expected_version;
    let conflict_guard = if ev.is_row_hash() {
        JobConflictGuard::RowHash {
            expected_hash: ev
                .value
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| ev.value.to_string()),
        }
    } else if ev.column.is_empty() {
        JobConflictGuard::None
    } else {
        JobConflictGuard::Column {
            column: ev.column.clone(),
            expected_value: ev.value.clone(),
        }
    };
    let expires =
        chrono::Utc::now() + chrono::Duration::seconds(opts.lease_seconds.clamp(15, 3600));
    WritebackJob {
        schema_version: protocol::WRITEBACK_JOB_V1.into(),
        writeback_job_id: job_id_for(&p.proposal_id, executor_type),
        proposal_id: p.proposal_id.clone(),
        proposal_version: p.proposal_version,
        proposal_hash: p.proposal_hash.clone(),
        runner_scope: RunnerScope {
            project_id: opts.project_id.clone(),
            source_id: cs.source.source_id.clone(),
        },
        engine: engine.into(),
        operation: "single_row_update".into(),
        target: JobTarget {
            schema: cs.source.schema.clone(),
            table: cs.source.table.clone(),
            primary_key: cs.source.primary_key.clone(),
        },
        tenant_guard: ColumnValue {
            column: cs.guards.tenant.column.clone(),
            value: cs.guards.tenant.value.clone(),
        },
        allowed_columns: cs.guards.allowed_columns.clone(),
        patch: cs.patch.clone(),
        conflict_guard,
        idempotency_key: idempotency_key_for(p),
        lease: Lease {
            lease_id: format!("lease_{}", &job_id_for(&p.proposal_id, executor_type)[4..]),
            attempt: 1,
            expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    }
}

/// Receipt extras saying that the outcome was read back from the source's receipt table (an
/// earlier attempt committed it; a crash or a failed ledger write kept the ledger from knowing).
pub(crate) fn recovery_note(outcome: &crate::write::UpdateOutcome) -> Map<String, Value> {
    let mut extra = Map::new();
    if outcome.recovered {
        extra.insert("recovered_from_source_receipt".into(), Value::Bool(true));
    }
    extra
}

/// Build a v1 execution receipt and its digest.
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_receipt(
    job: &WritebackJob,
    runner_id: &str,
    status: &str,
    rows: u64,
    previous: Option<Value>,
    mutated: bool,
    code: Option<String>,
    extra: Map<String, Value>,
) -> ExecutionReceipt {
    let mut r = ExecutionReceipt {
        schema_version: protocol::EXECUTION_RECEIPT_V1.into(),
        writeback_job_id: job.writeback_job_id.clone(),
        proposal_id: job.proposal_id.clone(),
        runner_id: runner_id.into(),
        status: status.into(),
        rows_affected: rows,
        idempotency_key: job.idempotency_key.clone(),
        previous_version: previous,
        new_version: None,
        source_database_mutated: mutated,
        executed_at: now_iso(),
        safe_error_code: code,
        receipt_hash: String::new(),
        extra,
    };
    r.receipt_hash = r.compute_hash();
    r
}
