// Per-call cost from Node minus the same calls from Rust (run by scripts/bench-bindings).
//
// inspect: n sequential awaits of runner.inspect. apply: n applies through an in_process
// executor whose callback only returns a receipt (plain function and async function), minus
// Rust's closure executor. Each measurement gets a fresh database; 3 interleaved rounds, medians.
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { Runner } from '../index.js'
import { BillingDb } from '../test/support.mjs'

const RUST = process.argv[2]
const N = Number(process.argv[3] ?? 2000)
const CTX = { context: { tenantId: 'acme', principal: 'bench' } }
const RECEIPT = { status: 'applied', rows_affected: 0, source_database_mutated: false }

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const micros = (t0) => Number(process.hrtime.bigint() - t0) / 1e3

async function nodeBench(db, kind) {
  const runner = await Runner.open(db.config, { ledger: path.join(db.dir, `node-${kind}.db`) })
  runner.executor('billing_inproc', kind === 'sync' ? () => RECEIPT : async () => RECEIPT)
  const args = { invoice_id: 'INV-3001' }
  for (let i = 0; i < 50; i++) await runner.inspect('billing.inspect_invoice', args, CTX)
  const ins = []
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint()
    await runner.inspect('billing.inspect_invoice', args, CTX)
    ins.push(micros(t0))
  }
  const app = []
  for (let i = 0; i < Math.min(N, 300); i++) {
    const p = await runner.propose(
      'billing.propose_account_credit',
      { invoice_id: 'INV-3001', amount_cents: 1 + (i % 9000), reason: `bench ${i}` },
      CTX,
    )
    await runner.approve(p.proposal_id, { approver: 'lead', roles: ['billing_lead'] })
    const t0 = process.hrtime.bigint()
    const out = await runner.apply(p.proposal_id)
    app.push(micros(t0))
    if (out.receipt.status !== 'applied') throw new Error(JSON.stringify(out.receipt))
  }
  runner.close()
  return [median(ins), median(app)]
}

async function fresh(fn) {
  const db = new BillingDb()
  try {
    return await fn(db)
  } finally {
    db.drop()
  }
}

const rows = { rust: [], sync: [], async: [] }
for (let round = 0; round < 3; round++) {
  rows.rust.push(
    await fresh(async (db) => {
      const out = execFileSync(RUST, [db.config, path.join(db.dir, 'rust.db'), String(N)], { encoding: 'utf8' })
      const r = JSON.parse(out)
      return [r.inspect_us, r.apply_inproc_us]
    }),
  )
  rows.sync.push(await fresh((db) => nodeBench(db, 'sync')))
  rows.async.push(await fresh((db) => nodeBench(db, 'async')))
}
const med = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, [median(v.map((x) => x[0])), median(v.map((x) => x[1]))]]))
const [ri, ra] = med.rust
const [si, sa] = med.sync
const [ai, aa] = med.async
const ni = Math.min(si, ai)
const f = (x) => x.toFixed(1).padStart(7)
console.log(`inspect (n=${N}, 3 rounds): Rust ${f(ri)} µs   Node ${f(ni)} µs   overhead ${f(ni - ri)} µs`)
console.log(
  `apply through in_process no-op callback (n=${Math.min(N, 300)}): Rust ${f(ra)} µs   ` +
    `Node function ${f(sa)} µs (overhead ${f(sa - ra)})   async function ${f(aa)} µs (overhead ${f(aa - ra)})`,
)
