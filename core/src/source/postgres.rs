//! PostgreSQL sources through sqlx: one lazily created pool per source and role.

use super::{ReadRequest, Row, value_text};
use crate::config::{Engine, SourceConfig};
use crate::error::{Error, Result, cause};
use crate::sql::postgres::{self as dialect, PgColumn, PgDecode};
use crate::values::kinds::{Advance, ColumnKind};
use crate::write::executor::TxRequest;
use crate::write::guarded::{self, Claim, StoredReceipt, WriteEngine};
use crate::write::{GuardedUpdate, UpdateOutcome, VersionGuard, WriteStep};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::postgres::PgRow;
use sqlx::{Connection, Row as _};
use std::collections::HashMap;
use std::sync::Mutex;

/// A PostgreSQL source: reader and writer pools, column types learned once per table.
pub struct PgSource {
    pub(super) pools: super::LazyPools<sqlx::Postgres>,
    timeout_ms: Option<u64>,
    types: Mutex<HashMap<(String, String, String), PgColumn>>,
}

impl PgSource {
    pub fn new(name: &str, cfg: &SourceConfig, env: &HashMap<String, String>) -> Self {
        PgSource {
            pools: super::LazyPools::new(name, cfg, env),
            timeout_ms: cfg.statement_timeout_ms,
            types: Mutex::new(HashMap::new()),
        }
    }

    /// Column decode/cast rules for `columns` of a table, learned with one catalog query per
    /// table and cached for the life of the source.
    async fn columns(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<PgColumn>> {
        let key = |c: &str| (schema.to_string(), table.to_string(), c.to_string());
        let known = {
            let types = self.types.lock().expect("type cache");
            columns.iter().all(|c| types.contains_key(&key(c)))
        };
        if !known {
            let rows = dialect::fixed(dialect::COLUMN_TYPES)
                .bind(dialect::regclass_name(schema, table)?)
                .fetch_all(&mut *conn)
                .await
                .map_err(map_err)?;
            let mut types = self.types.lock().expect("type cache");
            for r in rows {
                let name: String = r.try_get(0).map_err(map_err)?;
                let type_name: String = r.try_get(1).map_err(map_err)?;
                let typmod: i32 = r.try_get(2).map_err(map_err)?;
                let c = dialect::column_for_type(&name, &type_name, typmod);
                types.insert(key(&name), c);
            }
        }
        let types = self.types.lock().expect("type cache");
        columns
            .iter()
            .map(|c| {
                types.get(&key(c)).cloned().ok_or_else(|| {
                    Error::Database(format!("column {c} not found on {schema}.{table}"), None)
                })
            })
            .collect()
    }

    /// What each of `columns` can hold (from the cache a read fills, else one catalog query).
    pub async fn column_kinds(
        &self,
        schema: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<ColumnKind>> {
        let cached: Option<Vec<ColumnKind>> = {
            let types = self.types.lock().expect("type cache");
            columns
                .iter()
                .map(|c| {
                    types
                        .get(&(schema.to_string(), table.to_string(), c.clone()))
                        .map(|x| x.kind)
                })
                .collect()
        };
        if let Some(kinds) = cached {
            return Ok(kinds);
        }
        let mut lease = self
            .pools
            .readers()
            .await?
            .begin(&dialect::begin(true, self.timeout_ms))
            .await
            .map_err(map_err)?;
        let cols = self.columns(lease.conn(), schema, table, columns).await?;
        lease.commit().await.map_err(map_err)?;
        Ok(cols.into_iter().map(|c| c.kind).collect())
    }

    pub async fn read(&self, req: &ReadRequest<'_>) -> Result<Vec<Row>> {
        // One connection for type discovery and the read: a one-shot CLI call opens exactly one.
        let mut lease = self
            .pools
            .readers()
            .await?
            .begin(&dialect::begin(true, self.timeout_ms))
            .await
            .map_err(map_err)?;
        let conn = lease.conn();
        let cols = self
            .columns(conn, req.schema, req.table, req.columns)
            .await?;
        let stmt = dialect::select_row(
            req.schema,
            req.table,
            &cols,
            req.primary_key,
            req.tenant.map(|t| t.0),
            req.limit,
            false,
        )?;
        let q = super::bind_key(stmt.query(), req.key_value, req.tenant.map(|t| t.1));
        let rows = q.fetch_all(&mut *conn).await.map_err(map_err)?;
        lease.commit().await.map_err(map_err)?;
        rows.iter().map(|r| decode_row(r, &cols)).collect()
    }

    /// The source receipt for one idempotency key, read with the writer's connection.
    pub async fn receipt(&self, key: &str) -> Result<Option<super::SourceReceipt>> {
        let row = dialect::fixed(dialect::RECEIPT_READ)
            .bind(key.to_string())
            .fetch_optional(self.pools.writer().await?)
            .await;
        match row {
            Ok(row) => Ok(row.map(|r| super::SourceReceipt {
                status: r.try_get(0).unwrap_or_default(),
                result_hash: r.try_get(1).ok().flatten(),
                completed_at: r.try_get(2).ok().flatten(),
            })),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    /// Writer connectivity and receipt-table permissions, proven with a rolled-back probe.
    pub async fn probe_writeback(&self) -> Result<String> {
        let mut conn = self
            .pools
            .writer()
            .await?
            .acquire()
            .await
            .map_err(map_err)?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        let inserted = dialect::fixed(dialect::RECEIPT_PROBE)
            .execute(&mut *tx)
            .await;
        let note = match inserted {
            Ok(_) => "receipt table writable",
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => {
                // No table yet: prove the writer may create it (DDL is transactional here).
                let _ = tx.rollback().await;
                tx = conn.begin().await.map_err(map_err)?;
                dialect::fixed(dialect::RECEIPT_DDL)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                dialect::fixed(dialect::RECEIPT_PROBE)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                "receipt table will be created on first apply"
            }
            Err(e) => return Err(map_err(e)),
        };
        tx.rollback().await.map_err(map_err)?;
        Ok(note.to_string())
    }

    /// Apply (or, with `dry_run`, rehearse) one guarded single-row change: the column types
    /// and the lock statement here, the transaction in [`guarded`].
    pub async fn guarded_update(
        &self,
        plan: &GuardedUpdate,
        dry_run: bool,
        step: WriteStep<'_>,
    ) -> Result<UpdateOutcome> {
        // The write transaction opens first: the column types are learned on its connection.
        let pool = self.pools.writer().await?.clone();
        let mut tx = pool
            .begin_with(dialect::begin(false, self.timeout_ms))
            .await
            .map_err(map_err)?;
        let mut needed = plan.lock_columns.clone();
        for (c, _) in &plan.patch {
            if !needed.contains(c) {
                needed.push(c.clone());
            }
        }
        let cols = self
            .columns(&mut tx, &plan.schema, &plan.table, &needed)
            .await?;
        let lock_cols: Vec<PgColumn> = cols
            .iter()
            .filter(|c| plan.lock_columns.contains(&c.name))
            .cloned()
            .collect();
        let lock = dialect::select_row(
            &plan.schema,
            &plan.table,
            &cols_with(&lock_cols, &cols, &plan.primary_key, plan.tenant_column()),
            &plan.primary_key,
            plan.tenant_column(),
            1,
            true,
        )?;
        let mut engine = PgWrite {
            pool,
            tx: super::OpenTx::new(tx),
            timeout_ms: self.timeout_ms,
            cols,
            lock_cols,
            lock,
        };
        guarded::run(&mut engine, plan, dry_run, step).await
    }
}

/// PostgreSQL's pieces of the guarded write.
struct PgWrite {
    pool: sqlx::PgPool,
    tx: super::OpenTx<sqlx::Postgres>,
    timeout_ms: Option<u64>,
    cols: Vec<PgColumn>,
    lock_cols: Vec<PgColumn>,
    lock: dialect::PgStatement,
}

impl PgWrite {
    fn tx(&mut self) -> Result<&mut PgConnection> {
        self.tx.conn()
    }
}

impl WriteEngine for PgWrite {
    const ENGINE: Engine = Engine::Postgres;

    fn kind(&self, column: &str) -> Option<ColumnKind> {
        self.cols.iter().find(|c| c.name == column).map(|c| c.kind)
    }

    async fn begin(&mut self) -> Result<()> {
        if !self.tx.is_open() {
            let tx = self
                .pool
                .begin_with(dialect::begin(false, self.timeout_ms))
                .await
                .map_err(map_err)?;
            self.tx = super::OpenTx::new(tx);
        }
        Ok(())
    }

    async fn create_receipts(&mut self) -> Result<()> {
        match dialect::fixed(dialect::RECEIPT_DDL)
            .execute(&self.pool)
            .await
        {
            Ok(_) => Ok(()),
            // A concurrent creator won the race; the table exists.
            Err(sqlx::Error::Database(db))
                if matches!(db.code().as_deref(), Some("23505" | "42P07" | "42710")) =>
            {
                Ok(())
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn claim(&mut self, plan: &GuardedUpdate) -> Result<Claim> {
        let claimed = dialect::fixed(dialect::RECEIPT_CLAIM)
            .bind(plan.idempotency_key.clone())
            .bind(plan.job_id.clone())
            .bind(plan.proposal_id.clone())
            .bind(plan.intent_hash.clone())
            .fetch_optional(self.tx()?)
            .await;
        match claimed {
            // The id of the transaction that holds the claim: finalizing checks it is still ours.
            Ok(Some(row)) => Ok(Claim::Claimed {
                proof: row.try_get::<String, _>(1).unwrap_or_default(),
            }),
            Ok(None) => Ok(Claim::Taken),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => {
                Ok(Claim::NoReceiptTable)
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn stored_receipt(&mut self, plan: &GuardedUpdate) -> Result<Option<StoredReceipt>> {
        let row = dialect::fixed(dialect::RECEIPT_LOCK)
            .bind(plan.idempotency_key.clone())
            .fetch_optional(self.tx()?)
            .await
            .map_err(map_err)?;
        let text = |r: &PgRow, i| r.try_get::<Option<String>, _>(i).ok().flatten();
        Ok(row.map(|r| (text(&r, 0), text(&r, 1), text(&r, 2))))
    }

    async fn lock_rows(&mut self, plan: &GuardedUpdate) -> Result<Vec<Row>> {
        let q = super::bind_key(self.lock.query(), &plan.key_value, plan.tenant_value());
        let rows = q.fetch_all(self.tx()?).await.map_err(map_err)?;
        rows.iter()
            .map(|r| decode_row(r, &self.lock_cols))
            .collect()
    }

    async fn update(
        &mut self,
        plan: &GuardedUpdate,
        advance: Option<Advance>,
        advance_only: bool,
    ) -> Result<u64> {
        let patch = plan.written(advance_only);
        let columns: Vec<String> = patch.iter().map(|(c, _)| c.clone()).collect();
        let stmt = dialect::update_row(
            &plan.schema,
            &plan.table,
            &self.cols,
            &columns,
            &plan.primary_key,
            plan.tenant_column(),
            plan.version_column(),
            advance,
        )?;
        let mut q = stmt.query();
        for (_, v) in patch {
            q = q.bind(value_text(v));
        }
        q = super::bind_key(q, &plan.key_value, plan.tenant_value());
        if let VersionGuard::Column { expected, .. } = &plan.guard {
            q = q.bind(value_text(expected));
        }
        Ok(q.execute(self.tx()?)
            .await
            .map_err(map_err)?
            .rows_affected())
    }

    async fn serve(&mut self, req: TxRequest) {
        match self.tx() {
            Ok(tx) => serve_app_statement(tx, req).await,
            Err(e) => req.refuse(e),
        }
    }

    async fn finalize(
        &mut self,
        plan: &GuardedUpdate,
        outcome: &UpdateOutcome,
        proof: &str,
    ) -> Result<u64> {
        let done = dialect::fixed(dialect::RECEIPT_FINALIZE)
            .bind(plan.idempotency_key.clone())
            .bind(outcome.status.as_str())
            .bind(outcome.result_hash.clone())
            .bind(proof.to_string())
            .execute(self.tx()?)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn rollback(&mut self) {
        self.tx.rollback().await
    }

    async fn commit(&mut self) -> Result<()> {
        self.tx.commit().await
    }
}

/// Run one statement an in-process callback sent, inside the guarded transaction.
async fn serve_app_statement(tx: &mut PgConnection, req: TxRequest) {
    match req {
        TxRequest::Execute { sql, params, reply } => {
            let out = bind_json(dialect::app_statement(&sql), &params)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
                .map_err(app_err);
            let _ = reply.send(out);
        }
        TxRequest::Fetch { sql, params, reply } => {
            let out = match bind_json(dialect::app_statement(&sql), &params)
                .fetch_all(&mut *tx)
                .await
            {
                Ok(rows) => rows.iter().map(decode_any_row).collect(),
                Err(e) => Err(app_err(e)),
            };
            let _ = reply.send(out);
        }
    }
}

fn app_err(e: sqlx::Error) -> Error {
    Error::Executor {
        code: "APP_STATEMENT_FAILED",
        message: match &e {
            sqlx::Error::Database(db) => {
                format!("{}: {}", db.code().unwrap_or_default(), db.message())
            }
            other => other.to_string(),
        },
    }
}

/// Bind JSON values by their JSON type (text, int8, float8, bool, NULL); cast in SQL as needed.
fn bind_json(
    mut q: sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>,
    params: &[Value],
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for p in params {
        q = match p {
            Value::Null => q.bind(None::<String>),
            Value::Bool(b) => q.bind(*b),
            Value::Number(n) if n.is_i64() => q.bind(n.as_i64()),
            Value::Number(n) => q.bind(n.as_f64()),
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.to_string()),
        };
    }
    q
}

/// Decode a row of any query by its runtime column types (types without a native decoder
/// must be cast to text in the query).
fn decode_any_row(row: &PgRow) -> Result<Row> {
    use sqlx::{Column, TypeInfo};
    let mut out = Row::new();
    for (i, col) in row.columns().iter().enumerate() {
        let c = dialect::column_for_type(col.name(), col.type_info().name(), -1);
        let v = decode_value(row, i, c.decode).map_err(|e| Error::Executor {
            code: "APP_STATEMENT_FAILED",
            message: format!("cannot decode column {} (cast it to text): {e}", col.name()),
        })?;
        out.insert(col.name().to_string(), v);
    }
    Ok(out)
}

fn cols_with(lock: &[PgColumn], all: &[PgColumn], pk: &str, tenant: Option<&str>) -> Vec<PgColumn> {
    let mut out = lock.to_vec();
    for name in std::iter::once(pk).chain(tenant) {
        if !out.iter().any(|c| c.name == name)
            && let Some(c) = all.iter().find(|c| c.name == name)
        {
            out.push(c.clone());
        }
    }
    out
}

/// Connection-level problems are transient; statement errors keep their text for local logs.
pub(crate) fn map_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Error::SourceUnavailable {
            code: "SOURCE_UNAVAILABLE",
            message: format!("database connection failed: {e}"),
        },
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            if code == "3D000" {
                return Error::SourceUnavailable {
                    code: "DATABASE_NOT_FOUND",
                    message: "the database named in the connection URL does not exist (3D000): check the URL's database name".into(),
                };
            }
            if code.starts_with("28") {
                return Error::SourceUnavailable {
                    code: "DATABASE_AUTH_FAILED",
                    message: format!(
                        "the database refused the connection URL's user or password ({code})"
                    ),
                };
            }
            // 57014 statement timeout / cancel, 08xxx connection, 53xxx resources, 57P0x shutdown.
            if code == "57014"
                || code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
            {
                Error::SourceUnavailable {
                    code: "SOURCE_UNAVAILABLE",
                    message: format!("database unavailable ({code})"),
                }
            } else {
                Error::Database(format!("{code}: {}", db.message()), cause(e))
            }
        }
        _ => Error::Database(e.to_string(), cause(e)),
    }
}

fn decode_row(row: &PgRow, cols: &[PgColumn]) -> Result<Row> {
    let mut out = Row::new();
    for (i, c) in cols.iter().enumerate() {
        let v = decode_value(row, i, c.decode)
            .map_err(|e| Error::Database(format!("decode {}: {e}", c.name), None))?;
        out.insert(c.name.clone(), v);
    }
    Ok(out)
}

fn decode_value(row: &PgRow, i: usize, d: PgDecode) -> std::result::Result<Value, sqlx::Error> {
    Ok(match d {
        PgDecode::Bool => row
            .try_get::<Option<bool>, _>(i)?
            .map(Value::Bool)
            .unwrap_or(Value::Null),
        PgDecode::Int2 => row
            .try_get::<Option<i16>, _>(i)?
            .map(Value::from)
            .unwrap_or(Value::Null),
        PgDecode::Int4 => row
            .try_get::<Option<i32>, _>(i)?
            .map(Value::from)
            .unwrap_or(Value::Null),
        PgDecode::Int8 => row
            .try_get::<Option<i64>, _>(i)?
            .map(Value::from)
            .unwrap_or(Value::Null),
        PgDecode::Float4 => row
            .try_get::<Option<f32>, _>(i)?
            .map(|f| Value::from(f as f64))
            .unwrap_or(Value::Null),
        PgDecode::Float8 => row
            .try_get::<Option<f64>, _>(i)?
            .map(Value::from)
            .unwrap_or(Value::Null),
        PgDecode::Text | PgDecode::AsText => row
            .try_get::<Option<String>, _>(i)?
            .map(Value::String)
            .unwrap_or(Value::Null),
        PgDecode::Timestamptz => row
            .try_get::<Option<DateTime<Utc>>, _>(i)?
            .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
            .unwrap_or(Value::Null),
        PgDecode::Timestamp => row
            .try_get::<Option<NaiveDateTime>, _>(i)?
            .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()))
            .unwrap_or(Value::Null),
        PgDecode::Date => row
            .try_get::<Option<NaiveDate>, _>(i)?
            .map(|d| Value::String(d.to_string()))
            .unwrap_or(Value::Null),
        PgDecode::Json => row
            .try_get::<Option<Value>, _>(i)?
            .map(|v| Value::String(v.to_string()))
            .unwrap_or(Value::Null),
    })
}
