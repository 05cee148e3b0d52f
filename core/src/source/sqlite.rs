//! SQLite sources through rusqlite: the whole lifecycle with no database server.

use super::{ReadRequest, Row};
use crate::config::{Engine, SourceConfig};
use crate::error::{Error, Result, cause};
use crate::sql::sqlite as dialect;
use crate::values::kinds::{Advance, ColumnKind, next_timestamp_text};
use crate::write::executor::TxRequest;
use crate::write::guarded::{self, Claim, StoredReceipt, WriteEngine};
use crate::write::{GuardedUpdate, UpdateOutcome, WriteStep};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde_json::Value;
use std::collections::HashMap;
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

    /// What each of `columns` can hold, by SQLite's affinity rules for their declared types.
    pub fn column_kinds(
        &self,
        schema: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<ColumnKind>> {
        let kinds = self.with_conn(|c| declared_kinds(c, schema, table).map_err(db_err))?;
        Ok(columns
            .iter()
            .map(|c| kinds.get(c).copied().unwrap_or(ColumnKind::Other))
            .collect())
    }

    /// The source receipt for one idempotency key.
    pub fn receipt(&self, key: &str) -> Result<Option<super::SourceReceipt>> {
        self.with_conn(|c| {
            let found = c
                .query_row(dialect::RECEIPT_READ, [key], |r| {
                    Ok(super::SourceReceipt {
                        status: r.get(0)?,
                        result_hash: r.get(1)?,
                        completed_at: r.get(2)?,
                    })
                })
                .optional();
            match found {
                Ok(r) => Ok(r),
                Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("no such table") => {
                    Ok(None)
                }
                Err(e) => Err(db_err(e)),
            }
        })
    }

    /// Take the source connection for an async transaction (a concurrent apply opens its own;
    /// `BEGIN IMMEDIATE` and the busy timeout serialize them).
    fn take_conn(&self) -> Result<Connection> {
        let taken = self
            .conn
            .lock()
            .map_err(|_| Error::Internal("sqlite source lock poisoned".into()))?
            .take();
        match taken {
            Some(c) => Ok(c),
            None => {
                if !self.path.exists() {
                    return Err(Error::SourceUnavailable {
                        code: "SOURCE_UNAVAILABLE",
                        message: format!(
                            "sqlite source file {} does not exist",
                            self.path.display()
                        ),
                    });
                }
                let c = Connection::open(&self.path).map_err(unavailable)?;
                c.busy_timeout(Duration::from_millis(self.busy_ms))
                    .map_err(unavailable)?;
                Ok(c)
            }
        }
    }

    fn give_back(&self, c: Connection) {
        if let Ok(mut slot) = self.conn.lock()
            && slot.is_none()
        {
            *slot = Some(c);
        }
    }

    /// Apply (or, with `dry_run`, rehearse) one guarded single-row change: declared types, the
    /// receipt table and the lock statement here, the transaction in [`guarded`].
    pub async fn guarded_update(
        &self,
        plan: &GuardedUpdate,
        dry_run: bool,
        step: WriteStep<'_>,
    ) -> Result<UpdateOutcome> {
        let mut c = self.take_conn()?;
        let prepared = self.prepare(&mut c, plan);
        let (out, c) = match prepared {
            Ok((lock, kinds)) => {
                let mut key_params = vec![to_sql(&plan.key_value)];
                if let Some((_, t)) = &plan.tenant {
                    key_params.push(SqlValue::Text(t.clone()));
                }
                let mut engine = SqliteWrite {
                    c,
                    busy_ms: self.busy_ms,
                    kinds,
                    lock,
                    key_params,
                    current_version: SqlValue::Null,
                    next_version: None,
                };
                let out = guarded::run(&mut engine, plan, dry_run, step).await;
                (out, engine.c)
            }
            Err(e) => (Err(e), c),
        };
        if !c.is_autocommit() {
            let _ = c.execute_batch("ROLLBACK");
        }
        self.give_back(c);
        out
    }

    /// The lock statement and declared column types; the receipt table ensured first (it is
    /// idempotent and keeps the write transaction to data statements).
    fn prepare(
        &self,
        c: &mut Connection,
        plan: &GuardedUpdate,
    ) -> Result<(String, HashMap<String, ColumnKind>)> {
        let lock = dialect::select_row(
            &plan.schema,
            &plan.table,
            &plan.lock_columns,
            &plan.primary_key,
            plan.tenant_column(),
            None,
        )?;
        let kinds = declared_kinds(c, &plan.schema, &plan.table).map_err(db_err)?;
        c.execute_batch(dialect::RECEIPT_DDL).map_err(db_err)?;
        Ok((lock, kinds))
    }
}

/// SQLite's pieces of the guarded write (a `BEGIN IMMEDIATE` transaction on the source file).
struct SqliteWrite {
    c: Connection,
    busy_ms: u64,
    kinds: HashMap<String, ColumnKind>,
    lock: String,
    /// Primary key, then tenant.
    key_params: Vec<SqlValue>,
    /// The locked row's version, bound exactly in the UPDATE's guard.
    current_version: SqlValue,
    /// What the UPDATE sets the version column to (`None`: the runner does not move it).
    next_version: Option<SqlValue>,
}

impl WriteEngine for SqliteWrite {
    const ENGINE: Engine = Engine::Sqlite;

    fn kind(&self, column: &str) -> Option<ColumnKind> {
        self.kinds.get(column).copied()
    }

    async fn begin(&mut self) -> Result<()> {
        let c = &mut self.c;
        // Wait for the write lock without blocking the async runtime: another apply may hold it
        // while it awaits its own callback on this very thread.
        c.busy_timeout(Duration::ZERO).map_err(db_err)?;
        let deadline = std::time::Instant::now() + Duration::from_millis(self.busy_ms);
        let began = loop {
            match c.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => break true,
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(2)).await
                }
                Err(_) => break false,
            }
        };
        c.busy_timeout(Duration::from_millis(self.busy_ms))
            .map_err(db_err)?;
        if !began {
            return Err(Error::SourceUnavailable {
                code: "SOURCE_UNAVAILABLE",
                message: "sqlite source is busy".into(),
            });
        }
        Ok(())
    }

    async fn claim(&mut self, plan: &GuardedUpdate) -> Result<Claim> {
        let claimed = self
            .c
            .execute(
                dialect::RECEIPT_CLAIM,
                rusqlite::params![
                    plan.idempotency_key,
                    plan.job_id,
                    plan.proposal_id,
                    plan.intent_hash
                ],
            )
            .map_err(db_err)?;
        Ok(if claimed == 0 {
            Claim::Taken
        } else {
            Claim::Claimed {
                proof: String::new(),
            }
        })
    }

    async fn stored_receipt(&mut self, plan: &GuardedUpdate) -> Result<Option<StoredReceipt>> {
        self.c
            .query_row(dialect::RECEIPT_SELECT, [&plan.idempotency_key], |r| {
                Ok((Some(r.get(0)?), r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(db_err)
    }

    async fn lock_rows(&mut self, plan: &GuardedUpdate) -> Result<Vec<Row>> {
        query_rows(&self.c, &self.lock, &self.key_params, &plan.lock_columns).map_err(db_err)
    }

    /// The declared type decides, or the stored value where the declared type says little
    /// (dates kept as text, integers in an untyped column).
    fn advance(
        &mut self,
        plan: &GuardedUpdate,
        locked: &Row,
    ) -> std::result::Result<Option<Advance>, &'static str> {
        let Some(column) = plan.version_column() else {
            return Ok(None);
        };
        let current = locked.get(column).unwrap_or(&Value::Null);
        let (advance, next) = advance_for(plan, self.kind(column), current)?;
        self.current_version = to_sql(current);
        self.next_version = next;
        Ok(advance)
    }

    async fn update(
        &mut self,
        plan: &GuardedUpdate,
        _advance: Option<Advance>,
        advance_only: bool,
    ) -> Result<u64> {
        let patch = plan.written(advance_only);
        let columns: Vec<String> = patch.iter().map(|(c, _)| c.clone()).collect();
        let sql = dialect::update_row(
            &plan.schema,
            &plan.table,
            &columns,
            &plan.primary_key,
            plan.tenant_column(),
            plan.version_column(),
            self.next_version.is_some(),
        )?;
        let mut p: Vec<SqlValue> = patch.iter().map(|(_, v)| to_sql(v)).collect();
        p.extend(self.next_version.clone());
        p.extend(self.key_params.iter().cloned());
        if plan.version_column().is_some() {
            // The row is locked and its version already matched; bind the stored value exactly.
            p.push(self.current_version.clone());
        }
        self.c
            .execute(&sql, params_from_iter(p.iter()))
            .map(|n| n as u64)
            .map_err(db_err)
    }

    async fn serve(&mut self, req: TxRequest) {
        serve_app_statement(&self.c, req)
    }

    async fn finalize(
        &mut self,
        plan: &GuardedUpdate,
        outcome: &UpdateOutcome,
        _proof: &str,
    ) -> Result<u64> {
        if self.c.is_autocommit() {
            // A callback ended the transaction; what it left committed is unknown.
            return Ok(0);
        }
        self.c
            .execute(
                dialect::RECEIPT_FINALIZE,
                rusqlite::params![
                    plan.idempotency_key,
                    outcome.status.as_str(),
                    outcome.result_hash
                ],
            )
            .map(|n| n as u64)
            .map_err(db_err)
    }

    async fn rollback(&mut self) {
        if !self.c.is_autocommit() {
            let _ = self.c.execute_batch("ROLLBACK");
        }
    }

    async fn commit(&mut self) -> Result<()> {
        self.c.execute_batch("COMMIT").map_err(db_err)
    }
}

/// Declared types of a table's columns, as value domains.
fn declared_kinds(
    c: &Connection,
    schema: &str,
    table: &str,
) -> rusqlite::Result<HashMap<String, ColumnKind>> {
    let mut stmt = c.prepare_cached(dialect::COLUMN_TYPES)?;
    let rows = stmt.query_map([table, schema], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    rows.map(|r| r.map(|(n, t)| (n, dialect::kind_for(&t))))
        .collect()
}

/// The advance rule for the guard column and the value it moves to (`None` when the runner
/// leaves it to the application or the guard is a row hash).
fn advance_for(
    plan: &GuardedUpdate,
    declared: Option<ColumnKind>,
    current: &Value,
) -> std::result::Result<(Option<Advance>, Option<SqlValue>), &'static str> {
    let now = chrono::Utc::now();
    let kind = match (declared, current) {
        (_, Value::String(s)) if next_timestamp_text(s, now).is_some() => {
            ColumnKind::Timestamp { precision: 3 }
        }
        (Some(ColumnKind::Timestamp { .. }), Value::Null) => ColumnKind::Timestamp { precision: 3 },
        (_, Value::Number(n)) if n.is_i64() => ColumnKind::I64,
        (Some(k), _) => k,
        (None, _) => ColumnKind::Other,
    };
    let advance = guarded::plan_advance(plan, Some(kind))?;
    let refused = || guarded::NOT_ADVANCEABLE;
    let next = match (advance, current) {
        (Some(Advance::Increment), Value::Number(n)) => Some(SqlValue::Integer(
            n.as_i64()
                .ok_or_else(refused)?
                .checked_add(1)
                .ok_or_else(refused)?,
        )),
        (Some(Advance::Increment), _) => return Err(refused()),
        (Some(Advance::Timestamp { .. }), Value::String(s)) => Some(SqlValue::Text(
            next_timestamp_text(s, now).ok_or_else(refused)?,
        )),
        (Some(Advance::Timestamp { .. }), Value::Null) => Some(SqlValue::Text(
            now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        )),
        (Some(Advance::Timestamp { .. }), _) => return Err(refused()),
        (Some(Advance::Application) | None, _) => None,
    };
    Ok((advance, next))
}

/// Run one statement an in-process callback sent, inside the guarded transaction.
fn serve_app_statement(c: &Connection, req: TxRequest) {
    let app_err = |e: rusqlite::Error| Error::Executor {
        code: "APP_STATEMENT_FAILED",
        message: e.to_string(),
    };
    match req {
        TxRequest::Execute { sql, params, reply } => {
            let p: Vec<SqlValue> = params.iter().map(to_sql).collect();
            let _ = reply.send(
                c.execute(&sql, params_from_iter(p.iter()))
                    .map(|n| n as u64)
                    .map_err(app_err),
            );
        }
        TxRequest::Fetch { sql, params, reply } => {
            let p: Vec<SqlValue> = params.iter().map(to_sql).collect();
            let out = (|| {
                let mut stmt = c.prepare(&sql)?;
                let names: Vec<String> =
                    stmt.column_names().iter().map(|s| s.to_string()).collect();
                let mut rows = stmt.query(params_from_iter(p.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut row = Row::new();
                    for (i, n) in names.iter().enumerate() {
                        row.insert(n.clone(), from_sql(r.get_ref(i)?));
                    }
                    out.push(row);
                }
                Ok(out)
            })()
            .map_err(app_err);
            let _ = reply.send(out);
        }
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
        other => Error::Database(other.to_string(), cause(other)),
    }
}
