"""Drive `synapsor-runner mcp serve-streamable-http` with the official MCP Python SDK, plus raw
HTTP probes of the hardening (401/403/406/413/415/429, session binding and expiry).

argv: URL TOKEN_ACME TOKEN_GLOBEX LIMITED_URL. Prints one JSON object the Rust test asserts on.
"""
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def field(obj, snake, camel):
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def structured(r):
    return field(r, "structured_content", "structuredContent")


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}


def raw(url, body=None, token=None, session=None, headers=None, method="POST", data=None):
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if token:
        h["authorization"] = f"Bearer {token}"
    if session:
        h["mcp-session-id"] = session
    h.update(headers or {})
    if data is None and body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def header(headers, name):
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


async def sdk_session(url, token, fn):
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await fn(session)


async def main():
    url, tok_acme, tok_globex, limited = sys.argv[1:5]
    out = {}

    async def acme(session):
        o = {}
        tools = await session.list_tools()
        o["tools"] = [t.name for t in tools.tools]
        o["output_schema"] = field(tools.tools[0], "output_schema", "outputSchema")
        o["inspect"] = structured(await session.call_tool("billing.inspect_invoice", {"invoice_id": "INV-3001"}))
        o["propose"] = structured(await session.call_tool(
            "billing.propose_late_fee_waiver", {"invoice_id": "INV-3001", "reason": "http test"}))
        o["spoof"] = structured(await session.call_tool(
            "billing.inspect_invoice", {"invoice_id": "INV-3001", "tenant_id": "globex"}))
        o["unknown_arg"] = structured(await session.call_tool(
            "billing.inspect_invoice", {"invoice_id": "INV-3001", "where": "1=1"}))
        pid = o["propose"]["proposal"]["id"]
        res = await session.read_resource(f"synapsor://proposals/{pid}")
        o["resource"] = json.loads(res.contents[0].text)
        return o

    out["acme"] = await sdk_session(url, tok_acme, acme)
    pid = out["acme"]["propose"]["proposal"]["id"]

    async def globex(session):
        o = {}
        try:
            await session.read_resource(f"synapsor://proposals/{pid}")
            o["leaked_handle"] = "read"
        except Exception as e:
            o["leaked_handle"] = str(e)
            o["leaked_handle_data"] = getattr(getattr(e, "error", None), "data", None)
        o["foreign_inspect"] = structured(await session.call_tool("billing.inspect_invoice", {"invoice_id": "INV-3001"}))
        o["own_inspect"] = structured(await session.call_tool("billing.inspect_invoice", {"invoice_id": "INV-9001"}))
        return o

    out["globex"] = await sdk_session(url, tok_globex, globex)

    # Raw hardening probes on the main server.
    base = url.rsplit("/", 1)[0]
    out["healthz"] = raw(base + "/healthz", method="GET")[0]
    out["no_token"] = raw(url, INIT)[0]
    status, headers, _ = raw(url, INIT, token="wrong-token")
    out["wrong_token"] = status
    out["www_authenticate"] = header(headers, "www-authenticate")
    out["bad_origin"] = raw(url, INIT, token=tok_acme, headers={"origin": "http://evil.example"})[0]
    out["bad_host"] = raw(url, INIT, token=tok_acme, headers={"host": "evil.example"})[0]
    out["no_accept"] = raw(url, INIT, token=tok_acme, headers={"accept": "application/json"})[0]
    out["bad_content_type"] = raw(url, INIT, token=tok_acme, headers={"content-type": "text/plain"})[0]
    out["not_initialize_first"] = raw(url, LIST, token=tok_acme)[0]
    status, headers, body = raw(url, INIT, token=tok_acme)
    sid = header(headers, "mcp-session-id")
    out["init_status"] = status
    out["init_content_type"] = header(headers, "content-type")
    out["init_body"] = body
    out["list_same_token"] = raw(url, LIST, token=tok_acme, session=sid)[0]
    out["list_other_tenant_token"] = raw(url, LIST, token=tok_globex, session=sid)[0]
    out["unknown_session"] = raw(url, LIST, token=tok_acme, session="00000000-0000-4000-8000-000000000000")[0]
    out["notification"] = raw(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, token=tok_acme, session=sid)[0]
    out["reinitialize"] = raw(url, INIT, token=tok_acme, session=sid)[0]
    out["get_stream"] = raw(url, token=tok_acme, session=sid, method="GET")[0]
    out["delete"] = raw(url, token=tok_acme, session=sid, method="DELETE")[0]
    out["after_delete"] = raw(url, LIST, token=tok_acme, session=sid)[0]

    # Limited server: 4 requests per minute per tenant, sessions idle out after 1 s, 4 KiB bodies.
    status, headers, _ = raw(limited, INIT, token=tok_acme)                     # 1
    sid = header(headers, "mcp-session-id")
    time.sleep(1.5)
    out["expired_session"] = raw(limited, LIST, token=tok_acme, session=sid)[0]  # 2
    status, headers, _ = raw(limited, INIT, token=tok_acme)                     # 3
    sid = header(headers, "mcp-session-id")
    out["fresh_session"] = raw(limited, LIST, token=tok_acme, session=sid)[0]   # 4
    status, headers, body = raw(limited, LIST, token=tok_acme, session=sid)      # 5
    out["rate_limited"] = status
    out["rate_limited_body"] = json.loads(body)
    out["retry_after"] = header(headers, "retry-after")
    # The limited server takes bodies up to 4 KiB (the default is 1 MiB; a small limit keeps the
    # whole oversized body in socket buffers, so the client is not cut off mid-send).
    out["oversized"] = raw(limited, token=tok_globex, data=b'{"x":"' + b"a" * 5000 + b'"}')[0]
    out["other_tenant_not_limited"] = raw(limited, INIT, token=tok_globex)[0]
    print(json.dumps(out))


asyncio.run(main())
