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
        json!("INVALID_ARGUMENT"),
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
