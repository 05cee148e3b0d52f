"""Per-call cost from Python minus the same calls from Rust (run by scripts/bench-bindings).

inspect: n sequential awaits of runner.inspect, minus the Rust process; and paired on one runner
with the same call run by Rust on a runtime worker. apply: n applies through an in_process
executor whose callback only returns a receipt (sync def and async def), minus Rust's closure
executor; and paired on one runner with a Rust answer given at once (the round trip alone).
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from conftest import BillingDb  # noqa: E402

import synapsor_runner as sr  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
RUST = sys.argv[1]
CTX = {"tenant_id": "acme", "principal": "bench"}
#: The event loop (env LOOP: "asyncio", the default, or "uvloop", which uvicorn[standard] uses).
LOOP = os.environ.get("LOOP", "asyncio")
if LOOP not in ("asyncio", "uvloop"):
    raise SystemExit(f"LOOP must be asyncio or uvloop, not {LOOP!r}")


def run(coro):
    if LOOP == "uvloop":
        import uvloop
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
            return r.run(coro)
    return asyncio.run(coro)


async def py_bench(db, kind):
    runner = await sr.Runner.open(db.config, ledger=pathlib.Path(tempfile.mkdtemp()) / f"py-{kind}.db")
    entered = [0.0]
    statement = False  # the executor runs one statement (tx.fetch_one) before answering
    if kind == "sync":
        @runner.executor("billing_inproc")
        def noop(job, tx):
            entered[0] = time.perf_counter()
            if statement:
                assert tx.fetch_one("SELECT 1 AS one") == {"one": 1}
            return {"status": "applied", "rows_affected": 0, "source_database_mutated": False}
    else:
        @runner.executor("billing_inproc")
        async def noop(job, tx):
            entered[0] = time.perf_counter()
            if statement:
                assert await tx.fetch_one("SELECT 1 AS one") == {"one": 1}
            return {"status": "applied", "rows_affected": 0, "source_database_mutated": False}
    args = {"invoice_id": "INV-3001"}
    for _ in range(50):
        await runner.inspect("billing.inspect_invoice", args, context=CTX)
    ins = []
    cpu = time.process_time()
    for _ in range(N):
        t = time.perf_counter()
        await runner.inspect("billing.inspect_invoice", args, context=CTX)
        ins.append((time.perf_counter() - t) * 1e6)
    ins_cpu = (time.process_time() - cpu) / N * 1e6
    # inspect paired on this runner: the same call run by Rust in a task on a runtime worker
    # (timed there), alternating with the call from Python; each pair's difference is the
    # binding's overhead alone, on the same database and ledger, a millisecond apart.
    ins_pairs = []
    for i in range(N):
        timed = {}
        for who in (("rust", "py") if i % 2 == 0 else ("py", "rust")):
            if who == "rust":
                timed[who] = await runner._native._bench_inspect_on_worker("billing.inspect_invoice", args, CTX)
            else:
                t = time.perf_counter()
                await runner.inspect("billing.inspect_invoice", args, context=CTX)
                timed[who] = (time.perf_counter() - t) * 1e6
        ins_pairs.append(timed["py"] - timed["rust"])
    refused = []
    for _ in range(N):
        t = time.perf_counter()
        env = await runner.call_tool("billing.nope", {}, context=CTX)
        refused.append((time.perf_counter() - t) * 1e6)
        assert env["ok"] is False
    app, to_cb, after_cb, app_cpu = await applies(runner, entered, min(N, 300), 0)
    statement = True
    stmt, _, _, stmt_cpu = await applies(runner, entered, min(N, 300), N)
    # The callback round trip alone: this runner alternates the callback with a Rust answer given
    # at once (a switch on the registered executor, nothing re-registered), one apply each, order
    # alternating; each pair's difference is what crossing into Python and back costs, on the
    # same loop, database and ledger, a millisecond apart.
    statement = False
    pairs, cpu_pairs = [], []
    for i in range(min(N, 300)):
        timed = {}
        for who in (("rust", "py") if i % 2 == 0 else ("py", "rust")):
            assert runner._native._bench_baseline("billing_inproc", who == "rust")
            lat, _, _, cpu = await applies(runner, entered, 1, 2 * N + 2 * i + (who == "py"))
            timed[who] = (lat[0], cpu[0])
        pairs.append(timed["py"][0] - timed["rust"][0])
        cpu_pairs.append(timed["py"][1] - timed["rust"][1])
    await runner.close()
    return (statistics.median(ins), statistics.median(app), statistics.median(refused),
            statistics.median(to_cb), statistics.median(after_cb), ins_cpu, statistics.median(app_cpu),
            statistics.median(stmt), statistics.median(stmt_cpu),
            statistics.median(pairs), statistics.median(cpu_pairs), statistics.median(ins_pairs))


async def applies(runner, entered, n, first):
    """n applies of fresh approved proposals: latency, to and after the callback, CPU (µs)."""
    app, to_cb, after_cb, app_cpu = [], [], [], []
    for i in range(first, first + n):
        p = await runner.propose("billing.propose_account_credit",
                                 {"invoice_id": "INV-3001", "amount_cents": 1 + i % 9000, "reason": f"bench {i}"}, context=CTX)
        await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
        t, cpu = time.perf_counter(), time.process_time()
        out = await runner.apply(p["proposal_id"])
        end = time.perf_counter()
        app_cpu.append((time.process_time() - cpu) * 1e6)
        app.append((end - t) * 1e6)
        to_cb.append((entered[0] - t) * 1e6)
        after_cb.append((end - entered[0]) * 1e6)
        assert out["receipt"]["status"] == "applied"
    return app, to_cb, after_cb, app_cpu


def fresh(fn):
    """Each measurement on its own fresh database: row versions and receipt rows from earlier
    runs would otherwise slow later ones down (measured: +20% after two runs)."""
    tmp = pathlib.Path(tempfile.mkdtemp())
    db = BillingDb(tmp)
    try:
        return fn(db, tmp)
    finally:
        db.drop()


def main():
    rounds = int(os.environ.get("ROUNDS", "5"))
    rows = {"rust": [], "sync": [], "async": []}
    for _ in range(rounds):  # interleaved rounds
        r = fresh(lambda db, tmp: json.loads(subprocess.run(
            [RUST, str(db.config), str(tmp / "rust.db"), str(N)], check=True, capture_output=True, text=True).stdout))
        rows["rust"].append((r["inspect_us"], r["apply_inproc_us"], r["call_refused_us"],
                             r["to_callback_us"], r["after_callback_us"], r["inspect_cpu_us"], r["apply_cpu_us"],
                             r["apply_stmt_us"], r["apply_stmt_cpu_us"]))
        rows["sync"].append(fresh(lambda db, tmp: run(py_bench(db, "sync"))))
        rows["async"].append(fresh(lambda db, tmp: run(py_bench(db, "async"))))

    # Per-round differences against the Rust run of the same round (the database server's
    # latency drifts between rounds on a shared VM), then the median over rounds.
    def diff(kind, i):
        return statistics.median(r[i] - rust[i] for r, rust in zip(rows[kind], rows["rust"]))

    def rust(i):
        return statistics.median(r[i] for r in rows["rust"])

    def own(kind, i):
        return statistics.median(r[i] for r in rows[kind])

    print(f"Python binding overhead vs Rust, {rounds} rounds, median of per-round differences (absolute medians in brackets):")
    print(f"  refused call (no I/O, n={N}): {min(diff('sync', 2), diff('async', 2)):7.1f} µs  [Rust {rust(2):7.1f}]")
    print(f"  inspect (n={N}):              {min(diff('sync', 0), diff('async', 0)):7.1f} µs  [Rust {rust(0):7.1f}]")
    print(f"    paired on one runner (alternating with the same call run by Rust on a runtime worker, "
          f"median of paired differences, n={N}): {min(own('sync', 11), own('async', 11)):7.1f} µs")
    print(f"  apply via no-op in_process executor (n={min(N, 300)}): def {diff('sync', 1):7.1f} µs, "
          f"async def {diff('async', 1):7.1f} µs  [Rust {rust(1):7.1f}]")
    # An apply pays what every call pays (one wake-up of the loop for the result, its conversion;
    # the inspect line) plus the round trip into the callback and back.
    print(f"    of which the callback round trip (minus the inspect overhead of the same run): "
          f"def {diff('sync', 1) - diff('sync', 0):7.1f} µs, async def {diff('async', 1) - diff('async', 0):7.1f} µs")
    print(f"    measured from Python, up to the callback: def {diff('sync', 3):7.1f} µs, async def {diff('async', 3):7.1f} µs; "
          f"after it: def {diff('sync', 4):7.1f} µs, async def {diff('async', 4):7.1f} µs  "
          f"[Rust {rust(3):7.1f} / {rust(4):7.1f}]")
    print(f"    the callback round trip alone (same runner, alternating with a Rust executor that answers at once, "
          f"median of paired differences, n={min(N, 300)}): def {own('sync', 9):7.1f} µs, async def {own('async', 9):7.1f} µs; "
          f"CPU def {own('sync', 10):7.1f} µs, async def {own('async', 10):7.1f} µs")
    print(f"  apply via an executor running one statement (tx.fetch_one, n={min(N, 300)}): def {diff('sync', 7):7.1f} µs, "
          f"async def {diff('async', 7):7.1f} µs  [Rust {rust(7):7.1f}]")
    print(f"    of which the statement (minus the no-op apply of the same run): "
          f"def {diff('sync', 7) - diff('sync', 1):7.1f} µs, async def {diff('async', 7) - diff('async', 1):7.1f} µs")
    # CPU time of the whole process per call (every thread): work, as opposed to waiting.
    print(f"  CPU per call (process, all threads): inspect {min(diff('sync', 5), diff('async', 5)):7.1f} µs "
          f"[Rust {rust(5):7.1f}], apply def {diff('sync', 6):7.1f} µs, async def {diff('async', 6):7.1f} µs "
          f"[Rust {rust(6):7.1f}]; apply with a statement def {diff('sync', 8):7.1f} µs, async def {diff('async', 8):7.1f} µs "
          f"[Rust {rust(8):7.1f}]")


main()
