//! SQLite dialect (sources and nothing else; the ledger keeps its own fixed schema).

use super::check_identifier;
use crate::error::Result;
use crate::values::kinds::ColumnKind;

/// The value domain SQLite's type affinity rules give a declared column type.
pub fn kind_for(declared: &str) -> ColumnKind {
    let t = declared.to_ascii_uppercase();
    let digits = |t: &str| -> Vec<u32> {
        t.split(['(', ')', ','])
            .skip(1)
            .filter_map(|d| d.trim().parse().ok())
            .collect()
    };
    if t.contains("INT") {
        ColumnKind::I64
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        ColumnKind::Text
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        ColumnKind::Float
    } else if t.contains("DEC") || t.starts_with("NUMERIC") {
        let d = digits(&t);
        ColumnKind::Decimal {
            precision: d.first().copied(),
            scale: d.get(1).copied().or(d.first().map(|_| 0)),
        }
    } else if t.contains("BOOL") {
        ColumnKind::Boolean
    } else if t.contains("DATE") || t.contains("TIME") {
        ColumnKind::Timestamp { precision: 3 }
    } else {
        ColumnKind::Other
    }
}

pub const RECEIPT_DDL: &str = "CREATE TABLE IF NOT EXISTS synapsor_writeback_receipts (\n  idempotency_key TEXT PRIMARY KEY,\n  job_id TEXT UNIQUE NOT NULL,\n  proposal_id TEXT NOT NULL,\n  status TEXT NOT NULL,\n  result_hash TEXT,\n  intent_hash TEXT,\n  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),\n  completed_at TEXT\n)";
pub const RECEIPT_CLAIM: &str = "INSERT INTO synapsor_writeback_receipts (idempotency_key, job_id, proposal_id, status, result_hash, intent_hash) VALUES (?1, ?2, ?3, 'in_progress', NULL, ?4) ON CONFLICT (idempotency_key) DO NOTHING";
/// `reconcile`: what the source's receipt table says about one idempotency key.
pub const RECEIPT_READ: &str = "SELECT status, result_hash, completed_at FROM synapsor_writeback_receipts WHERE idempotency_key = ?1";
pub const RECEIPT_SELECT: &str = "SELECT status, result_hash, intent_hash FROM synapsor_writeback_receipts WHERE idempotency_key = ?1";
pub const RECEIPT_FINALIZE: &str = "UPDATE synapsor_writeback_receipts SET status = ?2, result_hash = ?3, completed_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE idempotency_key = ?1";

fn q(ident: &str) -> Result<String> {
    Ok(format!("\"{}\"", check_identifier(ident)?))
}

/// Scoped read by primary key (?1) and tenant (?2).
pub fn select_row(
    schema: &str,
    table: &str,
    columns: &[String],
    pk: &str,
    tenant: Option<&str>,
    limit: Option<u64>,
) -> Result<String> {
    let cols = columns.iter().map(|c| q(c)).collect::<Result<Vec<_>>>()?;
    let mut sql = format!(
        "SELECT {} FROM {}.{} WHERE {} = ?1",
        cols.join(", "),
        q(schema)?,
        q(table)?,
        q(pk)?
    );
    if let Some(t) = tenant {
        sql.push_str(&format!(" AND {} = ?2", q(t)?));
    }
    if let Some(l) = limit {
        sql.push_str(&format!(" LIMIT {}", l.max(1)));
    }
    Ok(sql)
}

/// The declared type of every column of a table (`?1` table, `?2` schema).
pub const COLUMN_TYPES: &str = "SELECT name, type FROM pragma_table_info(?1, ?2)";

/// Guarded UPDATE with numbered parameters: patch values, the new version (when
/// `set_version`), pk, tenant, expected version. With no patch columns it only sets the version.
pub fn update_row(
    schema: &str,
    table: &str,
    patch_columns: &[String],
    pk: &str,
    tenant: Option<&str>,
    version_column: Option<&str>,
    set_version: bool,
) -> Result<String> {
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let mut sets = patch_columns
        .iter()
        .map(|c| Ok(format!("{} = ?{}", q(c)?, next())))
        .collect::<Result<Vec<_>>>()?;
    if let (Some(v), true) = (version_column, set_version) {
        sets.push(format!("{} = ?{}", q(v)?, next()));
    }
    let mut sql = format!(
        "UPDATE {}.{}\nSET {}\nWHERE {} = ?{}",
        q(schema)?,
        q(table)?,
        sets.join(", "),
        q(pk)?,
        next()
    );
    if let Some(t) = tenant {
        sql.push_str(&format!(" AND {} = ?{}", q(t)?, next()));
    }
    if let Some(v) = version_column {
        sql.push_str(&format!(" AND {} = ?{}", q(v)?, next()));
    }
    Ok(sql)
}
