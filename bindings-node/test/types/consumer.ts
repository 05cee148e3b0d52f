// A small consumer of @synapsor/runner-native, type-checked against the generated index.d.ts.
// Lines marked @ts-expect-error must fail to type-check: the check fails if the types get looser.
import {
  Runner,
  Transaction,
  type ApplyResult,
  type Context,
  type Executor,
  type ExecutorJob,
  type ExecutorReceipt,
  type InspectResult,
  type ProposalResult,
  type StoredProposal,
  type SynapsorError,
  type ToolDefinition,
  version,
} from '@synapsor/runner-native'

const context: Context = { tenantId: 'acme', principal: 'user_17' }

// Written from docs/node.md, with no casts: the job's fields are typed all the way down.
const credit: Executor = async (job: ExecutorJob, tx: Transaction): Promise<ExecutorReceipt> => {
  const { scope, patch, principal, guards, target } = job.change_set
  const amount = patch.credit_requested_cents
  const reason = patch.credit_reason
  const row = await tx.fetchOne('SELECT customer_id FROM public.invoices WHERE id = $1 AND tenant_id = $2', [
    scope.object_id,
    scope.tenant_id,
  ])
  const n: number = await tx.execute(
    'INSERT INTO public.account_credits (id, tenant_id, invoice_id, customer_id, amount_cents, reason, idempotency_key, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
    [`CR-${job.proposal_id}`, scope.tenant_id, scope.object_id, row?.customer_id ?? null, amount, reason, job.idempotency_key, principal.id],
  )
  const version: string = guards.expected_version.column
  const table: string = `${target.schema}.${target.table}`
  const same: boolean = job.request.change_set === job.change_set && job.request.schema_version === 'synapsor.handler-writeback.v1'
  void [version, table, same, job.request.issued_at, job.change_set.before, job.change_set.after]
  // @ts-expect-error scope has no such field: typos in the job are caught
  void job.change_set.scope.objectId
  // @ts-expect-error a patch value is a scalar, never an object
  const wrong: { nested: string } = patch.credit_reason
  void wrong
  return { status: 'applied', rows_affected: n, source_database_mutated: true, details: { customer: row?.customer_id ?? null } }
}

const syncCredit: Executor = (job, tx) => {
  const rows = tx.fetchAllSync('SELECT 1 AS one')
  return { status: 'applied', rows_affected: rows.length + tx.executeSync('SELECT 1'), idempotency_key: job.idempotency_key }
}

export async function main(): Promise<string> {
  const runner: Runner = await Runner.open('synapsor.runner.json', { ledger: '.synapsor/local.db' })
  runner.executor('billing_inproc', credit)
  runner.executor('billing_sync', syncCredit)
  const read: InspectResult = await runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context })
  const fee: unknown = read.data.late_fee_cents
  const p: ProposalResult = await runner.propose('billing.propose_late_fee_waiver', { invoice_id: 'INV-3001', reason: 'x' }, { context })
  const approved: StoredProposal = await runner.approve(p.proposal_id, { approver: 'lead_1', roles: ['billing_lead'] })
  const out: ApplyResult = await runner.apply(approved.proposal_id, { dryRun: false })
  const status: string = out.receipt.status
  const listed: StoredProposal[] = await runner.proposals({ state: 'pending_review', tenantId: 'acme', limit: 10 })
  const tools: ToolDefinition[] = runner.tools({ aliasMode: 'openai' })
  const envelope = await runner.callTool(tools[0].name, { invoice_id: 'INV-3001' }, { context })
  const reply = await runner.mcpHandle({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { context, aliasMode: 'both' })
  await runner.reject(p.proposal_id, { approver: 'lead_1', reason: 'dup' })
  const replay = await runner.replay(p.proposal_id)
  try {
    await runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-9001' }, { context })
  } catch (err) {
    const e = err as SynapsorError
    const code: string = e.code
    const retry: boolean = e.retryable
    void [code, retry, e.issues?.[0]?.path]
  }
  runner.close()
  const closed: boolean = runner.closed
  return [version(), fee, status, listed.length, envelope.ok, reply, replay.proposal.state, closed].join(',')
}

export async function misuse(runner: Runner): Promise<void> {
  // @ts-expect-error tenant and principal use camelCase options
  await runner.inspect('billing.inspect_invoice', { invoice_id: 'INV-3001' }, { context: { tenant_id: 'acme', principal: 'p' } })
  // @ts-expect-error approve needs an approver
  await runner.approve('prop_1', { roles: ['billing_lead'] })
  // @ts-expect-error alias modes are a closed set
  runner.tools({ aliasMode: 'shouty' })
  // @ts-expect-error results are typed, not any
  const n: number = (await runner.inspect('c', {}, { context: { tenantId: 'a', principal: 'p' } })).object_id
  // @ts-expect-error an executor returns a receipt object
  runner.executor('x', async () => 'done')
  // @ts-expect-error tx.execute resolves to a number of rows
  runner.executor('y', async (_job, tx) => ({ status: 'applied', rows_affected: (await tx.execute('SELECT 1')) as string }))
  // @ts-expect-error Runner has no public constructor arguments
  new Runner('synapsor.runner.json')
  void n
}
