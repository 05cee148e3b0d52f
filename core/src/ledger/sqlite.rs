//! The SQLite ledger: proposals, evidence, query audit, approvals, jobs, receipts, append-only
//! events and replay records in one file (WAL). Synchronous; [`super::Ledger`] runs it on a
//! thread of its own.

use super::schema;
use super::secrets::assert_no_secret_material;
use super::{Approver, Created, EvidenceBundle, ProposalRow, QueryAudit, StoredProposal, now_iso};
use crate::error::{Error, Result};
use crate::policy::ProposalState;
use crate::protocol::{ChangeSet, ExecutionReceipt, WritebackJob};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// At most one proposal per object is active; the per-object index keeps this lookup O(log n)
/// however many proposals the ledger holds (without the hint SQLite may scan by action).
const ACTIVE_LOOKUP: &str = "SELECT proposal_id FROM proposals INDEXED BY idx_proposals_active WHERE action = ?1 AND tenant_id = ?2 AND object_id = ?3 AND state IN ('pending_review','approved','pending_worker') LIMIT 1";

/// Run a statement through the connection's cache of prepared statements: the ledger's
/// statements are few and fixed, so each is parsed once per connection.
fn exec(c: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(params)
}

/// The SQLite ledger, owned by the thread that runs it.
pub(crate) struct SqliteLedger {
    conn: Connection,
    /// Opened from a file this process may not write: reads and replay work, writes fail.
    read_only: bool,
    /// The connection's `synchronous` setting now: [`Durability`] of the last write.
    durability: Durability,
}

/// How a committed write survives a power loss (a process crash loses nothing either way: a
/// commit is in the operating system's hands once it returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// `synchronous=FULL`: the write-ahead log is synced to disk before the commit returns.
    /// Proposals, approvals, rejections, jobs, receipts and events: acknowledged means kept.
    Synced,
    /// `synchronous=NORMAL`: synced with the next synced commit or checkpoint. The evidence and
    /// query audit of a plain read, which a power loss may take back (the read itself changed
    /// nothing); never the evidence a proposal refers to, which is written with the proposal.
    Deferred,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Synced => "FULL",
            Durability::Deferred => "NORMAL",
        }
    }
}

impl SqliteLedger {
    /// Open (creating if needed) a ledger file and run pending migrations once. A new ledger
    /// file is created readable by its owner only (`0600`, in folders created `0700`): it holds
    /// evidence rows. A file this process may not write is opened read-only (listing and
    /// replay work). A ledger written by a newer runner is refused (`LEDGER_SCHEMA_TOO_NEW`).
    pub fn open(path: &Path) -> Result<Self> {
        if path.as_os_str() == ":memory:" {
            return Self::open_in_memory();
        }
        if !path.exists() {
            create_private(path)?;
        } else if !writable(path) {
            return Self::open_read_only(path);
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Self::init(conn)
    }

    /// A ledger that lives only as long as this handle.
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    /// An existing ledger, for reading only (an audit copy, a read-only mount).
    pub fn open_read_only(path: &Path) -> Result<Self> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).and_then(|c| {
            // WAL readers need the shared-memory file; where it cannot be made, read the file
            // as it is on disk.
            c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
                .map(|_| c)
        });
        let conn = match conn {
            Ok(c) => c,
            Err(_) => {
                let uri = format!("file:{}?immutable=1", path.display());
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?
            }
        };
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        check_schema_version(version)?;
        if (version as usize) < schema::MIGRATIONS.len() {
            return Err(Error::ledger(
                "LEDGER_SCHEMA_OUTDATED",
                format!(
                    "the read-only ledger {} is at schema version {version}; open it writable once to migrate it",
                    path.display()
                ),
            ));
        }
        Ok(SqliteLedger {
            conn,
            read_only: true,
            durability: Durability::Deferred,
        })
    }

    /// Whether this ledger may only be read (see [`SqliteLedger::open_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "synchronous", Durability::Synced.pragma())?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn)?;
        Ok(SqliteLedger {
            conn,
            read_only: false,
            durability: Durability::Synced,
        })
    }

    fn with<T>(&mut self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut self.conn)
    }

    /// One transaction, synced to disk before it returns ([`Durability::Synced`]).
    fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.write_with(Durability::Synced, f)
    }

    fn write_with<T>(
        &mut self,
        durability: Durability,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        if self.durability != durability {
            self.conn
                .pragma_update(None, "synchronous", durability.pragma())?;
            self.durability = durability;
        }
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Schema version after migrations.
    pub fn schema_version(&mut self) -> Result<i64> {
        self.with(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }

    /// Record several reads in one transaction; one result per read, in order. A read refused
    /// by its own checks (secret material) fails alone; a failed transaction fails them all.
    pub(crate) fn record_reads(
        &mut self,
        reads: &[(EvidenceBundle, QueryAudit)],
    ) -> Vec<Result<()>> {
        let mut results: Vec<Result<()>> = reads
            .iter()
            .map(|(bundle, audit)| {
                super::check_bundle(bundle)?;
                assert_no_secret_material(&audit.payload, "query_audit")
            })
            .collect();
        let written = self.write_with(Durability::Deferred, |tx| {
            for ((bundle, audit), _) in reads.iter().zip(&results).filter(|(_, r)| r.is_ok()) {
                insert_bundle(tx, bundle, None)?;
                insert_audit(tx, audit, bundle, None)?;
            }
            Ok(())
        });
        if let Err(e) = written {
            let message = match &e {
                Error::LedgerStorage(m, _) => m.clone(),
                other => other.to_string(),
            };
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(Error::LedgerStorage(message.clone(), None));
            }
        }
        results
    }

    /// Record a proposal with its evidence and audit, unless an active one exists for the object.
    pub fn create_proposal(
        &mut self,
        cs: &ChangeSet,
        bundle: &EvidenceBundle,
        audit: &QueryAudit,
    ) -> Result<Created> {
        let cs_value = cs.to_value();
        assert_no_secret_material(&cs_value, "change_set")?;
        super::check_bundle(bundle)?;
        assert_no_secret_material(&audit.payload, "query_audit")?;
        self.write(|tx| {
            let active: Option<String> = tx
                .query_row(
                    ACTIVE_LOOKUP,
                    params![cs.action, cs.scope.tenant_id, cs.scope.object_id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = active {
                let existing = get_proposal_tx(tx, &id)?.ok_or_else(|| Error::Internal("active proposal vanished".into()))?;
                // The read still happened: keep its evidence and audit, unlinked.
                insert_bundle(tx, bundle, None)?;
                insert_audit(tx, audit, bundle, None)?;
                if existing.change_set.patch == cs.patch && existing.change_set.before == cs.before {
                    return Ok(Created::Duplicate(Box::new(existing)));
                }
                return Err(Error::ProposalAlreadyExists { active_id: existing.proposal_id, state: existing.state.to_string() });
            }
            let now = &cs.created_at;
            exec(tx,
                "INSERT INTO proposals (proposal_id, proposal_version, proposal_hash, action, state, tenant_id, principal, capability, business_object, object_id, source_kind, source_id, source_schema, source_table, source_database_mutated, change_set_json, created_at, updated_at) VALUES (?1,?2,?3,?4,'pending_review',?5,?6,?4,?7,?8,?9,?10,?11,?12,0,?13,?14,?14)",
                params![cs.proposal_id, cs.proposal_version, cs.integrity.proposal_hash, cs.action, cs.scope.tenant_id, cs.principal.id, cs.scope.business_object, cs.scope.object_id, cs.source.kind, cs.source.source_id, cs.source.schema, cs.source.table, cs_value.to_string(), now],
            )?;
            event(tx, &cs.proposal_id, "proposal_created", &cs.principal.id, json!({"proposal_hash": cs.integrity.proposal_hash, "proposal_version": cs.proposal_version, "source_database_mutated": false}))?;
            insert_bundle(tx, bundle, Some(&cs.proposal_id))?;
            event(tx, &cs.proposal_id, "evidence_recorded", "runner", json!({"evidence_bundle_id": bundle.evidence_bundle_id, "item_count": bundle.items.len()}))?;
            insert_audit(tx, audit, bundle, Some(&cs.proposal_id))?;
            Ok(Created::New)
        })
    }

    /// A stored proposal by id.
    pub fn proposal(&mut self, id: &str) -> Result<StoredProposal> {
        self.with(|c| get_proposal_tx(c, id))?
            .ok_or_else(|| Error::ledger("PROPOSAL_NOT_FOUND", format!("proposal not found: {id}")))
    }

    /// Resolve `latest` (newest by creation) or return the id as given.
    pub fn resolve_selector(&mut self, selector: &str) -> Result<String> {
        if selector != "latest" {
            return Ok(selector
                .strip_prefix("replay_")
                .unwrap_or(selector)
                .to_string());
        }
        self.with(|c| {
            c.query_row(
                "SELECT proposal_id FROM proposals ORDER BY created_at DESC, rowid DESC LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .ok_or_else(|| {
                Error::ledger(
                    "PROPOSAL_NOT_FOUND",
                    "no proposals found in the local store",
                )
            })
        })
    }

    /// Newest proposals first, optionally filtered by state and tenant.
    pub fn list_proposals(
        &mut self,
        state: Option<&str>,
        tenant: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredProposal>> {
        super::check_state_filter(state)?;
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT proposal_id FROM proposals WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR tenant_id = ?2) ORDER BY created_at DESC, rowid DESC LIMIT ?3",
            )?;
            let ids: Vec<String> = stmt.query_map(params![state, tenant, limit], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            ids.iter().map(|id| get_proposal_tx(c, id).and_then(|p| p.ok_or_else(|| Error::Internal("listed proposal vanished".into())))).collect()
        })
    }

    /// Approve the exact stored hash and version, enforcing the required role.
    pub fn approve(
        &mut self,
        id: &str,
        approver: &Approver,
        reason: Option<&str>,
    ) -> Result<StoredProposal> {
        self.write(|tx| {
            let p = get_proposal_tx(tx, id)?.ok_or_else(|| {
                Error::ledger("PROPOSAL_NOT_FOUND", format!("proposal not found: {id}"))
            })?;
            super::check_approval(&p, approver)?;
            decide(tx, &p, approver, "approved", reason)?;
            get_proposal_tx(tx, id)?
                .ok_or_else(|| Error::Internal("approved proposal vanished".into()))
        })
    }

    /// Reject a pending or approved proposal. Terminal.
    pub fn reject(
        &mut self,
        id: &str,
        approver: &Approver,
        reason: &str,
    ) -> Result<StoredProposal> {
        self.write(|tx| {
            let p = get_proposal_tx(tx, id)?.ok_or_else(|| {
                Error::ledger("PROPOSAL_NOT_FOUND", format!("proposal not found: {id}"))
            })?;
            if !p.state.may_reject() {
                return Err(Error::ledger(
                    "PROPOSAL_NOT_REJECTABLE",
                    format!("proposal {id} is {} and cannot be rejected", p.state),
                ));
            }
            decide(tx, &p, approver, "rejected", Some(reason))?;
            get_proposal_tx(tx, id)?
                .ok_or_else(|| Error::Internal("rejected proposal vanished".into()))
        })
    }

    /// The approval that authorised the current state, if any.
    pub fn approval_record(&mut self, id: &str) -> Result<Option<Value>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT approver, approver_roles_json, role_assertion, proposal_hash, proposal_version, created_at FROM approvals WHERE proposal_id = ?1 AND status = 'approved' ORDER BY approval_id DESC LIMIT 1",
                [id],
                |r| {
                    Ok(json!({"approver": r.get::<_, String>(0)?, "roles": serde_json::from_str::<Value>(&r.get::<_, String>(1)?).unwrap_or(Value::Null), "role_assertion": r.get::<_, String>(2)?, "proposal_hash": r.get::<_, String>(3)?, "proposal_version": r.get::<_, u32>(4)?, "created_at": r.get::<_, String>(5)?}))
                },
            )
            .optional()?)
        })
    }

    /// Record the job about to run and move an approved proposal to `pending_worker`.
    pub fn prepare_job(&mut self, job: &WritebackJob, executor: &str, actor: &str) -> Result<()> {
        let job_value = job.to_value();
        assert_no_secret_material(&job_value, "writeback_job")?;
        self.write(|tx| {
            let p = get_proposal_tx(tx, &job.proposal_id)?.ok_or_else(|| Error::ledger("PROPOSAL_NOT_FOUND", format!("proposal not found: {}", job.proposal_id)))?;
            super::mode_gate(&p, "converted into a writeback job")?;
            if !p.state.may_apply() {
                return Err(Error::ledger("PROPOSAL_NOT_APPROVED", format!("proposal {} is {}, not approved for writeback", p.proposal_id, p.state)));
            }
            let now = now_iso();
            if p.state == ProposalState::Approved {
                exec(tx, "UPDATE proposals SET state = 'pending_worker', updated_at = ?2 WHERE proposal_id = ?1", params![p.proposal_id, now])?;
                event(tx, &p.proposal_id, "proposal_pending_worker", actor, json!({"proposal_hash": p.proposal_hash, "proposal_version": p.proposal_version}))?;
            }
            let inserted = exec(tx,
                "INSERT INTO writeback_jobs (writeback_job_id, proposal_id, proposal_hash, executor, status, job_json, created_at, updated_at) VALUES (?1,?2,?3,?4,'pending_worker',?5,?6,?6) ON CONFLICT(writeback_job_id) DO UPDATE SET job_json = excluded.job_json, status = 'pending_worker', updated_at = excluded.updated_at WHERE writeback_jobs.status <> 'applied'",
                params![job.writeback_job_id, job.proposal_id, job.proposal_hash, executor, job_value.to_string(), now],
            )?;
            if inserted > 0 && p.state == ProposalState::Approved {
                event(tx, &p.proposal_id, "writeback_job_recorded", actor, json!({"writeback_job_id": job.writeback_job_id, "proposal_hash": job.proposal_hash, "source_id": job.runner_scope.source_id, "executor": executor}))?;
            }
            Ok(())
        })
    }

    /// Writeback jobs whose proposal is still `pending_worker`: an apply started and never
    /// reported back (a crash, a killed process, a ledger write that failed), or is running now.
    /// Each with its executor type.
    pub fn pending_jobs(&mut self) -> Result<Vec<(WritebackJob, String)>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT j.job_json, j.executor FROM writeback_jobs j JOIN proposals p ON p.proposal_id = j.proposal_id WHERE p.state = 'pending_worker' AND j.status = 'pending_worker' ORDER BY j.created_at",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (json, executor) = row?;
                let value: Value = serde_json::from_str(&json)
                    .map_err(|e| Error::LedgerStorage(format!("stored job unreadable: {e}"), None))?;
                out.push((WritebackJob::parse(&value)?, executor));
            }
            Ok(out)
        })
    }

    /// `reconcile`: the source shows that a pending job never wrote; put its proposal back to
    /// `approved` (to be applied again or rejected) and say why in its events.
    pub fn release_job(&mut self, job: &WritebackJob, actor: &str, why: &str) -> Result<()> {
        self.write(|tx| {
            let now = now_iso();
            let moved = exec(tx, "UPDATE proposals SET state = 'approved', updated_at = ?2 WHERE proposal_id = ?1 AND state = 'pending_worker'", params![job.proposal_id, now])?;
            if moved == 0 {
                return Err(Error::ledger("PROPOSAL_NOT_PENDING", format!("proposal {} is no longer waiting on a writeback", job.proposal_id)));
            }
            exec(tx, "UPDATE writeback_jobs SET status = 'released', updated_at = ?2 WHERE writeback_job_id = ?1", params![job.writeback_job_id, now])?;
            event(tx, &job.proposal_id, "writeback_reconciled", actor, json!({"writeback_job_id": job.writeback_job_id, "outcome": "released", "reason": why}))
        })
    }

    /// Record an execution receipt. Returns whether a new receipt row was written (a retry
    /// that finds the change already applied only appends an event).
    pub fn record_receipt(&mut self, receipt: &ExecutionReceipt, retryable: bool) -> Result<bool> {
        self.write(|tx| {
            let p = get_proposal_tx(tx, &receipt.proposal_id)?.ok_or_else(|| Error::ledger("PROPOSAL_NOT_FOUND", format!("proposal not found: {}", receipt.proposal_id)))?;
            super::mode_gate(&p, "recorded with an execution receipt")?;
            let job_known: bool = tx
                .query_row("SELECT 1 FROM writeback_jobs WHERE writeback_job_id = ?1 AND proposal_id = ?2", params![receipt.writeback_job_id, receipt.proposal_id], |_| Ok(true))
                .optional()?
                .unwrap_or(false);
            if !job_known {
                return Err(Error::ledger("WRITEBACK_JOB_UNKNOWN", format!("no recorded job {} for proposal {}", receipt.writeback_job_id, receipt.proposal_id)));
            }
            if !p.state.may_apply() {
                return Err(Error::ledger("RECEIPT_STATE_INVALID", format!("proposal {} is {}; receipts are not accepted in that state", p.proposal_id, p.state)));
            }
            let success = matches!(receipt.status.as_str(), "applied" | "already_applied");
            let already_has_success: bool = tx
                .query_row("SELECT 1 FROM writeback_receipts WHERE proposal_id = ?1 AND status IN ('applied','already_applied') LIMIT 1", [&receipt.proposal_id], |_| Ok(true))
                .optional()?
                .unwrap_or(false);
            let payload = json!({"writeback_job_id": receipt.writeback_job_id, "rows_affected": receipt.rows_affected, "source_database_mutated": receipt.source_database_mutated, "receipt_hash": receipt.receipt_hash});
            if receipt.status == "applied" && receipt.source_database_mutated {
                // A concurrent retry may have recorded `already_applied` first while this attempt
                // was committing the change: the real application supersedes that placeholder.
                let placeholder: Option<i64> = tx
                    .query_row(
                        "SELECT receipt_id FROM writeback_receipts WHERE proposal_id = ?1 AND status = 'already_applied' AND NOT EXISTS (SELECT 1 FROM writeback_receipts WHERE proposal_id = ?1 AND status = 'applied') ORDER BY receipt_id LIMIT 1",
                        [&receipt.proposal_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(rid) = placeholder {
                    exec(tx,
                        "UPDATE writeback_receipts SET writeback_job_id = ?2, runner_id = ?3, status = 'applied', source_database_mutated = 1, receipt_json = ?4, created_at = ?5 WHERE receipt_id = ?1",
                        params![rid, receipt.writeback_job_id, receipt.runner_id, receipt.to_value().to_string(), receipt.executed_at],
                    )?;
                    exec(tx, "UPDATE proposals SET source_database_mutated = 1, updated_at = ?2 WHERE proposal_id = ?1", params![p.proposal_id, receipt.executed_at])?;
                    event(tx, &p.proposal_id, "writeback_applied", &receipt.runner_id, payload)?;
                    return Ok(true);
                }
            }
            if p.state == ProposalState::Applied || (success && already_has_success) {
                // Idempotent retry: the first receipt stands; the attempt is still on record, as
                // the no-op it was (it may carry the source's account of the first application).
                let (kind, payload) = if success {
                    ("writeback_already_applied".to_string(), json!({"writeback_job_id": receipt.writeback_job_id, "rows_affected": 0, "source_database_mutated": false, "receipt_hash": receipt.receipt_hash}))
                } else {
                    (format!("writeback_{}", receipt.status), payload)
                };
                event(tx, &p.proposal_id, &kind, &receipt.runner_id, payload)?;
                return Ok(false);
            }
            let mut stored = receipt.to_value();
            if retryable {
                stored["retryable"] = Value::Bool(true);
            }
            exec(tx,
                "INSERT INTO writeback_receipts (writeback_job_id, proposal_id, runner_id, status, idempotency_key, source_database_mutated, receipt_json, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                params![receipt.writeback_job_id, receipt.proposal_id, receipt.runner_id, receipt.status, receipt.idempotency_key, receipt.source_database_mutated, stored.to_string(), receipt.executed_at],
            )?;
            let state = ProposalState::after_receipt(&receipt.status, retryable).as_str();
            exec(tx,
                "UPDATE proposals SET state = ?2, source_database_mutated = MAX(source_database_mutated, ?3), updated_at = ?4 WHERE proposal_id = ?1",
                params![p.proposal_id, state, receipt.source_database_mutated, receipt.executed_at],
            )?;
            exec(tx, "UPDATE writeback_jobs SET status = ?2, updated_at = ?3 WHERE writeback_job_id = ?1", params![receipt.writeback_job_id, receipt.status, receipt.executed_at])?;
            event(tx, &p.proposal_id, &format!("writeback_{}", receipt.status), &receipt.runner_id, payload)?;
            Ok(true)
        })
    }

    /// Append an event (for example a dry-run outcome).
    pub fn record_event(
        &mut self,
        proposal_id: &str,
        kind: &str,
        actor: &str,
        payload: Value,
    ) -> Result<()> {
        assert_no_secret_material(&payload, "event")?;
        self.write(|tx| event(tx, proposal_id, kind, actor, payload))
    }

    /// Everything captured for a proposal, in order; the snapshot is kept in `replay_records`.
    pub fn replay(&mut self, id: &str) -> Result<Value> {
        self.replay_record(id, true)
    }

    /// The same record for display only (approval previews): nothing is written.
    pub fn replay_view(&mut self, id: &str) -> Result<Value> {
        self.replay_record(id, false)
    }

    fn replay_record(&mut self, id: &str, persist: bool) -> Result<Value> {
        let persist = persist && !self.read_only;
        let proposal = self.proposal(id)?;
        self.with(|c| {
            let tx = c.transaction_with_behavior(if persist { TransactionBehavior::Immediate } else { TransactionBehavior::Deferred })?;
            let rows = |sql: &str, f: &dyn Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Value>| -> Result<Vec<Value>> {
                let mut stmt = tx.prepare_cached(sql)?;
                let out = stmt.query_map([id], |r| f(r))?.collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(out)
            };
            let parse = |s: String| serde_json::from_str::<Value>(&s).unwrap_or(Value::Null);
            let events = rows("SELECT event_id, kind, actor, payload_json, created_at FROM proposal_events WHERE proposal_id = ?1 ORDER BY event_id", &|r| {
                Ok(json!({"event_id": r.get::<_, i64>(0)?, "kind": r.get::<_, String>(1)?, "actor": r.get::<_, String>(2)?, "payload": parse(r.get(3)?), "created_at": r.get::<_, String>(4)?}))
            })?;
            let approvals = rows("SELECT approval_id, approver, approver_roles_json, role_assertion, status, reason, proposal_hash, proposal_version, created_at FROM approvals WHERE proposal_id = ?1 ORDER BY approval_id", &|r| {
                Ok(json!({"approval_id": r.get::<_, i64>(0)?, "approver": r.get::<_, String>(1)?, "roles": parse(r.get(2)?), "role_assertion": r.get::<_, String>(3)?, "status": r.get::<_, String>(4)?, "reason": r.get::<_, Option<String>>(5)?, "proposal_hash": r.get::<_, String>(6)?, "proposal_version": r.get::<_, u32>(7)?, "created_at": r.get::<_, String>(8)?}))
            })?;
            let jobs = rows("SELECT writeback_job_id, executor, status, job_json, created_at, updated_at FROM writeback_jobs WHERE proposal_id = ?1 ORDER BY created_at", &|r| {
                Ok(json!({"writeback_job_id": r.get::<_, String>(0)?, "executor": r.get::<_, String>(1)?, "status": r.get::<_, String>(2)?, "job": parse(r.get(3)?), "created_at": r.get::<_, String>(4)?, "updated_at": r.get::<_, String>(5)?}))
            })?;
            let receipts = rows("SELECT receipt_id, writeback_job_id, runner_id, status, idempotency_key, source_database_mutated, receipt_json, created_at FROM writeback_receipts WHERE proposal_id = ?1 ORDER BY receipt_id", &|r| {
                Ok(json!({"receipt_id": r.get::<_, i64>(0)?, "writeback_job_id": r.get::<_, String>(1)?, "runner_id": r.get::<_, String>(2)?, "status": r.get::<_, String>(3)?, "idempotency_key": r.get::<_, String>(4)?, "source_database_mutated": r.get::<_, bool>(5)?, "receipt": parse(r.get(6)?), "created_at": r.get::<_, String>(7)?}))
            })?;
            let query_audit = rows("SELECT audit_id, evidence_bundle_id, source_id, query_fingerprint, table_name, row_count, payload_json, created_at FROM query_audit WHERE proposal_id = ?1 ORDER BY audit_id", &|r| {
                Ok(json!({"audit_id": r.get::<_, i64>(0)?, "evidence_bundle_id": r.get::<_, Option<String>>(1)?, "source_id": r.get::<_, String>(2)?, "query_fingerprint": r.get::<_, String>(3)?, "table_name": r.get::<_, String>(4)?, "row_count": r.get::<_, i64>(5)?, "payload": parse(r.get(6)?), "created_at": r.get::<_, String>(7)?}))
            })?;
            let mut evidence = rows("SELECT evidence_bundle_id, tenant_id, payload_json, created_at FROM evidence_bundles WHERE proposal_id = ?1 ORDER BY created_at, rowid", &|r| {
                Ok(json!({"evidence_bundle_id": r.get::<_, String>(0)?, "tenant_id": r.get::<_, String>(1)?, "payload": parse(r.get(2)?), "created_at": r.get::<_, String>(3)?}))
            })?;
            for b in evidence.iter_mut() {
                let bid = b["evidence_bundle_id"].as_str().unwrap_or_default().to_string();
                let mut stmt = tx.prepare_cached("SELECT item_json FROM evidence_items WHERE evidence_bundle_id = ?1 ORDER BY evidence_item_id")?;
                let items = stmt.query_map([&bid], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
                b["items"] = Value::Array(items.into_iter().map(parse).collect());
            }
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
                exec(&tx,
                    "INSERT OR REPLACE INTO replay_records (replay_id, proposal_id, payload_json, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![format!("replay_{id}"), id, record.to_string(), now_iso()],
                )?;
            }
            tx.commit()?;
            Ok(record)
        })
    }

    /// A stored evidence bundle with its items and query-audit rows.
    pub fn evidence_bundle(&mut self, id: &str) -> Result<Option<Value>> {
        self.with(|c| {
            let parse = |s: String| serde_json::from_str::<Value>(&s).unwrap_or(Value::Null);
            let bundle = c
                .query_row(
                    "SELECT evidence_bundle_id, proposal_id, tenant_id, principal, capability, source_id, source_table, business_object, object_id, query_fingerprint, payload_json, created_at FROM evidence_bundles WHERE evidence_bundle_id = ?1",
                    [id],
                    |r| {
                        Ok(json!({
                            "evidence_bundle_id": r.get::<_, String>(0)?, "proposal_id": r.get::<_, Option<String>>(1)?, "tenant_id": r.get::<_, String>(2)?,
                            "principal": r.get::<_, Option<String>>(3)?, "capability": r.get::<_, Option<String>>(4)?, "source_id": r.get::<_, Option<String>>(5)?,
                            "source_table": r.get::<_, Option<String>>(6)?, "business_object": r.get::<_, Option<String>>(7)?, "object_id": r.get::<_, Option<String>>(8)?,
                            "query_fingerprint": r.get::<_, Option<String>>(9)?, "payload": parse(r.get(10)?), "created_at": r.get::<_, String>(11)?,
                        }))
                    },
                )
                .optional()?;
            let Some(mut bundle) = bundle else { return Ok(None) };
            let mut stmt = c.prepare_cached("SELECT item_json FROM evidence_items WHERE evidence_bundle_id = ?1 ORDER BY evidence_item_id")?;
            let items = stmt.query_map([id], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
            bundle["items"] = Value::Array(items.into_iter().map(parse).collect());
            let mut stmt = c.prepare_cached("SELECT audit_id, source_id, query_fingerprint, table_name, row_count, payload_json, created_at FROM query_audit WHERE evidence_bundle_id = ?1 ORDER BY audit_id")?;
            let audits = stmt
                .query_map([id], |r| {
                    Ok(json!({"audit_id": r.get::<_, i64>(0)?, "source_id": r.get::<_, String>(1)?, "query_fingerprint": r.get::<_, String>(2)?, "table_name": r.get::<_, String>(3)?, "row_count": r.get::<_, i64>(4)?, "payload": parse(r.get(5)?), "created_at": r.get::<_, String>(6)?}))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            bundle["query_audit"] = Value::Array(audits);
            Ok(Some(bundle))
        })
    }

    /// Number of rows in a ledger table (tests, stats, benchmarks).
    pub fn count(&mut self, table: &str) -> Result<i64> {
        if !super::TABLES.contains(&table) {
            return Err(Error::Internal(format!("unknown ledger table {table}")));
        }
        let sql = format!("SELECT count(*) FROM {table}");
        self.with(|c| Ok(c.query_row(&sql, [], |r| r.get(0))?))
    }

    /// Evidence bundles, newest first, filtered (`evidence list`).
    pub fn list_evidence(&mut self, f: &super::ListFilter) -> Result<Vec<Value>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT b.evidence_bundle_id, b.proposal_id, b.tenant_id, b.principal, b.capability, b.source_id, b.source_table, b.business_object, b.object_id, b.query_fingerprint, b.created_at, \
                 (SELECT count(*) FROM evidence_items i WHERE i.evidence_bundle_id = b.evidence_bundle_id), \
                 (SELECT count(*) FROM query_audit q WHERE q.evidence_bundle_id = b.evidence_bundle_id) \
                 FROM evidence_bundles b \
                 WHERE (?1 IS NULL OR b.tenant_id = ?1) AND (?2 IS NULL OR b.principal = ?2) AND (?3 IS NULL OR b.capability = ?3) \
                 AND (?4 IS NULL OR b.proposal_id = ?4) AND (?5 IS NULL OR b.business_object IN (?5, ?5 || 's') OR b.business_object || 's' = ?5 OR b.source_table = ?5 OR b.source_table LIKE '%.' || ?5 OR b.source_table LIKE '%.' || ?5 || 's') \
                 AND (?6 IS NULL OR b.object_id = ?6) AND (?7 IS NULL OR b.source_id = ?7) \
                 AND (?8 IS NULL OR b.source_table = ?8 OR b.source_table LIKE '%.' || ?8) AND (?9 IS NULL OR b.query_fingerprint = ?9) \
                 AND (?10 IS NULL OR b.created_at >= ?10) AND (?11 IS NULL OR b.created_at <= ?11) AND (?12 IS NULL OR b.evidence_bundle_id = ?12) \
                 ORDER BY b.created_at DESC, b.evidence_bundle_id DESC LIMIT ?13",
            )?;
            let rows = stmt.query_map(
                params![f.tenant, f.principal, f.capability, f.proposal, f.object_type, f.object_id, f.source, f.table, f.query_fingerprint, f.from, f.to, f.evidence, f.limit],
                |r| {
                    Ok(json!({
                        "evidence_bundle_id": r.get::<_, String>(0)?, "proposal_id": r.get::<_, Option<String>>(1)?, "tenant_id": r.get::<_, String>(2)?,
                        "principal": r.get::<_, Option<String>>(3)?, "capability": r.get::<_, Option<String>>(4)?, "source_id": r.get::<_, Option<String>>(5)?,
                        "source_table": r.get::<_, Option<String>>(6)?, "business_object": r.get::<_, Option<String>>(7)?, "object_id": r.get::<_, Option<String>>(8)?,
                        "query_fingerprint": r.get::<_, Option<String>>(9)?, "created_at": r.get::<_, String>(10)?,
                        "item_count": r.get::<_, i64>(11)?, "query_audit_count": r.get::<_, i64>(12)?,
                    }))
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// One replay entry per proposal, newest first, filtered (`replay list`).
    pub fn list_replays(&mut self, f: &super::ListFilter) -> Result<Vec<Value>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT p.proposal_id, p.created_at, p.state, p.tenant_id, p.principal, p.action, p.business_object, p.object_id FROM proposals p \
                 WHERE (?1 IS NULL OR p.tenant_id = ?1) AND (?2 IS NULL OR p.principal = ?2) AND (?3 IS NULL OR p.action = ?3) \
                 AND (?4 IS NULL OR p.proposal_id = ?4) AND (?5 IS NULL OR p.business_object IN (?5, ?5 || 's') OR p.business_object || 's' = ?5 OR p.source_table = ?5 OR p.source_table IN (?5 || 's')) \
                 AND (?6 IS NULL OR p.object_id = ?6) AND (?7 IS NULL OR p.source_id = ?7) AND (?8 IS NULL OR p.source_table = ?8) \
                 AND (?9 IS NULL OR p.state = ?9) AND (?10 IS NULL OR p.created_at >= ?10) AND (?11 IS NULL OR p.created_at <= ?11) \
                 AND (?12 IS NULL OR EXISTS (SELECT 1 FROM evidence_bundles e WHERE e.proposal_id = p.proposal_id AND e.evidence_bundle_id = ?12)) \
                 AND (?13 IS NULL OR EXISTS (SELECT 1 FROM writeback_receipts r WHERE r.proposal_id = p.proposal_id AND r.receipt_id = ?13)) \
                 AND (?14 IS NULL OR EXISTS (SELECT 1 FROM writeback_receipts r WHERE r.proposal_id = p.proposal_id AND r.status = ?14)) \
                 ORDER BY p.created_at DESC, p.rowid DESC LIMIT ?15",
            )?;
            let rows = stmt.query_map(
                params![f.tenant, f.principal, f.capability, f.proposal, f.object_type, f.object_id, f.source, f.table, f.state, f.from, f.to, f.evidence, f.receipt, f.status, f.limit],
                |r| {
                    let id: String = r.get(0)?;
                    Ok(json!({
                        "replay_id": format!("replay_{id}"), "proposal_id": id, "created_at": r.get::<_, String>(1)?,
                        "state": r.get::<_, String>(2)?, "tenant_id": r.get::<_, String>(3)?, "principal": r.get::<_, Option<String>>(4)?,
                        "capability": r.get::<_, String>(5)?, "business_object": r.get::<_, String>(6)?, "object_id": r.get::<_, String>(7)?,
                    }))
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Query-audit rows, newest first, filtered (`query-audit list`).
    pub fn list_query_audit(&mut self, f: &super::ListFilter) -> Result<Vec<Value>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{QUERY_AUDIT_SELECT} \
                 WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR principal = ?2) AND (?3 IS NULL OR capability = ?3) \
                 AND (?4 IS NULL OR proposal_id = ?4) AND (?5 IS NULL OR business_object IN (?5, ?5 || 's') OR business_object || 's' = ?5 OR table_name = ?5 OR table_name LIKE '%.' || ?5 OR table_name LIKE '%.' || ?5 || 's') \
                 AND (?6 IS NULL OR object_id = ?6) AND (?7 IS NULL OR source_id = ?7) \
                 AND (?8 IS NULL OR table_name = ?8 OR table_name LIKE '%.' || ?8) AND (?9 IS NULL OR query_fingerprint = ?9) \
                 AND (?10 IS NULL OR created_at >= ?10) AND (?11 IS NULL OR created_at <= ?11) AND (?12 IS NULL OR evidence_bundle_id = ?12) \
                 AND (?13 IS NULL OR primary_key_value = ?13) \
                 ORDER BY created_at DESC, audit_id DESC LIMIT ?14"
            ))?;
            let rows = stmt.query_map(
                params![f.tenant, f.principal, f.capability, f.proposal, f.object_type, f.object_id, f.source, f.table, f.query_fingerprint, f.from, f.to, f.evidence, f.primary_key, f.limit],
                query_audit_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// One query-audit row by its number (`query-audit show`).
    pub fn query_audit(&mut self, id: i64) -> Result<Option<Value>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("{QUERY_AUDIT_SELECT} WHERE audit_id = ?1"),
                [id],
                query_audit_row,
            )
            .optional()?)
        })
    }

    /// Remove (or, with `dry_run`, count) the evidence and query audit of reads recorded
    /// before `cutoff` that no proposal references. Proposals, approvals, jobs, receipts,
    /// events and a proposal's own evidence are never pruned.
    pub fn prune_reads(&mut self, cutoff: &str, dry_run: bool) -> Result<Value> {
        if !dry_run && self.read_only {
            return Err(Error::ledger(
                "LOCAL_STORE_READ_ONLY",
                "the ledger is open read-only; nothing can be pruned",
            ));
        }
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            const OLD_BUNDLES: &str = "SELECT evidence_bundle_id FROM evidence_bundles WHERE proposal_id IS NULL AND created_at < ?1";
            let audit_where = format!(
                "proposal_id IS NULL AND ((evidence_bundle_id IS NULL AND created_at < ?1) OR evidence_bundle_id IN ({OLD_BUNDLES}))"
            );
            let items_where = format!("evidence_bundle_id IN ({OLD_BUNDLES})");
            let bundles_where = "proposal_id IS NULL AND created_at < ?1";
            let mut deleted = serde_json::Map::new();
            for (table, filter) in [
                ("query_audit", audit_where.as_str()),
                ("evidence_items", items_where.as_str()),
                ("evidence_bundles", bundles_where),
            ] {
                let n: i64 = tx.query_row(&format!("SELECT count(*) FROM {table} WHERE {filter}"), [cutoff], |r| r.get(0))?;
                if !dry_run && n > 0 {
                    tx.execute(&format!("DELETE FROM {table} WHERE {filter}"), [cutoff])?;
                }
                deleted.insert(table.to_string(), json!(n));
            }
            tx.commit()?;
            Ok(json!({"cutoff": cutoff, "dry_run": dry_run, "deleted": deleted}))
        })
    }

    /// Proposal events after `after_id`, filtered: the newest `limit` of them, oldest first
    /// (`events tail`).
    pub fn list_events(&mut self, f: &super::EventFilter) -> Result<Vec<Value>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT event_id, proposal_id, kind, actor, payload_json, created_at FROM proposal_events \
                 WHERE event_id > ?1 AND (?2 IS NULL OR proposal_id = ?2) AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR actor = ?4) \
                 AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at <= ?6) \
                 ORDER BY event_id DESC LIMIT ?7",
            )?;
            let rows = stmt.query_map(
                params![f.after_id, f.proposal, f.kind, f.actor, f.from, f.to, f.limit],
                |r| {
                    let payload: Value = serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or(Value::Null);
                    Ok(json!({"event_id": r.get::<_, i64>(0)?, "proposal_id": r.get::<_, String>(1)?, "kind": r.get::<_, String>(2)?,
                              "actor": r.get::<_, String>(3)?, "payload": payload, "created_at": r.get::<_, String>(5)?}))
                },
            )?;
            let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            out.reverse();
            Ok(out)
        })
    }

    /// Rows in every table, and the file's size in pages (`store stats`).
    pub fn stats(&mut self) -> Result<Value> {
        self.with(|c| {
            let mut tables = serde_json::Map::new();
            for t in super::TABLES {
                let n: i64 = c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
                tables.insert(t.to_string(), json!(n));
            }
            let (pages, size) = page_stats(c)?;
            Ok(json!({"tables": tables, "page_count": pages, "page_size": size, "approx_bytes": pages * size}))
        })
    }

    /// Recompute every digest and check the event order (`store check`): `{checked, problems}`,
    /// each problem `{code, proposal_id, detail}`.
    pub fn check(&mut self) -> Result<Value> {
        self.with(|c| {
            let mut problems = Vec::new();
            let integrity: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            if integrity != "ok" {
                problems.push(json!({"code": "FILE_INTEGRITY", "proposal_id": "", "detail": integrity}));
            }
            let mut proposals = 0u64;
            let mut stmt = c.prepare("SELECT proposal_id, proposal_hash, state, change_set_json FROM proposals ORDER BY created_at")?;
            let rows: Vec<(String, String, String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, hash, state, cs_json) in rows {
                proposals += 1;
                let bundle_id = serde_json::from_str::<Value>(&cs_json).ok().and_then(|v| v["evidence"]["bundle_id"].as_str().map(String::from)).unwrap_or_default();
                let evidence_present = c.query_row("SELECT count(*) FROM evidence_bundles WHERE evidence_bundle_id = ?1", [&bundle_id], |r| r.get::<_, i64>(0))? > 0;
                let other_hash = |table: &str| -> rusqlite::Result<bool> {
                    c.query_row(&format!("SELECT count(*) FROM {table} WHERE proposal_id = ?1 AND proposal_hash <> ?2"), params![id, hash], |r| r.get::<_, i64>(0)).map(|n| n > 0)
                };
                let (other_hash_approvals, other_hash_jobs) = (other_hash("approvals")?, other_hash("writeback_jobs")?);
                let mut ev = c.prepare_cached("SELECT kind, created_at FROM proposal_events WHERE proposal_id = ?1 ORDER BY event_id")?;
                let events: Vec<(String, String)> = ev.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
                let mut rc = c.prepare_cached("SELECT receipt_json, status FROM writeback_receipts WHERE proposal_id = ?1 ORDER BY receipt_id")?;
                let receipts: Vec<(String, String)> = rc.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
                super::check_proposal(
                    &super::CheckInput { proposal_id: &id, proposal_hash: &hash, state: &state, change_set_json: &cs_json, evidence_present, other_hash_approvals, other_hash_jobs, events: &events, receipts: &receipts },
                    &mut problems,
                );
            }
            Ok(json!({"checked": {"proposals": proposals}, "problems": problems}))
        })
    }

    /// Rebuild the file to reclaim free pages. Returns the approximate size before and after.
    pub fn vacuum(&mut self) -> Result<(i64, i64)> {
        if self.read_only {
            return Err(Error::ledger(
                "LOCAL_STORE_READ_ONLY",
                "the ledger is open read-only; it cannot be vacuumed",
            ));
        }
        self.with(|c| {
            let (p, s) = page_stats(c)?;
            c.execute_batch("VACUUM")?;
            let (p2, s2) = page_stats(c)?;
            Ok((p * s, p2 * s2))
        })
    }

    /// Execution receipts, newest first, filtered (`receipts list`).
    pub fn list_receipts(&mut self, f: &super::ReceiptFilter) -> Result<Vec<Value>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT receipt_id, writeback_job_id, proposal_id, runner_id, status, idempotency_key, source_database_mutated, receipt_json, created_at FROM writeback_receipts \
                 WHERE (?1 IS NULL OR proposal_id = ?1) AND (?2 IS NULL OR writeback_job_id = ?2) AND (?3 IS NULL OR idempotency_key = ?3) \
                 AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at <= ?6) \
                 ORDER BY receipt_id DESC LIMIT ?7",
            )?;
            let rows = stmt.query_map(
                params![f.proposal, f.writeback_job, f.idempotency_key, f.status, f.from, f.to, f.limit],
                receipt_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// One execution receipt by its number (`receipts show`).
    pub fn receipt(&mut self, id: i64) -> Result<Option<Value>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT receipt_id, writeback_job_id, proposal_id, runner_id, status, idempotency_key, source_database_mutated, receipt_json, created_at FROM writeback_receipts WHERE receipt_id = ?1",
                [id],
                receipt_row,
            )
            .optional()?)
        })
    }

    /// Every row of one ledger table, oldest first, as `{column: value}` objects with the
    /// `*_json` columns parsed and flags as booleans (`store migrate`).
    pub fn export_table(&mut self, table: &str) -> Result<Vec<Value>> {
        if !super::TABLES.contains(&table) {
            return Err(Error::Internal(format!("unknown ledger table {table}")));
        }
        let order = if table == "proposals" {
            "created_at, rowid"
        } else {
            "rowid"
        };
        self.with(|c| {
            let mut stmt = c.prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))?;
            let names: Vec<String> = stmt.column_names().iter().map(|n| n.to_string()).collect();
            let rows = stmt.query_map([], |r| {
                let mut row = serde_json::Map::new();
                for (i, name) in names.iter().enumerate() {
                    use rusqlite::types::ValueRef;
                    let v = match r.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) if name == "source_database_mutated" => {
                            Value::Bool(n != 0)
                        }
                        ValueRef::Integer(n) => json!(n),
                        ValueRef::Real(x) => json!(x),
                        ValueRef::Text(t) => {
                            let t = String::from_utf8_lossy(t);
                            if name.ends_with("_json") {
                                serde_json::from_str(&t).unwrap_or(Value::String(t.into_owned()))
                            } else {
                                Value::String(t.into_owned())
                            }
                        }
                        ValueRef::Blob(_) => Value::Null,
                    };
                    row.insert(name.clone(), v);
                }
                Ok(Value::Object(row))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The query plan of the active-proposal lookup that runs on every propose.
    #[doc(hidden)]
    pub fn active_lookup_plan(&mut self) -> Result<String> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {ACTIVE_LOOKUP}"))?;
            let rows = stmt
                .query_map(params!["a", "t", "o"], |r| r.get::<_, String>(3))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows.join("; "))
        })
    }

    /// Direct connection access for tests and tooling in this crate.
    #[doc(hidden)]
    pub fn raw<T>(&mut self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.with(|c| Ok(f(c)?))
    }
}

/// Page count and page size of the ledger file.
fn page_stats(c: &Connection) -> rusqlite::Result<(i64, i64)> {
    let pages: i64 = c.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let size: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
    Ok((pages, size))
}

const QUERY_AUDIT_SELECT: &str = "SELECT audit_id, proposal_id, evidence_bundle_id, source_id, query_fingerprint, table_name, row_count, payload_json, tenant_id, principal, capability, business_object, object_id, primary_key_value, created_at FROM query_audit";

/// A query-audit row as JSON.
fn query_audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let payload: Value = serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or(Value::Null);
    Ok(json!({
        "audit_id": r.get::<_, i64>(0)?,
        "proposal_id": r.get::<_, Option<String>>(1)?,
        "evidence_bundle_id": r.get::<_, Option<String>>(2)?,
        "source_id": r.get::<_, String>(3)?,
        "query_fingerprint": r.get::<_, String>(4)?,
        "table_name": r.get::<_, String>(5)?,
        "row_count": r.get::<_, i64>(6)?,
        "payload": payload,
        "tenant_id": r.get::<_, Option<String>>(8)?,
        "principal": r.get::<_, Option<String>>(9)?,
        "capability": r.get::<_, Option<String>>(10)?,
        "business_object": r.get::<_, Option<String>>(11)?,
        "object_id": r.get::<_, Option<String>>(12)?,
        "primary_key_value": r.get::<_, Option<String>>(13)?,
        "created_at": r.get::<_, String>(14)?,
    }))
}

/// A receipt row as JSON: the stored receipt with its number and when it was recorded.
fn receipt_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let stored: Value = serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or(Value::Null);
    Ok(json!({
        "receipt_id": r.get::<_, i64>(0)?,
        "writeback_job_id": r.get::<_, String>(1)?,
        "proposal_id": r.get::<_, String>(2)?,
        "runner_id": r.get::<_, String>(3)?,
        "status": r.get::<_, String>(4)?,
        "idempotency_key": r.get::<_, String>(5)?,
        "source_database_mutated": r.get::<_, bool>(6)?,
        "created_at": r.get::<_, String>(8)?,
        "receipt": stored,
    }))
}

/// Refuse a ledger whose schema is newer than this runner knows: writing into it could break
/// what the newer runner relies on.
fn check_schema_version(version: i64) -> Result<()> {
    if version as usize > schema::MIGRATIONS.len() {
        return Err(Error::ledger(
            "LEDGER_SCHEMA_TOO_NEW",
            format!(
                "the ledger is at schema version {version}, written by a newer synapsor-runner (this one knows up to {}); upgrade synapsor-runner to use it",
                schema::MIGRATIONS.len()
            ),
        ));
    }
    Ok(())
}

/// Create an empty ledger file readable by its owner only, and its missing folders `0700`.
fn create_private(path: &Path) -> Result<()> {
    let storage = |e: std::io::Error, what: &Path| {
        Error::LedgerStorage(format!("cannot create {}: {e}", what.display()), None)
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(parent).map_err(|e| storage(e, parent))?;
    }
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    file.open(path).map(drop).map_err(|e| storage(e, path))
}

/// Whether this process may write the ledger file (and so open it for writing).
fn writable(path: &Path) -> bool {
    std::fs::OpenOptions::new().write(true).open(path).is_ok()
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    check_schema_version(current)?;
    if current as usize >= schema::MIGRATIONS.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the write lock.
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    check_schema_version(current)?;
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

fn decide(
    tx: &Transaction<'_>,
    p: &StoredProposal,
    approver: &Approver,
    status: &str,
    reason: Option<&str>,
) -> Result<()> {
    let now = now_iso();
    exec(
        tx,
        "INSERT INTO approvals (proposal_id, proposal_version, proposal_hash, approver, approver_roles_json, role_assertion, status, reason, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
        params![
            p.proposal_id,
            p.proposal_version,
            p.proposal_hash,
            approver.id,
            json!(approver.roles).to_string(),
            approver.role_assertion,
            status,
            reason,
            now
        ],
    )?;
    exec(
        tx,
        "UPDATE proposals SET state = ?2, updated_at = ?3 WHERE proposal_id = ?1",
        params![p.proposal_id, status, now],
    )?;
    event(
        tx,
        &p.proposal_id,
        &format!("proposal_{status}"),
        &approver.id,
        json!({"proposal_hash": p.proposal_hash, "proposal_version": p.proposal_version, "reason": reason, "roles": approver.roles, "role_assertion": approver.role_assertion}),
    )
}

fn event(
    tx: &Transaction<'_>,
    proposal_id: &str,
    kind: &str,
    actor: &str,
    payload: Value,
) -> Result<()> {
    exec(
        tx,
        "INSERT INTO proposal_events (proposal_id, kind, actor, payload_json, created_at) VALUES (?1,?2,?3,?4,?5)",
        params![proposal_id, kind, actor, payload.to_string(), now_iso()],
    )?;
    Ok(())
}

fn insert_bundle(
    tx: &Transaction<'_>,
    b: &EvidenceBundle,
    proposal_id: Option<&str>,
) -> Result<()> {
    let now = now_iso();
    exec(
        tx,
        "INSERT OR REPLACE INTO evidence_bundles (evidence_bundle_id, proposal_id, tenant_id, principal, capability, source_id, source_table, business_object, object_id, query_fingerprint, payload_json, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
        params![
            b.evidence_bundle_id,
            proposal_id,
            b.tenant_id,
            b.principal,
            b.capability,
            b.source_id,
            b.source_table,
            b.business_object,
            b.object_id,
            b.query_fingerprint,
            b.payload.to_string(),
            now
        ],
    )?;
    for item in &b.items {
        exec(
            tx,
            "INSERT INTO evidence_items (evidence_bundle_id, item_json, created_at) VALUES (?1,?2,?3)",
            params![b.evidence_bundle_id, item.to_string(), now],
        )?;
    }
    Ok(())
}

fn insert_audit(
    tx: &Transaction<'_>,
    a: &QueryAudit,
    b: &EvidenceBundle,
    proposal_id: Option<&str>,
) -> Result<()> {
    exec(
        tx,
        "INSERT INTO query_audit (proposal_id, evidence_bundle_id, source_id, query_fingerprint, table_name, row_count, payload_json, tenant_id, principal, capability, business_object, object_id, primary_key_value, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
        params![
            proposal_id,
            b.evidence_bundle_id,
            a.source_id,
            a.query_fingerprint,
            a.table_name,
            a.row_count as i64,
            a.payload.to_string(),
            b.tenant_id,
            b.principal,
            b.capability,
            b.business_object,
            b.object_id,
            a.primary_key_value,
            now_iso()
        ],
    )?;
    Ok(())
}

fn get_proposal_tx(c: &Connection, id: &str) -> Result<Option<StoredProposal>> {
    let mut stmt = c.prepare_cached(
        "SELECT proposal_id, proposal_version, proposal_hash, action, state, tenant_id, principal, business_object, object_id, source_kind, source_id, source_schema, source_table, source_database_mutated, change_set_json, created_at, updated_at FROM proposals WHERE proposal_id = ?1",
    )?;
    let row = stmt
        .query_row([id], |r| {
            Ok(ProposalRow {
                proposal_id: r.get(0)?,
                proposal_version: r.get(1)?,
                proposal_hash: r.get(2)?,
                action: r.get(3)?,
                state: r.get(4)?,
                tenant_id: r.get(5)?,
                principal: r.get(6)?,
                business_object: r.get(7)?,
                object_id: r.get(8)?,
                source_kind: r.get(9)?,
                source_id: r.get(10)?,
                source_schema: r.get(11)?,
                source_table: r.get(12)?,
                source_database_mutated: r.get(13)?,
                change_set_json: r.get(14)?,
                created_at: r.get(15)?,
                updated_at: r.get(16)?,
            })
        })
        .optional()?;
    row.map(ProposalRow::into_stored).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(l: &SqliteLedger) -> i64 {
        l.conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    }

    /// 2 is FULL, 1 is NORMAL. Every write but a read's evidence is synced before it returns,
    /// whatever was written before it.
    #[test]
    fn writes_are_synced_except_a_reads_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = SqliteLedger::open(&dir.path().join("l.db")).unwrap();
        assert_eq!(synchronous(&l), 2, "opened synced");
        let noop = |_: &Transaction<'_>| Ok(());
        l.write_with(Durability::Deferred, noop).unwrap();
        assert_eq!(synchronous(&l), 1);
        l.write(noop).unwrap();
        assert_eq!(synchronous(&l), 2);
        l.write(noop).unwrap();
        assert_eq!(synchronous(&l), 2);
        l.write_with(Durability::Deferred, noop).unwrap();
        l.write_with(Durability::Deferred, noop).unwrap();
        assert_eq!(synchronous(&l), 1);
        l.record_event("wrp_none", "noted", "test", json!({})).ok();
        assert_eq!(synchronous(&l), 2, "an event is synced");
    }
}
