//! SQLite sources through rusqlite: the whole lifecycle with no database server.

use super::{
    GuardedUpdate, ReadRequest, Row, UpdateOutcome, VersionGuard, WriteStatus, check_guard,
    outcome_from_existing_receipt,
};
use crate::config::SourceConfig;
use crate::error::{Error, Result};
use crate::sql::sqlite as dialect;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params_from_iter};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// A SQLite file used as a source database.
pub struct SqliteSource {
    path: PathBuf,
    busy_ms: u64,
    conn: Mutex<Option<Connection>>,
}

impl SqliteSource {
    pub fn new(path: PathBuf, cfg: &SourceConfig) -> Self {
        SqliteSource {
            path,
            busy_ms: cfg.statement_timeout_ms.unwrap_or(5000),
            conn: Mutex::new(None),
        }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| Error::Internal("sqlite source lock poisoned".into()))?;
        if guard.is_none() {
            if !self.path.exists() {
                return Err(Error::SourceUnavailable {
                    code: "SOURCE_UNAVAILABLE",
                    message: format!("sqlite source file {} does not exist", self.path.display()),
                });
            }
            let c = Connection::open(&self.path).map_err(unavailable)?;
            c.busy_timeout(Duration::from_millis(self.busy_ms))
                .map_err(unavailable)?;
            c.pragma_update(None, "journal_mode", "WAL")
                .map_err(unavailable)?;
            *guard = Some(c);
        }
        f(guard.as_mut().expect("connection opened"))
    }

    pub fn read(&self, req: &ReadRequest<'_>) -> Result<Vec<Row>> {
        let sql = dialect::select_row(
            req.schema,
            req.table,
            req.columns,
            req.primary_key,
            req.tenant.map(|t| t.0),
            Some(req.limit),
        )?;
        self.with_conn(|c| {
            let mut params = vec![to_sql(req.key_value)];
            if let Some((_, t)) = req.tenant {
                params.push(SqlValue::Text(t.to_string()));
            }
            query_rows(c, &sql, &params, req.columns).map_err(db_err)
        })
    }

    pub fn guarded_update(&self, plan: &GuardedUpdate, dry_run: bool) -> Result<UpdateOutcome> {
        let tenant_col = plan.tenant_column();
        let lock = dialect::select_row(
            &plan.schema,
            &plan.table,
            &plan.lock_columns,
            &plan.primary_key,
            tenant_col,
            None,
        )?;
        let version_col = plan.version_column();
        let patch_cols = plan.patch_columns();
        let update = dialect::update_row(
            &plan.schema,
            &plan.table,
            &patch_cols,
            &plan.primary_key,
            tenant_col,
            version_col,
        )?;
        self.with_conn(|c| {
            // DDL first: it is idempotent and keeps the write transaction to data statements.
            c.execute_batch(dialect::RECEIPT_DDL).map_err(db_err)?;
            let tx = match c.transaction_with_behavior(TransactionBehavior::Immediate) {
                Ok(tx) => tx,
                Err(_) => {
                    return Ok(UpdateOutcome::failed(
                        &plan.job_id,
                        "DATABASE_UNAVAILABLE",
                        true,
                    ));
                }
            };
            let claimed = tx
                .execute(
                    dialect::RECEIPT_CLAIM,
                    rusqlite::params![
                        plan.idempotency_key,
                        plan.job_id,
                        plan.proposal_id,
                        plan.intent_hash
                    ],
                )
                .map_err(db_err);
            let claimed = match claimed {
                Ok(n) => n,
                Err(_) => {
                    return Ok(UpdateOutcome::failed(
                        &plan.job_id,
                        "TRANSACTION_FAILED",
                        false,
                    ));
                }
            };
            if claimed == 0 {
                let existing: Option<(String, Option<String>, Option<String>)> = tx
                    .query_row(dialect::RECEIPT_SELECT, [&plan.idempotency_key], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()
                    .map_err(db_err)?;
                tx.commit().map_err(db_err)?;
                let (status, hash, intent) = match existing {
                    Some((s, h, i)) => (Some(s), h, i),
                    None => (None, None, None),
                };
                return Ok(outcome_from_existing_receipt(
                    &plan.job_id,
                    status.as_deref(),
                    hash,
                    intent,
                    &plan.intent_hash,
                ));
            }
            let mut params = vec![to_sql(&plan.key_value)];
            if let Some((_, t)) = &plan.tenant {
                params.push(SqlValue::Text(t.clone()));
            }
            let rows = query_rows(&tx, &lock, &params, &plan.lock_columns).map_err(db_err)?;
            if rows.len() > 1 {
                return Ok(UpdateOutcome::failed(
                    &plan.job_id,
                    "MULTI_ROW_WRITE_BLOCKED",
                    false,
                ));
            }
            let conflict = match rows.first() {
                None => Some(UpdateOutcome::new(
                    WriteStatus::Conflict,
                    Some("ROW_NOT_FOUND"),
                    &plan.job_id,
                    None,
                )),
                Some(r) => check_guard(plan, r),
            };
            let outcome = match conflict {
                Some(o) => o,
                None => {
                    let mut p: Vec<SqlValue> = plan.patch.iter().map(|(_, v)| to_sql(v)).collect();
                    p.push(to_sql(&plan.key_value));
                    if let Some((_, t)) = &plan.tenant {
                        p.push(SqlValue::Text(t.clone()));
                    }
                    if let VersionGuard::Column { column, .. } = &plan.guard {
                        // The row is locked and its version already matched; bind the stored value exactly.
                        p.push(to_sql(rows[0].get(column).unwrap_or(&Value::Null)));
                    }
                    let affected = match tx.execute(&update, params_from_iter(p.iter())) {
                        Ok(n) => n,
                        Err(_) => {
                            return Ok(UpdateOutcome::failed(
                                &plan.job_id,
                                "TRANSACTION_FAILED",
                                false,
                            ));
                        }
                    };
                    if affected != 1 {
                        let code = if affected == 0 {
                            "VERSION_CONFLICT"
                        } else {
                            "MULTI_ROW_WRITE_BLOCKED"
                        };
                        return Ok(UpdateOutcome::failed(&plan.job_id, code, false));
                    }
                    let expected = match &plan.guard {
                        VersionGuard::Column { expected, .. } => expected.clone(),
                        VersionGuard::RowHash { expected, .. } => Value::String(expected.clone()),
                    };
                    let mut o = UpdateOutcome::new(
                        WriteStatus::Applied,
                        None,
                        &plan.job_id,
                        Some(&expected),
                    );
                    o.rows_affected = 1;
                    o
                }
            };
            let fin = tx.execute(
                dialect::RECEIPT_FINALIZE,
                rusqlite::params![
                    plan.idempotency_key,
                    outcome.status.as_str(),
                    outcome.result_hash
                ],
            );
            match fin {
                Ok(1) => {}
                Ok(_) => {
                    return Ok(UpdateOutcome::failed(
                        &plan.job_id,
                        "IDEMPOTENCY_RECEIPT_UNAVAILABLE",
                        true,
                    ));
                }
                Err(_) => {
                    return Ok(UpdateOutcome::failed(
                        &plan.job_id,
                        "TRANSACTION_FAILED",
                        false,
                    ));
                }
            }
            if dry_run {
                tx.rollback().map_err(db_err)?;
            } else if tx.commit().is_err() {
                return Ok(UpdateOutcome::failed(
                    &plan.job_id,
                    "RECONCILIATION_REQUIRED",
                    true,
                ));
            }
            Ok(outcome)
        })
    }
}

fn query_rows(
    c: &Connection,
    sql: &str,
    params: &[SqlValue],
    columns: &[String],
) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Row::new();
        for (i, name) in columns.iter().enumerate() {
            row.insert(name.clone(), from_sql(r.get_ref(i)?));
        }
        out.push(row);
    }
    Ok(out)
}

fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(*b as i64),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(hex::encode(b)),
    }
}

fn unavailable(e: rusqlite::Error) -> Error {
    Error::SourceUnavailable {
        code: "SOURCE_UNAVAILABLE",
        message: format!("sqlite source unavailable: {e}"),
    }
}

fn db_err(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Error::SourceUnavailable {
                code: "SOURCE_UNAVAILABLE",
                message: "sqlite source is busy".into(),
            }
        }
        other => Error::Database(other.to_string()),
    }
}
