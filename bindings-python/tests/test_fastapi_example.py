"""examples/fastapi-billing end to end: uvicorn on loopback, httpx, real PostgreSQL."""

from __future__ import annotations

import json
import os
import pathlib
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
    proc, url = start_instance(billing_db, None, {"SYNAPSOR_LEDGER": str(tmp_path / "app-ledger.db")},
                               loop=request.param)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


SUPPORT = ROOT / "cli" / "tests" / "support"


def in_chromium(url, authorization, listed, hidden):
    """The mounted review page in Debian's chromium (playwright-core from cli/tests/support)."""
    assert pathlib.Path("/usr/bin/chromium").exists(), "Debian's chromium is needed (scripts/test installs it)"
    if not (SUPPORT / "node_modules" / "playwright-core").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=SUPPORT, check=True)
    out = subprocess.run(["node", str(SUPPORT / "review_mounted.mjs"), url, authorization, json.dumps(listed),
                          json.dumps(hidden)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


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
        # The review screens under the same login: acme's lead sees acme's proposal, globex's not.
        assert c.get("/review/api/proposals").status_code == 401
        assert c.get("/review/", headers=lead).text.startswith("<!doctype html>")
        listed = c.get("/review/api/proposals", headers=lead).json()["proposals"]
        assert [p["proposal_id"] for p in listed] == [pid]
        assert c.get("/review/api/proposals", headers={"Authorization": "Bearer globex-lead"}).json()["proposals"] == []
        assert c.get(f"/review/api/proposals/{pid}", headers={"Authorization": "Bearer globex-lead"}).status_code == 404
        in_chromium(app_url + "/review/", "Bearer lead-key", [pid], [])
        in_chromium(app_url + "/review/", "Bearer globex-lead", [], [pid])
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


def test_the_official_mcp_python_sdk_uses_the_apps_own_route(app_url, billing_db):
    """/mcp is a Streamable HTTP endpoint: the official SDK client connects with the app's bearer
    key, lists and calls tools (results validated against outputSchema by the SDK), sees refusals
    as errors and only its own tenant."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared import exceptions

    McpError = getattr(exceptions, "MCPError", None) or getattr(exceptions, "McpError")

    def field(obj, snake, camel):
        return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)

    async def session_for(key, body):
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http:
            async with streamable_http_client(app_url + "/mcp", http_client=http) as (r, w):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    return await body(s)

    async def agent(s):
        tools = [t.name for t in (await s.list_tools()).tools]
        read = await s.call_tool("billing.inspect_invoice", {"invoice_id": "INV-3001"})
        spoof = await s.call_tool("billing.inspect_invoice", {"invoice_id": "INV-3001", "tenant_id": "globex"})
        try:
            await s.call_tool("billing.drop_everything", {})
            unknown = None
        except McpError as e:
            unknown = e.error.code
        return tools, read, spoof, unknown

    async def other_tenant(s):
        return await s.call_tool("billing.inspect_invoice", {"invoice_id": "INV-3001"})

    async def main():
        tools, read, spoof, unknown = await session_for("agent-key", agent)
        assert tools == ["billing.inspect_invoice", "billing.propose_late_fee_waiver", "billing.propose_account_credit"]
        def parts(r):
            return field(r, "is_error", "isError"), field(r, "structured_content", "structuredContent")

        is_error, env = parts(read)
        assert is_error is False and env["ok"] is True
        assert env["_meta"]["tenant_id"] == "acme"
        is_error, env = parts(spoof)
        assert is_error is True and env["ok"] is False
        assert unknown == -32602
        is_error, env = parts(await session_for("globex-lead", other_tenant))
        assert is_error is True
        assert env["error"]["code"] == "NOT_FOUND_IN_TENANT"

    asyncio.run(main())


def start_instance(billing_db, config, env_extra, loop=None):
    """The example under uvicorn on a free port (with `config`, else its own); (process, url)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ)
    env.pop("SYNAPSOR_LEDGER", None)
    env.update({
        "BILLING_APP_READ_URL": os.environ[billing_db.read_env],
        "BILLING_APP_WRITE_URL": os.environ[billing_db.write_env],
        "BILLING_APP_USERS": json.dumps(USERS),
        **({"SYNAPSOR_CONFIG": str(config)} if config else {}),
        **env_extra,
    })
    loop_args = ["--loop", loop] if loop else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(APP_DIR), "--host", "127.0.0.1",
         "--port", str(port), *loop_args, "--log-level", "warning"],
        env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
    proc.terminate()
    raise AssertionError("the app did not start")


def test_three_instances_share_one_postgres_ledger(billing_db, tmp_path):
    """Three uvicorn processes of the example, one PostgreSQL ledger: proposed through the first,
    listed and approved through the second, applied through the third, then applied again from
    all three at once: one credit."""
    cfg = json.loads((APP_DIR / "synapsor.runner.json").read_text())
    cfg["storage"] = {"engine": "postgres", "url_env": "BILLING_APP_LEDGER_URL", "schema": "app_ledger"}
    config = tmp_path / "synapsor.runner.json"
    config.write_text(json.dumps(cfg))
    instances = [start_instance(billing_db, config, {"BILLING_APP_LEDGER_URL": billing_db.url}) for _ in range(3)]
    try:
        (_, one), (_, two), (_, three) = instances
        lead = {"Authorization": "Bearer lead-key"}
        with httpx.Client(base_url=one, timeout=10) as c:
            prop = rpc(c, "agent-key", "tools/call", {"name": "billing.propose_account_credit",
                                                      "arguments": {"invoice_id": "INV-3001", "amount_cents": 700, "reason": "goodwill"}}).json()
            pid = prop["result"]["structuredContent"]["proposal"]["id"]
        with httpx.Client(base_url=two, timeout=10) as c:
            assert [p["proposal_id"] for p in c.get("/reviews/proposals", headers=lead).json()] == [pid]
            assert c.post(f"/reviews/proposals/{pid}/approve", headers=lead).json()["state"] == "approved"
        with httpx.Client(base_url=three, timeout=10) as c:
            assert c.post(f"/reviews/proposals/{pid}/apply", headers=lead).json()["status"] == "applied"
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(9) as pool:
            again = list(pool.map(
                lambda url: httpx.post(f"{url}/reviews/proposals/{pid}/apply", headers=lead, timeout=10).json()["status"],
                [u for _, u in instances] * 3))
        assert set(again) == {"already_applied"}, again
        assert billing_db.sql("SELECT count(*) || ':' || sum(amount_cents) FROM account_credits") == "1:700"
        assert billing_db.sql("SELECT count(*) FROM app_ledger.writeback_receipts WHERE status = 'applied'") == "1"
    finally:
        for proc, _ in instances:
            proc.terminate()
            proc.wait(timeout=10)
