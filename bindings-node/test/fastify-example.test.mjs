// examples/fastify-billing end to end: the app on a loopback port, real HTTP, real PostgreSQL.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { execFile, execFileSync, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { test } from 'node:test'
import { BillingDb, ROOT } from './support.mjs'

const APP = path.join(ROOT, 'examples', 'fastify-billing', 'app.mjs')
const USERS = {
  'agent-key': { tenant_id: 'acme', principal: 'agent:claude' },
  'lead-key': { tenant_id: 'acme', principal: 'lead_1', roles: ['billing_lead'] },
  'globex-lead': { tenant_id: 'globex', principal: 'g_lead', roles: ['billing_lead'] },
}

test('fastify-billing: MCP under the app auth, reviewer routes, in-process credit executor', async (t) => {
  assert.ok(fs.existsSync(path.join(ROOT, 'examples', 'fastify-billing', 'node_modules', 'fastify')), 'npm ci in examples/fastify-billing')
  const db = new BillingDb(t)
  process.env.BILLING_APP_READ_URL = process.env[db.readEnv]
  process.env.BILLING_APP_WRITE_URL = process.env[db.writeEnv]
  t.after(() => {
    delete process.env.BILLING_APP_READ_URL
    delete process.env.BILLING_APP_WRITE_URL
  })
  const { buildApp } = await import(APP)
  const app = await buildApp({ ledger: path.join(db.dir, 'app-ledger.db'), users: USERS })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())

  const call = (method, url, key, body) =>
    fetch(base + url, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    })
  let id = 0
  const rpc = async (key, method, params = {}) => (await call('POST', '/mcp', key, { jsonrpc: '2.0', id: ++id, method, params })).json()

  assert.equal((await call('GET', '/healthz')).status, 200)
  assert.equal((await call('POST', '/mcp', undefined, { jsonrpc: '2.0', id: 1, method: 'tools/list' })).status, 401)
  assert.equal((await call('POST', '/mcp', 'stolen-key', { jsonrpc: '2.0', id: 1, method: 'tools/list' })).status, 401)
  const init = await rpc('agent-key', 'initialize', { protocolVersion: '2025-06-18' })
  assert.equal(init.result.serverInfo.name, 'synapsor-runner')
  const notified = await call('POST', '/mcp', 'agent-key', { jsonrpc: '2.0', method: 'notifications/initialized' })
  assert.equal(notified.status, 202)
  const names = (await rpc('agent-key', 'tools/list')).result.tools.map((x) => x.name)
  assert.deepEqual(names, ['billing.inspect_invoice', 'billing.propose_late_fee_waiver', 'billing.propose_account_credit'])
  const read = await rpc('agent-key', 'tools/call', { name: 'billing.inspect_invoice', arguments: { invoice_id: 'INV-3001' } })
  assert.equal(read.result.structuredContent.data.credited_cents, 0)
  const spoof = await rpc('agent-key', 'tools/call', {
    name: 'billing.inspect_invoice',
    arguments: { invoice_id: 'INV-9001', tenant_id: 'globex' },
  })
  assert.equal(spoof.result.structuredContent.ok, false)
  const prop = await rpc('agent-key', 'tools/call', {
    name: 'billing.propose_account_credit',
    arguments: { invoice_id: 'INV-3001', amount_cents: 2500, reason: 'goodwill' },
  })
  const pid = prop.result.structuredContent.proposal.id
  assert.equal(db.sql('SELECT count(*) FROM account_credits'), '0', 'propose changes nothing')

  // The review screens under the same login: acme's lead sees acme's proposal, globex's not.
  assert.equal((await call('GET', '/review/api/proposals')).status, 401)
  assert.ok((await (await call('GET', '/review/', 'lead-key')).text()).startsWith('<!doctype html>'))
  const listed = (await (await call('GET', '/review/api/proposals', 'lead-key')).json()).proposals
  assert.deepEqual(listed.map((p) => p.proposal_id), [pid])
  assert.deepEqual((await (await call('GET', '/review/api/proposals', 'globex-lead')).json()).proposals, [])
  assert.equal((await call('GET', `/review/api/proposals/${pid}`, 'globex-lead')).status, 404)
  // The same in Debian's chromium, with the app's bearer login on every request of the page.
  const support = path.join(ROOT, 'cli', 'tests', 'support')
  assert.ok(fs.existsSync('/usr/bin/chromium'), "Debian's chromium is needed (scripts/test installs it)")
  if (!fs.existsSync(path.join(support, 'node_modules', 'playwright-core'))) {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: support, stdio: 'inherit' })
  }
  // Asynchronously: the app serving the page runs in this process.
  const inChromium = (key, listed, hidden) =>
    promisify(execFile)('node', [path.join(support, 'review_mounted.mjs'), `${base}/review/`, `Bearer ${key}`, JSON.stringify(listed), JSON.stringify(hidden)], { encoding: 'utf8', timeout: 120_000 })
  await inChromium('lead-key', [pid], [])
  await inChromium('globex-lead', [], [pid])
  const { csrf } = await (await call('GET', '/review/api/session', 'agent-key')).json()
  const decide = (how, key, body, token = csrf) =>
    fetch(`${base}/review/api/proposals/${pid}/${how}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(token ? { 'x-synapsor-csrf': token } : {}) },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
  assert.equal((await decide('approve', 'lead-key', {}, null)).status, 403, 'no CSRF token')
  const refused = await decide('approve', 'agent-key', {})
  assert.equal(refused.status, 403)
  assert.equal((await refused.json()).code, 'APPROVER_ROLE_MISSING')
  assert.equal((await (await decide('reject', 'lead-key', { reason: ' ' })).json()).code, 'REASON_REQUIRED')
  assert.equal((await decide('reject', 'lead-key', '[1]')).status, 400)
  assert.equal((await decide('reject', 'lead-key', JSON.stringify({ reason: 'x'.repeat(70_000) }))).status, 413)
  const pending = await (await call('GET', '/reviews/proposals', 'lead-key')).json()
  assert.deepEqual(
    pending.map((p) => p.proposal_id),
    [pid],
  )
  assert.deepEqual(await (await call('GET', '/reviews/proposals', 'globex-lead')).json(), [])
  let r = await call('POST', `/reviews/proposals/${pid}/approve`, 'agent-key')
  assert.equal(r.status, 403)
  assert.equal((await r.json()).code, 'APPROVER_ROLE_MISSING')
  assert.equal((await call('POST', `/reviews/proposals/${pid}/approve`, 'globex-lead')).status, 404)
  assert.equal((await call('POST', `/reviews/proposals/${pid}/apply`, 'lead-key')).status, 403, 'not approved yet')
  assert.equal((await (await call('POST', `/reviews/proposals/${pid}/approve`, 'lead-key')).json()).state, 'approved')
  assert.equal((await call('POST', `/reviews/proposals/${pid}/apply`, 'globex-lead')).status, 404)
  assert.equal((await call('POST', `/reviews/proposals/${pid}/apply`, 'agent-key')).status, 403)
  r = await call('POST', `/reviews/proposals/${pid}/apply`, 'lead-key')
  const applied = await r.json()
  assert.equal(r.status, 200, JSON.stringify(applied))
  assert.equal(applied.status, 'applied')
  assert.equal(db.sql("SELECT count(*) || ':' || sum(amount_cents) FROM account_credits WHERE invoice_id = 'INV-3001'"), '1:2500')
  assert.equal(db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"), '2500')
  assert.equal(db.sql("SELECT created_by FROM account_credits"), 'agent:claude')
  assert.equal((await (await call('POST', `/reviews/proposals/${pid}/apply`, 'lead-key')).json()).status, 'already_applied')
  assert.equal(db.sql('SELECT count(*) FROM account_credits'), '1')
})

test('fastify-billing: the official MCP TypeScript SDK client uses the app route with the app auth', async (t) => {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js')
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js')
  const db = new BillingDb(t)
  process.env.BILLING_APP_READ_URL = process.env[db.readEnv]
  process.env.BILLING_APP_WRITE_URL = process.env[db.writeEnv]
  t.after(() => {
    delete process.env.BILLING_APP_READ_URL
    delete process.env.BILLING_APP_WRITE_URL
  })
  const { buildApp } = await import(APP)
  const app = await buildApp({ ledger: path.join(db.dir, 'sdk-ledger.db'), users: USERS })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())
  const session = async (key, body) => {
    const client = new Client({ name: 'fastify-conformance', version: '1.0.0' })
    const transport = new StreamableHTTPClientTransport(new URL(base + '/mcp'), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    })
    await client.connect(transport)
    try {
      return await body(client)
    } finally {
      await client.close()
    }
  }
  await session('agent-key', async (c) => {
    const { tools } = await c.listTools()
    assert.deepEqual(
      tools.map((x) => x.name),
      ['billing.inspect_invoice', 'billing.propose_late_fee_waiver', 'billing.propose_account_credit'],
    )
    // callTool validates structuredContent against each tool's outputSchema.
    const read = await c.callTool({ name: 'billing.inspect_invoice', arguments: { invoice_id: 'INV-3001' } })
    assert.equal(read.isError, false)
    assert.equal(read.structuredContent._meta.tenant_id, 'acme')
    const spoof = await c.callTool({ name: 'billing.inspect_invoice', arguments: { invoice_id: 'INV-3001', tenant_id: 'globex' } })
    assert.equal(spoof.isError, true)
    await assert.rejects(c.callTool({ name: 'billing.drop_everything', arguments: {} }), (e) => e.code === -32602)
  })
  await session('globex-lead', async (c) => {
    const foreign = await c.callTool({ name: 'billing.inspect_invoice', arguments: { invoice_id: 'INV-3001' } })
    assert.equal(foreign.isError, true)
    assert.equal(foreign.structuredContent.error.code, 'NOT_FOUND_IN_TENANT')
  })
  const wrong = new Client({ name: 'x', version: '1' })
  await assert.rejects(
    wrong.connect(new StreamableHTTPClientTransport(new URL(base + '/mcp'), { requestInit: { headers: { authorization: 'Bearer stolen' } } })),
  )
})

/** Start `node app.mjs` as its own process; resolves with its base URL once it listens. */
function startInstance(t, env) {
  const childEnv = { ...process.env, ...env, PORT: '0' }
  delete childEnv.SYNAPSOR_LEDGER
  const child = spawn(process.execPath, [APP], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => child.kill('SIGTERM'))
  return new Promise((resolve, reject) => {
    let out = ''
    const seen = (chunk) => {
      out += chunk
      const m = out.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/)
      if (m) resolve(m[1])
    }
    child.stdout.on('data', seen)
    child.stderr.on('data', seen)
    child.on('exit', (code) => reject(new Error(`app exited ${code}: ${out}`)))
  })
}

test('fastify-billing: three processes share one PostgreSQL ledger', async (t) => {
  const db = new BillingDb(t)
  const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'examples', 'fastify-billing', 'synapsor.runner.json'), 'utf8'))
  cfg.storage = { engine: 'postgres', url_env: 'BILLING_APP_LEDGER_URL', schema: 'app_ledger' }
  const config = path.join(db.dir, 'shared.synapsor.runner.json')
  fs.writeFileSync(config, JSON.stringify(cfg))
  const env = {
    BILLING_APP_READ_URL: process.env[db.readEnv],
    BILLING_APP_WRITE_URL: process.env[db.writeEnv],
    BILLING_APP_USERS: JSON.stringify(USERS),
    BILLING_APP_LEDGER_URL: db.url,
    SYNAPSOR_CONFIG: config,
  }
  const [one, two, three] = await Promise.all([startInstance(t, env), startInstance(t, env), startInstance(t, env)])
  const post = async (base, url, key, body) =>
    (
      await fetch(base + url, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      })
    ).json()
  const prop = await post(one, '/mcp', 'agent-key', {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'billing.propose_account_credit', arguments: { invoice_id: 'INV-3001', amount_cents: 700, reason: 'goodwill' } },
  })
  const pid = prop.result.structuredContent.proposal.id
  const listed = await (await fetch(two + '/reviews/proposals', { headers: { authorization: 'Bearer lead-key' } })).json()
  assert.deepEqual(listed.map((p) => p.proposal_id), [pid])
  assert.equal((await post(two, `/reviews/proposals/${pid}/approve`, 'lead-key')).state, 'approved')
  assert.equal((await post(three, `/reviews/proposals/${pid}/apply`, 'lead-key')).status, 'applied')
  const again = await Promise.all([one, two, three, one, two, three].map((b) => post(b, `/reviews/proposals/${pid}/apply`, 'lead-key')))
  assert.deepEqual([...new Set(again.map((a) => a.status))], ['already_applied'])
  assert.equal(db.sql('SELECT count(*) || \':\' || sum(amount_cents) FROM account_credits'), '1:700')
  assert.equal(db.sql("SELECT count(*) FROM app_ledger.writeback_receipts WHERE status = 'applied'"), '1')
})
