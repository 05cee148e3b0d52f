//! The README's Rust example, run for real against the embedded SQLite demo. Every statement of
//! the README's `rust` block must appear in this file as written, so the two cannot drift apart.

use serde_json::json;
use synapsor_runner::{ApplyOptions, Approver, OpenOptions, Runner, TrustedContext};

// Kept as the README writes it (rustfmt would rewrap the long lines).
#[rustfmt::skip]
#[tokio::test]
async fn the_readme_rust_example_runs_as_written() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    synapsor_runner::demo::create_demo(dir.path())?;
    std::env::set_current_dir(dir.path())?;

    // From here on: the README's block, statement for statement.
    let runner = Runner::open(OpenOptions::config_path("synapsor.runner.json").ledger(".synapsor/local.db")).await?;
    let ctx = TrustedContext::new("acme", "support_agent_17");
    let read = runner.inspect("billing.inspect_invoice", json!({"invoice_id": "INV-3001"}), &ctx).await?;
    let p = runner.propose("billing.propose_late_fee_waiver", json!({"invoice_id": "INV-3001", "reason": "bank error"}), &ctx).await?;
    runner.approve(&p.proposal_id, &Approver::new("lead_1").role("billing_lead")).await?;
    let receipt = runner.apply(&p.proposal_id, &ApplyOptions::default()).await?.receipt;
    let replay = runner.replay(&p.proposal_id).await?;
    let envelope = synapsor_runner::agent::call_tool(&runner, "billing__inspect_invoice", json!({"invoice_id": "INV-3001"}), &ctx).await;

    assert_eq!(read.data["id"], json!("INV-3001"));
    assert_eq!(read.context.tenant_id, "acme");
    assert_eq!(receipt.status, "applied");
    assert_eq!(replay["proposal"]["proposal_id"], json!(p.proposal_id));
    assert_eq!(envelope["ok"], json!(true), "{envelope}");
    assert_eq!(envelope["data"]["late_fee_cents"], json!(0));
    Ok(())
}

#[test]
fn every_statement_of_the_readme_example_is_in_this_test() {
    let readme = include_str!("../../README.md");
    let this = include_str!("readme_example.rs");
    let start = readme
        .find("```rust\n")
        .expect("the README has a rust block")
        + "```rust\n".len();
    let block = &readme[start..start + readme[start..].find("```").expect("closed")];
    let mut statements = 0;
    for line in block.lines() {
        // The README's trailing comments explain; the code before them must match.
        let code = line.split(" //").next().unwrap_or_default().trim();
        if code.is_empty() || code.starts_with("use ") {
            continue;
        }
        statements += 1;
        assert!(
            this.contains(code),
            "README statement not exercised by this test: {code}"
        );
    }
    assert!(statements >= 7, "found {statements} statements");
}
