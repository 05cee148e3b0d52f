// Runner.open(path, { busyWaitMs }): while calls are in flight the event loop keeps turning
// (libuv polls with a zero timeout) instead of sleeping until the result arrives; when nothing
// is in flight it sleeps again. Measured with the busy-wait ticker's turns and the loop's own
// idle time (time blocked in poll).
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { Runner } from '../index.js'
import { ACME, BillingDb, GLOBEX } from './support.mjs'

const RECEIPT = { status: 'applied', rows_affected: 0, source_database_mutated: false }

// The busy-wait ticker's turns, counted as in prewake.test.mjs (the addon looks up setImmediate
// once per thread, so wrap it before any runner starts).
let ticks = 0
const setImmediateOriginal = globalThis.setImmediate
globalThis.setImmediate = function (fn, ...args) {
  if (fn && fn.name === 'synapsorBusyWait') ticks++
  return setImmediateOriginal(fn, ...args)
}

for (const busyWaitMs of [0, 100]) {
  test(`busyWaitMs ${busyWaitMs}: the loop ${busyWaitMs ? 'keeps turning' : 'sleeps'} while calls are in flight, and sleeps after`, async (t) => {
    const db = new BillingDb(t)
    const runner = await Runner.open(db.config, { ledger: db.ledger, busyWaitMs, prewake: false })
    await runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: ACME }) // warm pools
    const start = performance.eventLoopUtilization()
    const ticksBefore = ticks
    // 30 calls; with busy-wait, more (for up to 5 s) until the ticker has turned. On a loaded
    // machine the database can answer before the first poll reads its socket (the JS thread is
    // preempted by the backend it woke), so a call ends without waiting. Its result still comes
    // through the thread-safe function, and the next call starts and ends inside that same
    // dispatch. A CI run had 30 such calls in a row: no loop turn at all, so nothing to keep
    // turning (idle 0.00, ticker turns 0).
    const deadline = performance.now() + 5000
    let calls = 0
    while (calls < 30 || (busyWaitMs && ticks === ticksBefore && performance.now() < deadline)) {
      const read = await runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: ACME })
      assert.equal(read.data.late_fee_cents, 5500)
      calls++
    }
    const during = performance.eventLoopUtilization(start)
    const turns = ticks - ticksBefore
    await sleep(1) // let the last tick run
    const quiet = performance.eventLoopUtilization()
    await sleep(100)
    const after = performance.eventLoopUtilization(quiet)
    runner.close()
    const idle = (u) => u.idle / (u.idle + u.active)
    t.diagnostic(`idle share: during ${calls} calls ${idle(during).toFixed(2)}, after ${idle(after).toFixed(2)}; ticker turns ${turns}`)
    if (busyWaitMs) {
      assert.ok(turns > 0, 'the ticker never turned')
      assert.ok(idle(during) < 0.1, `the loop slept during the calls (idle ${idle(during)})`)
    } else {
      // Sleeping, the loop's idle share shrinks as the machine gets busier (0.13 to 0.75 seen
      // with another test file beside this one), so what is asserted is that nothing turned it.
      assert.equal(turns, 0, 'the ticker turned the loop with busy-wait off')
    }
    assert.ok(idle(after) > 0.8, `the loop kept turning with nothing in flight (idle ${idle(after)})`)
  })
}

test('busyWaitMs serves concurrent calls, executors of both kinds and their tx statements', async (t) => {
  const db = new BillingDb(t)
  const runner = await Runner.open(db.config, { ledger: db.ledger, busyWaitMs: 2 })
  const reads = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      runner.inspect('billing.inspect_invoice', { invoice_id: i % 2 ? 'INV-3001' : 'INV-9001' }, { context: i % 2 ? ACME : GLOBEX }),
    ),
  )
  assert.ok(reads.every((r) => r.data.tenant_id === r.context.tenant_id))
  const seen = []
  const executors = {
    async: async (job, tx) => {
      seen.push(['async', (await tx.fetchOne('SELECT 1 AS one')).one])
      return RECEIPT
    },
    sync: (job, tx) => {
      seen.push(['sync', job.change_set === job.request.change_set])
      return RECEIPT
    },
    throws: () => {
      seen.push(['throws'])
      throw new Error('refused by the app')
    },
  }
  for (const [i, [kind, fn]] of Object.entries(executors).entries()) {
    runner.executor('billing_inproc', fn)
    const p = await runner.propose('billing.propose_account_credit', { invoice_id: 'INV-3001', amount_cents: 100 + i, reason: kind }, { context: ACME })
    await runner.approve(p.proposal_id, { approver: 'lead', roles: ['billing_lead'] })
    if (kind === 'throws') await assert.rejects(runner.apply(p.proposal_id), /refused by the app/)
    else assert.equal((await runner.apply(p.proposal_id)).receipt.status, 'applied')
  }
  assert.deepEqual(seen, [['async', 1], ['sync', true], ['throws']])
  runner.close()
})

test('busyWaitMs out of range rejects open with INVALID_BUSY_WAIT', async (t) => {
  const db = new BillingDb(t)
  for (const busyWaitMs of [-1, 101, Number.NaN, Number.POSITIVE_INFINITY]) {
    await assert.rejects(Runner.open(db.config, { ledger: db.ledger, busyWaitMs }), (e) => {
      assert.equal(e.code, 'INVALID_BUSY_WAIT')
      assert.match(e.message, /busyWaitMs must be between 0 and 100/)
      return true
    })
  }
})
