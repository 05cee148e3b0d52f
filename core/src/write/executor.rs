//! The executor interface every app-owned executor implements (HTTP handler, command handler,
//! in-process callback). The core, not the executor, applies authority re-verification,
//! timeouts, idempotency, receipt validation and recording, identically for every kind.

use crate::error::{Error, Result};
use crate::values::Row;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A boxed, sendable future (executors are trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an executor is asked to do: the documented app-handler request plus routing data.
#[derive(Debug, Clone)]
pub struct ExecutorJob {
    /// Executor name from config.
    pub executor: String,
    pub proposal_id: String,
    pub writeback_job_id: String,
    pub idempotency_key: String,
    pub dry_run: bool,
    /// `synapsor.handler-writeback.v1` request: `change_set` with scope, principal, patch, guards, evidence.
    /// Shared, so an executor that hands the job to another thread (the bindings do) clones a
    /// pointer, not the request.
    pub request: Arc<Value>,
}

impl ExecutorJob {
    /// The job as bindings hand it to a callback: routing data, the request, and its
    /// `change_set` lifted to the top level for convenience.
    pub fn to_json(&self) -> Value {
        let mut job = self.to_json_without_change_set();
        let cs = self
            .request
            .get("change_set")
            .cloned()
            .unwrap_or(Value::Null);
        job["change_set"] = cs;
        job
    }

    /// `to_json` without the top-level `change_set` (a binding sets it to the very same object
    /// as `request.change_set` on its side instead of converting the diff twice).
    pub fn to_json_without_change_set(&self) -> Value {
        serde_json::to_value(self.without_change_set()).expect("a job serialises")
    }

    /// [`to_json_without_change_set`](Self::to_json_without_change_set) borrowed rather than
    /// built: serialising it writes the same JSON without copying the request first.
    pub fn without_change_set(&self) -> impl serde::Serialize + '_ {
        #[derive(serde::Serialize)]
        struct Job<'a> {
            executor: &'a str,
            proposal_id: &'a str,
            writeback_job_id: &'a str,
            idempotency_key: &'a str,
            dry_run: bool,
            request: &'a Value,
        }
        Job {
            executor: &self.executor,
            proposal_id: &self.proposal_id,
            writeback_job_id: &self.writeback_job_id,
            idempotency_key: &self.idempotency_key,
            dry_run: self.dry_run,
            request: self.request.as_ref(),
        }
    }
}

/// Why an executor did not return a receipt.
#[derive(Debug, Clone)]
pub enum ExecutorFailure {
    /// A safe code for the receipt (`HANDLER_TIMEOUT`, `HANDLER_HTTP_503`, ...).
    Safe { code: String, retryable: bool },
    /// The host application's own error (an exception in a callback). It is recorded as
    /// `HANDLER_EXCEPTION` and handed back to the `apply` caller unchanged.
    Callback(Arc<dyn std::error::Error + Send + Sync>),
}

impl ExecutorFailure {
    pub fn safe(code: impl Into<String>, retryable: bool) -> Self {
        ExecutorFailure::Safe {
            code: code.into(),
            retryable,
        }
    }
}

/// One executor. Implementations return the handler receipt body (validated by the core).
pub trait Executor: Send + Sync {
    fn execute<'a>(
        &'a self,
        job: &'a ExecutorJob,
        tx: Option<GuardedTx>,
    ) -> BoxFuture<'a, std::result::Result<Value, ExecutorFailure>>;

    /// Benchmarks only: this executor as a [`BenchSwitch`], if it is one.
    #[cfg(feature = "bench")]
    #[doc(hidden)]
    fn bench_switch(&self) -> Option<&BenchSwitch> {
        None
    }
}

/// Any `Fn(job, tx) -> future` closure is an executor (the Rust way to register a callback).
impl<F, Fut> Executor for F
where
    F: Fn(ExecutorJob, Option<GuardedTx>) -> Fut + Send + Sync,
    Fut: Future<Output = std::result::Result<Value, ExecutorFailure>> + Send + 'static,
{
    fn execute<'a>(
        &'a self,
        job: &'a ExecutorJob,
        tx: Option<GuardedTx>,
    ) -> BoxFuture<'a, std::result::Result<Value, ExecutorFailure>> {
        Box::pin(self(job.clone(), tx))
    }
}

/// Benchmarks only: a registered executor (a Python or JavaScript callback) that can be switched
/// to answering at once without touching the database (`applied`, no rows, source not mutated).
/// The bindings' benchmarks alternate the two on one runner, so the difference is the callback's
/// round trip alone, with nothing re-registered between applies. See
/// [`Runner::bench_baseline`](crate::Runner::bench_baseline). Not for applications.
#[cfg(feature = "bench")]
#[doc(hidden)]
pub struct BenchSwitch {
    inner: Arc<dyn Executor>,
    baseline: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "bench")]
impl BenchSwitch {
    pub(crate) fn new(inner: Arc<dyn Executor>, baseline: bool) -> Self {
        BenchSwitch {
            inner,
            baseline: baseline.into(),
        }
    }

    pub(crate) fn set(&self, baseline: bool) {
        self.baseline
            .store(baseline, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(feature = "bench")]
impl Executor for BenchSwitch {
    fn execute<'a>(
        &'a self,
        job: &'a ExecutorJob,
        tx: Option<GuardedTx>,
    ) -> BoxFuture<'a, std::result::Result<Value, ExecutorFailure>> {
        if !self.baseline.load(std::sync::atomic::Ordering::Relaxed) {
            return self.inner.execute(job, tx);
        }
        Box::pin(std::future::ready(Ok(serde_json::json!({
            "status": "applied", "rows_affected": 0, "source_database_mutated": false
        }))))
    }

    fn bench_switch(&self) -> Option<&BenchSwitch> {
        Some(self)
    }
}

/// A statement the callback wants to run inside the guarded transaction.
pub(crate) enum TxRequest {
    Execute {
        sql: String,
        params: Vec<Value>,
        reply: oneshot::Sender<Result<u64>>,
    },
    Fetch {
        sql: String,
        params: Vec<Value>,
        reply: oneshot::Sender<Result<Vec<Row>>>,
    },
}

impl TxRequest {
    /// Answer the callback with an error instead of running its statement.
    pub(crate) fn refuse(self, e: Error) {
        match self {
            TxRequest::Execute { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            TxRequest::Fetch { reply, .. } => {
                let _ = reply.send(Err(e));
            }
        }
    }
}

/// The guarded transaction handed to an in-process callback: the target row is already locked
/// under the tenant guard, the version checked and the idempotency receipt claimed. Statements
/// run in that transaction with bound parameters; the receipt commits with them. The handle is
/// cheap to clone and stops working once the core commits or rolls back.
#[derive(Clone)]
pub struct GuardedTx {
    sender: mpsc::Sender<TxRequest>,
    engine: crate::config::Engine,
}

impl std::fmt::Debug for GuardedTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuardedTx")
    }
}

/// The apply's end of a guarded transaction: the statements its callback sends. It keeps a
/// sender of its own, so the channel never reads as closed while the apply waits: the apply
/// ends when the callback answers, not when the callback lets go of its handle.
pub(crate) struct TxRequests {
    rx: mpsc::Receiver<TxRequest>,
    _open: mpsc::Sender<TxRequest>,
}

impl TxRequests {
    pub(crate) async fn recv(&mut self) -> Option<TxRequest> {
        self.rx.recv().await
    }
}

/// Why `sql` may not run inside a guarded transaction on `engine`, if it may not: it ends or
/// replaces the transaction (`COMMIT`, `ROLLBACK`, `BEGIN`, savepoints, `SET TRANSACTION`,
/// autocommit), commits implicitly on MySQL/MariaDB (DDL, `LOCK TABLES`, table maintenance;
/// DDL is transactional on PostgreSQL and SQLite and allowed there), or changes the connection
/// (SQLite `PRAGMA`, `ATTACH`, `VACUUM`). A second statement after a `;` is refused as well.
/// The core also checks before committing that the transaction is still the one it opened, so
/// what slips past this list (a stored procedure that commits) never becomes a blind retry.
pub fn transaction_control(sql: &str, engine: crate::config::Engine) -> Option<&'static str> {
    let words = statement_words(sql)?;
    let first = words.first().map(String::as_str).unwrap_or("");
    let second = words.get(1).map(String::as_str).unwrap_or("");
    match first {
        "BEGIN" | "START" | "COMMIT" | "ROLLBACK" | "END" | "ABORT" | "SAVEPOINT" | "RELEASE"
        | "PREPARE" | "XA" => Some("transaction control"),
        "SET"
            if matches!(
                second,
                "TRANSACTION"
                    | "SESSION"
                    | "AUTOCOMMIT"
                    | "@@AUTOCOMMIT"
                    | "CONSTRAINTS"
                    | "COMPLETION_TYPE"
            ) =>
        {
            Some("transaction settings")
        }
        "PRAGMA" | "ATTACH" | "DETACH" | "VACUUM" => Some("connection settings"),
        _ if engine != crate::config::Engine::Mysql => None,
        "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "RENAME" | "GRANT" | "REVOKE" | "LOCK"
        | "UNLOCK" | "FLUSH" | "ANALYZE" | "OPTIMIZE" | "REPAIR" | "CHECK" | "RESET" | "CACHE" => {
            Some("schema, maintenance or lock statements")
        }
        "" => Some("an empty statement"),
        _ => None,
    }
}

/// The leading keywords of `sql` (comments skipped, upper-cased), or `None` when a second
/// statement follows a `;` outside quotes and comments.
fn statement_words(sql: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = sql.chars().peekable();
    let mut ended = false;
    while let Some(c) = chars.next() {
        let boundary = |word: &mut String, words: &mut Vec<String>| {
            if !word.is_empty() {
                words.push(std::mem::take(word).to_ascii_uppercase());
            }
        };
        match c {
            '-' if chars.peek() == Some(&'-') => {
                boundary(&mut word, &mut words);
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                boundary(&mut word, &mut words);
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            '\'' | '"' | '`' => {
                boundary(&mut word, &mut words);
                words.push(String::from("<quoted>"));
                for n in chars.by_ref() {
                    if n == c {
                        break;
                    }
                }
            }
            ';' => {
                boundary(&mut word, &mut words);
                ended = true;
            }
            c if ended && !c.is_whitespace() => return None,
            c if c.is_alphanumeric() || c == '_' || c == '@' => word.push(c),
            _ => boundary(&mut word, &mut words),
        }
    }
    if !word.is_empty() {
        words.push(word.to_ascii_uppercase());
    }
    Some(words)
}

fn refuse_transaction_control(sql: &str, engine: crate::config::Engine) -> Result<()> {
    let why = match statement_words(sql) {
        None => Some("more than one statement"),
        Some(_) => transaction_control(sql, engine),
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::Executor {
            code: "TRANSACTION_CONTROL_REFUSED",
            message: format!(
                "{why} cannot run inside the guarded transaction; the core commits or rolls it back"
            ),
        }),
    }
}

fn closed() -> Error {
    Error::Executor {
        code: "TRANSACTION_CLOSED",
        message: "the guarded transaction has already finished".into(),
    }
}

impl GuardedTx {
    pub(crate) fn channel(engine: crate::config::Engine) -> (GuardedTx, TxRequests) {
        let (sender, rx) = mpsc::channel(8);
        let open = sender.clone();
        (GuardedTx { sender, engine }, TxRequests { rx, _open: open })
    }

    /// Run a statement with bound parameters (`$1`… on PostgreSQL, `?1`… on SQLite); returns affected rows.
    /// Statements that would end or escape the guarded transaction are refused
    /// (`TRANSACTION_CONTROL_REFUSED`), see [`transaction_control`].
    pub async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        refuse_transaction_control(sql, self.engine)?;
        let (reply, rx) = oneshot::channel();
        self.sender
            .send(TxRequest::Execute {
                sql: sql.to_string(),
                params: params.to_vec(),
                reply,
            })
            .await
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Run a query and return every row as column → JSON value.
    pub async fn fetch_all(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        refuse_transaction_control(sql, self.engine)?;
        let (reply, rx) = oneshot::channel();
        self.sender
            .send(TxRequest::Fetch {
                sql: sql.to_string(),
                params: params.to_vec(),
                reply,
            })
            .await
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Run a query and return its first row, if any.
    pub async fn fetch_one(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.fetch_all(sql, params).await?.into_iter().next())
    }

    /// Run one statement and answer as JSON, the way the language bindings hand it back:
    /// the affected-row count, every row, or the first row (`null` when none).
    pub async fn run_json(
        &self,
        statement: Statement,
        sql: &str,
        params: &[Value],
    ) -> Result<Value> {
        Ok(match statement {
            Statement::Execute => Value::from(self.execute(sql, params).await?),
            Statement::FetchAll => Value::Array(
                self.fetch_all(sql, params)
                    .await?
                    .into_iter()
                    .map(Value::Object)
                    .collect(),
            ),
            Statement::FetchOne => self
                .fetch_one(sql, params)
                .await?
                .map(Value::Object)
                .unwrap_or(Value::Null),
        })
    }
}

impl GuardedTx {
    /// [`run_json`](Self::run_json) for a synchronous callback, blocking its thread until the
    /// statement is done. That thread must not be a runtime worker (a binding runs synchronous
    /// callbacks on the host's own thread or on a blocking-pool thread).
    pub fn run_json_blocking(
        &self,
        handle: &tokio::runtime::Handle,
        statement: Statement,
        sql: &str,
        params: &[Value],
    ) -> Result<Value> {
        handle.block_on(self.run_json(statement, sql, params))
    }
}

/// The three things an executor callback can do with its guarded transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statement {
    Execute,
    FetchAll,
    FetchOne,
}

/// The refusal when an executor's source has no writer connection, so no guarded transaction.
pub fn no_guarded_transaction() -> Error {
    Error::Executor {
        code: "NO_GUARDED_TRANSACTION",
        message: "this executor has no guarded transaction (the source has no writer connection)"
            .into(),
    }
}
