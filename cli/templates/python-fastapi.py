"""Synapsor app-owned writeback handler (FastAPI starter).

IMPORTANT: your app handler owns the final business write. Before it changes anything it must:
- check the tenant/scope of the object it touches,
- compare the expected version (guards.expected_version) inside an app-owned transaction,
- make the write idempotent on the idempotency key,
- allow only the business actions you expect,
- roll back on any error and answer with a safe error receipt.
Skipping any of these invites cross-tenant writes, lost updates, or duplicate writes.

Env: SYNAPSOR_HANDLER_TOKEN (bearer, required), SYNAPSOR_HANDLER_SIGNING_SECRET (HMAC, recommended).
Run: pip install fastapi uvicorn && uvicorn synapsor_writeback_handler:app --port 8787
"""

import datetime
import hashlib
import hmac
import json
import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

TOKEN = os.environ["SYNAPSOR_HANDLER_TOKEN"]
SECRET = os.environ.get("SYNAPSOR_HANDLER_SIGNING_SECRET")
ALLOWED_ACTIONS = {a for a in os.environ.get("SYNAPSOR_HANDLER_ACTIONS", "").split(",") if a}

# ---- Business hooks: replace the in-memory demo store with your database. -------------------
demo_rows: dict = {}  # (tenant, object_id) -> {"version": ...}
receipts: dict = {}  # idempotency key -> receipt (use a table with a UNIQUE key)


def lock_row(tenant_id, object_id, before):
    # SELECT ... FROM your_table WHERE id = %s AND tenant_id = %s FOR UPDATE (inside your transaction)
    return demo_rows.setdefault((tenant_id, object_id), {"version": (before or {}).get("updated_at")})


def apply_change(job, row):
    # Your business write, in the same transaction.
    row["version"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    return {"rows_affected": 1, "new_version": row["version"], "effects": [{"type": "demo.update", "id": job["object_id"]}]}
# ------------------------------------------------------------------------------------------------


def failed(code, status="failed", http=200, **extra):
    body = {"status": status, "rows_affected": 0, "source_database_mutated": False, "safe_error_code": code, **extra}
    return JSONResponse(body, status_code=http)


app = FastAPI()


@app.get("/healthz")
def healthz():
    return {"ok": True}


@app.post("/synapsor/writeback")
async def writeback(request: Request):
    if not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {TOKEN}"):
        return failed("UNAUTHORIZED", http=401)
    raw = await request.body()
    if SECRET:
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-synapsor-signature", ""), expected):
            return failed("INVALID_SIGNATURE", http=401)
        try:
            issued = datetime.datetime.fromisoformat(request.headers.get("x-synapsor-issued-at", "").replace("Z", "+00:00"))
            skew = abs((datetime.datetime.now(datetime.timezone.utc) - issued).total_seconds())
        except ValueError:
            skew = float("inf")
        if skew > 300:
            return failed("INVALID_ISSUED_AT", http=401)
    try:
        req = json.loads(raw or b"{}")
    except ValueError:
        return failed("BAD_JSON", http=400)
    cs = req.get("change_set") or {}
    job = {
        "action": cs.get("action"),
        "tenant_id": (cs.get("scope") or {}).get("tenant_id"),
        "object_id": (cs.get("scope") or {}).get("object_id"),
        "patch": cs.get("patch"),
        "expected": ((cs.get("guards") or {}).get("expected_version") or {}).get("value"),
        "key": req.get("idempotency_key"),
    }
    if not all([job["action"], job["tenant_id"], job["object_id"], job["patch"], job["key"]]) or job["key"] != request.headers.get("idempotency-key"):
        return failed("BAD_WRITEBACK_REQUEST", http=400)
    if ALLOWED_ACTIONS and job["action"] not in ALLOWED_ACTIONS:
        return failed("UNSUPPORTED_ACTION", http=400)
    if job["key"] in receipts:  # duplicate delivery: never write twice
        return {**receipts[job["key"]], "status": "already_applied", "rows_affected": 0, "source_database_mutated": False}
    if req.get("dry_run"):
        return {"status": "applied", "rows_affected": 0, "source_database_mutated": False}
    try:
        row = lock_row(job["tenant_id"], job["object_id"], cs.get("before"))
        if row is None:
            return failed("ROW_NOT_FOUND_OR_WRONG_TENANT", status="conflict")
        if str(row["version"]) != str(job["expected"]):
            return failed("ROW_CHANGED_AFTER_PROPOSAL", status="conflict", previous_version=row["version"])
        previous = row["version"]
        out = apply_change(job, row)
        receipt = {"status": "applied", "rows_affected": out["rows_affected"], "source_database_mutated": True,
                   "previous_version": previous, "new_version": out["new_version"], "details": {"effects": out["effects"]}}
        receipts[job["key"]] = receipt
        return receipt
    except Exception:  # never echo internal error text
        return failed("HANDLER_EXCEPTION", http=500)
