"""examples/fastapi-billing end to end: uvicorn on loopback, httpx, real PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from conftest import ROOT

APP_DIR = ROOT / "examples" / "fastapi-billing"
USERS = {
    "agent-key": {"tenant_id": "acme", "principal": "agent:claude"},
    "lead-key": {"tenant_id": "acme", "principal": "lead_1", "roles": ["billing_lead"]},
    "globex-lead": {"tenant_id": "globex", "principal": "g_lead", "roles": ["billing_lead"]},
}


@pytest.fixture(params=["asyncio", "uvloop"])
def app_url(request, billing_db, tmp_path):
    """The example under uvicorn on each of its event loops (uvicorn[standard] picks uvloop)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ)
    env.update({
        "BILLING_APP_READ_URL": os.environ[billing_db.read_env],
        "BILLING_APP_WRITE_URL": os.environ[billing_db.write_env],
        "BILLING_APP_USERS": json.dumps(USERS),
        "SYNAPSOR_LEDGER": str(tmp_path / "app-ledger.db"),
    })
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(APP_DIR), "--host", "127.0.0.1",
         "--port", str(port), "--loop", request.param, "--log-level", "warning"],
        env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read())
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def rpc(client, key, method, params=None, id=1):
    body = {"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}
    return client.post("/mcp", json=body, headers={"Authorization": f"Bearer {key}"})


def test_fastapi_billing_example_end_to_end(app_url, billing_db):
    with httpx.Client(base_url=app_url, timeout=10) as c:
        assert c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).status_code == 401
        assert rpc(c, "agent-key", "initialize", {"protocolVersion": "2025-06-18"}).json()["result"]["serverInfo"]["name"] == "synapsor-runner"
        names = [t["name"] for t in rpc(c, "agent-key", "tools/list").json()["result"]["tools"]]
        assert names == ["billing.inspect_invoice", "billing.propose_late_fee_waiver", "billing.propose_account_credit"]
        read = rpc(c, "agent-key", "tools/call", {"name": "billing.inspect_invoice", "arguments": {"invoice_id": "INV-3001"}}).json()
        assert read["result"]["structuredContent"]["data"]["credited_cents"] == 0
        spoof = rpc(c, "agent-key", "tools/call", {"name": "billing.inspect_invoice", "arguments": {"invoice_id": "INV-9001", "tenant_id": "globex"}}).json()
        assert spoof["result"]["structuredContent"]["ok"] is False
        prop = rpc(c, "agent-key", "tools/call", {"name": "billing.propose_account_credit",
                                                  "arguments": {"invoice_id": "INV-3001", "amount_cents": 2500, "reason": "goodwill"}}).json()
        pid = prop["result"]["structuredContent"]["proposal"]["id"]
        assert billing_db.sql("SELECT count(*) FROM account_credits") == "0", "propose changes nothing"

        lead = {"Authorization": "Bearer lead-key"}
        pending = c.get("/reviews/proposals", headers=lead).json()
        assert [p["proposal_id"] for p in pending] == [pid]
        assert c.get("/reviews/proposals", headers={"Authorization": "Bearer globex-lead"}).json() == []
        r = c.post(f"/reviews/proposals/{pid}/approve", headers={"Authorization": "Bearer agent-key"})
        assert r.status_code == 403 and r.json()["code"] == "APPROVER_ROLE_MISSING"
        assert c.post(f"/reviews/proposals/{pid}/approve", headers={"Authorization": "Bearer globex-lead"}).status_code == 404
        assert c.post(f"/reviews/proposals/{pid}/approve", headers=lead).json()["state"] == "approved"
        assert c.post(f"/reviews/proposals/{pid}/apply", headers={"Authorization": "Bearer globex-lead"}).status_code == 404
        applied = c.post(f"/reviews/proposals/{pid}/apply", headers=lead).json()
        assert applied["status"] == "applied", applied
        assert billing_db.sql("SELECT count(*) || ':' || sum(amount_cents) FROM account_credits WHERE invoice_id = 'INV-3001'") == "1:2500"
        assert billing_db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'") == "2500"
        assert c.post(f"/reviews/proposals/{pid}/apply", headers=lead).json()["status"] == "already_applied"
        assert billing_db.sql("SELECT count(*) FROM account_credits") == "1"
