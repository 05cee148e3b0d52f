//! Apply-time authority re-verification: read the stored proposal and its approval, then run
//! the checks of [`crate::policy::apply`]. Any mismatch fails closed before the source is
//! touched.

use crate::config::{Capability, RunnerConfig};
use crate::error::{Error, Result};
use crate::ledger::{Ledger, StoredProposal};
use crate::policy::apply as policy;
use crate::protocol::WritebackJob;

pub use policy::{executor_type, job_id_for};

/// The reviewed proposal capability a stored proposal belongs to.
pub fn matching_capability<'a>(
    config: &'a RunnerConfig,
    p: &StoredProposal,
) -> Result<&'a Capability> {
    policy::matching_capability(config, &p.view())
}

/// `<proposal_id>:<object_id>`.
pub fn idempotency_key_for(p: &StoredProposal) -> String {
    policy::idempotency_key_for(&p.proposal_id, &p.object_id)
}

/// Verify `job` against the ledger and the current config. Returns the stored proposal and the
/// capability that authorises it.
pub async fn verify_authority<'a>(
    config: &'a RunnerConfig,
    ledger: &Ledger,
    job: &WritebackJob,
) -> Result<(StoredProposal, &'a Capability)> {
    policy::check_job(config, job)?;
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
    let approval = ledger.approval_record(&p.proposal_id).await?;
    let cap = policy::authorize(config, job, &p.view(), approval.as_ref())?;
    Ok((p, cap))
}
