//! `@synapsor/runner-native`: thin shims over the core. Each method clones the runner handle,
//! converts its arguments on the JS thread, runs one core call on the runtime, and resolves with
//! plain JSON-compatible objects (or rejects with a coded `Error`, see `errors.rs`).

mod busy;
mod errors;
mod executor;
mod json;
mod results;

use errors::Failure;
use executor::{JsExecutor, Transaction};
use json::Json;
use napi::bindgen_prelude::{
    Env, FnArgs, Function, PromiseRaw, ToNapiValue, Unknown, within_runtime_if_available,
};
use napi_derive::napi;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use synapsor_runner::{
    ApplyOptions as CoreApplyOptions, Approver, OpenOptions as CoreOpenOptions,
    Runner as CoreRunner, ToolNaming, TrustedContext,
};
use synapsor_runner_mcp::McpEndpoint;

/// Start a core call and hand JavaScript a promise of its result. The first poll runs right
/// here on the JS thread (see `synapsor_runner::embed`), the rest on the runtime; the promise
/// resolves with the value, or rejects with a coded error built on the JS thread.
pub(crate) fn spawn<'env, T, F>(env: &'env Env, fut: F) -> napi::Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    spawn_with(env, busy::Wait::default(), fut)
}

/// [`spawn`], keeping the event loop turning while the call is in flight for up to `wait.busy`
/// (`busy.rs`). Without that, and with `wait.prewake`, the loop sleeps while the database works
/// and is woken when the core says the call has only local work left (`embed::finishing`: its
/// ledger write); it turns from then until the result, at most `busy::PREWAKE_BUDGET`.
pub(crate) fn spawn_with<'env, T, F>(
    env: &'env Env,
    wait: busy::Wait,
    fut: F,
) -> napi::Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    // A core call's future is a few KB (`inspect`'s about 3 KB), and each wrapper below would
    // hold it again: unboxed, some 48 KB were copied on every call. Boxed here, the wrappers
    // hold a pointer.
    let fut = Box::pin(fut);
    let (deferred, promise) = results::deferred(env)?;
    let runtime = within_runtime_if_available(tokio::runtime::Handle::current);
    let in_flight = (!wait.busy.is_zero()).then(|| busy::call_started(env, wait.busy));
    let prewake = (in_flight.is_none() && wait.prewake)
        .then(|| deferred.js_thread())
        .flatten()
        .map(|js| Arc::new(Prewake::new(js)));
    synapsor_runner::embed::start(&runtime, async move {
        let out = match &prewake {
            Some(p) => {
                let hint = {
                    let p = p.clone();
                    synapsor_runner::embed::FinishingHint::new(move || p.fire())
                };
                let fut = synapsor_runner::embed::with_finishing_hint(hint, fut);
                CALL_PREWAKE.scope(p.clone(), fut).await
            }
            None => fut.await,
        };
        deferred.settle(move |env| out.map_err(|f| f.into_js(env)));
        drop(in_flight);
        if let Some(p) = prewake {
            p.settled();
        }
    });
    Ok(PromiseRaw::new(env.raw(), promise))
}

/// One call's pre-wake: told on a runtime worker that the JS thread will be needed soon, it
/// counts the call as keeping the loop turning and asks the JS thread to turn, until it is
/// settled. That is the case twice: when only local work is left before the result
/// (`embed::finishing`; settled once the result is queued), and one database round trip before
/// an executor's job is handed to JavaScript (`Executor::warm_up`; settled when the callback
/// has returned, or with the result if the lock found a conflict).
pub(crate) struct Prewake {
    js: results::JsThread,
    counter: Arc<AtomicUsize>,
    js_thread: std::thread::ThreadId,
    /// Counted in the ticker's counter now.
    counted: AtomicBool,
}

tokio::task_local! {
    /// The pre-wake of the call being run, for its executor (`JsExecutor::warm_up`).
    static CALL_PREWAKE: Arc<Prewake>;
}

/// The pre-wake of the call running on this task, if it has one.
pub(crate) fn call_prewake() -> Option<Arc<Prewake>> {
    CALL_PREWAKE.try_with(Arc::clone).ok()
}

impl Prewake {
    /// On the JS thread.
    fn new(js: results::JsThread) -> Self {
        Prewake {
            js,
            counter: busy::counter(),
            js_thread: std::thread::current().id(),
            counted: AtomicBool::new(false),
        }
    }

    /// From the core (`embed::finishing`). On the JS thread itself nothing is asleep to wake:
    /// the result follows in the same poll.
    fn fire(&self) {
        if std::thread::current().id() != self.js_thread {
            self.warm_up();
        }
    }

    /// From an executor's `warm_up`. Even on the JS thread (a first poll that got this far
    /// without waiting): the loop would otherwise go to sleep before the job arrives.
    pub(crate) fn warm_up(&self) {
        if !self.counted.swap(true, Ordering::AcqRel) {
            self.counter.fetch_add(1, Ordering::AcqRel);
            self.js.run(|env| busy::keep_hot(env, busy::PREWAKE_BUDGET));
        }
    }

    /// The JS thread has what it was woken for (the executor's job, or the result).
    pub(crate) fn settled(&self) {
        if self.counted.swap(false, Ordering::AcqRel) {
            self.counter.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn json<T: serde::Serialize>(v: T) -> Result<Json, Failure> {
    Json::of(&v)
}

/// Trusted context for one call, from the host application's own auth (provider `host`).
#[napi(object)]
pub struct Context {
    pub tenant_id: String,
    pub principal: String,
}

fn trusted(ctx: Option<Context>) -> TrustedContext {
    match ctx {
        None => TrustedContext::from_config(),
        Some(c) => TrustedContext {
            tenant_id: Some(c.tenant_id),
            principal: Some(c.principal),
        },
    }
}

#[napi(object)]
pub struct OpenOptions {
    /// Ledger path (default: the config's `storage`, else `.synapsor/local.db`).
    pub ledger: Option<String>,
    /// Milliseconds (0 to 100, default 0): while a call is in flight, keep the event loop
    /// turning for up to this long instead of letting it sleep until the result arrives. Saves
    /// the OS wake-up of the JS thread for the JS thread's CPU time; see
    /// docs/node.md#pre-wake-and-busy-wait.
    pub busy_wait_ms: Option<f64>,
    /// Default true (ignored with `busyWaitMs`): the event loop sleeps while the database works
    /// and is woken as soon as a call has only its ledger write left, then keeps turning until
    /// the result (at most 1 ms), so the result does not wait for the JS thread to wake. Costs
    /// the JS thread's CPU for that stretch; see docs/node.md#pre-wake-and-busy-wait.
    pub prewake: Option<bool>,
    /// Values for the variables the config names for connection URLs (`read_url_env`,
    /// `write_url_env`), used before `process.env`: hand over URLs from your own secret store
    /// without setting environment variables.
    pub env: Option<std::collections::HashMap<String, String>>,
}

#[napi(object)]
pub struct CallOptions {
    /// Tenant and principal from your app's session. Required for provider `host`.
    pub context: Option<Context>,
}

#[napi(object)]
pub struct ApproveOptions {
    /// Who approves (your app's reviewer id).
    pub approver: String,
    /// Roles your app verified for `approver`.
    pub roles: Option<Vec<String>>,
}

#[napi(object)]
pub struct RejectOptions {
    pub approver: String,
    /// Required: why the proposal is rejected.
    pub reason: String,
    pub roles: Option<Vec<String>>,
}

#[napi(object)]
pub struct ApplyOptions {
    /// Verify everything and run the executor's dry run without writing.
    pub dry_run: Option<bool>,
}

#[napi(object)]
pub struct ProposalsQuery {
    pub state: Option<String>,
    pub tenant_id: Option<String>,
    /// At most this many, newest first (default 50).
    pub limit: Option<u32>,
}

#[napi(object)]
pub struct ToolsOptions {
    #[napi(ts_type = "AliasMode")]
    pub alias_mode: Option<String>,
}

#[napi(object)]
pub struct McpOptions {
    pub context: Option<Context>,
    #[napi(ts_type = "AliasMode")]
    pub alias_mode: Option<String>,
}

fn naming(alias_mode: Option<&str>) -> Result<ToolNaming, Failure> {
    let mode = alias_mode.unwrap_or("canonical");
    ToolNaming::parse(mode).ok_or_else(|| {
        Failure::invalid(
            "INVALID_ALIAS_MODE",
            format!("aliasMode must be canonical, openai, or both (got {mode:?})"),
        )
    })
}

fn approver(id: String, roles: Option<Vec<String>>) -> Approver {
    roles
        .unwrap_or_default()
        .into_iter()
        .fold(Approver::new(id), Approver::role)
}

/// One config, one ledger, the source pools. Open once per process with `Runner.open`.
#[napi]
pub struct Runner {
    inner: Mutex<Option<CoreRunner>>,
    wait: busy::Wait,
}

impl Runner {
    fn get(&self) -> Result<CoreRunner, Failure> {
        self.inner
            .lock()
            .map_err(|_| Failure::closed())?
            .clone()
            .ok_or_else(Failure::closed)
    }

    /// Clone the handle now (so `close()` afterwards does not affect the call) and run `f`.
    fn call<'env, F, Fut>(&self, env: &'env Env, f: F) -> napi::Result<PromiseRaw<'env, Json>>
    where
        F: FnOnce(CoreRunner) -> Fut,
        Fut: Future<Output = Result<Json, Failure>> + Send + 'static,
    {
        // Boxed where it is made: passed on by value, it would be copied (see `spawn_with`).
        let fut = self.get().map(|r| Box::pin(f(r)));
        spawn_with(env, self.wait, async move { fut?.await })
    }
}

#[napi]
impl Runner {
    /// Load and validate the config (a `ConfigError` lists every problem in `.issues`) and open
    /// the ledger.
    #[napi(ts_return_type = "Promise<Runner>")]
    pub fn open<'env>(
        env: &'env Env,
        config_path: String,
        options: Option<OpenOptions>,
    ) -> napi::Result<PromiseRaw<'env, Runner>> {
        let (ledger, busy_wait, prewake, env_vars) = options
            .map_or((None, None, None, None), |o| {
                (o.ledger, o.busy_wait_ms, o.prewake, o.env)
            });
        let ledger_path = ledger.map(PathBuf::from);
        let busy_wait = busy::budget(busy_wait);
        spawn(env, async move {
            let wait = busy::Wait {
                busy: busy_wait.map_err(|m| Failure::invalid("INVALID_BUSY_WAIT", m))?,
                prewake: prewake.unwrap_or(true),
            };
            let runner = CoreRunner::open(CoreOpenOptions {
                config_path: PathBuf::from(config_path),
                ledger_path,
                env: env_vars.unwrap_or_default(),
            })
            .await?;
            Ok(Runner {
                inner: Mutex::new(Some(runner)),
                wait,
            })
        })
    }

    /// Run a read capability: one row in the trusted tenant, evidence recorded.
    #[napi(
        ts_args_type = "capability: string, args: JsonObject, options?: CallOptions",
        ts_return_type = "Promise<InspectResult>"
    )]
    pub fn inspect<'env>(
        &self,
        env: &'env Env,
        capability: String,
        args: Value,
        options: Option<CallOptions>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let ctx = trusted(options.and_then(|o| o.context));
        self.call(env, move |r| async move {
            json(r.inspect(&capability, args, &ctx).await?)
        })
    }

    /// Create a proposal with an exact before/after diff. The source database does not change.
    #[napi(
        ts_args_type = "capability: string, args: JsonObject, options?: CallOptions",
        ts_return_type = "Promise<ProposalResult>"
    )]
    pub fn propose<'env>(
        &self,
        env: &'env Env,
        capability: String,
        args: Value,
        options: Option<CallOptions>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let ctx = trusted(options.and_then(|o| o.context));
        self.call(env, move |r| async move {
            json(r.propose(&capability, args, &ctx).await?)
        })
    }

    /// Approve outside the model, as `approver` holding the `roles` your app verified.
    #[napi(ts_return_type = "Promise<StoredProposal>")]
    pub fn approve<'env>(
        &self,
        env: &'env Env,
        proposal_id: String,
        options: ApproveOptions,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let who = approver(options.approver, options.roles);
        self.call(env, move |r| async move {
            json(r.approve(&proposal_id, &who).await?)
        })
    }

    /// Reject a proposal (terminal). A reason is required.
    #[napi(ts_return_type = "Promise<StoredProposal>")]
    pub fn reject<'env>(
        &self,
        env: &'env Env,
        proposal_id: String,
        options: RejectOptions,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let who = approver(options.approver, options.roles);
        let reason = options.reason;
        self.call(env, move |r| async move {
            json(r.reject(&proposal_id, &who, &reason).await?)
        })
    }

    /// Apply an approved proposal through its executor. An error thrown by an in-process
    /// executor rolls everything back and rejects this promise with that same error.
    #[napi(ts_return_type = "Promise<ApplyResult>")]
    pub fn apply<'env>(
        &self,
        env: &'env Env,
        proposal_id: String,
        options: Option<ApplyOptions>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let opts = CoreApplyOptions {
            dry_run: options.and_then(|o| o.dry_run).unwrap_or(false),
            ..CoreApplyOptions::default()
        };
        self.call(env, move |r| async move {
            json(r.apply(&proposal_id, &opts).await?)
        })
    }

    /// Everything captured for a proposal, in order.
    #[napi(ts_return_type = "Promise<Replay>")]
    pub fn replay<'env>(
        &self,
        env: &'env Env,
        proposal_id: String,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        self.call(
            env,
            move |r| async move { json(r.replay(&proposal_id).await?) },
        )
    }

    /// Newest proposals first, optionally filtered by state and tenant.
    #[napi(ts_return_type = "Promise<StoredProposal[]>")]
    pub fn proposals<'env>(
        &self,
        env: &'env Env,
        query: Option<ProposalsQuery>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let q = query.unwrap_or(ProposalsQuery {
            state: None,
            tenant_id: None,
            limit: None,
        });
        self.call(env, move |r| async move {
            json(
                r.ledger()
                    .list_proposals(
                        q.state.as_deref(),
                        q.tenant_id.as_deref(),
                        q.limit.unwrap_or(50),
                    )
                    .await?,
            )
        })
    }

    /// The tools an MCP client would list (name, inputSchema, outputSchema, annotations).
    #[napi(ts_return_type = "ToolDefinition[]")]
    pub fn tools(&self, env: &Env, options: Option<ToolsOptions>) -> napi::Result<Value> {
        let list = || -> Result<Value, Failure> {
            let naming = naming(options.and_then(|o| o.alias_mode).as_deref())?;
            let tools = synapsor_runner_mcp::endpoint::tools_json(self.get()?.config(), naming);
            Ok(tools["tools"].clone())
        };
        list().map_err(|f| f.into_js(env))
    }

    /// Call a tool by exposed name; resolves to the result envelope (errors are envelopes too).
    #[napi(
        ts_args_type = "name: string, args: JsonObject, options?: CallOptions",
        ts_return_type = "Promise<ToolEnvelope>"
    )]
    pub fn call_tool<'env>(
        &self,
        env: &'env Env,
        name: String,
        args: Value,
        options: Option<CallOptions>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let ctx = trusted(options.and_then(|o| o.context));
        self.call(env, move |r| async move {
            json(r.call_tool(&name, args, &ctx).await)
        })
    }

    /// Answer one MCP JSON-RPC message (or batch) under `context`; `null` for notifications.
    /// Serve it from your own route: your auth decides the context, the message never can.
    #[napi(
        ts_args_type = "message: JsonValue, options?: McpOptions",
        ts_return_type = "Promise<JsonValue | null>"
    )]
    pub fn mcp_handle<'env>(
        &self,
        env: &'env Env,
        message: Value,
        options: Option<McpOptions>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let (ctx, mode) = match options {
            Some(o) => (trusted(o.context), o.alias_mode),
            None => (TrustedContext::from_config(), None),
        };
        let endpoint = naming(mode.as_deref()).and_then(|n| Ok(McpEndpoint::new(self.get()?, n)));
        spawn(
            env,
            async move { json(endpoint?.handle(&message, &ctx).await) },
        )
    }

    /// Register an in-process executor (an executor of type `in_process` in the config):
    /// `(job, tx) => receipt`, sync or async. Registering the same name again replaces it.
    #[napi(ts_args_type = "name: string, executor: Executor")]
    pub fn executor(
        &self,
        env: &Env,
        name: String,
        executor: Function<'_, FnArgs<(Unknown<'static>, Transaction)>, Unknown<'static>>,
    ) -> napi::Result<()> {
        let runner = self.get().map_err(|f| f.into_js(env))?;
        runner.register_executor(&name, JsExecutor::new(executor, self.wait)?);
        Ok(())
    }

    /// @internal Benchmarks only: switch the executor registered under `name` between the
    /// JavaScript callback and a Rust answer given at once without touching the database (the
    /// baseline `bench/bench_calls.mjs` alternates with the callback); `false` if nothing is
    /// registered under `name`. Not for applications.
    #[napi(js_name = "_benchBaseline")]
    pub fn bench_baseline(&self, env: &Env, name: String, baseline: bool) -> napi::Result<bool> {
        let runner = self.get().map_err(|f| f.into_js(env))?;
        Ok(runner.bench_baseline(&name, baseline))
    }

    /// @internal Benchmarks only: the same `inspect` run by Rust in a task of its own on a
    /// runtime worker, `times` times (default 1); resolves with how long that took there, in
    /// microseconds (the baseline `bench/bench_calls.mjs` alternates with `inspect`, and
    /// `bench/count_calls.mjs` counts). Not for applications.
    #[napi(
        js_name = "_benchInspectOnWorker",
        ts_args_type = "capability: string, args: JsonObject, options?: CallOptions, times?: number",
        ts_return_type = "Promise<number>"
    )]
    pub fn bench_inspect_on_worker<'env>(
        &self,
        env: &'env Env,
        capability: String,
        args: Value,
        options: Option<CallOptions>,
        times: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let ctx = trusted(options.and_then(|o| o.context));
        self.call(env, move |r| async move {
            json(
                r.bench_inspect_on_worker(capability, args, ctx, times.unwrap_or(1))
                    .await?,
            )
        })
    }

    /// Release this handle. Calls made afterwards reject with `RUNNER_CLOSED`; calls already
    /// running finish. Executors never keep the process alive.
    #[napi]
    pub fn close(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.take();
        }
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.lock().map(|r| r.is_none()).unwrap_or(true)
    }
}

/// The core version this addon was built from.
#[napi]
pub fn version() -> String {
    synapsor_runner::VERSION.to_string()
}
