//! `synapsor_runner._native`: thin shims over the core. Each method clones the runner handle,
//! calls one core function on the shared tokio runtime, and maps the result or error. The
//! public, typed API is the Python facade in `python/synapsor_runner/`.

mod convert;
mod def_threads;
mod errors;
mod mailbox;

use convert::{from_py, to_py};
use errors::{PyCallbackError, RuntimeForkedError, SynapsorError, coded, to_py_err};
use mailbox::Mailbox;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use synapsor_runner::write::executor::{
    BoxFuture, Executor, ExecutorFailure, ExecutorJob, GuardedTx, Statement, no_guarded_transaction,
};
use synapsor_runner::{ApplyOptions, Approver, OpenOptions, Runner, ToolNaming, TrustedContext};
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

/// Run a core future and hand Python an awaitable of its JSON result.
///
/// The first poll runs right here on the event-loop thread (`synapsor_runner::embed`), so a
/// call that completes without waiting never leaves it; one that waits continues on the runtime
/// and, when done, posts the result to the caller's loop through its mailbox (`mailbox.rs`:
/// one wake-up, no GIL on the worker), or with `call_soon_threadsafe` on loops without one.
/// A cancelled awaitable does not stop the call: it runs to completion (its effects are
/// recorded in the ledger) and the result is dropped.
///
/// With a `busy_wait` budget, a call that did not finish on its first poll keeps the loop
/// turning for up to that long (`Mailbox::keep_hot`), so its result is picked up without the
/// loop thread having gone to sleep. Without one, and unless `prewake` is off, the loop is woken
/// when the core says the call has only local work left (`embed::finishing`: its ledger write)
/// and turns from then until the result (at most `mailbox::PREWAKE_BUDGET`).
fn spawn<'py, F>(py: Python<'py>, wait: Wait, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<Value, PyErr>> + Send + 'static,
{
    check_fork()?;
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    let event_loop = locals.event_loop(py);
    let py_fut = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let mailbox = Mailbox::of(&event_loop);
    // The mailbox counting this call while it is in flight (busy-wait only).
    let counted = mailbox
        .as_ref()
        .filter(|_| !wait.busy.is_zero())
        .map(|m| m.clone_ref(py));
    if let Some(m) = &counted {
        m.get().call_started();
    }
    let hot = counted.as_ref().map(|m| m.clone_ref(py));
    let caller = std::thread::current().id();
    let prewake = mailbox
        .as_ref()
        .filter(|_| counted.is_none() && wait.prewake)
        .map(|m| Arc::new(Prewake::new(m.clone_ref(py), caller)));
    let caller_loop = mailbox.as_ref().map(|m| {
        Arc::new(CallerLoop {
            locals: locals.clone(),
            mailbox: m.clone_ref(py),
            prewake: prewake.clone(),
        })
    });
    let (target, loop_ref) = (py_fut.clone().unbind(), event_loop.clone().unbind());
    let runtime = pyo3_async_runtimes::tokio::get_runtime().handle();
    // A core call's future is a few KB (`inspect`'s about 3 KB), and each wrapper below would
    // hold it again: unboxed, the task came to some 19 KB, copied whole on every call. Boxed
    // here, the wrappers hold a pointer.
    let fut = Box::pin(fut);
    let call = pyo3_async_runtimes::tokio::scope(locals, async move {
        let fut = CALLER_LOOP.scope(caller_loop, fut);
        let out = match &prewake {
            Some(p) => {
                let p = p.clone();
                let hint = synapsor_runner::embed::FinishingHint::new(move || p.fire());
                synapsor_runner::embed::with_finishing_hint(hint, fut).await
            }
            None => fut.await,
        };
        settle(mailbox, caller, target, loop_ref, out);
        if let Some(m) = counted {
            m.get().call_finished();
        }
        if let Some(p) = prewake {
            p.settled();
        }
    });
    // The first poll does not need the GIL (other Python threads may run meanwhile).
    py.detach(|| synapsor_runner::embed::start(runtime, call));
    if let Some(m) = hot
        && !py_fut
            .call_method0(pyo3::intern!(py, "done"))?
            .is_truthy()?
    {
        Mailbox::keep_hot(m.bind(py), &event_loop, wait.busy);
    }
    Ok(py_fut)
}

/// One call's pre-wake: when the core says (on a worker) that the loop will be needed soon,
/// the call counts itself in flight and wakes the loop, which turns until it is uncounted. That
/// is the case twice: when only local work is left before the result (`embed::finishing`;
/// uncounted once the result is posted), and one database round trip before an `async def`
/// executor's job is handed to the loop (`Executor::warm_up`; uncounted when the loop starts
/// the coroutine, or with the result if the lock found a conflict).
struct Prewake {
    mailbox: Py<Mailbox>,
    caller: std::thread::ThreadId,
    /// Counted in the mailbox's `in_flight` now.
    counted: std::sync::atomic::AtomicBool,
}

impl Prewake {
    fn new(mailbox: Py<Mailbox>, caller: std::thread::ThreadId) -> Self {
        Prewake {
            mailbox,
            caller,
            counted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From the core (`embed::finishing`). On the loop thread itself nothing is asleep to
    /// wake: the result follows in the same poll.
    fn fire(&self) {
        if std::thread::current().id() != self.caller {
            self.warm_up();
        }
    }

    /// From an executor's `warm_up`. Even on the loop thread (a first poll that got this far
    /// without waiting): the loop would otherwise go to sleep before the job arrives.
    fn warm_up(&self) {
        if !self.counted.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.mailbox.get().call_started();
            self.mailbox.get().prewake();
        }
    }

    /// The loop has what it was woken for (the executor's job, or the result).
    fn settled(&self) {
        if self
            .counted
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.mailbox.get().call_finished();
        }
    }
}

/// The event loop a call was started from, readable on a runtime worker without the GIL.
struct CallerLoop {
    locals: pyo3_async_runtimes::TaskLocals,
    mailbox: Py<Mailbox>,
    /// The call's pre-wake, if it has one.
    prewake: Option<Arc<Prewake>>,
}

tokio::task_local! {
    /// Set for the duration of a call whose loop has a mailbox: an `async def` executor starts
    /// its coroutine there without the worker taking the GIL (which on a thread that is not
    /// Python's also creates and destroys a Python thread state each time).
    static CALLER_LOOP: Option<Arc<CallerLoop>>;
}

/// Hand a finished call's result to its awaitable: through the mailbox from another thread,
/// directly on the loop thread, or with `call_soon_threadsafe` on loops without a mailbox.
fn settle(
    mailbox: Option<Py<Mailbox>>,
    caller: std::thread::ThreadId,
    target: Py<PyAny>,
    event_loop: Py<PyAny>,
    out: Result<Value, PyErr>,
) {
    if let Some(mailbox) = mailbox
        .as_ref()
        .filter(|_| std::thread::current().id() != caller)
    {
        return mailbox.get().post(target, out);
    }
    Python::attach(|py| {
        let (ok, value) = outcome(py, out);
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
}

/// A call's result as Python sees it: `(True, value)` or `(False, exception)`.
pub(crate) fn outcome(py: Python<'_>, out: Result<Value, PyErr>) -> (bool, Bound<'_, PyAny>) {
    match out.and_then(|v| to_py(py, &v)) {
        Ok(v) => (true, v),
        Err(e) => (false, e.into_value(py).into_bound(py).into_any()),
    }
}

/// Set an awaitable's result or exception unless it was cancelled meanwhile (on its loop).
#[pyfunction]
pub(crate) fn deliver(fut: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
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

/// The longest busy-wait accepted: past a few milliseconds the loop's own sleep costs nothing
/// worth saving.
const MAX_BUSY_WAIT_SECS: f64 = 0.1;

/// How a pending call waits for its result on the caller's loop (see [`spawn`]).
#[derive(Clone, Copy)]
struct Wait {
    /// Keep the loop turning from the start of the call for up to this long; zero: not at all.
    busy: Duration,
    /// Wake the loop when only the call's local work is left, and turn until the result.
    prewake: bool,
}

fn busy_wait_budget(seconds: f64) -> PyResult<Duration> {
    if !(0.0..=MAX_BUSY_WAIT_SECS).contains(&seconds) {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "busy_wait must be between 0 and {MAX_BUSY_WAIT_SECS} seconds (got {seconds})"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn approver(id: String, roles: Vec<String>) -> Approver {
    roles.into_iter().fold(Approver::new(id), Approver::role)
}

/// The native runner handle. `close()` drops it; later calls raise `RUNNER_CLOSED`.
#[pyclass(frozen, module = "synapsor_runner._native")]
struct NativeRunner {
    runner: Mutex<Option<Runner>>,
    /// How a pending call waits on its event loop: busy-wait or pre-wake (`mailbox.rs`).
    wait: Wait,
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
    #[pyo3(signature = (config_path, ledger=None, busy_wait=0.0, prewake=true, env=None))]
    fn open(
        py: Python<'_>,
        config_path: PathBuf,
        ledger: Option<PathBuf>,
        busy_wait: f64,
        prewake: bool,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> PyResult<Bound<'_, PyAny>> {
        check_fork()?;
        let wait = Wait {
            busy: busy_wait_budget(busy_wait)?,
            prewake,
        };
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let runner = Runner::open(OpenOptions {
                config_path,
                ledger_path: ledger,
                env: env.unwrap_or_default(),
            })
            .await
            .map_err(to_py_err)?;
            Ok(NativeRunner {
                runner: Mutex::new(Some(runner)),
                wait,
            })
        })
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
        spawn(py, self.wait, async move {
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
        spawn(py, self.wait, async move {
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
        spawn(py, self.wait, async move {
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
        spawn(py, self.wait, async move {
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
        spawn(py, self.wait, async move {
            json(r.apply(&proposal_id, &opts).await.map_err(to_py_err)?)
        })
    }

    fn replay<'py>(&self, py: Python<'py>, proposal_id: String) -> PyResult<Bound<'py, PyAny>> {
        let r = self.get()?;
        spawn(py, self.wait, async move {
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
        spawn(py, self.wait, async move {
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
        spawn(py, self.wait, async move {
            Ok(r.call_tool(&name, args, &ctx).await)
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
        spawn(py, self.wait, async move {
            Ok(endpoint.handle(&message, &ctx).await.unwrap_or(Value::Null))
        })
    }

    /// Register an in-process executor: `func(job, tx)`, a coroutine function when `is_async`.
    fn register_executor(&self, name: &str, func: Py<PyAny>, is_async: bool) -> PyResult<()> {
        self.get()?.register_executor(
            name,
            PyExecutor {
                func: Arc::new(func),
                is_async,
                wait: self.wait,
            },
        );
        Ok(())
    }

    /// Benchmarks only: switch the executor registered under `name` between the Python callback
    /// and a Rust answer given at once without touching the database (the baseline
    /// `bench/bench_calls.py` alternates with the callback); `False` if nothing is registered
    /// under `name`.
    #[pyo3(name = "_bench_baseline")]
    fn bench_baseline(&self, name: &str, baseline: bool) -> PyResult<bool> {
        Ok(self.get()?.bench_baseline(name, baseline))
    }

    /// Benchmarks only: the same `inspect` run by Rust in a task of its own on a runtime worker,
    /// `times` times; answers how long that took there, in microseconds (the baseline
    /// `bench/bench_calls.py` alternates with `inspect`, and `bench/count_calls.py` counts).
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
        spawn(py, self.wait, async move {
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
    wait: Wait,
}

impl Executor for PyExecutor {
    fn execute<'a>(
        &'a self,
        job: &'a ExecutorJob,
        tx: Option<GuardedTx>,
    ) -> BoxFuture<'a, Result<Value, ExecutorFailure>> {
        // Four short strings and a pointer: the request itself is shared, not copied.
        let job = job.clone();
        let (func, wait) = (self.func.clone(), self.wait);
        if self.is_async {
            Box::pin(async move {
                // The coroutine runs on the event loop of the `apply` caller, started through
                // that loop's mailbox and answering from a host scope.
                if let Some(caller) = CALLER_LOOP.try_with(Option::clone).ok().flatten() {
                    let (send, answer) = tokio::sync::oneshot::channel();
                    let mailbox = caller.mailbox.get();
                    let caller = caller.clone();
                    mailbox.post_call(move |py| {
                        if let Some(p) = &caller.prewake {
                            p.settled();
                        }
                        let txo = Transaction { tx, wait };
                        start_coroutine(py, &func, job, txo, &caller.locals, send)
                    });
                    return answer
                        .await
                        .map_err(|_| ExecutorFailure::safe("HANDLER_UNAVAILABLE", true))?
                        .map_err(callback_failure);
                }
                // A loop without a mailbox: the coroutine runs there through its task locals.
                let fut = Python::attach(|py| {
                    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
                    let txo = Py::new(py, Transaction { tx, wait })?;
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
                // runtime worker. The answer is handed back inside a host scope, without the
                // GIL, so the apply carries on from that thread (it sends its next statement)
                // instead of waking a worker to do it.
                let (send, answer) = tokio::sync::oneshot::channel();
                def_threads::run(move |py| {
                    let out = (|| {
                        let txo = Py::new(py, SyncTransaction { tx })?;
                        let out = func.bind(py).call1((job_to_py(py, &job)?, txo))?;
                        from_py(&out)
                    })();
                    py.detach(|| {
                        synapsor_runner::embed::host_scope(|| {
                            let _ = send.send(out);
                        })
                    });
                });
                answer
                    .await
                    .map_err(|_| ExecutorFailure::safe("HANDLER_PANICKED", false))?
                    .map_err(callback_failure)
            })
        }
    }

    /// While the receipt is claimed and the row locked, wake what will run the callback, so it
    /// is awake when the job arrives: the caller's loop for an `async def` (the call's pre-wake,
    /// if it has one), a pool thread for a `def` (unless `prewake` is off).
    fn warm_up(&self) {
        if !self.is_async {
            if self.wait.prewake {
                def_threads::expect();
            }
        } else if let Ok(Some(caller)) = CALLER_LOOP.try_with(Option::clone)
            && let Some(p) = &caller.prewake
        {
            p.warm_up();
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

type Answer = tokio::sync::oneshot::Sender<PyResult<Value>>;

/// The task's own coroutine around an `async def` executor's: it hands back the receipt (or the
/// exception) as the executor's coroutine ends, within the same step of the task, rather than
/// from a done callback the loop runs one iteration later. An exception is handed back and not
/// raised again (`apply` raises it), except those that are not `Exception`s (cancellation,
/// `KeyboardInterrupt`, `SystemExit`), which end the task as they would have.
const DRIVE: &std::ffi::CStr = c"
async def drive(coro, answer):
    try:
        result = await coro
    except BaseException as e:
        answer(None, e)
        if not isinstance(e, Exception):
            raise
    else:
        answer(result, None)
";

static DRIVE_FN: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();

fn drive(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    DRIVE_FN
        .get_or_try_init(py, || {
            let module = PyModule::from_code(
                py,
                DRIVE,
                c"synapsor_runner/_drive.py",
                c"synapsor_runner._drive",
            )?;
            Ok::<_, PyErr>(module.getattr("drive")?.unbind())
        })
        .map(|f| f.bind(py))
}

/// An `async def` executor's answer, given once by whichever comes first (the coroutine's end,
/// the task's done callback, or a failure to start), in a host scope: the apply carries on from
/// the loop thread (without the GIL) rather than waking a runtime worker.
#[derive(Clone)]
struct OnceAnswer(Arc<Mutex<Option<Answer>>>);

impl OnceAnswer {
    fn give(&self, py: Python<'_>, out: PyResult<Value>) {
        if let Some(send) = self.0.lock().ok().and_then(|mut s| s.take()) {
            py.detach(|| {
                synapsor_runner::embed::host_scope(|| {
                    let _ = send.send(out);
                })
            })
        }
    }

    /// A Python callable that gives the answer `outcome` makes of its arguments.
    fn callback<'py>(
        &self,
        py: Python<'py>,
        outcome: impl Fn(&Bound<'_, pyo3::types::PyTuple>) -> PyResult<Value> + Send + Sync + 'static,
    ) -> PyResult<Bound<'py, pyo3::types::PyCFunction>> {
        let once = self.clone();
        pyo3::types::PyCFunction::new_closure(
            py,
            None,
            None,
            move |args: &Bound<'_, pyo3::types::PyTuple>, _kwargs| -> PyResult<()> {
                once.give(args.py(), outcome(args));
                Ok(())
            },
        )
    }
}

/// On the loop thread: start an `async def` executor as a task in the caller's context and
/// answer with its receipt (or its exception) when its coroutine ends ([`DRIVE`]).
fn start_coroutine(
    py: Python<'_>,
    func: &Py<PyAny>,
    job: ExecutorJob,
    tx: Transaction,
    locals: &pyo3_async_runtimes::TaskLocals,
    send: Answer,
) {
    let once = OnceAnswer(Arc::new(Mutex::new(Some(send))));
    let started = (|| -> PyResult<()> {
        let txo = Py::new(py, tx)?;
        let coro = func.bind(py).call1((job_to_py(py, &job)?, txo))?;
        // drive(coro, ended) calls ended(result, None) or ended(None, exception).
        let ended = once.callback(py, |args| {
            let exception = args.get_item(1)?;
            if exception.is_none() {
                from_py(&args.get_item(0)?)
            } else {
                Err(PyErr::from_value(exception))
            }
        })?;
        let create_task = locals
            .event_loop(py)
            .getattr(pyo3::intern!(py, "create_task"))?;
        // Context.run: the task copies the caller's context (works on 3.10, unlike `context=`).
        let task = locals.context(py).call_method1(
            pyo3::intern!(py, "run"),
            (create_task, drive(py)?.call1((coro, ended))?),
        )?;
        // Only for a task that never ran its coroutine (cancelled before its first step, or its
        // loop closed): everything else has answered by the time this runs.
        let done = once.callback(py, |args| {
            let result = args
                .get_item(0)?
                .call_method0(pyo3::intern!(args.py(), "result"))?;
            from_py(&result)
        })?;
        task.call_method1(pyo3::intern!(py, "add_done_callback"), (done,))?;
        Ok(())
    })();
    if let Err(e) = started {
        once.give(py, Err(e));
    }
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
    /// The runner's way of waiting, for the statements' awaitables.
    wait: Wait,
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
        // No pre-wake: the core has no local work after a statement to overlap a wake-up with.
        let wait = Wait {
            prewake: false,
            ..self.wait
        };
        spawn(py, wait, async move {
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
            .detach(move || tx.run_json_blocking(handle, statement, sql, p))
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

/// Tests only: how many `def` executor jobs a warmed-up pool thread took without being woken.
#[pyfunction]
fn _def_jobs_taken_polling() -> usize {
    def_threads::taken_polling()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_def_jobs_taken_polling, m)?)?;
    m.add_class::<NativeRunner>()?;
    m.add_class::<Transaction>()?;
    m.add_class::<SyncTransaction>()?;
    m.add("__version__", synapsor_runner::VERSION)?;
    errors::register(m)
}
