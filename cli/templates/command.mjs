#!/usr/bin/env node
// Synapsor app-owned writeback command handler (starter): the request arrives as JSON on
// stdin, the receipt leaves as JSON on stdout; anything on stderr stays out of receipts.
//
// IMPORTANT: your app handler owns the final business write. Check the tenant/scope, compare
// the expected version in an app-owned transaction, stay idempotent on the idempotency key,
// allow only expected actions, roll back on error and answer with a safe error receipt.
// Skipping these invites cross-tenant writes, lost updates, or duplicate writes.
//
// Env: SYNAPSOR_HANDLER_STATE (idempotency file, default ./.synapsor/command-handler-state.json).
import fs from "node:fs";
import path from "node:path";

const statePath = process.env.SYNAPSOR_HANDLER_STATE || "./.synapsor/command-handler-state.json";
const load = () => { try { return JSON.parse(fs.readFileSync(statePath, "utf8")); } catch { return { receipts: {}, rows: {} }; } };
const save = (s) => { fs.mkdirSync(path.dirname(statePath), { recursive: true }); fs.writeFileSync(statePath, JSON.stringify(s)); };
const answer = (r) => { process.stdout.write(`${JSON.stringify(r)}\n`); };
const failed = (code, status = "failed") => ({ status, rows_affected: 0, source_database_mutated: false, safe_error_code: code });

let input = "";
process.stdin.on("data", (c) => { input += c; });
process.stdin.on("end", () => {
  let req;
  try { req = JSON.parse(input); } catch { return answer(failed("BAD_JSON")); }
  const cs = req.change_set || {};
  const key = req.idempotency_key;
  const tenant = cs.scope?.tenant_id;
  const objectId = cs.scope?.object_id;
  if (!key || !tenant || !objectId || !cs.patch) return answer(failed("BAD_WRITEBACK_REQUEST"));
  const state = load();
  // idempotency: a key seen before is answered, never applied twice
  if (state.receipts[key]) return answer({ ...state.receipts[key], status: "already_applied", rows_affected: 0, source_database_mutated: false });
  if (req.dry_run) return answer({ status: "applied", rows_affected: 0, source_database_mutated: false });
  // ---- Business hooks: replace the demo state with your database transaction. ----
  const rowKey = `${tenant}/${objectId}`;
  const row = state.rows[rowKey] || { version: cs.before?.updated_at ?? null };
  if (String(row.version) !== String(cs.guards?.expected_version?.value)) return answer({ ...failed("ROW_CHANGED_AFTER_PROPOSAL", "conflict"), previous_version: row.version });
  const previous = row.version;
  row.version = new Date().toISOString();
  state.rows[rowKey] = row;
  // -----------------------------------------------------------------------------------
  const receipt = { status: "applied", rows_affected: 1, source_database_mutated: true, previous_version: previous, new_version: row.version };
  state.receipts[key] = receipt;
  save(state);
  answer(receipt);
});
