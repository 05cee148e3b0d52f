//! The runner's "may this happen" rules, each a small pure function: the model's arguments and
//! the trust names it may never supply ([`validate_args`]), whose tenant and principal a call
//! runs under ([`context`]), what each mode offers and runs ([`exposed`], [`may_run`],
//! [`may_write_back`]), the proposal lifecycle ([`ProposalState`]), the transition and bound
//! checks that hold at propose on the row as read and again at apply on the row as locked, and
//! the apply-time authority checks ([`apply`]).

pub mod apply;
mod args;
pub mod context;

pub use args::validate_args;

use crate::config::{CapabilityKind, Mode, NumericBound, TransitionGuard};
use crate::error::{Error, Result};
use crate::values::Row;
use serde_json::Value;

/// Whether a capability of `kind` is offered to the model in `mode`: read_only offers reads only.
pub fn exposed(mode: Mode, kind: CapabilityKind) -> bool {
    mode != Mode::ReadOnly || kind == CapabilityKind::Read
}

/// Whether a capability of `kind` may run locally in `mode` (`PROPOSALS_DISABLED` in read_only;
/// cloud mode is served by the cloud adapter, not here).
pub fn may_run(mode: Mode, kind: CapabilityKind) -> Result<()> {
    if !exposed(mode, kind) {
        return Err(Error::CapabilityKind {
            code: "PROPOSALS_DISABLED",
            message: "Proposal tools are disabled in read_only mode.".into(),
        });
    }
    if mode == Mode::Cloud {
        return Err(Error::CapabilityKind {
            code: "CLOUD_MODE_UNSUPPORTED",
            message: "cloud mode capabilities are served by the cloud adapter, not locally.".into(),
        });
    }
    Ok(())
}

/// Whether a proposal recorded in `proposal_mode` may be approved, turned into a writeback job or
/// given a receipt (`operation` says which, for the message): shadow and read_only proposals
/// never reach the source.
pub fn may_write_back(proposal_mode: &str, proposal_id: &str, operation: &str) -> Result<()> {
    match proposal_mode {
        "shadow" => Err(Error::Ledger {
            code: "SHADOW_WRITEBACK_DISABLED",
            message: format!(
                "shadow proposal {proposal_id} cannot be {operation}; shadow mode stores proposals, evidence, query audit, and replay only and never mutates the source database"
            ),
        }),
        "read_only" => Err(Error::Ledger {
            code: "READ_ONLY_WRITEBACK_DISABLED",
            message: format!(
                "read-only proposal {proposal_id} cannot be {operation}; read-only mode does not allow proposal writeback"
            ),
        }),
        _ => Ok(()),
    }
}

/// The reviewed transition guards against `current` (the row as read, or as locked at apply):
/// every patched guarded column must move along an allowed edge.
pub(crate) fn check_transitions<'a>(
    guards: &[(String, TransitionGuard)],
    proposed: impl Fn(&str) -> Option<&'a Value>,
    current: &Row,
) -> Result<()> {
    for (col, guard) in guards {
        let Some(next) = proposed(col) else { continue };
        let current = current.get(guard.from_column.as_deref().unwrap_or(col));
        let (Some(Value::String(cur)), Value::String(next)) = (current, next) else {
            return Err(Error::policy(
                "PATCH_TRANSITION_TYPE_INVALID",
                format!("{col} transition needs string states."),
            ));
        };
        if !guard.allowed.get(cur).is_some_and(|to| to.contains(next)) {
            return Err(Error::policy(
                "PATCH_TRANSITION_NOT_ALLOWED",
                format!("{col} cannot transition from {cur} to {next}."),
            ));
        }
    }
    Ok(())
}

/// Numeric bounds over the patch values `proposed` gives (the proposal's patch, or the plan's).
pub(crate) fn check_bounds_of<'a>(
    bounds: &[(String, NumericBound)],
    proposed: impl Fn(&str) -> Option<&'a Value>,
) -> Result<()> {
    for (col, bound) in bounds {
        let Some(v) = proposed(col) else { continue };
        let Some(n) = v.as_f64() else {
            return Err(Error::policy(
                "PATCH_NUMERIC_BOUND_TYPE_INVALID",
                format!("{col} must be a number to be bounded."),
            ));
        };
        if let Some(min) = bound.minimum
            && n < min
        {
            return Err(Error::policy(
                "PATCH_BELOW_MINIMUM",
                format!("{col} must be at least {min}."),
            ));
        }
        if let Some(max) = bound.maximum
            && n > max
        {
            return Err(Error::policy(
                "PATCH_ABOVE_MAXIMUM",
                format!("{col} must be at most {max}."),
            ));
        }
    }
    Ok(())
}

/// Where a proposal is in its lifecycle. Stored and shown as the snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    /// Waiting for a reviewer.
    PendingReview,
    /// Approved; an apply may run.
    Approved,
    /// An apply started and has not reported back yet.
    PendingWorker,
    /// Written back (terminal).
    Applied,
    /// Rejected by a reviewer (terminal).
    Rejected,
    /// The row changed since the proposal was made (terminal).
    Conflict,
    /// The writeback failed for good (terminal).
    Failed,
    /// The application canceled the writeback (terminal).
    Canceled,
}

impl ProposalState {
    /// Every state, in lifecycle order.
    pub const ALL: [ProposalState; 8] = [
        ProposalState::PendingReview,
        ProposalState::Approved,
        ProposalState::PendingWorker,
        ProposalState::Applied,
        ProposalState::Rejected,
        ProposalState::Conflict,
        ProposalState::Failed,
        ProposalState::Canceled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::PendingReview => "pending_review",
            ProposalState::Approved => "approved",
            ProposalState::PendingWorker => "pending_worker",
            ProposalState::Applied => "applied",
            ProposalState::Rejected => "rejected",
            ProposalState::Conflict => "conflict",
            ProposalState::Failed => "failed",
            ProposalState::Canceled => "canceled",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a proposal in this state blocks another proposal for the same object.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ProposalState::PendingReview | ProposalState::Approved | ProposalState::PendingWorker
        )
    }

    /// Whether a reviewer may approve it.
    pub fn may_approve(self) -> bool {
        self == ProposalState::PendingReview
    }

    /// Whether a reviewer may reject it.
    pub fn may_reject(self) -> bool {
        matches!(self, ProposalState::PendingReview | ProposalState::Approved)
    }

    /// Whether an apply (a writeback job and its receipt) may run against it. `applied` is
    /// accepted so that a retry is answered from the first application's receipt.
    pub fn may_apply(self) -> bool {
        matches!(
            self,
            ProposalState::Approved | ProposalState::PendingWorker | ProposalState::Applied
        )
    }

    /// The state an execution receipt's status moves a proposal to. A retryable failure leaves
    /// it approved, to be applied again.
    pub fn after_receipt(status: &str, retryable: bool) -> Self {
        match status {
            "applied" | "already_applied" => ProposalState::Applied,
            "conflict" => ProposalState::Conflict,
            "canceled" => ProposalState::Canceled,
            _ if retryable => ProposalState::Approved,
            _ => ProposalState::Failed,
        }
    }
}

impl std::fmt::Display for ProposalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ProposalState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for s in ProposalState::ALL {
            assert_eq!(ProposalState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert_eq!(ProposalState::parse("done"), None);
        let names: Vec<_> = ProposalState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, crate::ledger::PROPOSAL_STATES);
        let active: Vec<_> = ProposalState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(active, crate::ledger::ACTIVE_STATES);
    }

    #[test]
    fn the_lifecycle_allows_exactly_its_moves() {
        use ProposalState::*;
        let approvable: Vec<_> = ProposalState::ALL
            .into_iter()
            .filter(|s| s.may_approve())
            .collect();
        assert_eq!(approvable, [PendingReview]);
        let rejectable: Vec<_> = ProposalState::ALL
            .into_iter()
            .filter(|s| s.may_reject())
            .collect();
        assert_eq!(rejectable, [PendingReview, Approved]);
        let appliable: Vec<_> = ProposalState::ALL
            .into_iter()
            .filter(|s| s.may_apply())
            .collect();
        assert_eq!(appliable, [Approved, PendingWorker, Applied]);
        let active: Vec<_> = ProposalState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, [PendingReview, Approved, PendingWorker]);
    }

    #[test]
    fn a_receipt_moves_the_proposal_to_its_outcome() {
        use ProposalState::*;
        assert_eq!(ProposalState::after_receipt("applied", false), Applied);
        assert_eq!(
            ProposalState::after_receipt("already_applied", true),
            Applied
        );
        assert_eq!(ProposalState::after_receipt("conflict", true), Conflict);
        assert_eq!(ProposalState::after_receipt("canceled", false), Canceled);
        assert_eq!(ProposalState::after_receipt("failed", true), Approved);
        assert_eq!(ProposalState::after_receipt("failed", false), Failed);
    }

    #[test]
    fn transitions_and_bounds_are_checked_against_the_row() {
        let guards = vec![(
            "status".to_string(),
            TransitionGuard {
                from_column: None,
                allowed: [("open".to_string(), vec!["waived".to_string()])]
                    .into_iter()
                    .collect(),
            },
        )];
        let row: Row = serde_json::from_value(json!({"status": "open"})).unwrap();
        let waived = json!("waived");
        let paid = json!("paid");
        assert!(check_transitions(&guards, |_| Some(&waived), &row).is_ok());
        let e = check_transitions(&guards, |_| Some(&paid), &row).unwrap_err();
        assert_eq!(e.code(), "PATCH_TRANSITION_NOT_ALLOWED");
        let bounds = vec![(
            "fee".to_string(),
            NumericBound {
                minimum: Some(0.0),
                maximum: Some(100.0),
            },
        )];
        let (ok, low, text) = (json!(50), json!(-1), json!("5"));
        assert!(check_bounds_of(&bounds, |_| Some(&ok)).is_ok());
        assert_eq!(
            check_bounds_of(&bounds, |_| Some(&low)).unwrap_err().code(),
            "PATCH_BELOW_MINIMUM"
        );
        assert_eq!(
            check_bounds_of(&bounds, |_| Some(&text))
                .unwrap_err()
                .code(),
            "PATCH_NUMERIC_BOUND_TYPE_INVALID"
        );
    }
}
