"""Instructions per `inspect`, Python minus Rust, counted by valgrind (scripts/bench-instructions).

The timed benchmarks (bench_calls.py) measure the host as much as the code: most of the
binding's overhead there is threads being woken, which costs what the machine makes it cost.
This counts what the binding itself executes instead. callgrind counts user-space instructions,
the same count for the same binary and inputs whatever else the machine is doing (the kernel's
work, the database server and waiting are not counted).

One process per count: `inspect` run n times either from Python (`await runner.inspect`) or by
Rust in a task on a runtime worker (the paired benchmark's baseline, in the same process), for
two values of n; the difference divided by the difference in n is the count per call, with
start-up, warm-up and shutdown cancelled out. The runner is opened with `prewake=False`: the
pre-wake's loop turns are spinning while waiting (their count depends on timing, not on the
call), so this is the binding's own work without them.

Rust's calls run natively, many more of them, give the user-space CPU time per call
(`getrusage`), and so how many instructions this machine runs per microsecond: what the
binding's count costs here. (The binding's CPU time itself is not measured this way: CPU time
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
WARMUP = int(os.environ.get("WARMUP", "30"))


async def child(who: str, n: int, config: str, ledger: str) -> None:
    import synapsor_runner as sr

    runner = await sr.Runner.open(config, ledger=ledger, prewake=False)
    for _ in range(WARMUP):  # both kinds warmed, so each count's start-up is the same
        await runner.inspect("billing.inspect_invoice", ARGS, context=CTX)
        await runner._native._bench_inspect_on_worker("billing.inspect_invoice", ARGS, CTX)
    t0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(n):
        if who == "py":
            out = await runner.inspect("billing.inspect_invoice", ARGS, context=CTX)
            assert out["object_id"] == "INV-3001"
        else:
            await runner._native._bench_inspect_on_worker("billing.inspect_invoice", ARGS, CTX)
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

    small, large = int(os.environ.get("N_SMALL", "200")), int(os.environ.get("N_LARGE", "1200"))
    repeats = int(os.environ.get("REPEATS", "3"))
    native = int(os.environ.get("N_NATIVE", "3000"))
    per_call = {"rust": [], "py": []}
    user = []
    for _ in range(repeats):
        tmp = pathlib.Path(tempfile.mkdtemp())
        db = BillingDb(tmp)
        try:
            for who in ("rust", "py"):
                lo, hi = count(who, small, db.config, tmp), count(who, large, db.config, tmp)
                per_call[who].append((hi - lo) / (large - small))
            user.append(user_cpu("rust", native, db.config, tmp))
        finally:
            db.drop()
    rust, py = statistics.median(per_call["rust"]), statistics.median(per_call["py"])
    runs = ", ".join(f"{p - r:,.0f}" for p, r in zip(per_call["py"], per_call["rust"]))
    print(f"Instructions per inspect (callgrind, user space, every thread; n={small} and n={large}, "
          f"{repeats} repeats, prewake=False):")
    print(f"  Rust on a runtime worker: {rust:,.0f}")
    print(f"  Python await runner.inspect: {py:,.0f}")
    print(f"  Python minus Rust: {py - rust:,.0f} (per repeat: {runs})")
    rate = rust / statistics.median(user)
    print(f"Rust's inspect run natively (n={native}, {repeats} repeats): {statistics.median(user):.0f} µs of user-space CPU, "
          f"so about {rate:,.0f} instructions per µs here; Python minus Rust is about {(py - rust) / rate:.0f} µs of CPU")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]))
    else:
        main()
