//! Per-call cost from Rust, the baseline for the binding benchmarks (`scripts/bench-bindings`).
//! `bench_calls <config> <ledger> <n>`: n sequential `inspect`s, then n `apply`s through an
//! `in_process` executor named `billing_inproc` whose callback only returns a receipt.
//! Prints medians in microseconds as JSON. Measured on a runtime worker thread.

use serde_json::{Value, json};
use std::time::Instant;
use synapsor_runner::write::executor::GuardedTx;
use synapsor_runner::{ApplyOptions, Approver, OpenOptions, Runner, TrustedContext};

/// CPU time of the whole process (every thread), in microseconds: the work a call costs, as
/// opposed to its latency (which includes waiting for the database and for threads to wake).
fn cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

/// Context switches of every thread of the process so far (voluntary and not): each one is a
/// thread going to sleep or being woken, which costs CPU time in the kernel on a VM.
fn switches() -> f64 {
    let mut n = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines().filter(|l| l.contains("ctxt_switches")) {
            n += line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // On a runtime worker, as in a Rust service's request handler (the `main` future itself
    // runs on the main thread, where every I/O completion would cost a cross-thread wake-up).
    tokio::spawn(bench()).await.unwrap();
}

async fn bench() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = a[2].parse().unwrap();
    let runner = Runner::open(OpenOptions::config_path(&a[0]).ledger(&a[1]))
        .await
        .unwrap();
    runner.register_executor("billing_inproc", |_job, tx: Option<GuardedTx>| async move {
        *ENTERED.lock().unwrap() = Some(Instant::now());
        if STATEMENT.load(std::sync::atomic::Ordering::Relaxed) {
            let row = tx.unwrap().fetch_one("SELECT 1 AS one", &[]).await.unwrap();
            assert!(row.is_some());
        }
        Ok::<Value, synapsor_runner::write::executor::ExecutorFailure>(
            json!({"status": "applied", "rows_affected": 0, "source_database_mutated": false}),
        )
    });
    let ctx = TrustedContext::new("acme", "bench");
    let args = json!({"invoice_id": "INV-3001"});
    for _ in 0..50 {
        runner
            .inspect("billing.inspect_invoice", args.clone(), &ctx)
            .await
            .unwrap();
    }
    let mut inspect = Vec::new();
    let cpu = cpu_us();
    for _ in 0..n {
        let t = Instant::now();
        runner
            .inspect("billing.inspect_invoice", args.clone(), &ctx)
            .await
            .unwrap();
        inspect.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let inspect_cpu = (cpu_us() - cpu) / n as f64;
    // The same call started from a thread outside the runtime, as a binding does (JS or Python
    // thread): spawned on the runtime, result handed back over a channel. The floor of any
    // binding.
    let foreign = {
        let (runner, ctx, args) = (runner.clone(), ctx.clone(), args.clone());
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut v = Vec::new();
            for _ in 0..n {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let (runner, ctx, args) = (runner.clone(), ctx.clone(), args.clone());
                let t = Instant::now();
                handle.spawn(async move {
                    let r = runner.inspect("billing.inspect_invoice", args, &ctx).await;
                    tx.send(r.is_ok()).unwrap();
                });
                assert!(rx.recv().unwrap());
                v.push(t.elapsed().as_secs_f64() * 1e6);
            }
            median(v)
        })
        .await
        .unwrap()
    };
    // A call the core refuses without I/O (unknown tool): the binding's own per-call cost.
    let mut refused = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let env = synapsor_runner::agent::call_tool(&runner, "billing.nope", json!({}), &ctx).await;
        refused.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(env["ok"], false);
    }
    let lead = Approver::new("lead").role("billing_lead");
    let noop = applies(&runner, &ctx, &lead, n.min(300), 0).await;
    // The same executor running one statement in its guarded transaction (`tx.fetch_one`).
    STATEMENT.store(true, std::sync::atomic::Ordering::Relaxed);
    let stmt = applies(&runner, &ctx, &lead, n.min(300), n).await;
    println!(
        "{}",
        json!({"inspect_us": median(inspect), "inspect_foreign_us": foreign, "call_refused_us": median(refused), "apply_inproc_us": noop.apply, "to_callback_us": noop.to_callback, "after_callback_us": noop.after_callback, "inspect_cpu_us": inspect_cpu, "apply_cpu_us": noop.cpu, "apply_switches": noop.switches, "apply_stmt_us": stmt.apply, "apply_stmt_cpu_us": stmt.cpu})
    );
}

static ENTERED: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
/// The executor runs one statement (`tx.fetch_one`) before answering.
static STATEMENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Medians over applies through the in-process executor.
struct Applies {
    apply: f64,
    to_callback: f64,
    after_callback: f64,
    cpu: f64,
    /// Context switches per apply (mean).
    switches: f64,
}

/// `n` applies of fresh approved proposals (amounts offset by `first` so runs do not collide).
async fn applies(
    runner: &Runner,
    ctx: &TrustedContext,
    lead: &Approver,
    n: usize,
    first: usize,
) -> Applies {
    let (mut apply, mut before_cb, mut after_cb, mut cpu_v) = (vec![], vec![], vec![], vec![]);
    let mut sw_total = 0.0;
    for i in first..first + n {
        let p = runner
            .propose("billing.propose_account_credit", json!({"invoice_id": "INV-3001", "amount_cents": 1 + (i % 9000), "reason": format!("bench {i}")}), ctx)
            .await
            .unwrap();
        runner.approve(&p.proposal_id, lead).await.unwrap();
        let sw = switches();
        let (t, cpu) = (Instant::now(), cpu_us());
        let out = runner
            .apply(&p.proposal_id, &ApplyOptions::default())
            .await
            .unwrap();
        let end = Instant::now();
        cpu_v.push(cpu_us() - cpu);
        sw_total += switches() - sw;
        let entered = ENTERED.lock().unwrap().take().unwrap();
        apply.push((end - t).as_secs_f64() * 1e6);
        before_cb.push((entered - t).as_secs_f64() * 1e6);
        after_cb.push((end - entered).as_secs_f64() * 1e6);
        assert_eq!(out.receipt.status, "applied");
    }
    Applies {
        apply: median(apply),
        to_callback: median(before_cb),
        after_callback: median(after_cb),
        cpu: median(cpu_v),
        switches: sw_total / n as f64,
    }
}
