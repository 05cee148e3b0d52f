//! `handler template` (starter app-owned handlers) and `doctor --check-handlers`.

use crate::shared::{print_json, usage};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use synapsor_runner::config::{ExecutorConfig, load_config};
use synapsor_runner::error::Result;

pub const HANDLER_WARNING: &str = "IMPORTANT: your app handler owns the final business write.
  - check the tenant/scope of every object it touches
  - compare the expected version (guards.expected_version) inside an app-owned transaction
  - stay idempotent on the idempotency key
  - allow only the business actions you expect
  - roll back on any error (transaction/rollback) and answer with a safe error receipt
Skipping these invites cross-tenant writes, lost updates, or duplicate writes.";

struct Template {
    name: &'static str,
    aliases: &'static [&'static str],
    file: &'static str,
    description: &'static str,
    text: &'static str,
}

const TEMPLATES: &[Template] = &[
    Template {
        name: "node-fastify",
        aliases: &["node", "fastify"],
        file: "synapsor-writeback-handler.mjs",
        description: "Fastify HTTP handler: bearer + HMAC verification, tenant/version/idempotency re-checks",
        text: include_str!("../templates/node-fastify.mjs"),
    },
    Template {
        name: "python-fastapi",
        aliases: &["python", "fastapi"],
        file: "synapsor_writeback_handler.py",
        description: "FastAPI HTTP handler with the same checks",
        text: include_str!("../templates/python-fastapi.py"),
    },
    Template {
        name: "command",
        aliases: &["script", "local-command"],
        file: "synapsor-command-handler.mjs",
        description: "stdin/stdout command handler for command_handler executors",
        text: include_str!("../templates/command.mjs"),
    },
];

pub fn template(
    name: Option<&str>,
    output: Option<PathBuf>,
    force: bool,
    stdout: bool,
    list: bool,
) -> Result<u8> {
    if list {
        println!("Synapsor handler templates");
        for t in TEMPLATES {
            println!("- {}: {}", t.name, t.description);
        }
        println!();
        println!("{HANDLER_WARNING}");
        println!();
        println!(
            "Example: synapsor-runner handler template node-fastify --output ./synapsor-writeback-handler.mjs"
        );
        return Ok(0);
    }
    let name = name.ok_or_else(|| {
        usage("handler template requires <node-fastify|python-fastapi|command>, or use --list")
    })?;
    let t = TEMPLATES
        .iter()
        .find(|t| t.name == name || t.aliases.contains(&name))
        .ok_or_else(|| {
            usage(&format!(
                "unknown handler template: {name}. Use synapsor-runner handler template --list"
            ))
        })?;
    if stdout {
        print!("{}", t.text);
        return Ok(0);
    }
    let path = output.unwrap_or_else(|| PathBuf::from(t.file));
    if path.exists() && !force {
        return Err(usage(&format!(
            "{} already exists. Use --force to overwrite.",
            path.display()
        )));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| usage(&format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(&path, t.text)
        .map_err(|e| usage(&format!("cannot write {}: {e}", path.display())))?;
    #[cfg(unix)]
    if path
        .extension()
        .map(|e| e == "mjs" || e == "js")
        .unwrap_or(false)
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    }
    println!("created {}", path.display());
    println!("{HANDLER_WARNING}");
    Ok(0)
}

struct Check {
    name: String,
    status: &'static str,
    detail: String,
}

fn env_check(
    checks: &mut Vec<Check>,
    executor: &str,
    what: &str,
    name: &str,
    required: bool,
) -> bool {
    let set = std::env::var(name).map(|v| !v.is_empty()).unwrap_or(false);
    let status = if set {
        "pass"
    } else if required {
        "fail"
    } else {
        "warn"
    };
    checks.push(Check {
        name: format!("{executor}: {what} env {name}"),
        status,
        detail: if set { "set".into() } else { "missing".into() },
    });
    set
}

/// Is anything listening at the URL's host and port? (No request is sent, nothing is applied.)
async fn reachable(url: &str) -> std::result::Result<(), String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or("not an http(s) URL")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let default_port = if url.starts_with("https://") { 443 } else { 80 };
    let addr = if authority
        .rsplit_once(':')
        .map(|(_, p)| p.parse::<u16>().is_ok())
        .unwrap_or(false)
    {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err("connection refused".into()),
        Err(_) => Err("timed out".into()),
    }
}

/// Driver text never reaches doctor output: reduce it to a category.
fn safe_probe_error(e: &synapsor_runner::Error) -> String {
    let text = e.to_string().to_ascii_lowercase();
    let category = if text.contains("denied")
        || text.contains("permission")
        || text.contains("42501")
        || text.contains("1142")
    {
        "permission denied"
    } else if text.contains("authentication") || text.contains("28p01") || text.contains("1045") {
        "authentication failed"
    } else if text.contains("timeout") || text.contains("timed out") {
        "timeout"
    } else if matches!(e, synapsor_runner::Error::SourceUnavailable { .. }) {
        "connection failed"
    } else {
        "database probe failed"
    };
    format!("{category} ({})", e.code())
}

fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Least-privilege grants for the receipt table (identifiers are checked, never interpolated raw).
/// The column grants each reviewed direct-SQL proposal capability on `engine` needs: what it
/// reads (visible columns, keys, guard, transition sources) and what it writes (the allowed
/// columns and the version column the runner advances). `(schema, table, select, update)`.
fn target_grants(
    config: &synapsor_runner::RunnerConfig,
    engine: &str,
) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    use synapsor_runner::config::CapabilityKind;
    let mut out: Vec<(String, String, Vec<String>, Vec<String>)> = Vec::new();
    for cap in &config.capabilities {
        let on_engine = config
            .sources
            .get(&cap.source)
            .is_some_and(|s| s.engine.as_str() == engine);
        if cap.kind != CapabilityKind::Proposal || cap.executor_name() != "sql_update" || !on_engine
        {
            continue;
        }
        let guard = cap.conflict_guard.as_ref().and_then(|g| g.column.clone());
        let mut select: Vec<String> = cap.visible_columns.clone();
        select.push(cap.target.primary_key.clone());
        select.extend(cap.target.tenant_key.clone());
        select.extend(guard.clone());
        select.extend(
            cap.transition_guards
                .iter()
                .filter_map(|(_, t)| t.from_column.clone()),
        );
        let mut update = cap.allowed_columns.clone();
        update.extend(guard);
        let entry = match out
            .iter_mut()
            .find(|e| e.0 == cap.target.schema && e.1 == cap.target.table)
        {
            Some(e) => e,
            None => {
                out.push((
                    cap.target.schema.clone(),
                    cap.target.table.clone(),
                    vec![],
                    vec![],
                ));
                out.last_mut().expect("just pushed")
            }
        };
        entry.2.extend(select);
        entry.3.extend(update);
    }
    for e in &mut out {
        for cols in [&mut e.2, &mut e.3] {
            cols.sort();
            cols.dedup();
        }
    }
    out
}

pub fn grants(
    engine: &str,
    role: &str,
    schema: Option<&str>,
    config: Option<&synapsor_runner::RunnerConfig>,
) -> Result<String> {
    let ident = |s: &str| synapsor_runner::sql::check_identifier(s).map(|x| x.to_string());
    let targets = config.map(|c| target_grants(c, engine)).unwrap_or_default();
    let list = |cols: &[String], quote: &str| -> Result<String> {
        cols.iter()
            .map(|c| ident(c).map(|c| format!("{quote}{c}{quote}")))
            .collect::<Result<Vec<_>>>()
            .map(|v| v.join(", "))
    };
    match engine {
        "postgres" => {
            let schema = ident(schema.unwrap_or("public"))?;
            let role = ident(role)?;
            let mut out = format!(
                "GRANT USAGE ON SCHEMA \"{schema}\" TO \"{role}\";\nGRANT SELECT, INSERT, UPDATE ON TABLE \"{schema}\".synapsor_writeback_receipts TO \"{role}\";\n-- Only if the runner should create the receipt table itself (otherwise run `writeback migration` as the owner):\n-- GRANT CREATE ON SCHEMA \"{schema}\" TO \"{role}\";"
            );
            if targets.is_empty() {
                out.push_str("\n-- The writer also needs SELECT and UPDATE on the reviewed target columns, for example:\n-- GRANT SELECT (id, tenant_id, updated_at), UPDATE (late_fee_cents, updated_at) ON \"public\".invoices TO \"{role}\";".replace("{role}", &role).as_str());
            }
            for (tschema, table, select, update) in &targets {
                let (tschema, table) = (ident(tschema)?, ident(table)?);
                if tschema != schema {
                    out.push_str(&format!(
                        "\nGRANT USAGE ON SCHEMA \"{tschema}\" TO \"{role}\";"
                    ));
                }
                out.push_str(&format!(
                    "\n-- Reviewed writes to {tschema}.{table}: the columns read and the columns written (the version column included).\nGRANT SELECT ({}), UPDATE ({}) ON \"{tschema}\".\"{table}\" TO \"{role}\";",
                    list(select, "\"")?,
                    list(update, "\"")?
                ));
            }
            Ok(out)
        }
        "mysql" => {
            let db = ident(schema.ok_or_else(|| {
                usage("writeback grants --engine mysql requires --schema <database>")
            })?)?;
            let account_ok = regex_lite::Regex::new(
                r"^'[A-Za-z0-9_.-]+'@'[A-Za-z0-9_.%:-]+'$|^[A-Za-z_][A-Za-z0-9_]*$",
            )
            .expect("regex")
            .is_match(role);
            if !account_ok {
                return Err(usage(&format!("unsafe mysql account: {role}")));
            }
            let mut out = format!(
                "GRANT SELECT, INSERT, UPDATE ON `{db}`.synapsor_writeback_receipts TO {role};\n-- Only if the runner should create the receipt table itself:\n-- GRANT CREATE ON `{db}`.* TO {role};"
            );
            if targets.is_empty() {
                out.push_str(&format!("\n-- The writer also needs SELECT and UPDATE on the reviewed target columns, for example:\n-- GRANT SELECT (id, tenant_id, updated_at), UPDATE (refund_note, updated_at) ON `{db}`.orders TO {role};"));
            }
            for (tdb, table, select, update) in &targets {
                let (tdb, table) = (ident(tdb)?, ident(table)?);
                out.push_str(&format!(
                    "\n-- Reviewed writes to {tdb}.{table}: the columns read and the columns written (the version column included).\nGRANT SELECT ({}), UPDATE ({}) ON `{tdb}`.`{table}` TO {role};",
                    list(select, "`")?,
                    list(update, "`")?
                ));
            }
            Ok(out)
        }
        _ => Err(usage(
            "writeback command requires --engine postgres or --engine mysql",
        )),
    }
}

pub async fn doctor(
    config: &Path,
    check_handlers: bool,
    check_writeback: bool,
    json_out: bool,
) -> Result<u8> {
    let loaded = load_config(config)?;
    let mut checks = vec![Check {
        name: "config".into(),
        status: "pass",
        detail: format!("valid ({} warning(s))", loaded.warnings.len()),
    }];
    if let location @ synapsor_runner::LedgerLocation::Postgres { .. } =
        synapsor_runner::runner::resolve_ledger(None, Some(&loaded))
    {
        let (status, detail) = match location.probe(&Default::default()).await {
            Err(e) => ("fail", e.to_string()),
            Ok(p) => {
                let (have, want) = (
                    p["schema_version"].as_i64().unwrap_or(0),
                    p["runner_schema_version"].as_i64().unwrap_or(0),
                );
                let missing: Vec<&str> = p["missing_privileges"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str())
                    .collect();
                if have > want {
                    (
                        "fail",
                        format!(
                            "schema version {have} is newer than this runner's {want}; upgrade synapsor-runner"
                        ),
                    )
                } else if !missing.is_empty() {
                    (
                        "fail",
                        format!("missing privileges: {}", missing.join(", ")),
                    )
                } else if have < want {
                    (
                        "warn",
                        format!(
                            "schema version {have}; the first runner to open it migrates to {want}"
                        ),
                    )
                } else {
                    (
                        "pass",
                        format!("connected; schema version {have} (current); privileges ok"),
                    )
                }
            }
        };
        checks.push(Check {
            name: format!("ledger: {location}"),
            status,
            detail,
        });
    }
    if check_handlers {
        if loaded.config.executors.is_empty() {
            checks.push(Check {
                name: "executors".into(),
                status: "pass",
                detail: "no app-owned executors configured".into(),
            });
        }
        for (name, ex) in &loaded.config.executors {
            match ex {
                ExecutorConfig::HttpHandler {
                    url_env,
                    auth,
                    signing_secret_env,
                    ..
                } => {
                    if env_check(&mut checks, name, "url", url_env, true) {
                        let url = std::env::var(url_env).unwrap_or_default();
                        let (status, detail) = match reachable(&url).await {
                            Ok(()) => ("pass", "handler port is accepting connections".to_string()),
                            Err(e) => ("fail", e),
                        };
                        checks.push(Check {
                            name: format!("{name}: url reachable"),
                            status,
                            detail,
                        });
                    }
                    if let Some(a) = auth {
                        env_check(&mut checks, name, "bearer token", &a.token_env, true);
                    }
                    match signing_secret_env {
                        Some(s) => {
                            env_check(&mut checks, name, "signing secret", s, true);
                        }
                        None => checks.push(Check {
                            name: format!("{name}: signing secret"),
                            status: "warn",
                            detail: "not configured (recommended unless loopback-only)".into(),
                        }),
                    }
                }
                ExecutorConfig::CommandHandler { command_env, .. } => {
                    if env_check(&mut checks, name, "command", command_env, true) {
                        let line = std::env::var(command_env).unwrap_or_default();
                        let program = synapsor_runner::apply::command_handler::split_command(&line)
                            .ok()
                            .and_then(|a| a.into_iter().next());
                        let found = program.as_deref().map(on_path).unwrap_or(false);
                        checks.push(Check {
                            name: format!("{name}: command found"),
                            status: if found { "pass" } else { "fail" },
                            detail: if found {
                                "executable found".into()
                            } else {
                                "program not found on PATH".into()
                            },
                        });
                    }
                }
                ExecutorConfig::InProcess { .. } => checks.push(Check {
                    name: format!("{name}: in_process"),
                    status: "pass",
                    detail: "registered by the host application at runtime".into(),
                }),
                ExecutorConfig::SqlUpdate {} => {}
            }
        }
    }
    if check_writeback {
        let runner = synapsor_runner::Runner::with_parts(
            loaded.clone(),
            synapsor_runner::Ledger::open_in_memory()?,
        )?;
        let mut sources: Vec<&str> = Vec::new();
        for cap in loaded
            .config
            .capabilities
            .iter()
            .filter(|c| c.kind == synapsor_runner::config::CapabilityKind::Proposal)
        {
            let writes = match cap.executor_name() {
                "sql_update" => true,
                name => matches!(
                    loaded.config.executors.get(name),
                    Some(ExecutorConfig::SqlUpdate {} | ExecutorConfig::InProcess { .. })
                ),
            };
            if writes && !sources.contains(&cap.source.as_str()) {
                sources.push(&cap.source);
            }
        }
        if sources.is_empty() {
            checks.push(Check {
                name: "writeback".into(),
                status: "pass",
                detail: "no direct SQL or in-process writeback sources".into(),
            });
        }
        for src in sources {
            let cfg = &loaded.config.sources[src];
            if let Some(env) = &cfg.write_url_env
                && !env_check(&mut checks, src, "writer", env, true)
            {
                continue;
            }
            let (status, detail) = match runner.probe_writeback(src).await {
                Ok(note) => ("pass", format!("{note}; probe rolled back")),
                Err(e) => ("fail", safe_probe_error(&e)),
            };
            checks.push(Check {
                name: format!("{src}: writeback probe"),
                status,
                detail,
            });
        }
    }
    let ok = checks.iter().all(|c| c.status != "fail");
    if json_out {
        print_json(
            &json!({"ok": ok, "config": config, "checks": checks.iter().map(|c| json!({"name": c.name, "status": c.status, "detail": c.detail})).collect::<Vec<_>>()}),
        );
    } else {
        println!(
            "Synapsor doctor: {}",
            if ok { "ok" } else { "attention needed" }
        );
        println!("Config: {}", config.display());
        for c in &checks {
            println!("  {} {}: {}", c.status.to_uppercase(), c.name, c.detail);
        }
    }
    Ok(if ok { 0 } else { 1 })
}
