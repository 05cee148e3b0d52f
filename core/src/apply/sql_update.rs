//! The `sql_update` executor: one guarded UPDATE plus the receipt row, in one transaction.

use super::{ApplyOptions, make_receipt};
use crate::config::{Capability, TransitionGuard};
use crate::error::{Error, Result};
use crate::protocol::{self, ExecutionReceipt, JobConflictGuard, WritebackJob};
use crate::source::Source;
use crate::write::{GuardedUpdate, UpdateOutcome, VersionGuard, WriteStatus};
use serde_json::json;

/// Digest of everything the write means, so a reused idempotency key with another intent is caught.
pub fn intent_hash(job: &WritebackJob) -> String {
    protocol::digest(&json!({
        "proposal_id": job.proposal_id,
        "proposal_hash": job.proposal_hash,
        "target": job.target,
        "tenant_guard": job.tenant_guard,
        "patch": job.patch,
        "conflict_guard": job.conflict_guard,
    }))
}

/// Turn a verified job into the source-level plan, with the capability's guard advance rule and
/// the transitions and bounds to re-check on the locked row.
pub fn plan_for(
    job: &WritebackJob,
    cap: &Capability,
    before_columns: &[String],
) -> Result<GuardedUpdate> {
    let guard = match &job.conflict_guard {
        JobConflictGuard::Column {
            column,
            expected_value,
        } => VersionGuard::Column {
            column: column.clone(),
            expected: expected_value.clone(),
        },
        JobConflictGuard::RowHash { expected_hash } => VersionGuard::RowHash {
            expected: expected_hash.clone(),
            columns: before_columns.to_vec(),
        },
        JobConflictGuard::None => {
            return Err(Error::authority(
                "CONFLICT_GUARD_REQUIRED",
                "a direct SQL writeback with no conflict guard is refused",
            ));
        }
    };
    let tenant = if job.tenant_guard.is_single_tenant_dev() {
        None
    } else {
        Some((
            job.tenant_guard.column.clone(),
            job.tenant_guard
                .value
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| job.tenant_guard.value.to_string()),
        ))
    };
    let mut lock_columns: Vec<String> = match &guard {
        VersionGuard::Column { column, .. } => vec![column.clone()],
        VersionGuard::RowHash { columns, .. } => columns.clone(),
    };
    let transitions: Vec<(String, TransitionGuard)> = cap
        .transition_guards
        .iter()
        .filter(|(c, _)| job.patch.contains_key(c))
        .cloned()
        .collect();
    let from_columns = transitions
        .iter()
        .map(|(c, g)| g.from_column.as_ref().unwrap_or(c));
    for c in std::iter::once(&job.target.primary_key.column)
        .chain(tenant.as_ref().map(|t| &t.0))
        .chain(from_columns)
    {
        if !lock_columns.contains(c) {
            lock_columns.push(c.clone());
        }
    }
    Ok(GuardedUpdate {
        job_id: job.writeback_job_id.clone(),
        proposal_id: job.proposal_id.clone(),
        idempotency_key: job.idempotency_key.clone(),
        intent_hash: intent_hash(job),
        schema: job.target.schema.clone(),
        table: job.target.table.clone(),
        primary_key: job.target.primary_key.column.clone(),
        key_value: job.target.primary_key.value.clone(),
        tenant,
        patch: job
            .patch
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        guard,
        advance: cap
            .conflict_guard
            .as_ref()
            .map(|g| g.advance)
            .unwrap_or_default(),
        transitions,
        bounds: cap
            .numeric_bounds
            .iter()
            .filter(|(c, _)| job.patch.contains_key(c))
            .cloned()
            .collect(),
        lock_columns,
    })
}

/// Run the guarded update and express the outcome as an execution receipt.
pub async fn execute(
    source: &Source,
    job: &WritebackJob,
    plan: &GuardedUpdate,
    opts: &ApplyOptions,
) -> Result<(ExecutionReceipt, bool)> {
    let outcome = match source
        .guarded_update(plan, opts.dry_run, crate::write::WriteStep::Update)
        .await
    {
        Ok(o) => o,
        Err(Error::SourceUnavailable { .. }) => {
            UpdateOutcome::failed(&job.writeback_job_id, "DATABASE_UNAVAILABLE", true)
        }
        Err(Error::UnsafeIdentifier(_)) => {
            UpdateOutcome::failed(&job.writeback_job_id, "WRITEBACK_SAFETY_FAILURE", false)
        }
        Err(_) => UpdateOutcome::failed(&job.writeback_job_id, "TRANSACTION_FAILED", false),
    };
    let mutated = outcome.status == WriteStatus::Applied && !opts.dry_run;
    let receipt = make_receipt(
        job,
        &opts.runner_id,
        outcome.status.as_str(),
        outcome.rows_affected,
        outcome.previous_version.clone(),
        mutated,
        outcome.code.clone(),
        super::recovery_note(&outcome),
    );
    Ok((receipt, outcome.retryable))
}
