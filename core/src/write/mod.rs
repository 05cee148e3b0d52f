//! Writing back one approved change: the plan the apply builds ([`GuardedUpdate`]), what runs
//! inside the transaction ([`WriteStep`]), and what came of it ([`UpdateOutcome`]).
//!
//! The transaction itself, the same on every engine, is in `guarded.rs`.

pub mod executor;
pub(crate) mod guarded;

use serde_json::Value;

/// Which conflict guard a guarded update enforces.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionGuard {
    /// The column's current value must equal `expected` at microsecond precision.
    Column { column: String, expected: Value },
    /// The digest of the selected columns must equal `expected` (explicitly acknowledged weak guard).
    RowHash {
        expected: String,
        columns: Vec<String>,
    },
}

/// Everything a source needs to apply one approved single-row change.
#[derive(Debug, Clone)]
pub struct GuardedUpdate {
    pub job_id: String,
    pub proposal_id: String,
    pub idempotency_key: String,
    pub intent_hash: String,
    pub schema: String,
    pub table: String,
    pub primary_key: String,
    pub key_value: Value,
    pub tenant: Option<(String, String)>,
    pub patch: Vec<(String, Value)>,
    pub guard: VersionGuard,
    /// How the write moves the guard column (column guards only).
    pub advance: crate::config::GuardAdvance,
    /// The reviewed transition guards of the patched columns, re-checked on the locked row.
    pub transitions: Vec<(String, crate::config::TransitionGuard)>,
    /// The reviewed numeric bounds of the patched columns, re-checked inside the transaction.
    pub bounds: Vec<(String, crate::config::NumericBound)>,
    /// Columns to lock and read back (includes the guard column and transition sources).
    pub lock_columns: Vec<String>,
}

impl GuardedUpdate {
    /// The version column compared in the UPDATE predicate, for column guards.
    pub fn version_column(&self) -> Option<&str> {
        match &self.guard {
            VersionGuard::Column { column, .. } => Some(column),
            VersionGuard::RowHash { .. } => None,
        }
    }
    /// The tenant the row must belong to (under a tenant guard).
    pub fn tenant_value(&self) -> Option<&str> {
        self.tenant.as_ref().map(|t| t.1.as_str())
    }
    pub fn tenant_column(&self) -> Option<&str> {
        self.tenant.as_ref().map(|t| t.0.as_str())
    }
    /// What an UPDATE writes: the whole patch, or nothing when only the version moves.
    pub(crate) fn written(&self, advance_only: bool) -> &[(String, Value)] {
        if advance_only { &[] } else { &self.patch }
    }
    pub fn patch_columns(&self) -> Vec<String> {
        self.patch.iter().map(|(c, _)| c.clone()).collect()
    }
}

/// Final status of a writeback attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    Applied,
    AlreadyApplied,
    Conflict,
    Failed,
}

impl WriteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteStatus::Applied => "applied",
            WriteStatus::AlreadyApplied => "already_applied",
            WriteStatus::Conflict => "conflict",
            WriteStatus::Failed => "failed",
        }
    }
}

/// What runs once the row is locked and its version checked.
pub enum WriteStep<'a> {
    /// The guarded single-row UPDATE of the approved patch (`sql_update`).
    Update,
    /// An in-process executor, given the guarded transaction (`in_process`).
    Callback {
        executor: &'a dyn crate::write::executor::Executor,
        job: &'a crate::write::executor::ExecutorJob,
        timeout: std::time::Duration,
    },
}

/// What the source transaction did.
#[derive(Debug, Clone)]
pub struct UpdateOutcome {
    pub status: WriteStatus,
    pub code: Option<String>,
    pub rows_affected: u64,
    pub previous_version: Option<Value>,
    pub result_hash: String,
    /// A transient failure: the proposal stays approved and a later apply may succeed.
    pub retryable: bool,
    /// The receipt body an in-process callback returned.
    pub handler_body: Option<Value>,
    /// The callback's own error, handed back to the `apply` caller unchanged.
    pub callback_error: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    /// Read back from an earlier attempt's source receipt rather than done now.
    pub recovered: bool,
}

impl UpdateOutcome {
    pub(crate) fn new(
        status: WriteStatus,
        code: Option<&str>,
        job_id: &str,
        version: Option<&Value>,
    ) -> Self {
        let tag = code.unwrap_or(status.as_str());
        let mut obj = serde_json::json!({"job_id": job_id, "status": tag});
        if let Some(v) = version {
            obj["version"] = v.clone();
        }
        UpdateOutcome {
            status,
            code: code.map(String::from),
            rows_affected: 0,
            previous_version: version.cloned(),
            result_hash: crate::protocol::digest(&obj),
            retryable: false,
            handler_body: None,
            callback_error: None,
            recovered: false,
        }
    }
    pub(crate) fn failed(job_id: &str, code: &str, retryable: bool) -> Self {
        let mut o = Self::new(WriteStatus::Failed, Some(code), job_id, None);
        o.retryable = retryable;
        o
    }
}
