//! In-process executors: a JavaScript function called with `(job, tx)` inside the core's guarded
//! transaction. The core locks the row, checks version and idempotency receipt, applies the
//! timeout and records the receipt; this file only calls JavaScript and hands back its answer.

use crate::errors::{Failure, JsCallbackError};
use crate::json::Json;
use crate::spawn;
use napi::bindgen_prelude::{
    Either, Env, FnArgs, Function, JsValue, Promise, PromiseRaw, Unknown, block_on,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use std::sync::Arc;
use synapsor_runner::apply::executor::{
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
    FnArgs<(Json, Transaction)>,
    napi::Status,
    false,
    true,
>;

pub struct JsExecutor {
    func: Arc<Callback>,
}

impl JsExecutor {
    pub fn new(
        func: Function<'_, FnArgs<(Json, Transaction)>, Unknown<'static>>,
    ) -> napi::Result<Self> {
        let tsfn = func
            .build_threadsafe_function::<Call>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(|ctx| {
                Ok(FnArgs::from((
                    ctx.value.job,
                    Transaction { tx: ctx.value.tx },
                )))
            })?;
        Ok(JsExecutor {
            func: Arc::new(tsfn),
        })
    }
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
        let call = Call {
            job: Json::value(&job.to_json()),
            tx,
        };
        let func = self.func.clone();
        Box::pin(async move {
            let (send, recv) = tokio::sync::oneshot::channel();
            // On the JS thread: a thrown error arrives as Err (the original value kept); a
            // returned promise is awaited below, a plain value is the receipt.
            let status = func.call_with_return_value(
                call,
                ThreadsafeFunctionCallMode::NonBlocking,
                move |ret: napi::Result<Unknown<'static>>, _env| {
                    let out = ret.and_then(|v| {
                        if v.is_promise()? {
                            Ok(Either::A(unsafe { v.cast::<Promise<Value>>() }?))
                        } else {
                            Ok(Either::B(unsafe { v.cast::<Value>() }?))
                        }
                    });
                    // The apply carries on from here (it sends its next statement) rather
                    // than waking a runtime worker to do it.
                    synapsor_runner::embed::host_scope(|| {
                        let _ = send.send(out);
                    });
                    Ok(())
                },
            );
            if status != napi::Status::Ok {
                return Err(ExecutorFailure::safe("HANDLER_UNAVAILABLE", true));
            }
            let returned = recv
                .await
                .map_err(|_| ExecutorFailure::safe("HANDLER_UNAVAILABLE", true))?
                .map_err(thrown)?;
            match returned {
                Either::A(promise) => promise.await.map_err(thrown),
                Either::B(value) => Ok(value),
            }
        })
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
            Ok(block_on(tx.run_json(statement, &sql, &p))?)
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
