#!/usr/bin/env node
// Synapsor app-owned writeback handler (Fastify starter).
//
// IMPORTANT: your app handler owns the final business write. Before it changes anything it must:
// - check the tenant/scope of the object it touches,
// - compare the expected version (guards.expected_version) inside an app-owned transaction,
// - make the write idempotent on the idempotency key,
// - allow only the business actions you expect,
// - roll back on any error and answer with a safe error receipt.
// Skipping any of these invites cross-tenant writes, lost updates, or duplicate writes.
//
// Env: SYNAPSOR_HANDLER_TOKEN (bearer, required), SYNAPSOR_HANDLER_SIGNING_SECRET (HMAC, recommended),
// PORT (8787). npm install fastify
import crypto from "node:crypto";
import Fastify from "fastify";

const token = process.env.SYNAPSOR_HANDLER_TOKEN;
const secret = process.env.SYNAPSOR_HANDLER_SIGNING_SECRET;
const ALLOWED_ACTIONS = new Set((process.env.SYNAPSOR_HANDLER_ACTIONS || "").split(",").filter(Boolean));
if (!token) throw new Error("SYNAPSOR_HANDLER_TOKEN is required");

// ---- Business hooks: replace the in-memory demo store with your database. -------------------
const demoRows = new Map(); // `${tenant}/${objectId}` -> { version }
const receipts = new Map(); // idempotency key -> receipt (use a table with a UNIQUE key)

async function withTransaction(fn) {
  // Open your app-owned transaction here (BEGIN ... COMMIT / ROLLBACK).
  return fn();
}
async function lockRow(tenantId, objectId, before) {
  // SELECT ... FROM your_table WHERE id = $1 AND tenant_id = $2 FOR UPDATE
  const key = `${tenantId}/${objectId}`;
  if (!demoRows.has(key)) demoRows.set(key, { version: before?.updated_at ?? null });
  return demoRows.get(key);
}
async function applyChange(job, row) {
  // Your business write (insert a credit row, touch two tables, emit an event, ...).
  row.version = new Date().toISOString();
  return { rowsAffected: 1, newVersion: row.version, effects: [{ type: "demo.update", id: job.objectId }] };
}
// ------------------------------------------------------------------------------------------------

const failed = (code, status = "failed") => ({ status, rows_affected: 0, source_database_mutated: false, safe_error_code: code });
const same = (a, b) => { const x = Buffer.from(String(a)); const y = Buffer.from(String(b)); return x.length === y.length && crypto.timingSafeEqual(x, y); };

const app = Fastify({ bodyLimit: 1024 * 1024 });
app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
app.get("/healthz", async () => ({ ok: true }));
app.post("/synapsor/writeback", async (req, reply) => {
  if (!same(req.headers.authorization || "", `Bearer ${token}`)) return reply.code(401).send(failed("UNAUTHORIZED"));
  const raw = req.body || Buffer.alloc(0);
  if (secret) {
    const expected = `sha256=${crypto.createHmac("sha256", secret).update(raw).digest("hex")}`;
    if (!same(req.headers["x-synapsor-signature"] || "", expected)) return reply.code(401).send(failed("INVALID_SIGNATURE"));
    const issued = Date.parse(req.headers["x-synapsor-issued-at"] || "");
    if (!Number.isFinite(issued) || Math.abs(Date.now() - issued) > 5 * 60 * 1000) return reply.code(401).send(failed("INVALID_ISSUED_AT"));
  }
  let request;
  try { request = JSON.parse(raw.toString("utf8")); } catch { return reply.code(400).send(failed("BAD_JSON")); }
  const cs = request.change_set || {};
  const job = { action: cs.action, tenantId: cs.scope?.tenant_id, objectId: cs.scope?.object_id, patch: cs.patch, expected: cs.guards?.expected_version?.value, key: request.idempotency_key };
  if (!job.action || !job.tenantId || !job.objectId || !job.patch || job.key !== req.headers["idempotency-key"]) return reply.code(400).send(failed("BAD_WRITEBACK_REQUEST"));
  if (ALLOWED_ACTIONS.size && !ALLOWED_ACTIONS.has(job.action)) return reply.code(400).send(failed("UNSUPPORTED_ACTION"));
  if (receipts.has(job.key)) return { ...receipts.get(job.key), status: "already_applied", rows_affected: 0, source_database_mutated: false };
  if (request.dry_run) return { status: "applied", rows_affected: 0, source_database_mutated: false };
  try {
    return await withTransaction(async () => {
      const row = await lockRow(job.tenantId, job.objectId, cs.before);
      if (!row) return failed("ROW_NOT_FOUND_OR_WRONG_TENANT", "conflict");
      if (String(row.version) !== String(job.expected)) return { ...failed("ROW_CHANGED_AFTER_PROPOSAL", "conflict"), previous_version: row.version };
      const previous = row.version;
      const out = await applyChange(job, row);
      const receipt = { status: "applied", rows_affected: out.rowsAffected, source_database_mutated: true, previous_version: previous, new_version: out.newVersion, details: { effects: out.effects } };
      receipts.set(job.key, receipt);
      return receipt;
    });
  } catch {
    return reply.code(500).send(failed("HANDLER_EXCEPTION")); // never echo internal error text
  }
});

app.listen({ port: Number(process.env.PORT || 8787), host: "127.0.0.1" });
