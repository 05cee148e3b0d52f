//! MySQL / MariaDB dialect: backtick quoting, `?` placeholders, text projections for exact values.

use super::check_identifier;
use crate::error::Result;
use crate::values::kinds::{Advance, ColumnKind};
use sqlx::AssertSqlSafe;
use sqlx::mysql::{MySql, MySqlArguments};

/// Receipt table DDL. MySQL DDL commits implicitly, so it runs before the apply transaction.
pub const RECEIPT_DDL: &str = "CREATE TABLE IF NOT EXISTS synapsor_writeback_receipts (\n  idempotency_key varchar(255) PRIMARY KEY,\n  job_id varchar(255) UNIQUE NOT NULL,\n  proposal_id varchar(512) NOT NULL,\n  status varchar(64) NOT NULL,\n  result_hash varchar(128),\n  intent_hash varchar(128),\n  created_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n  completed_at timestamp(6) NULL\n)";
pub const COLUMN_TYPES: &str = "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR), CAST(NUMERIC_PRECISION AS SIGNED), CAST(NUMERIC_SCALE AS SIGNED), CAST(DATETIME_PRECISION AS SIGNED) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";
pub const VERSION: &str = "SELECT CAST(VERSION() AS CHAR)";
pub const RECEIPT_CLAIM: &str = "INSERT IGNORE INTO synapsor_writeback_receipts (idempotency_key, job_id, proposal_id, status, result_hash, intent_hash) VALUES (?, ?, ?, 'in_progress', NULL, ?)";
/// Receipt tables created from the reference's DDL have no `intent_hash` column (and the writer
/// may not alter them): claim without it there.
pub const RECEIPT_CLAIM_LEGACY: &str = "INSERT IGNORE INTO synapsor_writeback_receipts (idempotency_key, job_id, proposal_id, status, result_hash) VALUES (?, ?, ?, 'in_progress', NULL)";
pub const RECEIPT_LOCK_LEGACY: &str = "SELECT status, result_hash, NULL FROM synapsor_writeback_receipts WHERE idempotency_key = ? LOCK IN SHARE MODE";
/// Whether the receipt table exists in the connection's database (creating it only then: even
/// `CREATE TABLE IF NOT EXISTS` needs the CREATE privilege on MySQL and MariaDB).
pub const RECEIPT_TABLE_EXISTS: &str = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'synapsor_writeback_receipts'";
pub const RECEIPT_HAS_INTENT: &str = "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'synapsor_writeback_receipts' AND COLUMN_NAME = 'intent_hash'";
/// After a duplicate `INSERT IGNORE` the transaction already holds a shared lock on the receipt;
/// reading it in share mode (not `FOR UPDATE`) avoids the S→X upgrade that deadlocks waiters.
/// `doctor --check-writeback`: a probe receipt written and rolled back.
pub const RECEIPT_PROBE: &str = "INSERT INTO synapsor_writeback_receipts (idempotency_key, job_id, proposal_id, status) VALUES ('doctor-probe', 'doctor-probe', 'doctor', 'doctor')";
/// `reconcile`: what the source's receipt table says about one idempotency key.
pub const RECEIPT_READ: &str = "SELECT CAST(status AS CHAR), CAST(result_hash AS CHAR), CAST(completed_at AS CHAR) FROM synapsor_writeback_receipts WHERE idempotency_key = ?";
pub const RECEIPT_LOCK: &str = "SELECT status, result_hash, intent_hash FROM synapsor_writeback_receipts WHERE idempotency_key = ? LOCK IN SHARE MODE";
pub const RECEIPT_FINALIZE: &str = "UPDATE synapsor_writeback_receipts SET status = ?, result_hash = ?, completed_at = CURRENT_TIMESTAMP(6) WHERE idempotency_key = ?";
/// MariaDB: matches only while the transaction that claimed the receipt is still open (a
/// callback that committed it leaves later statements in autocommit, outside any transaction).
pub const RECEIPT_FINALIZE_MARIADB: &str = "UPDATE synapsor_writeback_receipts SET status = ?, result_hash = ?, completed_at = CURRENT_TIMESTAMP(6) WHERE idempotency_key = ? AND @@in_transaction = 1";

/// How a column is read so that values are exact (integers, text, microsecond timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MyDecode {
    Int,
    Float,
    Text,
    /// DATETIME / TIMESTAMP / DATE / TIME, read as text with microseconds.
    Temporal,
}

/// Map `information_schema.COLUMNS.DATA_TYPE` to a decode rule.
pub fn decode_for(data_type: &str) -> MyDecode {
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
            MyDecode::Int
        }
        "float" | "double" | "real" => MyDecode::Float,
        "datetime" | "timestamp" | "date" | "time" => MyDecode::Temporal,
        _ => MyDecode::Text,
    }
}

/// The value domain of a column from `information_schema.COLUMNS` (`DATA_TYPE`, `COLUMN_TYPE`,
/// `NUMERIC_PRECISION`, `NUMERIC_SCALE`, `DATETIME_PRECISION`).
pub fn kind_for(
    data_type: &str,
    column_type: &str,
    precision: Option<i64>,
    scale: Option<i64>,
    datetime_precision: Option<i64>,
) -> ColumnKind {
    let unsigned = column_type.to_ascii_lowercase().contains("unsigned");
    let digits = |v: Option<i64>| v.and_then(|n| u32::try_from(n).ok());
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" => ColumnKind::int(8, unsigned),
        "smallint" => ColumnKind::int(16, unsigned),
        "mediumint" => ColumnKind::int(24, unsigned),
        "int" | "integer" => ColumnKind::int(32, unsigned),
        "bigint" => ColumnKind::int(64, unsigned),
        "decimal" | "numeric" => ColumnKind::Decimal {
            precision: digits(precision),
            scale: digits(scale),
        },
        "float" | "double" | "real" => ColumnKind::Float,
        "datetime" | "timestamp" => ColumnKind::Timestamp {
            precision: digits(datetime_precision).unwrap_or(0).min(6),
        },
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => ColumnKind::Text,
        _ => ColumnKind::Other,
    }
}

/// A statement built here from reviewed identifiers only.
#[derive(Debug, Clone)]
pub struct MyStatement(String);

impl MyStatement {
    pub fn text(&self) -> &str {
        &self.0
    }
    pub fn query(&self) -> sqlx::query::Query<'static, MySql, MySqlArguments> {
        sqlx::query(AssertSqlSafe(self.0.clone()))
    }
}

fn q(ident: &str) -> Result<String> {
    Ok(format!("`{}`", check_identifier(ident)?))
}

fn projection(columns: &[(String, MyDecode)]) -> Result<String> {
    let parts = columns
        .iter()
        .map(|(c, d)| {
            let qc = q(c)?;
            Ok(match d {
                MyDecode::Int => format!("CAST({qc} AS SIGNED) AS {qc}"),
                MyDecode::Float => format!("CAST({qc} AS DOUBLE) AS {qc}"),
                MyDecode::Temporal => format!("CAST({qc} AS CHAR) AS {qc}"),
                MyDecode::Text => format!("CAST({qc} AS CHAR) AS {qc}"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(parts.join(", "))
}

/// Scoped read (pk `?`, tenant `?`), optionally locking the row.
pub fn select_row(
    schema: &str,
    table: &str,
    columns: &[(String, MyDecode)],
    pk: &str,
    tenant: Option<&str>,
    limit: u64,
    for_update: bool,
) -> Result<MyStatement> {
    let mut sql = format!(
        "SELECT {} FROM {}.{} WHERE {} = ?",
        projection(columns)?,
        q(schema)?,
        q(table)?,
        q(pk)?
    );
    if let Some(t) = tenant {
        sql.push_str(&format!(" AND {} = ?", q(t)?));
    }
    if for_update {
        sql.push_str(" FOR UPDATE");
    } else {
        sql.push_str(&format!(" LIMIT {}", limit.max(1)));
    }
    Ok(MyStatement(sql))
}

/// Guarded UPDATE: patch values and the version advance, then pk, tenant, version predicates
/// (all bound). With no patch columns it only advances the version.
pub fn update_row(
    schema: &str,
    table: &str,
    patch_columns: &[String],
    pk: &str,
    tenant: Option<&str>,
    version_column: Option<&str>,
    advance: Option<Advance>,
) -> Result<MyStatement> {
    let mut sets = patch_columns
        .iter()
        .map(|c| Ok(format!("{} = ?", q(c)?)))
        .collect::<Result<Vec<_>>>()?;
    if let Some(v) = version_column {
        let qv = q(v)?;
        // Assignments run left to right; this one reads only the old version. GREATEST is NULL
        // when an argument is, hence the CASE.
        match advance {
            Some(Advance::Increment) => sets.push(format!("{qv} = {qv} + 1")),
            Some(Advance::Timestamp { precision }) => sets.push(format!(
                "{qv} = CASE WHEN {qv} IS NULL THEN NOW(6) ELSE GREATEST(NOW(6), {qv} + INTERVAL {} MICROSECOND) END",
                Advance::step_micros(precision)
            )),
            Some(Advance::Application) | None => {}
        }
    }
    let mut sql = format!(
        "UPDATE {}.{}\nSET {}\nWHERE {} = ?",
        q(schema)?,
        q(table)?,
        sets.join(", "),
        q(pk)?
    );
    if let Some(t) = tenant {
        sql.push_str(&format!(" AND {} = ?", q(t)?));
    }
    if let Some(v) = version_column {
        sql.push_str(&format!(" AND {} = ?", q(v)?));
    }
    Ok(MyStatement(sql))
}

/// Per-transaction statement timeout: MariaDB `max_statement_time` (seconds), MySQL
/// `max_execution_time` (milliseconds, SELECT only). The value is an integer from config.
pub fn set_timeout(mariadb: bool, ms: u64) -> sqlx::SqlStr {
    use sqlx::SqlSafeStr;
    let sql = if mariadb {
        format!("SET SESSION max_statement_time = {}", ms as f64 / 1000.0)
    } else {
        format!("SET SESSION max_execution_time = {ms}")
    };
    AssertSqlSafe(sql).into_sql_str()
}

/// A statement written by the host application's own executor code, never model input.
pub fn app_statement(sql: &str) -> sqlx::query::Query<'static, MySql, MySqlArguments> {
    sqlx::query(AssertSqlSafe(sql.to_string()))
}

pub fn fixed(sql: &'static str) -> sqlx::query::Query<'static, MySql, MySqlArguments> {
    sqlx::query(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_statement_follows_the_server_flavor() {
        assert_eq!(
            set_timeout(true, 3000).as_str(),
            "SET SESSION max_statement_time = 3"
        );
        assert_eq!(
            set_timeout(true, 250).as_str(),
            "SET SESSION max_statement_time = 0.25"
        );
        assert_eq!(
            set_timeout(false, 3000).as_str(),
            "SET SESSION max_execution_time = 3000"
        );
        assert!(
            RECEIPT_LOCK.ends_with("LOCK IN SHARE MODE"),
            "no S-to-X upgrade after a duplicate claim"
        );
    }

    #[test]
    fn update_uses_backticks_and_placeholders_only() {
        let s = update_row(
            "appdb",
            "orders",
            &["refund_note".into()],
            "id",
            Some("tenant_id"),
            Some("updated_at"),
            Some(Advance::Increment),
        )
        .unwrap();
        assert_eq!(
            s.text(),
            "UPDATE `appdb`.`orders`\nSET `refund_note` = ?, `updated_at` = `updated_at` + 1\nWHERE `id` = ? AND `tenant_id` = ? AND `updated_at` = ?"
        );
        assert!(select_row("appdb", "orders;drop", &[], "id", None, 1, false).is_err());
    }
}
