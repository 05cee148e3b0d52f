//! The only module that builds SQL text. Identifiers come from reviewed config and are
//! re-checked and quoted here; values are always bound parameters.

pub mod mysql;
pub mod postgres;
pub mod sqlite;

use crate::error::{Error, Result};

/// Name of the receipt table every source keeps for idempotent writeback.
pub const RECEIPT_TABLE: &str = "synapsor_writeback_receipts";

pub use crate::values::is_safe_identifier;

/// Fail with `UNSAFE_IDENTIFIER` unless `s` is a safe identifier.
pub fn check_identifier(s: &str) -> Result<&str> {
    if is_safe_identifier(s) {
        Ok(s)
    } else {
        Err(Error::UnsafeIdentifier(s.to_string()))
    }
}

/// Engine-neutral, unquoted statement template for the query audit (parameters never stored).
pub fn statement_template(
    columns: &[String],
    schema: &str,
    table: &str,
    pk: &str,
    tenant: Option<&str>,
    limit: u64,
) -> String {
    let tenant_clause = tenant.map(|t| format!(" AND {t} = ?")).unwrap_or_default();
    format!(
        "SELECT {} FROM {schema}.{table} WHERE {pk} = ?{tenant_clause} LIMIT {limit}",
        columns.join(", ")
    )
}

/// DDL for the receipt table, as printed by `writeback migration`.
pub fn receipt_table_ddl(engine: crate::config::Engine) -> &'static str {
    match engine {
        crate::config::Engine::Postgres => postgres::RECEIPT_DDL,
        crate::config::Engine::Sqlite => sqlite::RECEIPT_DDL,
        crate::config::Engine::Mysql => mysql::RECEIPT_DDL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_identifiers_reject_sql_fragments_and_paths() {
        assert!(is_safe_identifier("late_fee_cents"));
        assert!(is_safe_identifier("_x9"));
        for bad in [
            "",
            "9a",
            "a-b",
            "a.b",
            "../private",
            "id/../../tenant_id",
            "status; DROP TABLE tickets",
            "a b",
            "é",
        ] {
            assert!(!is_safe_identifier(bad), "{bad} must be rejected");
        }
    }

    #[test]
    fn template_has_placeholders_not_values() {
        let t = statement_template(
            &["id".into(), "late_fee_cents".into()],
            "public",
            "invoices",
            "id",
            Some("tenant_id"),
            1,
        );
        assert_eq!(
            t,
            "SELECT id, late_fee_cents FROM public.invoices WHERE id = ? AND tenant_id = ? LIMIT 1"
        );
    }
}
