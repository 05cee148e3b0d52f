//! What the model sees and calls: the tool list, tool calls answered as result envelopes, and
//! the MCP resources (proposals, evidence, replay) of the caller's own tenant and principal.
//! Everything here goes through the [`Runner`]'s lifecycle, with the same checks.

pub mod resources;
pub mod tools;

use crate::config::CapabilityKind;
use crate::context::TrustedContext;
use crate::envelope;
use crate::error::Error;
use crate::runner::Runner;
use serde_json::Value;

/// Call a tool by exposed name and return the result envelope (v2 unless the config opts into v1).
/// Errors come back as envelopes with safe codes; nothing raw reaches the caller.
pub async fn call_tool(runner: &Runner, name: &str, args: Value, ctx: &TrustedContext) -> Value {
    let config = runner.config();
    let v1 = config.result_format() == 1;
    let Some(canonical) = tools::canonical_name(config, name) else {
        let e = Error::CapabilityNotFound(name.to_string());
        return if v1 {
            envelope::error_v1(&e)
        } else {
            envelope::error_v2(name, "read", &e)
        };
    };
    let cap = config.capability(&canonical).expect("canonical");
    let result = match cap.kind {
        CapabilityKind::Read => runner.inspect(&canonical, args, ctx).await.map(|r| {
            if v1 {
                envelope::read_v1(&r, config.mode.as_str())
            } else {
                envelope::read_v2(&r)
            }
        }),
        // In read_only mode `propose` refuses with PROPOSALS_DISABLED before any I/O.
        CapabilityKind::Proposal => runner.propose(&canonical, args, ctx).await.map(|p| {
            if v1 {
                envelope::proposal_v1(&p)
            } else {
                envelope::proposal_v2(&p)
            }
        }),
    };
    match result {
        Ok(v) => v,
        Err(e) => {
            if v1 {
                envelope::error_v1(&e)
            } else {
                envelope::error_v2(&canonical, cap.kind.as_str(), &e)
            }
        }
    }
}
