//! Read and proposal capabilities: validated args → scoped read → evidence → (proposal).

pub use crate::policy::validate_args;

use crate::config::{Capability, PatchBinding, RunnerConfig};
use crate::context::ResolvedContext;
use crate::error::{Error, Result};
use crate::ledger::{EvidenceBundle, QueryAudit, now_iso};
use crate::policy::{check_bounds_of, check_transitions};
use crate::protocol::{
    self, ApprovalRef, ChangeSet, ColumnValue, EvidenceRef, Guards, Integrity, Principal, Scope,
    SourceRef, WritebackRef,
};
use crate::source::{ReadRequest, Row, Source};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The outcome of the scoped read shared by both kinds.
#[derive(Debug, Clone)]
pub struct ScopedRead {
    pub row: Row,
    pub object_id: String,
    pub evidence: EvidenceBundle,
    pub audit: QueryAudit,
    pub context: ResolvedContext,
}

/// Read exactly one row under primary key and tenant, and build its evidence and audit.
pub async fn scoped_read(
    cap: &Capability,
    source: &Source,
    args: &Map<String, Value>,
    ctx: &ResolvedContext,
) -> Result<ScopedRead> {
    let key = args
        .get(&cap.lookup.id_from_arg)
        .filter(|v| !v.is_null())
        .ok_or_else(|| {
            Error::argument_field(
                "LOOKUP_ARG_MISSING",
                cap.lookup.id_from_arg.as_str(),
                format!("{} is required.", cap.lookup.id_from_arg),
            )
        })?;
    let columns = cap.read_columns();
    let limit = cap.max_rows.unwrap_or(1).max(1);
    let tenant = cap
        .target
        .tenant_key
        .as_deref()
        .map(|t| (t, ctx.tenant_id.as_str()));
    let rows = source
        .read(&ReadRequest {
            schema: &cap.target.schema,
            table: &cap.target.table,
            columns: &columns,
            primary_key: &cap.target.primary_key,
            key_value: key,
            tenant,
            limit,
        })
        .await?;
    if rows.len() != 1 {
        return Err(Error::NotFoundInTenant);
    }
    // Credential-like text a customer typed into a visible column is masked, not a reason to
    // refuse the whole row: the model and the evidence see the marker.
    let row = match crate::ledger::secrets::redact_secrets(&Value::Object(
        rows.into_iter().next().expect("one row"),
    )) {
        (Value::Object(row), _) => row,
        _ => unreachable!("an object stays an object"),
    };
    let object_id = match row.get(&cap.target.primary_key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => match key {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    };
    let table = cap.qualified_table();
    let fingerprint = protocol::digest(&json!({
        "source": cap.source,
        "target": {"schema": cap.target.schema, "table": cap.target.table, "primary_key": cap.target.primary_key, "tenant_key": cap.target.tenant_key},
        "columns": columns,
        "tenant_bound": cap.target.tenant_key.is_some(),
        "tenant": ctx.tenant_id,
    }));
    let at = now_iso();
    let evidence_id = protocol::short_id(
        "ev_",
        &json!({"capability": cap.name, "source": cap.source, "tenant": ctx.tenant_id, "row": row, "at": at, "nonce": nonce()}),
    );
    let mut item = json!({
        "kind": "external_row",
        "source_id": cap.source,
        "table": table,
        "primary_key": {"column": cap.target.primary_key, "value": object_id},
        "visible_row": row,
    });
    if let Some(t) = &cap.target.tenant_key {
        item["tenant"] = json!({"column": t, "value": ctx.tenant_id});
    }
    let evidence = EvidenceBundle {
        evidence_bundle_id: evidence_id,
        tenant_id: ctx.tenant_id.clone(),
        principal: ctx.principal.clone(),
        capability: cap.name.clone(),
        source_id: cap.source.clone(),
        source_table: table.clone(),
        business_object: cap.target.table.clone(),
        object_id: object_id.clone(),
        query_fingerprint: fingerprint.clone(),
        payload: json!({
            "capability": cap.name,
            "source_id": cap.source,
            "target": table,
            "principal": ctx.principal,
            "tenant_id": ctx.tenant_id,
            "source_database_changed": false,
            "binding_provenance": ctx.provenance,
        }),
        items: vec![item],
    };
    let audit = QueryAudit {
        source_id: cap.source.clone(),
        query_fingerprint: fingerprint,
        table_name: table,
        row_count: 1,
        payload: json!({
            "capability": cap.name,
            "columns": cap.visible_columns,
            "tenant_bound": cap.target.tenant_key.is_some(),
            "statement_template": crate::sql::statement_template(&columns, &cap.target.schema, &cap.target.table, &cap.target.primary_key, cap.target.tenant_key.as_deref(), limit),
            "parameters_redacted": true,
        }),
        primary_key_value: object_id.clone(),
    };
    Ok(ScopedRead {
        row,
        object_id,
        evidence,
        audit,
        context: ctx.clone(),
    })
}

/// Per-process uniqueness for ids that must differ between identical calls.
pub(crate) fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// One column of a proposal diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffEntry {
    pub before: Value,
    pub proposed: Value,
}

/// Build the patch from bindings and check numeric bounds and transitions.
pub fn build_patch(
    cap: &Capability,
    args: &Map<String, Value>,
    before: &Row,
) -> Result<Map<String, Value>> {
    let mut patch = Map::new();
    for (col, binding) in &cap.patch {
        let v = match binding {
            PatchBinding::Fixed(v) => v.clone(),
            // An omitted optional arg is not part of the change: its column stays out of the
            // patch and the diff. NULL is written only for an explicit null (nullable args).
            PatchBinding::FromArg(a) => match args.get(a) {
                Some(v) => v.clone(),
                None => continue,
            },
        };
        patch.insert(col.clone(), v);
    }
    if patch.is_empty() {
        return Err(Error::policy(
            "PATCH_EMPTY",
            format!(
                "{} would change nothing: give at least one of its optional arguments.",
                cap.name
            ),
        ));
    }
    check_bounds(cap, &patch)?;
    check_transitions(&cap.transition_guards, |c| patch.get(c), before)?;
    Ok(patch)
}

/// Refuse a patch value its target column would round, truncate or reject, naming the argument
/// it came from (never echoing the value). `kinds` are the patch columns' kinds, in patch order.
pub fn check_patch_types(
    cap: &Capability,
    patch: &Map<String, Value>,
    kinds: &[crate::values::kinds::ColumnKind],
) -> Result<()> {
    for ((col, v), kind) in patch.iter().zip(kinds) {
        if let Some(problem) = crate::values::kinds::value_problem(*kind, v) {
            let field = cap
                .patch
                .iter()
                .find_map(|(c, b)| match b {
                    PatchBinding::FromArg(a) if c == col => Some(a.as_str()),
                    _ => None,
                })
                .unwrap_or(col);
            return Err(Error::argument_field(
                "ARGUMENT_TYPE_INVALID",
                field,
                format!("{field} {problem} (column {col})."),
            ));
        }
    }
    Ok(())
}

/// Numeric bounds of the reviewed config, checked at propose time and again at apply time.
pub fn check_bounds(cap: &Capability, patch: &Map<String, Value>) -> Result<()> {
    check_bounds_of(&cap.numeric_bounds, |c| patch.get(c))
}

/// The expected-version guard for a proposal.
pub fn expected_version(cap: &Capability, before: &Row) -> Result<ColumnValue> {
    let guard = cap.conflict_guard.clone().unwrap_or_default();
    if let Some(col) = &guard.column
        && let Some(v) = before.get(col)
    {
        return Ok(ColumnValue {
            column: col.clone(),
            value: v.clone(),
        });
    }
    if guard.weak_guard_ack == Some(true) {
        return Ok(ColumnValue {
            column: crate::protocol::ROW_HASH_GUARD.into(),
            value: Value::String(protocol::digest(&Value::Object(before.clone()))),
        });
    }
    Err(Error::policy(
        "CONFLICT_GUARD_MISSING",
        format!("{} has no usable conflict guard.", cap.name),
    ))
}

/// Build the change set for a proposal (the caller records it).
pub fn build_change_set(
    config: &RunnerConfig,
    cap: &Capability,
    read: &ScopedRead,
    patch: Map<String, Value>,
) -> Result<ChangeSet> {
    let ctx = &read.context;
    let before = read.row.clone();
    let mut after = before.clone();
    for (k, v) in &patch {
        after.insert(k.clone(), v.clone());
    }
    let engine = config
        .sources
        .get(&cap.source)
        .map(|s| s.engine)
        .ok_or_else(|| Error::Internal("capability source vanished".into()))?;
    let created_at = now_iso();
    let proposal_id = protocol::short_id(
        "wrp_",
        &json!({"action": cap.name, "tenant": ctx.tenant_id, "object": read.object_id, "before": before, "patch": patch, "created_at": created_at, "nonce": nonce()}),
    );
    let tenant = match &cap.target.tenant_key {
        Some(t) => ColumnValue {
            column: t.clone(),
            value: Value::String(ctx.tenant_id.clone()),
        },
        None => ColumnValue {
            column: crate::protocol::SINGLE_TENANT_DEV_GUARD.into(),
            value: Value::String("single_tenant_dev".into()),
        },
    };
    let mut writeback_extra = Map::new();
    writeback_extra.insert(
        "executor".into(),
        Value::String(cap.executor_name().to_string()),
    );
    let mut cs = ChangeSet {
        schema_version: protocol::CHANGE_SET_V1.into(),
        proposal_id,
        proposal_version: 1,
        action: cap.name.clone(),
        mode: if config.mode == crate::config::Mode::Shadow {
            "shadow".into()
        } else {
            "review_required".into()
        },
        principal: Principal {
            id: ctx.principal.clone(),
            source: ctx.principal_source().into(),
        },
        scope: Scope {
            tenant_id: ctx.tenant_id.clone(),
            business_object: cap.target.table.clone(),
            object_id: read.object_id.clone(),
        },
        source: SourceRef {
            kind: engine.source_kind().into(),
            source_id: cap.source.clone(),
            schema: cap.target.schema.clone(),
            table: cap.target.table.clone(),
            primary_key: ColumnValue {
                column: cap.target.primary_key.clone(),
                value: before
                    .get(&cap.target.primary_key)
                    .cloned()
                    .unwrap_or(Value::String(read.object_id.clone())),
            },
        },
        before,
        patch,
        after,
        guards: Guards {
            tenant,
            allowed_columns: cap.allowed_columns.clone(),
            expected_version: expected_version(cap, &read.row)?,
        },
        evidence: EvidenceRef {
            bundle_id: read.evidence.evidence_bundle_id.clone(),
            query_fingerprint: read.evidence.query_fingerprint.clone(),
            items: vec![],
            extra: Map::new(),
        },
        approval: ApprovalRef {
            status: "pending".into(),
            required_role: cap.required_role().map(String::from),
            extra: Map::new(),
        },
        writeback: WritebackRef {
            status: "not_applied".into(),
            mode: "trusted_worker_required".into(),
            extra: writeback_extra,
        },
        source_database_mutated: false,
        integrity: Integrity {
            proposal_hash: String::new(),
        },
        created_at,
    };
    cs.integrity.proposal_hash = cs.compute_hash();
    cs.validate()?;
    Ok(cs)
}

/// One entry per patch column: what the row had and what is proposed.
pub fn diff(cs: &ChangeSet) -> Map<String, Value> {
    cs.patch
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!({"before": cs.before.get(k).cloned().unwrap_or(Value::Null), "proposed": v}),
            )
        })
        .collect()
}
