//! Per-call cost from Rust, the baseline for the binding benchmarks (`scripts/bench-bindings`).
//! `bench_calls <config> <ledger> <n>`: n sequential `inspect`s, then n `apply`s through an
//! `in_process` executor named `billing_inproc` whose callback only returns a receipt.
//! Prints medians in microseconds as JSON. Measured on a runtime worker thread.
//! With `BENCH_SPIN` set, a thread spins for the whole run: the baseline for bindings measured
//! with busy-wait, which keep a core busy too (on a VM an idle core is slow to wake, so a busy
//! one speeds up every wake-up, Rust's included).

use serde_json::{Value, json};
use std::time::Instant;
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
    if std::env::var_os("BENCH_SPIN").is_some() {
        std::thread::spawn(|| {
            loop {
                std::hint::spin_loop();
            }
        });
    }
    tokio::spawn(bench()).await.unwrap();
}

async fn bench() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = a[2].parse().unwrap();
    let runner = Runner::open(OpenOptions::config_path(&a[0]).ledger(&a[1]))
        .await
        .unwrap();
    static ENTERED: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    runner.register_executor("billing_inproc", |_job, _tx| async move {
        *ENTERED.lock().unwrap() = Some(Instant::now());
        Ok::<Value, synapsor_runner::apply::executor::ExecutorFailure>(
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
    // thread): `embed::start` there, result handed back over a channel. The floor of any binding.
    let foreign = {
        let (runner, ctx, args) = (runner.clone(), ctx.clone(), args.clone());
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut v = Vec::new();
            for _ in 0..n {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let (runner, ctx, args) = (runner.clone(), ctx.clone(), args.clone());
                let t = Instant::now();
                synapsor_runner::embed::start(&handle, async move {
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
        let env = runner.call_tool("billing.nope", json!({}), &ctx).await;
        refused.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(env["ok"], false);
    }
    let lead = Approver::new("lead").role("billing_lead");
    let mut apply = Vec::new();
    let (mut before_cb, mut after_cb, mut apply_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut apply_switches = 0.0;
    for i in 0..n.min(300) {
        let p = runner
            .propose("billing.propose_account_credit", json!({"invoice_id": "INV-3001", "amount_cents": 1 + (i % 9000), "reason": format!("bench {i}")}), &ctx)
            .await
            .unwrap();
        runner.approve(&p.proposal_id, &lead).await.unwrap();
        let sw = switches();
        let (t, cpu) = (Instant::now(), cpu_us());
        let out = runner
            .apply(&p.proposal_id, &ApplyOptions::default())
            .await
            .unwrap();
        let end = Instant::now();
        apply_cpu.push(cpu_us() - cpu);
        apply_switches += switches() - sw;
        let entered = ENTERED.lock().unwrap().take().unwrap();
        apply.push((end - t).as_secs_f64() * 1e6);
        before_cb.push((entered - t).as_secs_f64() * 1e6);
        after_cb.push((end - entered).as_secs_f64() * 1e6);
        assert_eq!(out.receipt.status, "applied");
    }
    println!(
        "{}",
        json!({"inspect_us": median(inspect), "inspect_foreign_us": foreign, "call_refused_us": median(refused), "apply_inproc_us": median(apply), "to_callback_us": median(before_cb), "after_callback_us": median(after_cb), "inspect_cpu_us": inspect_cpu, "apply_cpu_us": median(apply_cpu), "apply_switches": apply_switches / n.min(300) as f64})
    );
}
