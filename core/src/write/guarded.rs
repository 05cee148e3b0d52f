//! The guarded write, one state machine for every engine:
//!
//! 1. **claim** the idempotency receipt in the source (a key already claimed ends here: its
//!    stored status says what an earlier attempt did);
//! 2. **lock** the row under primary key and tenant (none: `ROW_NOT_FOUND`; more than one:
//!    `MULTI_ROW_WRITE_BLOCKED`);
//! 3. **compare** the guard (version column or row hash) and re-check the reviewed transitions
//!    and bounds on the locked row (any miss: a conflict, row untouched);
//! 4. **write**: the single-row UPDATE that also advances the version column, or the in-process
//!    callback with the transaction in hand (then the version must have moved, by its hand or
//!    by ours);
//! 5. **finalize** the receipt in the same transaction, proving the transaction is still the one
//!    that claimed it;
//! 6. **commit** (or roll back a dry run). A commit whose result is unknown is never guessed:
//!    `RECONCILIATION_REQUIRED`, settled later through the receipt.
//!
//! Engines supply only statements and connection handling ([`WriteEngine`], implemented in
//! `source/postgres.rs`, `source/mysql.rs` and `source/sqlite.rs`); every decision is here.

use super::{GuardedUpdate, UpdateOutcome, VersionGuard, WriteStatus, WriteStep};
use crate::config::Engine;
use crate::error::{Error, Result};
use crate::values::Row;
use crate::values::kinds::{self, Advance, ColumnKind};
use crate::write::executor::{GuardedTx, TxRequest};
use serde_json::{Map, Value};
use std::future::Future;

/// What claiming the receipt found.
pub(crate) enum Claim {
    /// The receipt is ours; `proof` identifies the claiming transaction where the engine can
    /// name it (PostgreSQL's txid), for finalize to check.
    Claimed { proof: String },
    /// Another attempt holds a receipt for this key.
    Taken,
    /// The source has no receipt table yet (first write through it).
    NoReceiptTable,
}

/// A receipt another attempt left: status, result hash, intent hash.
pub(crate) type StoredReceipt = (Option<String>, Option<String>, Option<String>);

/// The dialect and connection pieces of one engine's guarded write. An engine value holds one
/// connection and at most one open transaction on it; every method does exactly one thing
/// against that transaction, and none decides what happens next.
pub(crate) trait WriteEngine: Send {
    /// Which engine, for the statements an in-process callback sends.
    const ENGINE: Engine;

    /// What `column` can hold (`None` when the engine does not know it).
    fn kind(&self, column: &str) -> Option<ColumnKind>;
    /// Open the write transaction (a no-op when the source opened it while preparing).
    fn begin(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Create the receipt table (outside any transaction), after a claim found none.
    fn create_receipts(&mut self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
    /// Insert the `in_progress` receipt for the plan's idempotency key, unless one exists.
    fn claim(&mut self, plan: &GuardedUpdate) -> impl Future<Output = Result<Claim>> + Send;
    /// The receipt an earlier attempt left for the key (locked for the rest of the transaction).
    fn stored_receipt(
        &mut self,
        plan: &GuardedUpdate,
    ) -> impl Future<Output = Result<Option<StoredReceipt>>> + Send;
    /// Lock and read the target rows (the lock columns) under primary key and tenant.
    fn lock_rows(&mut self, plan: &GuardedUpdate) -> impl Future<Output = Result<Vec<Row>>> + Send;
    /// How this write moves the guard column, knowing the locked row (`None`: a row-hash
    /// guard; `Err`: a guard the runner cannot advance).
    fn advance(
        &mut self,
        plan: &GuardedUpdate,
        _locked: &Row,
    ) -> std::result::Result<Option<Advance>, &'static str> {
        plan_advance(plan, plan.version_column().and_then(|c| self.kind(c)))
    }
    /// The guarded single-row UPDATE (`advance_only`: no patch, only the version moves).
    /// Returns the rows it matched.
    fn update(
        &mut self,
        plan: &GuardedUpdate,
        advance: Option<Advance>,
        advance_only: bool,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Run one statement an in-process callback sent.
    fn serve(&mut self, req: TxRequest) -> impl Future<Output = ()> + Send;
    /// Record the final status on the receipt, only if the open transaction is still the one
    /// that claimed it. Returns the rows it updated (1 when it is).
    fn finalize(
        &mut self,
        plan: &GuardedUpdate,
        outcome: &UpdateOutcome,
        proof: &str,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Roll the open transaction back (nothing when none is open).
    fn rollback(&mut self) -> impl Future<Output = ()> + Send;
    fn commit(&mut self) -> impl Future<Output = Result<()>> + Send;
}

/// Apply (or, with `dry_run`, rehearse and roll back) one guarded single-row change.
pub(crate) async fn run<E: WriteEngine>(
    engine: &mut E,
    plan: &GuardedUpdate,
    dry_run: bool,
    step: WriteStep<'_>,
) -> Result<UpdateOutcome> {
    if let Some(refused) = patch_problem(plan, |c| engine.kind(c)) {
        return Ok(refused);
    }
    let mut receipts_created = false;
    let proof = loop {
        engine.begin().await?;
        match engine.claim(plan).await {
            Ok(Claim::Claimed { proof }) => break proof,
            Ok(Claim::Taken) => {
                let stored = engine.stored_receipt(plan).await?;
                engine.commit().await?;
                let (status, hash, intent) = stored.unwrap_or_default();
                return Ok(outcome_from_existing_receipt(
                    &plan.job_id,
                    status.as_deref(),
                    hash,
                    intent,
                    &plan.intent_hash,
                ));
            }
            Ok(Claim::NoReceiptTable) if !receipts_created => {
                // First write through this source: create the receipt table, then start over.
                engine.rollback().await;
                if let Err(e) = engine.create_receipts().await {
                    return Ok(failure(plan, e));
                }
                receipts_created = true;
            }
            Ok(Claim::NoReceiptTable) => {
                engine.rollback().await;
                return Ok(UpdateOutcome::failed(
                    &plan.job_id,
                    "TRANSACTION_FAILED",
                    false,
                ));
            }
            Err(e) => {
                engine.rollback().await;
                return Ok(failure(plan, e));
            }
        }
    };
    match write(engine, plan, step).await {
        Ok(outcome) => finish(engine, plan, outcome, dry_run, &proof).await,
        Err(outcome) => {
            engine.rollback().await;
            Ok(outcome)
        }
    }
}

/// Steps 2 to 4 inside the claimed transaction: the outcome to finalize and commit, or (`Err`)
/// the outcome of a write that must roll back.
async fn write<E: WriteEngine>(
    engine: &mut E,
    plan: &GuardedUpdate,
    step: WriteStep<'_>,
) -> std::result::Result<UpdateOutcome, UpdateOutcome> {
    let fail = |e| failure(plan, e);
    let refuse = |code| UpdateOutcome::failed(&plan.job_id, code, false);
    let rows = engine.lock_rows(plan).await.map_err(fail)?;
    if rows.len() > 1 {
        return Err(refuse("MULTI_ROW_WRITE_BLOCKED"));
    }
    let Some(locked) = rows.first() else {
        return Ok(UpdateOutcome::new(
            WriteStatus::Conflict,
            Some("ROW_NOT_FOUND"),
            &plan.job_id,
            None,
        ));
    };
    if let Some(conflict) = check_guard(plan, locked) {
        return Ok(conflict);
    }
    let advance = engine.advance(plan, locked).map_err(refuse)?;
    let outcome = match step {
        WriteStep::Callback {
            executor,
            job,
            timeout,
        } => {
            let (handle, mut rx) = GuardedTx::channel(E::ENGINE);
            let fut = tokio::time::timeout(timeout, executor.execute(job, Some(handle)));
            tokio::pin!(fut);
            let result = loop {
                tokio::select! {
                    out = &mut fut => break out,
                    Some(req) = rx.recv() => engine.serve(req).await,
                }
            };
            drop(rx);
            let (commit, outcome) = callback_outcome(plan, result);
            if !commit {
                return Err(outcome);
            }
            // The callback wrote what it wrote; the version must have moved, by its hand or
            // by ours.
            if !moved(engine, plan).await? {
                let can_advance = matches!(
                    advance,
                    Some(Advance::Increment | Advance::Timestamp { .. })
                );
                let advanced = if can_advance {
                    engine.update(plan, advance, true).await.map_err(fail)? == 1
                } else {
                    false
                };
                if !advanced {
                    return Err(refuse("CONFLICT_GUARD_NOT_ADVANCED"));
                }
            }
            outcome
        }
        WriteStep::Update => {
            // MySQL is asked for matched rows, so writing identical values still counts 1.
            match engine.update(plan, advance, false).await.map_err(fail)? {
                1 => {}
                0 => return Err(refuse("VERSION_CONFLICT")),
                _ => return Err(refuse("MULTI_ROW_WRITE_BLOCKED")),
            }
            // A trigger (or the application) must have moved the version.
            if advance == Some(Advance::Application) && !moved(engine, plan).await? {
                return Err(refuse("CONFLICT_GUARD_NOT_ADVANCED"));
            }
            let expected = match &plan.guard {
                VersionGuard::Column { expected, .. } => expected.clone(),
                VersionGuard::RowHash { expected, .. } => Value::String(expected.clone()),
            };
            let mut o =
                UpdateOutcome::new(WriteStatus::Applied, None, &plan.job_id, Some(&expected));
            o.rows_affected = 1;
            o
        }
    };
    Ok(outcome)
}

/// Whether the guard column moved since the row was locked (read again in the transaction).
async fn moved<E: WriteEngine>(
    engine: &mut E,
    plan: &GuardedUpdate,
) -> std::result::Result<bool, UpdateOutcome> {
    let rows = engine.lock_rows(plan).await.map_err(|e| failure(plan, e))?;
    Ok(version_moved(plan, rows.first()))
}

/// Steps 5 and 6: finalize the receipt in the same transaction, then commit (or roll back a
/// dry run).
async fn finish<E: WriteEngine>(
    engine: &mut E,
    plan: &GuardedUpdate,
    outcome: UpdateOutcome,
    dry_run: bool,
    proof: &str,
) -> Result<UpdateOutcome> {
    match engine.finalize(plan, &outcome, proof).await {
        Ok(1) => {}
        Ok(_) => {
            // The claim made in this transaction is gone, or this is no longer the transaction
            // that made it (a callback ended it): what was written is unknown.
            engine.rollback().await;
            return Ok(transaction_lost(plan));
        }
        Err(e) => {
            engine.rollback().await;
            return Ok(failure(plan, e));
        }
    }
    if dry_run {
        engine.rollback().await;
        return Ok(outcome);
    }
    match engine.commit().await {
        Ok(()) => Ok(outcome),
        // The commit may or may not have happened: never guess, let a later apply reconcile
        // through the idempotency receipt.
        Err(_) => Ok(UpdateOutcome::failed(
            &plan.job_id,
            "RECONCILIATION_REQUIRED",
            true,
        )),
    }
}

/// A failed outcome for a statement error: transient (retryable) when the connection, a lock
/// wait or a timeout caused it.
fn failure(plan: &GuardedUpdate, e: Error) -> UpdateOutcome {
    match e {
        Error::SourceUnavailable { code, .. } => UpdateOutcome::failed(
            &plan.job_id,
            if code == "SOURCE_UNAVAILABLE" {
                "DATABASE_UNAVAILABLE"
            } else {
                code
            },
            true,
        ),
        _ => UpdateOutcome::failed(&plan.job_id, "TRANSACTION_FAILED", false),
    }
}

/// Map a stored source-side receipt status to the outcome of a repeated apply.
fn outcome_from_existing_receipt(
    job_id: &str,
    status: Option<&str>,
    hash: Option<String>,
    intent: Option<String>,
    want_intent: &str,
) -> UpdateOutcome {
    if let Some(i) = intent.as_deref()
        && i != want_intent
    {
        return UpdateOutcome::failed(job_id, "IDEMPOTENCY_IDENTITY_CONFLICT", false);
    }
    let mut o = match status {
        None => UpdateOutcome::failed(job_id, "IDEMPOTENCY_RECEIPT_UNAVAILABLE", true),
        // The change committed with this receipt. Reported as the application it was: if the
        // ledger already holds it, recording this is a no-op retry; if a crash or a failed ledger
        // write lost it, this recovers it.
        Some("applied" | "already_applied") => {
            let mut o = UpdateOutcome::new(WriteStatus::Applied, None, job_id, None);
            o.rows_affected = 1;
            o.recovered = true;
            o
        }
        Some("conflict") => UpdateOutcome::new(
            WriteStatus::Conflict,
            Some("IDEMPOTENT_CONFLICT"),
            job_id,
            None,
        ),
        Some("failed") => UpdateOutcome::failed(job_id, "IDEMPOTENT_FAILED", false),
        Some(_) => UpdateOutcome::failed(job_id, "IDEMPOTENCY_RECEIPT_IN_PROGRESS", true),
    };
    if let Some(h) = hash.filter(|h| h.starts_with("sha256:")) {
        o.result_hash = h;
    }
    o
}

/// The guarded transaction is no longer the one the core opened (an in-process callback ended
/// it) or its receipt claim vanished: statements may have committed outside it. Never retried
/// blindly; `reconcile` settles it from the source receipts.
fn transaction_lost(plan: &GuardedUpdate) -> UpdateOutcome {
    UpdateOutcome::failed(&plan.job_id, "RECONCILIATION_REQUIRED", false)
}

/// A patch value the target column would round, truncate or reject: refused before any write
/// (propose refuses it first; this catches a schema that changed since).
fn patch_problem(
    plan: &GuardedUpdate,
    kind: impl Fn(&str) -> Option<kinds::ColumnKind>,
) -> Option<UpdateOutcome> {
    plan.patch
        .iter()
        .any(|(c, v)| kind(c).and_then(|k| kinds::value_problem(k, v)).is_some())
        .then(|| UpdateOutcome::failed(&plan.job_id, "PATCH_VALUE_TYPE_INVALID", false))
}

/// The failed outcome of a guard the runner cannot advance.
pub(crate) const NOT_ADVANCEABLE: &str = "CONFLICT_GUARD_NOT_ADVANCEABLE";

/// How this write advances the guard column of `kind` (`None` for a row-hash guard), or
/// [`NOT_ADVANCEABLE`] for a guard the runner cannot advance.
pub(crate) fn plan_advance(
    plan: &GuardedUpdate,
    kind: Option<kinds::ColumnKind>,
) -> std::result::Result<Option<kinds::Advance>, &'static str> {
    if plan.version_column().is_none() {
        return Ok(None);
    }
    kinds::advance_rule(kind.unwrap_or(kinds::ColumnKind::Other), plan.advance)
        .map(Some)
        .map_err(|_| NOT_ADVANCEABLE)
}

/// Whether the guard column of the re-read row moved away from the approved version (a row
/// that is gone counts as moved: there is nothing left to guard).
fn version_moved(plan: &GuardedUpdate, row: Option<&Row>) -> bool {
    match (&plan.guard, row) {
        (VersionGuard::Column { column, expected }, Some(row)) => {
            let current = row.get(column).cloned().unwrap_or(Value::Null);
            !crate::values::version::versions_match(&current, expected)
        }
        _ => true,
    }
}

/// Compare the locked row against the guard, then re-check the reviewed transitions and bounds
/// against it. `Some(conflict outcome)` when any of them does not hold; the row stays untouched.
fn check_guard(plan: &GuardedUpdate, row: &Row) -> Option<UpdateOutcome> {
    check_version(plan, row).or_else(|| check_policy(plan, row))
}

fn check_policy(plan: &GuardedUpdate, row: &Row) -> Option<UpdateOutcome> {
    use crate::policy::{check_bounds_of, check_transitions};
    let conflict = |code| {
        Some(UpdateOutcome::new(
            WriteStatus::Conflict,
            Some(code),
            &plan.job_id,
            None,
        ))
    };
    let proposed = |col: &str| plan.patch.iter().find(|(c, _)| c == col).map(|(_, v)| v);
    if check_transitions(&plan.transitions, proposed, row).is_err() {
        return conflict("TRANSITION_NO_LONGER_ALLOWED");
    }
    if check_bounds_of(&plan.bounds, proposed).is_err() {
        return conflict("POLICY_BOUND_VIOLATED");
    }
    None
}

fn check_version(plan: &GuardedUpdate, row: &Row) -> Option<UpdateOutcome> {
    let conflict = |current: Option<&Value>| {
        Some(UpdateOutcome::new(
            WriteStatus::Conflict,
            Some("VERSION_CONFLICT"),
            &plan.job_id,
            current,
        ))
    };
    match &plan.guard {
        VersionGuard::Column { column, expected } => {
            let current = row.get(column).cloned().unwrap_or(Value::Null);
            if crate::values::version::versions_match(&current, expected) {
                None
            } else {
                conflict(Some(&current))
            }
        }
        VersionGuard::RowHash { expected, columns } => {
            let subset: Map<String, Value> = columns
                .iter()
                .map(|c| (c.clone(), row.get(c).cloned().unwrap_or(Value::Null)))
                .collect();
            // Hashed as the approver saw it: with credential-like text masked.
            let (seen, _) = crate::ledger::secrets::redact_secrets(&Value::Object(subset));
            if &crate::protocol::digest(&seen) == expected {
                None
            } else {
                conflict(None)
            }
        }
    }
}

/// What an in-process callback answered, as an outcome, and whether to commit it (only an
/// `applied` receipt commits; everything else rolls back).
fn callback_outcome(
    plan: &GuardedUpdate,
    result: std::result::Result<
        std::result::Result<Value, crate::write::executor::ExecutorFailure>,
        tokio::time::error::Elapsed,
    >,
) -> (bool, UpdateOutcome) {
    use crate::write::executor::ExecutorFailure;
    match result {
        Err(_) => (
            false,
            UpdateOutcome::failed(&plan.job_id, "HANDLER_TIMEOUT", true),
        ),
        Ok(Err(ExecutorFailure::Safe { code, retryable })) => {
            (false, UpdateOutcome::failed(&plan.job_id, &code, retryable))
        }
        Ok(Err(ExecutorFailure::Callback(e))) => {
            let mut o = UpdateOutcome::failed(&plan.job_id, "HANDLER_EXCEPTION", false);
            o.callback_error = Some(e);
            (false, o)
        }
        Ok(Ok(body)) => match crate::protocol::HandlerReceipt::parse(&body) {
            Err(_) => (
                false,
                UpdateOutcome::failed(&plan.job_id, "HANDLER_RECEIPT_INVALID", false),
            ),
            Ok(r) => {
                let status = match r.status.as_str() {
                    "applied" => WriteStatus::Applied,
                    "already_applied" => WriteStatus::AlreadyApplied,
                    "conflict" => WriteStatus::Conflict,
                    _ => WriteStatus::Failed,
                };
                let code = r.safe_error_code.clone().or_else(|| {
                    (status == WriteStatus::Failed).then(|| "HANDLER_FAILED".to_string())
                });
                let mut o = UpdateOutcome::new(
                    status,
                    code.as_deref(),
                    &plan.job_id,
                    r.previous_version.as_ref(),
                );
                o.rows_affected = if status == WriteStatus::Applied {
                    r.rows_affected.max(1)
                } else {
                    0
                };
                o.handler_body = Some(body);
                (status == WriteStatus::Applied, o)
            }
        },
    }
}
