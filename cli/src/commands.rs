//! Command implementations. Each returns an exit code or a core error (printed by `main`).

use crate::render;
use crate::shared::{config_path, open_existing_ledger, open_runner, print_json, usage};
use crate::{ApplyArgs, CallArgs, DecideArgs, Global, ProposalsCmd};
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use synapsor_runner::config::Provider;
use synapsor_runner::error::{Error, Result};
use synapsor_runner::policy::context::binding_for;
use synapsor_runner::protocol::WritebackJob;
use synapsor_runner::runner::resolve_ledger;
use synapsor_runner::{ApplyOptions, Approver, Runner, ToolNaming, TrustedContext};

pub(crate) fn config_validate(g: &Global, json_out: bool) -> Result<u8> {
    let path = config_path(g);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::ConfigFile {
        code: "CONFIG_NOT_FOUND",
        message: format!("cannot read config {}: {e}", path.display()),
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::ConfigFile {
        code: "CONFIG_NOT_JSON",
        message: format!("config {} is not valid JSON: {e}", path.display()),
    })?;
    let report = synapsor_runner::config::validate_value(&value);
    if json_out {
        print_json(&serde_json::to_value(&report).unwrap_or_default());
    } else if report.ok {
        println!("config valid: {}", path.display());
        for w in &report.warnings {
            println!("warning {} {}: {}", w.path, w.code, w.message);
        }
    } else {
        println!("config invalid: {}", path.display());
        for e in &report.errors {
            println!("error {} {}: {}", e.path, e.code, e.message);
        }
        for w in &report.warnings {
            println!("warning {} {}: {}", w.path, w.code, w.message);
        }
    }
    Ok(if report.ok { 0 } else { 1 })
}

pub(crate) async fn tools_preview(g: &Global, alias_mode: &str, json_out: bool) -> Result<u8> {
    let naming = ToolNaming::parse(alias_mode)
        .ok_or_else(|| usage("--alias-mode must be canonical, openai, or both"))?;
    let runner = open_runner(g).await?;
    let store = std::path::PathBuf::from(
        resolve_ledger(g.store.as_deref(), Some(runner.loaded_config())).to_string(),
    );
    let tools = synapsor_runner::agent::tools::tool_list(runner.config(), naming);
    let checks = render::boundary_checks(&tools);
    let ok = checks.iter().all(|c| c.1);
    if json_out {
        print_json(&json!({
            "ok": ok,
            "config_path": config_path(g),
            "store_path": store,
            "alias_mode": naming.as_str(),
            "exposed_to_mcp": tools.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            "alias_mappings": tools.iter().map(|t| json!({"canonicalName": t.canonical_name, "exposedName": t.name, "isAlias": t.name != t.canonical_name, "style": naming.as_str()})).collect::<Vec<_>>(),
            "not_exposed_to_mcp": render::NOT_EXPOSED,
            "checks": checks.iter().map(|(n, ok, d)| json!({"name": n, "ok": ok, "detail": d})).collect::<Vec<_>>(),
            "tools": tools,
        }));
    } else {
        println!(
            "Synapsor tools preview: {}",
            if ok { "ok" } else { "failed" }
        );
        println!("Config: {}", config_path(g).display());
        println!("Store: {}", store.display());
        println!("Alias mode: {}", naming.as_str());
        println!("Exposed to MCP:");
        for t in &tools {
            if t.name == t.canonical_name {
                println!("  - {}", t.name);
            } else {
                println!("  - {} -> {}", t.name, t.canonical_name);
            }
        }
        println!("Not exposed to MCP:");
        for n in render::NOT_EXPOSED {
            println!("  - {n}");
        }
        println!("Safety checks:");
        for (name, ok, detail) in &checks {
            println!("  {} {name}", if *ok { "PASS" } else { "FAIL" });
            println!("    {detail}");
        }
        println!("Next:");
        println!(
            "  synapsor-runner mcp serve --config {}{}",
            config_path(g).display(),
            render::store_flag(&store)
        );
    }
    Ok(if ok { 0 } else { 1 })
}

fn read_call_args(a: &CallArgs, runner: &Runner) -> Result<Value> {
    let inline = a
        .args
        .clone()
        .or_else(|| a.json.clone().filter(|s| !s.is_empty()));
    let sources = [a.input.is_some(), inline.is_some(), a.sample]
        .iter()
        .filter(|x| **x)
        .count();
    if sources > 1 {
        return Err(usage(
            "pass arguments with only one of --sample, --input, --args, or --json",
        ));
    }
    if a.sample {
        let cap = runner
            .config()
            .capability(&a.capability)
            .ok_or_else(|| synapsor_runner::Error::CapabilityNotFound(a.capability.clone()))?;
        return Ok(crate::sample::arguments(cap));
    }
    let text = match (&a.input, inline) {
        (Some(p), _) => std::fs::read_to_string(p)
            .map_err(|e| usage(&format!("cannot read --input {}: {e}", p.display())))?,
        (None, Some(s)) => s,
        (None, None) => {
            return Err(usage(&format!(
                "{} requires --sample, --input <file>, --args '<object>', or --json '<object>'",
                a.capability
            )));
        }
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| usage(&format!("arguments are not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(usage("arguments must be a JSON object"));
    }
    Ok(v)
}

/// Trusted context the CLI asserts: only for `host`-provider capabilities, from the environment.
fn cli_context(runner: &Runner, capability: &str) -> TrustedContext {
    let host = runner
        .config()
        .capability(capability)
        .and_then(|c| binding_for(runner.config(), c).ok())
        .map(|b| b.provider == Provider::Host)
        .unwrap_or(false);
    if !host {
        return TrustedContext::from_config();
    }
    TrustedContext {
        tenant_id: std::env::var("SYNAPSOR_TENANT_ID").ok(),
        principal: std::env::var("SYNAPSOR_PRINCIPAL").ok(),
    }
}

pub(crate) async fn call(g: &Global, a: CallArgs, proposal: bool) -> Result<u8> {
    let runner = open_runner(g).await?;
    let args = read_call_args(&a, &runner)?;
    let store = std::path::PathBuf::from(
        resolve_ledger(g.store.as_deref(), Some(runner.loaded_config())).to_string(),
    );
    let ctx = cli_context(&runner, &a.capability);
    let json_out = a.json.is_some();
    if proposal {
        let cap = runner
            .config()
            .capability(&a.capability)
            .ok_or_else(|| Error::CapabilityNotFound(a.capability.clone()))?;
        if cap.kind != synapsor_runner::config::CapabilityKind::Proposal {
            return Err(usage(&format!(
                "{} is a {} capability. Use a proposal capability with synapsor-runner propose.",
                a.capability,
                cap.kind.as_str()
            )));
        }
        let r = runner.propose(&a.capability, args, &ctx).await?;
        if json_out {
            print_json(&synapsor_runner::envelope::proposal_v2(&r));
        } else {
            render::proposal_created(&r, &store);
        }
    } else {
        let r = runner.inspect(&a.capability, args, &ctx).await?;
        if json_out {
            print_json(&synapsor_runner::envelope::read_v2(&r));
        } else {
            println!(
                "Read {} {} through {}.",
                r.business_object, r.object_id, r.capability
            );
            println!(
                "Tenant: {} (principal {}, from {})",
                r.context.tenant_id, r.context.principal, r.context.provenance
            );
            for (k, v) in &r.data {
                println!("  {k}: {}", render::plain(v));
            }
            println!("Evidence: {}", r.evidence_bundle_id);
            println!("Source DB changed: no");
        }
    }
    Ok(0)
}

pub(crate) async fn proposals(g: &Global, action: ProposalsCmd) -> Result<u8> {
    match action {
        ProposalsCmd::List {
            state,
            tenant,
            limit,
            json,
        } => {
            let (ledger, _) = open_existing_ledger(g).await?;
            let list = ledger
                .list_proposals(state.as_deref(), tenant.as_deref(), limit.clamp(1, 200))
                .await?;
            if json {
                print_json(&json!({"proposals": list}));
            } else if list.is_empty() {
                println!("No proposals found.");
            } else {
                for p in &list {
                    render::proposal_line(p);
                }
            }
            Ok(0)
        }
        ProposalsCmd::Show {
            selector,
            details,
            json,
        } => {
            let (ledger, store) = open_existing_ledger(g).await?;
            let id = ledger.resolve_selector(&selector).await?;
            let replay = ledger.replay(&id).await?;
            if json {
                print_json(
                    &json!({"proposal": replay["proposal"], "events": replay["events"], "receipts": replay["receipts"], "evidence": replay["evidence"]}),
                );
            } else {
                render::proposal_show(&replay, details, &store);
            }
            Ok(0)
        }
        ProposalsCmd::WritebackJob {
            selector,
            lease_seconds,
            output,
        } => {
            crate::ledger_cmds::writeback_job(g, &selector, lease_seconds, output.as_deref()).await
        }
        ProposalsCmd::Approve(a) => decide(g, a, true).await,
        ProposalsCmd::Reject(a) => decide(g, a, false).await,
    }
}

/// The approver for CLI decisions (decision 5): explicit flags, then the operator environment,
/// then the local OS user asserting the required role at the terminal.
fn cli_approver(a: &DecideArgs, required_role: Option<&str>) -> Approver {
    let env_id = std::env::var("SYNAPSOR_OPERATOR")
        .ok()
        .filter(|s| !s.is_empty());
    let env_roles: Vec<String> = std::env::var("SYNAPSOR_OPERATOR_ROLES")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if a.as_id.is_some() || !a.roles.is_empty() {
        let id = a.as_id.clone().or(env_id).unwrap_or_else(os_user);
        // `--role` defaults to SYNAPSOR_OPERATOR_ROLES, with or without `--as`; with neither,
        // the person at the terminal asserts the required role, as without flags.
        let (roles, role_assertion) = if !a.roles.is_empty() {
            (a.roles.clone(), "cli_flags")
        } else if !env_roles.is_empty() {
            (env_roles, "operator_env")
        } else {
            (
                required_role
                    .map(|r| vec![r.to_string()])
                    .unwrap_or_default(),
                "asserted_local_cli",
            )
        };
        return Approver {
            id,
            roles,
            role_assertion: role_assertion.into(),
        };
    }
    if let Some(id) = env_id {
        return Approver {
            id,
            roles: env_roles,
            role_assertion: "operator_env".into(),
        };
    }
    Approver {
        id: os_user(),
        roles: required_role
            .map(|r| vec![r.to_string()])
            .unwrap_or_default(),
        role_assertion: "asserted_local_cli".into(),
    }
}

fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "local_operator".into())
}

fn confirm(question: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "approval/rejection requires --yes in noninteractive mode",
        ));
    }
    eprint!("{question} Type yes to continue: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| usage(&format!("cannot read confirmation: {e}")))?;
    if answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err(usage("confirmation declined"))
    }
}

pub(crate) async fn decide(g: &Global, a: DecideArgs, approve: bool) -> Result<u8> {
    let (ledger, store) = open_existing_ledger(g).await?;
    let id = ledger.resolve_selector(&a.selector).await?;
    let p = ledger.proposal(&id).await?;
    if !approve && a.reason.as_deref().map(str::trim).unwrap_or("").is_empty() {
        return Err(usage("proposals reject requires --reason <text>"));
    }
    if !a.json {
        let replay = ledger.replay_view(&id).await?;
        render::proposal_show(&replay, true, &store);
    }
    if !a.yes {
        confirm(&format!(
            "{} proposal {id}{}?",
            if approve { "Approve" } else { "Reject" },
            if approve {
                " for guarded writeback"
            } else {
                ""
            }
        ))?;
    }
    let approver = cli_approver(&a, p.change_set.approval.required_role.as_deref());
    let updated = if approve {
        ledger.approve(&id, &approver, a.reason.as_deref()).await?
    } else {
        ledger
            .reject(&id, &approver, a.reason.as_deref().unwrap_or_default())
            .await?
    };
    if a.json {
        print_json(&serde_json::to_value(&updated).unwrap_or_default());
    } else {
        println!("{} {id}", if approve { "approved" } else { "rejected" });
        println!(
            "by {} (roles: {}; {})",
            approver.id,
            if approver.roles.is_empty() {
                "none".into()
            } else {
                approver.roles.join(", ")
            },
            approver.role_assertion.replace('_', " ")
        );
    }
    Ok(0)
}

pub(crate) async fn apply(g: &Global, a: ApplyArgs) -> Result<u8> {
    let runner = open_runner(g).await?;
    let store = std::path::PathBuf::from(
        resolve_ledger(g.store.as_deref(), Some(runner.loaded_config())).to_string(),
    );
    let mut opts = ApplyOptions {
        dry_run: a.dry_run
            || std::env::var("SYNAPSOR_DRY_RUN")
                .map(|v| v == "true")
                .unwrap_or(false),
        ..ApplyOptions::default()
    };
    if let Some(r) = &a.runner {
        opts.runner_id = r.clone();
    }
    let outcome = match (&a.job, &a.selector) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(&format!("cannot read --job {}: {e}", path.display())))?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| usage(&format!("--job is not valid JSON: {e}")))?;
            let job = WritebackJob::parse(&v)?;
            runner.apply_job(&job, &opts).await?
        }
        (None, Some(sel)) => {
            let id = runner.ledger().resolve_selector(sel).await?;
            runner.apply(&id, &opts).await?
        }
        (None, None) => return Err(usage("apply requires <proposal_id|latest> or --job <path>")),
    };
    if a.json {
        print_json(
            &json!({"receipt": outcome.receipt, "executor": outcome.executor, "dry_run": outcome.dry_run, "recorded": outcome.recorded, "retryable": outcome.retryable}),
        );
    } else {
        render::apply_result(&outcome, &store);
    }
    Ok(apply_exit_code(&outcome))
}

/// `apply`'s exit code: see [`crate::exit`].
pub(crate) fn apply_exit_code(outcome: &synapsor_runner::ApplyOutcome) -> u8 {
    match outcome.receipt.status.as_str() {
        "conflict" => crate::exit::CONFLICT,
        "failed"
            if outcome.receipt.safe_error_code.as_deref() == Some("RECONCILIATION_REQUIRED") =>
        {
            crate::exit::RECONCILE
        }
        "failed" if outcome.retryable => crate::exit::RETRYABLE,
        "failed" => crate::exit::ERROR,
        _ => crate::exit::OK,
    }
}

pub(crate) async fn reconcile(g: &Global, force: bool, json_out: bool) -> Result<u8> {
    let runner = open_runner(g).await?;
    let settled = runner.reconcile(force, &ApplyOptions::default()).await?;
    if json_out {
        print_json(&json!({"reconciled": settled}));
    } else if settled.is_empty() {
        println!("Nothing to reconcile: no proposal is waiting on a writeback.");
    } else {
        for r in &settled {
            println!(
                "{} {} ({}): {}",
                r.outcome, r.proposal_id, r.writeback_job_id, r.detail
            );
        }
    }
    Ok(if settled.iter().any(|r| r.outcome == "unresolved") {
        crate::exit::RECONCILE
    } else {
        crate::exit::OK
    })
}

/// The proposal an evidence bundle belongs to (`replay show --evidence`).
pub(crate) async fn proposal_of_evidence(g: &Global, ev: &str) -> Result<String> {
    let (ledger, _) = open_existing_ledger(g).await?;
    ledger
        .evidence_bundle(ev)
        .await?
        .and_then(|b| b["proposal_id"].as_str().map(String::from))
        .ok_or_else(|| Error::Ledger {
            code: "EVIDENCE_NOT_FOUND",
            message: format!("evidence bundle {ev} is not linked to a replayable proposal"),
        })
}

pub(crate) async fn replay(
    g: &Global,
    selector: Option<String>,
    details: bool,
    json_out: bool,
) -> Result<u8> {
    let sel = selector.ok_or_else(|| {
        usage("replay show requires <proposal_id>, --proposal <proposal_id>, --replay <replay_id>, or --evidence <evidence_bundle_id>")
    })?;
    let sel = sel.strip_prefix("replay_").map(String::from).unwrap_or(sel);
    if sel.starts_with("ev_") {
        return Err(usage(
            "Use --evidence ev_… to replay from an evidence bundle.",
        ));
    }
    let (ledger, store) = open_existing_ledger(g).await?;
    let id = ledger.resolve_selector(&sel).await?;
    let record = ledger.replay(&id).await?;
    if json_out {
        print_json(&record);
    } else {
        render::replay(&record, details, &store);
    }
    Ok(0)
}
