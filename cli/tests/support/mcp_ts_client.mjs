// The official MCP TypeScript SDK as a client of synapsor-runner, over stdio or Streamable HTTP.
// Prints one JSON object of what it saw; the Rust test asserts on it.
// Usage: node mcp_ts_client.mjs stdio <binary> <config>
//        node mcp_ts_client.mjs http <url> <bearer token>
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'

const [mode, a, b] = process.argv.slice(2)
const transport =
  mode === 'stdio'
    ? new StdioClientTransport({ command: a, args: ['--config', b, 'mcp', 'serve', '--alias-mode', 'openai'], stderr: 'ignore' })
    : new StreamableHTTPClientTransport(new URL(a), { requestInit: { headers: { Authorization: `Bearer ${b}` } } })

const client = new Client({ name: 'synapsor-conformance', version: '1.0.0' })
await client.connect(transport)
const out = { server: client.getServerVersion()?.name, capabilities: client.getServerCapabilities() }
const { tools } = await client.listTools()
out.tools = tools.map((t) => t.name)
out.all_have_output_schema = tools.every((t) => t.outputSchema?.type === 'object')
const inspect = tools.find((t) => t.name.endsWith('inspect_invoice')).name
const propose = tools.find((t) => t.name.endsWith('propose_late_fee_waiver')).name
// callTool validates structuredContent against the tool's outputSchema and throws when it fails.
const call = async (name, args) => {
  try {
    const r = await client.callTool({ name, arguments: args })
    return { isError: r.isError ?? false, envelope: r.structuredContent }
  } catch (e) {
    return { thrown: e.code ?? String(e) }
  }
}
out.inspect = await call(inspect, { invoice_id: 'INV-3001' })
out.propose = await call(propose, { invoice_id: 'INV-3002', reason: 'conformance' })
out.spoof = await call(inspect, { invoice_id: 'INV-3001', tenant_id: 'globex' })
out.foreign = await call(inspect, { invoice_id: 'INV-9999' })
out.unknown = await call('billing__drop_everything', {})
const { resources } = await client.listResources()
out.resources = resources.map((r) => r.uri)
const { resourceTemplates } = await client.listResourceTemplates()
out.templates = resourceTemplates.map((t) => t.uriTemplate)
if (resources.length > 0) {
  const read = await client.readResource({ uri: resources[0].uri })
  out.read_mime = read.contents[0]?.mimeType
}
await client.close()
console.log(JSON.stringify(out))
