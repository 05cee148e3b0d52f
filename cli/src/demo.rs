//! `synapsor-runner demo`: the whole lifecycle on an embedded SQLite source, in well under a second.

use crate::render::plain;
use serde_json::json;
use std::path::Path;
use std::time::Instant;
use synapsor_runner::demo::{create_demo, invoice_row, simulate_concurrent_edit};
use synapsor_runner::error::Result;
use synapsor_runner::{ApplyOptions, Approver, OpenOptions, Runner, ToolNaming, TrustedContext};

fn step(n: u32, title: &str) {
    println!();
    println!("{n}. {title}");
}

pub async fn run(dir: &Path) -> Result<u8> {
    let started = Instant::now();
    create_demo(dir)?;
    let config = dir.join("synapsor.runner.json");
    let ledger = dir.join("local.db");
    let runner = Runner::open(OpenOptions::config_path(&config).ledger(&ledger)).await?;
    let ctx = TrustedContext::from_config();
    let lead = Approver::new("billing_lead_1").role("billing_lead");

    println!("Synapsor Runner demo: embedded SQLite, no server.");
    println!(
        "Source: {}  Config: {}  Ledger: {}",
        dir.join("billing.sqlite").display(),
        config.display(),
        ledger.display()
    );
    println!(
        "Trusted context (from config, never from the model): tenant acme, principal support_agent_17"
    );
    let tools: Vec<String> =
        synapsor_runner::agent::tools::tool_list(runner.config(), ToolNaming::Canonical)
            .into_iter()
            .map(|t| t.name)
            .collect();
    println!("Tools the model sees: {}", tools.join(", "));
    println!("Not exposed: execute_sql absent, approval tools absent, commit/apply tools absent");

    step(
        1,
        "Agent inspects INV-3001 (scoped read: primary key + tenant guard)",
    );
    let read = runner
        .inspect(
            "billing.inspect_invoice",
            json!({"invoice_id": "INV-3001"}),
            &ctx,
        )
        .await?;
    for k in ["status", "late_fee_cents", "waiver_reason", "updated_at"] {
        println!(
            "   {k}: {}",
            plain(read.data.get(k).unwrap_or(&serde_json::Value::Null))
        );
    }
    println!("   evidence: {}", read.evidence_bundle_id);

    step(2, "Agent proposes waiving the late fee");
    let p = runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": "INV-3001", "reason": "customer paid within grace period"}),
            &ctx,
        )
        .await?;
    println!("   Proposal created: {}", p.proposal_id);
    for (col, d) in &p.diff {
        println!(
            "   {col}: {} -> {}",
            plain(&d["before"]),
            plain(&d["proposed"])
        );
    }
    let row = invoice_row(dir, "INV-3001")?;
    println!(
        "   Source DB changed: no (late_fee_cents is still {})",
        row["late_fee_cents"]
    );

    step(
        3,
        "A billing lead approves outside the model (required role billing_lead)",
    );
    let refused = runner
        .approve(&p.proposal_id, &Approver::new("support_agent_17"))
        .await;
    if let Err(e) = refused {
        println!(
            "   approval by support_agent_17 without the role: refused ({})",
            e.code()
        );
    }
    runner.approve(&p.proposal_id, &lead).await?;
    println!("   approved by billing_lead_1");

    step(
        4,
        "Trusted apply: one guarded UPDATE (pk + tenant + version) and a receipt, one transaction",
    );
    let applied = runner
        .apply(&p.proposal_id, &ApplyOptions::default())
        .await?;
    println!(
        "   Guarded writeback {}: rows {}, receipt {}",
        applied.receipt.status, applied.receipt.rows_affected, applied.receipt.receipt_hash
    );
    let row = invoice_row(dir, "INV-3001")?;
    println!(
        "   Source now: late_fee_cents {}, waiver_reason {}",
        row["late_fee_cents"], row["waiver_reason"]
    );

    step(5, "Retry the same apply (idempotent)");
    let retry = runner
        .apply(&p.proposal_id, &ApplyOptions::default())
        .await?;
    println!(
        "   Guarded writeback {}: rows {}",
        retry.receipt.status.replace('_', " "),
        retry.receipt.rows_affected
    );

    step(
        6,
        "Stale row: someone edits INV-3002 after the agent read it",
    );
    let stale = runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": "INV-3002", "reason": "goodwill"}),
            &ctx,
        )
        .await?;
    println!("   Proposal created: {}", stale.proposal_id);
    simulate_concurrent_edit(dir, "INV-3002")?;
    runner.approve(&stale.proposal_id, &lead).await?;
    let before = invoice_row(dir, "INV-3002")?;
    let conflict = runner
        .apply(&stale.proposal_id, &ApplyOptions::default())
        .await?;
    let after = invoice_row(dir, "INV-3002")?;
    println!(
        "   apply: {} ({}), rows {}",
        conflict.receipt.status,
        conflict.receipt.safe_error_code.as_deref().unwrap_or("-"),
        conflict.receipt.rows_affected
    );
    println!(
        "   row untouched: {}",
        if before == after { "yes" } else { "NO" }
    );

    step(7, "Cross-tenant id: INV-9001 belongs to another tenant");
    let foreign = synapsor_runner::agent::call_tool(
        &runner,
        "billing.inspect_invoice",
        json!({"invoice_id": "INV-9001"}),
        &ctx,
    )
    .await;
    println!(
        "   {} (same answer as a missing row)",
        foreign["error"]["code"].as_str().unwrap_or("?")
    );
    let spoof = synapsor_runner::agent::call_tool(
        &runner,
        "billing.inspect_invoice",
        json!({"invoice_id": "INV-3001", "tenant_id": "globex"}),
        &ctx,
    )
    .await;
    println!(
        "   spoofed tenant_id argument: {}",
        spoof["error"]["code"].as_str().unwrap_or("?")
    );

    step(
        8,
        "Replay: everything captured for the applied proposal, in order",
    );
    let replay = runner.replay(&p.proposal_id).await?;
    for e in replay["events"].as_array().into_iter().flatten() {
        println!("   {} by {}", plain(&e["kind"]), plain(&e["actor"]));
    }
    println!(
        "   evidence bundles: {}, query audit rows: {}, receipts: {}",
        replay["evidence"].as_array().map(Vec::len).unwrap_or(0),
        replay["query_audit"].as_array().map(Vec::len).unwrap_or(0),
        replay["receipts"].as_array().map(Vec::len).unwrap_or(0)
    );

    println!();
    println!(
        "Demo complete in {} ms. Try the CLI on the same files:",
        started.elapsed().as_millis()
    );
    // The config names its ledger, so `--config` is all a command needs.
    let c = config.display();
    let cmd = runnable_name();
    println!("  {cmd} proposals list --config {c}");
    println!("  {cmd} replay show latest --details --config {c}");
    println!("  {cmd} tools preview --config {c}");
    let _ = ledger;
    Ok(0)
}

/// How to run this binary as printed: `synapsor-runner` when that name on the PATH is this
/// binary (installed with `cargo install --path cli --locked`), else this binary's own path.
fn runnable_name() -> String {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("synapsor-runner"))
            .find(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok())
    });
    match (me, on_path) {
        (Some(me), Some(found)) if me == found => "synapsor-runner".into(),
        (Some(me), _) => me.display().to_string(),
        _ => "synapsor-runner".into(),
    }
}

/// Where `demo --quick` keeps its fixture ledger.
pub const QUICK_STORE: &str = "./.synapsor/quick-demo.db";
const QUICK_PROPOSAL: &str = "wrp_quick_INV_3001";
const QUICK_EVIDENCE: &str = "ev_quick_INV_3001";

/// A fixture ledger holding one pending late-fee waiver with fixed ids, made by the real
/// lifecycle on a throwaway SQLite demo (so its digests and evidence are genuine).
async fn seed_quick(store: &Path) -> Result<()> {
    use synapsor_runner::ledger::{CreateOutcome, EvidenceBundle, Ledger, QueryAudit};
    let scratch = tempfile_dir()?;
    create_demo(&scratch)?;
    let runner = Runner::open(
        OpenOptions::config_path(scratch.join("synapsor.runner.json"))
            .ledger(scratch.join("scratch.db")),
    )
    .await?;
    let made = runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": "INV-3001", "reason": "approved support waiver"}),
            &TrustedContext::from_config(),
        )
        .await?;
    let p = runner.ledger().proposal(&made.proposal_id).await?;
    let evidence = runner
        .ledger()
        .evidence_bundle(&made.evidence_bundle_id)
        .await?
        .unwrap_or_default();
    let mut cs = p.change_set.clone();
    cs.proposal_id = QUICK_PROPOSAL.into();
    cs.evidence.bundle_id = QUICK_EVIDENCE.into();
    cs.created_at = "2026-06-23T09:00:00Z".into();
    cs.integrity.proposal_hash = cs.compute_hash();
    let bundle = EvidenceBundle {
        evidence_bundle_id: QUICK_EVIDENCE.into(),
        tenant_id: cs.scope.tenant_id.clone(),
        principal: cs.principal.id.clone(),
        capability: cs.action.clone(),
        source_id: cs.source.source_id.clone(),
        source_table: format!("{}.{}", cs.source.schema, cs.source.table),
        business_object: cs.scope.business_object.clone(),
        object_id: cs.scope.object_id.clone(),
        query_fingerprint: cs.evidence.query_fingerprint.clone(),
        payload: json!({"capability": cs.action, "proposal_id": QUICK_PROPOSAL, "fixture": "quick-demo"}),
        items: evidence["items"].as_array().cloned().unwrap_or_default(),
    };
    let audit = QueryAudit {
        source_id: cs.source.source_id.clone(),
        query_fingerprint: cs.evidence.query_fingerprint.clone(),
        table_name: bundle.source_table.clone(),
        row_count: 1,
        payload: json!({"parameters_redacted": true, "proposal_id": QUICK_PROPOSAL}),
        primary_key_value: cs.scope.object_id.clone(),
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut f = store.as_os_str().to_owned();
        f.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(f));
    }
    let ledger = Ledger::open(store)?;
    match ledger.create_proposal(cs, bundle, audit).await? {
        CreateOutcome::Created(_) => {}
        CreateOutcome::Duplicate(_) => {
            return Err(synapsor_runner::Error::Internal(
                "the quick-demo ledger was not empty".into(),
            ));
        }
    }
    ledger.replay(QUICK_PROPOSAL).await?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// A fresh folder under the system's temporary directory.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "synapsor-quick-demo-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| synapsor_runner::Error::Internal(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// What the quick-demo ledger holds, as `demo --quick --json` and `demo inspect --json` print it.
fn quick_summary() -> serde_json::Value {
    json!({
        "mode": "fixture_only",
        "store": QUICK_STORE,
        "proposal_id": QUICK_PROPOSAL,
        "evidence_bundle_id": QUICK_EVIDENCE,
        "replay_id": format!("replay_{QUICK_PROPOSAL}"),
        "model_tool": "billing.propose_late_fee_waiver",
        "business_object": "invoice:INV-3001",
        "proposed_change": {"late_fee_cents": {"before": 5500, "after": 0}},
        "source_database_changed": false,
        "approval": "required outside MCP",
    })
}

/// `demo --quick`: the safety model on a fixture ledger, no database needed.
pub async fn quick(details: bool, json_out: bool) -> Result<u8> {
    seed_quick(Path::new(QUICK_STORE)).await?;
    if json_out {
        crate::shared::print_json(&quick_summary());
        return Ok(0);
    }
    if details {
        println!("Synapsor Runner quick demo is ready.");
        println!();
        println!("This is a fixture-only ledger: no database server, no MCP client.");
        println!("Raw MCP shape:");
        println!("  execute_sql(sql: string)   <- the model could write anything, anywhere");
        println!("Synapsor shape:");
        println!("  billing.inspect_invoice(invoice_id)");
        println!("  billing.propose_late_fee_waiver(invoice_id, reason)");
        println!("Agent requested:");
        println!(
            "  billing.propose_late_fee_waiver(invoice_id=\"INV-3001\", reason=\"approved support waiver\")"
        );
        println!("Trusted context:");
        println!("  tenant_id = acme");
        println!("Proposal:");
        println!("  invoice.late_fee_cents: 5500 -> 0");
        println!("Source DB changed:");
        println!("  no");
        println!("Approval:");
        println!("  required outside MCP");
        println!("Replay:");
        println!("  replay_{QUICK_PROPOSAL} captures the evidence, the diff and every step");
        println!("  Proposal id: {QUICK_PROPOSAL}");
        println!("  Evidence id: {QUICK_EVIDENCE}");
        println!("What this proves:");
        println!("  - the model proposes; it cannot commit the write");
        println!("  - tenant and principal come from trusted context, not from the model");
        println!(
            "  - approval and writeback happen outside the model, and everything is replayable"
        );
        println!("Try:");
        println!("  1. synapsor-runner proposals show latest --store {QUICK_STORE}");
        println!(
            "  2. synapsor-runner activity search --object invoice:INV-3001 --store {QUICK_STORE}"
        );
        println!("  3. synapsor-runner replay show latest --store {QUICK_STORE}");
        println!("     synapsor-runner replay show latest --details --store {QUICK_STORE}");
        println!("  synapsor-runner demo");
        return Ok(0);
    }
    println!("Synapsor quick demo complete.");
    println!();
    println!("The model asked to waive a late fee:");
    println!("billing.propose_late_fee_waiver(invoice_id=\"INV-3001\")");
    println!();
    println!("Result:");
    println!("* proposal created");
    println!("* source DB changed: no");
    println!("* approval required outside MCP");
    println!("* evidence + replay saved locally");
    println!();
    println!("Local ledger:");
    println!("{QUICK_STORE}");
    println!();
    println!("Next:");
    println!("synapsor-runner demo inspect");
    Ok(0)
}

/// `demo inspect`: seed the quick-demo ledger again and list what to look at.
pub async fn inspect(npx: bool, json_out: bool) -> Result<u8> {
    seed_quick(Path::new(QUICK_STORE)).await?;
    let prefix = if npx {
        "npx -y -p @synapsor/runner synapsor-runner"
    } else {
        "synapsor-runner"
    };
    let entries = [
        (
            "Proposal summary",
            "What the model proposed and what approval it needs.",
            format!("{prefix} proposals show latest --store {QUICK_STORE}"),
        ),
        (
            "Evidence",
            "The row the model saw when it proposed.",
            format!("{prefix} evidence show {QUICK_EVIDENCE} --store {QUICK_STORE}"),
        ),
        (
            "Activity search",
            "Everything recorded about the invoice.",
            format!("{prefix} activity search --object invoice:INV-3001 --store {QUICK_STORE}"),
        ),
        (
            "Replay",
            "Every step, in order.",
            format!("{prefix} replay show latest --store {QUICK_STORE}"),
        ),
        (
            "Approve outside MCP",
            "A reviewer approves; the model never can.",
            format!("{prefix} proposals approve latest --yes --store {QUICK_STORE}"),
        ),
        (
            "Full demo",
            "The whole lifecycle on an embedded SQLite database.",
            format!("{prefix} demo"),
        ),
        (
            "Audit risky MCP database tools",
            "What a raw SQL tool exposes.",
            format!("{prefix} audit --example dangerous-db-mcp"),
        ),
    ];
    if json_out {
        let mut summary = quick_summary();
        summary["commands"] = entries
            .iter()
            .map(|(l, d, c)| json!({"label": l, "command": c, "description": d}))
            .collect();
        crate::shared::print_json(&summary);
        return Ok(0);
    }
    println!("Quick demo inspection");
    println!("Local ledger: {QUICK_STORE}");
    for (n, (label, description, command)) in entries.iter().enumerate() {
        println!();
        println!("{}. {label}", n + 1);
        println!("   {description}");
        println!("   {command}");
    }
    Ok(0)
}
