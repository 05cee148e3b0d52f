//! In-process executors: a JavaScript function called with `(job, tx)` inside the core's guarded
//! transaction. The core locks the row, checks version and idempotency receipt, applies the
//! timeout and records the receipt; this file only calls JavaScript and hands back its answer.

use crate::errors::{Failure, JsCallbackError};
use crate::spawn;
use napi::bindgen_prelude::{Either, Env, FnArgs, Function, JsValue, Promise, PromiseRaw, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use synapsor_runner::apply::executor::{
    BoxFuture, Executor, ExecutorFailure, ExecutorJob, GuardedTx,
};
use synapsor_runner::source::Row;

/// What crosses to the JS thread for one call.
pub struct Call {
    job: Value,
    tx: Option<GuardedTx>,
}

/// `(job, tx) => receipt | Promise<receipt>`, weak so it never keeps the event loop alive.
type Callback = ThreadsafeFunction<
    Call,
    Unknown<'static>,
    FnArgs<(Value, Transaction)>,
    napi::Status,
    false,
    true,
>;

pub struct JsExecutor {
    func: Arc<Callback>,
}

impl JsExecutor {
    pub fn new(
        func: Function<'_, FnArgs<(Value, Transaction)>, Unknown<'static>>,
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
            job: job.to_json(),
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
                    let _ = send.send(out);
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

fn no_tx() -> Failure {
    Failure::Binding {
        family: synapsor_runner::ErrorFamily::Executor,
        code: "NO_GUARDED_TRANSACTION",
        message: "this executor has no guarded transaction (the source has no writer connection)"
            .into(),
    }
}

fn rows(rows: Vec<Row>) -> Value {
    Value::Array(rows.into_iter().map(Value::Object).collect())
}

fn row(row: Option<Row>) -> Value {
    row.map(Value::Object).unwrap_or(Value::Null)
}

/// The guarded transaction an executor runs in. Statements use the source's placeholder style
/// (`$1` on PostgreSQL, `?` on MySQL) with bound parameters; commit and rollback belong to the
/// runner.
#[napi]
pub struct Transaction {
    tx: Option<GuardedTx>,
}

impl Transaction {
    fn run<'env, F, Fut>(&self, env: &'env Env, f: F) -> napi::Result<PromiseRaw<'env, Value>>
    where
        F: FnOnce(GuardedTx) -> Fut,
        Fut: Future<Output = synapsor_runner::Result<Value>> + Send + 'static,
    {
        let fut = self.tx.clone().map(f);
        spawn(env, async move {
            match fut {
                Some(fut) => Ok(fut.await?),
                None => Err(no_tx()),
            }
        })
    }

    fn run_sync<F, Fut>(&self, f: F) -> Result<Value, Failure>
    where
        F: FnOnce(GuardedTx) -> Fut,
        Fut: Future<Output = synapsor_runner::Result<Value>>,
    {
        let tx = self.tx.clone().ok_or_else(no_tx)?;
        Ok(napi::bindgen_prelude::block_on(f(tx))?)
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
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let p = params.unwrap_or_default();
        self.run(env, move |tx| async move {
            Ok(Value::from(tx.execute(&sql, &p).await?))
        })
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
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let p = params.unwrap_or_default();
        self.run(env, move |tx| async move {
            Ok(rows(tx.fetch_all(&sql, &p).await?))
        })
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
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let p = params.unwrap_or_default();
        self.run(env, move |tx| async move {
            Ok(row(tx.fetch_one(&sql, &p).await?))
        })
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
        let p = params.unwrap_or_default();
        self.run_sync(move |tx| async move { Ok(Value::from(tx.execute(&sql, &p).await?)) })
            .map_err(|f| f.into_js(env))
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
        let p = params.unwrap_or_default();
        self.run_sync(move |tx| async move { Ok(rows(tx.fetch_all(&sql, &p).await?)) })
            .map_err(|f| f.into_js(env))
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
        let p = params.unwrap_or_default();
        self.run_sync(move |tx| async move { Ok(row(tx.fetch_one(&sql, &p).await?)) })
            .map_err(|f| f.into_js(env))
    }
}
