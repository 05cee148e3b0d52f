//! `@synapsor/runner-native`: thin shims over the core. Each method clones the runner handle,
//! converts its arguments on the JS thread, runs one core call on the runtime, and resolves with
//! plain JSON-compatible objects (or rejects with a coded `Error`, see `errors.rs`).

mod errors;
mod executor;
mod json;

use errors::Failure;
use executor::{JsExecutor, Transaction};
use json::Json;
use napi::bindgen_prelude::{
    Env, FnArgs, Function, JsValue, PromiseRaw, ToNapiValue, Unknown, within_runtime_if_available,
};
use napi_derive::napi;
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use synapsor_runner::{
    ApplyOptions as CoreApplyOptions, Approver, LedgerLocation, OpenOptions as CoreOpenOptions,
    Runner as CoreRunner, ToolNaming, TrustedContext,
};
use synapsor_runner_mcp::McpEndpoint;

/// Start a core call and hand JavaScript a promise of its result. The call is polled first right
/// here on the JS thread (`synapsor_runner::embed::start`) and goes on on the runtime if it has
/// to wait; the promise resolves with the value, or rejects with a coded error built on the JS
/// thread.
pub(crate) fn spawn<'env, T, F>(env: &'env Env, fut: F) -> napi::Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<T> + Send>;
    let (deferred, promise) = env.create_deferred::<T, Resolver<T>>()?;
    let runtime = within_runtime_if_available(tokio::runtime::Handle::current);
    synapsor_runner::embed::start(&runtime, async move {
        let out = fut.await;
        deferred.resolve(Box::new(move |env: Env| out.map_err(|f| f.into_js(&env))));
    });
    Ok(PromiseRaw::new(env.raw(), promise.raw()))
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
#[derive(Default)]
pub struct OpenOptions {
    /// Ledger path (default: the config's `storage`, else `.synapsor/local.db`).
    pub ledger: Option<String>,
    /// A PostgreSQL ledger shared by every instance of the app, its URL in this variable
    /// (looked up in `env` first), instead of the config's `storage`.
    pub ledger_url_env: Option<String>,
    /// The PostgreSQL ledger's schema (default `synapsor`).
    pub ledger_schema: Option<String>,
    /// Values for the variables the config names (connection URLs: `read_url_env`,
    /// `write_url_env`; handlers: `url_env`, `token_env`, `signing_secret_env`,
    /// `command_env`), used before `process.env`: hand them over from your own secret store
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
        let fut = self.get().map(f);
        spawn(env, async move { fut?.await })
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
        let options = options.unwrap_or_default();
        let ledger_path = options.ledger.map(PathBuf::from);
        let ledger_location = options
            .ledger_url_env
            .map(|url_env| LedgerLocation::Postgres {
                url_env,
                schema: options.ledger_schema.unwrap_or_else(|| "synapsor".into()),
            });
        spawn(env, async move {
            let runner = CoreRunner::open(CoreOpenOptions {
                config_path: PathBuf::from(config_path),
                ledger_path,
                env: options.env.unwrap_or_default(),
                ledger_location,
            })
            .await?;
            Ok(Runner {
                inner: Mutex::new(Some(runner)),
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
            json(synapsor_runner::agent::call_tool(&r, &name, args, &ctx).await)
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

    /// One request to the review API for a reviewer your app authenticated; resolves to
    /// `{ status, body }` (secret-looking values redacted). `review.js` mounts it in Fastify.
    #[napi(ts_return_type = "Promise<ReviewAnswer>")]
    pub fn review_handle<'env>(
        &self,
        env: &'env Env,
        request: ReviewRequest,
        reviewer: ReviewerInfo,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        use synapsor_runner::review::{ReviewApi, ReviewRequest as Req, Reviewer};
        let request = Req {
            method: request.method,
            path: request.path,
            query: request.query.unwrap_or_default().into_iter().collect(),
            body: request.body.unwrap_or(Value::Null),
        };
        let reviewer = Reviewer {
            approver: synapsor_runner::Approver {
                role_assertion: "host".into(),
                ..approver(reviewer.id, reviewer.roles)
            },
            tenant: reviewer.tenant_id,
        };
        self.call(env, move |r| async move {
            let answer = ReviewApi::new(r).handle(&request, &reviewer).await;
            let (body, _) = synapsor_runner::ledger::redact_secrets(&answer.body);
            json(serde_json::json!({"status": answer.status, "body": body}))
        })
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
        runner.register_executor(&name, JsExecutor::new(executor)?);
        Ok(())
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

/// Benchmarks only (built with the `bench` feature, never published).
#[cfg(feature = "bench")]
#[napi]
impl Runner {
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
}

/// A request to the review API (see `reviewHandle`).
#[napi(object)]
pub struct ReviewRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path below where the review screens are mounted, e.g. `/api/proposals`.
    pub path: String,
    /// Query parameters.
    pub query: Option<std::collections::HashMap<String, String>>,
    /// The JSON body of a POST.
    #[napi(ts_type = "JsonObject")]
    pub body: Option<Value>,
}

/// Who is reviewing, as your app authenticated them.
#[napi(object)]
pub struct ReviewerInfo {
    pub id: String,
    /// Roles your app verified.
    pub roles: Option<Vec<String>>,
    /// Only this tenant's proposals are listed, shown and decided.
    pub tenant_id: Option<String>,
}

/// The review page's files and the headers and body limit its hosts apply.
#[napi(object)]
pub struct ReviewAssets {
    pub index_html: String,
    pub app_js: String,
    pub app_css: String,
    pub security_headers: Vec<Vec<String>>,
    pub max_body_bytes: u32,
}

/// The review page's files, for `review.js` (or your own host).
#[napi]
pub fn review_assets() -> ReviewAssets {
    use synapsor_runner::review::assets;
    ReviewAssets {
        index_html: assets::INDEX_HTML.into(),
        app_js: assets::APP_JS.into(),
        app_css: assets::APP_CSS.into(),
        security_headers: assets::SECURITY_HEADERS
            .iter()
            .map(|(k, v)| vec![k.to_string(), v.to_string()])
            .collect(),
        max_body_bytes: assets::MAX_BODY_BYTES as u32,
    }
}

/// The core version this addon was built from.
#[napi]
pub fn version() -> String {
    synapsor_runner::VERSION.to_string()
}
