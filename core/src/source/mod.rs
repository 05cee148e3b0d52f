//! Source databases: pooled connections per source, scoped reads, guarded updates.

mod mysql;
mod postgres;
mod readers;
mod sqlite;

pub use mysql::MySource;
pub use postgres::PgSource;
pub use sqlite::SqliteSource;

use crate::config::{Engine, LoadedConfig, SourceConfig};
use crate::error::{Error, Result};
use crate::write::{GuardedUpdate, UpdateOutcome, WriteStep};
use readers::Readers;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub use crate::values::Row;

/// A scoped single-object read.
#[derive(Debug, Clone)]
pub struct ReadRequest<'a> {
    pub schema: &'a str,
    pub table: &'a str,
    pub columns: &'a [String],
    pub primary_key: &'a str,
    pub key_value: &'a Value,
    pub tenant: Option<(&'a str, &'a str)>,
    pub limit: u64,
}

/// What a source's receipt table records for one idempotency key: written in the same
/// transaction as the change, so it is the truth about whether the change committed.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceReceipt {
    pub status: String,
    pub result_hash: Option<String>,
    pub completed_at: Option<String>,
}

/// A configured source with its connections.
pub enum Source {
    Postgres(PgSource),
    Mysql(MySource),
    Sqlite(SqliteSource),
}

impl Source {
    fn open(
        name: &str,
        cfg: &SourceConfig,
        loaded: &LoadedConfig,
        env: &HashMap<String, String>,
    ) -> Result<Self> {
        match cfg.engine {
            Engine::Postgres => Ok(Source::Postgres(PgSource::new(name, cfg, env))),
            Engine::Sqlite => {
                let rel = cfg.path.as_deref().unwrap_or_default();
                let path = if std::path::Path::new(rel).is_absolute() {
                    rel.into()
                } else {
                    loaded.base_dir().join(rel)
                };
                Ok(Source::Sqlite(SqliteSource::new(path, cfg)))
            }
            Engine::Mysql => Ok(Source::Mysql(MySource::new(name, cfg, env))),
        }
    }

    /// Read rows matching primary key and tenant.
    pub async fn read(&self, req: &ReadRequest<'_>) -> Result<Vec<Row>> {
        match self {
            Source::Postgres(s) => s.read(req).await,
            Source::Mysql(s) => s.read(req).await,
            Source::Sqlite(s) => s.read(req),
        }
    }

    /// What each of `columns` of a table can hold.
    pub async fn column_kinds(
        &self,
        schema: &str,
        table: &str,
        columns: &[String],
    ) -> Result<Vec<crate::values::kinds::ColumnKind>> {
        match self {
            Source::Postgres(s) => s.column_kinds(schema, table, columns).await,
            Source::Mysql(s) => s.column_kinds(schema, table, columns).await,
            Source::Sqlite(s) => s.column_kinds(schema, table, columns),
        }
    }

    /// The source receipt for `idempotency_key` (`None` when there is none, or no receipt table
    /// yet: nothing was ever written through this source).
    pub async fn receipt(&self, idempotency_key: &str) -> Result<Option<SourceReceipt>> {
        match self {
            Source::Postgres(s) => s.receipt(idempotency_key).await,
            Source::Mysql(s) => s.receipt(idempotency_key).await,
            Source::Sqlite(s) => s.receipt(idempotency_key),
        }
    }

    /// Refuse before anything is recorded when the write connection's variable is unset, naming
    /// the variable (no connection is made).
    pub fn check_writer(&self) -> Result<()> {
        match self {
            Source::Postgres(s) => s.pools.check_writer(),
            Source::Mysql(s) => s.pools.check_writer(),
            Source::Sqlite(_) => Ok(()),
        }
    }

    /// Prove the writer can reach the source and write the receipt table (rolled back).
    pub async fn probe_writeback(&self) -> Result<String> {
        match self {
            Source::Postgres(s) => s.probe_writeback().await,
            Source::Mysql(s) => s.probe_writeback().await,
            Source::Sqlite(_) => Ok("sqlite source file is written directly".into()),
        }
    }

    /// Apply (or, with `dry_run`, rehearse and roll back) one guarded single-row update.
    pub async fn guarded_update(
        &self,
        plan: &GuardedUpdate,
        dry_run: bool,
        step: WriteStep<'_>,
    ) -> Result<UpdateOutcome> {
        match self {
            Source::Postgres(s) => s.guarded_update(plan, dry_run, step).await,
            Source::Mysql(s) => s.guarded_update(plan, dry_run, step).await,
            Source::Sqlite(s) => s.guarded_update(plan, dry_run, step).await,
        }
    }
}

/// All sources of a config, opened lazily (no connection until first use).
pub struct Sources {
    by_name: HashMap<String, Arc<Source>>,
}

impl Sources {
    /// `env` holds values for the URL variables the config names, used before the process
    /// environment.
    pub fn open(loaded: &LoadedConfig, env: &HashMap<String, String>) -> Result<Self> {
        let mut by_name = HashMap::new();
        for (name, cfg) in &loaded.config.sources {
            match Source::open(name, cfg, loaded, env) {
                Ok(s) => {
                    by_name.insert(name.clone(), Arc::new(s));
                }
                // An engine this build lacks only fails the calls that use it.
                Err(Error::SourceUnavailable {
                    code: "ENGINE_NOT_SUPPORTED",
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Sources { by_name })
    }

    pub fn get(&self, name: &str) -> Result<Arc<Source>> {
        self.by_name
            .get(name)
            .cloned()
            .ok_or_else(|| Error::SourceUnavailable {
                code: "SOURCE_NOT_AVAILABLE",
                message: format!("source {name} is not available in this runner"),
            })
    }
}

/// The open write transaction of a server source's guarded write (none once it ended).
pub(crate) struct OpenTx<DB: sqlx::Database>(Option<sqlx::Transaction<'static, DB>>);

impl<DB: sqlx::Database> OpenTx<DB> {
    pub(crate) fn new(tx: sqlx::Transaction<'static, DB>) -> Self {
        OpenTx(Some(tx))
    }

    pub(crate) fn is_open(&self) -> bool {
        self.0.is_some()
    }

    /// The transaction's connection, for one statement.
    pub(crate) fn conn(&mut self) -> Result<&mut DB::Connection> {
        match self.0.as_mut() {
            Some(tx) => Ok(&mut **tx),
            None => Err(Error::Internal("no open write transaction".into())),
        }
    }

    pub(crate) async fn rollback(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.rollback().await;
        }
    }

    pub(crate) async fn commit(&mut self) -> Result<()> {
        match self.0.take() {
            Some(tx) => tx
                .commit()
                .await
                .map_err(|e| Error::Database(format!("commit failed: {e}"), None)),
            None => Err(Error::Internal("no open write transaction".into())),
        }
    }
}

/// Reader connections and writer pool of a server source, created on first use from the env
/// vars the config names (so a missing writer only fails the calls that write).
pub(crate) struct LazyPools<DB: sqlx::Database> {
    name: String,
    read_env: Option<String>,
    write_env: Option<String>,
    /// Values the host gave for those variables, used before the process environment.
    given: HashMap<String, String>,
    readers: tokio::sync::OnceCell<Readers<DB::Connection>>,
    writer: tokio::sync::OnceCell<sqlx::Pool<DB>>,
}

impl<DB: sqlx::Database> LazyPools<DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    pub(crate) fn new(name: &str, cfg: &SourceConfig, env: &HashMap<String, String>) -> Self {
        let given = [&cfg.read_url_env, &cfg.write_url_env]
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v.clone(), env.get(v)?.clone())))
            .collect();
        LazyPools {
            name: name.to_string(),
            read_env: cfg.read_url_env.clone(),
            write_env: cfg.write_url_env.clone(),
            given,
            readers: Default::default(),
            writer: Default::default(),
        }
    }

    /// The reader connections (see `readers.rs`).
    pub(crate) async fn readers(&self) -> Result<&Readers<DB::Connection>> {
        self.readers
            .get_or_try_init(|| async {
                let (env, url) = self.url(false)?;
                let options = url.parse().map_err(|_| unusable::<DB>(&env))?;
                Ok(Readers::new(options))
            })
            .await
    }

    /// Whether the writer's URL variable is configured and set (no connection is made).
    pub(crate) fn check_writer(&self) -> Result<()> {
        if self.writer.initialized() {
            return Ok(());
        }
        self.url(true).map(|_| ())
    }

    /// The writer pool.
    pub(crate) async fn writer(&self) -> Result<&sqlx::Pool<DB>> {
        self.writer
            .get_or_try_init(|| async {
                let (env, url) = self.url(true)?;
                sqlx::pool::PoolOptions::<DB>::new()
                    .max_connections(16)
                    .acquire_timeout(std::time::Duration::from_secs(5))
                    .connect_lazy(&url)
                    .map_err(|_| unusable::<DB>(&env))
            })
            .await
    }

    /// The env var naming the reader's or writer's URL, and its value.
    fn url(&self, write: bool) -> Result<(String, String)> {
        let env = if write {
            &self.write_env
        } else {
            &self.read_env
        };
        let env = env.as_deref().ok_or_else(|| Error::SourceUnavailable {
            code: if write {
                "WRITEBACK_DISABLED"
            } else {
                "SOURCE_CREDENTIAL_MISSING"
            },
            message: format!(
                "source {} has no {} connection configured",
                self.name,
                if write { "write" } else { "read" }
            ),
        })?;
        let url = self
            .given
            .get(env)
            .cloned()
            .or_else(|| std::env::var(env).ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::SourceUnavailable {
                code: "SOURCE_CREDENTIAL_MISSING",
                message: format!(
                    "{env} is not set: source {} reads its {} connection URL from it.",
                    self.name,
                    if write { "write" } else { "read" }
                ),
            })?;
        Ok((env.to_string(), url))
    }
}

fn unusable<DB: sqlx::Database>(env: &str) -> Error {
    Error::SourceUnavailable {
        code: "SOURCE_UNAVAILABLE",
        message: format!("{env} is not a usable {} URL", DB::NAME),
    }
}

/// Bind a row's primary key (as text) and, under a tenant guard, the tenant: the parameters
/// every keyed statement of a server source ends with.
pub(crate) fn bind_key<'q, DB: sqlx::Database>(
    q: sqlx::query::Query<'q, DB, DB::Arguments>,
    key: &Value,
    tenant: Option<&str>,
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let q = q.bind(value_text(key));
    match tenant {
        Some(t) => q.bind(t.to_string()),
        None => q,
    }
}

/// Bound text form of a JSON scalar (NULL stays NULL).
pub(crate) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}
