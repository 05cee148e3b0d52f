//! `synapsor_runner._native`: thin shims over the core. Each method clones the runner handle,
//! calls one core function on the shared tokio runtime, and maps the result or error. The
//! public, typed API is the Python facade in `python/synapsor_runner/`.

mod convert;
mod def_threads;
mod errors;

use convert::{from_py, to_py};
use errors::{PyCallbackError, RuntimeForkedError, SynapsorError, coded, to_py_err};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use synapsor_runner::write::executor::{
    BoxFuture, Executor, ExecutorFailure, ExecutorJob, GuardedTx, Statement, no_guarded_transaction,
};
use synapsor_runner::{
    ApplyOptions, Approver, LedgerLocation, OpenOptions, Runner, ToolNaming, TrustedContext,
};
use synapsor_runner_mcp::McpEndpoint;

/// The process that first started the runtime. After `fork()` the runtime's threads do not
/// exist in the child, so every call there fails with `RuntimeForkedError` instead of hanging.
static RUNTIME_PID: OnceLock<u32> = OnceLock::new();

fn check_fork() -> PyResult<()> {
    let pid = *RUNTIME_PID.get_or_init(std::process::id);
    if pid != std::process::id() {
        return Err(coded(
            RuntimeForkedError::new_err,
            "RUNTIME_FORKED",
            format!(
                "synapsor_runner started its runtime in process {pid} before fork(); open the Runner inside each worker process after the fork (for example in the app's startup/lifespan hook, or without gunicorn --preload)"
            ),
        ));
    }
    Ok(())
}

/// Run a core call and hand Python an awaitable of its JSON result.
///
/// The call is polled first right here (`synapsor_runner::embed::start`, without the GIL) and
/// goes on on the runtime if it has to wait; it runs in the caller's task locals, so an
/// `async def` executor finds the caller's loop and context. The result is set on the caller's
/// loop: directly when the call finished on this thread, with `call_soon_threadsafe` otherwise.
/// Decision: cancelling the awaitable does not stop a started call, which runs to completion
/// (its effects are recorded in the ledger); only its result is dropped.
fn spawn<'py, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<Value, PyErr>> + Send + 'static,
{
    spawn_as(py, fut, |py, v| to_py(py, &v))
}

/// How a finished call's output becomes the awaitable's result.
type Convert<T> = for<'py> fn(Python<'py>, T) -> PyResult<Bound<'py, PyAny>>;

/// [`spawn`] for any output, turned into a Python object by `convert` on the loop's side.
fn spawn_as<'py, T, F>(py: Python<'py>, fut: F, convert: Convert<T>) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, PyErr>> + Send + 'static,
{
    check_fork()?;
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    let event_loop = locals.event_loop(py);
    let py_fut = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let (target, loop_ref) = (py_fut.clone().unbind(), event_loop.unbind());
    let caller = std::thread::current().id();
    let call = pyo3_async_runtimes::tokio::scope(locals, async move {
        let out = fut.await;
        settle(caller, target, loop_ref, out, convert);
    });
    let runtime = pyo3_async_runtimes::tokio::get_runtime().handle();
    py.detach(|| synapsor_runner::embed::start(runtime, call));
    Ok(py_fut)
}

/// Deliveries of results to Python under way on runtime threads, and whether the interpreter
/// is shutting down. A runtime thread that is inside `call_soon_threadsafe` when Python
/// finalizes would be stopped by the interpreter as it takes the GIL back, which aborts the
/// process; so at exit (an `atexit` hook) Python waits for the deliveries under way, and later
/// ones are dropped unsent.
static DELIVERING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static SHUTTING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `atexit`: stop delivering, and wait (GIL released, at most 5 s) for deliveries under way.
#[pyfunction]
fn _stop_deliveries(py: Python<'_>) {
    use std::sync::atomic::Ordering::SeqCst;
    SHUTTING_DOWN.store(true, SeqCst);
    py.detach(|| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while DELIVERING.load(SeqCst) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
}

/// Hand a finished call's result to its awaitable, on its loop.
fn settle<T>(
    caller: std::thread::ThreadId,
    target: Py<PyAny>,
    event_loop: Py<PyAny>,
    out: Result<T, PyErr>,
    convert: Convert<T>,
) {
    use std::sync::atomic::Ordering::SeqCst;
    DELIVERING.fetch_add(1, SeqCst);
    if SHUTTING_DOWN.load(SeqCst) {
        // Nobody is waiting; touching Python now could stop this thread mid-call.
        std::mem::forget((target, event_loop, out));
        DELIVERING.fetch_sub(1, SeqCst);
        return;
    }
    Python::attach(|py| {
        let (ok, value) = match out.and_then(|v| convert(py, v)) {
            Ok(v) => (true, v),
            Err(e) => (false, e.into_value(py).into_bound(py).into_any()),
        };
        let delivered = if std::thread::current().id() == caller {
            deliver(target.bind(py), ok, &value)
        } else {
            wrap_pyfunction!(deliver, py).and_then(|cb| {
                event_loop
                    .bind(py)
                    .call_method1(
                        pyo3::intern!(py, "call_soon_threadsafe"),
                        (cb, target.bind(py), ok, value),
                    )
                    .map(drop)
            })
        };
        if let Err(e) = delivered {
            e.print(py); // the loop is closed: nobody is waiting any more
        }
    });
    DELIVERING.fetch_sub(1, SeqCst);
}

/// Set an awaitable's result or exception unless it was cancelled meanwhile (on its loop).
#[pyfunction]
fn deliver(fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = fut.py();
    if fut.call_method0(pyo3::intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    let method = if ok {
        pyo3::intern!(py, "set_result")
    } else {
        pyo3::intern!(py, "set_exception")
    };
    fut.call_method1(method, (value,)).map(drop)
}

fn json<T: serde::Serialize>(v: T) -> Result<Value, PyErr> {
    serde_json::to_value(v).map_err(|e| SynapsorError::new_err(e.to_string()))
}

fn context(ctx: Option<&Bound<'_, PyAny>>) -> PyResult<TrustedContext> {
    let Some(ctx) = ctx.filter(|c| !c.is_none()) else {
        return Ok(TrustedContext::from_config());
    };
    let v = from_py(ctx)?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    if !v.is_object() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "context must be a dict with tenant_id and principal",
        ));
    }
    Ok(TrustedContext {
        tenant_id: field("tenant_id"),
        principal: field("principal"),
    })
}

fn naming(alias_mode: &str) -> PyResult<ToolNaming> {
    ToolNaming::parse(alias_mode).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err("alias_mode must be canonical, openai, or both")
    })
}

fn approver(id: String, roles: Vec<String>) -> Approver {
    roles.into_iter().fold(Approver::new(id), Approver::role)
}

/// The native runner handle. `close()` drops it; later calls raise `RUNNER_CLOSED`.
#[pyclass(frozen, module = "synapsor_runner._native")]
struct NativeRunner {
    runner: Mutex<Option<Runner>>,
}

impl NativeRunner {
    fn get(&self) -> PyResult<Runner> {
        self.runner
            .lock()
            .map_err(|_| SynapsorError::new_err("runner lock poisoned"))?
            .clone()
            .ok_or_else(|| {
                coded(
                    SynapsorError::new_err,
                    "RUNNER_CLOSED",
                    "this Runner is closed".into(),
                )
            })
    }
}

#[pymethods]
impl NativeRunner {
    #[staticmethod]
    #[pyo3(signature = (config_path, ledger=None, env=None, ledger_url_env=None, ledger_schema=None))]
    fn open(
        py: Python<'_>,
        config_path: PathBuf,
        ledger: Option<PathBuf>,
        env: Option<std::collections::HashMap<String, String>>,
        ledger_url_env: Option<String>,
        ledger_schema: Option<String>,
    ) -> PyResult<Bound<'_, PyAny>> {
        let open = async move {
            let runner = Runner::open(OpenOptions {
                config_path,
                ledger_path: ledger,
                env: env.unwrap_or_default(),
                ledger_location: ledger_url_env.map(|url_env| LedgerLocation::Postgres {
                    url_env,
                    schema: ledger_schema.unwrap_or_else(|| "synapsor".into()),
                }),
            })
            .await
            .map_err(to_py_err)?;
            Ok(NativeRunner {
                runner: Mutex::new(Some(runner)),
            })
        };
        spawn_as(py, open, |py, r| Ok(Bound::new(py, r)?.into_any()))
    }

    #[pyo3(signature = (capability, args, context=None))]
    fn inspect<'py>(
        &self,
        py: Python<'py>,
        capability: String,
        args: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (r, args, ctx) = (self.get()?, from_py(args)?, self::context(context)?);
        spawn(py, async move {
            Ok(r.inspect(&capability, args, &ctx)
                .await
                .map_err(to_py_err)?
                .into_json())
        })
    }

    #[pyo3(signature = (capability, args, context=None))]
    fn propose<'py>(
        &self,
        py: Python<'py>,
        capability: String,
        args: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (r, args, ctx) = (self.get()?, from_py(args)?, self::context(context)?);
        spawn(py, async move {
            json(
                r.propose(&capability, args, &ctx)
                    .await
                    .map_err(to_py_err)?,
            )
        })
    }

    #[pyo3(signature = (proposal_id, approver, roles=Vec::new()))]
    fn approve<'py>(
        &self,
        py: Python<'py>,
        proposal_id: String,
        approver: String,
        roles: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (r, who) = (self.get()?, self::approver(approver, roles));
        spawn(py, async move {
            json(r.approve(&proposal_id, &who).await.map_err(to_py_err)?)
        })
    }

    #[pyo3(signature = (proposal_id, approver, reason, roles=Vec::new()))]
    fn reject<'py>(
        &self,
        py: Python<'py>,
        proposal_id: String,
        approver: String,
        reason: String,
        roles: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (r, who) = (self.get()?, self::approver(approver, roles));
        spawn(py, async move {
            json(
                r.reject(&proposal_id, &who, &reason)
                    .await
                    .map_err(to_py_err)?,
            )
        })
    }

    #[pyo3(signature = (proposal_id, dry_run=false))]
    fn apply<'py>(
        &self,
        py: Python<'py>,
        proposal_id: String,
        dry_run: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.get()?;
        let opts = ApplyOptions {
            dry_run,
            ..ApplyOptions::default()
        };
        spawn(py, async move {
            json(r.apply(&proposal_id, &opts).await.map_err(to_py_err)?)
        })
    }

    fn replay<'py>(&self, py: Python<'py>, proposal_id: String) -> PyResult<Bound<'py, PyAny>> {
        let r = self.get()?;
        spawn(py, async move {
            r.replay(&proposal_id).await.map_err(to_py_err)
        })
    }

    #[pyo3(signature = (state=None, tenant_id=None, limit=50))]
    fn proposals<'py>(
        &self,
        py: Python<'py>,
        state: Option<String>,
        tenant_id: Option<String>,
        limit: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = self.get()?;
        spawn(py, async move {
            json(
                r.ledger()
                    .list_proposals(state.as_deref(), tenant_id.as_deref(), limit)
                    .await
                    .map_err(to_py_err)?,
            )
        })
    }

    #[pyo3(signature = (alias_mode="canonical"))]
    fn tools<'py>(&self, py: Python<'py>, alias_mode: &str) -> PyResult<Bound<'py, PyAny>> {
        let r = self.get()?;
        let tools = synapsor_runner_mcp::endpoint::tools_json(r.config(), naming(alias_mode)?);
        to_py(py, &tools["tools"])
    }

    #[pyo3(signature = (name, args, context=None))]
    fn call_tool<'py>(
        &self,
        py: Python<'py>,
        name: String,
        args: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (r, args, ctx) = (self.get()?, from_py(args)?, self::context(context)?);
        spawn(py, async move {
            Ok(synapsor_runner::agent::call_tool(&r, &name, args, &ctx).await)
        })
    }

    #[pyo3(signature = (message, context=None, alias_mode="canonical"))]
    fn mcp_handle<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        alias_mode: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let endpoint = McpEndpoint::new(self.get()?, naming(alias_mode)?);
        let (message, ctx) = (from_py(message)?, self::context(context)?);
        spawn(py, async move {
            Ok(endpoint.handle(&message, &ctx).await.unwrap_or(Value::Null))
        })
    }

    /// One request to the review API for a reviewer the host authenticated; resolves to
    /// `{"status": int, "body": dict}` (secret-looking values redacted).
    #[pyo3(signature = (method, path, query, body, reviewer, roles, tenant=None))]
    #[allow(clippy::too_many_arguments)]
    fn review_handle<'py>(
        &self,
        py: Python<'py>,
        method: String,
        path: String,
        query: Vec<(String, String)>,
        body: &Bound<'py, PyAny>,
        reviewer: String,
        roles: Vec<String>,
        tenant: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        use synapsor_runner::review::{ReviewApi, ReviewRequest, Reviewer};
        let api = ReviewApi::new(self.get()?);
        let request = ReviewRequest {
            method,
            path,
            query,
            body: from_py(body)?,
        };
        let reviewer = Reviewer {
            approver: Approver {
                role_assertion: "host".into(),
                ..self::approver(reviewer, roles)
            },
            tenant,
        };
        spawn(py, async move {
            let answer = api.handle(&request, &reviewer).await;
            let (body, _) = synapsor_runner::ledger::redact_secrets(&answer.body);
            Ok(serde_json::json!({"status": answer.status, "body": body}))
        })
    }

    /// Register an in-process executor: `func(job, tx)`, a coroutine function when `is_async`.
    fn register_executor(&self, name: &str, func: Py<PyAny>, is_async: bool) -> PyResult<()> {
        self.get()?.register_executor(
            name,
            PyExecutor {
                func: Arc::new(func),
                is_async,
            },
        );
        Ok(())
    }

    /// Benchmarks only: switch the executor registered under `name` between the Python callback
    /// and a Rust answer given at once without touching the database (the baseline
    /// `bench/bench_calls.py` alternates with the callback); `False` if nothing is registered
    /// under `name`.
    #[cfg(feature = "bench")]
    #[pyo3(name = "_bench_baseline")]
    fn bench_baseline(&self, name: &str, baseline: bool) -> PyResult<bool> {
        Ok(self.get()?.bench_baseline(name, baseline))
    }

    /// Benchmarks only: the same `inspect` run by Rust in a task of its own on a runtime worker,
    /// `times` times; answers how long that took there, in microseconds (the baseline
    /// `bench/bench_calls.py` alternates with `inspect`, and `bench/count_calls.py` counts).
    #[cfg(feature = "bench")]
    #[pyo3(name = "_bench_inspect_on_worker", signature = (capability, args, context=None, times=1))]
    fn bench_inspect_on_worker<'py>(
        &self,
        py: Python<'py>,
        capability: String,
        args: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        times: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (r, args, ctx) = (self.get()?, from_py(args)?, self::context(context)?);
        spawn(py, async move {
            json(
                r.bench_inspect_on_worker(capability, args, ctx, times)
                    .await
                    .map_err(to_py_err)?,
            )
        })
    }

    fn close(&self) -> PyResult<()> {
        self.runner
            .lock()
            .map_err(|_| SynapsorError::new_err("runner lock poisoned"))?
            .take();
        Ok(())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.runner.lock().map(|r| r.is_none()).unwrap_or(true)
    }
}

fn callback_failure(e: PyErr) -> ExecutorFailure {
    ExecutorFailure::Callback(Arc::new(PyCallbackError(e)))
}

/// A Python callable as a core executor. The core locks the row, checks the version and the
/// idempotency receipt, applies the timeout and records the receipt; this only calls Python.
struct PyExecutor {
    func: Arc<Py<PyAny>>,
    is_async: bool,
}

impl Executor for PyExecutor {
    fn execute<'a>(
        &'a self,
        job: &'a ExecutorJob,
        tx: Option<GuardedTx>,
    ) -> BoxFuture<'a, Result<Value, ExecutorFailure>> {
        // Four short strings and a pointer: the request itself is shared, not copied.
        let job = job.clone();
        let func = self.func.clone();
        if self.is_async {
            Box::pin(async move {
                // The coroutine runs as a task on the `apply` caller's loop, in its context.
                let fut = Python::attach(|py| {
                    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
                    let txo = Py::new(py, Transaction { tx })?;
                    let coro = func.bind(py).call1((job_to_py(py, &job)?, txo))?;
                    pyo3_async_runtimes::into_future_with_locals(&locals, coro)
                })
                .map_err(callback_failure)?;
                let out = fut.await.map_err(callback_failure)?;
                Python::attach(|py| from_py(out.bind(py))).map_err(callback_failure)
            })
        } else {
            Box::pin(async move {
                // Sync callbacks run on the binding's own threads (`def_threads`), never on a
                // runtime worker, which they would block.
                let (send, answer) = tokio::sync::oneshot::channel();
                def_threads::run(move |py| {
                    let out = (|| {
                        let txo = Py::new(py, SyncTransaction { tx })?;
                        let out = func.bind(py).call1((job_to_py(py, &job)?, txo))?;
                        from_py(&out)
                    })();
                    let _ = send.send(out);
                });
                answer
                    .await
                    .map_err(|_| ExecutorFailure::safe("HANDLER_PANICKED", false))?
                    .map_err(callback_failure)
            })
        }
    }
}

/// The job as Python sees it: the routing fields, the request, and `job["change_set"]`, the very
/// dict `job["request"]["change_set"]` (converted once, not twice). The same keys in the same
/// order as the core's `ExecutorJob::to_json`, built straight from the shared request.
fn job_to_py<'py>(py: Python<'py>, job: &ExecutorJob) -> PyResult<Bound<'py, PyAny>> {
    let obj = PyDict::new(py);
    obj.set_item(pyo3::intern!(py, "executor"), &job.executor)?;
    obj.set_item(pyo3::intern!(py, "proposal_id"), &job.proposal_id)?;
    obj.set_item(pyo3::intern!(py, "writeback_job_id"), &job.writeback_job_id)?;
    obj.set_item(pyo3::intern!(py, "idempotency_key"), &job.idempotency_key)?;
    obj.set_item(pyo3::intern!(py, "dry_run"), job.dry_run)?;
    let request = to_py(py, &job.request)?;
    obj.set_item(pyo3::intern!(py, "request"), &request)?;
    let change_set = match request.cast::<PyDict>() {
        Ok(d) => d.get_item(pyo3::intern!(py, "change_set"))?,
        Err(_) => None,
    };
    obj.set_item(
        pyo3::intern!(py, "change_set"),
        change_set.unwrap_or_else(|| py.None().into_bound(py)),
    )?;
    Ok(obj.into_any())
}

fn guarded(tx: &Option<GuardedTx>) -> PyResult<GuardedTx> {
    tx.clone()
        .ok_or_else(|| to_py_err(no_guarded_transaction()))
}

fn params(p: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Value>> {
    match p.filter(|p| !p.is_none()).map(from_py).transpose()? {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(pyo3::exceptions::PyTypeError::new_err(
            "params must be a list",
        )),
    }
}

/// The guarded transaction for `async def` executors: awaitable methods.
#[pyclass(frozen, module = "synapsor_runner._native")]
struct Transaction {
    tx: Option<GuardedTx>,
}

impl Transaction {
    fn run<'py>(
        &self,
        py: Python<'py>,
        statement: Statement,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (tx, p) = (guarded(&self.tx)?, self::params(params)?);
        spawn(py, async move {
            tx.run_json(statement, &sql, &p).await.map_err(to_py_err)
        })
    }
}

#[pymethods]
impl Transaction {
    #[pyo3(signature = (sql, params=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, Statement::Execute, sql, params)
    }

    #[pyo3(signature = (sql, params=None))]
    fn fetch_all<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, Statement::FetchAll, sql, params)
    }

    #[pyo3(signature = (sql, params=None))]
    fn fetch_one<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, Statement::FetchOne, sql, params)
    }
}

/// The guarded transaction for plain `def` executors: blocking methods (the GIL is released
/// while the statement runs).
#[pyclass(frozen, module = "synapsor_runner._native")]
struct SyncTransaction {
    tx: Option<GuardedTx>,
}

impl SyncTransaction {
    fn run<'py>(
        &self,
        py: Python<'py>,
        statement: Statement,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (tx, p) = (guarded(&self.tx)?, self::params(params)?);
        let handle = pyo3_async_runtimes::tokio::get_runtime().handle();
        let v = py
            .detach(move || tx.run_json_blocking(handle, statement, &sql, &p))
            .map_err(to_py_err)?;
        to_py(py, &v)
    }
}

#[pymethods]
impl SyncTransaction {
    #[pyo3(signature = (sql, params=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, Statement::Execute, sql, params)
    }

    #[pyo3(signature = (sql, params=None))]
    fn fetch_all<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, Statement::FetchAll, sql, params)
    }

    #[pyo3(signature = (sql, params=None))]
    fn fetch_one<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, Statement::FetchOne, sql, params)
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeRunner>()?;
    m.add_class::<Transaction>()?;
    let stop = wrap_pyfunction!(_stop_deliveries, m)?;
    m.py().import("atexit")?.call_method1("register", (stop,))?;
    m.add_class::<SyncTransaction>()?;
    m.add("__version__", synapsor_runner::VERSION)?;
    {
        use synapsor_runner::review::assets;
        m.add("REVIEW_INDEX_HTML", assets::INDEX_HTML)?;
        m.add("REVIEW_APP_JS", assets::APP_JS)?;
        m.add("REVIEW_APP_CSS", assets::APP_CSS)?;
        m.add("REVIEW_SECURITY_HEADERS", assets::SECURITY_HEADERS.to_vec())?;
        m.add("REVIEW_MAX_BODY_BYTES", assets::MAX_BODY_BYTES)?;
    }
    errors::register(m)
}
