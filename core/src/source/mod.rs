//! Source databases: pooled connections per source, scoped reads, guarded updates.

pub mod kinds;
mod mysql;
mod postgres;
mod readers;
mod sqlite;

pub use mysql::MySource;
pub use postgres::PgSource;
pub use sqlite::SqliteSource;

use crate::config::{Engine, LoadedConfig, SourceConfig};
use crate::error::{Error, Result};
use readers::Readers;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// One row as column → JSON scalar, in the order the columns were selected.
pub type Row = Map<String, Value>;

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

/// Which conflict guard a guarded update enforces.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionGuard {
    /// The column's current value must equal `expected` at microsecond precision.
    Column { column: String, expected: Value },
    /// The digest of the selected columns must equal `expected` (explicitly acknowledged weak guard).
    RowHash {
        expected: String,
        columns: Vec<String>,
    },
}

/// Everything a source needs to apply one approved single-row change.
#[derive(Debug, Clone)]
pub struct GuardedUpdate {
    pub job_id: String,
    pub proposal_id: String,
    pub idempotency_key: String,
    pub intent_hash: String,
    pub schema: String,
    pub table: String,
    pub primary_key: String,
    pub key_value: Value,
    pub tenant: Option<(String, String)>,
    pub patch: Vec<(String, Value)>,
    pub guard: VersionGuard,
    /// How the write moves the guard column (column guards only).
    pub advance: crate::config::GuardAdvance,
    /// The reviewed transition guards of the patched columns, re-checked on the locked row.
    pub transitions: Vec<(String, crate::config::TransitionGuard)>,
    /// The reviewed numeric bounds of the patched columns, re-checked inside the transaction.
    pub bounds: Vec<(String, crate::config::NumericBound)>,
    /// Columns to lock and read back (includes the guard column and transition sources).
    pub lock_columns: Vec<String>,
}

impl GuardedUpdate {
    /// The version column compared in the UPDATE predicate, for column guards.
    pub fn version_column(&self) -> Option<&str> {
        match &self.guard {
            VersionGuard::Column { column, .. } => Some(column),
            VersionGuard::RowHash { .. } => None,
        }
    }
    pub fn tenant_column(&self) -> Option<&str> {
        self.tenant.as_ref().map(|t| t.0.as_str())
    }
    pub fn patch_columns(&self) -> Vec<String> {
        self.patch.iter().map(|(c, _)| c.clone()).collect()
    }
}

/// Final status of a writeback attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    Applied,
    AlreadyApplied,
    Conflict,
    Failed,
}

impl WriteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteStatus::Applied => "applied",
            WriteStatus::AlreadyApplied => "already_applied",
            WriteStatus::Conflict => "conflict",
            WriteStatus::Failed => "failed",
        }
    }
}

/// What runs once the row is locked and its version checked.
pub enum WriteStep<'a> {
    /// The guarded single-row UPDATE of the approved patch (`sql_update`).
    Update,
    /// An in-process executor, given the guarded transaction (`in_process`).
    Callback {
        executor: &'a dyn crate::apply::executor::Executor,
        job: &'a crate::apply::executor::ExecutorJob,
        timeout: std::time::Duration,
    },
}

impl WriteStep<'_> {
    /// Right before the receipt claim: tell a callback executor it is next, two database round
    /// trips ahead ([`Executor::warm_up`](crate::apply::executor::Executor::warm_up)).
    pub(crate) fn warm_up(&self) {
        if let WriteStep::Callback { executor, .. } = self {
            executor.warm_up();
        }
    }
}

/// What the source transaction did.
#[derive(Debug, Clone)]
pub struct UpdateOutcome {
    pub status: WriteStatus,
    pub code: Option<String>,
    pub rows_affected: u64,
    pub previous_version: Option<Value>,
    pub result_hash: String,
    /// A transient failure: the proposal stays approved and a later apply may succeed.
    pub retryable: bool,
    /// The receipt body an in-process callback returned.
    pub handler_body: Option<Value>,
    /// The callback's own error, handed back to the `apply` caller unchanged.
    pub callback_error: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    /// Read back from an earlier attempt's source receipt rather than done now.
    pub recovered: bool,
}

impl UpdateOutcome {
    pub(crate) fn new(
        status: WriteStatus,
        code: Option<&str>,
        job_id: &str,
        version: Option<&Value>,
    ) -> Self {
        let tag = code.unwrap_or(status.as_str());
        let mut obj = serde_json::json!({"job_id": job_id, "status": tag});
        if let Some(v) = version {
            obj["version"] = v.clone();
        }
        UpdateOutcome {
            status,
            code: code.map(String::from),
            rows_affected: 0,
            previous_version: version.cloned(),
            result_hash: crate::protocol::digest(&obj),
            retryable: false,
            handler_body: None,
            callback_error: None,
            recovered: false,
        }
    }
    pub(crate) fn failed(job_id: &str, code: &str, retryable: bool) -> Self {
        let mut o = Self::new(WriteStatus::Failed, Some(code), job_id, None);
        o.retryable = retryable;
        o
    }
}

/// Map a stored source-side receipt status to the outcome of a repeated apply.
pub(crate) fn outcome_from_existing_receipt(
    job_id: &str,
    status: Option<&str>,
    hash: Option<String>,
    intent: Option<String>,
    want_intent: &str,
) -> UpdateOutcome {
    if let Some(i) = intent.as_deref()
        && i != want_intent
    {
        return UpdateOutcome::failed(job_id, "IDEMPOTENCY_IDENTITY_CONFLICT", false);
    }
    let mut o = match status {
        None => UpdateOutcome::failed(job_id, "IDEMPOTENCY_RECEIPT_UNAVAILABLE", true),
        // The change committed with this receipt. Reported as the application it was: if the
        // ledger already holds it, recording this is a no-op retry; if a crash or a failed ledger
        // write lost it, this recovers it.
        Some("applied" | "already_applied") => {
            let mut o = UpdateOutcome::new(WriteStatus::Applied, None, job_id, None);
            o.rows_affected = 1;
            o.recovered = true;
            o
        }
        Some("conflict") => UpdateOutcome::new(
            WriteStatus::Conflict,
            Some("IDEMPOTENT_CONFLICT"),
            job_id,
            None,
        ),
        Some("failed") => UpdateOutcome::failed(job_id, "IDEMPOTENT_FAILED", false),
        Some(_) => UpdateOutcome::failed(job_id, "IDEMPOTENCY_RECEIPT_IN_PROGRESS", true),
    };
    if let Some(h) = hash.filter(|h| h.starts_with("sha256:")) {
        o.result_hash = h;
    }
    o
}

/// The guarded transaction is no longer the one the core opened (an in-process callback ended
/// it) or its receipt claim vanished: statements may have committed outside it. Never retried
/// blindly; `reconcile` settles it from the source receipts.
pub(crate) fn transaction_lost(plan: &GuardedUpdate) -> UpdateOutcome {
    UpdateOutcome::failed(&plan.job_id, "RECONCILIATION_REQUIRED", false)
}

/// A patch value the target column would round, truncate or reject: refused before any write
/// (propose refuses it first; this catches a schema that changed since).
pub(crate) fn patch_problem(
    plan: &GuardedUpdate,
    kind: impl Fn(&str) -> Option<kinds::ColumnKind>,
) -> Option<UpdateOutcome> {
    plan.patch
        .iter()
        .any(|(c, v)| kind(c).and_then(|k| kinds::value_problem(k, v)).is_some())
        .then(|| UpdateOutcome::failed(&plan.job_id, "PATCH_VALUE_TYPE_INVALID", false))
}

/// The failed outcome of a guard the runner cannot advance.
pub(crate) const NOT_ADVANCEABLE: &str = "CONFLICT_GUARD_NOT_ADVANCEABLE";

/// How this write advances the guard column of `kind` (`None` for a row-hash guard), or
/// [`NOT_ADVANCEABLE`] for a guard the runner cannot advance.
pub(crate) fn plan_advance(
    plan: &GuardedUpdate,
    kind: Option<kinds::ColumnKind>,
) -> std::result::Result<Option<kinds::Advance>, &'static str> {
    if plan.version_column().is_none() {
        return Ok(None);
    }
    kinds::advance_rule(kind.unwrap_or(kinds::ColumnKind::Other), plan.advance)
        .map(Some)
        .map_err(|_| NOT_ADVANCEABLE)
}

/// Whether the guard column of the re-read row moved away from the approved version (a row
/// that is gone counts as moved: there is nothing left to guard).
pub(crate) fn version_moved(plan: &GuardedUpdate, row: Option<&Row>) -> bool {
    match (&plan.guard, row) {
        (VersionGuard::Column { column, expected }, Some(row)) => {
            let current = row.get(column).cloned().unwrap_or(Value::Null);
            !crate::apply::version::versions_match(&current, expected)
        }
        _ => true,
    }
}

/// Compare the locked row against the guard, then re-check the reviewed transitions and bounds
/// against it. `Some(conflict outcome)` when any of them does not hold; the row stays untouched.
pub(crate) fn check_guard(plan: &GuardedUpdate, row: &Row) -> Option<UpdateOutcome> {
    check_version(plan, row).or_else(|| check_policy(plan, row))
}

fn check_policy(plan: &GuardedUpdate, row: &Row) -> Option<UpdateOutcome> {
    use crate::capability::{check_bounds_of, check_transitions};
    let conflict = |code| {
        Some(UpdateOutcome::new(
            WriteStatus::Conflict,
            Some(code),
            &plan.job_id,
            None,
        ))
    };
    let proposed = |col: &str| plan.patch.iter().find(|(c, _)| c == col).map(|(_, v)| v);
    if check_transitions(&plan.transitions, proposed, row).is_err() {
        return conflict("TRANSITION_NO_LONGER_ALLOWED");
    }
    if check_bounds_of(&plan.bounds, proposed).is_err() {
        return conflict("POLICY_BOUND_VIOLATED");
    }
    None
}

fn check_version(plan: &GuardedUpdate, row: &Row) -> Option<UpdateOutcome> {
    match &plan.guard {
        VersionGuard::Column { column, expected } => {
            let current = row.get(column).cloned().unwrap_or(Value::Null);
            if crate::apply::version::versions_match(&current, expected) {
                None
            } else {
                Some(UpdateOutcome::new(
                    WriteStatus::Conflict,
                    Some("VERSION_CONFLICT"),
                    &plan.job_id,
                    Some(&current),
                ))
            }
        }
        VersionGuard::RowHash { expected, columns } => {
            let subset: Map<String, Value> = columns
                .iter()
                .map(|c| (c.clone(), row.get(c).cloned().unwrap_or(Value::Null)))
                .collect();
            // Hashed as the approver saw it: with credential-like text masked.
            let (seen, _) = crate::ledger::secrets::redact_secrets(&Value::Object(subset));
            if &crate::protocol::digest(&seen) == expected {
                None
            } else {
                Some(UpdateOutcome::new(
                    WriteStatus::Conflict,
                    Some("VERSION_CONFLICT"),
                    &plan.job_id,
                    None,
                ))
            }
        }
    }
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
    fn open(name: &str, cfg: &SourceConfig, loaded: &LoadedConfig) -> Result<Self> {
        match cfg.engine {
            Engine::Postgres => Ok(Source::Postgres(PgSource::new(name, cfg))),
            Engine::Sqlite => {
                let rel = cfg.path.as_deref().unwrap_or_default();
                let path = if std::path::Path::new(rel).is_absolute() {
                    rel.into()
                } else {
                    loaded.base_dir().join(rel)
                };
                Ok(Source::Sqlite(SqliteSource::new(path, cfg)))
            }
            Engine::Mysql => Ok(Source::Mysql(MySource::new(name, cfg))),
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
    ) -> Result<Vec<kinds::ColumnKind>> {
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
    pub fn open(loaded: &LoadedConfig) -> Result<Self> {
        let mut by_name = HashMap::new();
        for (name, cfg) in &loaded.config.sources {
            match Source::open(name, cfg, loaded) {
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

/// Run an in-process callback against a guarded transaction and turn its answer into an outcome.
/// `serve` runs one statement the callback sent; `Ok(Some(outcome))` means commit with the
/// receipt, `Ok(None)` never happens, and every other result rolls back.
pub(crate) fn callback_outcome(
    plan: &GuardedUpdate,
    result: std::result::Result<
        std::result::Result<Value, crate::apply::executor::ExecutorFailure>,
        tokio::time::error::Elapsed,
    >,
) -> (bool, UpdateOutcome) {
    use crate::apply::executor::ExecutorFailure;
    match result {
        Err(_) => (
            false,
            UpdateOutcome::failed(&plan.job_id, "HANDLER_TIMEOUT", true),
        ),
        Ok(Err(ExecutorFailure::Safe { code, retryable })) => {
            (false, UpdateOutcome::failed(&plan.job_id, &code, retryable))
        }
        Ok(Err(ExecutorFailure::Callback(e))) => {
            let mut o = UpdateOutcome::failed(&plan.job_id, "HANDLER_EXCEPTION", false);
            o.callback_error = Some(e);
            (false, o)
        }
        Ok(Ok(body)) => match crate::protocol::HandlerReceipt::parse(&body) {
            Err(_) => (
                false,
                UpdateOutcome::failed(&plan.job_id, "HANDLER_RECEIPT_INVALID", false),
            ),
            Ok(r) => {
                let status = match r.status.as_str() {
                    "applied" => WriteStatus::Applied,
                    "already_applied" => WriteStatus::AlreadyApplied,
                    "conflict" => WriteStatus::Conflict,
                    _ => WriteStatus::Failed,
                };
                let code = r.safe_error_code.clone().or_else(|| {
                    (status == WriteStatus::Failed).then(|| "HANDLER_FAILED".to_string())
                });
                let mut o = UpdateOutcome::new(
                    status,
                    code.as_deref(),
                    &plan.job_id,
                    r.previous_version.as_ref(),
                );
                o.rows_affected = if status == WriteStatus::Applied {
                    r.rows_affected.max(1)
                } else {
                    0
                };
                o.handler_body = Some(body);
                (status == WriteStatus::Applied, o)
            }
        },
    }
}

/// Reader connections and writer pool of a server source, created on first use from the env
/// vars the config names (so a missing writer only fails the calls that write).
pub(crate) struct LazyPools<DB: sqlx::Database> {
    name: String,
    read_env: Option<String>,
    write_env: Option<String>,
    readers: tokio::sync::OnceCell<Readers<DB::Connection>>,
    writer: tokio::sync::OnceCell<sqlx::Pool<DB>>,
}

impl<DB: sqlx::Database> LazyPools<DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    pub(crate) fn new(name: &str, cfg: &SourceConfig) -> Self {
        LazyPools {
            name: name.to_string(),
            read_env: cfg.read_url_env.clone(),
            write_env: cfg.write_url_env.clone(),
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
        let url = std::env::var(env)
            .ok()
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
