// The addon never keeps Node alive: after close() (and even without it, once idle) the process
// exits on its own, with executors registered and used.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { test } from 'node:test'
import { BillingDb } from './support.mjs'

const INDEX = path.resolve(import.meta.dirname, '..', 'index.js')

function script(db, { close }) {
  return `
const { Runner } = require(${JSON.stringify(INDEX)})
const ctx = { context: { tenantId: 'acme', principal: 'agent:acme' } }
;(async () => {
  const runner = await Runner.open(${JSON.stringify(db.config)}, { ledger: ${JSON.stringify(db.ledger)} })
  runner.executor('billing_inproc', async (job, tx) => {
    await tx.fetchOne('SELECT 1 AS one')
    return { status: 'applied', rows_affected: 1, source_database_mutated: true }
  })
  await runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, ctx)
  const p = await runner.propose('billing.propose_account_credit', { invoice_id: 'INV-3001', amount_cents: 5, reason: 'r' }, ctx)
  await runner.approve(p.proposal_id, { approver: 'lead', roles: ['billing_lead'] })
  const out = await runner.apply(p.proposal_id)
  ${close ? 'runner.close()' : ''}
  process.stdout.write('done:' + out.receipt.status + '\\n')
})().catch((e) => { console.error(e); process.exitCode = 9 })
`
}

for (const close of [true, false]) {
  const how = close ? 'after close()' : 'when idle, without close()'
  test(`the process exits by itself ${how}`, (t) => {
    const db = new BillingDb(t)
    const started = Date.now()
    const child = spawnSync(process.execPath, ['-e', script(db, { close })], {
      encoding: 'utf8',
      timeout: 30_000,
      env: process.env,
    })
    assert.equal(child.error, undefined, `did not exit within 30 s (${child.error})`)
    assert.equal(child.signal, null)
    assert.equal(child.status, 0, child.stderr)
    assert.equal(child.stdout.trim(), 'done:applied')
    t.diagnostic(`exited after ${Date.now() - started} ms`)
  })
}
