//! App-owned executors: build the documented request, run the executor (HTTP, command, or an
//! in-process callback inside the guarded transaction), validate its receipt.

use super::{ApplyOptions, make_receipt};
use crate::ledger::now_iso;
use crate::protocol::{self, ChangeSet, ExecutionReceipt, HandlerReceipt, WritebackJob};
use crate::source::Source;
use crate::write::executor::{Executor, ExecutorFailure, ExecutorJob};
use crate::write::{UpdateOutcome, WriteStatus, WriteStep};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// The request every app-owned executor receives.
pub fn executor_job(
    cs: &ChangeSet,
    job: &WritebackJob,
    executor: &str,
    dry_run: bool,
) -> ExecutorJob {
    let mut request = protocol::handler_request(
        cs,
        &job.writeback_job_id,
        &job.idempotency_key,
        dry_run,
        &now_iso(),
    );
    request["executor"] = Value::String(executor.to_string());
    ExecutorJob {
        executor: executor.to_string(),
        proposal_id: job.proposal_id.clone(),
        writeback_job_id: job.writeback_job_id.clone(),
        idempotency_key: job.idempotency_key.clone(),
        dry_run,
        request: Arc::new(request),
    }
}

/// What running an app-owned executor produced.
pub struct AppOutcome {
    pub receipt: ExecutionReceipt,
    pub retryable: bool,
    /// The callback's own error, for the `apply` caller.
    pub callback_error: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// Run an executor that owns its storage (HTTP, command, or a callback without a write connection).
pub async fn run_detached(
    executor: &dyn Executor,
    ej: &ExecutorJob,
    job: &WritebackJob,
    timeout: Duration,
    opts: &ApplyOptions,
) -> AppOutcome {
    let result = tokio::time::timeout(timeout, executor.execute(ej, None)).await;
    let body = match result {
        Err(_) => Err(ExecutorFailure::safe("HANDLER_TIMEOUT", true)),
        Ok(r) => r,
    };
    match body {
        // An `applied` answer from an app-owned handler must say what it changed.
        Ok(body) if claims_applied_without_mutation(&body) => {
            failed(job, "HANDLER_RECEIPT_NO_MUTATION", false, opts, None)
        }
        Ok(body) => from_body(job, &body, opts),
        Err(ExecutorFailure::Safe { code, retryable }) => failed(job, &code, retryable, opts, None),
        Err(ExecutorFailure::Callback(e)) => failed(job, "HANDLER_EXCEPTION", false, opts, Some(e)),
    }
}

/// `status: applied` with neither `rows_affected >= 1` nor `source_database_mutated: true`.
fn claims_applied_without_mutation(body: &Value) -> bool {
    HandlerReceipt::parse(body)
        .is_ok_and(|r| r.status == "applied" && r.rows_affected == 0 && !r.source_database_mutated)
}

/// Run an in-process callback inside the source's guarded transaction.
pub async fn run_guarded(
    source: &Source,
    executor: &dyn Executor,
    ej: &ExecutorJob,
    job: &WritebackJob,
    plan: &crate::write::GuardedUpdate,
    timeout: Duration,
    opts: &ApplyOptions,
) -> crate::error::Result<AppOutcome> {
    let outcome = match source
        .guarded_update(
            plan,
            opts.dry_run,
            WriteStep::Callback {
                executor,
                job: ej,
                timeout,
            },
        )
        .await
    {
        Ok(o) => o,
        Err(crate::error::Error::SourceUnavailable { .. }) => {
            UpdateOutcome::failed(&job.writeback_job_id, "DATABASE_UNAVAILABLE", true)
        }
        Err(_) => UpdateOutcome::failed(&job.writeback_job_id, "TRANSACTION_FAILED", false),
    };
    if let Some(body) = &outcome.handler_body
        && outcome.status != WriteStatus::Failed
    {
        let mut out = from_body(job, body, opts);
        if outcome.status == WriteStatus::Applied && opts.dry_run {
            out.receipt.source_database_mutated = false;
            out.receipt.receipt_hash = out.receipt.compute_hash();
        }
        return Ok(out);
    }
    let mutated = outcome.status == WriteStatus::Applied && !opts.dry_run;
    let receipt = make_receipt(
        job,
        &opts.runner_id,
        outcome.status.as_str(),
        outcome.rows_affected,
        outcome.previous_version.clone(),
        mutated,
        outcome.code.clone(),
        super::recovery_note(&outcome),
    );
    Ok(AppOutcome {
        receipt,
        retryable: outcome.retryable,
        callback_error: outcome.callback_error,
    })
}

fn failed(
    job: &WritebackJob,
    code: &str,
    retryable: bool,
    opts: &ApplyOptions,
    e: Option<Arc<dyn std::error::Error + Send + Sync>>,
) -> AppOutcome {
    AppOutcome {
        receipt: make_receipt(
            job,
            &opts.runner_id,
            "failed",
            0,
            None,
            false,
            Some(code.into()),
            Map::new(),
        ),
        retryable,
        callback_error: e,
    }
}

/// Validate a handler's receipt body; only the four documented statuses pass.
fn from_body(job: &WritebackJob, body: &Value, opts: &ApplyOptions) -> AppOutcome {
    let Ok(r) = HandlerReceipt::parse(body) else {
        return failed(job, "HANDLER_RECEIPT_INVALID", false, opts, None);
    };
    let success = matches!(r.status.as_str(), "applied" | "already_applied");
    let code = r
        .safe_error_code
        .clone()
        .or_else(|| (r.status == "failed").then(|| "HANDLER_FAILED".to_string()));
    let mut extra = Map::new();
    if let Some(d) = &r.details {
        extra.insert("details".into(), redact(&Value::Object(d.clone())));
    }
    let mut receipt = make_receipt(
        job,
        &opts.runner_id,
        &r.status,
        r.rows_affected,
        r.previous_version.clone(),
        success && !opts.dry_run && r.source_database_mutated,
        code,
        extra,
    );
    if r.new_version.is_some() {
        receipt.new_version = r.new_version.clone();
        receipt.receipt_hash = receipt.compute_hash();
    }
    AppOutcome {
        receipt,
        retryable: false,
        callback_error: None,
    }
}

/// Mask credential-looking keys and values in handler details before they are stored or shown
/// (the ledger's own secret rules: URLs with credentials anywhere in a string, bearer values,
/// `password=` DSNs, secret-like and `authorization` keys).
fn redact(v: &Value) -> Value {
    crate::ledger::secrets::redact_secrets(v).0
}
