//! MCP conformance with the official TypeScript SDK client (npm `@modelcontextprotocol/sdk`) over
//! stdio, Streamable HTTP with one bearer token, and Streamable HTTP with a tokens file of two
//! tenants: version negotiation, tools/list, both kinds of call with every result validated by the
//! SDK against the tool's outputSchema, refusals flagged isError, an unknown tool as a protocol
//! error, resources, and a cross-tenant refusal.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
#[path = "support/node.rs"]
mod node;

fn client() -> PathBuf {
    node::node_modules();
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mcp_ts_client.mjs")
}

fn ts(args: &[&str]) -> Value {
    let out = Command::new("node")
        .arg(client())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"))
        .arg("--config")
        .arg(config)
        .args([
            "mcp",
            "serve-streamable-http",
            "--port",
            "0",
            "--alias-mode",
            "openai",
        ])
        .args(extra)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        line.clear();
    }
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    Server(child, url)
}

/// What every transport must show the SDK.
fn assert_conforms(v: &Value, transport: &str) {
    assert_eq!(v["server"], json!("synapsor-runner"), "{transport}");
    assert_eq!(
        v["capabilities"],
        json!({"tools": {"listChanged": false}, "resources": {"subscribe": false, "listChanged": false}}),
        "{transport}"
    );
    assert_eq!(
        v["tools"],
        json!([
            "billing__inspect_invoice",
            "billing__propose_late_fee_waiver"
        ]),
        "{transport}"
    );
    assert_eq!(v["all_have_output_schema"], json!(true));
    assert_eq!(
        v["inspect"]["isError"],
        json!(false),
        "{transport}: {}",
        v["inspect"]
    );
    assert_eq!(v["inspect"]["envelope"]["ok"], json!(true));
    assert_eq!(
        v["propose"]["isError"],
        json!(false),
        "{transport}: {}",
        v["propose"]
    );
    assert_eq!(
        v["propose"]["envelope"]["proposal"]["state"],
        json!("review_required")
    );
    assert_eq!(
        v["spoof"]["isError"],
        json!(true),
        "{transport}: {}",
        v["spoof"]
    );
    assert_eq!(v["spoof"]["envelope"]["ok"], json!(false));
    assert_eq!(v["foreign"]["isError"], json!(true), "{transport}");
    assert_eq!(
        v["foreign"]["envelope"]["error"]["code"],
        json!("NOT_FOUND_IN_TENANT")
    );
    assert_eq!(
        v["unknown"]["thrown"],
        json!(-32602),
        "{transport}: {}",
        v["unknown"]
    );
    let pid = v["propose"]["envelope"]["proposal"]["id"].as_str().unwrap();
    assert!(
        v["resources"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("synapsor://proposals/{pid}"))),
        "{transport}: {}",
        v["resources"]
    );
    assert_eq!(v["read_mime"], json!("application/json"));
    assert_eq!(v["templates"].as_array().unwrap().len(), 3);
}

#[test]
fn typescript_sdk_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    synapsor_runner::demo::create_demo(dir.path()).unwrap();
    let config = dir.path().join("synapsor.runner.json");
    let v = ts(&[
        "stdio",
        env!("CARGO_BIN_EXE_synapsor-runner"),
        config.to_str().unwrap(),
    ]);
    assert_conforms(&v, "stdio");
}

#[test]
fn typescript_sdk_over_streamable_http_with_a_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    synapsor_runner::demo::create_demo(dir.path()).unwrap();
    let config = dir.path().join("synapsor.runner.json");
    let server = serve(
        &config,
        &["--auth-token-env", "CONF_TOKEN"],
        &[("CONF_TOKEN", "conformance-token-0123456789")],
    );
    let v = ts(&["http", &server.1, "conformance-token-0123456789"]);
    assert_conforms(&v, "http bearer");
    // A wrong token is refused before anything runs.
    let out = Command::new("node")
        .arg(client())
        .args(["http", &server.1, "wrong-token"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn typescript_sdk_over_streamable_http_with_per_tenant_tokens() {
    let dir = tempfile::tempdir().unwrap();
    synapsor_runner::demo::create_demo(dir.path()).unwrap();
    let config = dir.path().join("synapsor.runner.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["trusted_context"] = json!({"provider": "host"});
    std::fs::write(&config, c.to_string()).unwrap();
    let hash = |t: &str| synapsor_runner_mcp::http::hash_token(t);
    let tokens = dir.path().join("tokens.json");
    std::fs::write(
        &tokens,
        json!({"tokens": [
            {"sha256": hash("acme-token-0123456789"), "tenant_id": "acme", "principal": "agent:acme"},
            {"sha256": hash("globex-token-0123456789"), "tenant_id": "globex", "principal": "agent:globex"},
        ]})
        .to_string(),
    )
    .unwrap();
    let server = serve(&config, &["--tokens-file", tokens.to_str().unwrap()], &[]);
    let acme = ts(&["http", &server.1, "acme-token-0123456789"]);
    assert_conforms(&acme, "http tokens file");
    // The other tenant's token: acme's invoice is a refusal, and acme's proposals are not listed.
    let out = Command::new("node")
        .arg(client())
        .args(["http", &server.1, "globex-token-0123456789"])
        .output()
        .unwrap();
    let globex: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(globex["inspect"]["isError"], json!(true), "{globex}");
    assert_eq!(
        globex["inspect"]["envelope"]["error"]["code"],
        json!("NOT_FOUND_IN_TENANT")
    );
    let acme_pid = acme["propose"]["envelope"]["proposal"]["id"]
        .as_str()
        .unwrap();
    assert!(
        !globex["resources"].to_string().contains(acme_pid),
        "{globex}"
    );
}
