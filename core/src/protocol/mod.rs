//! Protocol v1 objects: change-set, writeback-job, execution-receipt, runner-registration,
//! and the app-handler request/receipt. Parsing enforces the cross-field rules.

mod digest;

pub use digest::{canonical_json, digest, sha256_hex, short_id};

use crate::error::{Error, Result};
use crate::values::is_safe_identifier;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const CHANGE_SET_V1: &str = "synapsor.change-set.v1";
pub const WRITEBACK_JOB_V1: &str = "synapsor.writeback-job.v1";
pub const EXECUTION_RECEIPT_V1: &str = "synapsor.execution-receipt.v1";
pub const RUNNER_REGISTRATION_V1: &str = "synapsor.runner-registration.v1";
pub const HANDLER_WRITEBACK_V1: &str = "synapsor.handler-writeback.v1";

/// A column and its value (primary key, tenant guard, expected version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnValue {
    pub column: String,
    pub value: Value,
}

/// The expected-version "column" of a row-hash guard: the value is the digest of the columns
/// the approver saw, not a column of the table.
pub const ROW_HASH_GUARD: &str = "__row_hash";
/// The tenant-guard "column" of a single-tenant development source: no tenant column exists.
pub const SINGLE_TENANT_DEV_GUARD: &str = "__single_tenant_dev";

impl ColumnValue {
    /// Whether this expected version is a row-hash digest rather than a version column.
    pub fn is_row_hash(&self) -> bool {
        self.column == ROW_HASH_GUARD
    }
    /// Whether this tenant guard stands for a single-tenant development source.
    pub fn is_single_tenant_dev(&self) -> bool {
        self.column == SINGLE_TENANT_DEV_GUARD
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub id: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub tenant_id: String,
    pub business_object: String,
    pub object_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    pub kind: String,
    pub source_id: String,
    pub schema: String,
    pub table: String,
    pub primary_key: ColumnValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guards {
    pub tenant: ColumnValue,
    pub allowed_columns: Vec<String>,
    pub expected_version: ColumnValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub bundle_id: String,
    pub query_fingerprint: String,
    pub items: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRef {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_role: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WritebackRef {
    pub status: String,
    pub mode: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integrity {
    pub proposal_hash: String,
}

/// `synapsor.change-set.v1`: the exact, evidence-backed change a proposal asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSet {
    pub schema_version: String,
    pub proposal_id: String,
    pub proposal_version: u32,
    pub action: String,
    pub mode: String,
    pub principal: Principal,
    pub scope: Scope,
    pub source: SourceRef,
    pub before: Map<String, Value>,
    pub patch: Map<String, Value>,
    pub after: Map<String, Value>,
    pub guards: Guards,
    pub evidence: EvidenceRef,
    pub approval: ApprovalRef,
    pub writeback: WritebackRef,
    pub source_database_mutated: bool,
    pub integrity: Integrity,
    pub created_at: String,
}

fn scalar_map(m: &Map<String, Value>, what: &str) -> Result<()> {
    if m.is_empty() {
        return Err(Error::protocol(
            "PROTOCOL_INVALID",
            format!("{what} must not be empty"),
        ));
    }
    if m.values().any(|v| v.is_object() || v.is_array()) {
        return Err(Error::protocol(
            "PROTOCOL_INVALID",
            format!("{what} values must be scalars"),
        ));
    }
    Ok(())
}

fn safe_ident(s: &str, what: &str) -> Result<()> {
    if is_safe_identifier(s) {
        Ok(())
    } else {
        Err(Error::protocol(
            "UNSAFE_IDENTIFIER",
            format!("{what} is not a fixed safe identifier: {s}"),
        ))
    }
}

/// Shared rule: patch keys are safe identifiers inside the allowlist; pk and tenant are not.
fn check_patch_authority(
    patch: &Map<String, Value>,
    allowed: &[String],
    pk: &str,
    tenant: &str,
) -> Result<()> {
    for a in allowed {
        safe_ident(a, "allowed column")?;
    }
    for k in patch.keys() {
        safe_ident(k, "patch column")?;
        if !allowed.contains(k) {
            return Err(Error::protocol(
                "PATCH_COLUMN_NOT_ALLOWED",
                format!("patch column not allowed: {k}"),
            ));
        }
    }
    if allowed.iter().any(|a| a == pk) {
        return Err(Error::protocol(
            "PRIMARY_KEY_ALLOWLISTED",
            "primary key column must not be patch-allowlisted",
        ));
    }
    if allowed.iter().any(|a| a == tenant) {
        return Err(Error::protocol(
            "TENANT_GUARD_ALLOWLISTED",
            "tenant guard column must not be patch-allowlisted",
        ));
    }
    Ok(())
}

impl ChangeSet {
    /// Parse and check every rule of the v1 object.
    pub fn parse(value: &Value) -> Result<Self> {
        let cs = ChangeSet::deserialize(value)
            .map_err(|e| Error::protocol("PROTOCOL_INVALID", format!("change set: {e}")))?;
        cs.validate()?;
        Ok(cs)
    }

    pub fn validate(&self) -> Result<()> {
        if self.schema_version != CHANGE_SET_V1 {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "change set schema_version must be synapsor.change-set.v1",
            ));
        }
        for (v, what) in [
            (&self.proposal_id, "proposal_id"),
            (&self.action, "action"),
            (&self.scope.tenant_id, "scope.tenant_id"),
            (&self.scope.object_id, "scope.object_id"),
        ] {
            if v.is_empty() {
                return Err(Error::protocol(
                    "PROTOCOL_INVALID",
                    format!("change set {what} must not be empty"),
                ));
            }
        }
        if self.proposal_version < 1 {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "proposal_version must be at least 1",
            ));
        }
        safe_ident(&self.source.schema, "source schema")?;
        safe_ident(&self.source.table, "source table")?;
        safe_ident(&self.source.primary_key.column, "primary key column")?;
        scalar_map(&self.before, "before")?;
        scalar_map(&self.patch, "patch")?;
        scalar_map(&self.after, "after")?;
        check_patch_authority(
            &self.patch,
            &self.guards.allowed_columns,
            &self.source.primary_key.column,
            &self.guards.tenant.column,
        )?;
        if !self.integrity.proposal_hash.starts_with("sha256:") {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "integrity.proposal_hash must be a sha256 digest",
            ));
        }
        Ok(())
    }

    /// The digest over every field except `integrity`.
    pub fn compute_hash(&self) -> String {
        let mut v = serde_json::to_value(self).expect("change set serializes");
        v.as_object_mut().expect("object").remove("integrity");
        digest(&v)
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("change set serializes")
    }
}

/// Conflict guard of a writeback job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobConflictGuard {
    Column {
        column: String,
        expected_value: Value,
    },
    RowHash {
        expected_hash: String,
    },
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerScope {
    pub project_id: String,
    pub source_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobTarget {
    pub schema: String,
    pub table: String,
    pub primary_key: ColumnValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub lease_id: String,
    pub attempt: u32,
    pub expires_at: String,
}

/// `synapsor.writeback-job.v1`: the instruction a trusted runner executes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritebackJob {
    pub schema_version: String,
    pub writeback_job_id: String,
    pub proposal_id: String,
    pub proposal_version: u32,
    pub proposal_hash: String,
    pub runner_scope: RunnerScope,
    pub engine: String,
    pub operation: String,
    pub target: JobTarget,
    pub tenant_guard: ColumnValue,
    pub allowed_columns: Vec<String>,
    pub patch: Map<String, Value>,
    pub conflict_guard: JobConflictGuard,
    pub idempotency_key: String,
    pub lease: Lease,
}

impl WritebackJob {
    pub fn parse(value: &Value) -> Result<Self> {
        if value.get("proposal_hash").is_none() && value.get("approval_id").is_none() {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "writeback job requires proposal_hash (approval_id)",
            ));
        }
        let job = WritebackJob::deserialize(value)
            .map_err(|e| Error::protocol("PROTOCOL_INVALID", format!("writeback job: {e}")))?;
        job.validate()?;
        Ok(job)
    }

    pub fn validate(&self) -> Result<()> {
        if self.schema_version != WRITEBACK_JOB_V1 {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "writeback job schema_version must be synapsor.writeback-job.v1",
            ));
        }
        if self.operation != "single_row_update" {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "writeback job operation must be single_row_update",
            ));
        }
        if !self.proposal_hash.starts_with("sha256:") {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "writeback job proposal_hash (approval_id) must be a sha256 digest",
            ));
        }
        safe_ident(&self.target.schema, "target schema")?;
        safe_ident(&self.target.table, "target table")?;
        safe_ident(&self.target.primary_key.column, "primary key column")?;
        safe_ident(&self.tenant_guard.column, "tenant guard column")?;
        if let JobConflictGuard::Column { column, .. } = &self.conflict_guard {
            safe_ident(column, "conflict guard column")?;
        }
        scalar_map(&self.patch, "patch")?;
        check_patch_authority(
            &self.patch,
            &self.allowed_columns,
            &self.target.primary_key.column,
            &self.tenant_guard.column,
        )
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("job serializes")
    }
}

/// `synapsor.execution-receipt.v1`: what happened when a job ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionReceipt {
    pub schema_version: String,
    pub writeback_job_id: String,
    pub proposal_id: String,
    pub runner_id: String,
    pub status: String,
    pub rows_affected: u64,
    pub idempotency_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_version: Option<Value>,
    pub source_database_mutated: bool,
    pub executed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_error_code: Option<String>,
    pub receipt_hash: String,
    /// Extra fields (for example handler `details`), kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ExecutionReceipt {
    pub fn parse(value: &Value) -> Result<Self> {
        let r = ExecutionReceipt::deserialize(value)
            .map_err(|e| Error::protocol("PROTOCOL_INVALID", format!("execution receipt: {e}")))?;
        if r.schema_version != EXECUTION_RECEIPT_V1 {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "receipt schema_version must be synapsor.execution-receipt.v1",
            ));
        }
        if ![
            "applied",
            "already_applied",
            "conflict",
            "failed",
            "canceled",
        ]
        .contains(&r.status.as_str())
        {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                format!("unknown receipt status {}", r.status),
            ));
        }
        if !r.receipt_hash.starts_with("sha256:") {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "receipt_hash must be a sha256 digest",
            ));
        }
        Ok(r)
    }

    /// Digest over the receipt without `receipt_hash`.
    pub fn compute_hash(&self) -> String {
        let mut v = serde_json::to_value(self).expect("receipt serializes");
        v.as_object_mut().expect("object").remove("receipt_hash");
        digest(&v)
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("receipt serializes")
    }
}

/// `synapsor.runner-registration.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerRegistration {
    pub schema_version: String,
    pub runner_id: String,
    pub runner_version: String,
    pub engines: Vec<String>,
    pub capabilities: Vec<String>,
    pub scope: RegistrationScope,
    pub registered_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationScope {
    pub project_id: String,
    pub source_ids: Vec<String>,
}

impl RunnerRegistration {
    pub fn parse(value: &Value) -> Result<Self> {
        let r = RunnerRegistration::deserialize(value).map_err(|e| {
            Error::protocol("PROTOCOL_INVALID", format!("runner registration: {e}"))
        })?;
        if r.schema_version != RUNNER_REGISTRATION_V1
            || r.engines.is_empty()
            || r.capabilities.is_empty()
            || r.scope.source_ids.is_empty()
        {
            return Err(Error::protocol(
                "PROTOCOL_INVALID",
                "runner registration is incomplete",
            ));
        }
        Ok(r)
    }
}

/// What an app-owned handler returns (`synapsor.app-handler-receipt.v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerReceipt {
    pub status: String,
    pub rows_affected: u64,
    pub source_database_mutated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_version: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
}

impl HandlerReceipt {
    pub fn parse(value: &Value) -> Result<Self> {
        let r = HandlerReceipt::deserialize(value).map_err(|e| {
            Error::protocol("HANDLER_RECEIPT_INVALID", format!("handler receipt: {e}"))
        })?;
        if !["applied", "already_applied", "conflict", "failed"].contains(&r.status.as_str()) {
            return Err(Error::protocol(
                "HANDLER_RECEIPT_INVALID",
                format!("handler receipt status {} is not allowed", r.status),
            ));
        }
        Ok(r)
    }
}

/// The documented app-handler request: a `change_set` with scope, principal, patch, guards.
pub fn handler_request(
    cs: &ChangeSet,
    job_id: &str,
    idempotency_key: &str,
    dry_run: bool,
    issued_at: &str,
) -> Value {
    serde_json::json!({
        "protocol_version": "1.0",
        "schema_version": HANDLER_WRITEBACK_V1,
        "proposal_id": cs.proposal_id,
        "proposal_version": cs.proposal_version,
        "proposal_hash": cs.integrity.proposal_hash,
        "writeback_job_id": job_id,
        "idempotency_key": idempotency_key,
        "issued_at": issued_at,
        "dry_run": dry_run,
        "change_set": {
            "action": cs.action,
            "scope": {"tenant_id": cs.scope.tenant_id, "object_id": cs.scope.object_id},
            "principal": {"id": cs.principal.id, "source": cs.principal.source},
            "target": {"schema": cs.source.schema, "table": cs.source.table, "primary_key": cs.source.primary_key},
            "before": cs.before,
            "patch": cs.patch,
            "after": cs.after,
            "guards": cs.guards,
            "evidence": {"bundle_id": cs.evidence.bundle_id, "query_fingerprint": cs.evidence.query_fingerprint},
        }
    })
}
