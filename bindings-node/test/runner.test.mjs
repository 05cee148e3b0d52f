// API round trips, error codes, concurrency and MCP through the native addon against real PostgreSQL.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { Runner, version } from '../index.js'
import { ACME, BillingDb, GLOBEX } from './support.mjs'

const open = (db) => Runner.open(db.config, { ledger: db.ledger })

/** Await a rejection and return the error (fails the test if the promise resolves). */
async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  assert.fail('expected a rejection')
}

test('round trip: inspect, propose, list, approve, apply, retry, replay, tools, callTool, reject, close', async (t) => {
  const db = new BillingDb(t)
  const runner = await open(db)
  assert.equal(typeof version(), 'string')

  const read = await runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: ACME })
  assert.equal(read.data.late_fee_cents, 5500)
  assert.deepEqual(read.context, { tenant_id: 'acme', principal: 'agent:acme', provenance: 'host' })
  assert.deepEqual(JSON.parse(JSON.stringify(read)), read, 'plain JSON-compatible objects')

  const p = await runner.propose(
    'billing.propose_late_fee_waiver',
    { invoice_id: 'INV-3001', reason: 'bank error' },
    { context: ACME },
  )
  assert.equal(p.state, 'pending_review')
  assert.equal(p.duplicate, false)
  assert.equal(db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'"), '5500', 'propose writes nothing')

  const listed = await runner.proposals({ state: 'pending_review' })
  assert.deepEqual(
    listed.map((x) => x.proposal_id),
    [p.proposal_id],
  )
  assert.deepEqual(await runner.proposals({ tenantId: 'globex' }), [])

  const approved = await runner.approve(p.proposal_id, { approver: 'lead_1', roles: ['billing_lead'] })
  assert.equal(approved.state, 'approved')
  const out = await runner.apply(p.proposal_id)
  assert.equal(out.receipt.status, 'applied')
  assert.equal(out.executor, 'sql_update')
  assert.equal(db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'"), '0')
  const again = await runner.apply(p.proposal_id)
  assert.equal(again.receipt.status, 'already_applied')

  const replay = await runner.replay(p.proposal_id)
  assert.equal(replay.proposal.proposal_id, p.proposal_id)

  assert.deepEqual(
    runner.tools({ aliasMode: 'openai' }).map((x) => x.name),
    ['billing__inspect_invoice', 'billing__propose_late_fee_waiver', 'billing__propose_account_credit'],
  )
  assert.deepEqual(
    runner.tools().map((x) => x.name),
    ['billing.inspect_invoice', 'billing.propose_late_fee_waiver', 'billing.propose_account_credit'],
  )
  const env = await runner.callTool('billing__inspect_invoice', { invoice_id: 'INV-9001' }, { context: ACME })
  assert.equal(env.ok, false)
  assert.equal(env.error.code, 'NOT_FOUND_IN_TENANT')

  const rejectMe = await runner.propose(
    'billing.propose_account_credit',
    { invoice_id: 'INV-3001', amount_cents: 5, reason: 'r' },
    { context: ACME },
  )
  const rejected = await runner.reject(rejectMe.proposal_id, { approver: 'lead_1', reason: 'not needed' })
  assert.equal(rejected.state, 'rejected')

  assert.equal(runner.closed, false)
  runner.close()
  assert.equal(runner.closed, true)
  const e = await rejection(runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: ACME }))
  assert.equal(e.code, 'RUNNER_CLOSED')
  assert.throws(() => runner.tools(), { code: 'RUNNER_CLOSED' })
})

test('connection URLs can be handed over without process.env', async (t) => {
  const db = new BillingDb(t)
  const env = { [db.readEnv]: process.env[db.readEnv], [db.writeEnv]: process.env[db.writeEnv] }
  delete process.env[db.readEnv]
  delete process.env[db.writeEnv]
  const given = await Runner.open(db.config, { ledger: path.join(db.dir, 'env.db'), env })
  const read = await given.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: ACME })
  assert.equal(read.data.id, 'INV-3001')
  await given.close()
  const bare = await Runner.open(db.config, { ledger: path.join(db.dir, 'bare.db') })
  await assert.rejects(bare.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: ACME }), (e) => {
    assert.equal(e.code, 'SOURCE_CREDENTIAL_MISSING')
    assert.match(e.message, new RegExp(db.readEnv))
    return true
  })
  await bare.close()
})

test('every error family has a name, a stable code and retryable', async (t) => {
  const db = new BillingDb(t)
  const bad = path.join(db.dir, 'bad.json')
  fs.writeFileSync(bad, JSON.stringify({ version: 1, sources: {}, capabilities: [{ name: 'x' }] }))
  let e = await rejection(Runner.open(bad))
  assert.ok(e instanceof Error)
  assert.equal(e.name, 'ConfigError')
  assert.equal(e.code, 'CONFIG_INVALID')
  assert.equal(e.retryable, false)
  assert.ok(e.issues.length >= 2, JSON.stringify(e.issues))
  for (const issue of e.issues) assert.deepEqual(Object.keys(issue).sort(), ['code', 'message', 'path'])
  assert.ok(e.issues.some((i) => i.path.startsWith('$.capabilities[0].')), JSON.stringify(e.issues))

  e = await rejection(Runner.open(path.join(db.dir, 'missing.json')))
  assert.equal(e.name, 'ConfigError')

  const runner = await open(db)
  e = await rejection(
    runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001', tenant_id: 'globex' }, { context: ACME }),
  )
  assert.equal(e.name, 'PolicyError')
  assert.equal(e.code, 'MODEL_CANNOT_OVERRIDE_BINDING')
  e = await rejection(runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }))
  assert.equal(e.name, 'PolicyError')
  assert.match(e.code, /^TRUSTED_/, 'host provider without a context fails closed')
  e = await rejection(runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: GLOBEX }))
  assert.equal(e.name, 'NotFoundError')
  assert.equal(e.code, 'NOT_FOUND_IN_TENANT')
  e = await rejection(runner.inspect('billing.nope', {}, { context: ACME }))
  assert.equal(e.name, 'NotFoundError')
  assert.equal(e.code, 'CAPABILITY_NOT_FOUND')
  e = await rejection(runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001', surprise: 1 }, { context: ACME }))
  assert.equal(e.name, 'PolicyError')

  const p = await runner.propose('billing.propose_late_fee_waiver', { invoice_id: 'INV-3001', reason: 'a' }, { context: ACME })
  e = await rejection(
    runner.propose('billing.propose_late_fee_waiver', { invoice_id: 'INV-3001', reason: 'b' }, { context: ACME }),
  )
  assert.equal(e.name, 'ConflictError')
  assert.equal(e.code, 'PROPOSAL_ALREADY_EXISTS')
  e = await rejection(runner.approve(p.proposal_id, { approver: 'someone', roles: ['support'] }))
  assert.equal(e.name, 'ApprovalError')
  assert.equal(e.code, 'APPROVER_ROLE_MISSING')
  e = await rejection(runner.apply(p.proposal_id))
  assert.equal(e.name, 'ApprovalError', 'not approved yet')
  e = await rejection(runner.replay('prop_does_not_exist'))
  assert.equal(e.name, 'NotFoundError')

  const credit = await runner.propose(
    'billing.propose_account_credit',
    { invoice_id: 'INV-3001', amount_cents: 5, reason: 'r' },
    { context: ACME },
  )
  await runner.approve(credit.proposal_id, { approver: 'lead', roles: ['billing_lead'] })
  e = await rejection(runner.apply(credit.proposal_id))
  assert.equal(e.name, 'ExecutorError', 'in_process executor never registered')
  assert.ok(e.code)

  assert.throws(() => runner.tools({ aliasMode: 'shouty' }), { name: 'PolicyError', code: 'INVALID_ALIAS_MODE' })
  // Wrong argument types are programming errors: thrown synchronously by the conversion layer.
  assert.throws(() => runner.approve(p.proposal_id, { roles: [] }))
  assert.throws(() => runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: { tenant_id: 'acme' } }))
  runner.close()
})

test('50 concurrent inspects across two tenants via Promise.all', async (t) => {
  const db = new BillingDb(t)
  const runner = await open(db)
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      runner.inspect(
        'billing.inspect_invoice',
        { invoice_id: i % 2 ? 'INV-3001' : 'INV-9001' },
        { context: i % 2 ? ACME : GLOBEX },
      ),
    ),
  )
  assert.equal(results.length, 50)
  assert.deepEqual(new Set(results.map((r) => r.context.tenant_id)), new Set(['acme', 'globex']))
  for (const r of results) assert.equal(r.data.tenant_id, r.context.tenant_id)
  assert.equal(new Set(results.map((r) => r.evidence_bundle_id)).size, 50, 'one evidence bundle per read')
  runner.close()
})

test("mcpHandle serves MCP under the app's context", async (t) => {
  const db = new BillingDb(t)
  const runner = await open(db)
  assert.equal(await runner.mcpHandle({ jsonrpc: '2.0', method: 'notifications/initialized' }, { context: ACME }), null)
  const init = await runner.mcpHandle(
    { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18' } },
    { context: ACME },
  )
  assert.equal(init.result.protocolVersion, '2025-06-18')
  const list = await runner.mcpHandle({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { aliasMode: 'openai' })
  assert.equal(list.result.tools[0].name, 'billing__inspect_invoice')
  const call = {
    jsonrpc: '2.0',
    id: 3,
    method: 'tools/call',
    params: { name: 'billing.propose_late_fee_waiver', arguments: { invoice_id: 'INV-3001', reason: 'mcp' } },
  }
  const res = await runner.mcpHandle(call, { context: ACME })
  const pid = res.result.structuredContent.proposal.id
  const read = { jsonrpc: '2.0', id: 4, method: 'resources/read', params: { uri: `synapsor://proposals/${pid}` } }
  assert.ok((await runner.mcpHandle(read, { context: ACME })).result)
  const leaked = await runner.mcpHandle(read, { context: GLOBEX })
  assert.equal(leaked.error.data.code, 'RESOURCE_NOT_FOUND')
  const spoofed = await runner.mcpHandle(
    { ...call, id: 5, params: { name: 'billing.inspect_invoice', arguments: { invoice_id: 'INV-9001', tenant_id: 'globex' } } },
    { context: ACME },
  )
  assert.equal(spoofed.result.structuredContent.ok, false)
  runner.close()
})

test('instances of an app share a PostgreSQL ledger: propose on one, approve on another, apply in a third process', async (t) => {
  const db = new BillingDb(t)
  const env = { APP_LEDGER_URL: db.url }
  const openInstance = () =>
    Runner.open(db.config, { env, ledgerUrlEnv: 'APP_LEDGER_URL', ledgerSchema: 'app_ledger' })
  const one = await openInstance()
  const two = await openInstance()
  const p = await one.propose('billing.propose_late_fee_waiver', { invoice_id: 'INV-3001', reason: 'bank error' }, { context: ACME })
  assert.deepEqual(
    (await two.proposals({ state: 'pending_review' })).map((x) => x.proposal_id),
    [p.proposal_id],
  )
  const dup = await two.propose('billing.propose_late_fee_waiver', { invoice_id: 'INV-3001', reason: 'bank error' }, { context: ACME })
  assert.equal(dup.proposal_id, p.proposal_id)
  assert.equal(dup.duplicate, true)
  await two.approve(p.proposal_id, { approver: 'lead_1', roles: ['billing_lead'] })
  await one.close()
  await two.close()
  const script = `
    const { Runner } = require(${JSON.stringify(path.resolve(import.meta.dirname, '..', 'index.js'))})
    Runner.open(${JSON.stringify(db.config)}, { ledgerUrlEnv: 'APP_LEDGER_URL', ledgerSchema: 'app_ledger' })
      .then((r) => r.apply(${JSON.stringify(p.proposal_id)}))
      .then((out) => console.log(out.receipt.status))
      .catch((e) => { console.error(e); process.exit(1) })`
  const { execFileSync } = await import('node:child_process')
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, APP_LEDGER_URL: db.url }, encoding: 'utf8' })
  assert.equal(out.trim(), 'applied')
  assert.equal(db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'"), '0')
  assert.equal(db.sql(`SELECT state FROM app_ledger.proposals WHERE proposal_id = '${p.proposal_id}'`), 'applied')
  assert.equal(db.sql("SELECT count(*) FROM app_ledger.writeback_receipts WHERE status = 'applied'"), '1')
  const e = await rejection(Runner.open(db.config, { ledgerUrlEnv: 'NOT_SET_ANYWHERE' }))
  assert.equal(e.code, 'LEDGER_URL_MISSING')
})
