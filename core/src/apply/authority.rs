//! Apply-time authority re-verification: the job must match the stored, approved proposal and
//! the reviewed config, field by field. Any mismatch fails closed before the source is touched.

use crate::capability::check_bounds;
use crate::config::{Capability, CapabilityKind, ExecutorConfig, Mode, RunnerConfig};
use crate::error::{Error, Result};
use crate::ledger::{Ledger, StoredProposal};
use crate::protocol::{JobConflictGuard, WritebackJob};

/// The reviewed proposal capability a stored proposal belongs to.
pub fn matching_capability<'a>(
    config: &'a RunnerConfig,
    p: &StoredProposal,
) -> Result<&'a Capability> {
    let cs = &p.change_set;
    config
        .capabilities
        .iter()
        .find(|c| {
            c.kind == CapabilityKind::Proposal
                && c.name == cs.action
                && c.source == cs.source.source_id
                && c.target.schema == cs.source.schema
                && c.target.table == cs.source.table
                && c.target.primary_key == cs.source.primary_key.column
        })
        .ok_or_else(|| {
            Error::authority(
                "CAPABILITY_MISMATCH",
                format!(
                    "proposal {} does not match any reviewed proposal capability in local config",
                    p.proposal_id
                ),
            )
        })
}

/// Executor type a capability routes to (by type, not by name).
pub fn executor_type<'a>(
    config: &'a RunnerConfig,
    cap: &Capability,
) -> Result<(&'static str, Option<&'a ExecutorConfig>)> {
    match cap.executor_name() {
        "sql_update" => Ok(("sql_update", None)),
        name => {
            let ex = config.executors.get(name).ok_or_else(|| {
                Error::authority(
                    "UNKNOWN_EXECUTOR",
                    format!("executor {name} is not in reviewed config"),
                )
            })?;
            Ok((ex.type_name(), Some(ex)))
        }
    }
}

/// Verify `job` against the ledger and the current config. Returns the stored proposal and the
/// capability that authorises it.
pub async fn verify_authority<'a>(
    config: &'a RunnerConfig,
    ledger: &Ledger,
    job: &WritebackJob,
) -> Result<(StoredProposal, &'a Capability)> {
    job.validate()?;
    if config.mode != Mode::Review {
        return Err(Error::authority(
            "REVIEW_MODE_REQUIRED",
            format!(
                "local writeback apply requires review mode, got {}",
                config.mode.as_str()
            ),
        ));
    }
    let source = config
        .sources
        .get(&job.runner_scope.source_id)
        .ok_or_else(|| {
            Error::authority(
                "SOURCE_NOT_REVIEWED",
                format!(
                    "writeback source {} is not present in reviewed config",
                    job.runner_scope.source_id
                ),
            )
        })?;
    if source.engine.as_str() != job.engine {
        return Err(Error::authority(
            "ENGINE_MISMATCH",
            format!(
                "writeback engine {} does not match reviewed source {}",
                job.engine, job.runner_scope.source_id
            ),
        ));
    }
    let expires = chrono::DateTime::parse_from_rfc3339(&job.lease.expires_at).ok();
    if expires.map(|t| t < chrono::Utc::now()).unwrap_or(true) {
        return Err(Error::authority(
            "WRITEBACK_LEASE_EXPIRED",
            "writeback job lease has expired",
        ));
    }

    // The proposal names its capability; the job must fit that capability exactly (another
    // capability on the same table never lends its authority).
    let p = ledger
        .proposal(&job.proposal_id)
        .await
        .map_err(|e| match e {
            Error::Ledger {
                code: "PROPOSAL_NOT_FOUND",
                ..
            } => Error::authority(
                "PROPOSAL_NOT_FOUND",
                format!(
                    "local proposal not found for writeback job: {}",
                    job.proposal_id
                ),
            ),
            other => other,
        })?;
    if !p.state.may_apply() {
        return Err(Error::authority(
            "PROPOSAL_NOT_APPROVED",
            format!(
                "local proposal {} is {}, not approved for writeback",
                p.proposal_id, p.state
            ),
        ));
    }
    let cap = config
        .capabilities
        .iter()
        .find(|c| c.kind == CapabilityKind::Proposal && c.name == p.change_set.action)
        .filter(|c| {
            c.source == job.runner_scope.source_id
                && c.target.schema == job.target.schema
                && c.target.table == job.target.table
                && c.target.primary_key == job.target.primary_key.column
                && c.target
                    .tenant_key
                    .as_deref()
                    .unwrap_or(crate::protocol::SINGLE_TENANT_DEV_GUARD)
                    == job.tenant_guard.column
        })
        .ok_or_else(|| {
            Error::authority(
                "CAPABILITY_MISMATCH",
                "writeback job does not match any reviewed proposal capability in local config",
            )
        })?;
    for col in &job.allowed_columns {
        if !cap.allowed_columns.contains(col) {
            return Err(Error::authority(
                "ALLOWLIST_WIDENED",
                format!("writeback job allowlist widens reviewed authority: {col}"),
            ));
        }
    }
    for col in job.patch.keys() {
        if !cap.allowed_columns.contains(col) {
            return Err(Error::authority(
                "PATCH_COLUMN_NOT_REVIEWED",
                format!("writeback patch column is not reviewed by local config: {col}"),
            ));
        }
    }
    let reviewed_guard = cap.conflict_guard.clone().unwrap_or_default();
    match (&job.conflict_guard, reviewed_guard.column.as_deref()) {
        (JobConflictGuard::Column { column, .. }, Some(c)) if column == c => {}
        (JobConflictGuard::RowHash { .. }, None) if reviewed_guard.weak_guard_ack == Some(true) => {
        }
        (JobConflictGuard::None, _) => {
            return Err(Error::authority(
                "CONFLICT_GUARD_REQUIRED",
                "a direct SQL writeback with no conflict guard is refused",
            ));
        }
        _ => {
            return Err(Error::authority(
                "CONFLICT_GUARD_MISMATCH",
                "writeback conflict guard does not match reviewed capability",
            ));
        }
    }

    let cs = &p.change_set;
    // The stored row itself must still hash to what was approved.
    if cs.compute_hash() != p.proposal_hash || cs.integrity.proposal_hash != p.proposal_hash {
        return Err(Error::authority(
            "LEDGER_INTEGRITY_FAILED",
            format!("stored proposal {} failed integrity checks", p.proposal_id),
        ));
    }
    if job.proposal_hash != p.proposal_hash {
        return Err(Error::authority(
            "PROPOSAL_HASH_MISMATCH",
            "writeback approval/proposal digest does not match local proposal",
        ));
    }
    if job.proposal_version != p.proposal_version {
        return Err(Error::authority(
            "PROPOSAL_VERSION_MISMATCH",
            "writeback proposal version does not match local proposal",
        ));
    }
    let approval = ledger
        .approval_record(&p.proposal_id)
        .await?
        .ok_or_else(|| {
            Error::authority(
                "APPROVAL_MISSING",
                format!("local proposal {} has no recorded approval", p.proposal_id),
            )
        })?;
    if approval["proposal_hash"].as_str() != Some(p.proposal_hash.as_str()) {
        return Err(Error::authority(
            "APPROVAL_DIGEST_MISMATCH",
            "recorded approval does not bind the stored proposal digest",
        ));
    }
    if let Some(role) = cs.approval.required_role.as_deref() {
        let has = approval["roles"]
            .as_array()
            .map(|rs| rs.iter().any(|r| r.as_str() == Some(role)))
            .unwrap_or(false);
        if !has {
            return Err(Error::authority(
                "APPROVER_ROLE_MISSING",
                format!("recorded approval lacks required role {role}"),
            ));
        }
    }
    if cap.name != cs.action {
        return Err(Error::authority(
            "CAPABILITY_MISMATCH",
            format!(
                "proposal {} does not match any reviewed proposal capability in local config",
                p.proposal_id
            ),
        ));
    }
    if job.patch != cs.patch {
        return Err(Error::authority(
            "JOB_PATCH_MISMATCH",
            "writeback job patch differs from the approved proposal",
        ));
    }
    if job.target.primary_key != cs.source.primary_key {
        return Err(Error::authority(
            "JOB_TARGET_MISMATCH",
            "writeback job primary key differs from the approved proposal",
        ));
    }
    if job.tenant_guard != cs.guards.tenant {
        return Err(Error::authority(
            "JOB_TENANT_MISMATCH",
            "writeback job tenant guard differs from the approved proposal",
        ));
    }
    let expected_ok = match &job.conflict_guard {
        JobConflictGuard::Column {
            column,
            expected_value,
        } => {
            column == &cs.guards.expected_version.column
                && expected_value == &cs.guards.expected_version.value
        }
        JobConflictGuard::RowHash { expected_hash } => {
            cs.guards.expected_version.is_row_hash()
                && Some(expected_hash.as_str()) == cs.guards.expected_version.value.as_str()
        }
        JobConflictGuard::None => false,
    };
    if !expected_ok {
        return Err(Error::authority(
            "JOB_VERSION_MISMATCH",
            "writeback job expected version differs from the approved proposal",
        ));
    }
    let (executor, _) = executor_type(config, cap)?;
    if job.idempotency_key != super::idempotency_key_for(&p)
        || job.writeback_job_id != super::job_id_for(&p.proposal_id, executor)
    {
        return Err(Error::authority(
            "JOB_IDENTITY_MISMATCH",
            "writeback job id or idempotency key does not belong to the approved proposal",
        ));
    }
    if job.runner_scope.source_id != cs.source.source_id
        || job.target.schema != cs.source.schema
        || job.target.table != cs.source.table
    {
        return Err(Error::authority(
            "JOB_TARGET_MISMATCH",
            "writeback job target differs from the approved proposal",
        ));
    }
    // The reviewed config may have tightened since the proposal: re-check its policy now.
    check_bounds(cap, &job.patch).map_err(|e| {
        Error::authority(
            "POLICY_CHANGED",
            format!("approved patch is outside the current reviewed policy: {e}"),
        )
    })?;
    for col in &cs.guards.allowed_columns {
        if !cap.allowed_columns.contains(col) {
            return Err(Error::authority(
                "ALLOWLIST_WIDENED",
                format!("proposal allowlist widens reviewed authority: {col}"),
            ));
        }
    }
    Ok((p, cap))
}
