"""Drive `synapsor-runner mcp serve` with the official MCP Python SDK over stdio.

argv: BIN CONFIG STORE. Prints one JSON object with what the test asserts on.
"""
import asyncio
import json
import sys


def field(obj, snake, camel):
    """SDK 2.x uses snake_case attributes, 1.x camelCase."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main():
    bin_path, config, store = sys.argv[1:4]
    params = StdioServerParameters(command=bin_path, args=["mcp", "serve", "--config", config, "--store", store])
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = field(init, "server_info", "serverInfo").name
            tools = await session.list_tools()
            out["tools"] = [t.name for t in tools.tools]
            out["read_only_hints"] = {t.name: bool(t.annotations and field(t.annotations, "read_only_hint", "readOnlyHint")) for t in tools.tools}
            out["enum_or_schema"] = field(tools.tools[0], "input_schema", "inputSchema")
            r = await session.call_tool("billing.inspect_invoice", {"invoice_id": "INV-3001"})
            out["inspect"] = field(r, "structured_content", "structuredContent")
            r = await session.call_tool("billing.propose_late_fee_waiver", {"invoice_id": "INV-3001", "reason": "mcp test"})
            out["propose"] = field(r, "structured_content", "structuredContent")
            r = await session.call_tool("billing.inspect_invoice", {"invoice_id": "INV-3001", "tenant_id": "globex"})
            out["spoof"] = field(r, "structured_content", "structuredContent")
            r = await session.call_tool("billing.inspect_invoice", {"invoice_id": "INV-3001", "where": "1=1"})
            out["unknown_arg"] = field(r, "structured_content", "structuredContent")
            r = await session.call_tool("billing.inspect_invoice", {"invoice_id": "INV-9001"})
            out["foreign"] = field(r, "structured_content", "structuredContent")
            pid = out["propose"]["proposal"]["id"]
            res = await session.read_resource(f"synapsor://proposals/{pid}")
            out["resource"] = json.loads(res.contents[0].text)
            try:
                await session.read_resource("synapsor://proposals/wrp_00000000000000000000")
                out["missing_resource"] = "read"
            except Exception as e:  # the SDK raises McpError for a JSON-RPC error
                out["missing_resource"] = str(e)
    print(json.dumps(out))


asyncio.run(main())
