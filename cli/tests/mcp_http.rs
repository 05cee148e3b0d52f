//! `synapsor-runner mcp serve-streamable-http` driven by the official MCP Python SDK and raw HTTP
//! probes; `audit` against the built-in example, our configs, and live stdio and HTTP servers;
//! `benchmark mcp-efficiency`; `mcp configure`.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
#[path = "support/venv.rs"]
mod support;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
    c.env_remove("SYNAPSOR_LOCAL_STORE")
        .env_remove("SYNAPSOR_TENANT_ID")
        .env_remove("SYNAPSOR_PRINCIPAL");
    c
}

/// A server child killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start a server on an ephemeral port and read its URL from the first stderr line.
fn start(cmd: &mut Command) -> Server {
    let mut child = cmd
        .args(["--port", "0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // Warnings may come first; the listening line names the URL.
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("listening on") {
        line.clear();
    }
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .unwrap_or_else(|| panic!("no listening line: {line:?}"))
        .to_string();
    Server { child, url }
}

/// The demo (embedded SQLite) with the `host` provider, and a tokens file for two tenants.
fn host_demo(dir: &Path) -> (PathBuf, PathBuf) {
    synapsor_runner::demo::create_demo(dir).unwrap();
    let config = dir.join("synapsor.runner.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["trusted_context"] = json!({"provider": "host"});
    std::fs::write(&config, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    let tokens = dir.join("tokens.json");
    let h = hash_token_via_cli;
    std::fs::write(
        &tokens,
        json!({"tokens": [
            {"sha256": h("acme-token-0123456789"), "tenant_id": "acme", "principal": "agent:acme"},
            {"sha256": h("globex-token-0123456789"), "tenant_id": "globex", "principal": "agent:globex"},
        ]})
        .to_string(),
    )
    .unwrap();
    (config, tokens)
}

/// SHA-256 hex through the binary's own `mcp hash-token`, so the test covers that command too.
fn hash_token_via_cli(token: &str) -> String {
    let out = bin()
        .args(["mcp", "hash-token", "--from-env", "T"])
        .env("T", token)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn serve_cmd(config: &Path, store: &Path, tokens: &Path) -> Command {
    let mut c = bin();
    c.arg("--config")
        .arg(config)
        .arg("--store")
        .arg(store)
        .args(["mcp", "serve-streamable-http", "--tokens-file"])
        .arg(tokens);
    c
}

#[test]
fn python_mcp_client_over_streamable_http_with_per_token_tenants_and_hardening() {
    let dir = tempfile::tempdir().unwrap();
    let (config, tokens) = host_demo(dir.path());
    let store = dir.path().join("local.db");
    let main = start(&mut serve_cmd(&config, &store, &tokens));
    let limited = start(serve_cmd(&config, &store, &tokens).args([
        "--rate-limit-per-minute",
        "4",
        "--session-idle-secs",
        "1",
        "--max-body-bytes",
        "4096",
    ]));
    let out = Command::new(support::python())
        .arg(root().join("cli/tests/support/mcp_http_client.py"))
        .args([
            &main.url,
            "acme-token-0123456789",
            "globex-token-0123456789",
            &limited.url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acme = &v["acme"];
    assert_eq!(
        acme["tools"],
        json!(["billing.inspect_invoice", "billing.propose_late_fee_waiver"])
    );
    assert_eq!(acme["output_schema"]["type"], json!("object"));
    assert_eq!(acme["inspect"]["data"]["late_fee_cents"], json!(5500));
    assert_eq!(acme["inspect"]["_meta"]["tenant_id"], json!("acme"));
    assert_eq!(acme["inspect"]["_meta"]["principal"], json!("agent:acme"));
    assert_eq!(
        acme["propose"]["proposal"]["state"],
        json!("review_required")
    );
    let fee = synapsor_runner::demo::invoice_row(dir.path(), "INV-3001").unwrap()["late_fee_cents"]
        .clone();
    assert_eq!(fee, json!(5500), "the source is unchanged after propose");
    assert_eq!(
        acme["spoof"]["error"]["code"],
        json!("MODEL_CANNOT_OVERRIDE_BINDING")
    );
    assert_eq!(
        acme["unknown_arg"]["error"]["code"],
        json!("INVALID_ARGUMENT")
    );
    assert_eq!(
        acme["resource"]["proposal"]["proposal_id"],
        acme["propose"]["proposal"]["id"]
    );
    let globex = &v["globex"];
    assert!(
        globex["leaked_handle"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{}",
        globex["leaked_handle"]
    );
    assert_eq!(
        globex["leaked_handle_data"]["code"],
        json!("RESOURCE_NOT_FOUND")
    );
    assert_eq!(
        globex["foreign_inspect"]["error"]["code"],
        json!("NOT_FOUND_IN_TENANT")
    );
    assert_eq!(globex["own_inspect"]["ok"], json!(true));
    assert_eq!(globex["own_inspect"]["_meta"]["tenant_id"], json!("globex"));

    for (key, status) in [
        ("healthz", 200),
        ("no_token", 401),
        ("wrong_token", 401),
        ("bad_origin", 403),
        ("bad_host", 403),
        ("no_accept", 406),
        ("bad_content_type", 415),
        ("oversized", 413),
        ("not_initialize_first", 400),
        ("init_status", 200),
        ("list_same_token", 200),
        ("list_other_tenant_token", 404),
        ("unknown_session", 404),
        ("notification", 202),
        ("reinitialize", 400),
        ("get_stream", 405),
        ("delete", 200),
        ("after_delete", 404),
        ("expired_session", 404),
        ("fresh_session", 200),
        ("rate_limited", 429),
        ("other_tenant_not_limited", 200),
    ] {
        assert_eq!(v[key], json!(status), "{key}: {}", v[key]);
    }
    assert_eq!(v["www_authenticate"], json!("Bearer"));
    assert_eq!(v["init_content_type"], json!("text/event-stream"));
    assert!(
        v["init_body"]
            .as_str()
            .unwrap()
            .starts_with("event: message\ndata: {")
    );
    assert_eq!(v["rate_limited_body"]["code"], json!("RATE_LIMITED"));
    let retry_ms = v["rate_limited_body"]["retry_after_ms"].as_u64().unwrap();
    assert!(retry_ms > 0 && retry_ms <= 15_000, "{retry_ms}");
    assert!(v["retry_after"].as_str().unwrap().parse::<u64>().unwrap() >= 1);
}

#[test]
fn http_server_refuses_to_start_without_auth_and_no_auth_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    synapsor_runner::demo::create_demo(dir.path()).unwrap();
    let config = dir.path().join("synapsor.runner.json");
    let base = |extra: &[&str]| {
        let out = bin()
            .arg("--config")
            .arg(&config)
            .args(["mcp", "serve-streamable-http", "--port", "0"])
            .args(extra)
            .env_remove("UNSET_TOKEN_VAR")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = base(&[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("requires --auth-token-env"), "{err}");
    let (code, err) = base(&["--dev-no-auth", "--host", "0.0.0.0"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("only allowed on a loopback"), "{err}");
    let (code, err) = base(&["--auth-token-env", "UNSET_TOKEN_VAR"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("UNSET_TOKEN_VAR"), "{err}");
    // A tokens file needs the host provider (the demo config binds a static tenant).
    let tokens = dir.path().join("t.json");
    std::fs::write(
        &tokens,
        json!({"tokens": [{"sha256": "00".repeat(32), "tenant_id": "a", "principal": "p"}]})
            .to_string(),
    )
    .unwrap();
    let (code, err) = base(&["--tokens-file", tokens.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("provider \"host\""), "{err}");
}

#[test]
fn tokens_file_refuses_plaintext_and_lists_every_problem() {
    use synapsor_runner_mcp::http::TokenTable;
    let err = TokenTable::parse(
        r#"{"tokens": [{"token": "plain", "tenant_id": "a", "principal": "p"}, {"sha256": "zz"}]}"#,
    )
    .unwrap_err();
    assert!(err.contains("$.tokens[0].token"), "{err}");
    assert!(err.contains("$.tokens[1].sha256"), "{err}");
    assert!(err.contains("$.tokens[1].tenant_id"), "{err}");
    assert!(err.contains("$.tokens[1].principal"), "{err}");
    let t = TokenTable::parse(&format!(
        r#"{{"tokens": [{{"sha256": "{}", "tenant_id": "a", "principal": "p"}}]}}"#,
        synapsor_runner_mcp::http::hash_token("s3cret")
    ))
    .unwrap();
    assert_eq!(t.lookup("s3cret").unwrap().tenant_id, "a");
    assert!(t.lookup("s3cret ").is_none());
}

fn audit_json(args: &[&str]) -> Value {
    audit_json_env(args, &[])
}

fn audit_json_env(args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = bin()
        .envs(env.iter().copied())
        .arg("audit")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn audit_of_the_dangerous_example_matches_the_reference_counts_and_order() {
    let r = audit_json(&["--example", "dangerous-db-mcp"]);
    assert_eq!(
        r["summary"],
        json!({"tools_inspected": 6, "high": 15, "medium": 12, "low": 12, "total_findings": 39, "overall_risk": "high"})
    );
    let order: Vec<String> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["tool"].as_str().unwrap(),
                f["code"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        &order[..5],
        [
            "execute_sql:GENERIC_SQL_TOOL",
            "execute_sql:WRITE_TOOL_ACCEPTS_ARBITRARY_SQL",
            "execute_sql:NO_STRUCTURED_OUTPUT_SCHEMA",
            "execute_sql:MISSING_RISK_ANNOTATIONS",
            "execute_sql:MISSING_TEST_FIXTURE"
        ]
    );
    let find = |tool: &str, code: &str| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["tool"] == tool && f["code"] == code)
            .cloned()
            .unwrap_or_else(|| panic!("{tool} {code}"))
    };
    assert_eq!(
        find("run_query", "WRITE_TOOL_ACCEPTS_ARBITRARY_SQL")["evidence"],
        json!(["path $.tools[1]", "Input fields: query, table, columns."])
    );
    assert_eq!(
        find("query_database", "ARBITRARY_IDENTIFIER_INPUT")["evidence"][1],
        json!("Identifier-like fields: database, schema, table, columns.")
    );
    assert_eq!(
        find("approve_refund", "MODEL_CONTROLLED_TRUST_SCOPE")["evidence"][1],
        json!("Trust-like fields: tenant_id.")
    );
    find("approve_refund", "MODEL_CALLABLE_COMMIT_OR_APPROVAL");
    // The reference's example file is the same manifest.
    let file = audit_json(&[root()
        .join("fixtures/examples/dangerous-mcp-tools.json")
        .to_str()
        .unwrap()]);
    assert_eq!(file["summary"]["high"], json!(15));
    // Text and markdown layouts.
    let text = String::from_utf8(
        bin()
            .args(["audit", "--example", "dangerous-db-mcp"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        text.starts_with("Synapsor MCP database risk review\nTarget: example:dangerous-db-mcp\n")
    );
    assert!(text.contains("Findings: HIGH 15 | MEDIUM 12 | LOW 12\nOverall risk: high\n"));
    assert!(text.contains("\nHIGH   GENERIC_SQL_TOOL  execute_sql\n       Generic SQL/query tool exposed to the model.\n"));
    assert!(text.ends_with("- keep replay/evidence handles for later review.\n"));
    let md = String::from_utf8(
        bin()
            .args([
                "audit",
                "--example",
                "dangerous-db-mcp",
                "--format",
                "markdown",
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(md.starts_with("# Synapsor MCP Database Risk Review\n"));
    assert!(md.contains("### HIGH: GENERIC_SQL_TOOL (execute_sql)"));
    let bad = bin()
        .args(["audit", "--example", "dangerous-db-mcp", "--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("text, json, or markdown"));
    let empty = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(empty.path(), r#"{"mcpServers": {"x": {"command": "y"}}}"#).unwrap();
    let r = audit_json(&[empty.path().to_str().unwrap()]);
    assert_eq!(r["findings"][0]["code"], json!("NO_TOOLS_FOUND"));
}

#[test]
fn audit_of_our_own_configs_and_live_servers_reports_no_high_findings() {
    for example in [
        "mcp-postgres-billing",
        "mcp-postgres-billing-app-handler",
        "mcp-postgres-support",
        "mcp-mysql-orders",
        "support-billing-agent",
        "reference-support-billing-app",
    ] {
        let path = root().join(format!("fixtures/examples/{example}/synapsor.runner.json"));
        let r = audit_json(&[path.to_str().unwrap()]);
        assert_eq!(r["summary"]["high"], json!(0), "{example}: {r}");
        assert_eq!(r["summary"]["medium"], json!(0), "{example}: {r}");
        assert!(r["summary"]["tools_inspected"].as_u64().unwrap() >= 2);
    }
    // Live: our stdio server, initialize first, then tools/list.
    let dir = tempfile::tempdir().unwrap();
    let (config, tokens) = host_demo(dir.path());
    let store = dir.path().join("local.db");
    let stdio = format!(
        "stdio:{} --config {} --store {} mcp serve",
        env!("CARGO_BIN_EXE_synapsor-runner"),
        config.display(),
        store.display()
    );
    // A stdio server of a host-provider config serves the tenant it is started with.
    let r = audit_json_env(
        &[&stdio],
        &[
            ("SYNAPSOR_TENANT_ID", "acme"),
            ("SYNAPSOR_PRINCIPAL", "agent:audit"),
        ],
    );
    assert_eq!(r["summary"]["tools_inspected"], json!(2), "{r}");
    assert_eq!(r["summary"]["high"], json!(0), "{r}");
    // Live: our Streamable HTTP server, with the bearer from --bearer-env.
    let server = start(&mut serve_cmd(&config, &store, &tokens));
    let out = bin()
        .args([
            "audit",
            &server.url,
            "--json",
            "--bearer-env",
            "AUDIT_TOKEN",
        ])
        .env("AUDIT_TOKEN", "acme-token-0123456789")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["summary"]["tools_inspected"], json!(2), "{r}");
    assert_eq!(r["summary"]["high"], json!(0), "{r}");
    // Without the token the audit reports the HTTP failure instead of an empty report.
    let out = bin().args(["audit", &server.url]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 401"), "{err}");
}

#[test]
fn benchmark_mcp_efficiency_reproduces_the_reference_fixture_exactly() {
    let text = bin()
        .args(["benchmark", "mcp-efficiency"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(text.stdout).unwrap(),
        std::fs::read_to_string(root().join("fixtures/benchmark/mcp-efficiency.txt")).unwrap()
    );
    let json_out = bin()
        .args(["benchmark", "mcp-efficiency", "--json"])
        .output()
        .unwrap();
    let ours: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/benchmark/mcp-efficiency.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(ours, reference);
}

#[test]
fn mcp_configure_prints_snippets_with_env_names_never_secrets() {
    let config = root().join("examples/mcp-postgres-billing-app-handler/synapsor.runner.json");
    let run = |client: &str, extra: &[&str]| {
        let out = bin()
            .arg("--config")
            .arg(&config)
            .args(["mcp", "configure", client])
            .args(extra)
            .env(
                "BILLING_APP_READ_URL",
                "postgres://reader:hunter2@db/billing",
            )
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (client, key) in [
        ("claude-desktop", "mcpServers"),
        ("cursor", "mcpServers"),
        ("vscode", "servers"),
    ] {
        let (code, out, err) = run(client, &[]);
        assert_eq!(code, Some(0), "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        let s = &v[key]["synapsor"];
        assert_eq!(s["command"], json!("synapsor-runner"));
        let args: Vec<&str> = s["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(args.windows(2).any(|w| w == ["mcp", "serve"]), "{args:?}");
        assert!(
            args.windows(2).any(|w| w == ["--alias-mode", "openai"]),
            "names every client accepts by default: {args:?}"
        );
        if client == "claude-desktop" {
            // No `${...}` for a client that does not expand it: the server reads a file.
            assert!(s.get("env").is_none(), "{v}");
            assert!(args.contains(&"--env-file"), "{args:?}");
            assert!(
                err.contains("BILLING_APP_READ_URL") && err.contains("SYNAPSOR_TENANT_ID"),
                "{err}"
            );
        } else {
            let env = s["env"].as_object().unwrap();
            assert_eq!(
                env["BILLING_APP_READ_URL"],
                json!("${env:BILLING_APP_READ_URL}"),
                "{v}"
            );
            assert!(
                env.contains_key("SYNAPSOR_TENANT_ID"),
                "trusted-context names listed: {v}"
            );
        }
        assert!(
            !out.contains("hunter2") && !out.contains("postgres://"),
            "{out}"
        );
        if client == "vscode" {
            assert_eq!(s["type"], json!("stdio"));
        }
    }
    // Dotted canonical names stay available by flag.
    let (_, out, _) = run("cursor", &["--alias-mode", "canonical"]);
    assert!(!out.contains("--alias-mode"), "{out}");
    // Streamable HTTP snippets: URL plus a bearer header placeholder, never the token.
    let (code, out, err) = run("cursor", &["--transport", "streamable-http"]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["mcpServers"]["synapsor"]["url"],
        json!("http://127.0.0.1:8766/mcp")
    );
    assert_eq!(
        v["mcpServers"]["synapsor"]["headers"]["Authorization"],
        json!("Bearer ${env:SYNAPSOR_MCP_HTTP_TOKEN}")
    );
    assert!(
        err.contains("serve-streamable-http")
            && err.contains("--auth-token-env SYNAPSOR_MCP_HTTP_TOKEN"),
        "{err}"
    );
    let (code, out, _) = run("vscode", &["--transport", "streamable-http"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["servers"]["synapsor"]["type"], json!("http"));
    assert_eq!(v["inputs"][0]["password"], json!(true));
    let (code, _, err) = run("claude-desktop", &["--transport", "streamable-http"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("Connectors"), "{err}");
    let (code, _, err) = run("emacs", &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("unsupported MCP client: emacs"), "{err}");
}

/// The Claude Desktop snippet, run exactly as written: the server reads the env file and serves
/// the same ledger the reviewer uses; with the file missing a variable, or a placeholder left
/// unexpanded, it refuses to start and names the variable.
#[test]
fn a_pasted_claude_desktop_snippet_starts_a_server_on_the_reviewers_ledger() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = host_demo(dir.path());
    let out = bin()
        .arg("--config")
        .arg(&config)
        .args(["mcp", "configure", "claude-desktop", "--absolute-paths"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["mcpServers"]["synapsor"];
    let command = s["command"].as_str().unwrap().to_string();
    assert!(Path::new(&command).is_absolute(), "{command}");
    let args: Vec<String> = s["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let env_file = args[args.iter().position(|a| a == "--env-file").unwrap() + 1].clone();
    let spawn = || {
        Command::new(&command)
            .args(&args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The file lacks the principal: refused, named.
    std::fs::write(&env_file, "SYNAPSOR_TENANT_ID=acme\n").unwrap();
    let refused = spawn().wait_with_output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("SYNAPSOR_PRINCIPAL is not set"));
    // A placeholder the client passed literally: refused, named.
    std::fs::write(
        &env_file,
        "SYNAPSOR_TENANT_ID=${SYNAPSOR_TENANT_ID}\nSYNAPSOR_PRINCIPAL=p\n",
    )
    .unwrap();
    let refused = spawn().wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("SYNAPSOR_TENANT_ID holds an unexpanded placeholder"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Complete: it serves, and what it proposes is in the ledger the reviewer lists.
    std::fs::write(
        &env_file,
        "# trusted context\nSYNAPSOR_TENANT_ID=acme\nexport SYNAPSOR_PRINCIPAL=\"agent:desk\"\n",
    )
    .unwrap();
    let mut child = spawn();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for msg in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "desk", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "billing__propose_late_fee_waiver", "arguments": {"invoice_id": "INV-3001", "reason": "desk"}}}),
    ] {
        writeln!(stdin, "{msg}").unwrap();
    }
    let mut proposal = String::new();
    for line in lines.by_ref() {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["id"] == json!(2) {
            assert_eq!(v["result"]["isError"], json!(false), "{v}");
            proposal = v["result"]["structuredContent"]["proposal"]["id"]
                .as_str()
                .unwrap()
                .to_string();
            break;
        }
    }
    drop(stdin);
    let _ = child.wait();
    let listed = bin()
        .arg("--config")
        .arg(&config)
        .args(["proposals", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&proposal),
        "the reviewer sees the proposal made through the snippet"
    );
}

/// One raw HTTP/1.1 request on loopback: (status, body).
fn raw_post(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Vec<(String, String)>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    let mut req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, body.to_string(), headers)
}

/// Abuse cases 6, 8 and 11: batches count against the rate and are capped; one credential
/// cannot hold every session; the auth scheme is case-insensitive and Content-Type is exact.
#[test]
fn http_batches_sessions_and_headers_are_held_to_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (config, tokens) = host_demo(dir.path());
    let store = dir.path().join("local.db");
    let server = start(serve_cmd(&config, &store, &tokens).args([
        "--rate-limit-per-minute",
        "6",
        "--max-batch",
        "8",
        "--max-sessions-per-credential",
        "2",
    ]));
    let url = server.url.clone();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}).to_string();
    let base = |token: &'static str, ct: &'static str| {
        vec![
            ("Authorization", token),
            ("Content-Type", ct),
            ("Accept", "application/json, text/event-stream"),
        ]
    };
    // Scheme in any case; Content-Type with parameters, but not a look-alike.
    let (status, _, headers) = raw_post(
        &url,
        &base(
            "bearer acme-token-0123456789",
            "application/json; charset=utf-8",
        ),
        &init,
    );
    assert_eq!(status, 200);
    let session = headers
        .iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v.clone())
        .unwrap();
    let init_as = |auth: &'static str, ct: &'static str| raw_post(&url, &base(auth, ct), &init);
    let (status, _, _) = init_as("BEARER acme-token-0123456789", "application/jsonx");
    assert_eq!(status, 415, "a prefix match is not application/json");
    // One more session for the same credential fits, the third does not.
    let (status, _, _) = init_as("Bearer acme-token-0123456789", "application/json");
    assert_eq!(status, 200);
    let (status, body, _) = init_as("Bearer acme-token-0123456789", "application/json");
    assert_eq!(status, 429, "{body}");
    // Another tenant's credential is not locked out.
    let (status, _, _) = init_as("Bearer globex-token-0123456789", "application/json");
    assert_eq!(status, 200);
    // A batch larger than the cap is refused whole; one within it counts every call.
    let mut with_session = base("Bearer acme-token-0123456789", "application/json");
    with_session.push(("Mcp-Session-Id", session.as_str()));
    let ping = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
    let too_big = Value::Array((0..9).map(ping).collect()).to_string();
    let (status, body, _) = raw_post(&url, &with_session, &too_big);
    assert_eq!(status, 400, "{body}");
    let five = Value::Array((10..15).map(ping).collect()).to_string();
    let (status, body, _) = raw_post(&url, &with_session, &five);
    assert_eq!(
        status, 429,
        "the batch's five calls exceed what is left of 6 per minute: {body}"
    );
}

/// A hostile server answering tools/list with 60 MB: audit refuses it with a clear error instead
/// of reading it whole.
#[test]
fn audit_reads_bounded_responses_from_a_hostile_server() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hostile.py");
    std::fs::write(
        &script,
        r#"import sys, json
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("method") == "initialize":
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "h", "version": "1"}}}), flush=True)
    elif msg.get("method") == "tools/list":
        sys.stdout.write('{"jsonrpc": "2.0", "id": ' + json.dumps(msg["id"]) + ', "result": {"tools": [' + ('{"name": "x", "description": "' + 'a' * 1000 + '", "inputSchema": {"type": "object"}},') * 60000 + ']}}\n')
        sys.stdout.flush()
"#,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = bin()
        .args([
            "audit",
            &format!("stdio:python3 {}", script.display()),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // The same over HTTP: a server answering initialize with a 12 MB JSON body.
    let http = dir.path().join("hostile_http.py");
    std::fs::write(
        &http,
        r#"import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        msg = json.loads(self.rfile.read(int(self.headers["content-length"])))
        body = json.dumps({"jsonrpc": "2.0", "id": msg.get("id"), "result": {"pad": "a" * 12_000_000}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#,
    )
    .unwrap();
    let mut server = Command::new("python3")
        .arg(&http)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let out = bin()
        .args(["audit", &format!("http://127.0.0.1:{}/mcp", port.trim())])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than"), "{err}");
}

/// POST an `initialize` with acme's bearer token through curl; its HTTP status.
fn curl_initialize(url: &str, extra: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "Authorization: Bearer acme-token-0123456789"])
        .args(["-H", "Content-Type: application/json"])
        .args(["-H", "Accept: application/json, text/event-stream"])
        .args(["--data", r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#])
        .args(extra)
        .arg(url)
        .env_remove("http_proxy")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Abuse case 7: a thousand half-open sockets from one address do not lock out an authenticated
/// client from another; the slow ones are closed at the header timeout.
#[test]
fn slow_clients_cannot_exhaust_the_http_server() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (config, tokens) = host_demo(dir.path());
    let store = dir.path().join("local.db");
    let server = start(serve_cmd(&config, &store, &tokens).args([
        "--max-connections-per-address",
        "16",
        "--header-timeout-secs",
        "2",
    ]));
    let authority = server
        .url
        .strip_prefix("http://")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut slow = Vec::new();
    for _ in 0..1000 {
        if let Ok(mut s) = std::net::TcpStream::connect(&authority) {
            let _ = s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
            slow.push(s);
        }
    }
    let started = std::time::Instant::now();
    // The authenticated client comes from another loopback address.
    let code = curl_initialize(
        &format!("http://{authority}/mcp"),
        &["--interface", "127.0.0.2", "--max-time", "5"],
    );
    assert_eq!(code, "200", "served while 1000 sockets hang");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // The hanging sockets that were accepted are closed at the header timeout.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mut closed = 0;
    for s in slow.iter_mut() {
        s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 512];
        // Closed (end of file or reset), possibly after an error answer: anything but a wait.
        match s.read(&mut buf) {
            Ok(_) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(closed, slow.len(), "every slow socket is closed");
}

/// Abuse case 9: off loopback the server needs TLS (or an explicit plain-HTTP opt-in) and a Host
/// allowlist; loopback Host names no longer pass there. With TLS it serves HTTPS.
#[test]
fn a_non_loopback_bind_needs_tls_or_an_opt_in_and_a_host_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let (config, tokens) = host_demo(dir.path());
    let store = dir.path().join("local.db");
    let refused = |extra: &[&str]| {
        let out = serve_cmd(&config, &store, &tokens)
            .args(["--host", "0.0.0.0", "--port", "0"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = refused(&[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--tls-cert") && err.contains("--plain-http-behind-proxy"),
        "{err}"
    );
    let (code, err) = refused(&["--plain-http-behind-proxy"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--allowed-host"), "{err}");
    // With both, it starts, warns, and a loopback Host name is refused.
    let server = start(serve_cmd(&config, &store, &tokens).args([
        "--host",
        "0.0.0.0",
        "--plain-http-behind-proxy",
        "--allowed-host",
        "mcp.internal.example",
    ]));
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let status = |host: &str| {
        curl_initialize(
            &format!("http://127.0.0.1:{port}/mcp"),
            &["-H", &format!("Host: {host}")],
        )
    };
    assert_eq!(status("localhost"), "403");
    assert_eq!(status("mcp.internal.example"), "200");
    drop(server);
    // TLS: a self-signed certificate, served over HTTPS on loopback.
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success());
    let tls = start(
        serve_cmd(&config, &store, &tokens)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key),
    );
    assert!(tls.url.starts_with("https://"), "{}", tls.url);
    let port = tls
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        curl_initialize(&format!("https://localhost:{port}/mcp"), &["-k"]),
        "200"
    );
}

/// One JSON-RPC call over Streamable HTTP (JSON or SSE answer), in `session` if given:
/// (the answer, the session id the server named).
fn http_rpc(url: &str, token: &str, session: Option<&str>, body: Value) -> (Value, Option<String>) {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    if let Some(s) = session {
        headers.push(("Mcp-Session-Id", s));
    }
    let (status, body, got) = raw_post(url, &headers, &body.to_string());
    assert!(status == 200 || status == 202, "{status}: {body}");
    let json = body
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or(&body)
        .trim()
        .to_string();
    let sid = got
        .into_iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v);
    (serde_json::from_str(&json).unwrap_or(Value::Null), sid)
}

/// An initialized session for `token`.
fn http_session(url: &str, token: &str) -> String {
    let (_, sid) = http_rpc(
        url,
        token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}),
    );
    let sid = sid.expect("a session id");
    http_rpc(
        url,
        token,
        Some(&sid),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    sid
}

/// Two Streamable HTTP servers on one PostgreSQL ledger, serving two tenants: a proposal made
/// through either server is a resource on both, for its own tenant only.
#[test]
fn two_http_servers_share_a_postgres_ledger_and_keep_tenants_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (config, tokens) = host_demo(dir.path());
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["storage"] = json!({"engine": "postgres", "url_env": "SHARED_LEDGER_URL"});
    std::fs::write(&config, c.to_string()).unwrap();
    let admin = std::env::var("SYNAPSOR_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = format!(
        "mcpledger_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let psql = |sql: &str| {
        assert!(
            Command::new("psql")
                .args([admin.as_str(), "-qc", sql])
                .status()
                .unwrap()
                .success()
        );
    };
    psql(&format!("CREATE DATABASE {db}"));
    struct Drop_(Box<dyn Fn()>);
    impl Drop for Drop_ {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let (admin2, db2) = (admin.clone(), db.clone());
    let _cleanup = Drop_(Box::new(move || {
        let _ = Command::new("psql")
            .args([
                admin2.as_str(),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {db2} WITH (FORCE)"),
            ])
            .status();
    }));
    let ledger_url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
    let serve = || {
        let mut c = bin();
        c.arg("--config")
            .arg(&config)
            .args(["mcp", "serve-streamable-http", "--tokens-file"])
            .arg(&tokens)
            .env("SHARED_LEDGER_URL", &ledger_url);
        c
    };
    let one = start(&mut serve());
    let two = start(&mut serve());
    let (acme, globex) = ("acme-token-0123456789", "globex-token-0123456789");
    let propose = |url: &str, token: &str, invoice: &str| -> String {
        let sid = http_session(url, token);
        let (out, _) = http_rpc(
            url,
            token,
            Some(&sid),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "billing.propose_late_fee_waiver", "arguments": {"invoice_id": invoice, "reason": "goodwill"}}}),
        );
        out["result"]["structuredContent"]["proposal"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{out}"))
            .to_string()
    };
    let acme_id = propose(&one.url, acme, "INV-3001");
    let globex_id = propose(&two.url, globex, "INV-9001");
    let resources = |url: &str, token: &str| -> String {
        let sid = http_session(url, token);
        let (out, _) = http_rpc(
            url,
            token,
            Some(&sid),
            json!({"jsonrpc": "2.0", "id": 3, "method": "resources/list"}),
        );
        assert!(out["result"]["resources"].is_array(), "{out}");
        out["result"].to_string()
    };
    for url in [&one.url, &two.url] {
        let a = resources(url, acme);
        assert!(a.contains(&acme_id) && !a.contains(&globex_id), "{a}");
        let g = resources(url, globex);
        assert!(g.contains(&globex_id) && !g.contains(&acme_id), "{g}");
    }
}
