//! MySQL and MariaDB sources through sqlx: lazy pools, flavor detection (MySQL vs MariaDB) for the
//! statement timeout, the receipt table ensured before any transaction (DDL commits implicitly).

use super::{ReadRequest, Row, value_text};
use crate::config::{Engine, SourceConfig};
use crate::error::{Error, Result, cause};
use crate::sql::mysql::{self as dialect, MyDecode};
use crate::values::kinds::{Advance, ColumnKind};
use crate::values::version::normalize_version;
use crate::write::executor::TxRequest;
use crate::write::guarded::{self, Claim, StoredReceipt, WriteEngine};
use crate::write::{GuardedUpdate, UpdateOutcome, VersionGuard, WriteStep};
use serde_json::Value;
use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{Connection, Row as _};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::OnceCell;

type Query = sqlx::query::Query<'static, sqlx::MySql, sqlx::mysql::MySqlArguments>;
/// Schema, table, column.
type ColumnKey = (String, String, String);

/// A MySQL or MariaDB source.
pub struct MySource {
    pub(super) pools: super::LazyPools<sqlx::MySql>,
    timeout_ms: Option<u64>,
    mariadb: OnceCell<bool>,
    /// Set once the receipt table exists: whether it has the `intent_hash` column.
    receipts_ready: OnceCell<bool>,
    types: Mutex<HashMap<ColumnKey, (MyDecode, ColumnKind)>>,
}

impl MySource {
    pub fn new(name: &str, cfg: &SourceConfig, env: &HashMap<String, String>) -> Self {
        MySource {
            pools: super::LazyPools::new(name, cfg, env),
            timeout_ms: cfg.statement_timeout_ms,
            mariadb: OnceCell::new(),
            receipts_ready: OnceCell::new(),
            types: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the server is MariaDB (decides which timeout variable exists).
    pub async fn is_mariadb(&self, conn: &mut MySqlConnection) -> Result<bool> {
        self.mariadb
            .get_or_try_init(|| async {
                let v: String = dialect::fixed(dialect::VERSION)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(map_err)?
                    .try_get(0)
                    .map_err(map_err)?;
                Ok::<_, Error>(v.to_ascii_lowercase().contains("mariadb"))
            })
            .await
            .copied()
    }

    async fn set_timeout(&self, conn: &mut MySqlConnection) -> Result<()> {
        if let Some(ms) = self.timeout_ms {
            let mariadb = self.is_mariadb(conn).await?;
            sqlx::raw_sql(dialect::set_timeout(mariadb, ms))
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn columns(
        &self,
        conn: &mut MySqlConnection,
        schema: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<(String, MyDecode)>> {
        let key = |c: &str| (schema.to_string(), table.to_string(), c.to_string());
        let known = {
            let t = self.types.lock().expect("type cache");
            columns.iter().all(|c| t.contains_key(&key(c)))
        };
        if !known {
            let rows = dialect::fixed(dialect::COLUMN_TYPES)
                .bind(schema.to_string())
                .bind(table.to_string())
                .fetch_all(&mut *conn)
                .await
                .map_err(map_err)?;
            let mut t = self.types.lock().expect("type cache");
            for r in rows {
                let name: String = r.try_get(0).map_err(map_err)?;
                let data_type: String = r.try_get(1).map_err(map_err)?;
                let column_type: String = r.try_get(2).map_err(map_err)?;
                let int = |i| r.try_get::<Option<i64>, _>(i).ok().flatten();
                let kind = dialect::kind_for(&data_type, &column_type, int(3), int(4), int(5));
                t.insert(key(&name), (dialect::decode_for(&data_type), kind));
            }
        }
        let t = self.types.lock().expect("type cache");
        columns
            .iter()
            .map(|c| {
                t.get(&key(c)).map(|d| (c.clone(), d.0)).ok_or_else(|| {
                    Error::Database(format!("column {c} not found on {schema}.{table}"), None)
                })
            })
            .collect()
    }

    /// The value domain of a column already learned by [`Self::columns`].
    fn kind_of(&self, schema: &str, table: &str, column: &str) -> Option<ColumnKind> {
        let t = self.types.lock().expect("type cache");
        t.get(&(schema.to_string(), table.to_string(), column.to_string()))
            .map(|d| d.1)
    }

    /// What each of `columns` can hold (from the cache a read fills, else one catalog query).
    pub async fn column_kinds(
        &self,
        schema: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<ColumnKind>> {
        let cached: Option<Vec<ColumnKind>> = columns
            .iter()
            .map(|c| self.kind_of(schema, table, c))
            .collect();
        if let Some(kinds) = cached {
            return Ok(kinds);
        }
        let mut lease = self
            .pools
            .readers()
            .await?
            .begin(&sqlx::SqlStr::from_static("START TRANSACTION READ ONLY"))
            .await
            .map_err(map_err)?;
        self.columns(lease.conn(), schema, table, columns).await?;
        lease.commit().await.map_err(map_err)?;
        Ok(columns
            .iter()
            .map(|c| self.kind_of(schema, table, c).unwrap_or(ColumnKind::Other))
            .collect())
    }

    pub async fn read(&self, req: &ReadRequest<'_>) -> Result<Vec<Row>> {
        let mut lease = self
            .pools
            .readers()
            .await?
            .begin(&sqlx::SqlStr::from_static("START TRANSACTION READ ONLY"))
            .await
            .map_err(map_err)?;
        // The timeout is a session setting: once per connection, from inside its first read.
        if lease.fresh() {
            self.set_timeout(lease.conn()).await?;
        }
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

    /// Writer connectivity and receipt-table permissions, proven with a rolled-back probe (the
    /// receipt table itself is created if missing, as the first apply would).
    pub async fn probe_writeback(&self) -> Result<String> {
        let mut conn = self
            .pools
            .writer()
            .await?
            .acquire()
            .await
            .map_err(map_err)?;
        ensure_receipts(&mut conn).await?;
        let flavor = if self.is_mariadb(&mut conn).await? {
            "MariaDB"
        } else {
            "MySQL"
        };
        let mut tx = conn.begin().await.map_err(map_err)?;
        dialect::fixed(dialect::RECEIPT_PROBE)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.rollback().await.map_err(map_err)?;
        Ok(format!("{flavor}: receipt table writable"))
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
            // 1146: no receipt table yet.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42S02") => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    /// Apply (or, with `dry_run`, rehearse) one guarded single-row change: the receipt table,
    /// flavor, session timeout, column types and lock statement here, the transaction in
    /// [`guarded`].
    pub async fn guarded_update(
        &self,
        plan: &GuardedUpdate,
        dry_run: bool,
        step: WriteStep<'_>,
    ) -> Result<UpdateOutcome> {
        let pool = self.pools.writer().await?.clone();
        // DDL commits implicitly in MySQL: the receipt table is ensured before any transaction,
        // and the flavor learned (it decides how finalizing proves the transaction is ours).
        if self.receipts_ready.get().is_none() || self.mariadb.get().is_none() {
            let mut conn = pool.acquire().await.map_err(map_err)?;
            if self.receipts_ready.get().is_none() {
                ensure_receipts(&mut conn).await?;
                let n: i64 = dialect::fixed(dialect::RECEIPT_HAS_INTENT)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(map_err)?
                    .try_get(0)
                    .map_err(map_err)?;
                let _ = self.receipts_ready.set(n > 0);
            }
            self.is_mariadb(&mut conn).await?;
        }
        let has_intent = self.receipts_ready.get().copied().unwrap_or(false);
        let mariadb = self.mariadb.get().copied().unwrap_or(false);
        let mut tx = pool.begin().await.map_err(map_err)?;
        self.set_timeout(&mut tx).await?;
        let mut needed = plan.lock_columns.clone();
        for c in plan.patch_columns() {
            if !needed.contains(&c) {
                needed.push(c);
            }
        }
        let cols = self
            .columns(&mut tx, &plan.schema, &plan.table, &needed)
            .await?;
        let decode_of = |c: &str| {
            cols.iter()
                .find(|(n, _)| n == c)
                .map(|(_, d)| *d)
                .unwrap_or(MyDecode::Text)
        };
        let lock_cols: Vec<(String, MyDecode)> = plan
            .lock_columns
            .iter()
            .map(|c| (c.clone(), decode_of(c)))
            .collect();
        let lock = dialect::select_row(
            &plan.schema,
            &plan.table,
            &lock_cols,
            &plan.primary_key,
            plan.tenant_column(),
            1,
            true,
        )?;
        let kinds = needed
            .iter()
            .filter_map(|c| Some((c.clone(), self.kind_of(&plan.schema, &plan.table, c)?)))
            .collect();
        let mut engine = MyWrite {
            tx: super::OpenTx::new(tx),
            has_intent,
            mariadb,
            cols,
            kinds,
            lock_cols,
            lock,
        };
        guarded::run(&mut engine, plan, dry_run, step).await
    }
}

/// MySQL's and MariaDB's pieces of the guarded write.
struct MyWrite {
    /// Opened while preparing (the session timeout and column types are set and learned in it).
    tx: super::OpenTx<sqlx::MySql>,
    /// Whether the receipt table has the `intent_hash` column (tables from older runners lack it).
    has_intent: bool,
    mariadb: bool,
    cols: Vec<(String, MyDecode)>,
    kinds: HashMap<String, ColumnKind>,
    lock_cols: Vec<(String, MyDecode)>,
    lock: dialect::MyStatement,
}

impl MyWrite {
    fn decode_of(&self, column: &str) -> MyDecode {
        self.cols
            .iter()
            .find(|(n, _)| n == column)
            .map(|(_, d)| *d)
            .unwrap_or(MyDecode::Text)
    }

    fn tx(&mut self) -> Result<&mut MySqlConnection> {
        self.tx.conn()
    }
}

impl WriteEngine for MyWrite {
    const ENGINE: Engine = Engine::Mysql;

    fn kind(&self, column: &str) -> Option<ColumnKind> {
        self.kinds.get(column).copied()
    }

    async fn begin(&mut self) -> Result<()> {
        // Opened while preparing; a claim never asks to start over here.
        self.tx().map(|_| ())
    }

    async fn claim(&mut self, plan: &GuardedUpdate) -> Result<Claim> {
        let claim = if self.has_intent {
            dialect::fixed(dialect::RECEIPT_CLAIM)
                .bind(plan.idempotency_key.clone())
                .bind(plan.job_id.clone())
                .bind(plan.proposal_id.clone())
                .bind(plan.intent_hash.clone())
        } else {
            dialect::fixed(dialect::RECEIPT_CLAIM_LEGACY)
                .bind(plan.idempotency_key.clone())
                .bind(plan.job_id.clone())
                .bind(plan.proposal_id.clone())
        };
        let done = claim.execute(self.tx()?).await.map_err(map_err)?;
        Ok(if done.rows_affected() == 1 {
            Claim::Claimed {
                proof: String::new(),
            }
        } else {
            Claim::Taken
        })
    }

    async fn stored_receipt(&mut self, plan: &GuardedUpdate) -> Result<Option<StoredReceipt>> {
        let row = dialect::fixed(if self.has_intent {
            dialect::RECEIPT_LOCK
        } else {
            dialect::RECEIPT_LOCK_LEGACY
        })
        .bind(plan.idempotency_key.clone())
        .fetch_optional(self.tx()?)
        .await
        .map_err(map_err)?;
        let text = |r: &MySqlRow, i| r.try_get::<Option<String>, _>(i).ok().flatten();
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
            &columns,
            &plan.primary_key,
            plan.tenant_column(),
            plan.version_column(),
            advance,
        )?;
        let mut q = stmt.query();
        for (c, v) in patch {
            q = bind_for(q, v, self.decode_of(c));
        }
        q = super::bind_key(q, &plan.key_value, plan.tenant_value());
        if let VersionGuard::Column { column, expected } = &plan.guard {
            q = bind_for(q, expected, self.decode_of(column));
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
        _proof: &str,
    ) -> Result<u64> {
        let finalize = if self.mariadb {
            dialect::RECEIPT_FINALIZE_MARIADB
        } else {
            dialect::RECEIPT_FINALIZE
        };
        let done = dialect::fixed(finalize)
            .bind(outcome.status.as_str())
            .bind(outcome.result_hash.clone())
            .bind(plan.idempotency_key.clone())
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

/// Create the receipt table when it does not exist yet. Checked first, so that a writer granted
/// only SELECT, INSERT and UPDATE on an existing table (`writeback grants`) never needs CREATE.
async fn ensure_receipts(conn: &mut MySqlConnection) -> Result<()> {
    let n: i64 = dialect::fixed(dialect::RECEIPT_TABLE_EXISTS)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?
        .try_get(0)
        .map_err(map_err)?;
    if n == 0 {
        sqlx::raw_sql(dialect::RECEIPT_DDL)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

/// Temporal columns get `YYYY-MM-DD HH:MM:SS.ffffff` (what MySQL parses in any mode); other
/// values bind by JSON type.
fn bind_for(q: Query, v: &Value, decode: MyDecode) -> Query {
    match (decode, v) {
        (MyDecode::Temporal, Value::String(_)) => q.bind(normalize_version(v)),
        (_, Value::Null) => q.bind(None::<String>),
        (_, Value::Bool(b)) => q.bind(*b),
        (_, Value::Number(n)) if n.is_i64() => q.bind(n.as_i64()),
        (MyDecode::Float, Value::Number(n)) => q.bind(n.as_f64()),
        // Exact decimals and large unsigned integers go as their text, never through a float.
        (_, Value::Number(n)) => q.bind(n.to_string()),
        (_, other) => q.bind(value_text(other)),
    }
}

async fn serve_app_statement(tx: &mut MySqlConnection, req: TxRequest) {
    let bind_all = |sql: &str, params: &[Value]| {
        params.iter().fold(dialect::app_statement(sql), |q, p| {
            bind_for(q, p, MyDecode::Text)
        })
    };
    match req {
        TxRequest::Execute { sql, params, reply } => {
            let out = bind_all(&sql, &params)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
                .map_err(app_err);
            let _ = reply.send(out);
        }
        TxRequest::Fetch { sql, params, reply } => {
            let out = match bind_all(&sql, &params).fetch_all(&mut *tx).await {
                Ok(rows) => Ok(rows.iter().map(decode_any_row).collect()),
                Err(e) => Err(app_err(e)),
            };
            let _ = reply.send(out);
        }
    }
}

fn app_err(e: sqlx::Error) -> Error {
    Error::Executor {
        code: "APP_STATEMENT_FAILED",
        message: e.to_string(),
    }
}

/// Decode a row of any query: integers, floats, text, then timestamps, in that order.
fn decode_any_row(row: &MySqlRow) -> Row {
    use sqlx::Column;
    let mut out = Row::new();
    for (i, col) in row.columns().iter().enumerate() {
        let v = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            v.map(Value::from)
        } else if let Ok(v) = row.try_get::<Option<u64>, _>(i) {
            v.map(Value::from)
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
            v.map(Value::from)
        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            v.map(Value::String)
        } else if let Ok(v) = row.try_get::<Option<chrono::NaiveDateTime>, _>(i) {
            v.map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()))
        } else {
            None
        };
        out.insert(col.name().to_string(), v.unwrap_or(Value::Null));
    }
    out
}

fn decode_row(row: &MySqlRow, cols: &[(String, MyDecode)]) -> Result<Row> {
    let mut out = Row::new();
    for (i, (name, d)) in cols.iter().enumerate() {
        let v = match d {
            MyDecode::Int => row
                .try_get::<Option<i64>, _>(i)
                .map_err(map_err)?
                .map(Value::from),
            MyDecode::Float => row
                .try_get::<Option<f64>, _>(i)
                .map_err(map_err)?
                .map(Value::from),
            MyDecode::Text => row
                .try_get::<Option<String>, _>(i)
                .map_err(map_err)?
                .map(Value::String),
            // `2026-06-20 12:00:00.123456` → `2026-06-20T12:00:00.123456` (precision kept as stored).
            MyDecode::Temporal => row
                .try_get::<Option<String>, _>(i)
                .map_err(map_err)?
                .map(|s| Value::String(s.replacen(' ', "T", 1))),
        };
        out.insert(name.clone(), v.unwrap_or(Value::Null));
    }
    Ok(out)
}

/// Connection problems, lock waits and statement timeouts are transient.
fn map_err(e: sqlx::Error) -> Error {
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
            let number = db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number())
                .unwrap_or(0);
            // 1040 too many connections, 1044/1045 access denied, 1205 lock wait, 1213 deadlock,
            // 1969 MariaDB statement timeout, 2006/2013 server gone, 3024 MySQL statement timeout.
            if number == 1049 {
                return Error::SourceUnavailable {
                    code: "DATABASE_NOT_FOUND",
                    message: "the database named in the connection URL does not exist (1049): check the URL's database name".into(),
                };
            }
            if matches!(number, 1044 | 1045) {
                return Error::SourceUnavailable {
                    code: "DATABASE_AUTH_FAILED",
                    message: format!(
                        "the database refused the connection URL's user or password ({number})"
                    ),
                };
            }
            if matches!(number, 1040 | 1205 | 1213 | 1969 | 2006 | 2013 | 3024) {
                Error::SourceUnavailable {
                    code: "SOURCE_UNAVAILABLE",
                    message: format!("database unavailable ({number})"),
                }
            } else {
                Error::Database(format!("{number}: {}", db.message()), cause(e))
            }
        }
        _ => Error::Database(e.to_string(), cause(e)),
    }
}
