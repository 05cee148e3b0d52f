//! In-process executors: a JavaScript function called with `(job, tx)` inside the core's guarded
//! transaction. The core locks the row, checks version and idempotency receipt, applies the
//! timeout and records the receipt; this file only calls JavaScript and hands back its answer.

use crate::errors::{Failure, JsCallbackError};
use crate::json::{Json, from_js};
use crate::spawn;
use napi::bindgen_prelude::{
    CallbackContext, Env, FnArgs, Function, JsObjectValue, JsValue, Object, PromiseRaw,
    ToNapiValue, Unknown, within_runtime_if_available,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
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

impl JsExecutor {
    pub fn new(
        func: Function<'_, FnArgs<(Unknown<'static>, Transaction)>, Unknown<'static>>,
    ) -> napi::Result<Self> {
        let tsfn = func
            .build_threadsafe_function::<Call>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(move |ctx| {
                Ok(FnArgs::from((
                    job_object(&ctx.env, ctx.value.job)?,
                    Transaction { tx: ctx.value.tx },
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
            let status = func.call_with_return_value(
                call,
                ThreadsafeFunctionCallMode::NonBlocking,
                move |ret: napi::Result<Unknown<'static>>, env| {
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
}

type Answer = tokio::sync::oneshot::Sender<napi::Result<Value>>;

/// On the JS thread, with what the callback returned: hand back the receipt, or the thrown
/// error (the original value kept, so `apply` rejects with it). A returned promise is followed
/// until it settles.
fn settle(env: &Env, ret: napi::Result<Unknown<'static>>, send: Answer) {
    let value = match ret {
        Ok(v) => v,
        Err(e) => return drop(send.send(Err(e))),
    };
    match value.is_promise() {
        Ok(true) => {}
        Ok(false) => return drop(send.send(from_js(env, value))),
        Err(e) => return drop(send.send(Err(e))),
    }
    // Shared by the two reactions; whichever runs takes it.
    let send = Rc::new(RefCell::new(Some(send)));
    let give = |send: &Rc<RefCell<Option<Answer>>>, out: napi::Result<Value>| {
        if let Some(s) = send.borrow_mut().take() {
            let _ = s.send(out);
        }
    };
    let followed = (|| -> napi::Result<()> {
        let promise: PromiseRaw<'_, Unknown<'static>> = PromiseRaw::new(env.raw(), value.raw());
        let (on_value, on_error) = (send.clone(), send.clone());
        promise
            .then(move |ctx: CallbackContext<Unknown<'static>>| {
                give(&on_value, from_js(&ctx.env, ctx.value));
                Ok(())
            })?
            .catch(move |ctx: CallbackContext<Unknown<'static>>| {
                give(&on_error, Err(napi::Error::from(ctx.value)));
                Ok(())
            })?;
        Ok(())
    })();
    if let Err(e) = followed {
        give(&send, Err(e));
    }
}

/// The guarded transaction an executor runs in. Statements use the source's placeholder style
/// (`$1` on PostgreSQL, `?` on MySQL) with bound parameters; commit and rollback belong to the
/// runner.
#[napi]
pub struct Transaction {
    tx: Option<GuardedTx>,
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
        spawn(env, async move {
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
            Ok(tx.run_json_blocking(&runtime, statement, &sql, &p)?)
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
