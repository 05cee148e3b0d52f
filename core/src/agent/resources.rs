//! MCP resources (proposal, evidence and replay handles), transport-free. Every read re-checks
//! the caller's tenant and principal; every miss — unknown, malformed, another tenant's, another
//! principal's — is the same `RESOURCE_NOT_FOUND` (decision 13).

use crate::context::{ResolvedContext, TrustedContext};
use crate::error::{Error, Result};
use crate::policy::context;
use crate::runner::Runner;
use serde_json::{Value, json};

/// The resource templates a server advertises (`resources/templates/list`).
pub fn templates() -> Value {
    json!([
        {"name": "synapsor-proposals", "uriTemplate": "synapsor://proposals/{proposal_id}", "title": "Synapsor proposal", "mimeType": "application/json"},
        {"name": "synapsor-evidence", "uriTemplate": "synapsor://evidence/{evidence_bundle_id}", "title": "Synapsor evidence bundle", "mimeType": "application/json"},
        {"name": "synapsor-replay", "uriTemplate": "synapsor://replay/{replay_id}", "title": "Synapsor replay record", "mimeType": "application/json"},
    ])
}

fn not_found() -> Error {
    Error::Ledger {
        code: "RESOURCE_NOT_FOUND",
        message: "The requested Synapsor resource was not found.".into(),
    }
}

/// Who is reading: the global trusted context (or the first named one), resolved for this call.
fn reader(runner: &Runner, caller: &TrustedContext) -> Result<ResolvedContext> {
    let config = runner.config();
    let binding = config
        .trusted_context
        .as_ref()
        .or_else(|| config.contexts.values().next())
        .ok_or_else(not_found)?;
    context::resolve(binding, caller)
}

/// `resources/list`: the caller's own most recent proposals (at most 50, newest first), as
/// MCP resource entries. Another tenant's or principal's proposals never appear; a caller
/// whose trusted context cannot be resolved gets an empty list.
pub async fn list(runner: &Runner, caller: &TrustedContext) -> Result<Value> {
    let Ok(who) = reader(runner, caller) else {
        return Ok(json!({"resources": []}));
    };
    let mine: Vec<Value> = runner
            .ledger()
            .list_proposals(None, Some(&who.tenant_id), 200).await?
            .into_iter()
            .filter(|p| p.principal.as_deref() == Some(who.principal.as_str()))
            .take(50)
            .map(|p| {
                json!({
                    "uri": format!("synapsor://proposals/{}", p.proposal_id),
                    "name": p.proposal_id,
                    "title": format!("{} on {} {} ({})", p.change_set.action, p.business_object, p.object_id, p.state),
                    "mimeType": "application/json",
                })
            })
            .collect();
    Ok(json!({"resources": mine}))
}

/// Read `synapsor://proposals/<id>`, `synapsor://evidence/<id>` or `synapsor://replay/<id>`.
pub async fn read(runner: &Runner, uri: &str, caller: &TrustedContext) -> Result<Value> {
    let who = reader(runner, caller).map_err(|_| not_found())?;
    let (kind, id) = uri
        .strip_prefix("synapsor://")
        .and_then(|r| r.split_once('/'))
        .ok_or_else(not_found)?;
    if id.is_empty() || id.contains('/') {
        return Err(not_found());
    }
    let owned = |tenant: &str, principal: Option<&str>| {
        tenant == who.tenant_id && principal == Some(who.principal.as_str())
    };
    match kind {
        "proposals" | "replay" => {
            let id = if kind == "replay" {
                id.strip_prefix("replay_").unwrap_or(id)
            } else {
                id
            };
            let p = runner
                .ledger()
                .proposal(id)
                .await
                .map_err(|_| not_found())?;
            if !owned(&p.tenant_id, p.principal.as_deref()) {
                return Err(not_found());
            }
            let replay = runner
                .ledger()
                .replay_view(id)
                .await
                .map_err(|_| not_found())?;
            Ok(if kind == "replay" {
                replay
            } else {
                json!({"proposal": replay["proposal"], "events": replay["events"], "receipts": replay["receipts"]})
            })
        }
        "evidence" => {
            let bundle = runner
                .ledger()
                .evidence_bundle(id)
                .await?
                .ok_or_else(not_found)?;
            if !owned(
                bundle["tenant_id"].as_str().unwrap_or_default(),
                bundle["principal"].as_str(),
            ) {
                return Err(not_found());
            }
            Ok(bundle)
        }
        _ => Err(not_found()),
    }
}
