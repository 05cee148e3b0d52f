//! Versioned migrations of the PostgreSQL ledger. The tables and columns are the SQLite
//! ledger's (so a SQLite ledger copies over column for column); JSON documents are `json`, which
//! keeps each one exactly as recorded (key order included: a row's columns show in the order the
//! source returned them), and the database itself enforces what the SQLite ledger enforces
//! in its write path: one active proposal per object, and append-only events.

/// Ordered migrations; the position + 1 is the version recorded in `ledger_migrations` after
/// it ran. Each runs in the search path of the ledger's schema.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE proposals (
  proposal_id TEXT PRIMARY KEY,
  seq BIGSERIAL NOT NULL,
  proposal_version INTEGER NOT NULL,
  proposal_hash TEXT NOT NULL,
  action TEXT NOT NULL,
  state TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  principal TEXT,
  capability TEXT,
  business_object TEXT NOT NULL,
  object_id TEXT NOT NULL,
  source_kind TEXT NOT NULL,
  source_id TEXT NOT NULL,
  source_schema TEXT NOT NULL,
  source_table TEXT NOT NULL,
  source_database_mutated BOOLEAN NOT NULL DEFAULT false,
  change_set_json JSON NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX proposals_one_active_per_object ON proposals(action, tenant_id, object_id)
  WHERE state IN ('pending_review', 'approved', 'pending_worker');
CREATE TABLE proposal_events (
  event_id BIGSERIAL PRIMARY KEY,
  proposal_id TEXT NOT NULL REFERENCES proposals(proposal_id),
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  payload_json JSON NOT NULL,
  created_at TEXT NOT NULL
);
CREATE FUNCTION proposal_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'proposal_events are append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER proposal_events_no_update BEFORE UPDATE OR DELETE ON proposal_events
  FOR EACH ROW EXECUTE FUNCTION proposal_events_append_only();
CREATE TRIGGER proposal_events_no_truncate BEFORE TRUNCATE ON proposal_events
  FOR EACH STATEMENT EXECUTE FUNCTION proposal_events_append_only();
CREATE TABLE approvals (
  approval_id BIGSERIAL PRIMARY KEY,
  proposal_id TEXT NOT NULL REFERENCES proposals(proposal_id),
  proposal_version INTEGER NOT NULL,
  proposal_hash TEXT NOT NULL,
  approver TEXT NOT NULL,
  approver_roles_json JSON NOT NULL,
  role_assertion TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE writeback_jobs (
  writeback_job_id TEXT PRIMARY KEY,
  proposal_id TEXT NOT NULL REFERENCES proposals(proposal_id),
  proposal_hash TEXT NOT NULL,
  executor TEXT NOT NULL,
  status TEXT NOT NULL,
  job_json JSON NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE writeback_receipts (
  receipt_id BIGSERIAL PRIMARY KEY,
  writeback_job_id TEXT NOT NULL REFERENCES writeback_jobs(writeback_job_id),
  proposal_id TEXT NOT NULL REFERENCES proposals(proposal_id),
  runner_id TEXT NOT NULL,
  status TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  source_database_mutated BOOLEAN NOT NULL,
  receipt_json JSON NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE evidence_bundles (
  evidence_bundle_id TEXT PRIMARY KEY,
  proposal_id TEXT REFERENCES proposals(proposal_id),
  tenant_id TEXT NOT NULL,
  principal TEXT,
  capability TEXT,
  source_id TEXT,
  source_table TEXT,
  business_object TEXT,
  object_id TEXT,
  query_fingerprint TEXT,
  payload_json JSON NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE evidence_items (
  evidence_item_id BIGSERIAL PRIMARY KEY,
  evidence_bundle_id TEXT NOT NULL REFERENCES evidence_bundles(evidence_bundle_id),
  item_json JSON NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE query_audit (
  audit_id BIGSERIAL PRIMARY KEY,
  proposal_id TEXT REFERENCES proposals(proposal_id),
  evidence_bundle_id TEXT REFERENCES evidence_bundles(evidence_bundle_id),
  source_id TEXT NOT NULL,
  query_fingerprint TEXT NOT NULL,
  table_name TEXT NOT NULL,
  row_count BIGINT NOT NULL,
  payload_json JSON NOT NULL,
  tenant_id TEXT,
  principal TEXT,
  capability TEXT,
  business_object TEXT,
  object_id TEXT,
  primary_key_value TEXT,
  created_at TEXT NOT NULL
);
CREATE TABLE replay_records (
  replay_id TEXT PRIMARY KEY,
  proposal_id TEXT NOT NULL REFERENCES proposals(proposal_id),
  payload_json JSON NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE runner_state (
  key TEXT PRIMARY KEY,
  value_json JSON NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX idx_proposals_created ON proposals(created_at, seq);
CREATE INDEX idx_proposals_tenant_created ON proposals(tenant_id, created_at);
CREATE INDEX idx_proposals_action_created ON proposals(action, created_at);
CREATE INDEX idx_proposals_principal_created ON proposals(principal, created_at);
CREATE INDEX idx_proposals_object_created ON proposals(business_object, object_id, created_at);
CREATE INDEX idx_proposals_state_created ON proposals(state, created_at);
CREATE INDEX idx_proposals_source_table_created ON proposals(source_id, source_table, created_at);
CREATE INDEX idx_proposal_events_proposal_id ON proposal_events(proposal_id, event_id);
CREATE INDEX idx_proposal_events_kind_created ON proposal_events(kind, created_at);
CREATE INDEX idx_approvals_proposal_id ON approvals(proposal_id);
CREATE INDEX idx_approvals_status_created ON approvals(status, created_at);
CREATE INDEX idx_writeback_jobs_proposal_id ON writeback_jobs(proposal_id);
CREATE INDEX idx_writeback_jobs_pending ON writeback_jobs(status) WHERE status = 'pending_worker';
CREATE INDEX idx_writeback_receipts_proposal_id ON writeback_receipts(proposal_id);
CREATE INDEX idx_writeback_receipts_writeback_job ON writeback_receipts(writeback_job_id);
CREATE INDEX idx_writeback_receipts_idempotency_key ON writeback_receipts(idempotency_key);
CREATE INDEX idx_writeback_receipts_status_created ON writeback_receipts(status, created_at);
CREATE INDEX idx_evidence_bundles_tenant_created ON evidence_bundles(tenant_id, created_at);
CREATE INDEX idx_evidence_bundles_proposal_id ON evidence_bundles(proposal_id);
CREATE INDEX idx_evidence_bundles_created ON evidence_bundles(created_at);
CREATE INDEX idx_evidence_bundles_capability_created ON evidence_bundles(capability, created_at);
CREATE INDEX idx_evidence_bundles_principal_created ON evidence_bundles(principal, created_at);
CREATE INDEX idx_evidence_bundles_object_created ON evidence_bundles(business_object, object_id, created_at);
CREATE INDEX idx_evidence_bundles_source_table_created ON evidence_bundles(source_id, source_table, created_at);
CREATE INDEX idx_evidence_bundles_fingerprint_created ON evidence_bundles(query_fingerprint, created_at);
CREATE INDEX idx_evidence_items_bundle_id ON evidence_items(evidence_bundle_id);
CREATE INDEX idx_query_audit_proposal_id ON query_audit(proposal_id);
CREATE INDEX idx_query_audit_evidence_id ON query_audit(evidence_bundle_id);
CREATE INDEX idx_query_audit_source_table_created ON query_audit(source_id, table_name, created_at);
CREATE INDEX idx_query_audit_fingerprint_created ON query_audit(query_fingerprint, created_at);
CREATE INDEX idx_query_audit_created ON query_audit(created_at);
CREATE INDEX idx_query_audit_tenant_created ON query_audit(tenant_id, created_at);
CREATE INDEX idx_query_audit_capability_created ON query_audit(capability, created_at);
CREATE INDEX idx_query_audit_principal_created ON query_audit(principal, created_at);
CREATE INDEX idx_query_audit_object_created ON query_audit(business_object, object_id, created_at);
CREATE INDEX idx_query_audit_primary_key_created ON query_audit(primary_key_value, created_at);
CREATE INDEX idx_replay_records_proposal_id ON replay_records(proposal_id);
CREATE INDEX idx_replay_records_created ON replay_records(created_at);
"#];
