//! The review API: what a human reviewer sees and decides, as JSON in and JSON out, without a
//! transport. `synapsor-runner ui` serves it over loopback HTTP; a host app can mount it behind
//! its own login (its authentication decides the [`Reviewer`]). It never applies a change and
//! has no way to run SQL.
//!
//! Routes (paths relative to where it is mounted):
//! - `GET /api/proposals[?state=S&q=TEXT&limit=N]`: newest first;
//! - `GET /api/proposals/<id>`: the proposal's story (request, evidence, diff, context, guards,
//!   approval, receipts, events);
//! - `POST /api/proposals/<id>/approve` (`{}` or `{"reason"}`) and
//!   `POST /api/proposals/<id>/reject` (`{"reason"}`, required);
//! - `GET /api/replay/<id>`.
//!
//! A reviewer bound to a tenant sees only that tenant's proposals; another tenant's are "not
//! found", as missing ones are.

use crate::error::Error;
use crate::ledger::Approver;
use crate::runner::Runner;
use serde_json::{Value, json};

/// The review page (HTML, script, styles), served beside the API by every host.
pub mod assets {
    /// `GET /`.
    pub const INDEX_HTML: &str = include_str!("../assets/review/index.html");
    /// `GET /app.js`.
    pub const APP_JS: &str = include_str!("../assets/review/app.js");
    /// `GET /app.css`.
    pub const APP_CSS: &str = include_str!("../assets/review/app.css");
    /// The headers every answer of a review host carries.
    pub const SECURITY_HEADERS: &[(&str, &str)] = &[
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ];
    /// The largest request body a review host reads.
    pub const MAX_BODY_BYTES: usize = 64 * 1024;
}

/// Who is reviewing, as the host (or the CLI's operator environment) established it.
#[derive(Debug, Clone)]
pub struct Reviewer {
    /// The approver: id and the roles the host verified.
    pub approver: Approver,
    /// When set, only this tenant's proposals are listed, shown and decided.
    pub tenant: Option<String>,
}

/// One request to the review API.
#[derive(Debug, Clone, Default)]
pub struct ReviewRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path below the mount point, e.g. `/api/proposals/wrp_1`.
    pub path: String,
    /// Query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// The JSON body of a POST (`Value::Null` when there is none).
    pub body: Value,
}

/// The answer: an HTTP status and a JSON body (`{"ok": true, …}` or `{"ok": false, "error",
/// "code"}`).
#[derive(Debug, Clone)]
pub struct ReviewResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

fn answer(status: u16, body: Value) -> ReviewResponse {
    ReviewResponse { status, body }
}

fn refused(status: u16, code: &str, message: impl Into<String>) -> ReviewResponse {
    answer(
        status,
        json!({"ok": false, "code": code, "error": message.into()}),
    )
}

fn not_found() -> ReviewResponse {
    refused(404, "NOT_FOUND", "not found")
}

/// The status for a refusal of the core.
fn from_error(e: &Error) -> ReviewResponse {
    let status = match e.family() {
        crate::ErrorFamily::NotFound => 404,
        crate::ErrorFamily::Approval => 409,
        crate::ErrorFamily::Policy | crate::ErrorFamily::Config => 400,
        crate::ErrorFamily::Unavailable => 503,
        _ => 500,
    };
    let status = if e.code() == "APPROVER_ROLE_MISSING" {
        403
    } else {
        status
    };
    refused(status, e.code(), e.to_string())
}

/// The review API over one runner.
#[derive(Clone)]
pub struct ReviewApi {
    runner: Runner,
}

impl ReviewApi {
    /// Serve reviews of `runner`'s ledger.
    pub fn new(runner: Runner) -> Self {
        ReviewApi { runner }
    }

    /// Answer one request for `reviewer`.
    pub async fn handle(&self, req: &ReviewRequest, reviewer: &Reviewer) -> ReviewResponse {
        let parts: Vec<&str> = req
            .path
            .trim_end_matches('/')
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["api", "proposals"]) => self.list(req, reviewer).await,
            ("GET", ["api", "proposals", id]) => self.story(id, reviewer).await,
            ("POST", ["api", "proposals", id, "approve"]) => {
                self.decide(id, reviewer, true, &req.body).await
            }
            ("POST", ["api", "proposals", id, "reject"]) => {
                self.decide(id, reviewer, false, &req.body).await
            }
            ("GET", ["api", "replay", id]) => match self.visible(id, reviewer).await {
                Err(r) => r,
                Ok(_) => match self.runner.ledger().replay_view(id).await {
                    Ok(replay) => answer(200, json!({"ok": true, "replay": replay})),
                    Err(e) => from_error(&e),
                },
            },
            (_, ["api", ..]) if !matches!(req.method.as_str(), "GET" | "POST") => {
                refused(405, "METHOD_NOT_ALLOWED", "method not allowed")
            }
            _ => not_found(),
        }
    }

    async fn list(&self, req: &ReviewRequest, reviewer: &Reviewer) -> ReviewResponse {
        let param = |k: &str| {
            req.query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let state = param("state");
        if let Some(s) = state
            && !crate::ledger::PROPOSAL_STATES.contains(&s)
        {
            return refused(400, "INVALID_STATE", format!("unknown state {s}"));
        }
        let limit = param("limit")
            .and_then(|l| l.parse::<u32>().ok())
            .unwrap_or(100)
            .clamp(1, 500);
        let q = param("q").map(str::to_lowercase);
        let found = match self
            .runner
            .ledger()
            .list_proposals(state, reviewer.tenant.as_deref(), limit)
            .await
        {
            Ok(p) => p,
            Err(e) => return from_error(&e),
        };
        let proposals: Vec<Value> = found
            .iter()
            .filter(|p| {
                q.as_ref().is_none_or(|q| {
                    [
                        p.action.as_str(),
                        p.business_object.as_str(),
                        p.object_id.as_str(),
                        p.proposal_id.as_str(),
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(q.as_str()))
                })
            })
            .map(|p| {
                json!({
                    "proposal_id": p.proposal_id,
                    "action": p.action,
                    "state": p.state,
                    "tenant_id": p.tenant_id,
                    "principal": p.principal,
                    "business_object": p.business_object,
                    "object_id": p.object_id,
                    "required_role": p.change_set.approval.required_role,
                    "created_at": p.created_at,
                    "updated_at": p.updated_at,
                })
            })
            .collect();
        answer(200, json!({"ok": true, "proposals": proposals}))
    }

    /// The proposal, if this reviewer may see it.
    async fn visible(
        &self,
        id: &str,
        reviewer: &Reviewer,
    ) -> Result<crate::ledger::StoredProposal, ReviewResponse> {
        match self.runner.ledger().proposal(id).await {
            Ok(p) if reviewer.tenant.as_ref().is_none_or(|t| *t == p.tenant_id) => Ok(p),
            Ok(_) => Err(not_found()),
            Err(e) if e.family() == crate::ErrorFamily::NotFound => Err(not_found()),
            Err(e) => Err(from_error(&e)),
        }
    }

    async fn story(&self, id: &str, reviewer: &Reviewer) -> ReviewResponse {
        let p = match self.visible(id, reviewer).await {
            Ok(p) => p,
            Err(r) => return r,
        };
        let replay = match self.runner.ledger().replay_view(id).await {
            Ok(r) => r,
            Err(e) => return from_error(&e),
        };
        let cs = p.change_set.to_value();
        // How the version guard moves on a write, as the config says today (`auto` resolved
        // from the column's name).
        let advance = self
            .runner
            .config()
            .capability(&p.action)
            .and_then(|c| c.conflict_guard.as_ref())
            .map(|g| match (g.advance, g.column.as_deref()) {
                (crate::config::GuardAdvance::Auto, Some(col)) => crate::config::guess_advance(col)
                    .map_or("auto", crate::config::GuardAdvance::as_str),
                (a, _) => a.as_str(),
            });
        let evidence = match self
            .runner
            .ledger()
            .evidence_bundle(&p.change_set.evidence.bundle_id)
            .await
        {
            Ok(e) => e.unwrap_or(Value::Null),
            Err(e) => return from_error(&e),
        };
        let required_role = p.change_set.approval.required_role.clone();
        let may_approve = p.state.may_approve()
            && required_role
                .as_ref()
                .is_none_or(|r| reviewer.approver.roles.iter().any(|x| x == r));
        let applies = if p.state.may_apply() {
            match cs["writeback"].get("executor").and_then(Value::as_str) {
                Some(e) if e != "sql_update" => {
                    format!("The app applies it through its {e} executor (the host calls apply).")
                }
                _ => format!(
                    "Apply from a trusted terminal: synapsor-runner apply {}",
                    p.proposal_id
                ),
            }
        } else {
            String::new()
        };
        answer(
            200,
            json!({
                "ok": true,
                "proposal": {
                    "proposal_id": p.proposal_id,
                    "state": p.state,
                    "action": cs["action"],
                    "tenant_id": p.tenant_id,
                    "principal": p.principal,
                    "business_object": p.business_object,
                    "object_id": p.object_id,
                    "created_at": p.created_at,
                    "updated_at": p.updated_at,
                },
                "before": cs["before"],
                "patch": cs["patch"],
                "after": cs["after"],
                "trusted_context": {"tenant_id": p.tenant_id, "principal": cs["principal"]},
                "source": cs["source"],
                "guards": {
                    "tenant": cs["guards"]["tenant"],
                    "expected_version": cs["guards"]["expected_version"],
                    "version_advance": advance,
                    "allowed_columns": cs["guards"]["allowed_columns"],
                    "primary_key": cs["source"]["primary_key"],
                    "idempotency_key": cs["writeback"].get("idempotency_key").cloned().unwrap_or(Value::Null),
                    "affected_row_count_required": 1,
                },
                "evidence": evidence,
                "approval": {
                    "required_role": required_role,
                    "reviewer": reviewer.approver.id,
                    "reviewer_roles": reviewer.approver.roles,
                    "reviewer_may_approve": may_approve,
                },
                "applies": applies,
                "events": replay["events"],
                "receipts": replay["receipts"],
            }),
        )
    }

    async fn decide(
        &self,
        id: &str,
        reviewer: &Reviewer,
        approve: bool,
        body: &Value,
    ) -> ReviewResponse {
        if !body.is_object() && !body.is_null() {
            return refused(400, "INVALID_BODY", "request body must be a JSON object");
        }
        if let Err(r) = self.visible(id, reviewer).await {
            return r;
        }
        let reason = body
            .get("reason")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default();
        let decided = if approve {
            self.runner.approve(id, &reviewer.approver).await
        } else if reason.is_empty() {
            return refused(400, "REASON_REQUIRED", "rejection requires a reason");
        } else {
            self.runner.reject(id, &reviewer.approver, reason).await
        };
        match decided {
            Ok(p) => answer(
                200,
                json!({"ok": true, "proposal": {"proposal_id": p.proposal_id, "state": p.state}}),
            ),
            Err(e) => from_error(&e),
        }
    }
}
