//! The embedded SQLite demo fixture: a small billing source and a reviewed config.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::Path;

/// The demo config: static_dev context (tenant acme), SQLite source, one read and one proposal.
pub const DEMO_CONFIG: &str = r#"{
  "version": 1,
  "mode": "review",
  "result_format": 2,
  "storage": { "sqlite_path": "local.db" },
  "sources": {
    "billing": { "engine": "sqlite", "path": "billing.sqlite", "statement_timeout_ms": 3000 }
  },
  "trusted_context": {
    "provider": "static_dev",
    "values": { "tenant_id": "acme", "principal": "support_agent_17" }
  },
  "capabilities": [
    {
      "name": "billing.inspect_invoice",
      "kind": "read",
      "description": "Inspect one invoice in the trusted tenant before answering or proposing a change.",
      "source": "billing",
      "target": { "schema": "main", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id" },
      "args": { "invoice_id": { "type": "string", "required": true, "max_length": 128, "description": "Invoice id, e.g. INV-3001" } },
      "lookup": { "id_from_arg": "invoice_id" },
      "visible_columns": ["id", "tenant_id", "status", "balance_cents", "late_fee_cents", "waiver_reason", "updated_at"],
      "evidence": "required",
      "max_rows": 1
    },
    {
      "name": "billing.propose_late_fee_waiver",
      "kind": "proposal",
      "description": "Propose waiving an invoice's late fee. Nothing changes until a billing lead approves.",
      "source": "billing",
      "target": { "schema": "main", "table": "invoices", "primary_key": "id", "tenant_key": "tenant_id" },
      "args": {
        "invoice_id": { "type": "string", "required": true, "max_length": 128 },
        "reason": { "type": "string", "required": true, "max_length": 500 }
      },
      "lookup": { "id_from_arg": "invoice_id" },
      "visible_columns": ["id", "tenant_id", "status", "late_fee_cents", "waiver_reason", "updated_at"],
      "evidence": "required",
      "max_rows": 1,
      "patch": { "late_fee_cents": { "fixed": 0 }, "waiver_reason": { "from_arg": "reason" } },
      "allowed_columns": ["late_fee_cents", "waiver_reason"],
      "numeric_bounds": { "late_fee_cents": { "minimum": 0, "maximum": 10000 } },
      "conflict_guard": { "column": "updated_at" },
      "approval": { "mode": "human", "required_role": "billing_lead" }
    }
  ]
}
"#;

const DEMO_SQL: &str = "
CREATE TABLE invoices (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  status TEXT NOT NULL,
  balance_cents INTEGER NOT NULL,
  late_fee_cents INTEGER NOT NULL,
  waiver_reason TEXT,
  updated_at TEXT NOT NULL
);
INSERT INTO invoices VALUES
  ('INV-3001', 'acme',   'cust_acme_1',   'overdue', 25500, 5500, NULL, '2026-06-20T14:31:08.123456Z'),
  ('INV-3002', 'acme',   'cust_acme_2',   'overdue', 12000, 2500, NULL, '2026-06-21T09:15:00.000001Z'),
  ('INV-9001', 'globex', 'cust_globex_1', 'overdue', 25500, 5500, NULL, '2026-06-20T14:31:08Z');
";

/// Create (or recreate) the demo folder: `billing.sqlite` and `synapsor.runner.json`.
pub fn create_demo(dir: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::Internal(format!("demo setup in {}: {e}", dir.display()));
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io)?;
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let conn = Connection::open(dir.join("billing.sqlite"))?;
    conn.execute_batch(DEMO_SQL)?;
    std::fs::write(dir.join("synapsor.runner.json"), DEMO_CONFIG).map_err(io)?;
    Ok(())
}

/// Simulate another user editing an invoice after the agent read it (bumps `updated_at`).
pub fn simulate_concurrent_edit(dir: &Path, invoice_id: &str) -> Result<()> {
    let conn = Connection::open(dir.join("billing.sqlite"))?;
    conn.execute(
        "UPDATE invoices SET balance_cents = balance_cents + 100, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?1",
        [invoice_id],
    )?;
    Ok(())
}

/// The demo invoice as stored in the source (to show whether it changed).
pub fn invoice_row(dir: &Path, invoice_id: &str) -> Result<serde_json::Value> {
    let conn = Connection::open(dir.join("billing.sqlite"))?;
    let row = conn.query_row(
        "SELECT late_fee_cents, waiver_reason, balance_cents, updated_at FROM invoices WHERE id = ?1",
        [invoice_id],
        |r| Ok(serde_json::json!({"late_fee_cents": r.get::<_, i64>(0)?, "waiver_reason": r.get::<_, Option<String>>(1)?, "balance_cents": r.get::<_, i64>(2)?, "updated_at": r.get::<_, String>(3)?})),
    )?;
    Ok(row)
}

/// Route the demo's proposal capability to an app-owned executor (an `executors` entry named
/// `app`), to try HTTP, command or in-process executors on the demo data.
pub fn route_proposals_to_executor(dir: &Path, executor: serde_json::Value) -> Result<()> {
    let path = dir.join("synapsor.runner.json");
    let io = |e: std::io::Error| Error::Internal(format!("demo config {}: {e}", path.display()));
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).map_err(io)?)
            .map_err(|e| Error::Internal(e.to_string()))?;
    cfg["executors"] = serde_json::json!({ "app": executor });
    cfg["capabilities"][1]["executor"] = serde_json::json!("app");
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).expect("json")).map_err(io)
}
