//! The core lifecycle against real PostgreSQL: each test gets its own database loaded with the
//! reference billing example. Covers reads, proposals, approval, apply, retries, conflicts,
//! tenancy, concurrency, and the job-tampering rows W1–W11 of the security checklist.

mod common;

use common::PgDb;
use serde_json::{Value, json};
use synapsor_runner::apply::job_from_proposal;
use synapsor_runner::protocol::WritebackJob;
use synapsor_runner::{ApplyOptions, Approver, Runner, TrustedContext};

type Tamper = Box<dyn Fn(&mut Value)>;

const WAIVER: &str = "billing.propose_late_fee_waiver";
const INSPECT: &str = "billing.inspect_invoice";

fn acme() -> TrustedContext {
    TrustedContext::new("acme", "support_agent_17")
}

fn lead() -> Approver {
    Approver::new("lead_1").role("billing_lead")
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        runner_id: "test_runner".into(),
        ..ApplyOptions::default()
    }
}

fn invoice(db: &PgDb, id: &str) -> String {
    db.sql(&format!("SELECT late_fee_cents || '|' || coalesce(waiver_reason, '<null>') || '|' || updated_at FROM invoices WHERE id = '{id}'"))
}

fn table_digest(db: &PgDb) -> String {
    db.sql("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM invoices t")
}

fn receipt_rows(db: &PgDb) -> String {
    let exists = db.sql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'synapsor_writeback_receipts'");
    if exists == "0" {
        return "<no receipt table>".into();
    }
    db.sql("SELECT coalesce(string_agg(status, ',' ORDER BY idempotency_key), '') FROM synapsor_writeback_receipts")
}

async fn propose_waiver(runner: &Runner, invoice_id: &str, reason: &str) -> String {
    runner
        .propose(
            WAIVER,
            json!({"invoice_id": invoice_id, "reason": reason}),
            &acme(),
        )
        .await
        .expect("proposal")
        .proposal_id
}

async fn approved_waiver(runner: &Runner) -> String {
    let id = propose_waiver(runner, "INV-3001", "customer requested review").await;
    runner.approve(&id, &lead()).await.expect("approve");
    id
}

async fn job_value(runner: &Runner, id: &str) -> Value {
    let p = runner.ledger().proposal(id).await.unwrap();
    job_from_proposal(&p, "postgres", &opts()).to_value()
}

async fn apply_tampered(runner: &Runner, job: Value) -> synapsor_runner::Error {
    match WritebackJob::parse(&job) {
        Err(e) => e,
        Ok(job) => runner
            .apply_job(&job, &opts())
            .await
            .expect_err("tampered job must be refused"),
    }
}

#[tokio::test]
async fn read_returns_the_scoped_row_with_evidence_and_audit() {
    let db = PgDb::billing();
    let runner = db.runner();
    let r = runner
        .inspect(INSPECT, json!({"invoice_id": "INV-3001"}), &acme())
        .await
        .unwrap();
    assert_eq!(r.data["late_fee_cents"], json!(5500));
    assert_eq!(r.data["tenant_id"], json!("acme"));
    assert_eq!(r.data["updated_at"], json!("2026-06-20T14:31:08Z"));
    assert!(r.evidence_bundle_id.starts_with("ev_"));
    assert_eq!(runner.ledger().count("evidence_bundles").await.unwrap(), 1);
    assert_eq!(runner.ledger().count("query_audit").await.unwrap(), 1);
    let audit: String = runner
        .ledger()
        .raw(|c| c.query_row("SELECT payload_json FROM query_audit", [], |r| r.get(0)))
        .await
        .unwrap();
    assert!(audit.contains("WHERE id = ? AND tenant_id = ?"), "{audit}");
    assert!(
        !audit.contains("INV-3001") && !audit.contains("acme"),
        "parameters must never be stored: {audit}"
    );
}

#[tokio::test]
async fn propose_leaves_the_source_unchanged() {
    let db = PgDb::billing();
    let runner = db.runner();
    let before = table_digest(&db);
    let p = runner
        .propose(
            WAIVER,
            json!({"invoice_id": "INV-3001", "reason": "late payment was a bank error"}),
            &acme(),
        )
        .await
        .unwrap();
    assert_eq!(
        table_digest(&db),
        before,
        "propose must not write to the source"
    );
    assert_eq!(receipt_rows(&db), "<no receipt table>");
    assert_eq!(p.state, "pending_review");
    assert_eq!(
        p.diff["late_fee_cents"],
        json!({"before": 5500, "proposed": 0})
    );
    assert_eq!(
        p.diff["waiver_reason"],
        json!({"before": null, "proposed": "late payment was a bank error"})
    );
    let stored = runner.ledger().proposal(&p.proposal_id).await.unwrap();
    assert_eq!(
        stored.change_set.guards.expected_version.value,
        json!("2026-06-20T14:31:08Z")
    );
    assert_eq!(stored.change_set.compute_hash(), stored.proposal_hash);
}

#[tokio::test]
async fn approval_requires_the_configured_role() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = propose_waiver(&runner, "INV-3001", "goodwill").await;
    let err = runner
        .approve(&id, &Approver::new("agent_lead").role("support_lead"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "APPROVER_ROLE_MISSING");
    assert_eq!(
        runner.ledger().proposal(&id).await.unwrap().state,
        "pending_review"
    );
    let ok = runner.approve(&id, &lead()).await.unwrap();
    assert_eq!(ok.state, "approved");
    let approval = runner.ledger().approval_record(&id).await.unwrap().unwrap();
    assert_eq!(approval["approver"], json!("lead_1"));
    assert_eq!(approval["roles"], json!(["billing_lead"]));
    let again = runner.approve(&id, &lead()).await.unwrap_err();
    assert_eq!(again.code(), "PROPOSAL_NOT_PENDING_REVIEW");
}

#[tokio::test]
async fn apply_changes_exactly_the_row_and_writes_the_receipt_with_it() {
    let db = PgDb::billing();
    let runner = db.runner();
    let other_before = invoice(&db, "INV-9001");
    let id = approved_waiver(&runner).await;
    let out = runner.apply(&id, &opts()).await.unwrap();
    assert_eq!(out.receipt.status, "applied");
    assert_eq!(out.receipt.rows_affected, 1);
    assert!(out.receipt.source_database_mutated);
    assert_eq!(out.receipt.idempotency_key, format!("{id}:INV-3001"));
    assert!(invoice(&db, "INV-3001").starts_with("0|customer requested review|"));
    assert_eq!(invoice(&db, "INV-9001"), other_before);
    assert_eq!(receipt_rows(&db), "applied");
    assert_eq!(
        db.sql("SELECT idempotency_key FROM synapsor_writeback_receipts"),
        format!("{id}:INV-3001")
    );
    let p = runner.ledger().proposal(&id).await.unwrap();
    assert_eq!(p.state, "applied");
    assert!(p.source_database_mutated);
    assert_eq!(
        runner.ledger().count("writeback_receipts").await.unwrap(),
        1
    );
}

#[tokio::test]
async fn w02_retry_returns_already_applied_with_zero_rows() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    runner.apply(&id, &opts()).await.unwrap();
    let after_first = invoice(&db, "INV-3001");
    let retry = runner.apply(&id, &opts()).await.unwrap();
    assert_eq!(retry.receipt.status, "already_applied");
    assert_eq!(retry.receipt.rows_affected, 0);
    assert!(!retry.receipt.source_database_mutated);
    assert_eq!(invoice(&db, "INV-3001"), after_first);
    assert_eq!(
        runner.ledger().count("writeback_receipts").await.unwrap(),
        1,
        "the first receipt stands"
    );
    let replay = runner.replay(&id).await.unwrap();
    let kinds: Vec<&str> = replay["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "proposal_created",
            "evidence_recorded",
            "proposal_approved",
            "proposal_pending_worker",
            "writeback_job_recorded",
            "writeback_applied",
            "writeback_already_applied"
        ]
    );
}

#[tokio::test]
async fn w01_stale_row_by_one_microsecond_is_a_conflict_and_the_row_is_untouched() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    db.sql("UPDATE invoices SET updated_at = updated_at + interval '1 microsecond' WHERE id = 'INV-3001'");
    let before = invoice(&db, "INV-3001");
    let out = runner.apply(&id, &opts()).await.unwrap();
    assert_eq!(out.receipt.status, "conflict");
    assert_eq!(
        out.receipt.safe_error_code.as_deref(),
        Some("VERSION_CONFLICT")
    );
    assert_eq!(out.receipt.rows_affected, 0);
    assert!(!out.receipt.source_database_mutated);
    assert_eq!(invoice(&db, "INV-3001"), before);
    assert_eq!(receipt_rows(&db), "conflict");
    assert_eq!(
        runner.ledger().proposal(&id).await.unwrap().state,
        "conflict"
    );
    let retry = runner.apply(&id, &opts()).await.unwrap_err();
    assert_eq!(
        retry.code(),
        "PROPOSAL_NOT_APPROVED",
        "a conflict is terminal; a fresh proposal is needed"
    );
    let successor = propose_waiver(&runner, "INV-3001", "second attempt").await;
    assert_ne!(successor, id, "after a conflict a new proposal is allowed");
}

#[tokio::test]
async fn w11_microsecond_versions_survive_read_guard_and_apply() {
    let db = PgDb::billing();
    db.sql(
        "UPDATE invoices SET updated_at = '2026-06-20 14:31:08.123456+00' WHERE id = 'INV-3001'",
    );
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    let p = runner.ledger().proposal(&id).await.unwrap();
    assert_eq!(
        p.change_set.guards.expected_version.value,
        json!("2026-06-20T14:31:08.123456Z")
    );
    let out = runner.apply(&id, &opts()).await.unwrap();
    assert_eq!(out.receipt.status, "applied");
    assert_eq!(
        out.receipt.previous_version,
        Some(json!("2026-06-20T14:31:08.123456Z"))
    );
}

#[tokio::test]
async fn row_stamped_by_now_applies_cleanly_when_nobody_changed_it() {
    let db = PgDb::billing();
    db.sql("UPDATE invoices SET updated_at = now() WHERE id = 'INV-3001'");
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    let out = runner.apply(&id, &opts()).await.unwrap();
    assert_eq!(out.receipt.status, "applied");
    assert!(invoice(&db, "INV-3001").starts_with("0|"));
}

#[tokio::test]
async fn cross_tenant_id_is_indistinguishable_from_a_missing_row() {
    let db = PgDb::billing();
    let runner = db.runner();
    let foreign = synapsor_runner::agent::call_tool(
        &runner,
        INSPECT,
        json!({"invoice_id": "INV-9001"}),
        &acme(),
    )
    .await;
    let missing = synapsor_runner::agent::call_tool(
        &runner,
        INSPECT,
        json!({"invoice_id": "INV-0000"}),
        &acme(),
    )
    .await;
    assert_eq!(foreign["error"]["code"], json!("NOT_FOUND_IN_TENANT"));
    assert_eq!(
        foreign, missing,
        "a foreign row must look exactly like a missing one"
    );
    let e = runner
        .propose(
            WAIVER,
            json!({"invoice_id": "INV-9001", "reason": "x"}),
            &acme(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND_IN_TENANT");
    assert_eq!(runner.ledger().count("proposals").await.unwrap(), 0);
}

#[tokio::test]
async fn spoofed_tenant_and_unknown_arguments_are_refused_before_any_read() {
    let db = PgDb::billing();
    let runner = db.runner();
    let e = runner
        .inspect(
            INSPECT,
            json!({"invoice_id": "INV-9001", "tenant_id": "globex"}),
            &acme(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "MODEL_CANNOT_OVERRIDE_BINDING");
    let env = synapsor_runner::agent::call_tool(
        &runner,
        WAIVER,
        json!({"invoice_id": "INV-9001", "reason": "x", "tenant_id": "globex"}),
        &acme(),
    )
    .await;
    assert_eq!(env["ok"], json!(false));
    assert_eq!(env["error"]["code"], json!("MODEL_CANNOT_OVERRIDE_BINDING"));
    let e = runner
        .inspect(
            INSPECT,
            json!({"invoice_id": "INV-3001", "where": "1=1"}),
            &acme(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ARGUMENT_UNKNOWN");
    assert_eq!(
        runner.ledger().count("evidence_bundles").await.unwrap(),
        0,
        "nothing was read"
    );
}

#[tokio::test]
async fn w02_sixteen_concurrent_applies_mutate_the_row_once() {
    let db = PgDb::billing();
    db.sql("CREATE TABLE update_log (id serial PRIMARY KEY, invoice_id text)");
    db.sql("CREATE FUNCTION log_update() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN INSERT INTO update_log (invoice_id) VALUES (NEW.id); RETURN NEW; END $$");
    db.sql("CREATE TRIGGER invoices_log AFTER UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION log_update()");
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let r = runner.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let out = r.apply(&id, &opts()).await;
            if let Ok(o) = &out
                && o.receipt.status == "failed"
            {
                eprintln!("failed attempt: {:?}", o.receipt.safe_error_code);
            }
            out
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.unwrap().expect("apply").receipt;
        statuses.push(if r.status == "failed" {
            format!("failed:{}", r.safe_error_code.clone().unwrap_or_default())
        } else {
            r.status
        });
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "applied").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "already_applied").count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(db.sql("SELECT count(*) FROM update_log"), "1");
    assert_eq!(
        runner.ledger().count("writeback_receipts").await.unwrap(),
        1
    );
    assert_eq!(receipt_rows(&db), "applied");
}

#[tokio::test]
async fn dry_run_rehearses_rolls_back_and_leaves_the_proposal_approved() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    let before = table_digest(&db);
    let out = runner
        .apply(
            &id,
            &ApplyOptions {
                dry_run: true,
                ..opts()
            },
        )
        .await
        .unwrap();
    assert!(out.dry_run);
    assert_eq!(out.receipt.status, "applied");
    assert!(!out.receipt.source_database_mutated);
    assert_eq!(table_digest(&db), before);
    assert_eq!(receipt_rows(&db), "");
    assert_eq!(
        runner.ledger().proposal(&id).await.unwrap().state,
        "approved"
    );
    assert_eq!(
        runner.ledger().count("writeback_receipts").await.unwrap(),
        0,
        "a dry run is never a terminal receipt"
    );
    let real = runner.apply(&id, &opts()).await.unwrap();
    assert_eq!(real.receipt.status, "applied");
}

#[tokio::test]
async fn duplicate_proposals_follow_decision_11() {
    let db = PgDb::billing();
    let runner = db.runner();
    let first = runner
        .propose(
            WAIVER,
            json!({"invoice_id": "INV-3001", "reason": "same"}),
            &acme(),
        )
        .await
        .unwrap();
    let again = runner
        .propose(
            WAIVER,
            json!({"invoice_id": "INV-3001", "reason": "same"}),
            &acme(),
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.proposal_id, first.proposal_id);
    let other = runner
        .propose(
            WAIVER,
            json!({"invoice_id": "INV-3001", "reason": "different"}),
            &acme(),
        )
        .await
        .unwrap_err();
    assert_eq!(other.code(), "PROPOSAL_ALREADY_EXISTS");
    assert!(other.to_string().contains(&first.proposal_id));
    let env = synapsor_runner::agent::call_tool(
        &runner,
        WAIVER,
        json!({"invoice_id": "INV-3001", "reason": "different"}),
        &acme(),
    )
    .await;
    assert_eq!(env["error"]["active_proposal_id"], json!(first.proposal_id));
    runner
        .reject(&first.proposal_id, &lead(), "not needed")
        .await
        .unwrap();
    let fresh = runner
        .propose(
            WAIVER,
            json!({"invoice_id": "INV-3001", "reason": "same"}),
            &acme(),
        )
        .await
        .unwrap();
    assert!(!fresh.duplicate);
    assert_ne!(fresh.proposal_id, first.proposal_id);
}

#[tokio::test]
async fn unreachable_writer_gives_a_retryable_failure_and_keeps_the_approval() {
    let db = PgDb::billing();
    let mut cfg = db.config_value();
    let p = db.env_prefix();
    let mut env = db.env();
    env.insert(
        format!("{p}_BROKEN"),
        "postgres://synapsor_writer@127.0.0.1:1/nowhere".into(),
    );
    cfg["sources"]["billing_postgres"]["write_url_env"] = json!(format!("{p}_BROKEN"));
    let broken = db.runner_with_env(&cfg, env);
    let id = approved_waiver(&broken).await;
    let out = broken.apply(&id, &opts()).await.unwrap();
    assert_eq!(out.receipt.status, "failed");
    assert_eq!(
        out.receipt.safe_error_code.as_deref(),
        Some("DATABASE_UNAVAILABLE")
    );
    assert!(out.retryable);
    assert_eq!(
        broken.ledger().proposal(&id).await.unwrap().state,
        "approved"
    );
    drop(broken);
    let fixed = db.runner();
    let out = fixed.apply(&id, &opts()).await.unwrap();
    assert_eq!(out.receipt.status, "applied");
}

#[tokio::test]
async fn w03_reused_idempotency_key_with_another_intent_is_refused() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    db.sql(synapsor_runner::sql::receipt_table_ddl(
        synapsor_runner::config::Engine::Postgres,
    ));
    db.sql("GRANT SELECT, INSERT, UPDATE ON synapsor_writeback_receipts TO synapsor_writer");
    db.sql(&format!("INSERT INTO synapsor_writeback_receipts (idempotency_key, job_id, proposal_id, status, intent_hash) VALUES ('{id}:INV-3001', 'wbj_other', '{id}', 'applied', 'sha256:someone-elses-intent')"));
    let before = invoice(&db, "INV-3001");
    let out = runner.apply(&id, &opts()).await.unwrap();
    assert_eq!(out.receipt.status, "failed");
    assert_eq!(
        out.receipt.safe_error_code.as_deref(),
        Some("IDEMPOTENCY_IDENTITY_CONFLICT")
    );
    assert_eq!(invoice(&db, "INV-3001"), before);
}

#[tokio::test]
async fn w04_zero_or_many_matching_rows_never_write() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    db.sql("ALTER TABLE account_credits DROP CONSTRAINT IF EXISTS account_credits_invoice_id_fkey");
    db.sql("ALTER TABLE invoices DROP CONSTRAINT invoices_pkey");
    db.sql("INSERT INTO invoices SELECT * FROM invoices WHERE id = 'INV-3001'");
    let before = table_digest(&db);
    let out = runner.apply(&id, &opts()).await.unwrap();
    assert_eq!(out.receipt.status, "failed");
    assert_eq!(
        out.receipt.safe_error_code.as_deref(),
        Some("MULTI_ROW_WRITE_BLOCKED")
    );
    assert_eq!(table_digest(&db), before, "both rows untouched");
    assert_eq!(
        receipt_rows(&db),
        "",
        "the claim rolled back with everything else"
    );

    let db2 = PgDb::billing();
    let runner2 = db2.runner();
    let id2 = approved_waiver(&runner2).await;
    db2.sql("DELETE FROM invoices WHERE id = 'INV-3001'");
    let before2 = table_digest(&db2);
    let out2 = runner2.apply(&id2, &opts()).await.unwrap();
    assert_eq!(out2.receipt.status, "conflict");
    assert_eq!(
        out2.receipt.safe_error_code.as_deref(),
        Some("ROW_NOT_FOUND")
    );
    assert_eq!(table_digest(&db2), before2);
}

#[tokio::test]
async fn w05_receipt_failure_after_the_update_rolls_the_business_change_back() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    db.sql(synapsor_runner::sql::receipt_table_ddl(
        synapsor_runner::config::Engine::Postgres,
    ));
    db.sql("GRANT SELECT, INSERT, UPDATE ON synapsor_writeback_receipts TO synapsor_writer");
    db.sql("CREATE FUNCTION refuse_applied() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.status = 'applied' THEN RAISE EXCEPTION 'receipt store refused'; END IF; RETURN NEW; END $$");
    db.sql("CREATE TRIGGER receipts_refuse BEFORE UPDATE ON synapsor_writeback_receipts FOR EACH ROW EXECUTE FUNCTION refuse_applied()");
    let before = table_digest(&db);
    let out = runner.apply(&id, &opts()).await.unwrap();
    assert_eq!(out.receipt.status, "failed");
    assert_eq!(
        table_digest(&db),
        before,
        "the business UPDATE must roll back with the receipt"
    );
    assert_eq!(receipt_rows(&db), "");
    assert_eq!(runner.ledger().proposal(&id).await.unwrap().state, "failed");
}

#[tokio::test]
async fn w06_tampered_job_target_or_guard_is_refused() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    let base = job_value(&runner, &id).await;
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "table",
            Box::new(|j| j["target"]["table"] = json!("accounts")),
            "CAPABILITY_MISMATCH",
        ),
        (
            "schema",
            Box::new(|j| j["target"]["schema"] = json!("private")),
            "CAPABILITY_MISMATCH",
        ),
        (
            "pk column",
            Box::new(|j| j["target"]["primary_key"]["column"] = json!("invoice_id")),
            "CAPABILITY_MISMATCH",
        ),
        (
            "tenant column",
            Box::new(|j| j["tenant_guard"]["column"] = json!("org_id")),
            "CAPABILITY_MISMATCH",
        ),
        (
            "conflict column",
            Box::new(|j| j["conflict_guard"]["column"] = json!("modified_at")),
            "CONFLICT_GUARD_MISMATCH",
        ),
        (
            "no guard",
            Box::new(|j| j["conflict_guard"] = json!({"kind": "none"})),
            "CONFLICT_GUARD_REQUIRED",
        ),
        (
            "pk value",
            Box::new(|j| j["target"]["primary_key"]["value"] = json!("INV-9001")),
            "JOB_TARGET_MISMATCH",
        ),
        (
            "tenant value",
            Box::new(|j| j["tenant_guard"]["value"] = json!("globex")),
            "JOB_TENANT_MISMATCH",
        ),
        (
            "expected version",
            Box::new(|j| j["conflict_guard"]["expected_value"] = json!("2030-01-01T00:00:00Z")),
            "JOB_VERSION_MISMATCH",
        ),
        (
            "proposal version",
            Box::new(|j| j["proposal_version"] = json!(2)),
            "PROPOSAL_VERSION_MISMATCH",
        ),
        (
            "source",
            Box::new(|j| j["runner_scope"]["source_id"] = json!("other_source")),
            "SOURCE_NOT_REVIEWED",
        ),
        (
            "engine",
            Box::new(|j| j["engine"] = json!("mysql")),
            "ENGINE_MISMATCH",
        ),
    ];
    for (what, tamper, code) in cases {
        let mut job = base.clone();
        tamper(&mut job);
        let e = apply_tampered(&runner, job).await;
        assert_eq!(e.code(), code, "tampered {what}: {e}");
    }
    assert_eq!(invoice(&db, "INV-3001").split('|').next(), Some("5500"));
    assert_eq!(
        receipt_rows(&db),
        "<no receipt table>",
        "refused before any source contact"
    );
}

#[tokio::test]
async fn w07_widened_allowlist_or_changed_patch_is_refused() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    let base = job_value(&runner, &id).await;
    let mut widened = base.clone();
    widened["allowed_columns"] = json!(["late_fee_cents", "waiver_reason", "admin_override"]);
    assert_eq!(
        apply_tampered(&runner, widened).await.code(),
        "ALLOWLIST_WIDENED"
    );
    let mut extra = base.clone();
    extra["patch"]["admin_override"] = json!("yes");
    assert_eq!(
        apply_tampered(&runner, extra).await.code(),
        "PATCH_COLUMN_NOT_ALLOWED"
    );
    let mut value = base.clone();
    value["patch"]["waiver_reason"] = json!("something the approver never saw");
    assert_eq!(
        apply_tampered(&runner, value).await.code(),
        "JOB_PATCH_MISMATCH"
    );
    let mut bigger = base.clone();
    bigger["patch"]["late_fee_cents"] = json!(-500);
    assert_eq!(
        apply_tampered(&runner, bigger).await.code(),
        "JOB_PATCH_MISMATCH"
    );
    assert_eq!(receipt_rows(&db), "<no receipt table>");
}

#[tokio::test]
async fn w08_sql_fragment_and_path_identifiers_are_refused_before_the_adapter() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    let base = job_value(&runner, &id).await;
    let cases: Vec<Tamper> = vec![
        Box::new(|j| j["target"]["schema"] = json!("../private")),
        Box::new(|j| j["target"]["primary_key"]["column"] = json!("id/../../tenant_id")),
        Box::new(|j| j["allowed_columns"] = json!(["late_fee_cents", "waiver_reason", "../admin"])),
        Box::new(|j| {
            j["patch"] = json!({"late_fee_cents = 0; DROP TABLE invoices; --": 0});
            j["allowed_columns"] = json!(["late_fee_cents = 0; DROP TABLE invoices; --"]);
        }),
        Box::new(|j| j["conflict_guard"]["column"] = json!("updated_at; --")),
    ];
    for tamper in cases {
        let mut job = base.clone();
        tamper(&mut job);
        let e = apply_tampered(&runner, job).await;
        assert_eq!(e.code(), "UNSAFE_IDENTIFIER", "{e}");
        assert!(e.to_string().contains("fixed safe identifier"), "{e}");
    }
    assert_eq!(db.sql("SELECT count(*) FROM invoices"), "2");
}

#[tokio::test]
async fn w09_primary_or_tenant_key_in_the_allowlist_is_refused() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    let base = job_value(&runner, &id).await;
    let mut pk = base.clone();
    pk["allowed_columns"] = json!(["id", "late_fee_cents", "waiver_reason"]);
    assert_eq!(
        apply_tampered(&runner, pk).await.code(),
        "PRIMARY_KEY_ALLOWLISTED"
    );
    let mut tenant = base.clone();
    tenant["allowed_columns"] = json!(["tenant_id", "late_fee_cents", "waiver_reason"]);
    assert_eq!(
        apply_tampered(&runner, tenant).await.code(),
        "TENANT_GUARD_ALLOWLISTED"
    );
}

#[tokio::test]
async fn w10_missing_digest_or_expired_lease_is_refused() {
    let db = PgDb::billing();
    let runner = db.runner();
    let id = approved_waiver(&runner).await;
    let base = job_value(&runner, &id).await;
    let mut no_digest = base.clone();
    no_digest.as_object_mut().unwrap().remove("proposal_hash");
    let e = apply_tampered(&runner, no_digest).await;
    assert_eq!(e.code(), "PROTOCOL_INVALID");
    assert!(e.to_string().contains("proposal_hash"), "{e}");
    for expires in ["2020-01-01T00:00:00Z", "not a timestamp"] {
        let mut expired = base.clone();
        expired["lease"]["expires_at"] = json!(expires);
        assert_eq!(
            apply_tampered(&runner, expired).await.code(),
            "WRITEBACK_LEASE_EXPIRED",
            "{expires}"
        );
    }
    assert_eq!(receipt_rows(&db), "<no receipt table>");
}

#[tokio::test]
async fn w10b_job_for_absent_pending_or_rejected_proposal_or_other_digest_is_refused() {
    let db = PgDb::billing();
    let runner = db.runner();
    let pending = propose_waiver(&runner, "INV-3001", "pending one").await;
    let job = job_value(&runner, &pending).await;
    assert_eq!(
        apply_tampered(&runner, job.clone()).await.code(),
        "PROPOSAL_NOT_APPROVED"
    );
    runner.reject(&pending, &lead(), "no").await.unwrap();
    assert_eq!(
        apply_tampered(&runner, job.clone()).await.code(),
        "PROPOSAL_NOT_APPROVED"
    );
    let mut absent = job.clone();
    absent["proposal_id"] = json!("wrp_00000000000000000000");
    assert_eq!(
        apply_tampered(&runner, absent).await.code(),
        "PROPOSAL_NOT_FOUND"
    );

    let approved = approved_waiver(&runner).await;
    let mut digest = job_value(&runner, &approved).await;
    digest["proposal_hash"] = json!("sha256:tampered");
    assert_eq!(
        apply_tampered(&runner, digest).await.code(),
        "PROPOSAL_HASH_MISMATCH"
    );
    assert_eq!(
        receipt_rows(&db),
        "<no receipt table>",
        "refused before any DB contact"
    );

    // A ledger row edited behind the runner's back no longer matches its digest.
    runner
        .ledger()
        .raw({
            let approved = approved.clone();
            move |c| c.execute("UPDATE proposals SET change_set_json = replace(change_set_json, '\"late_fee_cents\":0', '\"late_fee_cents\":1') WHERE proposal_id = ?1", [&approved])
        }).await
        .unwrap();
    let e = runner.apply(&approved, &opts()).await.unwrap_err();
    assert_eq!(e.code(), "LEDGER_INTEGRITY_FAILED");
    assert_eq!(invoice(&db, "INV-3001").split('|').next(), Some("5500"));
}

#[tokio::test]
async fn writeback_probe_proves_the_writer_and_rolls_back() {
    let db = PgDb::billing();
    let runner = db.runner();
    let note = runner.probe_writeback("billing_postgres").await.unwrap();
    assert!(note.contains("created on first apply"), "{note}");
    assert_eq!(
        receipt_rows(&db),
        "<no receipt table>",
        "even the DDL rolled back"
    );
    db.sql("REVOKE CREATE ON SCHEMA public FROM synapsor_writer");
    let fresh = db.runner();
    let e = fresh.probe_writeback("billing_postgres").await.unwrap_err();
    assert!(
        e.to_string().contains("42501"),
        "permission denied is reported: {e}"
    );
}

/// The reader's backends for this test's database: (all, idle in a transaction, pids).
fn reader_backends(db: &PgDb) -> (usize, usize, String) {
    let out = db.sql(
        "SELECT count(*) || '|' || count(*) FILTER (WHERE state LIKE 'idle in transaction%') || '|' || coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM pg_stat_activity WHERE datname = current_database() AND usename = 'synapsor_reader'",
    );
    let mut parts = out.split('|');
    let mut n = || parts.next().unwrap_or_default().to_string();
    (n().parse().unwrap(), n().parse().unwrap(), n())
}

/// The reader's backends once reads are done: how many, and their pids. None of them is left in
/// a transaction: a read commits before it answers.
fn reads_settled(db: &PgDb) -> (usize, String) {
    let (all, in_tx, pids) = reader_backends(db);
    assert!(
        all > 0 && in_tx == 0,
        "{all} reader backends, {in_tx} in a transaction"
    );
    (all, pids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_commit_before_answering_and_reuse_one_connection() {
    let db = PgDb::billing();
    let runner = db.runner();
    for _ in 0..30 {
        let r = runner
            .inspect(INSPECT, json!({"invoice_id": "INV-3001"}), &acme())
            .await
            .unwrap();
        assert_eq!(r.data["late_fee_cents"], json!(5500));
    }
    // Every read's transaction has ended (no backend left idle in one), and sequential reads
    // share one connection.
    let (all, _) = reads_settled(&db);
    assert_eq!(
        all, 1,
        "30 sequential reads opened {all} reader connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_connection_the_server_dropped_is_replaced_without_failing_the_read() {
    let db = PgDb::billing();
    let runner = db.runner();
    let ctx = acme();
    let read = || runner.inspect(INSPECT, json!({"invoice_id": "INV-3001"}), &ctx);
    read().await.unwrap();
    let (_, before) = reads_settled(&db);
    db.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND usename = 'synapsor_reader'");
    let r = read()
        .await
        .expect("the read starts again on a new connection");
    assert_eq!(r.data["late_fee_cents"], json!(5500));
    let (_, after) = reads_settled(&db);
    assert!(
        before
            .split(',')
            .all(|pid| !after.split(',').any(|p| p == pid)),
        "the dropped connection is not reused: {before} then {after}"
    );
    // A server that refuses the statement itself is not retried: the error reaches the caller.
    db.sql("REVOKE SELECT ON invoices FROM synapsor_reader");
    let e = read().await.unwrap_err();
    assert!(e.to_string().contains("42501"), "{e}");
}

#[tokio::test]
async fn a_host_hands_connection_urls_to_the_runner_without_the_process_environment() {
    let db = PgDb::billing();
    let cfg = db.config_value();
    let _ = db.runner_with(&cfg); // writes the config file
    let read_var = cfg["sources"]["billing_postgres"]["read_url_env"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(std::env::var(&read_var).is_err(), "not in the process env");
    let open = |env: Vec<(String, String)>| {
        let mut opts = synapsor_runner::OpenOptions::config_path(db.config_path())
            .ledger(db.dir.path().join("host.db"));
        for (k, v) in env {
            opts = opts.env(k, v);
        }
        Runner::open(opts)
    };
    let args = json!({"invoice_id": "INV-3001"});
    let given = open(db.env().into_iter().collect()).await.unwrap();
    let read = given
        .inspect("billing.inspect_invoice", args.clone(), &acme())
        .await
        .unwrap();
    assert_eq!(read.data["id"], json!("INV-3001"));
    let bare = open(vec![]).await.unwrap();
    let err = bare
        .inspect("billing.inspect_invoice", args, &acme())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "SOURCE_CREDENTIAL_MISSING");
    assert!(err.to_string().contains(&read_var), "{err}");
}
