//! What a capability call returns ([`ReadResult`], [`ProposalResult`]) and the result envelopes
//! the model sees: v2 (default) and v1 (`result_format: 1`).

use crate::context::ResolvedContext;
use crate::error::Error;
use crate::policy::ProposalState;
use crate::values::Row;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// A successful read.
#[derive(Debug, Clone, Serialize)]
pub struct ReadResult {
    /// The read capability that ran.
    pub capability: String,
    /// The business object it reads (`invoice`).
    pub business_object: String,
    /// The primary key of the row read.
    pub object_id: String,
    /// The row's visible columns (credential-like text masked).
    pub data: Row,
    /// Where the evidence of this read is kept in the ledger.
    pub evidence_bundle_id: String,
    /// The tenant and principal the read ran under.
    pub context: ResolvedContext,
}

impl ReadResult {
    /// The result as JSON, the same value `serde_json::to_value` gives, with the row moved
    /// into it rather than copied (the bindings hand every result over as JSON).
    pub fn into_json(mut self) -> Value {
        let data = std::mem::take(&mut self.data);
        let mut v = serde_json::to_value(&self).expect("a ReadResult serialises");
        v["data"] = Value::Object(data);
        v
    }
}

/// A created (or duplicate) proposal.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalResult {
    /// The proposal capability that ran.
    pub capability: String,
    /// The proposal's id (`wrp_…`).
    pub proposal_id: String,
    /// The change set's protocol version.
    pub proposal_version: u32,
    /// Digest of the change set; apply re-checks it.
    pub proposal_hash: String,
    /// `pending_review` for a new proposal (or the state of the duplicate returned).
    pub state: ProposalState,
    /// The business object changed (`invoice`).
    pub business_object: String,
    /// The primary key of the row to change.
    pub object_id: String,
    /// The tenant the proposal belongs to.
    pub tenant_id: String,
    /// Per column: `{"before": …, "after": …}`.
    pub diff: Map<String, Value>,
    /// The evidence of the read the proposal was made from.
    pub evidence_bundle_id: String,
    /// The executor that will apply it once approved.
    pub executor: String,
    /// True when the same change was already active and that proposal is returned.
    pub duplicate: bool,
    /// The config's mode is `shadow`: the proposal is recorded but can never be applied.
    pub shadow: bool,
}

/// What an envelope says about its evidence handle, for the model.
pub const EVIDENCE_NOTE: &str =
    "audit/replay handle; you do not need to act on it during this turn";

/// v2 envelope for a successful read.
pub fn read_v2(r: &ReadResult) -> Value {
    json!({
        "ok": true,
        "summary": format!("Read {} {} through {}. Source database changed: no.", r.business_object, r.object_id, r.capability),
        "action": r.capability,
        "kind": "read",
        "data": r.data,
        "proposal": null,
        "error": null,
        "evidence": {"bundle_id": r.evidence_bundle_id, "note": EVIDENCE_NOTE},
        "source_database_changed": false,
        "_meta": {"tenant_id": r.context.tenant_id, "principal": r.context.principal, "provenance": r.context.provenance, "canonical_capability": r.capability},
    })
}

/// v2 envelope for a created (or duplicate) proposal.
pub fn proposal_v2(p: &ProposalResult) -> Value {
    let mode = if p.executor == "sql_update" {
        "direct_update"
    } else {
        "app_handler"
    };
    let state = match (p.state, p.shadow) {
        (ProposalState::PendingReview, true) => "shadow_proposal_created",
        (ProposalState::PendingReview, false) => "review_required",
        (other, _) => other.as_str(),
    };
    let mut proposal = json!({
        "id": p.proposal_id,
        "state": state,
        "target": format!("{}:{}", p.business_object, p.object_id),
        "diff": p.diff,
        "approval_required": true,
        "writeback": {"mode": mode, "applied": false},
        "next": "A human must approve outside this model-facing tool surface; nothing is committed yet.",
    });
    if p.duplicate {
        proposal["duplicate"] = Value::Bool(true);
    }
    json!({
        "ok": true,
        "summary": format!("{} proposal {} for {} {}. Source database changed: no.", if p.duplicate { "Found existing" } else { "Created" }, p.proposal_id, p.business_object, p.object_id),
        "action": p.capability,
        "kind": "proposal",
        "data": null,
        "proposal": proposal,
        "error": null,
        "evidence": {"bundle_id": p.evidence_bundle_id, "note": EVIDENCE_NOTE},
        "source_database_changed": false,
        "_meta": {"tenant_id": p.tenant_id, "canonical_capability": p.capability},
    })
}

/// v2 envelope for any failure: only safe codes and fixed messages.
pub fn error_v2(action: &str, kind: &str, e: &Error) -> Value {
    let mut error =
        json!({"code": e.safe_code(), "message": e.safe_message(), "retryable": e.retryable()});
    if let Some(field) = e.field() {
        // The argument's name (from the capability, or the name the model sent), never its value.
        error["field"] = Value::String(field.to_string());
    }
    if let Error::ProposalAlreadyExists { active_id, state } = e {
        error["active_proposal_id"] = Value::String(active_id.clone());
        error["active_state"] = Value::String(state.clone());
    }
    json!({
        "ok": false,
        "summary": e.safe_message(),
        "action": action,
        "kind": kind,
        "data": null,
        "proposal": null,
        "error": error,
        "evidence": null,
        "source_database_changed": false,
        "_meta": {"canonical_capability": action},
    })
}

/// v1 payload for a successful read.
pub fn read_v1(r: &ReadResult, mode: &str) -> Value {
    json!({
        "status": "ok", "action": r.capability, "mode": mode,
        "business_object": {"type": r.business_object, "id": r.object_id},
        "data": r.data,
        "trusted_context": {"tenant_id": r.context.tenant_id, "principal": r.context.principal, "provenance": r.context.provenance},
        "evidence_bundle_id": r.evidence_bundle_id,
        "evidence_resource": format!("synapsor://evidence/{}", r.evidence_bundle_id),
        "source_database_changed": false, "source_database_mutated": false,
    })
}

/// v1 payload for a proposal.
pub fn proposal_v1(p: &ProposalResult) -> Value {
    json!({
        "status": if p.shadow { "shadow_proposal_created" } else { "review_required" },
        "action": p.capability,
        "proposal_id": p.proposal_id, "proposal_version": p.proposal_version, "proposal_hash": p.proposal_hash,
        "target": {"type": p.business_object, "id": p.object_id, "tenant_id": p.tenant_id},
        "diff": p.diff,
        "evidence_bundle_id": p.evidence_bundle_id,
        "evidence_resource": format!("synapsor://evidence/{}", p.evidence_bundle_id),
        "proposal_resource": format!("synapsor://proposals/{}", p.proposal_id),
        "replay_resource": format!("synapsor://replay/replay_{}", p.proposal_id),
        "approval_required": true,
        "writeback": {"status": "not_applied", "mode": "trusted_worker_required", "executor": p.executor},
        "source_database_changed": false, "source_database_mutated": false,
    })
}

/// v1 error payload (safe code and message; raw driver text never leaves the process).
pub fn error_v1(e: &Error) -> Value {
    json!({"ok": false, "code": e.safe_code(), "error": e.safe_message()})
}
