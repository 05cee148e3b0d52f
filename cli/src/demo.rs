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
    let tools: Vec<String> = runner
        .tools(ToolNaming::Canonical)
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
    let foreign = runner
        .call_tool(
            "billing.inspect_invoice",
            json!({"invoice_id": "INV-9001"}),
            &ctx,
        )
        .await;
    println!(
        "   {} (same answer as a missing row)",
        foreign["error"]["code"].as_str().unwrap_or("?")
    );
    let spoof = runner
        .call_tool(
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
