//! In-process executors: a JavaScript function called with `(job, tx)` inside the core's guarded
//! transaction. The core locks the row, checks version and idempotency receipt, applies the
//! timeout and records the receipt; this file only calls JavaScript and hands back its answer.

use crate::errors::{Failure, JsCallbackError};
use crate::json::{Json, from_js};
use crate::spawn_with;
use napi::bindgen_prelude::{
    Env, FnArgs, Function, FunctionCallContext, FunctionRef, JsObjectValue, JsValue, Object,
    PromiseRaw, ToNapiValue, Unknown, within_runtime_if_available,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use synapsor_runner::write::executor::{
    BoxFuture, Executor, ExecutorFailure, ExecutorJob, GuardedTx, Statement, no_guarded_transaction,
};

/// What crosses to the JS thread for one call.
pub struct Call {
    job: Json,
    tx: Option<GuardedTx>,
}

/// `(job, tx) => receipt | Promise<receipt>`, weak so it never keeps the event loop alive.
type Callback = ThreadsafeFunction<
    Call,
    Unknown<'static>,
    FnArgs<(Unknown<'static>, Transaction)>,
    napi::Status,
    false,
    true,
>;

pub struct JsExecutor {
    func: Arc<Callback>,
}

/// The runner's way of waiting, for the statements of the transaction handed to callbacks.
type Budget = crate::busy::Wait;

impl JsExecutor {
    pub fn new(
        func: Function<'_, FnArgs<(Unknown<'static>, Transaction)>, Unknown<'static>>,
        busy_wait: Budget,
    ) -> napi::Result<Self> {
        let tsfn = func
            .build_threadsafe_function::<Call>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(move |ctx| {
                Ok(FnArgs::from((
                    job_object(&ctx.env, ctx.value.job)?,
                    Transaction {
                        tx: ctx.value.tx,
                        busy_wait,
                    },
                )))
            })?;
        Ok(JsExecutor {
            func: Arc::new(tsfn),
        })
    }
}

/// The job as JavaScript sees it. `change_set` is the same object as `request.change_set`
/// (parsed once, not twice).
fn job_object(env: &Env, job: Json) -> napi::Result<Unknown<'static>> {
    let raw = unsafe { Json::to_napi_value(env.raw(), job)? };
    let mut obj = Object::from_raw(env.raw(), raw);
    let change_set: Unknown = obj
        .get_named_property_unchecked::<Object>("request")?
        .get_named_property_unchecked("change_set")?;
    obj.set_named_property("change_set", change_set)?;
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), raw) })
}

fn thrown(e: napi::Error) -> ExecutorFailure {
    ExecutorFailure::Callback(Arc::new(JsCallbackError(e)))
}

impl Executor for JsExecutor {
    fn execute<'a>(
        &'a self,
        job: &'a ExecutorJob,
        tx: Option<GuardedTx>,
    ) -> BoxFuture<'a, Result<Value, ExecutorFailure>> {
        let func = self.func.clone();
        Box::pin(async move {
            // Serialised straight from the job (a Value and strings: it cannot fail).
            let job = Json::of(&job.without_change_set())
                .map_err(|_| ExecutorFailure::safe("HANDLER_UNAVAILABLE", false))?;
            let call = Call { job, tx };
            let (send, recv) = tokio::sync::oneshot::channel();
            let prewake = crate::call_prewake();
            let status = func.call_with_return_value(
                call,
                ThreadsafeFunctionCallMode::NonBlocking,
                move |ret: napi::Result<Unknown<'static>>, env| {
                    if let Some(p) = prewake {
                        p.settled();
                    }
                    settle(&env, ret, send);
                    Ok(())
                },
            );
            if status != napi::Status::Ok {
                return Err(ExecutorFailure::safe("HANDLER_UNAVAILABLE", true));
            }
            recv.await
                .map_err(|_| ExecutorFailure::safe("HANDLER_UNAVAILABLE", true))?
                .map_err(thrown)
        })
    }

    /// Wake the JS thread while the receipt is claimed and the row locked, so it is turning when
    /// the job arrives (the call's pre-wake, if it has one).
    fn warm_up(&self) {
        if let Some(p) = crate::call_prewake() {
            p.warm_up();
        }
    }
}

type Answer = tokio::sync::oneshot::Sender<napi::Result<Value>>;

/// Hand back an executor's answer inside a host scope, so the apply carries on from the JS thread
/// (it sends its next statement) instead of waking a runtime worker to do it.
fn answer(send: Answer, out: napi::Result<Value>) {
    synapsor_runner::embed::host_scope(|| {
        let _ = send.send(out);
    })
}

/// On the JS thread, with what the callback returned: hand back the receipt, or the thrown
/// error (the original value kept, so `apply` rejects with it). A promise is followed on the JS
/// thread (see [`follow`]) rather than awaited from the runtime.
fn settle(env: &Env, ret: napi::Result<Unknown<'static>>, send: Answer) {
    let value = match ret {
        Ok(v) => v,
        Err(e) => return answer(send, Err(e)),
    };
    match value.is_promise() {
        Ok(true) => {}
        Ok(false) => return answer(send, from_js(env, value)),
        Err(e) => return answer(send, Err(e)),
    }
    if let Err((send, e)) = follow(env, value, send) {
        answer(send, Err(e));
    }
}

/// `follow(promise, id, done)`: one reaction pair per promise, built by V8 from plain closures.
/// `PromiseRaw::then`/`catch` cost a native function, a wrap with a finalizer and a derived
/// promise each, per call, which made an async executor markedly slower than a plain function.
const FOLLOW_JS: &str = "(function (p, id, done) { \
    p.then(function (v) { done(id, true, v) }, function (e) { done(id, false, e) }) })";

/// `(promise, id, done)`.
type FollowArgs = FnArgs<(Unknown<'static>, u32, Unknown<'static>)>;
/// `(id, fulfilled, value)`.
type DoneArgs = FnArgs<(u32, bool, Unknown<'static>)>;
type FollowFn = FunctionRef<FollowArgs, Unknown<'static>>;
type DoneFn = FunctionRef<DoneArgs, ()>;

/// One JS thread's promises still followed, by id, and the two functions that follow them.
struct Followed {
    next: Cell<u32>,
    pending: RefCell<HashMap<u32, Answer>>,
    /// Made once per thread. Never dropped: a reference released at thread exit would outlive
    /// its environment.
    fns: RefCell<Option<ManuallyDrop<(FollowFn, DoneFn)>>>,
}

thread_local! {
    static FOLLOWED: Followed = Followed {
        next: Cell::new(0),
        pending: RefCell::new(HashMap::new()),
        fns: RefCell::new(None),
    };
}

/// Answer `send` when `promise` settles: with the receipt it resolves to, or the reason it
/// rejects with. Hands `send` back if the promise could not be followed.
fn follow(env: &Env, promise: Unknown<'static>, send: Answer) -> Result<(), (Answer, napi::Error)> {
    FOLLOWED.with(|f| {
        let id = f.next.get();
        f.next.set(id.wrapping_add(1));
        {
            let mut pending = f.pending.borrow_mut();
            // An apply that gave up (its timeout) closed its receiver: forget its promise.
            pending.retain(|_, s| !s.is_closed());
            pending.insert(id, send);
        }
        let started = follow_fns(env, f).and_then(|(follow, done)| {
            follow
                .call(FnArgs::from((promise, id, done.to_unknown())))
                .map(drop)
        });
        started.map_err(|e| {
            let send = f.pending.borrow_mut().remove(&id).expect("inserted above");
            (send, e)
        })
    })
}

type Fns<'env> = (
    Function<'env, FollowArgs, Unknown<'static>>,
    Function<'env, DoneArgs, ()>,
);

fn follow_fns<'env>(env: &'env Env, f: &Followed) -> napi::Result<Fns<'env>> {
    let mut fns = f.fns.borrow_mut();
    if fns.is_none() {
        let follow: Function<FollowArgs, Unknown<'static>> = env.run_script(FOLLOW_JS)?;
        let done: Function<DoneArgs, ()> =
            env.create_function_from_closure("synapsorExecutorSettled", settled)?;
        *fns = Some(ManuallyDrop::new((
            follow.create_ref()?,
            done.create_ref()?,
        )));
    }
    let (follow, done) = &**fns.as_ref().expect("set above");
    Ok((follow.borrow_back(env)?, done.borrow_back(env)?))
}

/// `done(id, fulfilled, value)`: the followed promise settled. Never throws (the reaction's own
/// promise would reject unhandled): a receipt that does not convert is the apply's error.
fn settled(ctx: FunctionCallContext<'_>) -> napi::Result<()> {
    let (Ok(id), Ok(fulfilled), Ok(value)) = (
        ctx.get::<u32>(0),
        ctx.get::<bool>(1),
        ctx.get::<Unknown<'static>>(2),
    ) else {
        return Ok(());
    };
    let Some(send) = FOLLOWED.with(|f| f.pending.borrow_mut().remove(&id)) else {
        return Ok(());
    };
    let out = if fulfilled {
        from_js(ctx.env, value)
    } else {
        Err(napi::Error::from(value))
    };
    answer(send, out);
    Ok(())
}

/// The guarded transaction an executor runs in. Statements use the source's placeholder style
/// (`$1` on PostgreSQL, `?` on MySQL) with bound parameters; commit and rollback belong to the
/// runner.
#[napi]
pub struct Transaction {
    tx: Option<GuardedTx>,
    busy_wait: Budget,
}

impl Transaction {
    fn guarded(&self) -> Result<GuardedTx, Failure> {
        self.tx
            .clone()
            .ok_or_else(|| no_guarded_transaction().into())
    }

    fn run<'env>(
        &self,
        env: &'env Env,
        statement: Statement,
        sql: String,
        params: Option<Vec<Value>>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        let tx = self.guarded();
        // A statement's answer is waited for as the runner's calls are, without a pre-wake: the
        // core has no local work after it to overlap the wake-up with.
        let wait = crate::busy::Wait {
            prewake: false,
            ..self.busy_wait
        };
        spawn_with(env, wait, async move {
            let p = params.unwrap_or_default();
            Json::of(&tx?.run_json(statement, &sql, &p).await?)
        })
    }

    fn run_sync(
        &self,
        env: &Env,
        statement: Statement,
        sql: String,
        params: Option<Vec<Value>>,
    ) -> napi::Result<Value> {
        let run = || -> Result<Value, Failure> {
            let (tx, p) = (self.guarded()?, params.unwrap_or_default());
            let runtime = within_runtime_if_available(tokio::runtime::Handle::current);
            Ok(tx.run_json_blocking(&runtime, statement, sql, p)?)
        };
        run().map_err(|f| f.into_js(env))
    }
}

#[napi]
impl Transaction {
    /// Run a statement; resolves to the number of affected rows.
    #[napi(
        ts_args_type = "sql: string, params?: JsonValue[]",
        ts_return_type = "Promise<number>"
    )]
    pub fn execute<'env>(
        &self,
        env: &'env Env,
        sql: String,
        params: Option<Vec<Value>>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        self.run(env, Statement::Execute, sql, params)
    }

    /// Run a query; resolves to every row as a plain object.
    #[napi(
        ts_args_type = "sql: string, params?: JsonValue[]",
        ts_return_type = "Promise<Row[]>"
    )]
    pub fn fetch_all<'env>(
        &self,
        env: &'env Env,
        sql: String,
        params: Option<Vec<Value>>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        self.run(env, Statement::FetchAll, sql, params)
    }

    /// Run a query; resolves to the first row, or `null`.
    #[napi(
        ts_args_type = "sql: string, params?: JsonValue[]",
        ts_return_type = "Promise<Row | null>"
    )]
    pub fn fetch_one<'env>(
        &self,
        env: &'env Env,
        sql: String,
        params: Option<Vec<Value>>,
    ) -> napi::Result<PromiseRaw<'env, Json>> {
        self.run(env, Statement::FetchOne, sql, params)
    }

    /// `execute` for synchronous executors: blocks the calling thread until the statement ends.
    #[napi(
        ts_args_type = "sql: string, params?: JsonValue[]",
        ts_return_type = "number"
    )]
    pub fn execute_sync(
        &self,
        env: &Env,
        sql: String,
        params: Option<Vec<Value>>,
    ) -> napi::Result<Value> {
        self.run_sync(env, Statement::Execute, sql, params)
    }

    /// `fetchAll` for synchronous executors.
    #[napi(
        ts_args_type = "sql: string, params?: JsonValue[]",
        ts_return_type = "Row[]"
    )]
    pub fn fetch_all_sync(
        &self,
        env: &Env,
        sql: String,
        params: Option<Vec<Value>>,
    ) -> napi::Result<Value> {
        self.run_sync(env, Statement::FetchAll, sql, params)
    }

    /// `fetchOne` for synchronous executors.
    #[napi(
        ts_args_type = "sql: string, params?: JsonValue[]",
        ts_return_type = "Row | null"
    )]
    pub fn fetch_one_sync(
        &self,
        env: &Env,
        sql: String,
        params: Option<Vec<Value>>,
    ) -> napi::Result<Value> {
        self.run_sync(env, Statement::FetchOne, sql, params)
    }
}
