//! Benchmark helper: median and p95 of `Runner::apply` through `sql_update`, `http_handler`
//! and `in_process` against PostgreSQL, with a fresh approved proposal per sample.
//!
//! Usage: bench_executors CONFIG ROUNDS   (env as for the billing example; the HTTP handler must run)

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use synapsor_runner::write::executor::{ExecutorFailure, ExecutorJob, GuardedTx};
use synapsor_runner::{ApplyOptions, Approver, OpenOptions, Runner, TrustedContext};

fn credit(
    job: ExecutorJob,
    tx: Option<GuardedTx>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, ExecutorFailure>> + Send>> {
    Box::pin(async move {
        let tx = tx.expect("guarded transaction");
        let cs = &job.request["change_set"];
        let fail = |e: synapsor_runner::Error| ExecutorFailure::Callback(Arc::new(e));
        let inv = cs["scope"]["object_id"].clone();
        let tenant = cs["scope"]["tenant_id"].clone();
        let row = tx
            .fetch_one(
                "SELECT customer_id FROM public.invoices WHERE id = $1 AND tenant_id = $2",
                &[inv.clone(), tenant.clone()],
            )
            .await
            .map_err(fail)?
            .unwrap();
        tx.execute(
            "INSERT INTO public.account_credits (id, tenant_id, invoice_id, customer_id, amount_cents, reason, idempotency_key, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 'bench')",
            &[json!(format!("CR-{}", job.proposal_id)), tenant.clone(), inv.clone(), row["customer_id"].clone(), cs["patch"]["credit_requested_cents"].clone(), cs["patch"]["credit_reason"].clone(), json!(job.idempotency_key)],
        )
        .await
        .map_err(fail)?;
        tx.execute("UPDATE public.invoices SET credited_cents = credited_cents + $1 WHERE id = $2 AND tenant_id = $3", &[cs["patch"]["credit_requested_cents"].clone(), inv, tenant]).await.map_err(fail)?;
        Ok(json!({"status": "applied", "rows_affected": 2, "source_database_mutated": true}))
    })
}

async fn measure(runner: &Runner, capability: &str, args: Value, rounds: usize) -> Vec<f64> {
    let ctx = TrustedContext::from_config();
    let lead = Approver::new("bench").role("billing_lead");
    let mut ms = Vec::new();
    for _ in 0..rounds {
        let p = runner
            .propose(capability, args.clone(), &ctx)
            .await
            .expect("propose");
        runner
            .approve(&p.proposal_id, &lead)
            .await
            .expect("approve");
        let t = Instant::now();
        let out = runner
            .apply(&p.proposal_id, &ApplyOptions::default())
            .await
            .expect("apply");
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(out.receipt.status, "applied", "{:?}", out.receipt);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ms
}

fn report(name: &str, ms: &[f64]) {
    let p = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "  {name:40} median {:6.2} ms   p95 {:6.2} ms   (n={})",
        p(0.5),
        p(0.95),
        ms.len()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (config, rounds) = (args[1].clone(), args[2].parse().unwrap());
    let dir = tempfile_dir();
    let text = std::fs::read_to_string(&config).unwrap();
    let mut cfg: Value = serde_json::from_str(&text).unwrap();
    let open = |cfg: &Value, name: &str| {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string(cfg).unwrap()).unwrap();
        (path, dir.join(format!("{name}.db")))
    };
    println!(
        "Runner::apply in-process (library), local PostgreSQL, fresh approved proposal per sample"
    );
    let (p, l) = open(&cfg, "sql");
    let runner = Runner::open(OpenOptions::config_path(&p).ledger(&l))
        .await
        .unwrap();
    report(
        "sql_update (late fee waiver)",
        &measure(
            &runner,
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": "INV-3001", "reason": "bench"}),
            rounds,
        )
        .await,
    );
    report(
        "http_handler (account credit, Node)",
        &measure(
            &runner,
            "billing.propose_account_credit",
            json!({"invoice_id": "INV-3001", "amount_cents": 1, "reason": "bench"}),
            rounds,
        )
        .await,
    );
    cfg["executors"]["billing_inproc"] = json!({"type": "in_process"});
    cfg["capabilities"][2]["executor"] = json!("billing_inproc");
    let (p, l) = open(&cfg, "inproc");
    let runner = Runner::open(OpenOptions::config_path(&p).ledger(&l))
        .await
        .unwrap();
    runner.register_executor("billing_inproc", credit);
    report(
        "in_process (account credit, Rust)",
        &measure(
            &runner,
            "billing.propose_account_credit",
            json!({"invoice_id": "INV-3001", "amount_cents": 1, "reason": "bench"}),
            rounds,
        )
        .await,
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("synapsor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
