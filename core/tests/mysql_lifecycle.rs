//! The core lifecycle on MariaDB/MySQL: each test gets its own database loaded with the
//! reference MySQL orders example (its users, grants and legacy receipt table included).

mod common;

use serde_json::{Value, json};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use synapsor_runner::apply::job_for_executor;
use synapsor_runner::config::load_config_str;
use synapsor_runner::protocol::WritebackJob;
use synapsor_runner::{ApplyOptions, Approver, Ledger, Runner, TrustedContext};

const PROPOSE: &str = "orders.propose_refund_review";
const INSPECT: &str = "orders.inspect_order";

use common::mariadb;

struct MyDb {
    name: String,
    dir: tempfile::TempDir,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl MyDb {
    fn orders() -> MyDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "synm_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        mariadb(None, &format!("CREATE DATABASE {name}"));
        let schema = std::fs::read_to_string(common::fixture(
            "examples/mcp-mysql-orders/seed/001_schema.sql",
        ))
        .unwrap()
        .replace("synapsor_runner_mcp_orders", &name);
        mariadb(Some(&name), &schema);
        MyDb {
            name,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn sql(&self, sql: &str) -> String {
        mariadb(Some(&self.name), sql)
    }

    fn runner(&self) -> Runner {
        let text = std::fs::read_to_string(common::fixture(
            "examples/mcp-mysql-orders/synapsor.runner.json",
        ))
        .unwrap();
        let mut cfg: Value = serde_json::from_str(&text).unwrap();
        let p = self.name.to_uppercase();
        cfg["sources"]["app_mysql_orders"]["read_url_env"] = json!(format!("{p}_READ"));
        cfg["sources"]["app_mysql_orders"]["write_url_env"] = json!(format!("{p}_WRITE"));
        cfg["trusted_context"] = json!({"provider": "host"});
        for cap in cfg["capabilities"].as_array_mut().unwrap() {
            cap["target"]["schema"] = json!(self.name);
        }
        let path = self.dir.path().join("synapsor.runner.json");
        let loaded = load_config_str(&serde_json::to_string(&cfg).unwrap(), &path).unwrap();
        Runner::with_parts_and_env(
            loaded,
            Ledger::open(&self.dir.path().join("local.db")).unwrap(),
            &self.env(),
        )
        .unwrap()
    }

    /// The connection URLs the config's variables name, handed to the runner directly.
    fn env(&self) -> std::collections::HashMap<String, String> {
        let p = self.name.to_uppercase();
        let url = |role: &str| {
            format!(
                "mysql://{role}:{role}_password@127.0.0.1:3306/{}",
                self.name
            )
        };
        [
            (format!("{p}_READ"), url("synapsor_reader")),
            (format!("{p}_WRITE"), url("synapsor_writer")),
        ]
        .into_iter()
        .collect()
    }

    fn order(&self, id: &str) -> String {
        self.sql(&format!("SELECT CONCAT_WS('|', refund_review_status, IFNULL(refund_note, '<null>'), updated_at) FROM orders WHERE id = '{id}'"))
    }

    fn digest(&self) -> String {
        self.sql("SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', id, tenant_id, status, refund_review_status, IFNULL(refund_note, ''), updated_at) ORDER BY id)) FROM orders")
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args([
                "-uroot",
                "-h127.0.0.1",
                "-e",
                &format!("DROP DATABASE IF EXISTS {}", self.name),
            ])
            .output();
    }
}

fn acme() -> TrustedContext {
    TrustedContext::new("acme", "agent_7")
}

fn lead() -> Approver {
    Approver::new("ops_lead_1").role("orders_lead")
}

async fn approved(runner: &Runner, note: &str) -> String {
    let p = runner
        .propose(
            PROPOSE,
            json!({"order_id": "O-1001", "refund_note": note}),
            &acme(),
        )
        .await
        .expect("propose");
    runner
        .approve(&p.proposal_id, &lead())
        .await
        .expect("approve");
    p.proposal_id
}

#[tokio::test]
async fn read_propose_approve_apply_and_retry_on_mariadb() {
    let db = MyDb::orders();
    let runner = db.runner();
    let r = runner
        .inspect(INSPECT, json!({"order_id": "O-1001"}), &acme())
        .await
        .unwrap();
    assert_eq!(r.data["status"], json!("paid"));
    assert_eq!(r.data["updated_at"], json!("2026-06-20T12:00:00"));
    let before = db.digest();
    let p = runner
        .propose(
            PROPOSE,
            json!({"order_id": "O-1001", "refund_note": "customer asked"}),
            &acme(),
        )
        .await
        .unwrap();
    assert_eq!(db.digest(), before, "propose must not write to the source");
    let e = runner
        .approve(&p.proposal_id, &Approver::new("x").role("billing_lead"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "APPROVER_ROLE_MISSING");
    runner.approve(&p.proposal_id, &lead()).await.unwrap();
    let other = db.order("O-9001");
    let out = runner
        .apply(&p.proposal_id, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (out.receipt.status.as_str(), out.receipt.rows_affected),
        ("applied", 1),
        "{:?}",
        out.receipt
    );
    assert!(
        db.order("O-1001")
            .starts_with("review_required|customer asked|")
    );
    assert_eq!(db.order("O-9001"), other);
    assert_eq!(
        db.sql("SELECT status FROM synapsor_writeback_receipts"),
        "applied"
    );
    let retry = runner
        .apply(&p.proposal_id, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (retry.receipt.status.as_str(), retry.receipt.rows_affected),
        ("already_applied", 0)
    );
}

#[tokio::test]
async fn microsecond_version_conflict_leaves_the_row_untouched_on_mariadb() {
    let db = MyDb::orders();
    db.sql("ALTER TABLE orders MODIFY updated_at DATETIME(6) NOT NULL");
    db.sql("UPDATE orders SET updated_at = '2026-06-20 12:00:00.123456' WHERE id = 'O-1001'");
    let runner = db.runner();
    let id = approved(&runner, "stale").await;
    assert_eq!(
        runner
            .ledger()
            .proposal(&id)
            .await
            .unwrap()
            .change_set
            .guards
            .expected_version
            .value,
        json!("2026-06-20T12:00:00.123456")
    );
    db.sql(
        "UPDATE orders SET updated_at = updated_at + INTERVAL 1 MICROSECOND WHERE id = 'O-1001'",
    );
    let before = db.order("O-1001");
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(
        (
            out.receipt.status.as_str(),
            out.receipt.safe_error_code.as_deref()
        ),
        ("conflict", Some("VERSION_CONFLICT"))
    );
    assert_eq!(db.order("O-1001"), before);

    let db2 = MyDb::orders();
    db2.sql("ALTER TABLE orders MODIFY updated_at DATETIME(6) NOT NULL");
    db2.sql("UPDATE orders SET updated_at = '2026-06-20 12:00:00.123456' WHERE id = 'O-1001'");
    let runner2 = db2.runner();
    let id2 = approved(&runner2, "fresh").await;
    assert_eq!(
        runner2
            .apply(&id2, &ApplyOptions::default())
            .await
            .unwrap()
            .receipt
            .status,
        "applied",
        "an untouched microsecond version applies"
    );
}

#[tokio::test]
async fn writing_identical_values_still_counts_one_row() {
    let db = MyDb::orders();
    db.sql("UPDATE orders SET refund_review_status = 'review_required', refund_note = 'same' WHERE id = 'O-1001'");
    let runner = db.runner();
    let id = approved(&runner, "same").await;
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(
        (out.receipt.status.as_str(), out.receipt.rows_affected),
        ("applied", 1),
        "{:?}",
        out.receipt
    );
}

#[tokio::test]
async fn cross_tenant_and_spoofed_tenant_are_refused_on_mariadb() {
    let db = MyDb::orders();
    let runner = db.runner();
    let foreign =
        synapsor_runner::agent::call_tool(&runner, INSPECT, json!({"order_id": "O-9001"}), &acme())
            .await;
    let missing =
        synapsor_runner::agent::call_tool(&runner, INSPECT, json!({"order_id": "O-0000"}), &acme())
            .await;
    assert_eq!(foreign["error"]["code"], json!("NOT_FOUND_IN_TENANT"));
    assert_eq!(foreign, missing);
    let e = runner
        .inspect(
            INSPECT,
            json!({"order_id": "O-9001", "tenant_id": "otherco"}),
            &acme(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "MODEL_CANNOT_OVERRIDE_BINDING");
}

#[tokio::test]
async fn sixteen_concurrent_applies_mutate_once_on_mariadb() {
    let db = MyDb::orders();
    db.sql("CREATE TABLE update_log (id INT AUTO_INCREMENT PRIMARY KEY, order_id VARCHAR(64))");
    db.sql("CREATE TRIGGER orders_log AFTER UPDATE ON orders FOR EACH ROW INSERT INTO update_log (order_id) VALUES (NEW.id)");
    let runner = db.runner();
    let id = approved(&runner, "concurrent").await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let r = runner.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            r.apply(&id, &ApplyOptions::default()).await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.unwrap().expect("apply").receipt;
        statuses.push(format!(
            "{}{}",
            r.status,
            r.safe_error_code
                .map(|c| format!(":{c}"))
                .unwrap_or_default()
        ));
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
    assert_eq!(db.sql("SELECT COUNT(*) FROM update_log"), "1");
    assert_eq!(
        runner.ledger().count("writeback_receipts").await.unwrap(),
        1
    );
    let status: String = runner
        .ledger()
        .raw(|c| c.query_row("SELECT status FROM writeback_receipts", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(status, "applied");
}

#[tokio::test]
async fn tampered_jobs_are_refused_before_mariadb_is_touched() {
    let db = MyDb::orders();
    let runner = db.runner();
    let id = approved(&runner, "tamper").await;
    let p = runner.ledger().proposal(&id).await.unwrap();
    let base = job_for_executor(&p, "mysql", "sql_update", &ApplyOptions::default()).to_value();
    type Tamper = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Tamper, &str)> = vec![
        (
            Box::new(|j| j["target"]["table"] = json!("accounts")),
            "CAPABILITY_MISMATCH",
        ),
        (
            Box::new(|j| j["tenant_guard"]["column"] = json!("org_id")),
            "CAPABILITY_MISMATCH",
        ),
        (
            Box::new(|j| j["conflict_guard"]["column"] = json!("modified_at")),
            "CONFLICT_GUARD_MISMATCH",
        ),
        (
            Box::new(|j| {
                j["allowed_columns"] = json!(["refund_review_status", "refund_note", "status"])
            }),
            "ALLOWLIST_WIDENED",
        ),
        (
            Box::new(|j| j["patch"]["refund_note"] = json!("something else")),
            "JOB_PATCH_MISMATCH",
        ),
        (
            Box::new(|j| j["target"]["schema"] = json!("../private")),
            "UNSAFE_IDENTIFIER",
        ),
        (
            Box::new(|j| {
                j["allowed_columns"] = json!(["id", "refund_review_status", "refund_note"])
            }),
            "PRIMARY_KEY_ALLOWLISTED",
        ),
        (
            Box::new(|j| j["lease"]["expires_at"] = json!("2020-01-01T00:00:00Z")),
            "WRITEBACK_LEASE_EXPIRED",
        ),
        (
            Box::new(|j| j["proposal_hash"] = json!("sha256:tampered")),
            "PROPOSAL_HASH_MISMATCH",
        ),
    ];
    let before = db.digest();
    for (tamper, code) in cases {
        let mut job = base.clone();
        tamper(&mut job);
        let e = match WritebackJob::parse(&job) {
            Err(e) => e,
            Ok(j) => runner
                .apply_job(&j, &ApplyOptions::default())
                .await
                .unwrap_err(),
        };
        assert_eq!(e.code(), code, "{e}");
    }
    assert_eq!(db.digest(), before);
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM synapsor_writeback_receipts"),
        "0"
    );
}

#[tokio::test]
async fn in_process_callback_runs_in_the_guarded_mariadb_transaction() {
    use std::sync::Arc;
    use synapsor_runner::write::executor::{ExecutorFailure, ExecutorJob, GuardedTx};
    for fail in [false, true] {
        let db = MyDb::orders();
        let text = std::fs::read_to_string(common::fixture(
            "examples/mcp-mysql-orders/synapsor.runner.json",
        ))
        .unwrap();
        let mut cfg: Value = serde_json::from_str(&text).unwrap();
        let p = db.name.to_uppercase();
        cfg["sources"]["app_mysql_orders"]["read_url_env"] = json!(format!("{p}_READ"));
        cfg["sources"]["app_mysql_orders"]["write_url_env"] = json!(format!("{p}_WRITE"));
        cfg["trusted_context"] = json!({"provider": "host"});
        cfg["executors"] = json!({"orders_inproc": {"type": "in_process"}});
        cfg["capabilities"][1]["executor"] = json!("orders_inproc");
        for cap in cfg["capabilities"].as_array_mut().unwrap() {
            cap["target"]["schema"] = json!(db.name);
        }
        let loaded = load_config_str(
            &serde_json::to_string(&cfg).unwrap(),
            &db.dir.path().join("c.json"),
        )
        .unwrap();
        let runner = Runner::with_parts_and_env(
            loaded,
            Ledger::open(&db.dir.path().join("inproc.db")).unwrap(),
            &db.env(),
        )
        .unwrap();
        runner.register_executor("orders_inproc", move |job: ExecutorJob, tx: Option<GuardedTx>| async move {
            let tx = tx.expect("guarded transaction");
            let order = job.request["change_set"]["scope"]["object_id"].clone();
            let n = tx.execute("UPDATE orders SET status_change_reason = ?, refund_review_status = ? WHERE id = ?", &[json!("refund reviewed in app"), json!("review_required"), order]).await.map_err(|e| ExecutorFailure::Callback(Arc::new(e)))?;
            if fail {
                return Err(ExecutorFailure::Callback(Arc::new(std::io::Error::other("app refused"))));
            }
            Ok(json!({"status": "applied", "rows_affected": n, "source_database_mutated": true}))
        });
        let id = approved(&runner, "in process").await;
        let result = runner.apply(&id, &ApplyOptions::default()).await;
        let reason =
            db.sql("SELECT IFNULL(status_change_reason, '<null>') FROM orders WHERE id = 'O-1001'");
        let receipts = db.sql("SELECT COUNT(*) FROM synapsor_writeback_receipts");
        if fail {
            assert_eq!(result.unwrap_err().code(), "HANDLER_EXCEPTION");
            assert_eq!(
                (reason.as_str(), receipts.as_str()),
                ("<null>", "0"),
                "rolled back with the receipt"
            );
        } else {
            assert_eq!(result.unwrap().receipt.status, "applied");
            assert_eq!(
                (reason.as_str(), receipts.as_str()),
                ("refund reviewed in app", "1")
            );
            // Called once; a retry the receipt answers never calls it.
            let seen = common::Recording::default();
            runner.register_executor("orders_inproc", seen.clone());
            let id = approved(&runner, "called once").await;
            let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
            assert_eq!(out.receipt.status, "applied", "{:?}", out.receipt);
            assert_eq!(seen.take(), ["execute"]);
            let retry = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
            assert_eq!(retry.receipt.status, "already_applied");
            assert!(seen.take().is_empty());
        }
    }
}

#[tokio::test]
async fn writeback_probe_reports_permissions_without_writing() {
    let db = MyDb::orders();
    let runner = db.runner();
    let note = runner.probe_writeback("app_mysql_orders").await.unwrap();
    assert!(
        note.starts_with("MariaDB") || note.starts_with("MySQL"),
        "{note}"
    );
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM synapsor_writeback_receipts"),
        "0",
        "the probe rolled back"
    );
    db.sql(&format!(
        "REVOKE INSERT ON {}.synapsor_writeback_receipts FROM 'synapsor_writer'@'%'",
        db.name
    ));
    db.sql("FLUSH PRIVILEGES");
    let fresh = db.runner();
    assert!(
        fresh.probe_writeback("app_mysql_orders").await.is_err(),
        "a writer without INSERT on the receipt table fails the probe"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_connection_the_server_killed_is_replaced_without_failing_the_read() {
    let db = MyDb::orders();
    let runner = db.runner();
    let ctx = acme();
    let read = || runner.inspect(INSPECT, json!({"order_id": "O-1001"}), &ctx);
    let readers = || {
        db.sql(&format!(
            "SELECT GROUP_CONCAT(ID ORDER BY ID) FROM information_schema.PROCESSLIST WHERE USER = 'synapsor_reader' AND DB = '{}'",
            db.name
        ))
    };
    for _ in 0..5 {
        read().await.unwrap();
    }
    let before = readers();
    assert!(
        !before.is_empty() && !before.contains(','),
        "sequential reads share one connection: {before}"
    );
    db.sql(&format!("KILL CONNECTION {before}"));
    let r = read()
        .await
        .expect("the read starts again on a new connection");
    assert_eq!(r.data["status"], json!("paid"));
    let after = readers();
    assert!(
        !after.is_empty() && after != before,
        "{before} then {after}"
    );
}
