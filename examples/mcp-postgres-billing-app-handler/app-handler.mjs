#!/usr/bin/env node
// App-owned writeback handler for the billing example. The runner POSTs an approved change
// here; this app decides the business effect: insert an account credit and bump the invoice,
// in one transaction, idempotent on the idempotency key, refusing a stale invoice version.
//
// Env: BILLING_APP_WRITE_URL (required), BILLING_APP_HANDLER_PORT (8787),
// BILLING_APP_HANDLER_TOKEN (bearer, required), BILLING_APP_HANDLER_SIGNING_SECRET (optional HMAC).
import http from "node:http";
import crypto from "node:crypto";
import pg from "pg";

const port = Number(process.env.BILLING_APP_HANDLER_PORT || "8787");
const token = process.env.BILLING_APP_HANDLER_TOKEN;
const signingSecret = process.env.BILLING_APP_HANDLER_SIGNING_SECRET;
const databaseUrl = process.env.BILLING_APP_WRITE_URL;
const MAX_BODY = 1024 * 1024;
const ISSUED_AT_SKEW_MS = 5 * 60 * 1000;

if (!databaseUrl || !token) {
  console.error("BILLING_APP_WRITE_URL and BILLING_APP_HANDLER_TOKEN are required.");
  process.exit(1);
}

const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });

const receipt = (status, extra = {}) => ({ status, rows_affected: 0, source_database_mutated: false, ...extra });

function sameSecret(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error("body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function send(res, status, body) {
  res.statusCode = status;
  res.setHeader("content-type", "application/json; charset=utf-8");
  res.end(`${JSON.stringify(body)}\n`);
}

async function applyCredit(request) {
  const cs = request.change_set;
  if (!cs || cs.action !== "billing.propose_account_credit") return receipt("failed", { safe_error_code: "UNSUPPORTED_ACTION" });
  const key = String(request.idempotency_key || "");
  const proposalId = String(request.proposal_id || "");
  const tenant = String(cs.scope?.tenant_id ?? "");
  const invoiceId = String(cs.scope?.object_id ?? "");
  const amount = Number(cs.patch?.credit_requested_cents);
  const reason = String(cs.patch?.credit_reason ?? "approved account credit");
  const expected = cs.guards?.expected_version?.value;
  const principal = String(cs.principal?.id ?? "approved_operator");
  if (!key || !proposalId || !tenant || !invoiceId || !Number.isInteger(amount) || amount <= 0 || expected == null) {
    return receipt("failed", { safe_error_code: "BAD_WRITEBACK_REQUEST" });
  }
  if (request.dry_run) return receipt("applied", { rows_affected: 0, details: { dry_run: true } });

  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const seen = await client.query("SELECT id FROM public.account_credits WHERE idempotency_key = $1", [key]);
    if (seen.rowCount) {
      await client.query("COMMIT");
      return receipt("already_applied", { details: { credit_id: seen.rows[0].id } });
    }
    // Lock the invoice under the tenant guard; missing and foreign rows look the same.
    const inv = await client.query(
      "SELECT customer_id, updated_at::text AS version, (updated_at = $3::timestamptz) AS fresh FROM public.invoices WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
      [invoiceId, tenant, expected],
    );
    if (!inv.rowCount) {
      await client.query("ROLLBACK");
      return receipt("conflict", { safe_error_code: "ROW_NOT_FOUND_OR_WRONG_TENANT" });
    }
    if (!inv.rows[0].fresh) {
      await client.query("ROLLBACK");
      return receipt("conflict", { safe_error_code: "ROW_CHANGED_AFTER_PROPOSAL", previous_version: inv.rows[0].version });
    }
    const creditId = `CR-${proposalId.replace(/[^A-Za-z0-9]/g, "").slice(-12)}`;
    await client.query(
      "INSERT INTO public.account_credits (id, tenant_id, invoice_id, customer_id, amount_cents, reason, idempotency_key, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      [creditId, tenant, invoiceId, inv.rows[0].customer_id, amount, reason, key, principal],
    );
    const upd = await client.query(
      "UPDATE public.invoices SET credit_requested_cents = $1, credit_reason = $2, credited_cents = credited_cents + $1, updated_at = now() WHERE id = $3 AND tenant_id = $4 RETURNING updated_at::text AS version",
      [amount, reason, invoiceId, tenant],
    );
    await client.query("COMMIT");
    return receipt("applied", {
      rows_affected: 2,
      source_database_mutated: true,
      previous_version: inv.rows[0].version,
      new_version: upd.rows[0].version,
      details: { effects: [{ type: "db.insert", table: "account_credits", id: creditId }, { type: "db.update", table: "invoices", id: invoiceId }] },
    });
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    // Duplicate key from a concurrent retry: the other attempt applied it.
    if (error && error.code === "23505") return receipt("already_applied");
    throw error;
  } finally {
    client.release();
  }
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === "GET" && req.url === "/healthz") return send(res, 200, { ok: true });
    if (req.method !== "POST" || req.url !== "/synapsor/writeback") return send(res, 404, receipt("failed", { safe_error_code: "NOT_FOUND" }));
    if (!sameSecret(req.headers.authorization || "", `Bearer ${token}`)) return send(res, 401, receipt("failed", { safe_error_code: "UNAUTHORIZED" }));
    const raw = await readBody(req);
    if (signingSecret) {
      const expected = `sha256=${crypto.createHmac("sha256", signingSecret).update(raw).digest("hex")}`;
      if (!sameSecret(req.headers["x-synapsor-signature"] || "", expected)) return send(res, 401, receipt("failed", { safe_error_code: "INVALID_SIGNATURE" }));
      const issued = Date.parse(req.headers["x-synapsor-issued-at"] || "");
      if (!Number.isFinite(issued) || Math.abs(Date.now() - issued) > ISSUED_AT_SKEW_MS) return send(res, 401, receipt("failed", { safe_error_code: "INVALID_ISSUED_AT" }));
    }
    let request;
    try {
      request = JSON.parse(raw.toString("utf8") || "{}");
    } catch {
      return send(res, 400, receipt("failed", { safe_error_code: "BAD_JSON" }));
    }
    if (req.headers["idempotency-key"] !== request.idempotency_key) return send(res, 400, receipt("failed", { safe_error_code: "BAD_WRITEBACK_REQUEST" }));
    return send(res, 200, await applyCredit(request));
  } catch {
    // Never echo internals (driver text, stack traces) back to the runner.
    return send(res, 500, receipt("failed", { safe_error_code: "HANDLER_EXCEPTION" }));
  }
});

server.listen(port, "127.0.0.1", () => console.error(`billing app handler on http://127.0.0.1:${port}/synapsor/writeback`));
for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => server.close(() => pool.end().then(() => process.exit(0))));
