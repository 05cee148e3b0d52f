"""API round-trips, error families, executors, rollback, concurrency, fork behaviour."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import pytest

import synapsor_runner as sr
from conftest import ACME, GLOBEX, on_loop, run


async def open_runner(db):
    return await sr.Runner.open(db.config, ledger=db.ledger)


JOB_KEYS = ["executor", "proposal_id", "writeback_job_id", "idempotency_key", "dry_run", "request", "change_set"]


def credit_sql(job):
    """The job's shape (the core's `ExecutorJob::to_json`), then the credit's values from it."""
    assert list(job) == JOB_KEYS
    request = job["request"]
    assert request["schema_version"] == "synapsor.handler-writeback.v1"
    assert [job[k] for k in JOB_KEYS[:5]] == [request[k] for k in JOB_KEYS[:5]]
    cs = job["change_set"]
    assert cs is request["change_set"]
    return cs["scope"]["object_id"], cs["scope"]["tenant_id"], cs["patch"]["credit_requested_cents"], cs["patch"]["credit_reason"]


def test_round_trip_inspect_propose_approve_apply_replay(billing_db):
    async def main():
        async with await open_runner(billing_db) as runner:
            read = await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=ACME)
            assert read["data"]["late_fee_cents"] == 5500
            assert read["context"] == {"tenant_id": "acme", "principal": "agent:acme", "provenance": "host"}
            json.dumps(read)  # plain JSON-compatible values
            p = await runner.propose(
                "billing.propose_late_fee_waiver", {"invoice_id": "INV-3001", "reason": "bank error"}, context=ACME
            )
            assert p["state"] == "pending_review" and p["duplicate"] is False
            assert billing_db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'") == "5500"
            listed = await runner.proposals(state="pending_review")
            assert [x["proposal_id"] for x in listed] == [p["proposal_id"]]
            approved = await runner.approve(p["proposal_id"], approver="lead_1", roles=["billing_lead"])
            assert approved["state"] == "approved"
            out = await runner.apply(p["proposal_id"])
            assert out["receipt"]["status"] == "applied"
            assert billing_db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'") == "0"
            again = await runner.apply(p["proposal_id"])
            assert again["receipt"]["status"] == "already_applied"
            replay = await runner.replay(p["proposal_id"])
            assert replay["proposal"]["proposal_id"] == p["proposal_id"]
            assert [t["name"] for t in runner.tools(alias_mode="openai")] == [
                "billing__inspect_invoice", "billing__propose_late_fee_waiver", "billing__propose_account_credit"]
            env = await runner.call_tool("billing__inspect_invoice", {"invoice_id": "INV-9001"}, context=ACME)
            assert env["ok"] is False and env["error"]["code"] == "NOT_FOUND_IN_TENANT"
            reject_me = await runner.propose(
                "billing.propose_account_credit", {"invoice_id": "INV-3001", "amount_cents": 5, "reason": "r"}, context=ACME)
            rejected = await runner.reject(reject_me["proposal_id"], approver="lead_1", reason="not needed")
            assert rejected["state"] == "rejected"
        assert runner.closed
        with pytest.raises(sr.SynapsorError) as e:
            await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=ACME)
        assert e.value.code == "RUNNER_CLOSED"

    run(main())


def test_connection_urls_can_be_handed_over_without_the_process_environment(billing_db, tmp_path):
    urls = {billing_db.read_env: os.environ.pop(billing_db.read_env), billing_db.write_env: os.environ.pop(billing_db.write_env)}

    async def main():
        async with await sr.Runner.open(billing_db.config, ledger=tmp_path / "env.db", env=urls) as runner:
            read = await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=ACME)
            assert read["data"]["id"] == "INV-3001"
        async with await sr.Runner.open(billing_db.config, ledger=tmp_path / "bare.db") as runner:
            with pytest.raises(sr.SynapsorError) as e:
                await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=ACME)
            assert e.value.code == "SOURCE_CREDENTIAL_MISSING"
            assert billing_db.read_env in str(e.value)

    run(main())


def test_every_error_family_has_a_stable_code(billing_db, tmp_path):
    async def main():
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"version": 1, "sources": {}, "capabilities": [{"name": "x"}]}))
        with pytest.raises(sr.ConfigError) as e:
            await sr.Runner.open(bad)
        assert e.value.code == "CONFIG_INVALID" and len(e.value.issues) >= 2
        assert all({"path", "code", "message"} <= set(i) for i in e.value.issues)
        runner = await open_runner(billing_db)
        with pytest.raises(sr.PolicyError) as e:
            await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001", "tenant_id": "globex"}, context=ACME)
        assert e.value.code == "MODEL_CANNOT_OVERRIDE_BINDING"
        with pytest.raises(sr.PolicyError) as e:
            await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"})  # host provider, no context
        assert e.value.code.startswith("TRUSTED_")
        with pytest.raises(sr.NotFoundError) as e:
            await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=GLOBEX)
        assert e.value.code == "NOT_FOUND_IN_TENANT"
        with pytest.raises(sr.NotFoundError):
            await runner.inspect("billing.nope", {}, context=ACME)
        p = await runner.propose("billing.propose_late_fee_waiver", {"invoice_id": "INV-3001", "reason": "a"}, context=ACME)
        with pytest.raises(sr.ConflictError) as e:
            await runner.propose("billing.propose_late_fee_waiver", {"invoice_id": "INV-3001", "reason": "b"}, context=ACME)
        assert e.value.code == "PROPOSAL_ALREADY_EXISTS"
        with pytest.raises(sr.ApprovalError) as e:
            await runner.approve(p["proposal_id"], approver="someone", roles=["support"])
        assert e.value.code == "APPROVER_ROLE_MISSING"
        with pytest.raises(sr.ApprovalError):
            await runner.apply(p["proposal_id"])  # not approved
        with pytest.raises(TypeError):
            await runner.inspect("billing.inspect_invoice", {"invoice_id": object()}, context=ACME)
        credit = await runner.propose(
            "billing.propose_account_credit", {"invoice_id": "INV-3001", "amount_cents": 5, "reason": "r"}, context=ACME)
        await runner.approve(credit["proposal_id"], approver="lead", roles=["billing_lead"])
        with pytest.raises(sr.ExecutorError) as e:  # in_process executor never registered
            await runner.apply(credit["proposal_id"])
        assert e.value.code
        assert isinstance(e.value, sr.SynapsorError)

    run(main())


def credit_flow(db, register):
    async def main():
        runner = await open_runner(db)
        calls = register(runner)
        p = await runner.propose(
            "billing.propose_account_credit", {"invoice_id": "INV-3001", "amount_cents": 2500, "reason": "goodwill"}, context=ACME)
        await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
        return runner, p["proposal_id"], calls

    return main


def test_sync_executor_writes_inside_the_guarded_transaction(billing_db):
    def register(runner):
        calls = []

        @runner.executor("billing_inproc")
        def credit(job, tx):
            assert isinstance(tx, sr.SyncTransaction)
            invoice, tenant, amount, reason = credit_sql(job)
            row = tx.fetch_one("SELECT customer_id FROM public.invoices WHERE id = $1 AND tenant_id = $2", [invoice, tenant])
            tx.execute(
                "INSERT INTO public.account_credits (id, tenant_id, invoice_id, customer_id, amount_cents, reason, idempotency_key, created_by) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [f"CR-{job['proposal_id'][-12:]}", tenant, invoice, row["customer_id"], amount, reason, job["idempotency_key"], "py"])
            n = tx.execute("UPDATE public.invoices SET credit_requested_cents = $1, credit_reason = $2, credited_cents = credited_cents + $1 "
                           "WHERE id = $3 AND tenant_id = $4", [amount, reason, invoice, tenant])
            calls.append(n)
            return {"status": "applied", "rows_affected": 2, "source_database_mutated": True}

        return calls

    async def main():
        runner, pid, calls = await credit_flow(billing_db, register)()
        out = await runner.apply(pid)
        assert out["receipt"]["status"] == "applied" and calls == [1]
        assert billing_db.sql("SELECT count(*) FROM account_credits WHERE amount_cents = 2500") == "1"
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "2500"
        again = await runner.apply(pid)
        assert again["receipt"]["status"] == "already_applied" and calls == [1]

    run(main())


def thread_name():
    """The operating system's name of the calling thread (Python names foreign threads Dummy-N)."""
    return pathlib.Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()


def copy_invoices(db, ids):
    db.sql("INSERT INTO invoices SELECT (jsonb_populate_record(NULL::invoices, to_jsonb(i) || jsonb_build_object('id', n))).* "
           f"FROM invoices i, unnest(ARRAY{list(ids)}) AS n WHERE i.id = 'INV-3001'")


def test_blocking_def_executors_run_side_by_side_on_their_own_threads(billing_db):
    """Four `def` callbacks block at once (more than the runtime has workers) while inspects
    still complete: they run on the binding's own threads, which the pool adds as needed."""
    ids = [f"INV-310{i}" for i in range(4)]
    copy_invoices(billing_db, ids)
    together = threading.Barrier(len(ids), timeout=30)
    release = threading.Event()
    names = []

    async def main():
        runner = await open_runner(billing_db)

        @runner.executor("billing_inproc")
        def credit(job, tx):
            names.append(thread_name())
            tx.fetch_one("SELECT 1 AS one")
            together.wait()  # BrokenBarrierError unless all four are in a callback at once
            assert release.wait(30)
            return {"status": "applied", "rows_affected": 0, "source_database_mutated": False}

        pids = []
        for invoice in ids:
            p = await runner.propose("billing.propose_account_credit",
                                     {"invoice_id": invoice, "amount_cents": 10, "reason": "side by side"}, context=ACME)
            await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
            pids.append(p["proposal_id"])
        applies = [asyncio.ensure_future(runner.apply(pid)) for pid in pids]
        while len(names) < len(ids):
            await asyncio.sleep(0.01)
        # Every callback is blocked: other calls are still served.
        reads = await asyncio.wait_for(asyncio.gather(*(
            runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=ACME) for _ in range(10))), 20)
        assert all(not a.done() for a in applies)
        release.set()
        outs = await asyncio.wait_for(asyncio.gather(*applies), 30)
        assert [o["receipt"]["status"] for o in outs] == ["applied"] * len(ids)
        assert len(reads) == 10 and all(r["object_id"] == "INV-3001" for r in reads)
        assert names == ["synapsor-def"] * len(ids), names
        await runner.close()

    run(main())


def test_def_executor_threads_keep_their_python_thread_state(billing_db):
    """A `def` callback's thread keeps its Python thread state between callbacks, so the app's
    thread-local state (a per-thread session, say) survives: each thread's counter goes up."""
    local = threading.local()
    seen = []

    async def main():
        runner = await open_runner(billing_db)

        @runner.executor("billing_inproc")
        def credit(job, tx):
            local.calls = getattr(local, "calls", 0) + 1
            seen.append((threading.get_native_id(), local.calls))
            return {"status": "applied", "rows_affected": 0, "source_database_mutated": False}

        for i in range(12):
            p = await runner.propose("billing.propose_account_credit",
                                     {"invoice_id": "INV-3001", "amount_cents": 1 + i, "reason": "again"}, context=ACME)
            await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
            assert (await runner.apply(p["proposal_id"]))["receipt"]["status"] == "applied"
        await runner.close()

    run(main())
    per_thread = {}
    for tid, calls in seen:
        per_thread[tid] = per_thread.get(tid, 0) + 1
        assert calls == per_thread[tid], seen
    assert len(per_thread) < len(seen), "some thread ran more than one callback"


def test_def_executor_past_its_timeout_fails_the_apply_and_rolls_back(billing_db, tmp_path):
    """The timeout holds for `def` callbacks too: the apply answers at the timeout (rolled back,
    HANDLER_TIMEOUT), the late callback's statements cannot reach the closed transaction, and
    the next apply works."""
    config = json.loads(pathlib.Path(billing_db.config).read_text())
    config["executors"]["billing_inproc"]["timeout_ms"] = 300
    short = tmp_path / "short-timeout.json"
    short.write_text(json.dumps(config))
    late = threading.Event()
    late_error = []

    async def main():
        runner = await sr.Runner.open(short, ledger=billing_db.ledger)
        slow = [True]

        @runner.executor("billing_inproc")
        def credit(job, tx):
            tx.execute("UPDATE public.invoices SET credited_cents = 777 WHERE id = 'INV-3001'")
            if slow[0]:
                time.sleep(1.0)
                try:
                    tx.execute("UPDATE public.invoices SET credited_cents = 888 WHERE id = 'INV-3001'")
                except sr.SynapsorError as e:
                    late_error.append(e.code)
                late.set()
            return {"status": "applied", "rows_affected": 1, "source_database_mutated": True}

        p = await runner.propose("billing.propose_account_credit",
                                 {"invoice_id": "INV-3001", "amount_cents": 5, "reason": "slow"}, context=ACME)
        await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
        started = time.monotonic()
        out = await runner.apply(p["proposal_id"])
        assert time.monotonic() - started < 0.9, "answered at the timeout, not when the callback returned"
        assert out["receipt"]["status"] == "failed" and out["receipt"]["safe_error_code"] == "HANDLER_TIMEOUT", out
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "0"
        assert await asyncio.to_thread(late.wait, 10)
        assert late_error, "the late statement was refused"
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "0"
        slow[0] = False
        again = await runner.apply(p["proposal_id"])
        assert again["receipt"]["status"] == "applied", again
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "777"
        await runner.close()

    run(main())


REQUEST_ID = contextvars.ContextVar("request_id", default=None)


def test_async_executor_runs_on_the_callers_loop(billing_db):
    def register(runner):
        calls = []

        @runner.executor("billing_inproc")
        async def credit(job, tx):
            assert isinstance(tx, sr.Transaction)
            calls.append((asyncio.get_running_loop(), REQUEST_ID.get()))
            invoice, tenant, amount, reason = credit_sql(job)
            rows = await tx.fetch_all("SELECT customer_id FROM public.invoices WHERE id = $1 AND tenant_id = $2", [invoice, tenant])
            await asyncio.sleep(0)
            await tx.execute(
                "INSERT INTO public.account_credits (id, tenant_id, invoice_id, customer_id, amount_cents, reason, idempotency_key, created_by) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [f"CR-{job['proposal_id'][-12:]}", tenant, invoice, rows[0]["customer_id"], amount, reason, job["idempotency_key"], "py"])
            return {"status": "applied", "rows_affected": 1, "source_database_mutated": True}

        return calls

    async def main():
        runner, pid, calls = await credit_flow(billing_db, register)()
        REQUEST_ID.set("req-42")  # the caller's context variables reach the coroutine
        out = await runner.apply(pid)
        assert out["receipt"]["status"] == "applied"
        assert calls == [(asyncio.get_running_loop(), "req-42")]
        assert billing_db.sql("SELECT count(*) FROM account_credits") == "1"

    run(main())


class LedgerRejected(Exception):
    pass


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_exception_in_executor_rolls_back_and_propagates_itself(billing_db, kind):
    def register(runner):
        def body(job):
            raise LedgerRejected(f"rejected {job['proposal_id']}")

        if kind == "sync":
            @runner.executor("billing_inproc")
            def credit(job, tx):
                tx.execute("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'")
                body(job)
        else:
            @runner.executor("billing_inproc")
            async def credit(job, tx):
                await tx.execute("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'")
                body(job)
        return None

    async def main():
        runner, pid, _ = await credit_flow(billing_db, register)()
        with pytest.raises(LedgerRejected) as e:
            await runner.apply(pid)
        assert pid in str(e.value)
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "0", "rolled back"
        assert billing_db.sql("SELECT count(*) FROM synapsor_writeback_receipts") == "0"
        replay = await runner.replay(pid)
        receipts = replay["receipts"]
        assert receipts and receipts[-1]["status"] == "failed"
        assert receipts[-1]["receipt"]["safe_error_code"] == "HANDLER_EXCEPTION", receipts[-1]
        assert "rejected" not in json.dumps(receipts), "no exception text in the receipt"

    run(main())


def test_async_executor_is_its_own_task_and_its_outcome_is_taken_once(billing_db):
    """An async def executor runs as the current task (so asyncio.timeout and current_task work
    in it). Its receipt or exception is handed back as its coroutine ends. A raised exception
    reaches apply and leaves nothing for the loop's exception handler. A cancellation inside the
    executor rolls back and reaches apply as CancelledError."""
    import gc

    def register(runner):
        seen = []

        @runner.executor("billing_inproc")
        async def credit(job, tx):
            task = asyncio.current_task()
            seen.append(task is not None)
            await tx.execute("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'")
            behaviour = job["change_set"]["patch"]["credit_reason"]
            if behaviour == "raise":
                raise LedgerRejected(job["proposal_id"])
            if behaviour == "cancel":
                task.cancel()
                await asyncio.sleep(0)
            return {"status": "applied", "rows_affected": 1, "source_database_mutated": True}

        return seen

    async def approved(runner, reason):
        p = await runner.propose(
            "billing.propose_account_credit", {"invoice_id": "INV-3001", "amount_cents": 2500, "reason": reason}, context=ACME)
        await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
        return p["proposal_id"]

    async def main():
        errors = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        runner, pid, seen = await credit_flow(billing_db, register)()
        out = await runner.apply(pid)
        assert out["receipt"]["status"] == "applied"
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "999"
        billing_db.sql("UPDATE invoices SET credited_cents = 0 WHERE id = 'INV-3001'")

        raising = await approved(runner, "raise")
        with pytest.raises(LedgerRejected) as e:
            await runner.apply(raising)
        assert raising in str(e.value)
        cancelled = await approved(runner, "cancel")
        with pytest.raises(asyncio.CancelledError):
            await runner.apply(cancelled)
        for failed in (raising, cancelled):
            receipts = (await runner.replay(failed))["receipts"]
            assert receipts and receipts[-1]["receipt"]["safe_error_code"] == "HANDLER_EXCEPTION", receipts
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "0", "rolled back"
        assert seen == [True, True, True]
        gc.collect()
        await asyncio.sleep(0.05)
        assert errors == []
        await runner.close()

    run(main())


class CancelsExecutorTasks(asyncio.SelectorEventLoop):
    """Cancels an async def executor's task as it is created, before its first step."""

    def create_task(self, coro, **kwargs):
        task = super().create_task(coro, **kwargs)
        if getattr(coro, "__qualname__", "").endswith("credit"):
            task.cancel()
        return task


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited")
def test_async_executor_task_cancelled_before_it_runs_still_answers_apply(billing_db):
    """A task that never ran the executor is answered from its done callback: apply gets the
    cancellation (not a lost answer), nothing was written, the receipt says HANDLER_EXCEPTION."""
    def register(runner):
        ran = []

        @runner.executor("billing_inproc")
        async def credit(job, tx):
            ran.append(job["proposal_id"])
            await tx.execute("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'")
            return {"status": "applied", "rows_affected": 1, "source_database_mutated": True}

        return ran

    async def main():
        runner, pid, ran = await credit_flow(billing_db, register)()
        with pytest.raises(asyncio.CancelledError):
            await runner.apply(pid)
        assert ran == []
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "0"
        receipts = (await runner.replay(pid))["receipts"]
        assert receipts and receipts[-1]["receipt"]["safe_error_code"] == "HANDLER_EXCEPTION", receipts
        await runner.close()

    on_loop(CancelsExecutorTasks(), main)


def test_fifty_concurrent_inspects(billing_db):
    async def main():
        runner = await open_runner(billing_db)
        results = await asyncio.gather(*[
            runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001" if i % 2 else "INV-9001"},
                           context=ACME if i % 2 else GLOBEX)
            for i in range(50)
        ])
        assert len(results) == 50
        assert {r["context"]["tenant_id"] for r in results} == {"acme", "globex"}
        assert all(r["data"]["tenant_id"] == r["context"]["tenant_id"] for r in results)

    run(main())


def test_a_conversion_interrupted_by_the_collector_converting_too(billing_db):
    """Python 3.11 collects garbage as soon as an allocation crosses the threshold, so while the
    binding builds a result's dicts, a collector callback (or a finaliser) may run code that
    converts a value of its own (here `tools()`). The dict-key cache is then in use: the inner
    conversion goes without it rather than waiting for it forever, and both come out whole."""
    async def main():
        async with await open_runner(billing_db) as runner:
            expected_tools = runner.tools()
            expected = await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=ACME)
            inner = []

            def during_collection(phase, info):
                if phase == "start":
                    inner.append(runner.tools())

            threshold = gc.get_threshold()
            gc.callbacks.append(during_collection)
            gc.set_threshold(1)
            try:
                reads = [await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=ACME)
                         for _ in range(20)]
            finally:
                gc.set_threshold(*threshold)
                gc.callbacks.remove(during_collection)
            assert len(inner) > 20 and all(t == expected_tools for t in inner)
            assert all({k: v for k, v in r.items() if k != "evidence_bundle_id"}
                       == {k: v for k, v in expected.items() if k != "evidence_bundle_id"} for r in reads)

    run(main())


class LoopWithoutReaders(asyncio.SelectorEventLoop):
    """A loop that cannot watch file descriptors (like the Windows proactor loop)."""

    def add_reader(self, *args, **kwargs):
        raise NotImplementedError


def new_loop(kind):
    """An event loop of the kind a host app runs: asyncio's own, uvloop's (what uvicorn[standard]
    runs), or one that cannot watch sockets."""
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop() if kind == "selector" else LoopWithoutReaders()


@pytest.mark.parametrize("kind", ["selector", "uvloop", "no_readers"])
def test_results_reach_every_kind_of_loop(billing_db, kind):
    # asyncio's own loop, uvloop's, and one that cannot watch sockets all get their results.
    async def main():
        runner = await open_runner(billing_db)
        results = await asyncio.gather(*[
            runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=ACME)
            for _ in range(20)
        ])
        for _ in range(20):  # sequential: each result alone
            results.append(await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-3001"}, context=ACME))
        with pytest.raises(sr.NotFoundError):
            await runner.inspect("billing.inspect_invoice", {"invoice_id": "INV-NOPE"}, context=ACME)
        assert [r["object_id"] for r in results] == ["INV-3001"] * 40
        return len(results)

    assert on_loop(new_loop(kind), main) == 40


def test_mcp_handle_serves_mcp_under_the_apps_context(billing_db):
    async def main():
        runner = await open_runner(billing_db)
        assert await runner.mcp_handle({"jsonrpc": "2.0", "method": "notifications/initialized"}, context=ACME) is None
        init = await runner.mcp_handle({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}, context=ACME)
        assert init["result"]["protocolVersion"] == "2025-06-18"
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "billing.propose_late_fee_waiver", "arguments": {"invoice_id": "INV-3001", "reason": "mcp"}}}
        res = await runner.mcp_handle(call, context=ACME)
        pid = res["result"]["structuredContent"]["proposal"]["id"]
        read = {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": f"synapsor://proposals/{pid}"}}
        assert "result" in await runner.mcp_handle(read, context=ACME)
        leaked = await runner.mcp_handle(read, context=GLOBEX)
        assert leaked["error"]["data"]["code"] == "RESOURCE_NOT_FOUND"

    run(main())


def test_fork_decision_inherited_runtime_refuses_clearly_fresh_child_works(billing_db):
    """Decision: a child forked after the runtime started gets RuntimeForkedError on every call
    (its runtime threads and pooled sockets belong to the parent); a child forked before the
    runtime started (import only, as with gunicorn --preload) works normally."""
    script = f"""
import asyncio, os, sys, json
import synapsor_runner as sr
CFG, LEDGER, CTX = {str(billing_db.config)!r}, {str(billing_db.ledger)!r}, {{"tenant_id": "acme", "principal": "p"}}
async def inspect():
    r = await sr.Runner.open(CFG, ledger=LEDGER)
    return (await r.inspect("billing.inspect_invoice", {{"invoice_id": "INV-3001"}}, context=CTX))["data"]["id"]
mode = sys.argv[1]
if mode == "fresh":
    pid = os.fork()
    if pid == 0:
        os._exit(0 if asyncio.run(inspect()) == "INV-3001" else 3)
    print(json.dumps({{"child": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}}))
else:
    asyncio.run(inspect())
    pid = os.fork()
    if pid == 0:
        try:
            asyncio.run(inspect())
            os._exit(4)
        except sr.RuntimeForkedError as e:
            os._exit(0 if e.code == "RUNTIME_FORKED" and "fork" in str(e) else 5)
    print(json.dumps({{"child": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}}))
"""
    import subprocess
    import sys
    for mode in ("fresh", "inherited"):
        out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=60, env=os.environ)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1]) == {"child": 0}, (mode, out.stdout, out.stderr)


def test_cancelled_call_runs_to_completion_and_drops_its_result(billing_db):
    """Decision: cancelling the awaitable does not abort a started call (its effects are
    recorded in the ledger); the result is dropped without an error on the loop."""
    async def main():
        runner = await open_runner(billing_db)
        errors = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        task = asyncio.ensure_future(runner.propose(
            "billing.propose_late_fee_waiver", {"invoice_id": "INV-3001", "reason": "cancel me"}, context=ACME))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(200):
            if await runner.proposals(state="pending_review"):
                break
            await asyncio.sleep(0.01)
        assert len(await runner.proposals(state="pending_review")) == 1
        await asyncio.sleep(0.05)
        assert errors == []
        await runner.close()

    run(main())


@pytest.mark.parametrize("loop_kind", ["selector", "uvloop", "no_readers"])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_executors_answer_on_every_kind_of_loop(billing_db, loop_kind, kind):
    # The receipt, and a failure, reach `apply` whichever way the loop is reached.
    def register(runner):
        seen = []

        def receipt(job):
            seen.append(job["proposal_id"])
            if len(seen) > 1:
                raise LedgerRejected(job["proposal_id"])
            return {"status": "applied", "rows_affected": 0, "source_database_mutated": False}

        if kind == "sync":
            runner.executor("billing_inproc")(lambda job, tx: receipt(job))
        else:
            async def credit(job, tx):
                await asyncio.sleep(0)
                return receipt(job)

            runner.executor("billing_inproc")(credit)
        return seen

    async def main():
        runner, pid, seen = await credit_flow(billing_db, register)()
        out = await runner.apply(pid)
        assert out["receipt"]["status"] == "applied"
        p = await runner.propose(
            "billing.propose_account_credit", {"invoice_id": "INV-3001", "amount_cents": 2600, "reason": "again"}, context=ACME)
        await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
        with pytest.raises(LedgerRejected):
            await runner.apply(p["proposal_id"])
        assert seen == [pid, p["proposal_id"]]

    on_loop(new_loop(loop_kind), main)


def test_a_callback_cannot_end_the_guarded_transaction(billing_db):
    refused = []

    async def main():
        runner = await open_runner(billing_db)

        @runner.executor("billing_inproc")
        def credit(job, tx):
            for sql in ("ROLLBACK", "commit", "/* x */ BEGIN", "SAVEPOINT s", "UPDATE public.invoices SET credited_cents = 1; COMMIT"):
                try:
                    tx.execute(sql)
                except sr.SynapsorError as e:
                    refused.append(e.code)
            n = tx.execute("UPDATE public.invoices SET credited_cents = credited_cents + 5 WHERE id = 'INV-3001'")
            return {"status": "applied", "rows_affected": n, "source_database_mutated": True}

        p = await runner.propose("billing.propose_account_credit",
                                 {"invoice_id": "INV-3001", "amount_cents": 5, "reason": "tx"}, context=ACME)
        await runner.approve(p["proposal_id"], approver="lead", roles=["billing_lead"])
        out = await runner.apply(p["proposal_id"])
        assert out["receipt"]["status"] == "applied", out
        assert refused == ["TRANSACTION_CONTROL_REFUSED"] * 5, refused
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "5"
        again = await runner.apply(p["proposal_id"])
        assert again["receipt"]["status"] == "already_applied"
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "5", "written once"
        await runner.close()

    run(main())


def test_instances_share_a_postgres_ledger(billing_db):
    """Three instances of an app on one PostgreSQL ledger: proposed through the first, listed and
    approved through the second, applied by a third process; the source is written once."""
    ledger_env = {"APP_LEDGER_URL": billing_db.url}

    async def open_instance():
        return await sr.Runner.open(
            billing_db.config, env=ledger_env, ledger_url_env="APP_LEDGER_URL", ledger_schema="app_ledger")

    async def main():
        async with await open_instance() as one, await open_instance() as two:
            p = await one.propose(
                "billing.propose_late_fee_waiver", {"invoice_id": "INV-3001", "reason": "bank error"}, context=ACME)
            listed = await two.proposals(state="pending_review")
            assert [x["proposal_id"] for x in listed] == [p["proposal_id"]]
            again = await two.propose(
                "billing.propose_late_fee_waiver", {"invoice_id": "INV-3001", "reason": "bank error"}, context=ACME)
            assert again["proposal_id"] == p["proposal_id"] and again["duplicate"] is True
            await two.approve(p["proposal_id"], approver="lead_1", roles=["billing_lead"])
            return p["proposal_id"]

    pid = run(main())
    third = subprocess.run(
        [sys.executable, "-c", (
            "import asyncio, sys, synapsor_runner as sr\n"
            "async def main():\n"
            f"    async with await sr.Runner.open({str(billing_db.config)!r}, ledger_url_env='APP_LEDGER_URL', ledger_schema='app_ledger') as r:\n"
            f"        print((await r.apply({pid!r}))['receipt']['status'])\n"
            "asyncio.run(main())\n")],
        env={**os.environ, "APP_LEDGER_URL": billing_db.url}, capture_output=True, text=True)
    assert third.returncode == 0, third.stderr
    assert third.stdout.strip() == "applied"
    assert billing_db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'") == "0"
    assert billing_db.sql(f"SELECT state FROM app_ledger.proposals WHERE proposal_id = '{pid}'") == "applied"
    assert billing_db.sql("SELECT count(*) FROM app_ledger.writeback_receipts WHERE status = 'applied'") == "1"
    assert billing_db.sql("SELECT count(*) FROM synapsor_writeback_receipts") == "1"

    async def missing():
        with pytest.raises(sr.SynapsorError) as e:
            await sr.Runner.open(billing_db.config, ledger_url_env="NOT_SET_ANYWHERE")
        assert e.value.code == "LEDGER_URL_MISSING" and "NOT_SET_ANYWHERE" in str(e.value)
        assert isinstance(e.value, sr.ConfigError)

    run(missing())


def test_eight_processes_applying_eight_at_a_time_write_once(billing_db):
    """8 processes × 8 concurrent applies of one approved proposal on a shared PostgreSQL ledger:
    one mutation, one `applied` receipt; every other attempt is `already_applied` or told that
    another apply holds the job."""
    env = {**os.environ, "APP_LEDGER_URL": billing_db.url}

    async def prepare():
        async with await sr.Runner.open(billing_db.config, ledger_url_env="APP_LEDGER_URL", env=env) as r:
            p = await r.propose("billing.propose_late_fee_waiver", {"invoice_id": "INV-3001", "reason": "race"}, context=ACME)
            await r.approve(p["proposal_id"], approver="lead_1", roles=["billing_lead"])
            return p["proposal_id"]

    pid = run(prepare())
    script = (
        "import asyncio, json, synapsor_runner as sr\n"
        "async def one(r):\n"
        "    try:\n"
        f"        rec = (await r.apply({pid!r}))['receipt']\n"
        "        return rec['status'] if rec['status'] != 'failed' else rec.get('safe_error_code')\n"
        "    except sr.SynapsorError as e:\n"
        "        return e.code\n"
        "async def main():\n"
        f"    async with await sr.Runner.open({str(billing_db.config)!r}, ledger_url_env='APP_LEDGER_URL') as r:\n"
        "        print(json.dumps(await asyncio.gather(*(one(r) for _ in range(8)))))\n"
        "asyncio.run(main())\n")
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outcomes += json.loads(out)
    assert len(outcomes) == 64
    assert outcomes.count("applied") == 1, outcomes
    # 64 applies at once may exhaust the server's connections (100 by default): such an attempt
    # fails retryably without writing; none is applied twice.
    assert set(outcomes) - {"applied", "already_applied"} <= {"DATABASE_UNAVAILABLE"}, outcomes
    assert billing_db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'") == "0"
    assert billing_db.sql("SELECT count(*) FROM synapsor.writeback_receipts WHERE status = 'applied'") == "1"
    assert billing_db.sql("SELECT count(*) FROM synapsor_writeback_receipts") == "1"


def test_the_interpreter_exits_cleanly_right_after_a_call(billing_db, tmp_path):
    """A result delivered from a runtime thread as the interpreter shuts down must not abort the
    process (it did, about one exit in ten, before deliveries were waited for at exit)."""
    script = (
        "import asyncio, sys, synapsor_runner as sr\n"
        "async def main():\n"
        f"    async with await sr.Runner.open({str(billing_db.config)!r}, ledger=sys.argv[1]) as r:\n"
        "        await r.proposals()\n"
        "asyncio.run(main())\n")
    codes = []
    for batch in range(5):
        procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"l{batch}_{i}.db")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(8)]
        codes += [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    assert [c for c in codes if c[0] != 0] == []
