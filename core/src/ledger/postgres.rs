//! The PostgreSQL ledger: the same records and rules as the SQLite ledger, in a schema any
//! number of runner instances share. What the SQLite ledger gets from one writer at a time, this
//! one gets from the database: a row lock on the proposal for every decision about it, a partial
//! unique index for "one active proposal per object", a trigger for append-only events, and an
//! advisory lock around migrations.

use super::pg_schema::MIGRATIONS;
use super::secrets::assert_no_secret_material;
use super::{
    Approver, CheckInput, Created, EventFilter, EvidenceBundle, ListFilter, ProposalRow,
    QueryAudit, ReceiptFilter, StoredProposal, check_proposal, now_iso,
};
use crate::error::{Error, Result, cause};
use crate::policy::ProposalState;
use crate::protocol::{ChangeSet, ExecutionReceipt, WritebackJob};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Row};
use std::time::Duration;

/// A ledger error from the database, without anything of the connection string.
fn db(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) => Error::LedgerStorage(
            format!(
                "PostgreSQL ledger: {} ({})",
                d.message(),
                d.code().unwrap_or_default()
            ),
            cause(e),
        ),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            Error::LedgerStorage("PostgreSQL ledger unreachable; retry later".into(), None)
        }
        _ => Error::LedgerStorage(format!("PostgreSQL ledger: {e}"), cause(e)),
    }
}

/// Whether the database refused a second active proposal for one object.
fn is_second_active(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("23505")
            && d.constraint() == Some("proposals_one_active_per_object")
    })
}

/// A message with anything URL-like in it replaced (driver messages may quote the address).
fn redact_url(message: &str) -> String {
    message
        .split_whitespace()
        .map(|w| if w.contains("://") { "<url>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

/// Rows that are each one JSON document (the queries build them with `json_build_object`, in
/// the same shape the SQLite ledger builds them in).
fn json_rows(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<Value>> {
    rows.iter()
        .map(|r| {
            r.try_get::<String, _>(0)
                .map(|s| parse_json(&s))
                .map_err(db)
        })
        .collect()
}

/// Is a schema name one we accept: lower-case letters, digits and `_`, not starting with a
/// digit, at most 63 bytes (so it needs no quoting anywhere).
pub(crate) fn valid_schema_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// The PostgreSQL ledger.
pub(crate) struct PgLedger {
    /// Proposals, decisions, jobs, receipts, events and every read: committed durably.
    pool: PgPool,
    /// The evidence and query audit of plain reads: `synchronous_commit = off`, so recording a
    /// read costs one round trip and no wait for the server's disk.
    reads: PgPool,
    schema: String,
}

const PROPOSAL_COLUMNS: &str = "SELECT proposal_id, proposal_version, proposal_hash, action, state, tenant_id, principal, business_object, object_id, source_kind, source_id, source_schema, source_table, source_database_mutated, change_set_json::text, created_at, updated_at FROM proposals WHERE proposal_id = $1";

fn proposal_row(r: &sqlx::postgres::PgRow) -> std::result::Result<ProposalRow, sqlx::Error> {
    Ok(ProposalRow {
        proposal_id: r.try_get(0)?,
        proposal_version: r.try_get::<i32, _>(1)? as u32,
        proposal_hash: r.try_get(2)?,
        action: r.try_get(3)?,
        state: r.try_get(4)?,
        tenant_id: r.try_get(5)?,
        principal: r.try_get(6)?,
        business_object: r.try_get(7)?,
        object_id: r.try_get(8)?,
        source_kind: r.try_get(9)?,
        source_id: r.try_get(10)?,
        source_schema: r.try_get(11)?,
        source_table: r.try_get(12)?,
        source_database_mutated: r.try_get(13)?,
        change_set_json: r.try_get(14)?,
        created_at: r.try_get(15)?,
        updated_at: r.try_get(16)?,
    })
}

/// A proposal, optionally locked for the rest of the transaction (every decision about a
/// proposal locks it first, so two instances deciding at once are serialized on the row).
async fn get_proposal(
    c: &mut PgConnection,
    id: &str,
    lock: bool,
) -> Result<Option<StoredProposal>> {
    const LOCKED: &str = "SELECT proposal_id, proposal_version, proposal_hash, action, state, tenant_id, principal, business_object, object_id, source_kind, source_id, source_schema, source_table, source_database_mutated, change_set_json::text, created_at, updated_at FROM proposals WHERE proposal_id = $1 FOR UPDATE";
    let sql = if lock { LOCKED } else { PROPOSAL_COLUMNS };
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
    row.map(|r| proposal_row(&r).map_err(db)?.into_stored())
        .transpose()
}

async fn must_get(c: &mut PgConnection, id: &str) -> Result<StoredProposal> {
    get_proposal(c, id, true)
        .await?
        .ok_or_else(|| Error::ledger("PROPOSAL_NOT_FOUND", format!("proposal not found: {id}")))
}

async fn event(
    c: &mut PgConnection,
    proposal_id: &str,
    kind: &str,
    actor: &str,
    payload: &Value,
) -> Result<()> {
    sqlx::query("INSERT INTO proposal_events (proposal_id, kind, actor, payload_json, created_at) VALUES ($1,$2,$3,$4::json,$5)")
        .bind(proposal_id)
        .bind(kind)
        .bind(actor)
        .bind(payload.to_string())
        .bind(now_iso())
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(())
}

/// The evidence bundle, its items and the query audit of one read, in one statement (one round
/// trip; the foreign keys are checked at its end).
const RECORD_READ: &str = "WITH b AS (\
  INSERT INTO evidence_bundles (evidence_bundle_id, proposal_id, tenant_id, principal, capability, source_id, source_table, business_object, object_id, query_fingerprint, payload_json, created_at) \
  VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::json,$12) \
  ON CONFLICT (evidence_bundle_id) DO UPDATE SET proposal_id = excluded.proposal_id, tenant_id = excluded.tenant_id, principal = excluded.principal, capability = excluded.capability, source_id = excluded.source_id, source_table = excluded.source_table, business_object = excluded.business_object, object_id = excluded.object_id, query_fingerprint = excluded.query_fingerprint, payload_json = excluded.payload_json, created_at = excluded.created_at \
  RETURNING evidence_bundle_id), \
i AS (INSERT INTO evidence_items (evidence_bundle_id, item_json, created_at) \
  SELECT $1, e.value, $12 FROM json_array_elements($13::json) WITH ORDINALITY AS e(value, n) ORDER BY e.n) \
INSERT INTO query_audit (proposal_id, evidence_bundle_id, source_id, query_fingerprint, table_name, row_count, payload_json, tenant_id, principal, capability, business_object, object_id, primary_key_value, created_at) \
VALUES ($2,$1,$14,$15,$16,$17,$18::json,$3,$4,$5,$8,$9,$19,$12)";

async fn record_read_on(
    c: &mut PgConnection,
    b: &EvidenceBundle,
    a: &QueryAudit,
    proposal_id: Option<&str>,
) -> Result<()> {
    sqlx::query(RECORD_READ)
        .bind(&b.evidence_bundle_id)
        .bind(proposal_id)
        .bind(&b.tenant_id)
        .bind(&b.principal)
        .bind(&b.capability)
        .bind(&b.source_id)
        .bind(&b.source_table)
        .bind(&b.business_object)
        .bind(&b.object_id)
        .bind(&b.query_fingerprint)
        .bind(b.payload.to_string())
        .bind(now_iso())
        .bind(Value::Array(b.items.clone()).to_string())
        .bind(&a.source_id)
        .bind(&a.query_fingerprint)
        .bind(&a.table_name)
        .bind(a.row_count as i64)
        .bind(a.payload.to_string())
        .bind(&a.primary_key_value)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(())
}

async fn decide(
    c: &mut PgConnection,
    p: &StoredProposal,
    approver: &Approver,
    status: &str,
    reason: Option<&str>,
) -> Result<()> {
    let now = now_iso();
    sqlx::query("INSERT INTO approvals (proposal_id, proposal_version, proposal_hash, approver, approver_roles_json, role_assertion, status, reason, created_at) VALUES ($1,$2,$3,$4,$5::json,$6,$7,$8,$9)")
        .bind(&p.proposal_id)
        .bind(p.proposal_version as i32)
        .bind(&p.proposal_hash)
        .bind(&approver.id)
        .bind(json!(approver.roles).to_string())
        .bind(&approver.role_assertion)
        .bind(status)
        .bind(reason)
        .bind(&now)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    sqlx::query("UPDATE proposals SET state = $2, updated_at = $3 WHERE proposal_id = $1")
        .bind(&p.proposal_id)
        .bind(status)
        .bind(&now)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    event(
        c,
        &p.proposal_id,
        &format!("proposal_{status}"),
        &approver.id,
        &json!({"proposal_hash": p.proposal_hash, "proposal_version": p.proposal_version, "reason": reason, "roles": approver.roles, "role_assertion": approver.role_assertion}),
    )
    .await
}

impl PgLedger {
    /// Connect, create the schema if needed and run pending migrations once (several instances
    /// starting together wait for each other on an advisory lock). `label` names where the URL
    /// came from, for errors (never the URL).
    pub(crate) async fn open(url: &str, schema: &str, label: &str) -> Result<Self> {
        if !valid_schema_name(schema) {
            return Err(Error::ConfigFile {
                code: "INVALID_STORAGE_SCHEMA",
                message: format!(
                    "ledger schema {schema:?} must be lower-case letters, digits and _ (at most 63)"
                ),
            });
        }
        let opts: PgConnectOptions = url.parse().map_err(|_| {
            Error::LedgerStorage(format!("{label} is not a PostgreSQL connection URL"), None)
        })?;
        let opts = opts.application_name("synapsor-runner");
        let pool = |size: u32, deferred: bool| {
            let schema = schema.to_string();
            PgPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |c, _| {
                    let schema = schema.clone();
                    Box::pin(async move {
                        sqlx::query("SELECT set_config('search_path', $1, false)")
                            .bind(&schema)
                            .execute(&mut *c)
                            .await?;
                        if deferred {
                            sqlx::query("SET synchronous_commit = off")
                                .execute(&mut *c)
                                .await?;
                        }
                        Ok(())
                    })
                })
                .connect_lazy_with(opts.clone())
        };
        let ledger = PgLedger {
            // Modest pools: every instance of an app holds its own, and the server's
            // connections are shared by all of them.
            pool: pool(8, false),
            reads: pool(2, true),
            schema: schema.to_string(),
        };
        // The first connection is made directly, so a wrong URL fails at once with the
        // server's own reason rather than after the pool's wait.
        let first =
            tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(&opts));
        let mut c = match first.await {
            Err(_) => {
                return Err(Error::LedgerStorage(
                    format!("cannot reach the PostgreSQL ledger named by {label}: timed out"),
                    None,
                ));
            }
            Ok(Err(sqlx::Error::Database(d))) => {
                return Err(Error::LedgerStorage(
                    format!(
                        "cannot open the PostgreSQL ledger named by {label}: {} ({})",
                        d.message(),
                        d.code().unwrap_or_default()
                    ),
                    None,
                ));
            }
            Ok(Err(e)) => {
                return Err(Error::LedgerStorage(
                    format!(
                        "cannot reach the PostgreSQL ledger named by {label}: {}",
                        redact_url(&e.to_string())
                    ),
                    None,
                ));
            }
            Ok(Ok(c)) => c,
        };
        sqlx::query("SELECT set_config('search_path', $1, false)")
            .bind(schema)
            .execute(&mut c)
            .await
            .map_err(db)?;
        migrate(&mut c, schema).await?;
        let _ = c.close().await;
        Ok(ledger)
    }

    pub(crate) async fn schema_version(&self) -> Result<i64> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        current_version(&mut c).await
    }

    pub(crate) async fn record_read(
        &self,
        bundle: &EvidenceBundle,
        audit: &QueryAudit,
    ) -> Result<()> {
        super::check_bundle(bundle)?;
        assert_no_secret_material(&audit.payload, "query_audit")?;
        let mut c = self.reads.acquire().await.map_err(db)?;
        record_read_on(&mut c, bundle, audit, None).await
    }

    pub(crate) async fn create_proposal(
        &self,
        cs: &ChangeSet,
        bundle: &EvidenceBundle,
        audit: &QueryAudit,
    ) -> Result<Created> {
        let cs_value = cs.to_value();
        assert_no_secret_material(&cs_value, "change_set")?;
        super::check_bundle(bundle)?;
        assert_no_secret_material(&audit.payload, "query_audit")?;
        // Two instances proposing for one object at once: the unique index lets one in, the
        // other waits for it, fails, and looks again (and then finds it active).
        for _ in 0..3 {
            match self.try_create(cs, &cs_value, bundle, audit).await {
                Err(TryCreate::SecondActive) => continue,
                Err(TryCreate::Failed(e)) => return Err(e),
                Ok(created) => return Ok(created),
            }
        }
        Err(Error::LedgerStorage(
            "another instance kept creating proposals for this object; retry".into(),
            None,
        ))
    }

    async fn try_create(
        &self,
        cs: &ChangeSet,
        cs_value: &Value,
        bundle: &EvidenceBundle,
        audit: &QueryAudit,
    ) -> std::result::Result<Created, TryCreate> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let active: Option<String> = sqlx::query_scalar("SELECT proposal_id FROM proposals WHERE action = $1 AND tenant_id = $2 AND object_id = $3 AND state IN ('pending_review','approved','pending_worker') LIMIT 1")
            .bind(&cs.action)
            .bind(&cs.scope.tenant_id)
            .bind(&cs.scope.object_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(id) = active {
            let existing = get_proposal(&mut tx, &id, false)
                .await?
                .ok_or_else(|| Error::Internal("active proposal vanished".into()))?;
            // The read still happened: keep its evidence and audit, unlinked.
            record_read_on(&mut tx, bundle, audit, None).await?;
            if existing.change_set.patch == cs.patch && existing.change_set.before == cs.before {
                tx.commit().await.map_err(db)?;
                return Ok(Created::Duplicate(Box::new(existing)));
            }
            return Err(Error::ProposalAlreadyExists {
                active_id: existing.proposal_id,
                state: existing.state.to_string(),
            }
            .into());
        }
        let inserted = sqlx::query("INSERT INTO proposals (proposal_id, proposal_version, proposal_hash, action, state, tenant_id, principal, capability, business_object, object_id, source_kind, source_id, source_schema, source_table, source_database_mutated, change_set_json, created_at, updated_at) VALUES ($1,$2,$3,$4,'pending_review',$5,$6,$4,$7,$8,$9,$10,$11,$12,false,$13::json,$14,$14)")
            .bind(&cs.proposal_id)
            .bind(cs.proposal_version as i32)
            .bind(&cs.integrity.proposal_hash)
            .bind(&cs.action)
            .bind(&cs.scope.tenant_id)
            .bind(&cs.principal.id)
            .bind(&cs.scope.business_object)
            .bind(&cs.scope.object_id)
            .bind(&cs.source.kind)
            .bind(&cs.source.source_id)
            .bind(&cs.source.schema)
            .bind(&cs.source.table)
            .bind(cs_value.to_string())
            .bind(&cs.created_at)
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(e) if is_second_active(&e) => return Err(TryCreate::SecondActive),
            other => {
                other.map_err(db)?;
            }
        }
        event(&mut tx, &cs.proposal_id, "proposal_created", &cs.principal.id, &json!({"proposal_hash": cs.integrity.proposal_hash, "proposal_version": cs.proposal_version, "source_database_mutated": false})).await?;
        record_read_on(&mut tx, bundle, audit, Some(&cs.proposal_id)).await?;
        event(&mut tx, &cs.proposal_id, "evidence_recorded", "runner", &json!({"evidence_bundle_id": bundle.evidence_bundle_id, "item_count": bundle.items.len()})).await?;
        tx.commit().await.map_err(db)?;
        Ok(Created::New)
    }

    pub(crate) async fn proposal(&self, id: &str) -> Result<StoredProposal> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        get_proposal(&mut c, id, false)
            .await?
            .ok_or_else(|| Error::ledger("PROPOSAL_NOT_FOUND", format!("proposal not found: {id}")))
    }

    pub(crate) async fn resolve_selector(&self, selector: &str) -> Result<String> {
        if selector != "latest" {
            return Ok(selector
                .strip_prefix("replay_")
                .unwrap_or(selector)
                .to_string());
        }
        sqlx::query_scalar::<_, String>(
            "SELECT proposal_id FROM proposals ORDER BY created_at DESC, seq DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| Error::ledger("PROPOSAL_NOT_FOUND", "no proposals found in the ledger"))
    }

    pub(crate) async fn list_proposals(
        &self,
        state: Option<&str>,
        tenant: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredProposal>> {
        super::check_state_filter(state)?;
        let rows = sqlx::query("SELECT proposal_id, proposal_version, proposal_hash, action, state, tenant_id, principal, business_object, object_id, source_kind, source_id, source_schema, source_table, source_database_mutated, change_set_json::text, created_at, updated_at FROM proposals WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR tenant_id = $2) ORDER BY created_at DESC, seq DESC LIMIT $3")
            .bind(state)
            .bind(tenant)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| proposal_row(r).map_err(db)?.into_stored())
            .collect()
    }

    pub(crate) async fn approve(
        &self,
        id: &str,
        approver: &Approver,
        reason: Option<&str>,
    ) -> Result<StoredProposal> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let p = must_get(&mut tx, id).await?;
        super::check_approval(&p, approver)?;
        decide(&mut tx, &p, approver, "approved", reason).await?;
        let out = must_get(&mut tx, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    pub(crate) async fn reject(
        &self,
        id: &str,
        approver: &Approver,
        reason: &str,
    ) -> Result<StoredProposal> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let p = must_get(&mut tx, id).await?;
        if !p.state.may_reject() {
            return Err(Error::ledger(
                "PROPOSAL_NOT_REJECTABLE",
                format!("proposal {id} is {} and cannot be rejected", p.state),
            ));
        }
        decide(&mut tx, &p, approver, "rejected", Some(reason)).await?;
        let out = must_get(&mut tx, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    pub(crate) async fn approval_record(&self, id: &str) -> Result<Option<Value>> {
        let row = sqlx::query("SELECT json_build_object('approver', approver, 'roles', approver_roles_json, 'role_assertion', role_assertion, 'proposal_hash', proposal_hash, 'proposal_version', proposal_version, 'created_at', created_at)::text FROM approvals WHERE proposal_id = $1 AND status = 'approved' ORDER BY approval_id DESC LIMIT 1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(json_rows(row.into_iter().collect())?.pop())
    }

    pub(crate) async fn prepare_job(
        &self,
        job: &WritebackJob,
        executor: &str,
        actor: &str,
    ) -> Result<()> {
        let job_value = job.to_value();
        assert_no_secret_material(&job_value, "writeback_job")?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let p = must_get(&mut tx, &job.proposal_id).await?;
        super::mode_gate(&p, "converted into a writeback job")?;
        if !p.state.may_apply() {
            return Err(Error::ledger(
                "PROPOSAL_NOT_APPROVED",
                format!(
                    "proposal {} is {}, not approved for writeback",
                    p.proposal_id, p.state
                ),
            ));
        }
        let now = now_iso();
        if p.state == ProposalState::Approved {
            sqlx::query("UPDATE proposals SET state = 'pending_worker', updated_at = $2 WHERE proposal_id = $1")
                .bind(&p.proposal_id)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            event(
                &mut tx,
                &p.proposal_id,
                "proposal_pending_worker",
                actor,
                &json!({"proposal_hash": p.proposal_hash, "proposal_version": p.proposal_version}),
            )
            .await?;
        }
        let inserted = sqlx::query("INSERT INTO writeback_jobs (writeback_job_id, proposal_id, proposal_hash, executor, status, job_json, created_at, updated_at) VALUES ($1,$2,$3,$4,'pending_worker',$5::json,$6,$6) ON CONFLICT (writeback_job_id) DO UPDATE SET job_json = excluded.job_json, status = 'pending_worker', updated_at = excluded.updated_at WHERE writeback_jobs.status <> 'applied'")
            .bind(&job.writeback_job_id)
            .bind(&job.proposal_id)
            .bind(&job.proposal_hash)
            .bind(executor)
            .bind(job_value.to_string())
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if inserted > 0 && p.state == ProposalState::Approved {
            event(&mut tx, &p.proposal_id, "writeback_job_recorded", actor, &json!({"writeback_job_id": job.writeback_job_id, "proposal_hash": job.proposal_hash, "source_id": job.runner_scope.source_id, "executor": executor})).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn pending_jobs(&self) -> Result<Vec<(WritebackJob, String)>> {
        let rows = sqlx::query("SELECT j.job_json::text, j.executor FROM writeback_jobs j JOIN proposals p ON p.proposal_id = j.proposal_id WHERE p.state = 'pending_worker' AND j.status = 'pending_worker' ORDER BY j.created_at")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut out = Vec::new();
        for r in rows {
            let json: String = r.try_get(0).map_err(db)?;
            let value: Value = serde_json::from_str(&json)
                .map_err(|e| Error::LedgerStorage(format!("stored job unreadable: {e}"), None))?;
            out.push((WritebackJob::parse(&value)?, r.try_get(1).map_err(db)?));
        }
        Ok(out)
    }

    pub(crate) async fn release_job(
        &self,
        job: &WritebackJob,
        actor: &str,
        why: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let now = now_iso();
        let moved = sqlx::query("UPDATE proposals SET state = 'approved', updated_at = $2 WHERE proposal_id = $1 AND state = 'pending_worker'")
            .bind(&job.proposal_id)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if moved == 0 {
            return Err(Error::ledger(
                "PROPOSAL_NOT_PENDING",
                format!(
                    "proposal {} is no longer waiting on a writeback",
                    job.proposal_id
                ),
            ));
        }
        sqlx::query("UPDATE writeback_jobs SET status = 'released', updated_at = $2 WHERE writeback_job_id = $1")
            .bind(&job.writeback_job_id)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        event(&mut tx, &job.proposal_id, "writeback_reconciled", actor, &json!({"writeback_job_id": job.writeback_job_id, "outcome": "released", "reason": why})).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn record_receipt(
        &self,
        receipt: &ExecutionReceipt,
        retryable: bool,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let p = must_get(&mut tx, &receipt.proposal_id).await?;
        super::mode_gate(&p, "recorded with an execution receipt")?;
        let job_known = sqlx::query_scalar::<_, i32>(
            "SELECT 1 FROM writeback_jobs WHERE writeback_job_id = $1 AND proposal_id = $2",
        )
        .bind(&receipt.writeback_job_id)
        .bind(&receipt.proposal_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .is_some();
        if !job_known {
            return Err(Error::ledger(
                "WRITEBACK_JOB_UNKNOWN",
                format!(
                    "no recorded job {} for proposal {}",
                    receipt.writeback_job_id, receipt.proposal_id
                ),
            ));
        }
        if !p.state.may_apply() {
            return Err(Error::ledger(
                "RECEIPT_STATE_INVALID",
                format!(
                    "proposal {} is {}; receipts are not accepted in that state",
                    p.proposal_id, p.state
                ),
            ));
        }
        let success = matches!(receipt.status.as_str(), "applied" | "already_applied");
        let already_has_success = sqlx::query_scalar::<_, i32>("SELECT 1 FROM writeback_receipts WHERE proposal_id = $1 AND status IN ('applied','already_applied') LIMIT 1")
            .bind(&receipt.proposal_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .is_some();
        let payload = json!({"writeback_job_id": receipt.writeback_job_id, "rows_affected": receipt.rows_affected, "source_database_mutated": receipt.source_database_mutated, "receipt_hash": receipt.receipt_hash});
        if receipt.status == "applied" && receipt.source_database_mutated {
            // A concurrent retry may have recorded `already_applied` first while this attempt
            // was committing the change: the real application supersedes that placeholder.
            let placeholder: Option<i64> = sqlx::query_scalar("SELECT receipt_id FROM writeback_receipts WHERE proposal_id = $1 AND status = 'already_applied' AND NOT EXISTS (SELECT 1 FROM writeback_receipts WHERE proposal_id = $1 AND status = 'applied') ORDER BY receipt_id LIMIT 1")
                .bind(&receipt.proposal_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if let Some(rid) = placeholder {
                sqlx::query("UPDATE writeback_receipts SET writeback_job_id = $2, runner_id = $3, status = 'applied', source_database_mutated = true, receipt_json = $4::json, created_at = $5 WHERE receipt_id = $1")
                    .bind(rid)
                    .bind(&receipt.writeback_job_id)
                    .bind(&receipt.runner_id)
                    .bind(receipt.to_value().to_string())
                    .bind(&receipt.executed_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                sqlx::query("UPDATE proposals SET source_database_mutated = true, updated_at = $2 WHERE proposal_id = $1")
                    .bind(&p.proposal_id)
                    .bind(&receipt.executed_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                event(
                    &mut tx,
                    &p.proposal_id,
                    "writeback_applied",
                    &receipt.runner_id,
                    &payload,
                )
                .await?;
                tx.commit().await.map_err(db)?;
                return Ok(true);
            }
        }
        if p.state == ProposalState::Applied || (success && already_has_success) {
            // Idempotent retry: the first receipt stands; the attempt is still on record.
            let (kind, payload) = if success {
                (
                    "writeback_already_applied".to_string(),
                    json!({"writeback_job_id": receipt.writeback_job_id, "rows_affected": 0, "source_database_mutated": false, "receipt_hash": receipt.receipt_hash}),
                )
            } else {
                (format!("writeback_{}", receipt.status), payload)
            };
            event(&mut tx, &p.proposal_id, &kind, &receipt.runner_id, &payload).await?;
            tx.commit().await.map_err(db)?;
            return Ok(false);
        }
        let mut stored = receipt.to_value();
        if retryable {
            stored["retryable"] = Value::Bool(true);
        }
        sqlx::query("INSERT INTO writeback_receipts (writeback_job_id, proposal_id, runner_id, status, idempotency_key, source_database_mutated, receipt_json, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7::json,$8)")
            .bind(&receipt.writeback_job_id)
            .bind(&receipt.proposal_id)
            .bind(&receipt.runner_id)
            .bind(&receipt.status)
            .bind(&receipt.idempotency_key)
            .bind(receipt.source_database_mutated)
            .bind(stored.to_string())
            .bind(&receipt.executed_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let state = ProposalState::after_receipt(&receipt.status, retryable).as_str();
        sqlx::query("UPDATE proposals SET state = $2, source_database_mutated = source_database_mutated OR $3, updated_at = $4 WHERE proposal_id = $1")
            .bind(&p.proposal_id)
            .bind(state)
            .bind(receipt.source_database_mutated)
            .bind(&receipt.executed_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "UPDATE writeback_jobs SET status = $2, updated_at = $3 WHERE writeback_job_id = $1",
        )
        .bind(&receipt.writeback_job_id)
        .bind(&receipt.status)
        .bind(&receipt.executed_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        event(
            &mut tx,
            &p.proposal_id,
            &format!("writeback_{}", receipt.status),
            &receipt.runner_id,
            &payload,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    pub(crate) async fn record_event(
        &self,
        proposal_id: &str,
        kind: &str,
        actor: &str,
        payload: Value,
    ) -> Result<()> {
        assert_no_secret_material(&payload, "event")?;
        let mut c = self.pool.acquire().await.map_err(db)?;
        event(&mut c, proposal_id, kind, actor, &payload).await
    }

    pub(crate) async fn replay_record(&self, id: &str, persist: bool) -> Result<Value> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        // One snapshot for every part of the record.
        let mut tx = c
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(db)?;
        let proposal = get_proposal(&mut tx, id, false).await?.ok_or_else(|| {
            Error::ledger("PROPOSAL_NOT_FOUND", format!("proposal not found: {id}"))
        })?;
        let mut part = async |sql: &'static str| -> Result<Vec<Value>> {
            json_rows(
                sqlx::query(sql)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?,
            )
        };
        let evidence = part("SELECT json_build_object('evidence_bundle_id', evidence_bundle_id, 'tenant_id', tenant_id, 'payload', payload_json, 'created_at', created_at, 'items', (SELECT coalesce(json_agg(i.item_json ORDER BY i.evidence_item_id), '[]'::json) FROM evidence_items i WHERE i.evidence_bundle_id = b.evidence_bundle_id))::text FROM evidence_bundles b WHERE proposal_id = $1 ORDER BY created_at, evidence_bundle_id").await?;
        let query_audit = part("SELECT json_build_object('audit_id', audit_id, 'evidence_bundle_id', evidence_bundle_id, 'source_id', source_id, 'query_fingerprint', query_fingerprint, 'table_name', table_name, 'row_count', row_count, 'payload', payload_json, 'created_at', created_at)::text FROM query_audit WHERE proposal_id = $1 ORDER BY audit_id").await?;
        let approvals = part("SELECT json_build_object('approval_id', approval_id, 'approver', approver, 'roles', approver_roles_json, 'role_assertion', role_assertion, 'status', status, 'reason', reason, 'proposal_hash', proposal_hash, 'proposal_version', proposal_version, 'created_at', created_at)::text FROM approvals WHERE proposal_id = $1 ORDER BY approval_id").await?;
        let jobs = part("SELECT json_build_object('writeback_job_id', writeback_job_id, 'executor', executor, 'status', status, 'job', job_json, 'created_at', created_at, 'updated_at', updated_at)::text FROM writeback_jobs WHERE proposal_id = $1 ORDER BY created_at").await?;
        let receipts = part("SELECT json_build_object('receipt_id', receipt_id, 'writeback_job_id', writeback_job_id, 'runner_id', runner_id, 'status', status, 'idempotency_key', idempotency_key, 'source_database_mutated', source_database_mutated, 'receipt', receipt_json, 'created_at', created_at)::text FROM writeback_receipts WHERE proposal_id = $1 ORDER BY receipt_id").await?;
        let events = part("SELECT json_build_object('event_id', event_id, 'kind', kind, 'actor', actor, 'payload', payload_json, 'created_at', created_at)::text FROM proposal_events WHERE proposal_id = $1 ORDER BY event_id").await?;
        let record = json!({
            "replay_id": format!("replay_{id}"),
            "proposal": proposal,
            "evidence": evidence,
            "query_audit": query_audit,
            "approvals": approvals,
            "jobs": jobs,
            "receipts": receipts,
            "events": events,
            "generated_at": now_iso(),
        });
        if persist {
            sqlx::query("INSERT INTO replay_records (replay_id, proposal_id, payload_json, created_at) VALUES ($1,$2,$3::json,$4) ON CONFLICT (replay_id) DO UPDATE SET payload_json = excluded.payload_json, created_at = excluded.created_at")
                .bind(format!("replay_{id}"))
                .bind(id)
                .bind(record.to_string())
                .bind(now_iso())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(record)
    }

    pub(crate) async fn evidence_bundle(&self, id: &str) -> Result<Option<Value>> {
        let row = sqlx::query("SELECT json_build_object('evidence_bundle_id', evidence_bundle_id, 'proposal_id', proposal_id, 'tenant_id', tenant_id, 'principal', principal, 'capability', capability, 'source_id', source_id, 'source_table', source_table, 'business_object', business_object, 'object_id', object_id, 'query_fingerprint', query_fingerprint, 'payload', payload_json, 'created_at', created_at, \
            'items', (SELECT coalesce(json_agg(i.item_json ORDER BY i.evidence_item_id), '[]'::json) FROM evidence_items i WHERE i.evidence_bundle_id = b.evidence_bundle_id), \
            'query_audit', (SELECT coalesce(json_agg(json_build_object('audit_id', q.audit_id, 'source_id', q.source_id, 'query_fingerprint', q.query_fingerprint, 'table_name', q.table_name, 'row_count', q.row_count, 'payload', q.payload_json, 'created_at', q.created_at) ORDER BY q.audit_id), '[]'::json) FROM query_audit q WHERE q.evidence_bundle_id = b.evidence_bundle_id))::text \
            FROM evidence_bundles b WHERE evidence_bundle_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(json_rows(row.into_iter().collect())?.pop())
    }

    pub(crate) async fn count(&self, table: &str) -> Result<i64> {
        let sql = match table {
            "proposals" => "SELECT count(*) FROM proposals",
            "proposal_events" => "SELECT count(*) FROM proposal_events",
            "approvals" => "SELECT count(*) FROM approvals",
            "writeback_jobs" => "SELECT count(*) FROM writeback_jobs",
            "writeback_receipts" => "SELECT count(*) FROM writeback_receipts",
            "evidence_bundles" => "SELECT count(*) FROM evidence_bundles",
            "evidence_items" => "SELECT count(*) FROM evidence_items",
            "query_audit" => "SELECT count(*) FROM query_audit",
            "replay_records" => "SELECT count(*) FROM replay_records",
            "runner_state" => "SELECT count(*) FROM runner_state",
            _ => return Err(Error::Internal(format!("unknown ledger table {table}"))),
        };
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }

    async fn approx_bytes(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'")
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }

    pub(crate) async fn stats(&self) -> Result<Value> {
        let mut tables = serde_json::Map::new();
        for t in super::TABLES {
            tables.insert(t.to_string(), json!(self.count(t).await?));
        }
        let bytes = self.approx_bytes().await?;
        Ok(
            json!({"tables": tables, "page_count": bytes / 8192, "page_size": 8192, "approx_bytes": bytes, "backend": "postgres", "schema": self.schema}),
        )
    }

    pub(crate) async fn check(&self) -> Result<Value> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        let mut tx = c
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db)?;
        let proposals = sqlx::query("SELECT p.proposal_id, p.proposal_hash, p.state, p.change_set_json::text, \
             EXISTS (SELECT 1 FROM evidence_bundles e WHERE e.evidence_bundle_id = p.change_set_json->'evidence'->>'bundle_id'), \
             EXISTS (SELECT 1 FROM approvals a WHERE a.proposal_id = p.proposal_id AND a.proposal_hash <> p.proposal_hash), \
             EXISTS (SELECT 1 FROM writeback_jobs j WHERE j.proposal_id = p.proposal_id AND j.proposal_hash <> p.proposal_hash) \
             FROM proposals p ORDER BY p.proposal_id")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let grouped =
            async |tx: &mut PgConnection,
                   sql: &'static str|
                   -> Result<std::collections::HashMap<String, Vec<(String, String)>>> {
                let mut out: std::collections::HashMap<String, Vec<(String, String)>> =
                    Default::default();
                for r in sqlx::query(sql).fetch_all(&mut *tx).await.map_err(db)? {
                    out.entry(r.try_get(0).map_err(db)?)
                        .or_default()
                        .push((r.try_get(1).map_err(db)?, r.try_get(2).map_err(db)?));
                }
                Ok(out)
            };
        let events = grouped(&mut tx, "SELECT proposal_id, kind, created_at FROM proposal_events ORDER BY proposal_id, event_id").await?;
        let receipts = grouped(&mut tx, "SELECT proposal_id, receipt_json::text, status FROM writeback_receipts ORDER BY proposal_id, receipt_id").await?;
        tx.commit().await.map_err(db)?;
        let mut problems = Vec::new();
        let none = Vec::new();
        for r in &proposals {
            let id: String = r.try_get(0).map_err(db)?;
            let (hash, state, cs): (String, String, String) = (
                r.try_get(1).map_err(db)?,
                r.try_get(2).map_err(db)?,
                r.try_get(3).map_err(db)?,
            );
            check_proposal(
                &CheckInput {
                    proposal_id: &id,
                    proposal_hash: &hash,
                    state: &state,
                    change_set_json: &cs,
                    evidence_present: r.try_get(4).map_err(db)?,
                    other_hash_approvals: r.try_get(5).map_err(db)?,
                    other_hash_jobs: r.try_get(6).map_err(db)?,
                    events: events.get(&id).unwrap_or(&none),
                    receipts: receipts.get(&id).unwrap_or(&none),
                },
                &mut problems,
            );
        }
        Ok(json!({"checked": {"proposals": proposals.len()}, "problems": problems}))
    }

    pub(crate) async fn prune_reads(&self, cutoff: &str, dry_run: bool) -> Result<Value> {
        const STEPS: [(&str, &str, &str); 3] = [
            (
                "query_audit",
                "SELECT count(*) FROM query_audit WHERE proposal_id IS NULL AND ((evidence_bundle_id IS NULL AND created_at < $1) OR evidence_bundle_id IN (SELECT evidence_bundle_id FROM evidence_bundles WHERE proposal_id IS NULL AND created_at < $1))",
                "DELETE FROM query_audit WHERE proposal_id IS NULL AND ((evidence_bundle_id IS NULL AND created_at < $1) OR evidence_bundle_id IN (SELECT evidence_bundle_id FROM evidence_bundles WHERE proposal_id IS NULL AND created_at < $1))",
            ),
            (
                "evidence_items",
                "SELECT count(*) FROM evidence_items WHERE evidence_bundle_id IN (SELECT evidence_bundle_id FROM evidence_bundles WHERE proposal_id IS NULL AND created_at < $1)",
                "DELETE FROM evidence_items WHERE evidence_bundle_id IN (SELECT evidence_bundle_id FROM evidence_bundles WHERE proposal_id IS NULL AND created_at < $1)",
            ),
            (
                "evidence_bundles",
                "SELECT count(*) FROM evidence_bundles WHERE proposal_id IS NULL AND created_at < $1",
                "DELETE FROM evidence_bundles WHERE proposal_id IS NULL AND created_at < $1",
            ),
        ];
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut deleted = serde_json::Map::new();
        for (table, count, delete) in STEPS {
            let n: i64 = sqlx::query_scalar(count)
                .bind(cutoff)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            if !dry_run && n > 0 {
                sqlx::query(delete)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            deleted.insert(table.to_string(), json!(n));
        }
        tx.commit().await.map_err(db)?;
        Ok(json!({"cutoff": cutoff, "dry_run": dry_run, "deleted": deleted}))
    }

    pub(crate) async fn vacuum(&self) -> Result<(i64, i64)> {
        let before = self.approx_bytes().await?;
        for sql in [
            "VACUUM (ANALYZE) proposals",
            "VACUUM (ANALYZE) proposal_events",
            "VACUUM (ANALYZE) approvals",
            "VACUUM (ANALYZE) writeback_jobs",
            "VACUUM (ANALYZE) writeback_receipts",
            "VACUUM (ANALYZE) evidence_bundles",
            "VACUUM (ANALYZE) evidence_items",
            "VACUUM (ANALYZE) query_audit",
            "VACUUM (ANALYZE) replay_records",
            "VACUUM (ANALYZE) runner_state",
        ] {
            sqlx::raw_sql(sql).execute(&self.pool).await.map_err(db)?;
        }
        Ok((before, self.approx_bytes().await?))
    }

    pub(crate) async fn list_evidence(&self, f: &ListFilter) -> Result<Vec<Value>> {
        let rows = sqlx::query("SELECT json_build_object('evidence_bundle_id', b.evidence_bundle_id, 'proposal_id', b.proposal_id, 'tenant_id', b.tenant_id, 'principal', b.principal, 'capability', b.capability, 'source_id', b.source_id, 'source_table', b.source_table, 'business_object', b.business_object, 'object_id', b.object_id, 'query_fingerprint', b.query_fingerprint, 'created_at', b.created_at, \
             'item_count', (SELECT count(*) FROM evidence_items i WHERE i.evidence_bundle_id = b.evidence_bundle_id), \
             'query_audit_count', (SELECT count(*) FROM query_audit q WHERE q.evidence_bundle_id = b.evidence_bundle_id))::text \
             FROM evidence_bundles b \
             WHERE ($1::text IS NULL OR b.tenant_id = $1) AND ($2::text IS NULL OR b.principal = $2) AND ($3::text IS NULL OR b.capability = $3) \
             AND ($4::text IS NULL OR b.proposal_id = $4) AND ($5::text IS NULL OR b.business_object IN ($5, $5 || 's') OR b.business_object || 's' = $5 OR b.source_table = $5 OR b.source_table LIKE '%.' || $5 OR b.source_table LIKE '%.' || $5 || 's') \
             AND ($6::text IS NULL OR b.object_id = $6) AND ($7::text IS NULL OR b.source_id = $7) \
             AND ($8::text IS NULL OR b.source_table = $8 OR b.source_table LIKE '%.' || $8) AND ($9::text IS NULL OR b.query_fingerprint = $9) \
             AND ($10::text IS NULL OR b.created_at >= $10) AND ($11::text IS NULL OR b.created_at <= $11) AND ($12::text IS NULL OR b.evidence_bundle_id = $12) \
             ORDER BY b.created_at DESC, b.evidence_bundle_id DESC LIMIT $13")
            .bind(&f.tenant).bind(&f.principal).bind(&f.capability).bind(&f.proposal).bind(&f.object_type)
            .bind(&f.object_id).bind(&f.source).bind(&f.table).bind(&f.query_fingerprint).bind(&f.from).bind(&f.to)
            .bind(&f.evidence).bind(f.limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        json_rows(rows)
    }

    pub(crate) async fn list_replays(&self, f: &ListFilter) -> Result<Vec<Value>> {
        let rows = sqlx::query("SELECT json_build_object('replay_id', 'replay_' || p.proposal_id, 'proposal_id', p.proposal_id, 'created_at', p.created_at, 'state', p.state, 'tenant_id', p.tenant_id, 'principal', p.principal, 'capability', p.action, 'business_object', p.business_object, 'object_id', p.object_id)::text FROM proposals p \
             WHERE ($1::text IS NULL OR p.tenant_id = $1) AND ($2::text IS NULL OR p.principal = $2) AND ($3::text IS NULL OR p.action = $3) \
             AND ($4::text IS NULL OR p.proposal_id = $4) AND ($5::text IS NULL OR p.business_object IN ($5, $5 || 's') OR p.business_object || 's' = $5 OR p.source_table = $5 OR p.source_table = $5 || 's') \
             AND ($6::text IS NULL OR p.object_id = $6) AND ($7::text IS NULL OR p.source_id = $7) AND ($8::text IS NULL OR p.source_table = $8) \
             AND ($9::text IS NULL OR p.state = $9) AND ($10::text IS NULL OR p.created_at >= $10) AND ($11::text IS NULL OR p.created_at <= $11) \
             AND ($12::text IS NULL OR EXISTS (SELECT 1 FROM evidence_bundles e WHERE e.proposal_id = p.proposal_id AND e.evidence_bundle_id = $12)) \
             AND ($13::bigint IS NULL OR EXISTS (SELECT 1 FROM writeback_receipts r WHERE r.proposal_id = p.proposal_id AND r.receipt_id = $13)) \
             AND ($14::text IS NULL OR EXISTS (SELECT 1 FROM writeback_receipts r WHERE r.proposal_id = p.proposal_id AND r.status = $14)) \
             ORDER BY p.created_at DESC, p.seq DESC LIMIT $15")
            .bind(&f.tenant).bind(&f.principal).bind(&f.capability).bind(&f.proposal).bind(&f.object_type)
            .bind(&f.object_id).bind(&f.source).bind(&f.table).bind(&f.state).bind(&f.from).bind(&f.to)
            .bind(&f.evidence).bind(f.receipt).bind(&f.status).bind(f.limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        json_rows(rows)
    }

    pub(crate) async fn list_query_audit(&self, f: &ListFilter) -> Result<Vec<Value>> {
        let rows = sqlx::query("SELECT json_build_object('audit_id', audit_id, 'proposal_id', proposal_id, 'evidence_bundle_id', evidence_bundle_id, 'source_id', source_id, 'query_fingerprint', query_fingerprint, 'table_name', table_name, 'row_count', row_count, 'payload', payload_json, 'tenant_id', tenant_id, 'principal', principal, 'capability', capability, 'business_object', business_object, 'object_id', object_id, 'primary_key_value', primary_key_value, 'created_at', created_at)::text FROM query_audit \
             WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR principal = $2) AND ($3::text IS NULL OR capability = $3) \
             AND ($4::text IS NULL OR proposal_id = $4) AND ($5::text IS NULL OR business_object IN ($5, $5 || 's') OR business_object || 's' = $5 OR table_name = $5 OR table_name LIKE '%.' || $5 OR table_name LIKE '%.' || $5 || 's') \
             AND ($6::text IS NULL OR object_id = $6) AND ($7::text IS NULL OR source_id = $7) \
             AND ($8::text IS NULL OR table_name = $8 OR table_name LIKE '%.' || $8) AND ($9::text IS NULL OR query_fingerprint = $9) \
             AND ($10::text IS NULL OR created_at >= $10) AND ($11::text IS NULL OR created_at <= $11) AND ($12::text IS NULL OR evidence_bundle_id = $12) \
             AND ($13::text IS NULL OR primary_key_value = $13) \
             ORDER BY created_at DESC, audit_id DESC LIMIT $14")
            .bind(&f.tenant).bind(&f.principal).bind(&f.capability).bind(&f.proposal).bind(&f.object_type)
            .bind(&f.object_id).bind(&f.source).bind(&f.table).bind(&f.query_fingerprint).bind(&f.from).bind(&f.to)
            .bind(&f.evidence).bind(&f.primary_key).bind(f.limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        json_rows(rows)
    }

    pub(crate) async fn query_audit(&self, id: i64) -> Result<Option<Value>> {
        let row = sqlx::query("SELECT json_build_object('audit_id', audit_id, 'proposal_id', proposal_id, 'evidence_bundle_id', evidence_bundle_id, 'source_id', source_id, 'query_fingerprint', query_fingerprint, 'table_name', table_name, 'row_count', row_count, 'payload', payload_json, 'tenant_id', tenant_id, 'principal', principal, 'capability', capability, 'business_object', business_object, 'object_id', object_id, 'primary_key_value', primary_key_value, 'created_at', created_at)::text FROM query_audit WHERE audit_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(json_rows(row.into_iter().collect())?.pop())
    }

    pub(crate) async fn list_events(&self, f: &EventFilter) -> Result<Vec<Value>> {
        let rows = sqlx::query("SELECT json_build_object('event_id', event_id, 'proposal_id', proposal_id, 'kind', kind, 'actor', actor, 'payload', payload_json, 'created_at', created_at)::text FROM proposal_events \
             WHERE event_id > $1 AND ($2::text IS NULL OR proposal_id = $2) AND ($3::text IS NULL OR kind = $3) AND ($4::text IS NULL OR actor = $4) \
             AND ($5::text IS NULL OR created_at >= $5) AND ($6::text IS NULL OR created_at <= $6) \
             ORDER BY event_id DESC LIMIT $7")
            .bind(f.after_id).bind(&f.proposal).bind(&f.kind).bind(&f.actor).bind(&f.from).bind(&f.to).bind(f.limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut out = json_rows(rows)?;
        out.reverse();
        Ok(out)
    }

    pub(crate) async fn list_receipts(&self, f: &ReceiptFilter) -> Result<Vec<Value>> {
        let rows = sqlx::query("SELECT json_build_object('receipt_id', receipt_id, 'writeback_job_id', writeback_job_id, 'proposal_id', proposal_id, 'runner_id', runner_id, 'status', status, 'idempotency_key', idempotency_key, 'source_database_mutated', source_database_mutated, 'created_at', created_at, 'receipt', receipt_json)::text FROM writeback_receipts \
             WHERE ($1::text IS NULL OR proposal_id = $1) AND ($2::text IS NULL OR writeback_job_id = $2) AND ($3::text IS NULL OR idempotency_key = $3) \
             AND ($4::text IS NULL OR status = $4) AND ($5::text IS NULL OR created_at >= $5) AND ($6::text IS NULL OR created_at <= $6) \
             ORDER BY receipt_id DESC LIMIT $7")
            .bind(&f.proposal).bind(&f.writeback_job).bind(&f.idempotency_key).bind(&f.status).bind(&f.from).bind(&f.to).bind(f.limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        json_rows(rows)
    }

    pub(crate) async fn receipt(&self, id: i64) -> Result<Option<Value>> {
        let row = sqlx::query("SELECT json_build_object('receipt_id', receipt_id, 'writeback_job_id', writeback_job_id, 'proposal_id', proposal_id, 'runner_id', runner_id, 'status', status, 'idempotency_key', idempotency_key, 'source_database_mutated', source_database_mutated, 'created_at', created_at, 'receipt', receipt_json)::text FROM writeback_receipts WHERE receipt_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(json_rows(row.into_iter().collect())?.pop())
    }

    pub(crate) async fn active_lookup_plan(&self) -> Result<String> {
        let rows: Vec<String> = sqlx::query_scalar("EXPLAIN SELECT proposal_id FROM proposals WHERE action = 'a' AND tenant_id = 't' AND object_id = 'o' AND state IN ('pending_review','approved','pending_worker') LIMIT 1")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.join("; "))
    }

    /// Whether the ledger holds no proposals and no evidence (a `store migrate` target).
    pub(crate) async fn is_empty(&self) -> Result<bool> {
        Ok(self.count("proposals").await? == 0 && self.count("evidence_bundles").await? == 0)
    }

    /// Copy a whole exported ledger (`(table, rows)` in dependency order, rows as
    /// `{column: value}` objects with JSON columns parsed) in one transaction, keeping row
    /// numbers, then start each number sequence after the highest. All or nothing.
    pub(crate) async fn import(&self, tables: &[(&str, Vec<Value>)]) -> Result<Value> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut copied = serde_json::Map::new();
        for (table, rows) in tables {
            let sql = match *table {
                "proposals" => {
                    "INSERT INTO proposals (proposal_id, proposal_version, proposal_hash, action, state, tenant_id, principal, capability, business_object, object_id, source_kind, source_id, source_schema, source_table, source_database_mutated, change_set_json, created_at, updated_at) SELECT proposal_id, proposal_version, proposal_hash, action, state, tenant_id, principal, capability, business_object, object_id, source_kind, source_id, source_schema, source_table, source_database_mutated, change_set_json, created_at, updated_at FROM json_populate_recordset(NULL::proposals, $1::json)"
                }
                "proposal_events" => {
                    "INSERT INTO proposal_events SELECT * FROM json_populate_recordset(NULL::proposal_events, $1::json)"
                }
                "approvals" => {
                    "INSERT INTO approvals SELECT * FROM json_populate_recordset(NULL::approvals, $1::json)"
                }
                "writeback_jobs" => {
                    "INSERT INTO writeback_jobs SELECT * FROM json_populate_recordset(NULL::writeback_jobs, $1::json)"
                }
                "writeback_receipts" => {
                    "INSERT INTO writeback_receipts SELECT * FROM json_populate_recordset(NULL::writeback_receipts, $1::json)"
                }
                "evidence_bundles" => {
                    "INSERT INTO evidence_bundles SELECT * FROM json_populate_recordset(NULL::evidence_bundles, $1::json)"
                }
                "evidence_items" => {
                    "INSERT INTO evidence_items SELECT * FROM json_populate_recordset(NULL::evidence_items, $1::json)"
                }
                "query_audit" => {
                    "INSERT INTO query_audit SELECT * FROM json_populate_recordset(NULL::query_audit, $1::json)"
                }
                "replay_records" => {
                    "INSERT INTO replay_records SELECT * FROM json_populate_recordset(NULL::replay_records, $1::json)"
                }
                "runner_state" => {
                    "INSERT INTO runner_state SELECT * FROM json_populate_recordset(NULL::runner_state, $1::json)"
                }
                _ => return Err(Error::Internal(format!("unknown ledger table {table}"))),
            };
            let mut written = 0;
            for chunk in rows.chunks(500) {
                written += sqlx::query(sql)
                    .bind(Value::Array(chunk.to_vec()).to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
            }
            copied.insert(table.to_string(), json!(written));
        }
        for sql in [
            "SELECT setval(pg_get_serial_sequence('proposal_events', 'event_id'), coalesce((SELECT max(event_id) FROM proposal_events), 0) + 1, false)",
            "SELECT setval(pg_get_serial_sequence('approvals', 'approval_id'), coalesce((SELECT max(approval_id) FROM approvals), 0) + 1, false)",
            "SELECT setval(pg_get_serial_sequence('writeback_receipts', 'receipt_id'), coalesce((SELECT max(receipt_id) FROM writeback_receipts), 0) + 1, false)",
            "SELECT setval(pg_get_serial_sequence('evidence_items', 'evidence_item_id'), coalesce((SELECT max(evidence_item_id) FROM evidence_items), 0) + 1, false)",
            "SELECT setval(pg_get_serial_sequence('query_audit', 'audit_id'), coalesce((SELECT max(audit_id) FROM query_audit), 0) + 1, false)",
        ] {
            sqlx::query(sql).execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Value::Object(copied))
    }

    /// Every proposal's id and hash (`store migrate` compares them).
    pub(crate) async fn proposal_hashes(&self) -> Result<Vec<(String, String)>> {
        sqlx::query_as("SELECT proposal_id, proposal_hash FROM proposals ORDER BY proposal_id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    /// Drop the ledger's schema and everything in it (`store reset --yes`).
    pub(crate) async fn reset(&self) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SELECT set_config('synapsor.ledger_schema', $1, true)")
            .bind(&self.schema)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::raw_sql("DO $$ BEGIN EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', current_setting('synapsor.ledger_schema')); END $$")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}

/// What `doctor` reports of a PostgreSQL ledger, without changing anything: whether it can
/// connect, the schema version against this runner's, and the privileges the runner needs.
pub(crate) async fn probe(url: &str, schema: &str, label: &str) -> Result<Value> {
    let opts: PgConnectOptions = url.parse().map_err(|_| {
        Error::LedgerStorage(format!("{label} is not a PostgreSQL connection URL"), None)
    })?;
    let mut c = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(&opts))
        .await
        .map_err(|_| {
            Error::LedgerStorage(
                format!("cannot reach the PostgreSQL ledger named by {label}: timed out"),
                None,
            )
        })?
        .map_err(|e| {
            Error::LedgerStorage(
                format!(
                    "cannot open the PostgreSQL ledger named by {label}: {}",
                    redact_url(&e.to_string())
                ),
                None,
            )
        })?;
    sqlx::query("SELECT set_config('search_path', $1, false)")
        .bind(schema)
        .execute(&mut c)
        .await
        .map_err(db)?;
    let version = current_version(&mut c).await?;
    let mut missing = Vec::new();
    if version > 0 {
        let rows: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT t.name, p.privilege, has_table_privilege(current_user, quote_ident($1) || '.' || t.name, p.privilege)              FROM unnest(ARRAY['proposals','proposal_events','approvals','writeback_jobs','writeback_receipts','evidence_bundles','evidence_items','query_audit','replay_records','runner_state']) AS t(name)              CROSS JOIN unnest(ARRAY['SELECT','INSERT','UPDATE']) AS p(privilege)",
        )
        .bind(schema)
        .fetch_all(&mut c)
        .await
        .map_err(db)?;
        // The ledger updates these; it only appends to the others.
        const UPDATED: [&str; 6] = [
            "proposals",
            "writeback_jobs",
            "writeback_receipts",
            "evidence_bundles",
            "replay_records",
            "runner_state",
        ];
        for (table, privilege, granted) in rows {
            let needed = privilege != "UPDATE" || UPDATED.contains(&table.as_str());
            if needed && !granted {
                missing.push(format!("{privilege} on {schema}.{table}"));
            }
        }
    } else {
        let can_create: bool = sqlx::query_scalar(
            "SELECT has_database_privilege(current_user, current_database(), 'CREATE') OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1 AND has_schema_privilege(current_user, nspname, 'CREATE'))",
        )
        .bind(schema)
        .fetch_one(&mut c)
        .await
        .map_err(db)?;
        if !can_create {
            missing.push(format!(
                "CREATE on the database or schema {schema} (to create the ledger)"
            ));
        }
    }
    let _ = c.close().await;
    Ok(json!({
        "schema": schema,
        "schema_version": version,
        "runner_schema_version": MIGRATIONS.len(),
        "missing_privileges": missing,
    }))
}

/// Why one attempt at recording a proposal did not finish.
enum TryCreate {
    /// Another instance made a proposal for the object active first: look again.
    SecondActive,
    Failed(Error),
}

impl From<Error> for TryCreate {
    fn from(e: Error) -> Self {
        TryCreate::Failed(e)
    }
}

async fn current_version(c: &mut PgConnection) -> Result<i64> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('ledger_migrations') IS NOT NULL")
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
    if !exists {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT coalesce(max(version), 0)::bigint FROM ledger_migrations")
        .fetch_one(&mut *c)
        .await
        .map_err(db)
}

fn too_new(version: i64) -> Result<()> {
    if version as usize > MIGRATIONS.len() {
        return Err(Error::ledger(
            "LEDGER_SCHEMA_TOO_NEW",
            format!(
                "the ledger is at schema version {version}, written by a newer synapsor-runner (this one knows up to {}); upgrade synapsor-runner to use it",
                MIGRATIONS.len()
            ),
        ));
    }
    Ok(())
}

/// Bring the schema to the newest version. Opening a current ledger costs one query; instances
/// that start together take turns on an advisory lock, and each migration runs once.
async fn migrate(c: &mut PgConnection, schema: &str) -> Result<()> {
    let version = current_version(c).await?;
    too_new(version)?;
    if version as usize == MIGRATIONS.len() {
        return Ok(());
    }
    let mut tx = c.begin().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('synapsor-ledger:' || $1, 0))")
        .bind(schema)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query("SELECT set_config('synapsor.ledger_schema', $1, true)")
        .bind(schema)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    // Only when missing: CREATE SCHEMA checks the database privilege even with IF NOT EXISTS,
    // and a ledger owner given only its schema has none.
    sqlx::raw_sql("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = current_setting('synapsor.ledger_schema')) THEN EXECUTE format('CREATE SCHEMA %I', current_setting('synapsor.ledger_schema')); END IF; END $$")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS ledger_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    // Another instance may have migrated while this one waited for the lock.
    let version = current_version(&mut tx).await?;
    too_new(version)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await.map_err(db)?;
        sqlx::query("INSERT INTO ledger_migrations (version, applied_at) VALUES ($1, $2)")
            .bind((i + 1) as i32)
            .bind(now_iso())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}
