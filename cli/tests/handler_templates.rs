//! `handler template` output runs against the runner: each starter handler verifies bearer
//! and HMAC, re-checks version and idempotency, and answers with receipts the runner accepts.
//! Also `doctor --check-handlers`.

#[path = "support/node.rs"]
mod node;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
#[path = "support/venv.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use synapsor_runner::demo::create_demo;
use synapsor_runner::{ApplyOptions, Approver, OpenOptions, Runner, TrustedContext};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_synapsor-runner"))
}

fn set_env(k: &str, v: &str) {
    // Safety: nextest runs each test in its own process.
    unsafe { std::env::set_var(k, v) };
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ok(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Node packages for the Fastify template, installed once into cli/tests/support.
fn node_modules() -> PathBuf {
    node::node_modules()
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_healthy(port: u16, server: &mut Server) {
    for _ in 0..150 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = write!(
                s,
                "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            );
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("handler exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("handler on port {port} did not become healthy");
}

/// The SQLite demo with the waiver capability routed to `executor`.
async fn demo_runner(dir: &std::path::Path, executor: Value) -> Runner {
    create_demo(dir).unwrap();
    synapsor_runner::demo::route_proposals_to_executor(dir, executor).unwrap();
    Runner::open(
        OpenOptions::config_path(dir.join("synapsor.runner.json")).ledger(dir.join("local.db")),
    )
    .await
    .unwrap()
}

async fn propose_and_approve(runner: &Runner, invoice: &str) -> String {
    let p = runner
        .propose(
            "billing.propose_late_fee_waiver",
            json!({"invoice_id": invoice, "reason": "template test"}),
            &TrustedContext::from_config(),
        )
        .await
        .unwrap();
    runner
        .approve(&p.proposal_id, &Approver::new("lead").role("billing_lead"))
        .await
        .unwrap();
    p.proposal_id
}

/// The same checks for both HTTP templates.
async fn exercise_http_template(dir: &Path, port: u16, env_prefix: &str) {
    set_env(
        &format!("{env_prefix}_URL"),
        &format!("http://127.0.0.1:{port}/synapsor/writeback"),
    );
    set_env(&format!("{env_prefix}_TOKEN"), "template-token");
    set_env(&format!("{env_prefix}_SECRET"), "template-secret");
    let runner = demo_runner(&dir.join("demo"), json!({"type": "http_handler", "url_env": format!("{env_prefix}_URL"), "auth": {"type": "bearer_env", "token_env": format!("{env_prefix}_TOKEN")}, "signing_secret_env": format!("{env_prefix}_SECRET"), "timeout_ms": 5000})).await;
    let id = propose_and_approve(&runner, "INV-3001").await;
    let out = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(out.receipt.status, "applied", "{:?}", out.receipt);
    assert!(out.receipt.source_database_mutated);
    let again = runner.apply(&id, &ApplyOptions::default()).await.unwrap();
    assert_eq!(
        again.receipt.status, "already_applied",
        "the handler saw the same idempotency key"
    );

    set_env(&format!("{env_prefix}_SECRET"), "a-forged-secret");
    let forged = propose_and_approve(&runner, "INV-3002").await;
    let out = runner
        .apply(&forged, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (
            out.receipt.status.as_str(),
            out.receipt.safe_error_code.as_deref()
        ),
        ("failed", Some("HANDLER_HTTP_401")),
        "a bad signature is refused"
    );
    set_env(&format!("{env_prefix}_SECRET"), "template-secret");
    set_env(&format!("{env_prefix}_TOKEN"), "wrong-token");
    let wrong = propose_and_approve(&runner, "INV-3001").await;
    let out = runner
        .apply(&wrong, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (
            out.receipt.status.as_str(),
            out.receipt.safe_error_code.as_deref()
        ),
        ("failed", Some("HANDLER_HTTP_401")),
        "a wrong bearer is refused"
    );
}

#[tokio::test]
async fn node_fastify_template_runs_against_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let handler = dir.path().join("synapsor-writeback-handler.mjs");
    ok(bin()
        .args(["handler", "template", "node-fastify", "--output"])
        .arg(&handler));
    std::os::unix::fs::symlink(node_modules(), dir.path().join("node_modules")).unwrap();
    let port = free_port();
    let mut server = Server(
        Command::new("node")
            .arg(&handler)
            .env("PORT", port.to_string())
            .env("SYNAPSOR_HANDLER_TOKEN", "template-token")
            .env("SYNAPSOR_HANDLER_SIGNING_SECRET", "template-secret")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(port, &mut server);
    exercise_http_template(dir.path(), port, "T_TPL_NODE").await;
}

#[tokio::test]
async fn python_fastapi_template_runs_against_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let handler = dir.path().join("synapsor_writeback_handler.py");
    ok(bin()
        .args(["handler", "template", "python-fastapi", "--output"])
        .arg(&handler));
    let port = free_port();
    let mut server = Server(
        Command::new(support::python())
            .args([
                "-m",
                "uvicorn",
                "synapsor_writeback_handler:app",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--log-level",
                "warning",
            ])
            .current_dir(dir.path())
            .env("SYNAPSOR_HANDLER_TOKEN", "template-token")
            .env("SYNAPSOR_HANDLER_SIGNING_SECRET", "template-secret")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_healthy(port, &mut server);
    exercise_http_template(dir.path(), port, "T_TPL_PY").await;
}

#[tokio::test]
async fn command_template_runs_against_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let handler = dir.path().join("synapsor-command-handler.mjs");
    ok(bin()
        .args(["handler", "template", "command", "--output"])
        .arg(&handler));
    set_env(
        "SYNAPSOR_HANDLER_STATE",
        dir.path().join("state.json").to_str().unwrap(),
    );
    set_env("T_TPL_CMD", &format!("node '{}'", handler.display()));
    let runner = demo_runner(
        &dir.path().join("demo"),
        json!({"type": "command_handler", "command_env": "T_TPL_CMD", "timeout_ms": 5000}),
    )
    .await;
    let id = propose_and_approve(&runner, "INV-3001").await;
    assert_eq!(
        runner
            .apply(&id, &ApplyOptions::default())
            .await
            .unwrap()
            .receipt
            .status,
        "applied"
    );
    assert_eq!(
        runner
            .apply(&id, &ApplyOptions::default())
            .await
            .unwrap()
            .receipt
            .status,
        "already_applied"
    );
}

#[test]
fn template_command_refuses_to_overwrite_and_lists_templates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.mjs");
    ok(bin()
        .args(["handler", "template", "command", "--output"])
        .arg(&path));
    let out = bin()
        .args(["handler", "template", "command", "--output"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists. Use --force to overwrite.")
    );
    ok(bin()
        .args(["handler", "template", "command", "--force", "--output"])
        .arg(&path));
    let list = bin()
        .args(["handler", "template", "--list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    for needle in [
        "node-fastify",
        "python-fastapi",
        "command",
        "IMPORTANT: your app handler owns the final business write.",
        "lost updates",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    let unknown = bin()
        .args(["handler", "template", "cobol"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown handler template: cobol"));
}

#[test]
fn doctor_checks_handler_env_and_reachability_without_applying() {
    let dir = tempfile::tempdir().unwrap();
    create_demo(dir.path()).unwrap();
    let path = dir.path().join("synapsor.runner.json");
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg["executors"] = json!({"app": {"type": "http_handler", "url_env": "T_DOC_URL", "auth": {"type": "bearer_env", "token_env": "T_DOC_TOKEN"}}});
    cfg["capabilities"][1]["executor"] = json!("app");
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let out = bin()
        .args(["doctor", "--check-handlers", "--config"])
        .arg(&path)
        .env_remove("T_DOC_URL")
        .env_remove("T_DOC_TOKEN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL app: url env T_DOC_URL: missing"),
        "{text}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/synapsor/writeback",
        listener.local_addr().unwrap().port()
    );
    let out = bin()
        .args(["doctor", "--check-handlers", "--config"])
        .arg(&path)
        .env("T_DOC_URL", &url)
        .env("T_DOC_TOKEN", "secret-value-never-printed")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("PASS app: url reachable") && text.contains("WARN app: signing secret"),
        "{text}"
    );
    assert!(
        !text.contains("secret-value-never-printed") && !text.contains(&url),
        "env values are never printed: {text}"
    );
    drop(listener);
    let out = bin()
        .args(["doctor", "--check-handlers", "--config"])
        .arg(&path)
        .env("T_DOC_URL", &url)
        .env("T_DOC_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
