//! Benchmark helper: applies per second with W concurrent workers, each applying its own
//! approved late-fee waivers (one invoice each) through `sql_update`, with the ledger in a
//! SQLite file or in PostgreSQL. Proposals are made and approved first; only applies are timed.
//!
//! Usage: bench_apply_workers CONFIG LEDGER(sqlite|postgres) WORKERS PER_WORKER FIRST_INVOICE
//! (invoices BW-<n> for n from FIRST_INVOICE must exist; env as for the billing example;
//! the PostgreSQL ledger's URL in SYNAPSOR_BENCH_LEDGER_URL)

use serde_json::json;
use std::time::Instant;
use synapsor_runner::{ApplyOptions, Approver, OpenOptions, Runner, TrustedContext};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (config, ledger, workers, per, first): (&str, &str, usize, usize, usize) = (
        &a[1],
        &a[2],
        a[3].parse().unwrap(),
        a[4].parse().unwrap(),
        a[5].parse().unwrap(),
    );
    let dir = std::env::temp_dir().join(format!("bench-apply-{}", std::process::id()));
    let opts = match ledger {
        "postgres" => OpenOptions::config_path(config)
            .ledger_postgres("SYNAPSOR_BENCH_LEDGER_URL", "bench_ledger"),
        _ => OpenOptions::config_path(config).ledger(dir.join("ledger.db")),
    };
    let runner = Runner::open(opts).await.expect("open");
    let ctx = TrustedContext::from_config();
    let lead = Approver::new("bench").role("billing_lead");
    let mut ids = Vec::new();
    for n in first..first + workers * per {
        let p = runner
            .propose(
                "billing.propose_late_fee_waiver",
                json!({"invoice_id": format!("BW-{n}"), "reason": "bench"}),
                &ctx,
            )
            .await
            .expect("propose");
        runner
            .approve(&p.proposal_id, &lead)
            .await
            .expect("approve");
        ids.push(p.proposal_id);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in ids.chunks(per) {
        let (runner, chunk) = (runner.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for id in chunk {
                let out = runner
                    .apply(&id, &ApplyOptions::default())
                    .await
                    .expect("apply");
                assert_eq!(out.receipt.status, "applied");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  {ledger:8} ledger, {workers} workers: {} applies in {secs:.2} s = {:.0} applies/s",
        ids.len(),
        ids.len() as f64 / secs
    );
    let _ = std::fs::remove_dir_all(dir);
}
