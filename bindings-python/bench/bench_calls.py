"""Per-call cost from Python minus the same calls from Rust (run by scripts/bench-bindings).

inspect: n sequential awaits of runner.inspect. apply: n applies through an in_process executor
whose callback only returns a receipt (sync def and async def), minus Rust's closure executor.
"""

from __future__ import annotations

import asyncio
import json
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


async def py_bench(db, kind):
    runner = await sr.Runner.open(db.config, ledger=pathlib.Path(tempfile.mkdtemp()) / f"py-{kind}.db")
    if kind == "sync":
        @runner.executor("billing_inproc")
        def noop(job, tx):
            return {"status": "applied", "rows_affected": 0, "source_database_mutated": False}
    else:
        @runner.executor("billing_inproc")
        async def noop(job, tx):
            return {"status": "applied", "rows_affected": 0, "source_database_mutated": False}
    args = {"invoice_id": "INV-3001"}
    for _ in range(50):
        await runner.inspect("billing.inspect_invoice", args, context=CTX)
    ins = []
    for _ in range(N):
        t = time.perf_counter()
        await runner.inspect("billing.inspect_invoice", args, context=CTX)
        ins.append((time.perf_counter() - t) * 1e6)
    app = []
    for i in range(min(N, 300)):
        p = await runner.propose("billing.propose_account_credit",
                                 {"invoice_id": "INV-3001", "amount_cents": 1 + i % 9000, "reason": f"bench {i}"}, context=CTX)
        await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
        t = time.perf_counter()
        out = await runner.apply(p["proposal_id"])
        app.append((time.perf_counter() - t) * 1e6)
        assert out["receipt"]["status"] == "applied"
    await runner.close()
    return statistics.median(ins), statistics.median(app)


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
    rows = {"rust": [], "sync": [], "async": []}
    for _ in range(3):  # interleaved rounds; medians of the per-round medians
        r = fresh(lambda db, tmp: json.loads(subprocess.run(
            [RUST, str(db.config), str(tmp / "rust.db"), str(N)], check=True, capture_output=True, text=True).stdout))
        rows["rust"].append((r["inspect_us"], r["apply_inproc_us"]))
        rows["sync"].append(fresh(lambda db, tmp: asyncio.run(py_bench(db, "sync"))))
        rows["async"].append(fresh(lambda db, tmp: asyncio.run(py_bench(db, "async"))))
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in rows.items()}
    (ri, ra), (si, sa), (ai, aa) = med["rust"], med["sync"], med["async"]
    pi = min(si, ai)
    print(f"inspect (n={N}, 3 rounds): Rust {ri:7.1f} µs   Python {pi:7.1f} µs   overhead {pi - ri:6.1f} µs")
    print(f"apply through in_process no-op callback (n={min(N, 300)}): Rust {ra:7.1f} µs   "
          f"Python def {sa:7.1f} µs (overhead {sa - ra:6.1f})   async def {aa:7.1f} µs (overhead {aa - ra:6.1f})")


main()
