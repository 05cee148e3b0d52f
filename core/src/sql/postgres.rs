//! PostgreSQL dialect: quoting, typed casts for bound text values, statements.

use super::check_identifier;
use crate::error::{Error, Result};
use crate::values::kinds::{Advance, ColumnKind};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgArguments, Postgres};

/// Receipt table DDL (transactional in PostgreSQL, so it may run inside the apply transaction).
pub const RECEIPT_DDL: &str = "CREATE TABLE IF NOT EXISTS synapsor_writeback_receipts (\n  idempotency_key text PRIMARY KEY,\n  job_id text UNIQUE NOT NULL,\n  proposal_id text NOT NULL,\n  status text NOT NULL,\n  result_hash text,\n  intent_hash text,\n  created_at timestamptz NOT NULL DEFAULT now(),\n  completed_at timestamptz\n)";
/// Column names and type names of a table in one round trip (`$1` is the quoted, qualified name).
pub const COLUMN_TYPES: &str = "SELECT a.attname::text, t.typname::text, a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped";
/// `ON CONFLICT DO NOTHING` without a target: racing duplicates may collide on `job_id` as well
/// as on the idempotency key; either way the existing receipt answers.
pub const RECEIPT_CLAIM: &str = "INSERT INTO synapsor_writeback_receipts (idempotency_key, job_id, proposal_id, status, result_hash, intent_hash) VALUES ($1, $2, $3, 'in_progress', NULL, $4) ON CONFLICT DO NOTHING RETURNING status, txid_current()::text";
/// `doctor --check-writeback`: a probe receipt written and rolled back.
pub const RECEIPT_PROBE: &str = "INSERT INTO synapsor_writeback_receipts (idempotency_key, job_id, proposal_id, status) VALUES ('doctor-probe', 'doctor-probe', 'doctor', 'doctor')";
/// `reconcile`: what the source's receipt table says about one idempotency key.
pub const RECEIPT_READ: &str = "SELECT status, result_hash, completed_at::text FROM synapsor_writeback_receipts WHERE idempotency_key = $1";
pub const RECEIPT_LOCK: &str = "SELECT status, result_hash, intent_hash FROM synapsor_writeback_receipts WHERE idempotency_key = $1 FOR UPDATE";
/// Matches only inside the transaction that claimed the receipt (`$4`, its id): a callback that
/// ended it leaves nothing to finalize.
pub const RECEIPT_FINALIZE: &str = "UPDATE synapsor_writeback_receipts SET status = $2, result_hash = $3, completed_at = now() WHERE idempotency_key = $1 AND txid_current()::text = $4";

/// A statement built here from reviewed identifiers only.
#[derive(Debug, Clone)]
pub struct PgStatement(String);

impl PgStatement {
    pub fn text(&self) -> &str {
        &self.0
    }
    /// A sqlx query for this statement; bind values with `.bind(...)`.
    pub fn query(&self) -> sqlx::query::Query<'static, Postgres, PgArguments> {
        sqlx::query(AssertSqlSafe(self.0.clone()))
    }
}

/// How a column is projected and how a bound text value is cast to its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgColumn {
    pub name: String,
    pub decode: PgDecode,
    /// SQL type expression used in `CAST($n AS <cast>)`; from a fixed list or a quoted identifier.
    pub cast: String,
    /// What the column can hold (for propose-time value checks and the guard advance).
    pub kind: ColumnKind,
}

/// How the row decoder reads a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgDecode {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    Timestamptz,
    Timestamp,
    Date,
    Json,
    /// Projected as `"col"::text`.
    AsText,
}

/// Map a PostgreSQL type name (as sqlx reports it) and its type modifier (`atttypmod`, -1 when
/// none) to decode and cast rules and the column's value domain.
pub fn column_for_type(name: &str, type_name: &str, typmod: i32) -> PgColumn {
    let upper = type_name.to_ascii_uppercase();
    let kind = match upper.as_str() {
        "INT2" => ColumnKind::I16,
        "INT4" => ColumnKind::I32,
        "INT8" => ColumnKind::I64,
        "FLOAT4" | "FLOAT8" => ColumnKind::Float,
        "BOOL" => ColumnKind::Boolean,
        "NUMERIC" if typmod >= 4 => ColumnKind::Decimal {
            precision: Some(((typmod - 4) >> 16) as u32 & 0xffff),
            scale: Some((typmod - 4) as u32 & 0xffff),
        },
        "NUMERIC" => ColumnKind::Decimal {
            precision: None,
            scale: None,
        },
        "TIMESTAMPTZ" | "TIMESTAMP" => ColumnKind::Timestamp {
            precision: if (0..=6).contains(&typmod) {
                typmod as u32
            } else {
                6
            },
        },
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => ColumnKind::Text,
        _ => ColumnKind::Other,
    };
    let (decode, cast): (PgDecode, String) = match upper.as_str() {
        "BOOL" => (PgDecode::Bool, "boolean".into()),
        "INT2" => (PgDecode::Int2, "int2".into()),
        "INT4" => (PgDecode::Int4, "int4".into()),
        "INT8" => (PgDecode::Int8, "int8".into()),
        "FLOAT4" => (PgDecode::Float4, "float4".into()),
        "FLOAT8" => (PgDecode::Float8, "float8".into()),
        "TEXT" => (PgDecode::Text, "text".into()),
        "VARCHAR" => (PgDecode::Text, "varchar".into()),
        "BPCHAR" => (PgDecode::Text, "bpchar".into()),
        "NAME" => (PgDecode::Text, "name".into()),
        "TIMESTAMPTZ" => (PgDecode::Timestamptz, "timestamptz".into()),
        "TIMESTAMP" => (PgDecode::Timestamp, "timestamp".into()),
        "DATE" => (PgDecode::Date, "date".into()),
        "JSON" => (PgDecode::Json, "json".into()),
        "JSONB" => (PgDecode::Json, "jsonb".into()),
        "NUMERIC" => (PgDecode::AsText, "numeric".into()),
        "UUID" => (PgDecode::AsText, "uuid".into()),
        "TIME" => (PgDecode::AsText, "time".into()),
        "TIMETZ" => (PgDecode::AsText, "timetz".into()),
        "INTERVAL" => (PgDecode::AsText, "interval".into()),
        _ => {
            // Custom types (enums, domains): cast through the quoted type name when it is safe.
            let cast = if super::is_safe_identifier(type_name) {
                format!("\"{type_name}\"")
            } else {
                "text".into()
            };
            (PgDecode::AsText, cast)
        }
    };
    PgColumn {
        name: name.to_string(),
        decode,
        cast,
        kind,
    }
}

fn q(ident: &str) -> Result<String> {
    Ok(format!("\"{}\"", check_identifier(ident)?))
}

fn table(schema: &str, table: &str) -> Result<String> {
    Ok(format!("{}.{}", q(schema)?, q(table)?))
}

/// The quoted, schema-qualified name bound into `COLUMN_TYPES` (a value, not SQL text).
pub fn regclass_name(schema: &str, tbl: &str) -> Result<String> {
    table(schema, tbl)
}

fn projection(columns: &[PgColumn]) -> Result<String> {
    let parts = columns
        .iter()
        .map(|c| {
            let qc = q(&c.name)?;
            Ok(if c.decode == PgDecode::AsText {
                format!("{qc}::text AS {qc}")
            } else {
                qc
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(parts.join(", "))
}

fn cast_of<'a>(columns: &'a [PgColumn], name: &str) -> Result<&'a str> {
    columns
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.cast.as_str())
        .ok_or_else(|| Error::Internal(format!("column {name} has no known type")))
}

/// Scoped read: primary key ($1) and tenant ($2) predicates, optional row lock.
pub fn select_row(
    schema: &str,
    tbl: &str,
    columns: &[PgColumn],
    pk: &str,
    tenant: Option<&str>,
    limit: u64,
    for_update: bool,
) -> Result<PgStatement> {
    let mut sql = format!(
        "SELECT {} FROM {} WHERE {} = CAST($1 AS {})",
        projection(columns)?,
        table(schema, tbl)?,
        q(pk)?,
        cast_of(columns, pk)?
    );
    if let Some(t) = tenant {
        sql.push_str(&format!(
            " AND {} = CAST($2 AS {})",
            q(t)?,
            cast_of(columns, t)?
        ));
    }
    if for_update {
        sql.push_str(" FOR UPDATE");
    } else {
        sql.push_str(&format!(" LIMIT {}", limit.max(1)));
    }
    Ok(PgStatement(sql))
}

/// Guarded UPDATE: `SET` patch values ($1..$n) and the version advance, then pk, tenant and
/// version predicates. With no patch columns it only advances the version.
#[allow(clippy::too_many_arguments)]
pub fn update_row(
    schema: &str,
    tbl: &str,
    columns: &[PgColumn],
    patch_columns: &[String],
    pk: &str,
    tenant: Option<&str>,
    version_column: Option<&str>,
    advance: Option<Advance>,
) -> Result<PgStatement> {
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let sets = patch_columns
        .iter()
        .map(|c| {
            Ok(format!(
                "{} = CAST(${} AS {})",
                q(c)?,
                next(),
                cast_of(columns, c)?
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut sets = sets;
    if let Some(v) = version_column {
        let qv = q(v)?;
        match advance {
            Some(Advance::Increment) => sets.push(format!("{qv} = {qv} + 1")),
            // Never equal to the old value, even where the column rounds to fewer digits.
            Some(Advance::Timestamp { precision }) => sets.push(format!(
                "{qv} = GREATEST(CAST(clock_timestamp() AS {}), {qv} + interval '{} microseconds')",
                cast_of(columns, v)?,
                Advance::step_micros(precision)
            )),
            Some(Advance::Application) | None => {}
        }
    }
    let mut sql = format!(
        "UPDATE {}\nSET {}\nWHERE {} = CAST(${} AS {})",
        table(schema, tbl)?,
        sets.join(", "),
        q(pk)?,
        next(),
        cast_of(columns, pk)?
    );
    if let Some(t) = tenant {
        sql.push_str(&format!(
            " AND {} = CAST(${} AS {})",
            q(t)?,
            next(),
            cast_of(columns, t)?
        ));
    }
    if let Some(v) = version_column {
        sql.push_str(&format!(
            " AND {} = CAST(${} AS {})",
            q(v)?,
            next(),
            cast_of(columns, v)?
        ));
    }
    Ok(PgStatement(sql))
}

/// `BEGIN [READ ONLY]` and, when configured, `SET LOCAL statement_timeout` in one simple-query
/// round trip. The timeout is an integer from validated config, never text from a caller.
pub fn begin(read_only: bool, timeout_ms: Option<u64>) -> sqlx::SqlStr {
    use sqlx::SqlSafeStr;
    let mut sql = String::from(if read_only {
        "BEGIN READ ONLY"
    } else {
        "BEGIN"
    });
    if let Some(ms) = timeout_ms {
        sql.push_str(&format!("; SET LOCAL statement_timeout = {ms}"));
    }
    AssertSqlSafe(sql).into_sql_str()
}

/// A statement written by the host application's own executor code (never model input), run
/// inside the guarded transaction with bound parameters.
pub fn app_statement(sql: &str) -> sqlx::query::Query<'static, Postgres, PgArguments> {
    sqlx::query(AssertSqlSafe(sql.to_string()))
}

/// Run a fixed statement text (no dynamic parts) through the same query path.
pub fn fixed(sql: &'static str) -> sqlx::query::Query<'static, Postgres, PgArguments> {
    sqlx::query(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<PgColumn> {
        vec![
            column_for_type("id", "TEXT", -1),
            column_for_type("tenant_id", "TEXT", -1),
            column_for_type("late_fee_cents", "INT4", -1),
            column_for_type("updated_at", "TIMESTAMPTZ", -1),
            column_for_type("amount", "NUMERIC", (12 << 16) + 2 + 4),
        ]
    }

    #[test]
    fn update_is_parameterized_with_guards_in_order() {
        let s = update_row(
            "public",
            "invoices",
            &cols(),
            &["late_fee_cents".into()],
            "id",
            Some("tenant_id"),
            Some("updated_at"),
            Some(Advance::Timestamp { precision: 6 }),
        )
        .unwrap();
        assert_eq!(
            s.text(),
            "UPDATE \"public\".\"invoices\"\nSET \"late_fee_cents\" = CAST($1 AS int4), \"updated_at\" = GREATEST(CAST(clock_timestamp() AS timestamptz), \"updated_at\" + interval '1 microseconds')\nWHERE \"id\" = CAST($2 AS text) AND \"tenant_id\" = CAST($3 AS text) AND \"updated_at\" = CAST($4 AS timestamptz)"
        );
    }

    #[test]
    fn select_projects_undecodable_types_as_text() {
        let s = select_row(
            "public",
            "invoices",
            &cols(),
            "id",
            Some("tenant_id"),
            1,
            false,
        )
        .unwrap();
        assert!(s.text().contains("\"amount\"::text AS \"amount\""));
        assert!(s.text().ends_with("LIMIT 1"));
        assert_eq!(
            cols()[4].kind,
            ColumnKind::Decimal {
                precision: Some(12),
                scale: Some(2)
            }
        );
    }

    #[test]
    fn unsafe_identifiers_never_reach_sql() {
        assert!(regclass_name("public", "tickets;drop").is_err());
        assert!(
            update_row(
                "public",
                "t",
                &cols(),
                &["x = 1; --".into()],
                "id",
                None,
                None,
                None
            )
            .is_err()
        );
    }
}
