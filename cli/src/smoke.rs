//! `smoke call`: one tool call through the MCP server's own path (the endpoint every
//! transport uses), recorded in the ledger like any other, to check a setup end to end.

use crate::shared::{open_runner, print_json, usage};
use crate::{Global, sample};
use serde_json::{Value, json};
use std::path::Path;
use synapsor_runner::error::{Error, Result};
use synapsor_runner::{ToolNaming, TrustedContext};
use synapsor_runner_mcp::endpoint::McpEndpoint;

pub async fn call(
    g: &Global,
    tool: Option<String>,
    sample_flag: bool,
    input: Option<&Path>,
    json: Option<String>,
) -> Result<u8> {
    let inline = json.clone().filter(|s| !s.is_empty());
    if [sample_flag, input.is_some(), inline.is_some()]
        .iter()
        .filter(|x| **x)
        .count()
        > 1
    {
        return Err(usage(
            "smoke call accepts only one of --sample, --input, or --json",
        ));
    }
    let runner = open_runner(g).await?;
    let config_path = runner.loaded_config().path.display().to_string();
    let tools = synapsor_runner::agent::tools::tool_list(runner.config(), ToolNaming::Canonical);
    let name = match tool {
        Some(t) => t,
        None if tools.len() == 1 => tools[0].name.clone(),
        None => {
            let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
            return Err(usage(&format!(
                "smoke call needs <capability-name> because {} tools are exposed: {}",
                names.len(),
                names.join(", ")
            )));
        }
    };
    let cap = runner
        .config()
        .capability(&name)
        .ok_or_else(|| Error::CapabilityNotFound(format!("{name} (not in {config_path})")))?;
    let args: Value = match (input, inline) {
        (Some(p), _) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| usage(&format!("cannot read --input {}: {e}", p.display())))?;
            serde_json::from_str::<Value>(&text)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| usage("--input must point to a JSON object"))?
        }
        (None, Some(s)) => serde_json::from_str::<Value>(&s)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| usage("smoke call --json must be a JSON object"))?,
        (None, None) => sample::arguments(cap),
    };
    // The context a stdio MCP server would run under.
    let ctx = if crate::mcp_cmds::uses_host_provider(&runner) {
        TrustedContext {
            tenant_id: std::env::var("SYNAPSOR_TENANT_ID").ok(),
            principal: std::env::var("SYNAPSOR_PRINCIPAL").ok(),
        }
    } else {
        TrustedContext::from_config()
    };
    let store = crate::shared::ledger_location(g).to_string();
    let endpoint = McpEndpoint::new(runner, ToolNaming::Canonical);
    let reply = endpoint
        .call_tool(&name, args.clone(), &ctx)
        .await
        .map_err(|e| Error::CapabilityNotFound(format!("{name}: {}", e.message)))?;
    let envelope = &reply["structuredContent"];
    if envelope["ok"] != json!(true) {
        let code = envelope["error"]["code"]
            .as_str()
            .unwrap_or("TOOL_CALL_FAILED");
        let message = envelope["error"]["message"]
            .as_str()
            .unwrap_or("the call failed");
        return Err(Error::Executor {
            code: "SMOKE_CALL_FAILED",
            message: format!("{name} answered {code}: {message}"),
        });
    }
    if json.is_some() {
        print_json(
            &json!({"ok": true, "tool": name, "input": args, "result": envelope, "store_path": store}),
        );
        return Ok(0);
    }
    let proposal = envelope["proposal"]["id"].as_str();
    println!("Synapsor smoke call: ok");
    println!("Tool:");
    println!("  {name}");
    println!("Input:");
    println!(
        "{}",
        serde_json::to_string_pretty(&args).unwrap_or_default()
    );
    println!("Source DB changed:");
    println!("  no");
    println!("Evidence:");
    println!(
        "  {}",
        envelope["evidence"]["bundle_id"]
            .as_str()
            .unwrap_or("(not returned)")
    );
    if let Some(p) = proposal {
        println!("Proposal:");
        println!("  {p}");
        println!("Replay:");
        println!("  synapsor://replay/replay_{p}");
    }
    println!("Next:");
    match proposal {
        Some(p) => {
            println!("  synapsor-runner proposals show {p}");
            println!("  synapsor-runner proposals approve {p} --yes");
            println!("  synapsor-runner apply {p}");
            println!("  synapsor-runner replay show --proposal {p}");
        }
        None => println!(
            "  synapsor-runner query-audit list --evidence {}",
            envelope["evidence"]["bundle_id"].as_str().unwrap_or("<id>")
        ),
    }
    Ok(0)
}
