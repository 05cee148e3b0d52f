//! The ledger's behaviour, once per backend: every test here runs against a SQLite ledger file
//! and against a PostgreSQL ledger (a database of its own per test), over the embedded demo's
//! SQLite source. Then what only a shared ledger has to prove: several handles (as several
//! instances would hold) deciding, proposing and applying at once, and `store migrate`.

mod common;

use serde_json::{Value, json};
use synapsor_runner::config::load_config;
use synapsor_runner::demo::{create_demo, invoice_row};
use synapsor_runner::ledger::{EventFilter, ListFilter, ReceiptFilter};
use synapsor_runner::{ApplyOptions, Approver, Ledger, Runner, TrustedContext};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The demo (config, SQLite source) in a folder of its own, with a ledger on one backend.
struct Fixture {
    dir: tempfile::TempDir,
    backend: Backend,
    db: Option<common::PgDatabase>,
}

impl Fixture {
    fn new(backend: Backend) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        create_demo(dir.path()).unwrap();
        let db = (backend == Backend::Postgres).then(|| common::PgDatabase::create("ledger"));
        Fixture { dir, backend, db }
    }

    fn pg_url(&self) -> String {
        common::with_db(&common::admin_url(), &self.db.as_ref().unwrap().0)
    }

    /// A new handle on the ledger (for PostgreSQL: as another instance would open it).
    async fn ledger(&self) -> Ledger {
        match self.backend {
            Backend::Sqlite => Ledger::open(&self.dir.path().join("local.db")).unwrap(),
            Backend::Postgres => Ledger::open_postgres(&self.pg_url(), "synapsor", "TEST_URL")
                .await
                .unwrap(),
        }
    }

    async fn runner(&self) -> Runner {
        let config = load_config(self.dir.path().join("synapsor.runner.json")).unwrap();
        Runner::with_parts(config, self.ledger().await).unwrap()
    }
}

fn lead() -> Approver {
    Approver::new("lead").role("billing_lead")
}

async fn propose(runner: &Runner, invoice: &str, reason: &str) -> synapsor_runner::Result<String> {
    Ok(runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": invoice, "reason": reason}),
            &TrustedContext::from_config(),
        )
        .await?
        .proposal_id)
}

/// Evidence and audit for a change set, as a read of its row would record them.
fn evidence_for(
    cs: &synapsor_runner::protocol::ChangeSet,
) -> (
    synapsor_runner::ledger::EvidenceBundle,
    synapsor_runner::ledger::QueryAudit,
) {
    let bundle = synapsor_runner::ledger::EvidenceBundle {
        evidence_bundle_id: format!("ev_{}", cs.proposal_id),
        tenant_id: cs.scope.tenant_id.clone(),
        principal: cs.principal.id.clone(),
        capability: cs.action.clone(),
        source_id: cs.source.source_id.clone(),
        source_table: cs.source.table.clone(),
        business_object: cs.scope.business_object.clone(),
        object_id: cs.scope.object_id.clone(),
        query_fingerprint: cs.evidence.query_fingerprint.clone(),
        payload: json!({}),
        items: vec![json!({"visible_row": cs.before})],
    };
    let audit = synapsor_runner::ledger::QueryAudit {
        source_id: cs.source.source_id.clone(),
        query_fingerprint: cs.evidence.query_fingerprint.clone(),
        table_name: cs.source.table.clone(),
        row_count: 1,
        payload: json!({}),
        primary_key_value: cs.scope.object_id.clone(),
    };
    (bundle, audit)
}

fn without_generated_at(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("generated_at");
    v
}

fn kinds(replay: &Value) -> Vec<String> {
    replay["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn the_lifecycle_is_recorded_and_replayed(b: Backend) {
    let f = Fixture::new(b);
    let runner = f.runner().await;
    let ctx = TrustedContext::from_config();
    let read = runner
        .inspect(
            "billing.inspect_invoice",
            json!({"invoice_id": "INV-3001"}),
            &ctx,
        )
        .await
        .unwrap();
    let l = runner.ledger();
    assert_eq!(l.count("evidence_bundles").await.unwrap(), 1);
    assert_eq!(l.count("query_audit").await.unwrap(), 1);
    let bundle = l
        .evidence_bundle(&read.evidence_bundle_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bundle["items"].as_array().unwrap().len(), 1, "{bundle}");
    assert_eq!(bundle["query_audit"][0]["row_count"], json!(1));

    let id = propose(&runner, "INV-3001", "grace").await.unwrap();
    let p = l.proposal(&id).await.unwrap();
    assert_eq!(p.state.as_str(), "pending_review");
    assert_eq!(p.proposal_hash, p.change_set.compute_hash());
    assert_eq!(l.resolve_selector("latest").await.unwrap(), id);

    // The role is checked by the ledger, on both backends.
    let err = runner
        .approve(&id, &Approver::new("intern"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "APPROVER_ROLE_MISSING");
    runner.approve(&id, &lead()).await.unwrap();
    let again = runner.approve(&id, &lead()).await.unwrap_err();
    assert_eq!(again.code(), "PROPOSAL_NOT_PENDING_REVIEW");
    let approval = l.approval_record(&id).await.unwrap().unwrap();
    assert_eq!(approval["approver"], json!("lead"));
    assert_eq!(approval["roles"], json!(["billing_lead"]));

    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(out.receipt.status, "applied");
    let retry = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(retry.receipt.status, "already_applied");
    assert_eq!(
        invoice_row(f.dir.path(), "INV-3001").unwrap()["late_fee_cents"],
        json!(0)
    );
    assert_eq!(l.count("writeback_receipts").await.unwrap(), 1);
    let p = l.proposal(&id).await.unwrap();
    assert_eq!(p.state.as_str(), "applied");
    assert!(p.source_database_mutated);

    let replay = l.replay(&id).await.unwrap();
    assert_eq!(
        kinds(&replay),
        [
            "proposal_created",
            "evidence_recorded",
            "proposal_approved",
            "proposal_pending_worker",
            "writeback_job_recorded",
            "writeback_applied",
            "writeback_already_applied",
        ]
    );
    assert_eq!(replay["receipts"].as_array().unwrap().len(), 1);
    assert_eq!(
        replay["receipts"][0]["source_database_mutated"],
        json!(true)
    );
    assert_eq!(replay["approvals"][0]["roles"], json!(["billing_lead"]));
    assert_eq!(replay["jobs"][0]["status"], json!("applied"));
    // A proposal's evidence: the row it saw and the proposed change.
    assert_eq!(replay["evidence"][0]["items"].as_array().unwrap().len(), 2);
    // A view writes nothing and says the same.
    let kept = l.count("replay_records").await.unwrap();
    assert!(kept >= 1);
    assert_eq!(
        without_generated_at(l.replay_view(&id).await.unwrap()),
        without_generated_at(replay)
    );
    assert_eq!(l.count("replay_records").await.unwrap(), kept);

    let check = l.check().await.unwrap();
    assert_eq!(check["problems"], json!([]), "{check}");
    assert_eq!(check["checked"]["proposals"], json!(1));
}

async fn one_active_proposal_per_object(b: Backend) {
    let f = Fixture::new(b);
    let runner = f.runner().await;
    let first = propose(&runner, "INV-3001", "grace").await.unwrap();
    // The same change again is the same proposal; another change to the object is refused.
    assert_eq!(propose(&runner, "INV-3001", "grace").await.unwrap(), first);
    // Another change to the same object, while that one is active, is refused.
    let mut cs = runner.ledger().proposal(&first).await.unwrap().change_set;
    cs.proposal_id = "wrp_another_change".into();
    cs.patch.insert("late_fee_cents".into(), json!(100));
    cs.integrity.proposal_hash = cs.compute_hash();
    let (bundle, audit) = evidence_for(&cs);
    let err = runner
        .ledger()
        .create_proposal(cs, bundle, audit)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "PROPOSAL_ALREADY_EXISTS");
    assert_eq!(runner.ledger().count("proposals").await.unwrap(), 1);
    // Once it is rejected, the object is free again.
    runner.reject(&first, &lead(), "not now").await.unwrap();
    let second = propose(&runner, "INV-3001", "grace").await.unwrap();
    assert_ne!(second, first);
    let rejected = runner.ledger().proposal(&first).await.unwrap();
    assert_eq!(rejected.state.as_str(), "rejected");
    let err = runner.approve(&first, &lead()).await.unwrap_err();
    assert_eq!(err.code(), "PROPOSAL_NOT_PENDING_REVIEW");
    // The duplicate's read still left its evidence, unlinked; the refused one left nothing.
    assert_eq!(runner.ledger().count("evidence_bundles").await.unwrap(), 3);
}

async fn secrets_are_refused_and_events_are_append_only(b: Backend) {
    let f = Fixture::new(b);
    let runner = f.runner().await;
    let id = propose(&runner, "INV-3001", "grace").await.unwrap();
    let l = runner.ledger();
    let err = l
        .record_event(
            &id,
            "note",
            "ops",
            json!({"dsn": "postgresql://admin:hunter2@db/prod"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "SECRET_MATERIAL_REJECTED");
    assert_eq!(l.count("proposal_events").await.unwrap(), 2);
    match b {
        Backend::Sqlite => {
            let upd = l
                .raw(|c| c.execute("UPDATE proposal_events SET actor = 'x'", []))
                .await;
            assert!(upd.unwrap_err().to_string().contains("append-only"));
        }
        Backend::Postgres => {
            // Enforced by the database, whoever connects.
            let db = &f.db.as_ref().unwrap().0;
            for sql in [
                "UPDATE synapsor.proposal_events SET actor = 'x'",
                "DELETE FROM synapsor.proposal_events",
                "TRUNCATE synapsor.proposal_events CASCADE",
            ] {
                let out = std::process::Command::new("psql")
                    .args([
                        common::with_db(&common::admin_url(), db).as_str(),
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-c",
                        sql,
                    ])
                    .output()
                    .unwrap();
                assert!(!out.status.success(), "{sql} was allowed");
                assert!(
                    String::from_utf8_lossy(&out.stderr).contains("append-only"),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    assert_eq!(l.count("proposal_events").await.unwrap(), 2);
}

async fn lists_filter_the_same_way(b: Backend) {
    let f = Fixture::new(b);
    let runner = f.runner().await;
    let a = propose(&runner, "INV-3001", "grace").await.unwrap();
    let c = propose(&runner, "INV-3002", "grace").await.unwrap();
    runner.approve(&a, &lead()).await.unwrap();
    runner.apply(&a, &ApplyOptions::default()).await.unwrap();
    let l = runner.ledger();

    let all = l.list_proposals(None, None, 50).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|p| p.proposal_id.as_str())
            .collect::<Vec<_>>(),
        [c.as_str(), a.as_str()],
        "newest first"
    );
    let pending = l
        .list_proposals(Some("pending_review"), None, 50)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        l.list_proposals(Some("foo"), None, 5)
            .await
            .unwrap_err()
            .code(),
        "PROPOSAL_STATE_UNKNOWN"
    );
    assert!(
        l.list_proposals(None, Some("globex"), 5)
            .await
            .unwrap()
            .is_empty()
    );

    let by_object = ListFilter {
        object_id: Some("INV-3001".into()),
        limit: 50,
        ..Default::default()
    };
    let ev = l.list_evidence(&by_object).await.unwrap();
    assert!(
        !ev.is_empty() && ev.iter().all(|e| e["object_id"] == json!("INV-3001")),
        "{ev:?}"
    );
    let linked: Vec<&Value> = ev.iter().filter(|e| e["proposal_id"] == json!(a)).collect();
    assert_eq!(linked.len(), 1, "{ev:?}");
    assert_eq!(linked[0]["item_count"], json!(2));
    let qa = l
        .list_query_audit(&ListFilter {
            proposal: Some(a.clone()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(qa.len(), 1);
    let audit_id = qa[0]["audit_id"].as_i64().unwrap();
    assert_eq!(
        l.query_audit(audit_id).await.unwrap().unwrap()["primary_key_value"],
        json!("INV-3001")
    );
    let replays = l
        .list_replays(&ListFilter {
            status: Some("applied".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0]["replay_id"], json!(format!("replay_{a}")));

    let receipts = l
        .list_receipts(&ReceiptFilter {
            proposal: Some(a.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(receipts.len(), 1);
    let rid = receipts[0]["receipt_id"].as_i64().unwrap();
    assert_eq!(
        l.receipt(rid).await.unwrap().unwrap()["receipt"]["status"],
        json!("applied")
    );

    let events = l
        .list_events(&EventFilter {
            proposal: Some(a.clone()),
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 3, "the newest three");
    assert_eq!(
        events[2]["kind"],
        json!("writeback_applied"),
        "oldest first"
    );
    let after = events[2]["event_id"].as_i64().unwrap();
    let none = l
        .list_events(&EventFilter {
            after_id: after,
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");

    let stats = l.stats().await.unwrap();
    assert_eq!(stats["tables"]["proposals"], json!(2));
    assert!(stats["approx_bytes"].as_i64().unwrap() > 0);
}

async fn prune_removes_only_old_unreferenced_reads(b: Backend) {
    let f = Fixture::new(b);
    let runner = f.runner().await;
    let ctx = TrustedContext::from_config();
    runner
        .inspect(
            "billing.inspect_invoice",
            json!({"invoice_id": "INV-3002"}),
            &ctx,
        )
        .await
        .unwrap();
    propose(&runner, "INV-3001", "grace").await.unwrap();
    let l = runner.ledger();
    let future = "2999-01-01T00:00:00Z";
    let dry = l.prune_reads(future, true).await.unwrap();
    assert_eq!(dry["deleted"]["evidence_bundles"], json!(1), "{dry}");
    assert_eq!(l.count("evidence_bundles").await.unwrap(), 2);
    let done = l.prune_reads(future, false).await.unwrap();
    assert_eq!(done["deleted"]["query_audit"], json!(1));
    assert_eq!(
        l.count("evidence_bundles").await.unwrap(),
        1,
        "the proposal's stays"
    );
    assert_eq!(l.count("query_audit").await.unwrap(), 1);
    assert_eq!(l.check().await.unwrap()["problems"], json!([]));
    let (before, after) = l.vacuum().await.unwrap();
    assert!(before > 0 && after > 0);
}

async fn reconcile_releases_a_job_that_never_wrote(b: Backend) {
    let f = Fixture::new(b);
    let runner = f.runner().await;
    let id = propose(&runner, "INV-3001", "grace").await.unwrap();
    runner.approve(&id, &lead()).await.unwrap();
    // An instance recorded its job and died before writing.
    let p = runner.ledger().proposal(&id).await.unwrap();
    let job = synapsor_runner::apply::job_for_executor(
        &p,
        "sqlite",
        "sql_update",
        &ApplyOptions::default(),
    );
    runner
        .ledger()
        .prepare_job(&job, "sql_update", "instance-1")
        .await
        .unwrap();
    // Another instance (another handle) settles it.
    let other = f.runner().await;
    let done = other
        .reconcile(true, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].outcome, "released", "{done:?}");
    assert_eq!(
        other.ledger().proposal(&id).await.unwrap().state.as_str(),
        "approved"
    );
    let out = other.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(out.receipt.status, "applied");
}

/// Approvals from several handles at once: one wins, the rest get a state error, no event lost.
async fn concurrent_decisions_have_one_winner(b: Backend) {
    let f = Fixture::new(b);
    let id = propose(&f.runner().await, "INV-3001", "grace")
        .await
        .unwrap();
    let mut handles = Vec::new();
    for i in 0..6 {
        let runner = f.runner().await;
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            if i % 2 == 0 {
                runner.approve(&id, &lead()).await.map(|_| "approved")
            } else {
                runner.reject(&id, &lead(), "no").await.map(|_| "rejected")
            }
        }));
    }
    let mut won = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            Ok(w) => won.push(w),
            Err(e) => assert!(
                ["PROPOSAL_NOT_PENDING_REVIEW", "PROPOSAL_NOT_REJECTABLE"].contains(&e.code()),
                "{e:?}"
            ),
        }
    }
    // A rejection may follow an approval (approved proposals can still be rejected).
    assert!(
        !won.is_empty() && won.iter().filter(|w| **w == "approved").count() <= 1,
        "{won:?}"
    );
    let l = f.ledger().await;
    let replay = l.replay_view(&id).await.unwrap();
    let decided = kinds(&replay)
        .iter()
        .filter(|k| k.starts_with("proposal_approved") || k.starts_with("proposal_rejected"))
        .count();
    assert_eq!(decided, won.len(), "one event per decision that won");
    assert_eq!(replay["approvals"].as_array().unwrap().len(), won.len());
}

/// Proposals for one object from several handles at once: one active proposal.
async fn concurrent_proposals_leave_one_active(b: Backend) {
    let f = Fixture::new(b);
    let mut handles = Vec::new();
    for _ in 0..8 {
        let runner = f.runner().await;
        handles.push(tokio::spawn(async move {
            propose(&runner, "INV-3001", "grace").await
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(f.ledger().await.count("proposals").await.unwrap(), 1);
}

/// Applies of one approved proposal from several handles at once: one mutation, one receipt.
async fn concurrent_applies_write_once(b: Backend) {
    let f = Fixture::new(b);
    let runner = f.runner().await;
    let id = propose(&runner, "INV-3001", "grace").await.unwrap();
    runner.approve(&id, &lead()).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let runner = f.runner().await;
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            runner.apply(&id, &ApplyOptions::default()).await
        }));
    }
    let mut applied = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(o) if o.receipt.status == "applied" => applied += 1,
            Ok(o) => assert_eq!(o.receipt.status, "already_applied"),
            // A handle that found another's job mid-flight is told so; nothing was written.
            Err(e) => assert!(
                e.retryable()
                    || e.code().starts_with("PROPOSAL_")
                    || e.code() == "WRITEBACK_IN_PROGRESS",
                "{e:?}"
            ),
        }
    }
    assert_eq!(applied, 1);
    let l = f.ledger().await;
    let receipts = l
        .list_receipts(&ReceiptFilter {
            proposal: Some(id.clone()),
            status: Some("applied".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(l.proposal(&id).await.unwrap().state.as_str(), "applied");
    let conn = rusqlite::Connection::open(f.dir.path().join("billing.sqlite")).unwrap();
    let source_receipts: i64 = conn
        .query_row(
            "SELECT count(*) FROM synapsor_writeback_receipts",
            [],
            |r| r.get(0),
        )
        .unwrap_or(1);
    assert_eq!(source_receipts, 1);
    assert_eq!(l.check().await.unwrap()["problems"], json!([]));
}

/// Reads arriving together are each recorded (the SQLite store writes queued reads in one
/// transaction); one refused for secret material fails alone.
async fn concurrent_reads_are_each_recorded(b: Backend) {
    let f = Fixture::new(b);
    let runner = f.runner().await;
    let id = propose(&runner, "INV-3001", "grace").await.unwrap();
    let cs = runner.ledger().proposal(&id).await.unwrap().change_set;
    let before = runner.ledger().count("evidence_bundles").await.unwrap();
    let mut calls = Vec::new();
    for i in 0..40 {
        let (mut bundle, audit) = evidence_for(&cs);
        bundle.evidence_bundle_id = format!("ev_read_{i}");
        if i == 17 {
            bundle.payload = json!({"dsn": "postgresql://admin:hunter2@db/prod"});
        }
        let runner = runner.clone();
        calls.push(tokio::spawn(async move {
            runner.ledger().record_read(bundle, audit).await
        }));
    }
    let mut refused = Vec::new();
    for (i, call) in calls.into_iter().enumerate() {
        if let Err(e) = call.await.unwrap() {
            refused.push((i, e.code().to_string()));
        }
    }
    assert_eq!(refused, vec![(17, "SECRET_MATERIAL_REJECTED".to_string())]);
    let l = runner.ledger();
    assert_eq!(l.count("evidence_bundles").await.unwrap(), before + 39);
    assert!(l.evidence_bundle("ev_read_39").await.unwrap().is_some());
    assert!(l.evidence_bundle("ev_read_17").await.unwrap().is_none());
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both_backends!(
    the_lifecycle_is_recorded_and_replayed,
    one_active_proposal_per_object,
    secrets_are_refused_and_events_are_append_only,
    lists_filter_the_same_way,
    prune_removes_only_old_unreferenced_reads,
    reconcile_releases_a_job_that_never_wrote,
    concurrent_decisions_have_one_winner,
    concurrent_proposals_leave_one_active,
    concurrent_applies_write_once,
    concurrent_reads_are_each_recorded,
);

/// Several instances opening a new PostgreSQL ledger at the same moment: one migrates, all open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let f = Fixture::new(Backend::Postgres);
    let mut handles = Vec::new();
    for _ in 0..6 {
        let url = f.pg_url();
        handles.push(tokio::spawn(async move {
            Ledger::open_postgres(&url, "synapsor", "TEST_URL").await
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap().schema_version().await.unwrap(), 1);
    }
    let db = &f.db.as_ref().unwrap().0;
    assert_eq!(
        common::psql(db, "SELECT count(*) FROM synapsor.ledger_migrations"),
        "1"
    );
    // A ledger migrated by a newer runner is refused.
    common::psql(
        db,
        "INSERT INTO synapsor.ledger_migrations VALUES (99, 'later')",
    );
    let err = Ledger::open_postgres(&f.pg_url(), "synapsor", "TEST_URL")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "LEDGER_SCHEMA_TOO_NEW");
    // Errors name the variable, never the URL.
    let err = Ledger::open_postgres(
        "postgres://u:hunter2@127.0.0.1:1/x",
        "synapsor",
        "MY_LEDGER_URL",
    )
    .await
    .err()
    .unwrap();
    let text = format!("{err}");
    assert!(
        text.contains("MY_LEDGER_URL") && !text.contains("hunter2"),
        "{text}"
    );
}

/// `store migrate`: a SQLite ledger with proposals in every state copies into PostgreSQL with
/// every digest intact and the same replays; copying again does nothing; a target holding
/// something else is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_ledger_copies_into_postgres() {
    let f = Fixture::new(Backend::Sqlite);
    let runner = f.runner().await;
    let ctx = TrustedContext::from_config();
    runner
        .inspect(
            "billing.inspect_invoice",
            json!({"invoice_id": "INV-3002"}),
            &ctx,
        )
        .await
        .unwrap();
    let applied = propose(&runner, "INV-3001", "grace").await.unwrap();
    runner.approve(&applied, &lead()).await.unwrap();
    runner
        .apply(&applied, &ApplyOptions::default())
        .await
        .unwrap();
    let pending = propose(&runner, "INV-3002", "grace").await.unwrap();
    let sqlite = runner.ledger();

    let db = common::PgDatabase::create("ledger_copy");
    let url = common::with_db(&common::admin_url(), &db.0);
    let pg = Ledger::open_postgres(&url, "synapsor", "TEST_URL")
        .await
        .unwrap();
    let out = sqlite.copy_to(&pg).await.unwrap();
    assert_eq!(out["already_migrated"], json!(false), "{out}");
    assert_eq!(out["check"]["problems"], json!([]), "{out}");
    for t in synapsor_runner::ledger::TABLES {
        assert_eq!(
            pg.count(t).await.unwrap(),
            sqlite.count(t).await.unwrap(),
            "{t}"
        );
    }
    for id in [&applied, &pending] {
        assert_eq!(
            without_generated_at(pg.replay_view(id).await.unwrap()),
            without_generated_at(sqlite.replay_view(id).await.unwrap())
        );
    }
    assert_eq!(
        sqlite.copy_to(&pg).await.unwrap()["already_migrated"],
        json!(true)
    );
    // New rows after the copy continue the numbering.
    let runner_pg = Runner::with_parts(
        load_config(f.dir.path().join("synapsor.runner.json")).unwrap(),
        pg,
    )
    .unwrap();
    runner_pg.approve(&pending, &lead()).await.unwrap();
    let replay = runner_pg.ledger().replay_view(&pending).await.unwrap();
    let ids: Vec<i64> = replay["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let err = sqlite.copy_to(runner_pg.ledger()).await.unwrap_err();
    assert_eq!(err.code(), "LEDGER_NOT_EMPTY");
}

/// `store migrate` at size: a SQLite ledger with 10,000 proposals (some approved, some
/// rejected) copies into PostgreSQL with every digest checked and the same replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_proposals_copy_into_postgres() {
    // tmpfs where there is one: the copy is measured here, not ten thousand disk syncs.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    create_demo(dir.path()).unwrap();
    let config = load_config(dir.path().join("synapsor.runner.json")).unwrap();
    let runner =
        Runner::with_parts(config, Ledger::open(&dir.path().join("l.db")).unwrap()).unwrap();
    let template = propose(&runner, "INV-3001", "grace").await.unwrap();
    let sqlite = runner.ledger();
    let template = sqlite.proposal(&template).await.unwrap().change_set;
    let mut ids = Vec::new();
    for i in 0..9_999 {
        let mut cs = template.clone();
        cs.proposal_id = format!("wrp_copy{i:016}");
        cs.scope.object_id = format!("COPY-{i:06}");
        cs.evidence.bundle_id = format!("ev_copy{i:016}");
        cs.integrity.proposal_hash = cs.compute_hash();
        let (mut bundle, audit) = evidence_for(&cs);
        bundle.evidence_bundle_id = cs.evidence.bundle_id.clone();
        ids.push(cs.proposal_id.clone());
        sqlite.create_proposal(cs, bundle, audit).await.unwrap();
    }
    for id in ids.iter().step_by(10) {
        sqlite.approve(id, &lead(), Some("ok")).await.unwrap();
    }
    for id in ids.iter().skip(5).step_by(10) {
        sqlite.reject(id, &lead(), "no").await.unwrap();
    }
    assert_eq!(sqlite.count("proposals").await.unwrap(), 10_000);

    let db = common::PgDatabase::create("ledger_10k");
    let url = common::with_db(&common::admin_url(), &db.0);
    let pg = Ledger::open_postgres(&url, "synapsor", "TEST_URL")
        .await
        .unwrap();
    let out = sqlite.copy_to(&pg).await.unwrap();
    assert_eq!(out["proposals"], json!(10_000), "{out}");
    assert_eq!(out["check"]["problems"], json!([]));
    assert_eq!(out["check"]["checked"]["proposals"], json!(10_000));
    for t in synapsor_runner::ledger::TABLES {
        assert_eq!(
            pg.count(t).await.unwrap(),
            sqlite.count(t).await.unwrap(),
            "{t}"
        );
    }
    for id in ids.iter().step_by(997) {
        assert_eq!(
            without_generated_at(pg.replay_view(id).await.unwrap()),
            without_generated_at(sqlite.replay_view(id).await.unwrap()),
            "{id}"
        );
    }
    assert_eq!(
        pg.list_proposals(Some("approved"), None, 200)
            .await
            .unwrap()
            .len(),
        sqlite
            .list_proposals(Some("approved"), None, 200)
            .await
            .unwrap()
            .len()
    );
}
