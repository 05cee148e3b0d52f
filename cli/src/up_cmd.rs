//! `up`: the review-mode checklist (tools, writeback paths, handler variables, how to serve), and
//! with `--serve` the Streamable HTTP server itself.

use crate::shared::{open_runner, usage};
use crate::{Global, UpArgs};
use synapsor_runner::ToolNaming;
use synapsor_runner::config::{CapabilityKind, ExecutorConfig};
use synapsor_runner::error::Result;
use synapsor_runner::runner::resolve_ledger_path;

fn set(var: &str) -> &'static str {
    if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
        "set"
    } else {
        "missing"
    }
}

pub async fn run(g: &Global, a: UpArgs) -> Result<u8> {
    let transport = a
        .transport
        .clone()
        .unwrap_or_else(|| if a.serve { "streamable-http" } else { "stdio" }.into());
    if !matches!(transport.as_str(), "stdio" | "streamable-http") {
        return Err(usage("--transport must be stdio or streamable-http"));
    }
    if a.serve && transport == "stdio" {
        return Err(usage(
            "up --serve starts the Streamable HTTP MCP server. Omit --transport or use --transport streamable-http; for stdio, use mcp configure so the client launches Runner.",
        ));
    }
    let naming = ToolNaming::parse(&a.http.alias_mode)
        .ok_or_else(|| usage("--alias-mode must be canonical, openai, or both"))?;
    let runner = open_runner(g).await?;
    let loaded = runner.loaded_config();
    let config = runner.config();
    let location = synapsor_runner::runner::resolve_ledger(g.store.as_deref(), Some(loaded));
    let store = resolve_ledger_path(g.store.as_deref(), Some(loaded));
    let path = loaded.path.display().to_string();
    let store_s = location.to_string();
    // A PostgreSQL ledger is named by the config, never by --store.
    let store_flag = match &location {
        synapsor_runner::LedgerLocation::Sqlite(_) => format!(" --store {}", store.display()),
        synapsor_runner::LedgerLocation::Postgres { .. } => String::new(),
    };
    let tools = synapsor_runner::agent::tools::tool_list(config, naming);
    let checks = crate::render::boundary_checks(&tools);
    let ok = checks.iter().all(|(_, passed, _)| *passed);
    if a.json {
        let paths: Vec<serde_json::Value> = config
            .capabilities
            .iter()
            .filter(|c| c.kind == CapabilityKind::Proposal)
            .map(|c| {
                let name = c.executor_name();
                match config.executors.get(name) {
                    None | Some(ExecutorConfig::SqlUpdate {}) => {
                        let env = config.sources.get(&c.source).and_then(|s| s.write_url_env.clone());
                        serde_json::json!({"capability": c.name, "path": "sql_update", "write_url_env": env, "env_set": env.as_deref().map(|e| set(e) == "set")})
                    }
                    Some(e) => serde_json::json!({"capability": c.name, "path": e.type_name(), "executor": name}),
                }
            })
            .collect();
        crate::shared::print_json(&serde_json::json!({
            "ok": ok,
            "config_path": path,
            "store_path": store_s,
            "mode": config.mode.as_str(),
            "transport": transport,
            "serve": a.serve && !a.dry_run,
            "alias_mode": naming.as_str(),
            "result_format": config.result_format(),
            "dry_run": a.dry_run,
            "tools": tools.iter().map(|t| serde_json::json!({"name": t.name, "canonical_name": t.canonical_name})).collect::<Vec<_>>(),
            "writeback_paths": paths,
            "checks": checks.iter().map(|(n, passed, d)| serde_json::json!({"name": n, "ok": passed, "detail": d})).collect::<Vec<_>>(),
        }));
    } else {
        let yes = |b: bool| if b { "yes" } else { "no" };
        println!("Synapsor Runner review-mode up\n");
        println!("Config: {path}");
        println!("Store: {store_s}");
        println!("Mode: {}", config.mode.as_str());
        println!("Transport: {transport}");
        println!("Serve now: {}", yes(a.serve && !a.dry_run));
        println!("Alias mode: {}", naming.as_str());
        println!("Result format: v{}", config.result_format());
        println!("Dry run: {}", yes(a.dry_run));
        println!("Model-facing tools:");
        for t in &tools {
            if t.name == t.canonical_name {
                println!("  - {}", t.name);
            } else {
                println!("  - {} -> {}", t.name, t.canonical_name);
            }
        }
        println!("Writeback paths:");
        let proposals: Vec<_> = config
            .capabilities
            .iter()
            .filter(|c| c.kind == CapabilityKind::Proposal)
            .collect();
        if proposals.is_empty() {
            println!("  - no proposal capabilities; the model can only read");
        }
        let mut handlers = Vec::new();
        for c in &proposals {
            let name = c.executor_name();
            match config.executors.get(name) {
                None | Some(ExecutorConfig::SqlUpdate {}) => {
                    let env = config
                        .sources
                        .get(&c.source)
                        .and_then(|s| s.write_url_env.clone());
                    match env {
                        Some(env) => println!(
                            "  - {}: direct guarded one-row UPDATE via {env} ({})",
                            c.name,
                            set(&env)
                        ),
                        None => println!(
                            "  - {}: direct guarded one-row UPDATE on source {}",
                            c.name, c.source
                        ),
                    }
                }
                Some(e) => {
                    println!("  - {}: app-owned {} {name}", c.name, e.type_name());
                    if !handlers.iter().any(|(n, _)| *n == name) {
                        handlers.push((name, e));
                    }
                }
            }
        }
        if !handlers.is_empty() {
            println!("App-owned handler requirements:");
            for (name, e) in &handlers {
                println!("  - {name}: {}", e.type_name());
                match e {
                    ExecutorConfig::HttpHandler {
                        url_env,
                        auth,
                        signing_secret_env,
                        ..
                    } => {
                        println!("    url env: {url_env} ({})", set(url_env));
                        if let Some(a) = auth {
                            println!(
                                "    bearer token env: {} ({})",
                                a.token_env,
                                set(&a.token_env)
                            );
                        }
                        match signing_secret_env {
                            Some(s) => println!("    signing secret env: {s} ({})", set(s)),
                            None => println!(
                                "    signing secret env: not configured (recommended unless loopback-only)"
                            ),
                        }
                    }
                    ExecutorConfig::CommandHandler { command_env, .. } => {
                        println!("    command env: {command_env} ({})", set(command_env));
                    }
                    _ => println!("    registered by the embedding app (Python, Node or Rust)"),
                }
            }
            println!(
                "  Handlers must re-check tenant, version and idempotency key themselves; see docs/app-owned-executors.md."
            );
        }
        println!("Safety checks:");
        for (name, passed, detail) in &checks {
            println!("  {} {name}", if *passed { "PASS" } else { "FAIL" });
            println!("    {detail}");
        }
        println!("Server guidance:");
        let cfg = format!("--config {path}{store_flag}");
        if transport == "stdio" {
            println!(
                "  stdio mode is launched by an MCP client. This command does not hold a protocol session open."
            );
            println!("  Client snippets: synapsor-runner mcp configure {cfg}");
            println!("  Serve by hand: synapsor-runner mcp serve {cfg}");
        } else {
            println!(
                "  Streamable HTTP endpoint: http://{}:{}{}",
                a.http.host, a.http.port, a.http.path
            );
            match &a.http.auth_token_env {
                Some(env) => println!("  Auth token env: {env} ({})", set(env)),
                None if a.http.dev_no_auth => {
                    println!("  Auth: none (--dev-no-auth, loopback only)")
                }
                None => {
                    println!(
                        "  Auth token env: not given (pass --auth-token-env VAR or --tokens-file)"
                    )
                }
            }
            if a.dry_run || !a.serve {
                println!("  Status: dry run only; server not started.");
                println!("  Start command: synapsor-runner up --serve {cfg}");
            } else {
                println!("  Status: starting after this checklist.");
            }
        }
        println!("Next commands:");
        println!("  synapsor-runner tools preview {cfg}");
        if let Some(first) = config.capabilities.first() {
            println!("  synapsor-runner smoke call {} --sample {cfg}", first.name);
        }
        println!("  synapsor-runner proposals list {cfg}");
        println!("  synapsor-runner proposals approve latest --yes {cfg}");
        println!("  synapsor-runner apply latest {cfg}");
        println!("  synapsor-runner replay show latest {cfg}");
        println!("  synapsor-runner events tail {cfg}");
        println!("  synapsor-runner writeback doctor --check-db {cfg}");
    }
    if a.dry_run || !a.serve {
        return Ok(if ok { 0 } else { crate::exit::ERROR });
    }
    if !ok {
        return Err(usage(
            "the tools failed a boundary check (see Safety checks); not serving",
        ));
    }
    drop(runner);
    crate::mcp_cmds::serve_http(g, a.http).await
}
