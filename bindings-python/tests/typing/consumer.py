"""A small consumer of synapsor_runner, type-checked with mypy --strict (test_stubs.py).

Lines with ``# type: ignore[...]`` must fail to type-check: mypy's --warn-unused-ignores (part of
--strict) turns an ignore that is no longer needed into an error, so the check fails if the types
get looser.
"""

from __future__ import annotations

import synapsor_runner as sr


def credit(job: sr.ExecutorJob, tx: sr.SyncTransaction) -> sr.ExecutorReceipt:
    cs = job["change_set"]
    scope, patch, guards = cs["scope"], cs["patch"], cs["guards"]
    n: int = tx.execute(
        "UPDATE public.invoices SET credited_cents = credited_cents + $1 WHERE id = $2 AND tenant_id = $3",
        [patch["credit_requested_cents"], scope["object_id"], scope["tenant_id"]],
    )
    version_column: str = guards["expected_version"]["column"]
    same: bool = job["request"]["change_set"] is cs and job["request"]["schema_version"] == "synapsor.handler-writeback.v1"
    typo = scope["objectid"]  # type: ignore[typeddict-item]
    del version_column, same, typo
    return {"status": "applied", "rows_affected": n, "source_database_mutated": True}


async def credit_async(job: sr.ExecutorJob, tx: sr.Transaction) -> sr.ExecutorReceipt:
    row = await tx.fetch_one("SELECT 1 AS one")
    return {"status": "applied" if row else "failed", "rows_affected": 1}


def bad_receipt(job: sr.ExecutorJob, tx: sr.SyncTransaction) -> sr.ExecutorReceipt:
    return {"rows_affected": 1}  # type: ignore[typeddict-item]


async def register(runner: sr.Runner) -> None:
    executors: list[sr.Executor] = [credit, credit_async]
    runner.executor("billing_sync")(credit)
    runner.executor("billing_async")(credit_async)
    del executors
