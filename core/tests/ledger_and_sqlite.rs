//! Ledger behaviour (migrations, append-only events, secret refusal, persistence) and the
//! whole lifecycle on an embedded SQLite source.

mod common;

use serde_json::json;
use synapsor_runner::demo::{create_demo, invoice_row, simulate_concurrent_edit};
use synapsor_runner::{ApplyOptions, Approver, Ledger, OpenOptions, Runner, TrustedContext};

async fn demo_runner(dir: &std::path::Path) -> Runner {
    create_demo(dir).unwrap();
    Runner::open(
        OpenOptions::config_path(dir.join("synapsor.runner.json")).ledger(dir.join("local.db")),
    )
    .await
    .unwrap()
}

/// The demo's `billing.inspect_invoice` for one invoice.
async fn inspect_invoice(
    runner: &Runner,
    invoice_id: &str,
    ctx: &TrustedContext,
) -> synapsor_runner::Result<synapsor_runner::ReadResult> {
    runner
        .inspect(
            "billing.inspect_invoice",
            json!({ "invoice_id": invoice_id }),
            ctx,
        )
        .await
}

fn lead() -> Approver {
    Approver::new("lead").role("billing_lead")
}

/// The demo's late-fee waiver for INV-3001, proposed in the config's context; its id.
async fn propose_waiver(runner: &Runner) -> String {
    runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": "INV-3001", "reason": "r"}),
            &TrustedContext::from_config(),
        )
        .await
        .unwrap()
        .proposal_id
}

#[tokio::test]
async fn migrations_run_once_and_reopening_is_a_pragma_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let l = Ledger::open(&path).unwrap();
    assert_eq!(l.schema_version().await.unwrap(), 1);
    drop(l);
    let l = Ledger::open(&path).unwrap();
    assert_eq!(l.schema_version().await.unwrap(), 1);
    let names: Vec<String> = l
        .raw(|c| {
            c.prepare("SELECT name FROM sqlite_master WHERE type = 'index'")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .await
        .unwrap();
    // Every lookup the CLI does has an index: latest, active-per-object, by state/tenant, events, receipts.
    for idx in [
        "idx_proposals_created",
        "idx_proposals_active",
        "idx_proposals_state_created",
        "idx_proposals_tenant_created",
        "idx_proposal_events_proposal_id",
        "idx_approvals_proposal_id",
        "idx_writeback_jobs_proposal_id",
        "idx_writeback_receipts_proposal_id",
        "idx_evidence_bundles_proposal_id",
        "idx_evidence_items_bundle_id",
        "idx_query_audit_proposal_id",
        "idx_query_audit_evidence_id",
    ] {
        assert!(names.iter().any(|n| n == idx), "{idx} missing");
    }
    let journal: String = l
        .raw(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn the_active_proposal_lookup_searches_the_per_object_index() {
    let l = Ledger::open_in_memory().unwrap();
    let plan = l.active_lookup_plan().await.unwrap();
    assert!(
        plan.contains("SEARCH proposals USING INDEX idx_proposals_active"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN"), "{plan}");
}

#[tokio::test]
async fn events_are_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let runner = demo_runner(dir.path()).await;
    let id = propose_waiver(&runner).await;
    let upd = runner
        .ledger()
        .raw(|c| c.execute("UPDATE proposal_events SET actor = 'someone_else'", []))
        .await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = runner
        .ledger()
        .raw(move |c| c.execute("DELETE FROM proposal_events WHERE proposal_id = ?1", [&id]))
        .await;
    assert!(del.unwrap_err().to_string().contains("append-only"));
    assert_eq!(runner.ledger().count("proposal_events").await.unwrap(), 2);
}

#[tokio::test]
async fn secret_material_never_reaches_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    create_demo(dir.path()).unwrap();
    // A reviewed column holding credential-like text is masked: the row stays readable, the
    // model and the evidence see the marker, the ledger never sees the credential.
    let cfg_path = dir.path().join("synapsor.runner.json");
    let text = std::fs::read_to_string(&cfg_path).unwrap().replace(
        "\"balance_cents\", \"late_fee_cents\"",
        "\"balance_cents\", \"late_fee_cents\", \"customer_id\"",
    );
    std::fs::write(&cfg_path, text).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("billing.sqlite")).unwrap();
    conn.execute("UPDATE invoices SET customer_id = 'postgresql://admin:hunter2@db/prod' WHERE id = 'INV-3001'", []).unwrap();
    let runner =
        Runner::open(OpenOptions::config_path(&cfg_path).ledger(dir.path().join("local.db")))
            .await
            .unwrap();
    let read = inspect_invoice(&runner, "INV-3001", &TrustedContext::from_config())
        .await
        .unwrap();
    assert_eq!(read.data["customer_id"], json!("<redacted>"));
    assert_eq!(runner.ledger().count("evidence_bundles").await.unwrap(), 1);
    let env = synapsor_runner::agent::call_tool(
        &runner,
        "billing.inspect_invoice",
        json!({"invoice_id": "INV-3001"}),
        &TrustedContext::from_config(),
    )
    .await;
    assert_eq!(env["ok"], json!(true), "{env}");
    assert!(!env.to_string().contains("hunter2"));
    let stored = runner
        .ledger()
        .raw(|c| {
            c.query_row(
                "SELECT group_concat(item_json, '') FROM evidence_items",
                [],
                |r| r.get::<_, String>(0),
            )
        })
        .await
        .unwrap();
    assert!(!stored.contains("hunter2"));
    // What the ledger is asked to store directly is still refused outright.
    let err = synapsor_runner::ledger::assert_no_secret_material(
        &json!({"note": "host=db password=hunter2"}),
        "x",
    )
    .unwrap_err();
    assert_eq!(err.code(), "SECRET_MATERIAL_REJECTED");
}

#[tokio::test]
async fn sqlite_source_runs_the_whole_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let runner = demo_runner(dir.path()).await;
    let ctx = TrustedContext::from_config();
    let p = runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": "INV-3001", "reason": "grace"}),
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(
        invoice_row(dir.path(), "INV-3001").unwrap()["late_fee_cents"],
        json!(5500)
    );
    runner.approve(&p.proposal_id, &lead()).await.unwrap();
    let out = runner
        .apply(&p.proposal_id, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (out.receipt.status.as_str(), out.receipt.rows_affected),
        ("applied", 1)
    );
    assert_eq!(
        invoice_row(dir.path(), "INV-3001").unwrap()["late_fee_cents"],
        json!(0)
    );
    let retry = runner
        .apply(&p.proposal_id, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (retry.receipt.status.as_str(), retry.receipt.rows_affected),
        ("already_applied", 0)
    );

    let stale = runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": "INV-3002", "reason": "x"}),
            &ctx,
        )
        .await
        .unwrap();
    simulate_concurrent_edit(dir.path(), "INV-3002").unwrap();
    runner.approve(&stale.proposal_id, &lead()).await.unwrap();
    let before = invoice_row(dir.path(), "INV-3002").unwrap();
    let c = runner
        .apply(&stale.proposal_id, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(c.receipt.status, "conflict");
    assert_eq!(invoice_row(dir.path(), "INV-3002").unwrap(), before);

    let foreign = inspect_invoice(&runner, "INV-9001", &ctx)
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), "NOT_FOUND_IN_TENANT");
}

#[tokio::test]
async fn a_read_result_as_json_is_what_serde_gives() {
    let dir = tempfile::tempdir().unwrap();
    let runner = demo_runner(dir.path()).await;
    let read = inspect_invoice(&runner, "INV-3001", &TrustedContext::from_config())
        .await
        .unwrap();
    let by_serde = serde_json::to_value(&read).unwrap();
    assert!(!read.data.is_empty());
    let moved = read.into_json();
    assert_eq!(moved, by_serde);
    // The same keys in the same order, so the JSON text is the same too.
    assert_eq!(moved.to_string(), by_serde.to_string());
}

#[tokio::test]
async fn ledger_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let runner = demo_runner(dir.path()).await;
        let id = propose_waiver(&runner).await;
        runner.approve(&id, &lead()).await.unwrap();
        id
    };
    let runner = Runner::open(
        OpenOptions::config_path(dir.path().join("synapsor.runner.json"))
            .ledger(dir.path().join("local.db")),
    )
    .await
    .unwrap();
    assert_eq!(
        runner.ledger().proposal(&id).await.unwrap().state,
        "approved"
    );
    assert_eq!(
        runner.ledger().resolve_selector("latest").await.unwrap(),
        id
    );
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(out.receipt.status, "applied");
    let replay = runner.replay(&id).await.unwrap();
    for key in [
        "evidence",
        "query_audit",
        "approvals",
        "jobs",
        "receipts",
        "events",
    ] {
        assert!(
            !replay[key].as_array().unwrap().is_empty(),
            "replay.{key} is empty"
        );
    }
    assert_eq!(replay["replay_id"], json!(format!("replay_{id}")));
}

#[tokio::test]
async fn shadow_mode_stores_proposals_but_never_approves() {
    let dir = tempfile::tempdir().unwrap();
    create_demo(dir.path()).unwrap();
    let cfg = dir.path().join("synapsor.runner.json");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("\"mode\": \"review\"", "\"mode\": \"shadow\""),
    )
    .unwrap();
    let runner = Runner::open(OpenOptions::config_path(&cfg).ledger(dir.path().join("local.db")))
        .await
        .unwrap();
    let env = synapsor_runner::agent::call_tool(
        &runner,
        "billing.propose_late_fee_waiver",
        json!({"invoice_id": "INV-3001", "reason": "r"}),
        &TrustedContext::from_config(),
    )
    .await;
    assert_eq!(env["proposal"]["state"], json!("shadow_proposal_created"));
    let id = env["proposal"]["id"].as_str().unwrap();
    let e = runner.approve(id, &lead()).await.unwrap_err();
    assert_eq!(e.code(), "SHADOW_WRITEBACK_DISABLED");
}

#[test]
fn only_the_sql_module_asserts_sql_safety() {
    let root = common::repo_root();
    let mut offenders = Vec::new();
    let mut stack = vec![root.join("core/src"), root.join("cli/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().map(|e| e == "rs").unwrap_or(false) {
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("AssertSqlSafe") && !path.starts_with(root.join("core/src/sql")) {
                    offenders.push(path);
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "AssertSqlSafe outside core/src/sql: {offenders:?}"
    );
}

/// A stored change set is read straight into its typed form; what it reads is what parsing the
/// stored JSON as a tree gives, and a damaged row still fails with the precise error.
#[tokio::test]
async fn a_stored_change_set_reads_back_as_stored_and_damage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let runner = demo_runner(dir.path()).await;
    let id = propose_waiver(&runner).await;
    let key = id.clone();
    let stored: String = runner
        .ledger()
        .raw(move |c| {
            c.query_row(
                "SELECT change_set_json FROM proposals WHERE proposal_id = ?1",
                [&key],
                |r| r.get(0),
            )
        })
        .await
        .unwrap();
    let tree: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let read = runner.ledger().proposal(&id).await.unwrap().change_set;
    assert_eq!(
        read,
        synapsor_runner::protocol::ChangeSet::parse(&tree).unwrap()
    );
    assert_eq!(read.to_value(), tree);

    let store = async |json: &str| {
        let (json, id) = (json.to_string(), id.clone());
        runner
            .ledger()
            .raw(move |c| {
                c.execute(
                    "UPDATE proposals SET change_set_json = ?1 WHERE proposal_id = ?2",
                    [json.as_str(), id.as_str()],
                )
            })
            .await
            .unwrap();
    };
    let damage = async |json: &str| {
        store(json).await;
        runner.ledger().proposal(&id).await.unwrap_err()
    };
    let not_json = damage("{not json").await;
    assert!(
        not_json
            .to_string()
            .contains("stored change set is not JSON"),
        "{not_json}"
    );
    let mut wrong = tree.clone();
    wrong["schema_version"] = json!("synapsor.change-set.v0");
    assert_eq!(damage(&wrong.to_string()).await.code(), "PROTOCOL_INVALID");
    let mut unknown = tree.clone();
    unknown["surprise"] = json!(1);
    assert_eq!(
        damage(&unknown.to_string()).await.code(),
        "PROTOCOL_INVALID"
    );
    // A key written twice: the typed reader refuses it, the tree keeps the last one, as before.
    store(&format!("{{\"mode\":\"other\",{}", &stored[1..])).await;
    assert_eq!(
        runner.ledger().proposal(&id).await.unwrap().change_set,
        read
    );
}
