//! Read-only views and upkeep of the local ledger: `receipts list|show`, `store stats|vacuum`.

use crate::shared::{open_existing_ledger, print_json, usage};
use crate::{Global, ReceiptsCmd, StoreCmd};
use serde_json::{Value, json};
use synapsor_runner::error::Result;
use synapsor_runner::ledger::ReceiptFilter;

/// `rct_000001` for receipt 1.
fn receipt_name(id: i64) -> String {
    format!("rct_{id:06}")
}

/// `7`, `rct_000007` → 7.
fn parse_receipt_id(s: &str) -> Result<i64> {
    s.strip_prefix("rct_")
        .unwrap_or(s)
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            usage("receipts show requires <receipt_id>: a positive number or rct_000001")
        })
}

pub async fn receipts(g: &Global, action: ReceiptsCmd) -> Result<u8> {
    let (ledger, store) = open_existing_ledger(g)?;
    match action {
        ReceiptsCmd::List {
            proposal,
            writeback_job,
            idempotency_key,
            status,
            from,
            to,
            limit,
            json,
        } => {
            if !(1..=200).contains(&limit) {
                return Err(usage("--limit must be a number from 1 to 200"));
            }
            let filter = ReceiptFilter {
                proposal,
                writeback_job,
                idempotency_key,
                status,
                from,
                to,
                limit,
            };
            let list = ledger.list_receipts(&filter).await?;
            if json {
                print_json(&json!({"receipts": list}));
            } else if list.is_empty() {
                println!("No receipts found in {}.", store.display());
            } else {
                for r in &list {
                    println!(
                        "{}  receipt {}  {}",
                        text(r, "created_at"),
                        r["receipt_id"],
                        text(r, "status")
                    );
                    println!(
                        "  proposal: {}  job: {}",
                        text(r, "proposal_id"),
                        text(r, "writeback_job_id")
                    );
                }
            }
        }
        ReceiptsCmd::Show {
            receipt,
            details,
            json,
        } => {
            let id = parse_receipt_id(&receipt)?;
            let r = ledger
                .receipt(id)
                .await?
                .ok_or_else(|| synapsor_runner::Error::Ledger {
                    code: "RECEIPT_NOT_FOUND",
                    message: format!("receipt not found: {receipt}"),
                })?;
            if json {
                print_json(&r);
            } else {
                show_receipt(&r, details);
            }
        }
    }
    Ok(0)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}

fn show_receipt(r: &Value, details: bool) {
    let id = r["receipt_id"].as_i64().unwrap_or_default();
    let receipt = &r["receipt"];
    let job = text(r, "writeback_job_id");
    println!("Receipt {}", receipt_name(id));
    println!("Status: {}", text(r, "status"));
    println!("Proposal: {}", text(r, "proposal_id"));
    println!(
        "Writeback: {}",
        if job.starts_with("wbj_") {
            "guarded single-row update"
        } else {
            "app-owned executor"
        }
    );
    println!("Checks:");
    println!(
        "  affected rows: {}",
        receipt["rows_affected"].as_u64().unwrap_or_default()
    );
    println!(
        "Source DB changed: {}",
        if r["source_database_mutated"] == json!(true) {
            "yes"
        } else {
            "no"
        }
    );
    if details {
        println!("Receipt: {id}");
        println!("Writeback job: {job}");
        println!("Runner: {}", text(r, "runner_id"));
        println!("Idempotency key: {}", text(r, "idempotency_key"));
        println!(
            "Safe error: {}",
            receipt["safe_error_code"].as_str().unwrap_or("none")
        );
        println!("Receipt hash: {}", text(receipt, "receipt_hash"));
        println!("Recorded at: {}", text(r, "created_at"));
    }
    println!("Next:");
    println!("  synapsor-runner replay show {}", text(r, "proposal_id"));
    if !details {
        println!("More detail:");
        println!("  synapsor-runner receipts show {id} --details");
    }
}

pub async fn store(g: &Global, action: StoreCmd) -> Result<u8> {
    let (ledger, store) = open_existing_ledger(g)?;
    match action {
        StoreCmd::Stats { json } => {
            let mut stats = ledger.stats().await?;
            stats["path"] = json!(store.display().to_string());
            if json {
                print_json(&stats);
            } else {
                println!("Local store {}", store.display());
                if let Some(tables) = stats["tables"].as_object() {
                    for (t, n) in tables {
                        println!("  {t}: {n}");
                    }
                }
                println!("approx bytes: {}", stats["approx_bytes"]);
            }
        }
        StoreCmd::Vacuum { json } => {
            let (before, after) = ledger.vacuum().await?;
            if json {
                print_json(
                    &json!({"path": store.display().to_string(), "approx_bytes_before": before, "approx_bytes_after": after}),
                );
            } else {
                println!("vacuumed local store {}", store.display());
                println!("approx bytes: {before} -> {after}");
            }
        }
    }
    Ok(0)
}
