// A Fastify billing app embedding @synapsor/runner-native against PostgreSQL.
//
// - POST /mcp: MCP for agents. The app's own auth (a bearer API key here; sessions or JWTs in a
//   real app) decides tenant and principal; the MCP message body never can.
// - GET /reviews/proposals, POST /reviews/proposals/:id/approve, POST /reviews/proposals/:id/apply:
//   reviewer routes, outside anything the model can call, with the app's own role checks.
// - /review/: the review page and its API (list, a proposal's story, approve, reject), mounted
//   behind the same login and scoped to the reviewer's tenant.
// - An in-process executor records the account credit (insert + invoice update) inside the
//   runner's guarded transaction: row locked under the tenant, version checked, receipt
//   committed with the writes, idempotent retries; a throw rolls everything back.
//
// Run: BILLING_APP_READ_URL=... BILLING_APP_WRITE_URL=... BILLING_APP_USERS='{...}' node app.mjs
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import { Runner } from '@synapsor/runner-native'
import { reviewPlugin } from '@synapsor/runner-native/review'

const STATUS = {
  NotFoundError: 404,
  ApprovalError: 403,
  ConflictError: 409,
  PolicyError: 422,
  UnavailableError: 503,
}

/** Same business effect as the seed's Node handler, in the guarded transaction. */
export async function creditAccount(job, tx) {
  const cs = job.change_set
  const { object_id: invoice, tenant_id: tenant } = cs.scope
  const { credit_requested_cents: amount, credit_reason: reason } = cs.patch
  if (job.dry_run) return { status: 'applied', rows_affected: 0, source_database_mutated: false }
  const inv = await tx.fetchOne('SELECT customer_id FROM public.invoices WHERE id = $1 AND tenant_id = $2', [
    invoice,
    tenant,
  ])
  const creditId = 'CR-' + job.proposal_id.replace(/[^A-Za-z0-9]/g, '').slice(-12)
  await tx.execute(
    'INSERT INTO public.account_credits (id, tenant_id, invoice_id, customer_id, amount_cents, reason, idempotency_key, created_by)' +
      ' VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [creditId, tenant, invoice, inv.customer_id, amount, reason, job.idempotency_key, cs.principal.id],
  )
  await tx.execute(
    'UPDATE public.invoices SET credit_requested_cents = $1, credit_reason = $2, credited_cents = credited_cents + $1,' +
      ' updated_at = now() WHERE id = $3 AND tenant_id = $4',
    [amount, reason, invoice, tenant],
  )
  return {
    status: 'applied',
    rows_affected: 2,
    source_database_mutated: true,
    details: { effects: [{ type: 'db.insert', table: 'account_credits', id: creditId }] },
  }
}

export async function buildApp({
  config = process.env.SYNAPSOR_CONFIG ?? path.join(import.meta.dirname, 'synapsor.runner.json'),
  ledger = process.env.SYNAPSOR_LEDGER,
  users = JSON.parse(process.env.BILLING_APP_USERS ?? '{}'),
  logger = false,
} = {}) {
  const runner = await Runner.open(config, { ledger })
  runner.executor('billing_inproc', creditAccount)

  const app = Fastify({ logger })
  app.addHook('onClose', async () => runner.close())

  // API key -> user. Stand-in for the app's real identity system.
  const authenticate = async (req, reply) => {
    const auth = req.headers.authorization ?? ''
    req.user = auth.startsWith('Bearer ') ? users[auth.slice(7).trim()] : undefined
    if (!req.user) {
      reply.header('WWW-Authenticate', 'Bearer')
      return reply.code(401).send({ ok: false, code: 'UNAUTHORIZED' })
    }
  }

  app.setErrorHandler((err, _req, reply) => {
    if (typeof err.code === 'string' && err.name in STATUS) {
      return reply.code(STATUS[err.name]).send({ ok: false, code: err.code })
    }
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ ok: false, code: err.code })
    app.log.error(err)
    return reply.code(500).send({ ok: false, code: err.code ?? 'INTERNAL' })
  })

  app.get('/healthz', async () => ({ ok: true }))

  // The review screens, behind the same login; a reviewer sees only their tenant's proposals.
  const reviewer = (req) => {
    const auth = req.headers.authorization ?? ''
    const user = auth.startsWith('Bearer ') ? users[auth.slice(7).trim()] : undefined
    return user ? { id: user.principal, roles: user.roles ?? [], tenantId: user.tenant_id } : null
  }
  app.register(reviewPlugin({ runner, reviewer }), { prefix: '/review' })

  app.post('/mcp', { preHandler: authenticate }, async (req, reply) => {
    const context = { tenantId: req.user.tenant_id, principal: req.user.principal }
    const answer = await runner.mcpHandle(req.body, { context })
    return answer === null ? reply.code(202).send() : answer
  })
  // Streamable HTTP: this endpoint answers on the POST; it opens no server-to-client stream.
  app.get('/mcp', async (_req, reply) => reply.code(405).header('allow', 'POST').send())

  /** A proposal of the reviewer's tenant; another tenant's looks missing. */
  const ownProposal = async (id, user) => {
    const mine = await runner.proposals({ tenantId: user.tenant_id, limit: 500 })
    const found = mine.find((p) => p.proposal_id === id)
    if (!found) throw Object.assign(new Error('proposal not found'), { statusCode: 404, code: 'NOT_FOUND' })
    return found
  }

  app.get('/reviews/proposals', { preHandler: authenticate }, async (req) =>
    runner.proposals({ state: req.query.state ?? 'pending_review', tenantId: req.user.tenant_id }),
  )

  app.post('/reviews/proposals/:id/approve', { preHandler: authenticate }, async (req) => {
    await ownProposal(req.params.id, req.user)
    return runner.approve(req.params.id, { approver: req.user.principal, roles: req.user.roles ?? [] })
  })

  app.post('/reviews/proposals/:id/apply', { preHandler: authenticate }, async (req, reply) => {
    await ownProposal(req.params.id, req.user)
    if (!(req.user.roles ?? []).includes('billing_lead')) {
      return reply.code(403).send({ ok: false, code: 'BILLING_LEAD_REQUIRED' })
    }
    const outcome = await runner.apply(req.params.id)
    return { status: outcome.receipt.status, receipt: outcome.receipt }
  })

  return app
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const app = await buildApp({ logger: true })
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8000) })
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => app.close())
}
