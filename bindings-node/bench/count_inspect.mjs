// Instructions per `inspect`, Node minus Rust, counted by valgrind (scripts/bench-instructions).
//
// The timed benchmark (bench_calls.mjs) measures the host as much as the code: most of the
// binding's overhead there is threads being woken, which costs what the machine makes it cost.
// This counts what the binding itself executes instead: callgrind's user-space instructions, the
// same count for the same binary and inputs whatever else the machine is doing (the kernel's
// work, the database server and waiting are not counted).
//
// One process per count: `inspect` run n times either from Node (`await runner.inspect`) or by
// Rust in a task on a runtime worker (the paired benchmark's baseline, in the same process), for
// two values of n; the difference divided by the difference in n is the count per call, with
// start-up, warm-up and shutdown cancelled out. The runner is opened with `prewake: false`: the
// pre-wake's loop turns are spinning while waiting (their count depends on timing, not on the
// call), so this is the binding's own work without them. Rust's calls run natively, many more of
// them, give the user-space CPU time per call (`process.cpuUsage`), and so how many instructions
// this machine runs per microsecond: what the binding's count costs here. (The binding's CPU time
// itself is not measured this way: CPU time per call moves between runs by more than its share.)
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const CTX = { context: { tenantId: 'acme', principal: 'bench' } }
const ARGS = { invoice_id: 'INV-3001' }
const WARMUP = Number(process.env.WARMUP ?? 300)

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (x) => Math.round(x).toLocaleString('en-US')

async function child(who, n, config, ledger) {
  const { Runner } = await import('../index.js')
  const runner = await Runner.open(config, { ledger, prewake: false })
  for (let i = 0; i < WARMUP; i++) {
    // both kinds warmed, so each count's start-up is the same
    await runner.inspect('billing.inspect_invoice', ARGS, CTX)
    await runner._benchInspectOnWorker('billing.inspect_invoice', ARGS, CTX)
  }
  const start = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    if (who === 'node') {
      const out = await runner.inspect('billing.inspect_invoice', ARGS, CTX)
      if (out.object_id !== 'INV-3001') throw new Error(`unexpected result ${JSON.stringify(out)}`)
    } else {
      await runner._benchInspectOnWorker('billing.inspect_invoice', ARGS, CTX)
    }
  }
  const used = process.cpuUsage(start)
  console.log(JSON.stringify({ user_us: used.user, system_us: used.system }))
  await runner.close()
}

function userCpu(who, n, db) {
  const out = execFileSync(process.execPath, [SELF, '--child', who, String(n), db.config, path.join(db.dir, `ledger.${who}.cpu.db`)], {
    encoding: 'utf8',
  })
  const times = JSON.parse(out.trim().split('\n').at(-1))
  return times.user_us / n
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
  const small = Number(process.env.N_SMALL ?? 200)
  const large = Number(process.env.N_LARGE ?? 1200)
  const repeats = Number(process.env.REPEATS ?? 3)
  const native = Number(process.env.N_NATIVE ?? 3000)
  const perCall = { rust: [], node: [] }
  const user = []
  for (let r = 0; r < repeats; r++) {
    const db = new BillingDb()
    try {
      for (const who of ['rust', 'node']) perCall[who].push((count(who, large, db) - count(who, small, db)) / (large - small))
      user.push(userCpu('rust', native, db))
    } finally {
      db.drop()
    }
  }
  const rust = median(perCall.rust)
  const node = median(perCall.node)
  const runs = perCall.node.map((x, i) => fmt(x - perCall.rust[i])).join(', ')
  console.log(`Instructions per inspect (callgrind, user space, every thread; n=${small} and n=${large}, ${repeats} repeats, prewake: false):`)
  console.log(`  Rust on a runtime worker: ${fmt(rust)}`)
  console.log(`  Node await runner.inspect: ${fmt(node)}`)
  console.log(`  Node minus Rust: ${fmt(node - rust)} (per repeat: ${runs})`)
  const rate = rust / median(user)
  console.log(
    `Rust's inspect run natively (n=${native}, ${repeats} repeats): ${median(user).toFixed(0)} µs of user-space CPU, ` +
      `so about ${fmt(rate)} instructions per µs here; Node minus Rust is about ${((node - rust) / rate).toFixed(0)} µs of CPU`,
  )
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], Number(process.argv[4]), process.argv[5], process.argv[6])
} else {
  await main()
}
