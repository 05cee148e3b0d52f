// Per-call cost from Node minus the same calls from Rust (run by scripts/bench-bindings).
//
// inspect: n sequential awaits of runner.inspect, minus the Rust process; and paired on one
// runner with the same call run by Rust on a runtime worker. apply: n applies through an
// in_process executor whose callback only returns a receipt (plain function and async function),
// minus Rust's closure executor; and paired on one runner with a Rust answer given at once.
// Each measurement gets a fresh database; ROUNDS (default 5) interleaved rounds, medians.
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
// CPU time of the whole process (every thread) since `start`: work, as opposed to waiting.
const cpuMicros = (start) => {
  const d = process.cpuUsage(start)
  return d.user + d.system
}

async function nodeBench(db, kind) {
  const runner = await Runner.open(db.config, { ledger: path.join(db.dir, `node-${kind}.db`)})
  const entered = { at: 0n }
  // The executor runs one statement (tx.fetchOne) before answering.
  let statement = false
  const callback =
    kind === 'sync'
      ? (job, tx) => {
          entered.at = process.hrtime.bigint()
          if (statement && tx.fetchOneSync('SELECT 1 AS one').one !== 1) throw new Error('bad row')
          return RECEIPT
        }
      : async (job, tx) => {
          entered.at = process.hrtime.bigint()
          if (statement && (await tx.fetchOne('SELECT 1 AS one')).one !== 1) throw new Error('bad row')
          return RECEIPT
        }
  runner.executor('billing_inproc', callback)
  const args = { invoice_id: 'INV-3001' }
  for (let i = 0; i < 50; i++) await runner.inspect('billing.inspect_invoice', args, CTX)
  const ins = []
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint()
    await runner.inspect('billing.inspect_invoice', args, CTX)
    ins.push(micros(t0))
  }
  const insCpu = cpuMicros(cpu0) / N
  // inspect paired on this runner: the same call run by Rust in a task on a runtime worker
  // (timed there), alternating with the call from JavaScript; each pair's difference is the
  // binding's overhead alone, on the same database and ledger, a millisecond apart.
  const insPairs = []
  for (let i = 0; i < N; i++) {
    const timed = {}
    for (const who of i % 2 === 0 ? ['rust', 'js'] : ['js', 'rust']) {
      if (who === 'rust') timed.rust = await runner._benchInspectOnWorker('billing.inspect_invoice', args, CTX)
      else {
        const t0 = process.hrtime.bigint()
        await runner.inspect('billing.inspect_invoice', args, CTX)
        timed.js = micros(t0)
      }
    }
    insPairs.push(timed.js - timed.rust)
  }
  const refused = []
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint()
    const env = await runner.callTool('billing.nope', {}, CTX)
    refused.push(micros(t0))
    if (env.ok !== false) throw new Error('expected a refusal')
  }
  const [app, toCb, afterCb, appCpu] = await applies(runner, entered, Math.min(N, 300), 0)
  statement = true
  const [stmt, , , stmtCpu] = await applies(runner, entered, Math.min(N, 300), N)
  // The callback round trip alone: this runner alternates the callback with a Rust answer given
  // at once (a switch on the registered executor, nothing re-registered), one apply each, order
  // alternating; each pair's difference is what crossing into JavaScript and back costs, on the
  // same loop, database and ledger, a millisecond apart.
  statement = false
  const [pairs, cpuPairs] = [[], []]
  for (let i = 0; i < Math.min(N, 300); i++) {
    const timed = {}
    for (const who of i % 2 === 0 ? ['rust', 'js'] : ['js', 'rust']) {
      if (!runner._benchBaseline('billing_inproc', who === 'rust')) throw new Error('no executor to switch')
      const [[lat], , , [cpu]] = await applies(runner, entered, 1, 2 * N + 2 * i + (who === 'js' ? 1 : 0))
      timed[who] = [lat, cpu]
    }
    pairs.push(timed.js[0] - timed.rust[0])
    cpuPairs.push(timed.js[1] - timed.rust[1])
  }
  runner.close()
  return [median(ins), median(app), median(refused), median(toCb), median(afterCb), insCpu, median(appCpu), median(stmt), median(stmtCpu), median(pairs), median(cpuPairs), median(insPairs)]
}

// n applies of fresh approved proposals: latency, to and after the callback, CPU (µs).
async function applies(runner, entered, n, first) {
  const [app, toCb, afterCb, appCpu] = [[], [], [], []]
  for (let i = first; i < first + n; i++) {
    const p = await runner.propose(
      'billing.propose_account_credit',
      { invoice_id: 'INV-3001', amount_cents: 1 + (i % 9000), reason: `bench ${i}` },
      CTX,
    )
    await runner.approve(p.proposal_id, { approver: 'lead', roles: ['billing_lead'] })
    const [t0, cpu] = [process.hrtime.bigint(), process.cpuUsage()]
    const out = await runner.apply(p.proposal_id)
    appCpu.push(cpuMicros(cpu))
    const end = process.hrtime.bigint()
    app.push(Number(end - t0) / 1e3)
    toCb.push(Number(entered.at - t0) / 1e3)
    afterCb.push(Number(end - entered.at) / 1e3)
    if (out.receipt.status !== 'applied') throw new Error(JSON.stringify(out.receipt))
  }
  return [app, toCb, afterCb, appCpu]
}

async function fresh(fn) {
  const db = new BillingDb()
  try {
    return await fn(db)
  } finally {
    db.drop()
  }
}

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const rows = { rust: [], sync: [], async: [] }
for (let round = 0; round < ROUNDS; round++) {
  rows.rust.push(
    await fresh(async (db) => {
      const out = execFileSync(RUST, [db.config, path.join(db.dir, 'rust.db'), String(N)], { encoding: 'utf8' })
      const r = JSON.parse(out)
      return [r.inspect_us, r.apply_inproc_us, r.call_refused_us, r.to_callback_us, r.after_callback_us, r.inspect_cpu_us, r.apply_cpu_us, r.apply_stmt_us, r.apply_stmt_cpu_us]
    }),
  )
  rows.sync.push(await fresh((db) => nodeBench(db, 'sync')))
  rows.async.push(await fresh((db) => nodeBench(db, 'async')))
}
// Per-round differences against the Rust run of the same round (the database server's latency
// drifts between rounds on a shared VM), then the median over rounds.
const diff = (kind, i) => median(rows[kind].map((r, k) => r[i] - rows.rust[k][i]))
const abs = (kind, i) => median(rows[kind].map((r) => r[i]))
const f = (x) => x.toFixed(1).padStart(7)
console.log(`Node binding overhead vs Rust, ${ROUNDS} rounds, median of per-round differences (absolute medians in brackets):`)
console.log(`  refused call (no I/O, n=${N}): ${f(Math.min(diff('sync', 2), diff('async', 2)))} µs  [Rust ${f(abs('rust', 2))}]`)
console.log(`  inspect (n=${N}):              ${f(Math.min(diff('sync', 0), diff('async', 0)))} µs  [Rust ${f(abs('rust', 0))}]`)
console.log(
  `    paired on one runner (alternating with the same call run by Rust on a runtime worker, median of paired differences, n=${N}): ${f(Math.min(abs('sync', 11), abs('async', 11)))} µs`,
)
console.log(
  `  apply via no-op in_process executor (n=${Math.min(N, 300)}): function ${f(diff('sync', 1))} µs, async function ${f(diff('async', 1))} µs  [Rust ${f(abs('rust', 1))}]`,
)
// An apply pays what every call pays (one wake-up of the loop for the result, its conversion;
// the inspect line) plus the round trip into the callback and back.
console.log(
  `    of which the callback round trip (minus the inspect overhead of the same run): function ${f(diff('sync', 1) - diff('sync', 0))} µs, async function ${f(diff('async', 1) - diff('async', 0))} µs`,
)
console.log(
  `    measured from JS, up to the callback: function ${f(diff('sync', 3))} µs, async function ${f(diff('async', 3))} µs; after it: function ${f(diff('sync', 4))} µs, async function ${f(diff('async', 4))} µs`,
)
console.log(
  `    the callback round trip alone (same runner, alternating with a Rust executor that answers at once, median of paired differences, n=${Math.min(N, 300)}): function ${f(abs('sync', 9))} µs, async function ${f(abs('async', 9))} µs; CPU function ${f(abs('sync', 10))} µs, async function ${f(abs('async', 10))} µs`,
)
console.log(
  `  apply via an executor running one statement (tx.fetchOne, n=${Math.min(N, 300)}): function ${f(diff('sync', 7))} µs, async function ${f(diff('async', 7))} µs  [Rust ${f(abs('rust', 7))}]`,
)
console.log(
  `    of which the statement (minus the no-op apply of the same run): function ${f(diff('sync', 7) - diff('sync', 1))} µs, async function ${f(diff('async', 7) - diff('async', 1))} µs`,
)
console.log(
  `  CPU per call (process, all threads): inspect ${f(Math.min(diff('sync', 5), diff('async', 5)))} µs [Rust ${f(abs('rust', 5))}], apply function ${f(diff('sync', 6))} µs, async function ${f(diff('async', 6))} µs [Rust ${f(abs('rust', 6))}]; apply with a statement function ${f(diff('sync', 8))} µs, async function ${f(diff('async', 8))} µs [Rust ${f(abs('rust', 8))}]`,
)
