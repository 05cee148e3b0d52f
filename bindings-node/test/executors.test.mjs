// In-process executors: sync and async callbacks inside the guarded transaction, idempotent
// retries, rollback on throw or rejection (the caller gets the very same error), bad receipts.
import fs from 'node:fs'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Runner } from '../index.js'
import { ACME, BillingDb } from './support.mjs'

const INSERT_CREDIT =
  'INSERT INTO public.account_credits (id, tenant_id, invoice_id, customer_id, amount_cents, reason, idempotency_key, created_by) ' +
  'VALUES ($1, $2, $3, $4, $5, $6, $7, $8)'
const UPDATE_INVOICE =
  'UPDATE public.invoices SET credit_requested_cents = $1, credit_reason = $2, credited_cents = credited_cents + $1 ' +
  'WHERE id = $3 AND tenant_id = $4'
const CUSTOMER = 'SELECT customer_id FROM public.invoices WHERE id = $1 AND tenant_id = $2'

function parts(job) {
  const cs = job.change_set
  assert.equal(cs, job.request.change_set, 'change_set is the same object as request.change_set')
  return [cs.scope.object_id, cs.scope.tenant_id, cs.patch.credit_requested_cents, cs.patch.credit_reason]
}

/** An approved account-credit proposal with `register(runner)` run first. */
async function approvedCredit(t, register) {
  const db = new BillingDb(t)
  const runner = await Runner.open(db.config, { ledger: db.ledger })
  t.after(() => runner.close())
  const state = register(runner)
  const p = await runner.propose(
    'billing.propose_account_credit',
    { invoice_id: 'INV-3001', amount_cents: 2500, reason: 'goodwill' },
    { context: ACME },
  )
  await runner.approve(p.proposal_id, { approver: 'lead', roles: ['billing_lead'] })
  return { db, runner, pid: p.proposal_id, state }
}

test('a sync executor writes inside the guarded transaction; a retry does not call it again', async (t) => {
  const { db, runner, pid, state } = await approvedCredit(t, (runner) => {
    const calls = []
    runner.executor('billing_inproc', (job, tx) => {
      const [invoice, tenant, amount, reason] = parts(job)
      const row = tx.fetchOneSync(CUSTOMER, [invoice, tenant])
      assert.equal(tx.fetchAllSync(CUSTOMER, [invoice, tenant]).length, 1)
      tx.executeSync(INSERT_CREDIT, [
        `CR-${job.proposal_id.slice(-12)}`,
        tenant,
        invoice,
        row.customer_id,
        amount,
        reason,
        job.idempotency_key,
        'node',
      ])
      calls.push(tx.executeSync(UPDATE_INVOICE, [amount, reason, invoice, tenant]))
      return { status: 'applied', rows_affected: 2, source_database_mutated: true }
    })
    return calls
  })
  const out = await runner.apply(pid)
  assert.equal(out.receipt.status, 'applied')
  assert.equal(out.executor, 'in_process')
  assert.deepEqual(state, [1])
  assert.equal(db.sql('SELECT count(*) FROM account_credits WHERE amount_cents = 2500'), '1')
  assert.equal(db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"), '2500')
  const again = await runner.apply(pid)
  assert.equal(again.receipt.status, 'already_applied')
  assert.deepEqual(state, [1], 'the idempotency receipt short-circuits the retry')
})

test('an async executor awaits tx calls on the event loop', async (t) => {
  const { db, runner, pid, state } = await approvedCredit(t, (runner) => {
    const seen = []
    runner.executor('billing_inproc', async (job, tx) => {
      const [invoice, tenant, amount, reason] = parts(job)
      assert.equal(job.executor, 'billing_inproc')
      assert.equal(job.dry_run, false)
      assert.match(job.idempotency_key, /\S/)
      const rows = await tx.fetchAll(CUSTOMER, [invoice, tenant])
      await new Promise((resolve) => setTimeout(resolve, 5))
      await tx.execute(INSERT_CREDIT, [
        `CR-${job.proposal_id.slice(-12)}`,
        tenant,
        invoice,
        rows[0].customer_id,
        amount,
        reason,
        job.idempotency_key,
        'node',
      ])
      seen.push(await tx.fetchOne('SELECT count(*)::int AS n FROM public.account_credits'))
      return { status: 'applied', rows_affected: 1, source_database_mutated: true }
    })
    return seen
  })
  const out = await runner.apply(pid)
  assert.equal(out.receipt.status, 'applied')
  assert.deepEqual(state, [{ n: 1 }], 'the callback sees its own uncommitted insert')
  assert.equal(db.sql('SELECT count(*) FROM account_credits'), '1')
  assert.equal(db.sql('SELECT count(*) FROM synapsor_writeback_receipts'), '1', 'receipt committed with the writes')
})

class LedgerRejected extends Error {}

for (const kind of ['sync throw', 'async throw', 'rejected promise', 'thrown non-Error']) {
  test(`${kind} in an executor rolls back and rejects apply with that same value`, async (t) => {
    let thrown
    const { db, runner, pid } = await approvedCredit(t, (runner) => {
      const fail = (job) => {
        thrown = kind === 'thrown non-Error' ? { reason: `rejected ${job.proposal_id}` } : new LedgerRejected(`rejected ${job.proposal_id}`)
        return thrown
      }
      if (kind === 'sync throw') {
        runner.executor('billing_inproc', (job, tx) => {
          tx.executeSync("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'")
          throw fail(job)
        })
      } else if (kind === 'rejected promise') {
        runner.executor('billing_inproc', (job, tx) =>
          tx.execute("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'").then(() => Promise.reject(fail(job))),
        )
      } else {
        runner.executor('billing_inproc', async (job, tx) => {
          await tx.execute("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'")
          throw fail(job)
        })
      }
    })
    let caught
    try {
      await runner.apply(pid)
    } catch (e) {
      caught = e
    }
    assert.ok(thrown, 'the executor ran')
    assert.strictEqual(caught, thrown, 'the same object, not a copy')
    assert.equal(db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"), '0', 'rolled back')
    assert.equal(db.sql('SELECT count(*) FROM synapsor_writeback_receipts'), '0', 'no source receipt')
    const replay = await runner.replay(pid)
    const last = replay.receipts.at(-1)
    assert.equal(last.status, 'failed')
    assert.equal(last.receipt.safe_error_code, 'HANDLER_EXCEPTION')
    assert.ok(!JSON.stringify(replay.receipts).includes('rejected'), 'no exception text in the ledger')
    const proposal = (await runner.proposals()).find((p) => p.proposal_id === pid)
    assert.equal(proposal.source_database_mutated, false)
  })
}

test('a receipt is read as JSON: toJSON is honoured; a BigInt rejects apply and rolls back', async (t) => {
  class Receipt {
    toJSON() {
      return { status: 'applied', rows_affected: 1, source_database_mutated: true }
    }
  }
  const { runner, pid } = await approvedCredit(t, (runner) => {
    runner.executor('billing_inproc', () => new Receipt())
  })
  const out = await runner.apply(pid)
  assert.equal(out.receipt.status, 'applied')
  assert.equal(out.receipt.rows_affected, 1)

  const other = await approvedCredit(t, (runner) => {
    runner.executor('billing_inproc', async (_job, tx) => {
      await tx.execute("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'")
      return { status: 'applied', rows_affected: 1n, source_database_mutated: true }
    })
  })
  const err = await other.runner.apply(other.pid).then(
    () => assert.fail('apply resolved'),
    (e) => e,
  )
  assert.ok(err instanceof Error, String(err))
  assert.match(err.message, /serialize a BigInt/)
  assert.equal(other.db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"), '0', 'rolled back')
  const last = (await other.runner.replay(other.pid)).receipts.at(-1)
  assert.equal(last.receipt.safe_error_code, 'HANDLER_EXCEPTION')
})

test('an executor returning a non-receipt fails safely and rolls back', async (t) => {
  const { db, runner, pid } = await approvedCredit(t, (runner) => {
    runner.executor('billing_inproc', async (_job, tx) => {
      await tx.execute("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'")
      return 'done'
    })
  })
  const outcome = await runner.apply(pid)
  assert.equal(outcome.receipt.status, 'failed')
  assert.equal(outcome.receipt.safe_error_code, 'HANDLER_RECEIPT_INVALID')
  assert.equal(outcome.receipt.source_database_mutated, false)
  assert.equal(db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"), '0', 'rolled back')
})

test('tx parameters stay bound values; a failing statement rejects with a coded error', async (t) => {
  const { db, runner, pid, state } = await approvedCredit(t, (runner) => {
    const seen = {}
    runner.executor('billing_inproc', async (_job, tx) => {
      // A value that looks like SQL stays a value.
      seen.hostile = await tx.fetchOne('SELECT id FROM public.invoices WHERE id = $1', ["x'; DROP TABLE public.invoices; --"])
      seen.error = await tx.execute('SELECT definitely_not_a_column FROM public.invoices').catch((err) => err)
      return { status: 'applied', rows_affected: 1, source_database_mutated: true }
    })
    return seen
  })
  const out = await runner.apply(pid).catch((e) => e)
  assert.equal(state.hostile, null)
  assert.ok(state.error instanceof Error)
  assert.equal(state.error.name, 'ExecutorError')
  assert.equal(state.error.code, 'APP_STATEMENT_FAILED')
  assert.ok(!state.error.message.includes('synapsor_writer:x@'), 'no credentials in the message')
  // PostgreSQL aborted the transaction after the failed statement, so the commit cannot succeed:
  // apply reports a failure and nothing is half-applied.
  assert.notEqual(out?.receipt?.status, 'applied', JSON.stringify(out))
  assert.equal(db.sql('SELECT count(*) FROM synapsor_writeback_receipts'), '0')
  assert.equal(db.sql("SELECT count(*) FROM invoices WHERE id = 'INV-3001'"), '1')
})

test('an async executor settling after its timeout fails the apply and rolls back; its late answer is ignored', async (t) => {
  const db = new BillingDb(t)
  const cfg = JSON.parse(fs.readFileSync(db.config, 'utf8'))
  cfg.executors.billing_inproc.timeout_ms = 300
  fs.writeFileSync(db.config, JSON.stringify(cfg))
  const runner = await Runner.open(db.config, { ledger: db.ledger })
  t.after(() => runner.close())
  let late = true
  let settledLate
  runner.executor('billing_inproc', async (_job, tx) => {
    await tx.execute("UPDATE public.invoices SET credited_cents = 999 WHERE id = 'INV-3001'")
    if (!late) return { status: 'applied', rows_affected: 1, source_database_mutated: true }
    await new Promise((resolve) => setTimeout(resolve, 600))
    settledLate = true
    return { status: 'applied', rows_affected: 1, source_database_mutated: true }
  })
  const p = await runner.propose(
    'billing.propose_account_credit',
    { invoice_id: 'INV-3001', amount_cents: 2500, reason: 'goodwill' },
    { context: ACME },
  )
  await runner.approve(p.proposal_id, { approver: 'lead', roles: ['billing_lead'] })
  const first = await runner.apply(p.proposal_id)
  assert.equal(first.receipt.status, 'failed')
  assert.equal(first.receipt.safe_error_code, 'HANDLER_TIMEOUT')
  assert.equal(db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"), '0', 'rolled back')
  await new Promise((resolve) => setTimeout(resolve, 700))
  assert.ok(settledLate, 'the late promise settled (and its answer went nowhere)')
  late = false
  const second = await runner.apply(p.proposal_id)
  assert.equal(second.receipt.status, 'applied', JSON.stringify(second.receipt))
  assert.equal(db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"), '999')
})

test('a callback cannot end or escape the guarded transaction', async (t) => {
  const { db, runner, pid, state } = await approvedCredit(t, (runner) => {
    const refused = []
    runner.executor('billing_inproc', async (job, tx) => {
      for (const sql of ['ROLLBACK', 'commit', '/* x */ BEGIN', 'SAVEPOINT s', 'UPDATE public.invoices SET credited_cents = 1; COMMIT']) {
        try {
          tx.executeSync(sql)
        } catch (e) {
          refused.push(e.code)
        }
      }
      await assert.rejects(tx.execute('ROLLBACK'), (e) => e.code === 'TRANSACTION_CONTROL_REFUSED')
      const n = await tx.execute("UPDATE public.invoices SET credited_cents = credited_cents + 5 WHERE id = 'INV-3001'")
      return { status: 'applied', rows_affected: n, source_database_mutated: true }
    })
    return refused
  })
  const out = await runner.apply(pid)
  assert.equal(out.receipt.status, 'applied')
  assert.deepEqual(state, Array(5).fill('TRANSACTION_CONTROL_REFUSED'))
  assert.equal(db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"), '5')
  const again = await runner.apply(pid)
  assert.equal(again.receipt.status, 'already_applied')
  assert.equal(db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"), '5', 'written once')
})
