"""A FastAPI billing app embedding synapsor_runner against PostgreSQL.

- ``POST /mcp``: MCP for agents. The app's own auth (a bearer API key here; sessions or JWTs in
  a real app) decides tenant and principal; the MCP message body never can.
- ``GET /reviews/proposals``, ``POST /reviews/proposals/{id}/approve``, ``POST .../apply``:
  reviewer routes, outside anything the model can call, with the app's own role checks.
- ``/review/``: the review page and its API (list, a proposal's story, approve, reject),
  mounted behind the same login and scoped to the reviewer's tenant.
- An in-process executor records the account credit (insert + invoice update) inside the
  runner's guarded transaction: row locked under the tenant, version checked, receipt committed
  with the writes, idempotent retries.

Run: ``BILLING_APP_READ_URL=... BILLING_APP_WRITE_URL=... BILLING_APP_USERS='{...}' uvicorn app:app``
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse

import synapsor_runner as sr
from synapsor_runner.review import Reviewer, ReviewApp

HERE = Path(__file__).resolve().parent
CONFIG = os.environ.get("SYNAPSOR_CONFIG", str(HERE / "synapsor.runner.json"))
LEDGER = os.environ.get("SYNAPSOR_LEDGER")

# API key -> user. Stand-in for the app's real identity system.
USERS: dict[str, dict[str, Any]] = json.loads(os.environ.get("BILLING_APP_USERS", "{}"))


async def credit_account(job: sr.ExecutorJob, tx: sr.Transaction) -> sr.ExecutorReceipt:
    """Same business effect as the seed's Node handler, in the guarded transaction."""
    cs = job["change_set"]
    invoice, tenant = cs["scope"]["object_id"], cs["scope"]["tenant_id"]
    amount, reason = cs["patch"]["credit_requested_cents"], cs["patch"]["credit_reason"]
    if job["dry_run"]:
        return {"status": "applied", "rows_affected": 0, "source_database_mutated": False}
    inv = await tx.fetch_one(
        "SELECT customer_id FROM public.invoices WHERE id = $1 AND tenant_id = $2", [invoice, tenant]
    )
    if inv is None:  # the core locked this row under the tenant guard; it cannot be missing
        return {"status": "failed", "safe_error_code": "INVOICE_NOT_FOUND"}
    credit_id = "CR-" + "".join(c for c in job["proposal_id"] if c.isalnum())[-12:]
    await tx.execute(
        "INSERT INTO public.account_credits (id, tenant_id, invoice_id, customer_id, amount_cents, reason, idempotency_key, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [credit_id, tenant, invoice, inv["customer_id"], amount, reason, job["idempotency_key"], cs["principal"]["id"]],
    )
    await tx.execute(
        "UPDATE public.invoices SET credit_requested_cents = $1, credit_reason = $2, credited_cents = credited_cents + $1,"
        " updated_at = now() WHERE id = $3 AND tenant_id = $4",
        [amount, reason, invoice, tenant],
    )
    return {
        "status": "applied",
        "rows_affected": 2,
        "source_database_mutated": True,
        "details": {"effects": [{"type": "db.insert", "table": "account_credits", "id": credit_id}]},
    }


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Opened per worker process, after any fork.
    runner = await sr.Runner.open(CONFIG, ledger=LEDGER)
    runner.executor("billing_inproc")(credit_account)
    app.state.runner = runner
    try:
        yield
    finally:
        await runner.close()


app = FastAPI(title="billing", lifespan=lifespan)


def current_user(request: Request) -> dict[str, Any]:
    auth = request.headers.get("authorization", "")
    user = USERS.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None
    if user is None:
        raise HTTPException(status_code=401, detail="unauthorized", headers={"WWW-Authenticate": "Bearer"})
    return user


def runner_of(request: Request) -> sr.Runner:
    return cast(sr.Runner, request.app.state.runner)


def reviewer(scope: Any) -> Reviewer | None:
    """The review screens' reviewer: the same login as every other route, scoped to its tenant."""
    auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    user = USERS.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None
    if user is None:
        return None
    return Reviewer(user["principal"], tuple(user.get("roles", [])), user["tenant_id"])


# The review page and its API (`/review/`), behind the app's login; it never applies a change.
app.mount("/review", ReviewApp(lambda: cast(sr.Runner, app.state.runner), reviewer))


@app.exception_handler(sr.SynapsorError)
async def synapsor_error(_: Request, e: sr.SynapsorError) -> JSONResponse:
    status = {sr.NotFoundError: 404, sr.ApprovalError: 403, sr.ConflictError: 409, sr.PolicyError: 422,
              sr.UnavailableError: 503}.get(type(e), 500)
    return JSONResponse({"ok": False, "code": e.code}, status_code=status)


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.post("/mcp")
async def mcp(request: Request, user: dict[str, Any] = Depends(current_user)) -> Response:
    try:
        message = await request.json()
    except ValueError:
        return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}, status_code=400)
    context = {"tenant_id": user["tenant_id"], "principal": user["principal"]}
    reply = await runner_of(request).mcp_handle(message, context=context)
    return Response(status_code=202) if reply is None else JSONResponse(reply)


async def own_proposal(runner: sr.Runner, proposal_id: str, user: dict[str, Any]) -> dict[str, Any]:
    """A proposal of the reviewer's tenant; another tenant's looks missing."""
    found = [p for p in await runner.proposals(tenant_id=user["tenant_id"], limit=500) if p["proposal_id"] == proposal_id]
    if not found:
        raise HTTPException(status_code=404, detail="proposal not found")
    return found[0]


@app.get("/reviews/proposals")
async def list_proposals(
    request: Request, state: str = "pending_review", user: dict[str, Any] = Depends(current_user)
) -> list[dict[str, Any]]:
    return await runner_of(request).proposals(state=state, tenant_id=user["tenant_id"])


@app.post("/reviews/proposals/{proposal_id}/approve")
async def approve(proposal_id: str, request: Request, user: dict[str, Any] = Depends(current_user)) -> dict[str, Any]:
    runner = runner_of(request)
    await own_proposal(runner, proposal_id, user)
    return await runner.approve(proposal_id, approver=user["principal"], roles=user.get("roles", []))


@app.post("/reviews/proposals/{proposal_id}/apply")
async def apply(proposal_id: str, request: Request, user: dict[str, Any] = Depends(current_user)) -> dict[str, Any]:
    runner = runner_of(request)
    await own_proposal(runner, proposal_id, user)
    if "billing_lead" not in user.get("roles", []):
        raise HTTPException(status_code=403, detail="billing_lead required")
    outcome = await runner.apply(proposal_id)
    return {"status": outcome["receipt"]["status"], "receipt": outcome["receipt"]}
