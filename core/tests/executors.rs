//! App-owned executors against real loopback HTTP servers, real commands, and in-process
//! callbacks in the guarded transaction on PostgreSQL and SQLite.

mod common;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use synapsor_runner::demo::create_demo;
use synapsor_runner::write::executor::{ExecutorFailure, ExecutorJob, GuardedTx};
use synapsor_runner::{ApplyOptions, Approver, Error, OpenOptions, Runner, TrustedContext};

const WAIVER: &str = "billing.propose_late_fee_waiver";

fn lead() -> Approver {
    Approver::new("lead").role("billing_lead")
}

thread_local! {
    /// The handler variables a test hands over (`OpenOptions::env`), not the process's.
    static GIVEN_ENV: std::cell::RefCell<std::collections::HashMap<String, String>> =
        Default::default();
}

/// Hand `k=v` to the runners this test opens next.
fn set_env(k: &str, v: &str) {
    GIVEN_ENV.with(|e| e.borrow_mut().insert(k.to_string(), v.to_string()));
}

/// One request as the handler saw it.
#[derive(Clone, Debug)]
struct Seen {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

type Reply = Box<dyn Fn(&Seen, usize) -> (u16, String, u64) + Send + Sync>;

/// A real HTTP/1.1 server on loopback; `reply(request, n)` decides status, body and delay (ms).
fn serve(reply: Reply) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/synapsor/writeback",
        listener.local_addr().unwrap()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let log = log.clone();
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let req = Seen { headers, body };
                log.lock().unwrap().push(req.clone());
                let (status, text, delay) = reply(&req, n);
                std::thread::sleep(Duration::from_millis(delay));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    (url, seen)
}

/// The SQLite demo with the waiver capability routed to `executor`.
async fn demo_with_executor(dir: &std::path::Path, executor: Value) -> Runner {
    create_demo(dir).unwrap();
    synapsor_runner::demo::route_proposals_to_executor(dir, executor).unwrap();
    open_demo(dir).await
}

/// The demo in `dir`, opened with the variables handed over so far.
async fn open_demo(dir: &std::path::Path) -> Runner {
    let opts =
        OpenOptions::config_path(dir.join("synapsor.runner.json")).ledger(dir.join("local.db"));
    let opts = GIVEN_ENV.with(|e| {
        e.borrow()
            .iter()
            .fold(opts, |o, (k, v)| o.env(k.as_str(), v.as_str()))
    });
    Runner::open(opts).await.unwrap()
}

async fn approved(runner: &Runner) -> String {
    let p = runner
        .propose(
            WAIVER,
            json!({"invoice_id": "INV-3001", "reason": "handler test"}),
            &TrustedContext::from_config(),
        )
        .await
        .unwrap();
    runner.approve(&p.proposal_id, &lead()).await.unwrap();
    p.proposal_id
}

#[tokio::test]
async fn http_handler_gets_a_signed_authenticated_documented_request() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cret-signing-key";
    let (url, seen) = serve(Box::new(move |req, _| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&req.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        if req.header("authorization") != Some("Bearer tok-1") {
            return (401, r#"{"status":"failed","rows_affected":0,"source_database_mutated":false,"safe_error_code":"UNAUTHORIZED"}"#.into(), 0);
        }
        if req.header("x-synapsor-signature") != Some(expected.as_str()) {
            return (401, r#"{"status":"failed","rows_affected":0,"source_database_mutated":false,"safe_error_code":"INVALID_SIGNATURE"}"#.into(), 0);
        }
        (200, r#"{"status":"applied","rows_affected":2,"source_database_mutated":true,"details":{"api_token":"leaky"}}"#.into(), 0)
    }));
    set_env("T_HTTP1_URL", &url);
    set_env("T_HTTP1_TOKEN", "tok-1");
    set_env("T_HTTP1_SECRET", secret);
    let runner = demo_with_executor(dir.path(), json!({"type": "http_handler", "url_env": "T_HTTP1_URL", "auth": {"type": "bearer_env", "token_env": "T_HTTP1_TOKEN"}, "signing_secret_env": "T_HTTP1_SECRET", "timeout_ms": 2000})).await;
    let id = approved(&runner).await;
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(out.receipt.status, "applied", "{:?}", out.receipt);
    assert_eq!(out.receipt.rows_affected, 2);
    assert!(out.receipt.source_database_mutated);
    assert_eq!(out.executor, "http_handler");
    assert_eq!(
        out.receipt.extra["details"]["api_token"],
        json!("<redacted>")
    );
    let req = seen.lock().unwrap()[0].clone();
    let body = req.json();
    assert_eq!(
        req.header("idempotency-key"),
        Some(format!("{id}:INV-3001").as_str())
    );
    assert_eq!(req.header("x-synapsor-proposal-id"), Some(id.as_str()));
    assert_eq!(
        req.header("x-synapsor-issued-at"),
        body["issued_at"].as_str()
    );
    assert_eq!(
        body["change_set"]["scope"],
        json!({"tenant_id": "acme", "object_id": "INV-3001"})
    );
    assert_eq!(
        body["change_set"]["principal"]["id"],
        json!("support_agent_17")
    );
    assert_eq!(
        body["change_set"]["patch"],
        json!({"late_fee_cents": 0, "waiver_reason": "handler test"})
    );
    assert_eq!(
        body["change_set"]["guards"]["expected_version"]["column"],
        json!("updated_at")
    );
    assert_eq!(body["writeback_job_id"], json!(format!("hwb_{id}")));
    let text = String::from_utf8_lossy(&req.body);
    assert!(!text.contains("tok-1") && !text.contains(secret) && !text.contains("\"sql\""));
    let stored: String = runner
        .ledger()
        .raw(|c| {
            c.query_row(
                "SELECT group_concat(receipt_json) FROM writeback_receipts",
                [],
                |r| r.get(0),
            )
        })
        .await
        .unwrap();
    assert!(
        !stored.contains("leaky") && !stored.contains(&url) && !stored.contains("tok-1"),
        "{stored}"
    );
    assert_eq!(
        runner.ledger().proposal(&id).await.unwrap().state,
        "applied"
    );

    // Wrong token: the handler refuses, the runner records a failed receipt.
    set_env("T_HTTP1_TOKEN", "wrong");
    let runner = open_demo(dir.path()).await;
    let id2 = {
        let p = runner
            .propose(
                WAIVER,
                json!({"invoice_id": "INV-3002", "reason": "x"}),
                &TrustedContext::from_config(),
            )
            .await
            .unwrap();
        runner.approve(&p.proposal_id, &lead()).await.unwrap();
        p.proposal_id
    };
    let out = runner.apply(&id2, &ApplyOptions::default()).await.unwrap();
    assert_eq!(
        (
            out.receipt.status.as_str(),
            out.receipt.safe_error_code.as_deref()
        ),
        ("failed", Some("HANDLER_HTTP_401"))
    );
    assert_eq!(
        runner.ledger().proposal(&id2).await.unwrap().state,
        "failed"
    );
}

#[tokio::test]
async fn http_handler_timeout_is_retryable_and_a_later_apply_succeeds_once() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = serve(Box::new(|_, n| {
        if n == 0 {
            (
                200,
                r#"{"status":"applied","rows_affected":1,"source_database_mutated":true}"#.into(),
                1500,
            )
        } else {
            (
                200,
                r#"{"status":"applied","rows_affected":1,"source_database_mutated":true}"#.into(),
                0,
            )
        }
    }));
    set_env("T_HTTP2_URL", &url);
    let runner = demo_with_executor(
        dir.path(),
        json!({"type": "http_handler", "url_env": "T_HTTP2_URL", "timeout_ms": 300}),
    )
    .await;
    let id = approved(&runner).await;
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(
        (
            out.receipt.status.as_str(),
            out.receipt.safe_error_code.as_deref()
        ),
        ("failed", Some("HANDLER_TIMEOUT"))
    );
    assert!(out.retryable);
    assert_eq!(
        runner.ledger().proposal(&id).await.unwrap().state,
        "approved"
    );
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(out.receipt.status, "applied");
    assert_eq!(
        runner.ledger().proposal(&id).await.unwrap().state,
        "applied"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "no automatic retries: one request per apply"
    );
}

#[tokio::test]
async fn http_handler_bad_answers_become_failed_receipts() {
    for (i, (status, body, code)) in [
        (
            200u16,
            r#"{"status":"weird","rows_affected":1,"source_database_mutated":true}"#,
            "HANDLER_RECEIPT_INVALID",
        ),
        (500, r#"{"status":"failed"}"#, "HANDLER_HTTP_500"),
        (200, "this is not json", "HANDLER_INVALID_JSON"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let body = body.to_string();
        let (url, _) = serve(Box::new(move |_, _| (status, body.clone(), 0)));
        let env = format!("T_HTTP3_URL_{i}");
        set_env(&env, &url);
        let runner =
            demo_with_executor(dir.path(), json!({"type": "http_handler", "url_env": env})).await;
        let id = approved(&runner).await;
        let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(
            (
                out.receipt.status.as_str(),
                out.receipt.safe_error_code.as_deref()
            ),
            ("failed", Some(code))
        );
        assert!(!out.receipt.source_database_mutated);
    }
}

#[tokio::test]
async fn duplicate_http_apply_sends_the_same_key_and_records_already_applied() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Arc<Mutex<Vec<String>>> = Arc::default();
    let k = keys.clone();
    let (url, _) = serve(Box::new(move |req, _| {
        let key = req.header("idempotency-key").unwrap().to_string();
        let mut keys = k.lock().unwrap();
        let dup = keys.contains(&key);
        keys.push(key);
        if dup {
            (
                200,
                r#"{"status":"already_applied","rows_affected":0,"source_database_mutated":false}"#
                    .into(),
                0,
            )
        } else {
            (
                200,
                r#"{"status":"applied","rows_affected":1,"source_database_mutated":true}"#.into(),
                0,
            )
        }
    }));
    set_env("T_HTTP4_URL", &url);
    let runner = demo_with_executor(
        dir.path(),
        json!({"type": "http_handler", "url_env": "T_HTTP4_URL"}),
    )
    .await;
    let id = approved(&runner).await;
    assert_eq!(
        runner
            .apply(&id, &ApplyOptions::default())
            .await
            .unwrap()
            .receipt
            .status,
        "applied"
    );
    let again = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(again.receipt.status, "already_applied");
    assert_eq!(again.receipt.rows_affected, 0);
    {
        let keys = keys.lock().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], keys[1]);
    }
    assert_eq!(
        runner.ledger().count("writeback_receipts").await.unwrap(),
        1
    );
    let replay = runner.replay(&id).await.unwrap();
    assert!(
        replay["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "writeback_already_applied")
    );
}

#[tokio::test]
async fn command_handler_reads_stdin_and_answers_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("handler.py");
    std::fs::write(
        &script,
        "import json, sys, time\nreq = json.loads(sys.stdin.readline())\nmode = sys.argv[1]\nif mode == 'fail': sys.exit(3)\nif mode == 'slow': time.sleep(5)\nsys.stderr.write('secret stderr text')\nprint(json.dumps({'status': 'applied', 'rows_affected': 1, 'source_database_mutated': True, 'details': {'key_seen': req['idempotency_key'], 'tenant': req['change_set']['scope']['tenant_id']}}))\n",
    )
    .unwrap();
    for (mode, status, code) in [
        ("ok", "applied", None),
        ("fail", "failed", Some("HANDLER_EXIT_3")),
        ("slow", "failed", Some("HANDLER_TIMEOUT")),
    ] {
        let sub = dir.path().join(mode);
        let env = format!("T_CMD_{}", mode.to_uppercase());
        set_env(&env, &format!("python3 '{}' {mode}", script.display()));
        let runner = demo_with_executor(
            &sub,
            json!({"type": "command_handler", "command_env": env, "timeout_ms": 1500}),
        )
        .await;
        let id = approved(&runner).await;
        let started = std::time::Instant::now();
        let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(
            (
                out.receipt.status.as_str(),
                out.receipt.safe_error_code.as_deref()
            ),
            (status, code),
            "{mode}"
        );
        if mode == "ok" {
            assert_eq!(out.receipt.extra["details"]["tenant"], json!("acme"));
            assert!(!out.receipt.to_value().to_string().contains("secret stderr"));
        }
        if mode == "slow" {
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "killed at the timeout"
            );
            assert!(out.retryable);
        }
    }
}

#[tokio::test]
async fn in_process_without_registration_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let runner = demo_with_executor(dir.path(), json!({"type": "in_process"})).await;
    let id = approved(&runner).await;
    let e = runner
        .apply(&id, &ApplyOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "EXECUTOR_NOT_REGISTERED");
    assert_eq!(
        runner.ledger().proposal(&id).await.unwrap().state,
        "approved"
    );
}

/// The seed handler's business effect, as an in-process callback: insert the account credit,
/// bump the invoice, in the guarded transaction.
type CallbackFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, ExecutorFailure>> + Send>>;

fn credit_callback(
    calls: Arc<AtomicUsize>,
    fail: bool,
) -> impl Fn(ExecutorJob, Option<GuardedTx>) -> CallbackFuture + Send + Sync {
    move |job: ExecutorJob, tx: Option<GuardedTx>| {
        let calls = calls.clone();
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let tx = tx.expect("a write connection gives a guarded transaction");
            // The shared request serialises as the document inside it (serde's `rc`).
            let request = serde_json::to_value(&job.request).unwrap();
            assert_eq!(request["schema_version"], "synapsor.handler-writeback.v1");
            let cs = &job.request["change_set"];
            let invoice = cs["scope"]["object_id"].as_str().unwrap().to_string();
            let tenant = cs["scope"]["tenant_id"].as_str().unwrap().to_string();
            let amount = cs["patch"]["credit_requested_cents"].clone();
            let row = tx
                .fetch_one(
                    "SELECT customer_id FROM public.invoices WHERE id = $1 AND tenant_id = $2",
                    &[json!(invoice), json!(tenant)],
                )
                .await
                .map_err(|e| ExecutorFailure::Callback(Arc::new(e)))?
                .unwrap();
            tx.execute(
                "INSERT INTO public.account_credits (id, tenant_id, invoice_id, customer_id, amount_cents, reason, idempotency_key, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[json!(format!("CR-{}", &job.proposal_id[4..16])), json!(tenant), json!(invoice), row["customer_id"].clone(), amount.clone(), cs["patch"]["credit_reason"].clone(), json!(job.idempotency_key), json!("approved_operator")],
            )
            .await
            .map_err(|e| ExecutorFailure::Callback(Arc::new(e)))?;
            tx.execute("UPDATE public.invoices SET credit_requested_cents = $1, credit_reason = $2, credited_cents = credited_cents + $1 WHERE id = $3 AND tenant_id = $4", &[amount, cs["patch"]["credit_reason"].clone(), json!(invoice), json!(tenant)])
                .await
                .map_err(|e| ExecutorFailure::Callback(Arc::new(e)))?;
            if fail {
                return Err(ExecutorFailure::Callback(Arc::new(std::io::Error::other(
                    "ledger of record rejected the credit",
                ))));
            }
            Ok(
                json!({"status": "applied", "rows_affected": 2, "source_database_mutated": true, "details": {"effects": [{"type": "db.insert", "table": "account_credits"}]}}),
            )
        })
    }
}

fn pg_inproc(db: &common::PgDb) -> Runner {
    let mut cfg = db.config_value();
    cfg["executors"]["billing_inproc"] = json!({"type": "in_process", "timeout_ms": 5000});
    cfg["capabilities"][2]["executor"] = json!("billing_inproc");
    db.runner_with(&cfg)
}

async fn approved_credit(runner: &Runner) -> String {
    let p = runner.propose("billing.propose_account_credit", json!({"invoice_id": "INV-3001", "amount_cents": 2500, "reason": "support-approved credit"}), &TrustedContext::new("acme", "agent")).await.unwrap();
    runner.approve(&p.proposal_id, &lead()).await.unwrap();
    p.proposal_id
}

#[tokio::test]
async fn in_process_postgres_callback_writes_commit_with_the_receipt() {
    let db = common::PgDb::billing();
    let runner = pg_inproc(&db);
    let calls = Arc::new(AtomicUsize::new(0));
    runner.register_executor("billing_inproc", credit_callback(calls.clone(), false));
    let id = approved_credit(&runner).await;
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(out.receipt.status, "applied", "{:?}", out.receipt);
    assert_eq!(out.receipt.rows_affected, 2);
    assert_eq!(db.sql("SELECT count(*) FROM account_credits WHERE invoice_id = 'INV-3001' AND amount_cents = 2500"), "1");
    assert_eq!(
        db.sql("SELECT credited_cents FROM invoices WHERE id = 'INV-3001'"),
        "2500"
    );
    assert_eq!(
        db.sql("SELECT status FROM synapsor_writeback_receipts"),
        "applied"
    );
    let retry = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(retry.receipt.status, "already_applied");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the retry never reaches the callback"
    );
    assert_eq!(db.sql("SELECT count(*) FROM account_credits"), "1");
}

#[tokio::test]
async fn in_process_postgres_callback_error_rolls_everything_back_and_returns_the_error() {
    let db = common::PgDb::billing();
    let runner = pg_inproc(&db);
    runner.register_executor("billing_inproc", credit_callback(Arc::default(), true));
    let id = approved_credit(&runner).await;
    let before = db.sql("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM invoices t");
    let e = runner
        .apply(&id, &ApplyOptions::default())
        .await
        .unwrap_err();
    match &e {
        Error::Callback(inner) => {
            assert_eq!(inner.to_string(), "ledger of record rejected the credit")
        }
        other => panic!("expected the callback's own error, got {other:?}"),
    }
    assert_eq!(
        db.sql("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM invoices t"),
        before
    );
    assert_eq!(db.sql("SELECT count(*) FROM account_credits"), "0");
    assert_eq!(
        db.sql("SELECT count(*) FROM synapsor_writeback_receipts"),
        "0"
    );
    let receipts: String = runner
        .ledger()
        .raw(|c| {
            c.query_row("SELECT receipt_json FROM writeback_receipts", [], |r| {
                r.get(0)
            })
        })
        .await
        .unwrap();
    assert!(
        receipts.contains("HANDLER_EXCEPTION") && !receipts.contains("rejected the credit"),
        "{receipts}"
    );
}

#[tokio::test]
async fn in_process_postgres_stale_version_never_calls_the_callback() {
    let db = common::PgDb::billing();
    let runner = pg_inproc(&db);
    let calls = Arc::new(AtomicUsize::new(0));
    runner.register_executor("billing_inproc", credit_callback(calls.clone(), false));
    let id = approved_credit(&runner).await;
    db.sql("UPDATE invoices SET updated_at = updated_at + interval '1 microsecond' WHERE id = 'INV-3001'");
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(
        (
            out.receipt.status.as_str(),
            out.receipt.safe_error_code.as_deref()
        ),
        ("conflict", Some("VERSION_CONFLICT"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(db.sql("SELECT count(*) FROM account_credits"), "0");
}

#[tokio::test]
async fn in_process_postgres_concurrent_applies_run_the_callback_once() {
    let db = common::PgDb::billing();
    let runner = pg_inproc(&db);
    let calls = Arc::new(AtomicUsize::new(0));
    runner.register_executor("billing_inproc", credit_callback(calls.clone(), false));
    let id = approved_credit(&runner).await;
    let opts = ApplyOptions::default();
    let (a, b) = tokio::join!(runner.apply(&id, &opts), runner.apply(&id, &opts));
    let mut statuses = vec![a.unwrap().receipt.status, b.unwrap().receipt.status];
    statuses.sort();
    assert_eq!(statuses, ["already_applied", "applied"]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(db.sql("SELECT count(*) FROM account_credits"), "1");
}

#[tokio::test]
async fn in_process_sqlite_callback_commits_or_rolls_back_with_the_receipt() {
    for fail in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let runner = demo_with_executor(dir.path(), json!({"type": "in_process"})).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        runner.register_executor("app", move |job: ExecutorJob, tx: Option<GuardedTx>| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                let tx = tx.unwrap();
                tx.execute("CREATE TABLE IF NOT EXISTS waiver_log (invoice_id TEXT, idempotency_key TEXT UNIQUE)", &[]).await.map_err(|e| ExecutorFailure::Callback(Arc::new(e)))?;
                tx.execute("INSERT INTO waiver_log VALUES (?1, ?2)", &[job.request["change_set"]["scope"]["object_id"].clone(), json!(job.idempotency_key)]).await.map_err(|e| ExecutorFailure::Callback(Arc::new(e)))?;
                tx.execute("UPDATE invoices SET late_fee_cents = 0 WHERE id = ?1", &[json!("INV-3001")]).await.map_err(|e| ExecutorFailure::Callback(Arc::new(e)))?;
                if fail {
                    return Err(ExecutorFailure::Callback(Arc::new(std::io::Error::other("boom"))));
                }
                let n = tx.fetch_one("SELECT count(*) AS n FROM waiver_log", &[]).await.map_err(|e| ExecutorFailure::Callback(Arc::new(e)))?.unwrap();
                Ok(json!({"status": "applied", "rows_affected": n["n"], "source_database_mutated": true}))
            }
        });
        let id = approved(&runner).await;
        let result = runner.apply(&id, &ApplyOptions::default()).await;
        let conn = rusqlite::Connection::open(dir.path().join("billing.sqlite")).unwrap();
        let fee: i64 = conn
            .query_row(
                "SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let receipts: i64 = conn
            .query_row(
                "SELECT count(*) FROM synapsor_writeback_receipts",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if fail {
            assert_eq!(result.unwrap_err().code(), "HANDLER_EXCEPTION");
            assert_eq!(fee, 5500, "rolled back");
            assert_eq!(receipts, 0);
            let log: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'waiver_log'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(log, 0, "even the callback's DDL rolled back");
        } else {
            assert_eq!(result.unwrap().receipt.status, "applied");
            assert_eq!(fee, 0);
            assert_eq!(receipts, 1);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

fn counting_sqlite_callback(
    calls: Arc<AtomicUsize>,
) -> impl Fn(ExecutorJob, Option<GuardedTx>) -> CallbackFuture + Send + Sync {
    move |_job: ExecutorJob, tx: Option<GuardedTx>| {
        let calls = calls.clone();
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            // Hold the transaction across an await, as real callbacks do.
            tokio::time::sleep(Duration::from_millis(50)).await;
            tx.unwrap()
                .execute(
                    "UPDATE invoices SET late_fee_cents = 0 WHERE id = 'INV-3001'",
                    &[],
                )
                .await
                .map_err(|e| ExecutorFailure::Callback(Arc::new(e)))?;
            Ok(json!({"status": "applied", "rows_affected": 1, "source_database_mutated": true}))
        })
    }
}

#[tokio::test]
async fn in_process_sqlite_stale_version_never_calls_the_callback() {
    let dir = tempfile::tempdir().unwrap();
    let runner = demo_with_executor(dir.path(), json!({"type": "in_process"})).await;
    let calls = Arc::new(AtomicUsize::new(0));
    runner.register_executor("app", counting_sqlite_callback(calls.clone()));
    let id = approved(&runner).await;
    synapsor_runner::demo::simulate_concurrent_edit(dir.path(), "INV-3001").unwrap();
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(
        (
            out.receipt.status.as_str(),
            out.receipt.safe_error_code.as_deref()
        ),
        ("conflict", Some("VERSION_CONFLICT"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn in_process_sqlite_concurrent_applies_run_the_callback_once() {
    let dir = tempfile::tempdir().unwrap();
    let runner = demo_with_executor(dir.path(), json!({"type": "in_process"})).await;
    let calls = Arc::new(AtomicUsize::new(0));
    runner.register_executor("app", counting_sqlite_callback(calls.clone()));
    let id = approved(&runner).await;
    let opts = ApplyOptions::default();
    // A single-threaded runtime: the second apply must wait for the lock without blocking the first.
    let (a, b) = tokio::join!(runner.apply(&id, &opts), runner.apply(&id, &opts));
    let mut statuses = vec![a.unwrap().receipt.status, b.unwrap().receipt.status];
    statuses.sort();
    assert_eq!(statuses, ["already_applied", "applied"]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn in_process_without_a_write_connection_gets_the_job_alone() {
    let dir = tempfile::tempdir().unwrap();
    create_demo(dir.path()).unwrap();
    let path = dir.path().join("synapsor.runner.json");
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["executors"] = json!({"app": {"type": "in_process"}});
    cfg["capabilities"][1]["executor"] = json!("app");
    cfg["sources"]["billing"]["read_only"] = json!(true);
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let runner = Runner::open(OpenOptions::config_path(&path).ledger(dir.path().join("local.db")))
        .await
        .unwrap();
    let got_tx = Arc::new(Mutex::new(None));
    let g = got_tx.clone();
    runner.register_executor("app", move |_job: ExecutorJob, tx: Option<GuardedTx>| {
        *g.lock().unwrap() = Some(tx.is_some());
        async {
            Ok(json!({"status": "applied", "rows_affected": 1, "source_database_mutated": true}))
        }
    });
    let id = approved(&runner).await;
    assert_eq!(
        runner
            .apply(&id, &ApplyOptions::default())
            .await
            .unwrap()
            .receipt
            .status,
        "applied"
    );
    assert_eq!(*got_tx.lock().unwrap(), Some(false));
}

#[cfg(feature = "bench")]
#[tokio::test]
async fn bench_baseline_switches_a_registered_executor_without_re_registering_it() {
    let dir = tempfile::tempdir().unwrap();
    let runner = demo_with_executor(dir.path(), json!({"type": "in_process"})).await;
    let calls = Arc::new(AtomicUsize::new(0));
    runner.register_executor("app", counting_sqlite_callback(calls.clone()));
    assert!(
        !runner.bench_baseline("not_registered", true),
        "nothing to switch"
    );
    for (baseline, expected_calls) in [(true, 0), (false, 1), (true, 1)] {
        assert!(runner.bench_baseline("app", baseline));
        let id = approved(&runner).await;
        let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(out.receipt.status, "applied", "{:?}", out.receipt);
        assert_eq!(out.receipt.source_database_mutated, !baseline);
        assert_eq!(calls.load(Ordering::SeqCst), expected_calls);
    }
    // Registering again replaces the switch: the callback runs even though the last switch said
    // baseline.
    runner.register_executor("app", counting_sqlite_callback(calls.clone()));
    let id = approved(&runner).await;
    runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[cfg(feature = "bench")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_inspect_on_worker_runs_the_real_inspect_and_times_it() {
    let dir = tempfile::tempdir().unwrap();
    let runner = demo_with_executor(dir.path(), json!({"type": "in_process"})).await;
    let ctx = TrustedContext::from_config();
    let args = json!({"invoice_id": "INV-3001"});
    let run = |capability: &str, times| {
        runner.bench_inspect_on_worker(capability.into(), args.clone(), ctx.clone(), times)
    };
    let us = run("billing.inspect_invoice", 1).await.unwrap();
    assert!(us > 0.0 && us < 60e6, "{us}");
    assert_eq!(
        runner.ledger().count("evidence_bundles").await.unwrap(),
        1,
        "it is the real inspect: evidence recorded"
    );
    // `times` runs it that many times in the one task.
    run("billing.inspect_invoice", 3).await.unwrap();
    assert_eq!(runner.ledger().count("evidence_bundles").await.unwrap(), 4);
    // The same refusals as inspect itself.
    let e = run("billing.nope", 1).await.unwrap_err();
    assert_eq!(e.code(), "CAPABILITY_NOT_FOUND");
}

/// An approved proposal for the executor `name`: the SQLite demo's (`app`) or the PostgreSQL
/// billing credit.
async fn approved_for(runner: &Runner, name: &str) -> String {
    if name == "app" {
        approved(runner).await
    } else {
        approved_credit(runner).await
    }
}

/// An in-process executor is called once per applied proposal: never for a retry the earlier
/// receipt answers, for a conflict the lock finds, or for the benchmark baseline.
#[tokio::test]
async fn an_in_process_executor_is_called_once_and_never_for_a_retry_or_a_conflict() {
    let db = common::PgDb::billing();
    let pg = pg_inproc(&db);
    let dir = tempfile::tempdir().unwrap();
    let lite = demo_with_executor(dir.path(), json!({"type": "in_process"})).await;
    for (runner, name) in [(&pg, "billing_inproc"), (&lite, "app")] {
        let seen = common::Recording::default();
        runner.register_executor(name, seen.clone());
        let id = approved_for(runner, name).await;
        let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(out.receipt.status, "applied", "{:?}", out.receipt);
        assert_eq!(seen.take(), ["execute"], "{name}");
        let retry = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(retry.receipt.status, "already_applied");
        assert!(
            seen.take().is_empty(),
            "{name}: the receipt answered, no job"
        );

        #[cfg(feature = "bench")]
        {
            assert!(runner.bench_baseline(name, true));
            let id = approved_for(runner, name).await;
            runner.apply(&id, &ApplyOptions::default()).await.unwrap();
            assert!(seen.take().is_empty(), "{name}: the baseline answers alone");
            assert!(runner.bench_baseline(name, false));
        }

        let id = approved_for(runner, name).await;
        if name == "app" {
            synapsor_runner::demo::simulate_concurrent_edit(dir.path(), "INV-3001").unwrap();
        } else {
            db.sql("UPDATE invoices SET updated_at = updated_at + interval '1 microsecond' WHERE id = 'INV-3001'");
        }
        let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(out.receipt.status, "conflict");
        assert!(seen.take().is_empty(), "{name}: the conflict, no job");
    }
}

#[tokio::test]
async fn handler_receipt_details_are_masked_before_they_are_stored_or_shown() {
    let dir = tempfile::tempdir().unwrap();
    let body = json!({
        "status": "applied", "rows_affected": 1, "source_database_mutated": true,
        "details": {
            "message": "connected with postgres://app:hunter2@db/prod at last",
            "dsn": "host=db port=5432 password=hunter2 dbname=prod",
            "Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "nested": [{"note": "Bearer abc.def.ghi"}],
            "kept": "nothing secret here"
        }
    })
    .to_string();
    let (url, _) = serve(Box::new(move |_, _| (200, body.clone(), 0)));
    set_env("T_HTTP_MASK_URL", &url);
    let runner = demo_with_executor(
        dir.path(),
        json!({"type": "http_handler", "url_env": "T_HTTP_MASK_URL"}),
    )
    .await;
    let id = approved(&runner).await;
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(out.receipt.status, "applied");
    let details = &out.receipt.extra["details"];
    for path in ["/message", "/dsn", "/Authorization", "/nested/0/note"] {
        assert_eq!(details.pointer(path), Some(&json!("<redacted>")), "{path}");
    }
    assert_eq!(details["kept"], json!("nothing secret here"));
    let replay = runner.replay(&id).await.unwrap().to_string();
    for secret in ["hunter2", "YWxhZGRpbjpvcGVuc2VzYW1l", "abc.def.ghi"] {
        assert!(!replay.contains(secret), "{secret} stored");
    }
}

/// The command's answer is read when it exits, however long what it started keeps stdout open;
/// everything it started is gone after the apply; an answer over the cap fails safely.
#[tokio::test]
async fn command_handler_is_bounded_in_time_output_and_descendants() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("handler.sh");
    let marker = dir.path().join("grandchild.alive");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread line\ncase \"$1\" in\n  linger) (sleep 30; touch '{m}') & echo '{{\"status\":\"applied\",\"rows_affected\":1,\"source_database_mutated\":true}}' ;;\n  huge) head -c 3000000 /dev/zero | tr '\\\\0' 'x' ;;\n  nomutation) echo '{{\"status\":\"applied\",\"rows_affected\":0,\"source_database_mutated\":false}}' ;;\nesac\n",
            m = marker.display()
        ),
    )
    .unwrap();
    for (mode, status, code) in [
        ("linger", "applied", None),
        ("huge", "failed", Some("HANDLER_RESPONSE_TOO_LARGE")),
        ("nomutation", "failed", Some("HANDLER_RECEIPT_NO_MUTATION")),
    ] {
        let sub = dir.path().join(mode);
        let env = format!("T_CMD_BOUND_{}", mode.to_uppercase());
        set_env(&env, &format!("sh '{}' {mode}", script.display()));
        let runner = demo_with_executor(
            &sub,
            json!({"type": "command_handler", "command_env": env, "timeout_ms": 10000}),
        )
        .await;
        let id = approved(&runner).await;
        let started = std::time::Instant::now();
        let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(
            (
                out.receipt.status.as_str(),
                out.receipt.safe_error_code.as_deref()
            ),
            (status, code),
            "{mode}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "{mode}: answered when the command exited, not at the timeout"
        );
    }
    // The lingering grandchild was killed with its group: it never gets to touch its file.
    let pgrep = std::process::Command::new("pgrep")
        .args(["-f", "sleep 30"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let ours: Vec<&str> = pgrep.lines().collect();
    for pid in ours {
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !cmdline.contains(&*marker.to_string_lossy()),
            "grandchild {pid} outlived the apply"
        );
    }
    assert!(!marker.exists());
}

#[tokio::test]
async fn http_handler_answer_over_the_cap_fails_safely() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!(
        r#"{{"status":"applied","rows_affected":1,"source_database_mutated":true,"details":{{"pad":"{}"}}}}"#,
        "x".repeat(2048)
    );
    let (url, _) = serve(Box::new(move |_, _| (200, big.clone(), 0)));
    set_env("T_HTTP_CAP_URL", &url);
    let runner = demo_with_executor(
        dir.path(),
        json!({"type": "http_handler", "url_env": "T_HTTP_CAP_URL", "max_response_bytes": 1024}),
    )
    .await;
    let id = approved(&runner).await;
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(out.receipt.status, "failed");
    assert_eq!(
        out.receipt.safe_error_code.as_deref(),
        Some("HANDLER_RESPONSE_TOO_LARGE")
    );
    assert!(!out.retryable);
}
