//! Apply-time authority: a writeback job must match the stored, approved proposal and the
//! reviewed config, field by field. Every check here is pure (the caller reads the proposal and
//! its approval from the ledger first); any mismatch fails closed before the source is touched.

use super::ProposalState;

use crate::config::{Capability, CapabilityKind, ExecutorConfig, Mode, RunnerConfig};
use crate::error::{Error, Result};
use crate::protocol::{ChangeSet, JobConflictGuard, WritebackJob};
use serde_json::Value;

/// What the apply-time checks need of a stored proposal.
#[derive(Debug, Clone, Copy)]
pub struct ProposalView<'a> {
    pub proposal_id: &'a str,
    pub object_id: &'a str,
    pub state: ProposalState,
    pub proposal_hash: &'a str,
    pub proposal_version: u32,
    pub change_set: &'a ChangeSet,
}

fn deny(code: &'static str, message: impl Into<String>) -> Error {
    Error::authority(code, message)
}

/// `wbj_` (direct SQL) or `hwb_` (app-owned executors) + the proposal id with anything
/// outside `[A-Za-z0-9_:-]` replaced.
pub fn job_id_for(proposal_id: &str, executor_type: &str) -> String {
    let prefix = if executor_type == "sql_update" {
        "wbj_"
    } else {
        "hwb_"
    };
    let safe: String = proposal_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_:-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{safe}")
}

/// `<proposal_id>:<object_id>`.
pub fn idempotency_key_for(proposal_id: &str, object_id: &str) -> String {
    format!("{proposal_id}:{object_id}")
}

/// The reviewed proposal capability a stored proposal belongs to.
pub fn matching_capability<'a>(
    config: &'a RunnerConfig,
    p: &ProposalView<'_>,
) -> Result<&'a Capability> {
    let cs = p.change_set;
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
            deny(
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
                deny(
                    "UNKNOWN_EXECUTOR",
                    format!("executor {name} is not in reviewed config"),
                )
            })?;
            Ok((ex.type_name(), Some(ex)))
        }
    }
}

/// The job on its own: well formed, review mode, a reviewed source of the same engine, and a
/// lease that has not expired.
pub fn check_job(config: &RunnerConfig, job: &WritebackJob) -> Result<()> {
    job.validate()?;
    if config.mode != Mode::Review {
        return Err(deny(
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
            deny(
                "SOURCE_NOT_REVIEWED",
                format!(
                    "writeback source {} is not present in reviewed config",
                    job.runner_scope.source_id
                ),
            )
        })?;
    if source.engine.as_str() != job.engine {
        return Err(deny(
            "ENGINE_MISMATCH",
            format!(
                "writeback engine {} does not match reviewed source {}",
                job.engine, job.runner_scope.source_id
            ),
        ));
    }
    let expires = chrono::DateTime::parse_from_rfc3339(&job.lease.expires_at).ok();
    if expires.map(|t| t < chrono::Utc::now()).unwrap_or(true) {
        return Err(deny(
            "WRITEBACK_LEASE_EXPIRED",
            "writeback job lease has expired",
        ));
    }
    Ok(())
}

/// Only an approved proposal (or one whose apply is under way or done) may be applied.
pub fn check_state(p: &ProposalView<'_>) -> Result<()> {
    if p.state.may_apply() {
        return Ok(());
    }
    Err(deny(
        "PROPOSAL_NOT_APPROVED",
        format!(
            "local proposal {} is {}, not approved for writeback",
            p.proposal_id, p.state
        ),
    ))
}

/// The proposal names its capability; the job must fit that capability exactly (another
/// capability on the same table never lends its authority).
pub fn job_capability<'a>(
    config: &'a RunnerConfig,
    job: &WritebackJob,
    p: &ProposalView<'_>,
) -> Result<&'a Capability> {
    config
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
            deny(
                "CAPABILITY_MISMATCH",
                "writeback job does not match any reviewed proposal capability in local config",
            )
        })
}

/// The job asks for no more than the capability reviews: its allowlist, its patch columns and
/// the kind of conflict guard.
pub fn check_within_capability(job: &WritebackJob, cap: &Capability) -> Result<()> {
    for col in &job.allowed_columns {
        if !cap.allowed_columns.contains(col) {
            return Err(deny(
                "ALLOWLIST_WIDENED",
                format!("writeback job allowlist widens reviewed authority: {col}"),
            ));
        }
    }
    for col in job.patch.keys() {
        if !cap.allowed_columns.contains(col) {
            return Err(deny(
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
            return Err(deny(
                "CONFLICT_GUARD_REQUIRED",
                "a direct SQL writeback with no conflict guard is refused",
            ));
        }
        _ => {
            return Err(deny(
                "CONFLICT_GUARD_MISMATCH",
                "writeback conflict guard does not match reviewed capability",
            ));
        }
    }
    Ok(())
}

/// The stored proposal still hashes to what was approved, and the job names that digest and
/// version.
pub fn check_integrity(job: &WritebackJob, p: &ProposalView<'_>) -> Result<()> {
    let cs = p.change_set;
    // The stored row itself must still hash to what was approved.
    if cs.compute_hash() != p.proposal_hash || cs.integrity.proposal_hash != p.proposal_hash {
        return Err(deny(
            "LEDGER_INTEGRITY_FAILED",
            format!("stored proposal {} failed integrity checks", p.proposal_id),
        ));
    }
    if job.proposal_hash != p.proposal_hash {
        return Err(deny(
            "PROPOSAL_HASH_MISMATCH",
            "writeback approval/proposal digest does not match local proposal",
        ));
    }
    if job.proposal_version != p.proposal_version {
        return Err(deny(
            "PROPOSAL_VERSION_MISMATCH",
            "writeback proposal version does not match local proposal",
        ));
    }
    Ok(())
}

/// The recorded approval binds this digest and was given by someone holding the required role.
pub fn check_approval(p: &ProposalView<'_>, approval: Option<&Value>) -> Result<()> {
    let cs = p.change_set;
    let approval = approval.ok_or_else(|| {
        deny(
            "APPROVAL_MISSING",
            format!("local proposal {} has no recorded approval", p.proposal_id),
        )
    })?;
    if approval["proposal_hash"].as_str() != Some(p.proposal_hash) {
        return Err(deny(
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
            return Err(deny(
                "APPROVER_ROLE_MISSING",
                format!("recorded approval lacks required role {role}"),
            ));
        }
    }
    Ok(())
}

/// The job is the approved proposal, field by field: capability, patch, target, tenant,
/// expected version, and the job id and idempotency key derived from it.
pub fn check_job_is_proposal(
    config: &RunnerConfig,
    job: &WritebackJob,
    p: &ProposalView<'_>,
    cap: &Capability,
) -> Result<()> {
    let cs = p.change_set;
    if cap.name != cs.action {
        return Err(deny(
            "CAPABILITY_MISMATCH",
            format!(
                "proposal {} does not match any reviewed proposal capability in local config",
                p.proposal_id
            ),
        ));
    }
    if job.patch != cs.patch {
        return Err(deny(
            "JOB_PATCH_MISMATCH",
            "writeback job patch differs from the approved proposal",
        ));
    }
    if job.target.primary_key != cs.source.primary_key {
        return Err(deny(
            "JOB_TARGET_MISMATCH",
            "writeback job primary key differs from the approved proposal",
        ));
    }
    if job.tenant_guard != cs.guards.tenant {
        return Err(deny(
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
        return Err(deny(
            "JOB_VERSION_MISMATCH",
            "writeback job expected version differs from the approved proposal",
        ));
    }
    let (executor, _) = executor_type(config, cap)?;
    if job.idempotency_key != idempotency_key_for(p.proposal_id, p.object_id)
        || job.writeback_job_id != job_id_for(p.proposal_id, executor)
    {
        return Err(deny(
            "JOB_IDENTITY_MISMATCH",
            "writeback job id or idempotency key does not belong to the approved proposal",
        ));
    }
    if job.runner_scope.source_id != cs.source.source_id
        || job.target.schema != cs.source.schema
        || job.target.table != cs.source.table
    {
        return Err(deny(
            "JOB_TARGET_MISMATCH",
            "writeback job target differs from the approved proposal",
        ));
    }
    Ok(())
}

/// The reviewed config may have tightened since the proposal: its bounds and allowlist hold now.
pub fn check_current_policy(
    job: &WritebackJob,
    p: &ProposalView<'_>,
    cap: &Capability,
) -> Result<()> {
    let cs = p.change_set;
    // The reviewed config may have tightened since the proposal: re-check its policy now.
    super::check_bounds_of(&cap.numeric_bounds, |c| job.patch.get(c)).map_err(|e| {
        deny(
            "POLICY_CHANGED",
            format!("approved patch is outside the current reviewed policy: {e}"),
        )
    })?;
    for col in &cs.guards.allowed_columns {
        if !cap.allowed_columns.contains(col) {
            return Err(deny(
                "ALLOWLIST_WIDENED",
                format!("proposal allowlist widens reviewed authority: {col}"),
            ));
        }
    }
    Ok(())
}

/// Every apply-time check after the job's own, in order. Returns the capability that
/// authorises the job.
pub fn authorize<'a>(
    config: &'a RunnerConfig,
    job: &WritebackJob,
    p: &ProposalView<'_>,
    approval: Option<&Value>,
) -> Result<&'a Capability> {
    check_state(p)?;
    let cap = job_capability(config, job, p)?;
    check_within_capability(job, cap)?;
    check_integrity(job, p)?;
    check_approval(p, approval)?;
    check_job_is_proposal(config, job, p, cap)?;
    check_current_policy(job, p, cap)?;
    Ok(cap)
}
