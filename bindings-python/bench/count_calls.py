"""What the Python binding executes per call, counted by valgrind (scripts/bench-instructions).

The timed benchmarks (bench_calls.py) measure the host as much as the code: most of the
binding's overhead there is threads being woken, which costs what the machine makes it cost.
This counts what the binding itself executes instead. callgrind counts user-space instructions,
the same count for the same binary and inputs whatever else the machine is doing (the kernel's
work, the database server and waiting are not counted).

One process per count, running one kind of call n times after a warm-up of every kind:

- `inspect`: awaited from Python (`py`), or run by Rust in a task on a runtime worker (`rust`,
  the paired benchmark's baseline, in the same process: all n in one task, so that Python's
  one call to start them cancels out);
- an executor apply (a fresh proposal each time, proposed and approved first): the executor is a
  `def` (`def`) or an `async def` (`async`) returning a receipt, or the Rust answer given at
  once (`rust-apply`, the paired round trip's baseline). The difference is the callback's round
  trip: the job handed to Python, the call, the receipt handed back.

Two values of n: the difference divided by the difference in n is the count per call, with
start-up, warm-up and shutdown cancelled out.

Rust's `inspect`s run natively, many more of them, give the user-space CPU time per call
(`getrusage`), and so how many instructions this machine runs per microsecond: what the
binding's counts cost here. (The binding's CPU time itself is not measured this way: CPU time
per call moves between runs by more than the binding's share.)
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import resource
import statistics
import subprocess
import sys
import tempfile

CTX = {"tenant_id": "acme", "principal": "bench"}
ARGS = {"invoice_id": "INV-3001"}
RECEIPT = {"status": "applied", "rows_affected": 0, "source_database_mutated": False}
WARMUP = int(os.environ.get("WARMUP", "30"))


async def child(who: str, n: int, config: str, ledger: str) -> None:
    import synapsor_runner as sr

    runner = await sr.Runner.open(config, ledger=ledger)
    if who == "async":
        @runner.executor("billing_inproc")
        async def answer(job, tx):
            return RECEIPT
    else:
        @runner.executor("billing_inproc")
        def answer(job, tx):
            return RECEIPT
    applied = [0]

    async def apply(rust: bool) -> None:
        applied[0] += 1
        p = await runner.propose("billing.propose_account_credit",
                                 {"invoice_id": "INV-3001", "amount_cents": 1 + applied[0] % 9000, "reason": "count"}, context=CTX)
        await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
        assert runner._native._bench_baseline("billing_inproc", rust)
        out = await runner.apply(p["proposal_id"])
        assert out["receipt"]["status"] == "applied", out

    async def inspect(rust: bool) -> None:
        if rust:
            await runner._native._bench_inspect_on_worker("billing.inspect_invoice", ARGS, CTX)
        else:
            out = await runner.inspect("billing.inspect_invoice", ARGS, context=CTX)
            assert out["object_id"] == "INV-3001"

    for _ in range(WARMUP):  # every kind warmed, so each count's start-up is the same
        await inspect(True)
        await inspect(False)
        await apply(True)
        await apply(False)
    t0 = resource.getrusage(resource.RUSAGE_SELF)
    if who == "rust":
        await runner._native._bench_inspect_on_worker("billing.inspect_invoice", ARGS, CTX, n)
    else:
        for _ in range(n):
            await (inspect(False) if who == "py" else apply(who == "rust-apply"))
    t1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"user_us": (t1.ru_utime - t0.ru_utime) * 1e6, "system_us": (t1.ru_stime - t0.ru_stime) * 1e6}))
    await runner.close()


def user_cpu(who: str, n: int, config: pathlib.Path, tmp: pathlib.Path) -> float:
    """User-space CPU per call (µs) of n calls run natively, every thread."""
    out = subprocess.run([sys.executable, __file__, "--child", who, str(n), str(config), str(tmp / f"ledger.{who}.cpu.db")],
                         check=True, capture_output=True, text=True).stdout
    times = json.loads(out.strip().splitlines()[-1])
    return times["user_us"] / n


def count(who: str, n: int, config: pathlib.Path, tmp: pathlib.Path) -> int:
    """User-space instructions of one child process, every thread (callgrind's total)."""
    out = tmp / f"callgrind.{who}.{n}"
    ledger = tmp / f"ledger.{who}.{n}.db"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--child", who, str(n), str(config), str(ledger)],
        check=True, stdout=subprocess.DEVNULL)
    totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
    assert totals, f"no total in {out}"
    return int(totals.group(1))


def main() -> None:
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
    from conftest import BillingDb

    sizes = {"inspect": (int(os.environ.get("N_SMALL", "200")), int(os.environ.get("N_LARGE", "1200"))),
             "apply": (int(os.environ.get("N_APPLY_SMALL", "50")), int(os.environ.get("N_APPLY_LARGE", "250")))}
    calls = os.environ.get("CALLS", "inspect,apply").split(",")  # which kinds of call to count
    kinds = {who: kind for who, kind in {"rust": "inspect", "py": "inspect", "rust-apply": "apply", "def": "apply",
                                         "async": "apply"}.items() if kind in calls}
    repeats = int(os.environ.get("REPEATS", "3"))
    native = int(os.environ.get("N_NATIVE", "3000"))
    per_call = {who: [] for who in kinds}
    user, rates = [], []
    for _ in range(repeats):
        tmp = pathlib.Path(tempfile.mkdtemp())
        db = BillingDb(tmp)
        try:
            for who, kind in kinds.items():
                small, large = sizes[kind]
                lo, hi = count(who, small, db.config, tmp), count(who, large, db.config, tmp)
                per_call[who].append((hi - lo) / (large - small))
            # instructions per µs: Rust's inspect counted (here, if not above), then run natively
            small, large = sizes["inspect"]
            rust = per_call["rust"][-1] if "rust" in kinds else (
                (count("rust", large, db.config, tmp) - count("rust", small, db.config, tmp)) / (large - small))
            user.append(user_cpu("rust", native, db.config, tmp))
            rates.append(rust / user[-1])
        finally:
            db.drop()
    med = {who: statistics.median(v) for who, v in per_call.items()}
    rate = statistics.median(rates)

    def line(label: str, who: str, base: str) -> None:
        runs = ", ".join(f"{p - r:,.0f}" for p, r in zip(per_call[who], per_call[base]))
        print(f"  {label}: {med[who]:,.0f} against Rust's {med[base]:,.0f}: {med[who] - med[base]:+,.0f} "
              f"(per repeat: {runs}), about {(med[who] - med[base]) / rate:.0f} µs of CPU here")

    print(f"Instructions per call (callgrind, user space, every thread; {repeats} repeats), "
          f"Python minus Rust in the same process:")
    if "inspect" in calls:
        line(f"await runner.inspect (n={sizes['inspect'][0]} and {sizes['inspect'][1]})", "py", "rust")
    if "apply" in calls:
        line(f"apply with a def executor (n={sizes['apply'][0]} and {sizes['apply'][1]})", "def", "rust-apply")
        line("apply with an async def executor", "async", "rust-apply")
    print(f"  Rust's inspect run natively (n={native}): {statistics.median(user):.0f} µs of user-space CPU, "
          f"so about {rate:,.0f} instructions per µs here")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]))
    else:
        main()
