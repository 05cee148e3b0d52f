// Pre-wake (Runner.open option `prewake`, default true): the event loop sleeps while the
// database works, is woken when the core says a call has only its ledger write left, and turns
// (the busy-wait ticker, on setImmediate) until the result; then it sleeps again.
// The ticker's setImmediate is looked up once per thread, so it is counted by wrapping the
// global before any runner starts one.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { Runner } from '../index.js'
import { ACME, BillingDb } from './support.mjs'

let ticks = 0
const setImmediateOriginal = globalThis.setImmediate
globalThis.setImmediate = function (fn, ...args) {
  if (fn && fn.name === 'synapsorBusyWait') ticks++
  return setImmediateOriginal(fn, ...args)
}

for (const prewake of [true, false]) {
  test(`prewake ${prewake}: the loop ${prewake ? 'turns for' : 'sleeps until'} the result, and sleeps after`, async (t) => {
    const db = new BillingDb(t)
    const runner = await Runner.open(db.config, prewake ? { ledger: db.ledger } : { ledger: db.ledger, prewake })
    await runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: ACME }) // warm pools
    // With pre-wake, until 3 calls have turned the loop (for up to 5 s: under load a run of calls
    // can end without waiting, see busy-wait.test.mjs); without it, 200 calls, none of which may.
    let turned = 0
    let calls = 0
    const deadline = performance.now() + 5000
    const more = () => (prewake ? turned < 3 && performance.now() < deadline : calls < 200)
    for (; more(); calls++) {
      const before = ticks
      const read = await runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: ACME })
      assert.equal(read.data.late_fee_cents, 5500)
      if (ticks > before) turned++
    }
    await sleep(5) // let a last tick run
    const settled = ticks
    await sleep(100)
    runner.close()
    t.diagnostic(`calls that turned the loop: ${turned} of ${calls}`)
    // Not every call turns: a pre-wake that arrives together with its result needs no turn, and
    // on a slow (debug, loaded) build a call can finish on the JS thread. In CI, with another
    // test file running beside this one, 20 calls turned it 0 to 20 times.
    if (prewake) assert.ok(turned >= 3, `only ${turned} of ${calls} calls turned the loop`)
    else assert.equal(turned, 0)
    assert.equal(ticks, settled, 'the loop kept turning with nothing in flight')
  })
}

/** Another session holding `FOR UPDATE` on one invoice until `release()` (an open psql). */
async function rowLock(url, invoice) {
  const proc = spawn('psql', [url, '-q', '-At', '-v', 'ON_ERROR_STOP=1'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const held = new Promise((resolve, reject) => {
    let out = ''
    proc.stdout.on('data', (d) => {
      out += d
      if (out.includes(invoice)) resolve()
    })
    proc.on('exit', (code) => reject(new Error(`psql exited ${code} before the lock was held`)))
  })
  proc.stdin.write(`BEGIN;\nSELECT id FROM public.invoices WHERE id = '${invoice}' FOR UPDATE;\n`)
  await held
  const exited = new Promise((resolve) => proc.on('exit', resolve))
  return {
    release() {
      if (proc.stdin.writable) proc.stdin.end('COMMIT;\n')
      return exited
    },
  }
}

// Two database round trips before an executor's job (as the receipt claim is sent; the row lock
// follows), the core warms the executor up: the loop is turning while the lock is waited for,
// not woken by the job.
for (const prewake of [true, false]) {
  for (const kind of ['function', 'async function']) {
    test(`prewake ${prewake}: a ${kind} executor finds the loop ${prewake ? 'turning' : 'asleep'} before its job arrives`, async (t) => {
      const db = new BillingDb(t)
      const runner = await Runner.open(db.config, { ledger: db.ledger, prewake })
      const ticksAtEntry = []
      const receipt = { status: 'applied', rows_affected: 0, source_database_mutated: false }
      runner.executor(
        'billing_inproc',
        kind === 'function'
          ? () => (ticksAtEntry.push(ticks), receipt)
          : async () => (ticksAtEntry.push(ticks), receipt),
      )
      const turned = []
      for (let i = 0; i < 5; i++) {
        const p = await runner.propose(
          'billing.propose_account_credit',
          { invoice_id: 'INV-3001', amount_cents: 10 + i, reason: `r${i}` },
          { context: ACME },
        )
        await runner.approve(p.proposal_id, { approver: 'lead', roles: ['billing_lead'] })
        // The apply's row lock waits for this session: its job comes 30 ms later.
        const lock = await rowLock(db.url, 'INV-3001')
        const timer = setTimeout(() => lock.release(), 30)
        const start = ticks
        try {
          const out = await runner.apply(p.proposal_id)
          assert.equal(out.receipt.status, 'applied')
        } finally {
          clearTimeout(timer)
          await lock.release()
        }
        turned.push(ticksAtEntry.at(-1) - start)
      }
      await sleep(5)
      const settled = ticks
      await sleep(100)
      runner.close()
      t.diagnostic(`ticks before each callback: ${turned}`)
      if (prewake) assert.ok(turned.every((n) => n > 0), `${turned}`)
      else assert.deepEqual(turned, [0, 0, 0, 0, 0])
      assert.equal(ticks, settled, 'the loop kept turning with nothing in flight')
    })
  }
}
