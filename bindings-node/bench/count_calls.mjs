// What the Node binding executes per call, counted by valgrind (scripts/bench-instructions).
//
// The timed benchmark (bench_calls.mjs) measures the host as much as the code: most of the
// binding's overhead there is threads being woken, which costs what the machine makes it cost.
// This counts what the binding itself executes instead: callgrind's user-space instructions, the
// same count for the same binary and inputs whatever else the machine is doing (the kernel's
// work, the database server and waiting are not counted).
//
// One process per count, running one kind of call n times after a warm-up of every kind:
// - `inspect`: awaited from Node (`node`), or run by Rust in a task on a runtime worker (`rust`,
//   the paired benchmark's baseline, in the same process: all n in one task, so that the one
//   JavaScript call starting them cancels out);
// - an executor apply (a fresh proposal each time, proposed and approved first): the executor is
//   a plain function (`function`) or an async function (`async`) returning a receipt, or the Rust
//   answer given at once (`rust-apply`, the paired round trip's baseline). The difference is the
//   callback's round trip: the job handed to JavaScript, the call, the receipt handed back.
// Two values of n: the difference divided by the difference in n is the count per call, with
// start-up, warm-up and shutdown cancelled out. The warm-up is long (300 of each kind) so that V8
// has compiled the code before counting starts; the garbage collector still runs a different
// number of times in each process, which is why Node's counts move more between repeats than
// Python's.
//
// Rust's `inspect`s run natively, many more of them, give the user-space CPU time per call
// (`process.cpuUsage`), and so how many instructions this machine runs per microsecond: what the
// binding's counts cost here. (The binding's CPU time itself is not measured this way: CPU time
// per call moves between runs by more than the binding's share.)
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const CTX = { context: { tenantId: 'acme', principal: 'bench' } }
const ARGS = { invoice_id: 'INV-3001' }
const RECEIPT = { status: 'applied', rows_affected: 0, source_database_mutated: false }
const WARMUP = Number(process.env.WARMUP ?? 300)
const ALL_KINDS = { rust: 'inspect', node: 'inspect', 'rust-apply': 'apply', function: 'apply', async: 'apply' }
const CALLS = (process.env.CALLS ?? 'inspect,apply').split(',') // which kinds of call to count
const KINDS = Object.fromEntries(Object.entries(ALL_KINDS).filter(([, kind]) => CALLS.includes(kind)))

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (x) => Math.round(x).toLocaleString('en-US')
const signed = (x) => (x >= 0 ? '+' : '') + fmt(x)

async function child(who, n, config, ledger) {
  const { Runner } = await import('../index.js')
  const runner = await Runner.open(config, { ledger })
  runner.executor('billing_inproc', who === 'async' ? async () => RECEIPT : () => RECEIPT)
  let applied = 0
  const apply = async (rust) => {
    applied += 1
    const p = await runner.propose(
      'billing.propose_account_credit',
      { invoice_id: 'INV-3001', amount_cents: 1 + (applied % 9000), reason: 'count' },
      CTX,
    )
    await runner.approve(p.proposal_id, { approver: 'lead', roles: ['billing_lead'] })
    if (!runner._benchBaseline('billing_inproc', rust)) throw new Error('no executor to switch')
    const out = await runner.apply(p.proposal_id)
    if (out.receipt.status !== 'applied') throw new Error(JSON.stringify(out.receipt))
  }
  const inspect = async (rust) => {
    if (rust) return runner._benchInspectOnWorker('billing.inspect_invoice', ARGS, CTX)
    const out = await runner.inspect('billing.inspect_invoice', ARGS, CTX)
    if (out.object_id !== 'INV-3001') throw new Error(`unexpected result ${JSON.stringify(out)}`)
  }
  // every kind warmed, so each count's start-up is the same (fewer applies: each is a proposal)
  for (let i = 0; i < WARMUP; i++) {
    await inspect(true)
    await inspect(false)
    if (i % 10 === 0) {
      await apply(true)
      await apply(false)
    }
  }
  const start = process.cpuUsage()
  if (who === 'rust') await runner._benchInspectOnWorker('billing.inspect_invoice', ARGS, CTX, n)
  else for (let i = 0; i < n; i++) await (who === 'node' ? inspect(false) : apply(who === 'rust-apply'))
  const used = process.cpuUsage(start)
  console.log(JSON.stringify({ user_us: used.user, system_us: used.system }))
  await runner.close()
}

function userCpu(who, n, db) {
  const out = execFileSync(process.execPath, [SELF, '--child', who, String(n), db.config, path.join(db.dir, `ledger.${who}.cpu.db`)], {
    encoding: 'utf8',
  })
  return JSON.parse(out.trim().split('\n').at(-1)).user_us / n
}

function count(who, n, db) {
  const out = path.join(db.dir, `callgrind.${who}.${n}`)
  execFileSync(
    'valgrind',
    ['--tool=callgrind', '--quiet', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath, SELF, '--child', who, String(n), db.config, path.join(db.dir, `ledger.${who}.${n}.db`)],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  const totals = /^(?:summary|totals): (\d+)/m.exec(fs.readFileSync(out, 'utf8'))
  if (!totals) throw new Error(`no total in ${out}`)
  return Number(totals[1])
}

async function main() {
  const { BillingDb } = await import('../test/support.mjs')
  const sizes = {
    inspect: [Number(process.env.N_SMALL ?? 200), Number(process.env.N_LARGE ?? 1200)],
    apply: [Number(process.env.N_APPLY_SMALL ?? 50), Number(process.env.N_APPLY_LARGE ?? 250)],
  }
  const repeats = Number(process.env.REPEATS ?? 3)
  const native = Number(process.env.N_NATIVE ?? 3000)
  const perCall = Object.fromEntries(Object.keys(KINDS).map((who) => [who, []]))
  const [user, rates] = [[], []]
  for (let r = 0; r < repeats; r++) {
    const db = new BillingDb()
    try {
      for (const [who, kind] of Object.entries(KINDS)) {
        const [small, large] = sizes[kind]
        perCall[who].push((count(who, large, db) - count(who, small, db)) / (large - small))
      }
      // instructions per µs: Rust's inspect counted (here, if not above), then run natively
      const [small, large] = sizes.inspect
      const rust = KINDS.rust ? perCall.rust.at(-1) : (count('rust', large, db) - count('rust', small, db)) / (large - small)
      user.push(userCpu('rust', native, db))
      rates.push(rust / user.at(-1))
    } finally {
      db.drop()
    }
  }
  const med = Object.fromEntries(Object.entries(perCall).map(([who, v]) => [who, median(v)]))
  const rate = median(rates)
  const line = (label, who, base) => {
    const runs = perCall[who].map((x, i) => fmt(x - perCall[base][i])).join(', ')
    console.log(
      `  ${label}: ${fmt(med[who])} against Rust's ${fmt(med[base])}: ${signed(med[who] - med[base])} ` +
        `(per repeat: ${runs}), about ${((med[who] - med[base]) / rate).toFixed(0)} µs of CPU here`,
    )
  }
  console.log(`Instructions per call (callgrind, user space, every thread; ${repeats} repeats), Node minus Rust in the same process:`)
  if (KINDS.node) line(`await runner.inspect (n=${sizes.inspect[0]} and ${sizes.inspect[1]})`, 'node', 'rust')
  if (KINDS.function) {
    line(`apply with a function executor (n=${sizes.apply[0]} and ${sizes.apply[1]})`, 'function', 'rust-apply')
    line('apply with an async function executor', 'async', 'rust-apply')
  }
  console.log(`  Rust's inspect run natively (n=${native}): ${median(user).toFixed(0)} µs of user-space CPU, so about ${fmt(rate)} instructions per µs here`)
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], Number(process.argv[4]), process.argv[5], process.argv[6])
} else {
  await main()
}
