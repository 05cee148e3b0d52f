// The generated index.d.ts type-checks a small consumer (test/types/consumer.ts) under strict
// TypeScript, including lines that must be rejected (@ts-expect-error).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'

const PKG = path.resolve(import.meta.dirname, '..')

test('index.d.ts type-checks a consumer with tsc --strict', () => {
  const tsc = path.join(PKG, 'node_modules', 'typescript', 'bin', 'tsc')
  assert.ok(fs.existsSync(tsc), 'typescript is a devDependency (npm ci in bindings-node)')
  const out = spawnSync(process.execPath, [tsc, '-p', path.join(PKG, 'test', 'types', 'tsconfig.json')], {
    encoding: 'utf8',
    timeout: 120_000,
  })
  assert.equal(out.status, 0, out.stdout + out.stderr)
})

test('index.d.ts declares every export of the native module', async () => {
  const native = await import(path.join(PKG, 'index.js'))
  const dts = fs.readFileSync(path.join(PKG, 'index.d.ts'), 'utf8')
  const exported = Object.keys(native.default).filter((k) => !k.startsWith('__'))
  assert.ok(exported.length >= 3, exported.join(','))
  for (const name of exported) {
    assert.match(dts, new RegExp(`export declare (class|function|const) ${name}\\b`), name)
  }
  for (const method of Object.getOwnPropertyNames(native.Runner.prototype).filter((m) => m !== 'constructor')) {
    assert.match(dts, new RegExp(`\\n  (get )?${method}\\(`), `Runner.${method}`)
  }
  for (const method of Object.getOwnPropertyNames(native.Runner).filter((m) => !['length', 'name', 'prototype', 'arguments', 'caller'].includes(m))) {
    assert.match(dts, new RegExp(`\\n  static ${method}\\(`), `Runner.${method}`)
  }
  for (const method of Object.getOwnPropertyNames(native.Transaction.prototype).filter((m) => m !== 'constructor')) {
    assert.match(dts, new RegExp(`\\n  ${method}\\(`), `Transaction.${method}`)
  }
})
