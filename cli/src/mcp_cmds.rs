//! MCP-facing commands: `mcp serve`, `mcp serve-streamable-http`, `mcp configure`,
//! `mcp hash-token`, `audit`, and `benchmark mcp-efficiency`.

use crate::shared::{config_path, open_runner, usage};
use crate::{AuditArgs, ConfigureArgs, Global, HttpServeArgs};
use serde_json::{Map, Value, json};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use synapsor_runner::config::{Provider, load_config};
use synapsor_runner::error::{Error, Result};
use synapsor_runner::{Runner, ToolNaming, TrustedContext};
use synapsor_runner_mcp::McpEndpoint;
use synapsor_runner_mcp::audit;
use synapsor_runner_mcp::http::{self, Auth, HttpOptions, TokenTable};

fn naming(alias_mode: &str) -> Result<ToolNaming> {
    ToolNaming::parse(alias_mode)
        .ok_or_else(|| usage("--alias-mode must be canonical, openai, or both"))
}

pub(crate) fn uses_host_provider(runner: &Runner) -> bool {
    let c = runner.config();
    c.trusted_context
        .iter()
        .chain(c.contexts.values())
        .any(|b| b.provider == Provider::Host)
}

/// The process's own trusted context: the config's provider, or for `host` the
/// `SYNAPSOR_TENANT_ID` / `SYNAPSOR_PRINCIPAL` this process was started with.
fn process_context(runner: &Runner) -> TrustedContext {
    if uses_host_provider(runner) {
        TrustedContext {
            tenant_id: std::env::var("SYNAPSOR_TENANT_ID").ok(),
            principal: std::env::var("SYNAPSOR_PRINCIPAL").ok(),
        }
    } else {
        TrustedContext::from_config()
    }
}

/// Load `KEY=VALUE` lines (blank lines and `#` comments skipped, optional `export `, values
/// optionally quoted) into this process's environment. Runs before anything else starts.
fn load_env_file(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(&format!("--env-file {}: {e}", path.display())))?;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(usage(&format!(
                "--env-file {} line {}: expected KEY=VALUE",
                path.display(),
                i + 1
            )));
        };
        let key = key.trim();
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        // SAFETY: called at the start of `mcp serve`, before the server spawns anything.
        unsafe { std::env::set_var(key, value) };
    }
    Ok(())
}

/// Refuse to serve when a variable the server needs is unset, or still holds a placeholder the
/// MCP client did not expand (`${NAME}`, `${env:NAME}`): every call would fail otherwise.
fn check_server_env(config: &synapsor_runner::RunnerConfig) -> Result<()> {
    let (required, optional) = server_env(config);
    for name in required.iter().chain(&optional) {
        if let Ok(v) = std::env::var(name)
            && v.contains("${")
        {
            return Err(usage(&format!(
                "{name} holds an unexpanded placeholder ({}): the MCP client passed it literally. Set the value itself, or start the server with --env-file (Claude Desktop does not expand variables)",
                v.chars().take(40).collect::<String>()
            )));
        }
    }
    for name in &required {
        if std::env::var(name)
            .map(|v| v.trim().is_empty())
            .unwrap_or(true)
        {
            return Err(usage(&format!(
                "{name} is not set: the MCP server needs it (trusted context or a source's read connection). Set it in the client's env block or in an --env-file"
            )));
        }
    }
    Ok(())
}

pub async fn serve_stdio(g: &Global, alias_mode: &str, env_file: Option<&Path>) -> Result<u8> {
    let naming = naming(alias_mode)?;
    if let Some(path) = env_file {
        load_env_file(path)?;
    }
    if let Ok(loaded) = load_config(config_path(g)) {
        check_server_env(&loaded.config)?;
    }
    let runner = open_runner(g).await?;
    let _lease = crate::shared::StoreLease::take_for(g, "stdio");
    let ctx = process_context(&runner);
    synapsor_runner_mcp::SynapsorMcp::new(runner, naming, ctx)
        .serve_stdio()
        .await
        .map_err(|e| Error::Internal(format!("MCP stdio server stopped: {e}")))?;
    Ok(0)
}

pub async fn serve_http(g: &Global, a: HttpServeArgs) -> Result<u8> {
    let naming = naming(&a.alias_mode)?;
    let ip: IpAddr = a
        .host
        .parse()
        .or_else(|_| {
            if a.host == "localhost" {
                Ok("127.0.0.1".parse().expect("ip"))
            } else {
                Err(())
            }
        })
        .map_err(|_| usage("--host must be an IP address (or localhost)"))?;
    let bind = SocketAddr::new(ip, a.port);
    if !a.path.starts_with('/') {
        return Err(usage("--path must start with /"));
    }
    let chosen = [
        a.auth_token_env.is_some(),
        a.tokens_file.is_some(),
        a.dev_no_auth,
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if chosen == 0 {
        return Err(usage(
            "mcp serve-streamable-http requires --auth-token-env <VAR> (or --tokens-file <path>, or --dev-no-auth on a loopback address)",
        ));
    }
    if chosen > 1 {
        return Err(usage(
            "choose one of --auth-token-env, --tokens-file, --dev-no-auth",
        ));
    }
    if a.dev_no_auth && !ip.is_loopback() {
        return Err(usage(
            "--dev-no-auth is only allowed on a loopback address (127.0.0.1 or ::1)",
        ));
    }
    let runner = open_runner(g).await?;
    let _lease = crate::shared::StoreLease::take_for(g, "streamable-http");
    let auth = if let Some(var) = &a.auth_token_env {
        let token = std::env::var(var)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| usage(&format!("--auth-token-env {var}: the variable is not set")))?;
        Auth::Token {
            token,
            context: process_context(&runner),
        }
    } else if let Some(path) = &a.tokens_file {
        if !uses_host_provider(&runner) {
            return Err(usage(
                "--tokens-file binds tenant and principal per token, which needs trusted_context.provider \"host\" in the config",
            ));
        }
        Auth::Tokens(TokenTable::load(path).map_err(|e| usage(&e))?)
    } else {
        eprintln!(
            "warning: --dev-no-auth: any local process can call this server; never use it beyond a development machine"
        );
        Auth::DevNoAuth {
            context: process_context(&runner),
        }
    };
    let mut opts = HttpOptions::new(bind, auth);
    opts.path = a.path.clone();
    opts.allowed_hosts = a.allowed_host.clone();
    opts.allowed_origins = a.allowed_origin.clone();
    opts.max_body_bytes = a.max_body_bytes;
    opts.session_idle = Duration::from_secs(a.session_idle_secs.max(1));
    opts.rate_limit_per_minute = a.rate_limit_per_minute;
    opts.max_batch = a.max_batch.max(1);
    opts.max_sessions = a.max_sessions.max(1);
    opts.max_sessions_per_tenant = a.max_sessions_per_tenant.max(1);
    opts.max_sessions_per_credential = a.max_sessions_per_credential.max(1);
    opts.max_connections = a.max_connections.max(1);
    opts.max_connections_per_address = a.max_connections_per_address.max(1);
    opts.header_timeout = Duration::from_secs(a.header_timeout_secs.max(1));
    opts.body_timeout = Duration::from_secs(a.body_timeout_secs.max(1));
    opts.tls = a.tls_cert.clone().zip(a.tls_key.clone());
    opts.plain_http_behind_proxy = a.plain_http_behind_proxy;
    if let Some(why) = http::refuse(&opts) {
        return Err(usage(&why));
    }
    if opts.plain_http_behind_proxy && opts.tls.is_none() && !ip.is_loopback() {
        eprintln!(
            "WARNING: serving plain HTTP on {ip}: bearer tokens cross the network in clear text unless a TLS-terminating proxy sits in front of this server"
        );
    }
    let endpoint = McpEndpoint::new(runner, naming);
    let path = a.path.clone();
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    http::serve(endpoint, opts, |addr| {
        eprintln!("synapsor-runner MCP Streamable HTTP listening on {scheme}://{addr}{path}");
    })
    .await
    .map_err(|e| Error::Internal(format!("MCP HTTP server: {e}")))?;
    Ok(0)
}

/// `mcp hash-token --from-env VAR`: the SHA-256 to store in a tokens file.
pub fn hash_token(from_env: &str) -> Result<u8> {
    let token = std::env::var(from_env)
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| usage(&format!("{from_env} is not set")))?;
    println!("{}", http::hash_token(&token));
    Ok(0)
}

/// Environment variables the MCP server process reads (names only; never values): those it
/// cannot serve without (trusted context, read connections) and the write connections.
fn server_env(config: &synapsor_runner::RunnerConfig) -> (Vec<String>, Vec<String>) {
    let mut required: Vec<String> = Vec::new();
    let mut optional: Vec<String> = Vec::new();
    let add = |list: &mut Vec<String>, n: &str| {
        if !list.iter().any(|x| x == n) {
            list.push(n.to_string());
        }
    };
    if let Some(s) = config.storage.as_ref()
        && s.engine.as_deref() == Some("postgres")
        && let Some(n) = &s.url_env
    {
        add(&mut required, n);
    }
    for s in config.sources.values() {
        if let Some(n) = &s.read_url_env {
            add(&mut required, n);
        }
        if let Some(n) = &s.write_url_env {
            add(&mut optional, n);
        }
    }
    for b in config
        .trusted_context
        .iter()
        .chain(config.contexts.values())
    {
        match b.provider {
            Provider::Environment => {
                for (key, default) in [
                    ("tenant_id_env", "SYNAPSOR_TENANT_ID"),
                    ("principal_env", "SYNAPSOR_PRINCIPAL"),
                ] {
                    let n = b.values.get(key).and_then(Value::as_str).unwrap_or(default);
                    add(&mut required, n);
                }
            }
            Provider::Host => {
                add(&mut required, "SYNAPSOR_TENANT_ID");
                add(&mut required, "SYNAPSOR_PRINCIPAL");
            }
            _ => {
                for (k, v) in &b.values {
                    if k.ends_with("_env")
                        && let Some(n) = v.as_str()
                    {
                        add(&mut optional, n);
                    }
                }
            }
        }
    }
    optional.retain(|n| !required.contains(n));
    (required, optional)
}

/// Every variable the server reads, required first.
fn server_env_names(config: &synapsor_runner::RunnerConfig) -> Vec<String> {
    let (mut names, optional) = server_env(config);
    names.extend(optional);
    names
}

pub fn configure(g: &Global, a: &ConfigureArgs) -> Result<u8> {
    let (transport, alias_mode, absolute_paths) = (
        a.transport.as_str(),
        a.alias_mode.as_str(),
        a.absolute_paths,
    );
    let (host, port, auth_token_env) = (a.host.as_str(), a.port, a.auth_token_env.as_str());
    naming(alias_mode)?;
    let client = match a.client.as_str() {
        "claude" | "claude-desktop" => "claude-desktop",
        "cursor" => "cursor",
        "vscode" => "vscode",
        "generic" | "generic-stdio" => "generic-stdio",
        other => return Err(usage(&format!("unsupported MCP client: {other}"))),
    };
    match transport {
        "stdio" | "streamable-http" => {}
        "http" | "json-rpc" => {
            return Err(usage(
                "mcp config uses stdio or streamable-http. The lightweight JSON-RPC HTTP bridge is not a standard MCP client transport.",
            ));
        }
        _ => return Err(usage("--transport must be stdio or streamable-http")),
    }
    if transport == "streamable-http" && client == "claude-desktop" {
        return Err(usage(
            "Claude Desktop adds remote MCP servers in its own settings (Connectors), not in claude_desktop_config.json: use --transport stdio, or add the URL there",
        ));
    }
    let absolute = |p: &Path| -> std::path::PathBuf {
        if p.is_relative() {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        } else {
            p.to_path_buf()
        }
    };
    let shown = |p: &Path| -> String {
        if absolute_paths {
            absolute(p).display().to_string()
        } else {
            p.display().to_string()
        }
    };
    let raw_config = config_path(g);
    // The ledger the reviewer's `proposals` and `apply` use: from the config unless given.
    let raw_store = crate::shared::ledger_path(g);
    let (cfg, store) = (shown(&raw_config), shown(&raw_store));
    // A PostgreSQL ledger is named by the config (and its URL variable), never by --store.
    let store_args: Vec<String> = match crate::shared::ledger_location(g) {
        synapsor_runner::LedgerLocation::Sqlite(_) => vec!["--store".into(), store.clone()],
        synapsor_runner::LedgerLocation::Postgres { .. } => vec![],
    };
    let raw_store_relative = !store_args.is_empty() && raw_store.is_relative();
    let command = if absolute_paths {
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "synapsor-runner".into())
    } else {
        std::env::var("SYNAPSOR_RUNNER_COMMAND_NAME").unwrap_or_else(|_| "synapsor-runner".into())
    };
    let loaded = load_config(&raw_config);
    if loaded.is_err() {
        eprintln!(
            "Warning: config path does not exist yet or is invalid: {}",
            raw_config.display()
        );
    }
    let env_names = loaded
        .as_ref()
        .map(|c| server_env_names(&c.config))
        .unwrap_or_default();
    let alias_args: Vec<String> = if alias_mode == "canonical" {
        Vec::new()
    } else {
        vec!["--alias-mode".into(), alias_mode.into()]
    };

    if transport == "streamable-http" {
        let url = format!("http://{host}:{port}/mcp");
        let snippet = match client {
            "cursor" => json!({"mcpServers": {"synapsor": {
                "url": url,
                "headers": {"Authorization": format!("Bearer ${{env:{auth_token_env}}}")}
            }}}),
            "vscode" => json!({
                "inputs": [{"type": "promptString", "id": "synapsor-token", "description": "Bearer token of the synapsor-runner MCP server", "password": true}],
                "servers": {"synapsor": {
                    "type": "http",
                    "url": url,
                    "headers": {"Authorization": "Bearer ${input:synapsor-token}"}
                }}
            }),
            _ => {
                json!({"url": url, "headers": {"Authorization": format!("Bearer <value of {auth_token_env}>")}})
            }
        };
        println!("{}", serde_json::to_string_pretty(&snippet).expect("json"));
        let mut start = vec![command.clone(), "--config".into(), cfg.clone()];
        start.extend(store_args.iter().cloned());
        start.extend([
            "mcp".into(),
            "serve-streamable-http".into(),
            "--host".into(),
            host.into(),
            "--port".into(),
            port.to_string(),
            "--auth-token-env".into(),
            auth_token_env.into(),
        ]);
        start.extend(alias_args);
        eprintln!(
            "Start the server with {auth_token_env} set (and {}):\n  {}",
            if env_names.is_empty() {
                "nothing else".to_string()
            } else {
                env_names.join(", ")
            },
            start.join(" ")
        );
        eprintln!(
            "Paste this {client} MCP config into your client settings. It holds the URL and a token placeholder only, never the token or database URLs."
        );
        return Ok(0);
    }

    let mut args: Vec<String> = vec!["--config".into(), cfg];
    args.extend(store_args);
    args.extend(["mcp".into(), "serve".into()]);
    args.extend(alias_args);
    let mut server = json!({"command": command});
    let env_file = a.env_file.clone().unwrap_or_else(|| {
        raw_config
            .parent()
            .map(|d| d.join(".env.synapsor"))
            .unwrap_or_else(|| ".env.synapsor".into())
    });
    match client {
        // Claude Desktop passes `env` values literally (no `${...}` expansion), and on some
        // platforms an `env` block replaces the whole environment: the server reads its
        // variables from a file instead.
        "claude-desktop" if !env_names.is_empty() => {
            args.extend([
                "--env-file".into(),
                absolute(&env_file).display().to_string(),
            ]);
        }
        "claude-desktop" => {}
        // Both document `${env:NAME}` in mcp.json.
        "cursor" | "vscode" => {
            let env: Map<String, Value> = env_names
                .iter()
                .map(|n| (n.clone(), Value::String(format!("${{env:{n}}}"))))
                .collect();
            if !env.is_empty() {
                server["env"] = Value::Object(env);
            }
        }
        _ => {
            let env: Map<String, Value> = env_names
                .iter()
                .map(|n| (n.clone(), Value::String(format!("${{{n}}}"))))
                .collect();
            if !env.is_empty() {
                server["env"] = Value::Object(env);
            }
        }
    }
    server["args"] = json!(args);
    let snippet = match client {
        "claude-desktop" | "cursor" => json!({"mcpServers": {"synapsor": server}}),
        "vscode" => {
            let mut s = json!({"type": "stdio"});
            for (k, v) in server.as_object().expect("object") {
                s[k] = v.clone();
            }
            json!({"servers": {"synapsor": s}})
        }
        _ => server,
    };
    println!("{}", serde_json::to_string_pretty(&snippet).expect("json"));
    if (raw_config.is_relative() || raw_store_relative) && !absolute_paths {
        eprintln!(
            "Warning: relative paths are resolved by the MCP client working directory. Use --absolute-paths if the client runs from another directory."
        );
    }
    if !env_names.is_empty() {
        match client {
            "claude-desktop" => eprintln!(
                "Put {} in {} as KEY=VALUE lines (chmod 600); the server reads it at start and refuses to start while one is missing.",
                env_names.join(", "),
                absolute(&env_file).display()
            ),
            "cursor" | "vscode" => eprintln!(
                "The client fills {} from its environment (${{env:NAME}}).",
                env_names.join(", ")
            ),
            _ => eprintln!(
                "The env entries are placeholders: set {} in the client's environment (or replace the placeholders locally).",
                env_names.join(", ")
            ),
        }
    }
    eprintln!(
        "Paste this {client} MCP config into your local MCP client settings. It contains command paths and environment variable names only, not database URLs or write credentials."
    );
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// audit

pub async fn audit_cmd(a: AuditArgs) -> Result<u8> {
    let format = if a.json {
        "json".to_string()
    } else {
        a.format.clone().unwrap_or_else(|| "text".into())
    };
    if !matches!(format.as_str(), "text" | "json" | "markdown") {
        return Err(usage("audit --format must be text, json, or markdown"));
    }
    let timeout = Duration::from_millis(a.timeout_ms);
    let (target, input) = if let Some(ex) = &a.example {
        if ex != "dangerous-db-mcp" {
            return Err(usage(&format!(
                "unknown audit example: {ex}. Available examples: dangerous-db-mcp"
            )));
        }
        (format!("example:{ex}"), audit::dangerous_example())
    } else {
        let target = a
            .target
            .clone()
            .or(a.url.clone())
            .or(a.stdio.clone().map(|s| format!("stdio:{s}")))
            .or(a.mcp_config.clone().map(|p| p.display().to_string()))
            .ok_or_else(|| usage("audit requires <target>, --example dangerous-db-mcp, --mcp-config <path>, --stdio <command>, or --url <url>"))?;
        let input = if target.starts_with("http://") || target.starts_with("https://") {
            let bearer_env = a
                .bearer_env
                .clone()
                .unwrap_or_else(|| "SYNAPSOR_MCP_AUDIT_BEARER".into());
            let bearer = std::env::var(&bearer_env).ok().filter(|b| !b.is_empty());
            crate::audit_client::fetch_http_tools(&target, bearer.as_deref(), timeout).await?
        } else if let Some(cmd) = target.strip_prefix("stdio:") {
            let cmd = cmd.trim();
            if cmd.is_empty() {
                return Err(usage(
                    "mcp audit stdio target requires a command after stdio:",
                ));
            }
            crate::audit_client::fetch_stdio_tools(cmd, timeout).await?
        } else {
            read_json_target(Path::new(&target))?
        };
        (target, input)
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let report = audit::audit(&target, &input, &now);
    let out = match format.as_str() {
        "json" => format!("{}\n", serde_json::to_string_pretty(&report).expect("json")),
        "markdown" => audit::render_markdown(&report),
        _ => audit::render_text(&report),
    };
    print!("{out}");
    Ok(0)
}

fn read_json_target(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
        code: "AUDIT_TARGET_UNREADABLE",
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| Error::ConfigFile {
        code: "AUDIT_TARGET_NOT_JSON",
        message: format!("{} is not valid JSON: {e}", path.display()),
    })?;
    let runner_like = v.get("version") == Some(&json!(1))
        && (v.get("capabilities").is_some_and(Value::is_array)
            || v.get("contracts").is_some_and(Value::is_array));
    if runner_like {
        // Our own config: audit exactly the tools the server would list (validated first).
        let loaded = load_config(path)?;
        return Ok(synapsor_runner_mcp::endpoint::tools_json(
            &loaded.config,
            ToolNaming::Canonical,
        ));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// benchmark mcp-efficiency

const BENCH_PATHS: &str = include_str!("../../fixtures/benchmark/mcp-efficiency-paths.json");

fn fixture_tokens(text: &str) -> usize {
    // [A-Za-z0-9_]+ | [^\sA-Za-z0-9_]
    let mut n = 0;
    let mut in_word = false;
    for c in text.chars() {
        let word = c.is_ascii_alphanumeric() || c == '_';
        if word {
            if !in_word {
                n += 1;
            }
            in_word = true;
        } else {
            in_word = false;
            if !c.is_whitespace() {
                n += 1;
            }
        }
    }
    n
}

/// The `benchmark mcp-efficiency` report (deterministic; no database, no MCP).
pub fn mcp_efficiency_report() -> Value {
    let fixture: Value = serde_json::from_str(BENCH_PATHS).expect("benchmark fixture");
    let mut paths = Map::new();
    let mut plans = Map::new();
    for p in fixture["paths"].as_array().expect("paths") {
        let name = p["name"].as_str().expect("name").to_string();
        let tools = json!({"tools": p["tools"]}).to_string();
        let schema = p["schema_context"].to_string();
        let result = p["business_result"].to_string();
        let plan = p["scripted_plan"].as_array().expect("plan");
        paths.insert(
            name.clone(),
            json!({
                "exposed_tools": p["tools"].as_array().map(Vec::len).unwrap_or(0),
                "serialized_tools_list_bytes": tools.len(),
                "serialized_tools_list_tokens": fixture_tokens(&tools),
                "schema_context_bytes": schema.len(),
                "schema_context_tokens": fixture_tokens(&schema),
                "business_result_bytes": result.len(),
                "business_result_tokens": fixture_tokens(&result),
                "scripted_tool_calls": plan.len(),
                "exposes_raw_sql": p["exposes_raw_sql"],
                "exposes_write_credentials": p["exposes_write_credentials"],
                "approval_separated": p["approval_separated"],
                "stale_row_conflict_checked": p["stale_row_conflict_checked"],
            }),
        );
        plans.insert(name, Value::Array(plan.clone()));
    }
    json!({
        "benchmark": "mcp-efficiency",
        "fixture": "late-fee-waiver",
        "tokenizer": {"name": "synapsor-fixture-tokenizer-v1", "version": 1, "method": "deterministic regex tokenization for fixture comparison; not a model billing tokenizer"},
        "note": "This benchmark compares the included fixture/reference workflow only. It is not a universal token-savings claim.",
        "paths": paths,
        "scripted_plans": plans,
    })
}

pub fn render_mcp_efficiency(report: &Value) -> String {
    let yn = |v: &Value| {
        if v.as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
    };
    let block = |title: &str, m: &Value| -> Vec<String> {
        vec![
            title.to_string(),
            format!("  exposed tools: {}", m["exposed_tools"]),
            format!(
                "  tools/list: {} bytes, {} tokens",
                m["serialized_tools_list_bytes"], m["serialized_tools_list_tokens"]
            ),
            format!("  scripted tool calls: {}", m["scripted_tool_calls"]),
            format!(
                "  schema/context: {} bytes, {} tokens",
                m["schema_context_bytes"], m["schema_context_tokens"]
            ),
            format!(
                "  business result: {} bytes, {} tokens",
                m["business_result_bytes"], m["business_result_tokens"]
            ),
            format!("  raw SQL exposed: {}", yn(&m["exposes_raw_sql"])),
            format!("  approval separated: {}", yn(&m["approval_separated"])),
            format!(
                "  stale-row conflict checked: {}",
                yn(&m["stale_row_conflict_checked"])
            ),
        ]
    };
    let mut lines = vec![
        "MCP efficiency benchmark: late-fee-waiver fixture".to_string(),
        "Tokenizer: synapsor-fixture-tokenizer-v1 (deterministic fixture tokenizer; not a model billing tokenizer)".into(),
        "Scope: included fixture/reference workflow only; not a universal savings claim.".into(),
        String::new(),
    ];
    lines.extend(block(
        "Generic database MCP reference:",
        &report["paths"]["generic_database_mcp_reference"],
    ));
    lines.push(String::new());
    lines.extend(block(
        "Synapsor Runner semantic path:",
        &report["paths"]["synapsor_runner_semantic_path"],
    ));
    lines.push(String::new());
    lines.push(
        "Run with --json to inspect machine-readable measurements and scripted plans.".into(),
    );
    lines.join("\n") + "\n"
}

pub fn benchmark(name: &str, json_out: bool) -> Result<u8> {
    if name != "mcp-efficiency" {
        return Err(usage("benchmark supports: mcp-efficiency"));
    }
    let report = mcp_efficiency_report();
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    } else {
        print!("{}", render_mcp_efficiency(&report));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_matches_the_reference_regex() {
        assert_eq!(fixture_tokens(r#"{"a_b":1, "c d"}"#), 12);
        assert_eq!(fixture_tokens(""), 0);
    }
}
