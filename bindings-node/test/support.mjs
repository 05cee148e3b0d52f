// Test support: a throwaway PostgreSQL database per test, loaded with the billing example.
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const ROOT = path.resolve(import.meta.dirname, '..', '..')
export const EXAMPLE = path.join(ROOT, 'examples', 'mcp-postgres-billing-app-handler')
const ADMIN = process.env.SYNAPSOR_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const BASE = ADMIN.slice(0, ADMIN.lastIndexOf('/'))
const HOSTPORT = ADMIN.split('@')[1].split('/')[0]

export const ACME = { tenantId: 'acme', principal: 'agent:acme' }
export const GLOBEX = { tenantId: 'globex', principal: 'agent:globex' }

export function psql(url, { sql, file }) {
  const args = [url, '-q', '-At', '-v', 'ON_ERROR_STOP=1', ...(sql !== undefined ? ['-c', sql] : ['-f', file])]
  return execFileSync('psql', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

/**
 * A fresh database with the billing schema and seed, readers/writers by environment variable,
 * and a config using the `host` context provider and an in-process executor `billing_inproc`
 * for `billing.propose_account_credit`. `drop()` removes everything.
 */
export class BillingDb {
  constructor(t) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synnode-'))
    this.name = `synnode_${randomUUID().replaceAll('-', '').slice(0, 12)}`
    this.url = `${BASE}/${this.name}`
    psql(ADMIN, { sql: `CREATE DATABASE ${this.name}` })
    for (const role of ['synapsor_reader', 'synapsor_writer']) {
      psql(this.url, {
        sql: `DO $$ BEGIN CREATE ROLE ${role} LOGIN PASSWORD '${role}_password'; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`,
      })
    }
    const schema = fs
      .readFileSync(path.join(EXAMPLE, 'schema.sql'), 'utf8')
      .replace(/^DO \$\$[\s\S]*?^\$\$;/gm, '')
      .replaceAll('synapsor_billing_app_handler', this.name)
    fs.writeFileSync(path.join(this.dir, 'schema.sql'), schema)
    psql(this.url, { file: path.join(this.dir, 'schema.sql') })
    psql(this.url, { file: path.join(EXAMPLE, 'seed.sql') })
    const suffix = this.name.toUpperCase()
    this.readEnv = `SYNNODE_READ_${suffix}`
    this.writeEnv = `SYNNODE_WRITE_${suffix}`
    process.env[this.readEnv] = `postgres://synapsor_reader:x@${HOSTPORT}/${this.name}`
    process.env[this.writeEnv] = `postgres://synapsor_writer:x@${HOSTPORT}/${this.name}`
    this.config = path.join(this.dir, 'synapsor.runner.json')
    this.ledger = path.join(this.dir, 'ledger.db')
    const cfg = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'synapsor.runner.json'), 'utf8'))
    delete cfg.storage
    const src = cfg.sources.billing_postgres
    src.read_url_env = this.readEnv
    src.write_url_env = this.writeEnv
    cfg.trusted_context = { provider: 'host' }
    cfg.contexts = { local_operator: { provider: 'host' } }
    cfg.executors = { billing_inproc: { type: 'in_process', timeout_ms: 5000 } }
    for (const cap of cfg.capabilities) {
      if (cap.name === 'billing.propose_account_credit') cap.executor = 'billing_inproc'
    }
    fs.writeFileSync(this.config, JSON.stringify(cfg, null, 2))
    t?.after(() => this.drop())
  }

  sql(q) {
    return psql(this.url, { sql: q })
  }

  drop() {
    delete process.env[this.readEnv]
    delete process.env[this.writeEnv]
    psql(ADMIN, { sql: `DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)` })
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}
