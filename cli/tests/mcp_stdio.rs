//! `synapsor-runner mcp serve` driven by the official MCP Python SDK over stdio.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
#[path = "support/venv.rs"]
mod support;

use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn python_mcp_client_lists_and_calls_tools_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    synapsor_runner::demo::create_demo(dir.path()).unwrap();
    let config = dir.path().join("synapsor.runner.json");
    let store = dir.path().join("local.db");
    let out = Command::new(support::python())
        .arg(root().join("cli/tests/support/mcp_stdio_client.py"))
        .arg(env!("CARGO_BIN_EXE_synapsor-runner"))
        .arg(&config)
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["server"], json!("synapsor-runner"));
    assert_eq!(
        v["tools"],
        json!(["billing.inspect_invoice", "billing.propose_late_fee_waiver"]),
        "tools list matches the config"
    );
    assert_eq!(v["read_only_hints"]["billing.inspect_invoice"], json!(true));
    assert_eq!(
        v["read_only_hints"]["billing.propose_late_fee_waiver"],
        json!(false)
    );
    assert_eq!(v["enum_or_schema"]["additionalProperties"], json!(false));
    assert_eq!(v["inspect"]["ok"], json!(true));
    assert_eq!(v["inspect"]["data"]["late_fee_cents"], json!(5500));
    assert_eq!(v["propose"]["proposal"]["state"], json!("review_required"));
    assert_eq!(v["propose"]["source_database_changed"], json!(false));
    let fee = synapsor_runner::demo::invoice_row(dir.path(), "INV-3001").unwrap()["late_fee_cents"]
        .clone();
    assert_eq!(fee, json!(5500), "the source is unchanged after propose");
    assert_eq!(
        v["spoof"]["error"]["code"],
        json!("MODEL_CANNOT_OVERRIDE_BINDING"),
        "spoofed tenant refused"
    );
    assert_eq!(
        v["unknown_arg"]["error"]["code"],
        json!("INVALID_ARGUMENT"),
        "unknown arguments refused"
    );
    assert_eq!(v["foreign"]["error"]["code"], json!("NOT_FOUND_IN_TENANT"));
    assert_eq!(
        v["resource"]["proposal"]["proposal_id"],
        v["propose"]["proposal"]["id"]
    );
    assert!(
        v["missing_resource"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{}",
        v["missing_resource"]
    );
}

/// Raw JSON-RPC over stdio: the same versions as HTTP (discovery included), refusals flagged
/// `isError`, an unknown tool a protocol error, the caller's proposals listed as resources.
#[test]
fn stdio_negotiates_like_http_and_flags_refusals() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    synapsor_runner::demo::create_demo(dir.path()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"))
        .args(["mcp", "serve", "--config"])
        .arg(dir.path().join("synapsor.runner.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ask = |msg: Value| -> Value {
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
        if msg.get("id").is_none() {
            return Value::Null;
        }
        loop {
            let line = lines.next().expect("a reply").unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("id") == msg.get("id") {
                return v;
            }
        }
    };
    let discover = ask(
        json!({"jsonrpc": "2.0", "id": 0, "method": "server/discover", "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}),
    );
    // A client of the 2026-07-28 era is told which versions this server speaks (and falls
    // back to `initialize` with one of them): the same list Streamable HTTP accepts.
    assert_eq!(
        discover["error"]["data"]["supported"],
        json!(["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]),
        "{discover}"
    );
    let init = ask(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2026-07-28", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}),
    );
    assert_eq!(
        init["result"]["protocolVersion"],
        json!("2025-11-25"),
        "{init}"
    );
    assert_eq!(
        init["result"]["capabilities"],
        json!({"tools": {"listChanged": false}, "resources": {"subscribe": false, "listChanged": false}}),
        "the same capabilities object as Streamable HTTP"
    );
    ask(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let call = |id: u64, name: &str, args: Value| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}});
    let refused = ask(call(
        2,
        "billing.inspect_invoice",
        json!({"invoice_id": "INV-3001", "tenant_id": "globex"}),
    ));
    assert_eq!(refused["result"]["isError"], json!(true), "{refused}");
    assert_eq!(refused["result"]["structuredContent"]["ok"], json!(false));
    let ok = ask(call(
        3,
        "billing.inspect_invoice",
        json!({"invoice_id": "INV-3001"}),
    ));
    assert_eq!(ok["result"]["isError"], json!(false), "{ok}");
    let unknown = ask(call(4, "billing.drop_everything", json!({})));
    assert_eq!(unknown["error"]["code"], json!(-32602), "{unknown}");
    let p = ask(call(
        5,
        "billing.propose_late_fee_waiver",
        json!({"invoice_id": "INV-3001", "reason": "r"}),
    ));
    let pid = p["result"]["structuredContent"]["proposal"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = ask(json!({"jsonrpc": "2.0", "id": 6, "method": "resources/list"}));
    assert_eq!(
        list["result"]["resources"][0]["uri"],
        json!(format!("synapsor://proposals/{pid}")),
        "{list}"
    );
    drop(stdin);
    let _ = child.wait();
}
