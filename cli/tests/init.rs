//! `init` from a live PostgreSQL, MariaDB or SQLite database (each test in its own database):
//! the generated config validates, and a proposal made through it is approved and applied by
//! the CLI.

#[path = "../../core/tests/common/mod.rs"]
mod common;

#[path = "support/cli.rs"]
mod cli_support;
use cli_support::{bin, run};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The CLI in `dir` with the URL in `SI_URL` (and as the writer's URL) and a trusted context.
fn cli(dir: &Path, url: &str, tenant: &str) -> Command {
    let mut c = bin();
    c.current_dir(dir)
        .env("SI_URL", url)
        .env("SYNAPSOR_DATABASE_WRITE_URL", url)
        .env("SYNAPSOR_TENANT_ID", tenant)
        .env("SYNAPSOR_PRINCIPAL", "agent:test");
    c
}

fn ok(cmd: &mut Command) -> String {
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{out}\n{err}");
    out
}

fn config(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("synapsor.runner.json")).unwrap())
        .unwrap()
}

/// propose → approve latest → apply latest through the generated config.
fn lifecycle(dir: &Path, url: &str, tenant: &str, tool: &str, args: &str) -> String {
    ok(cli(dir, url, tenant).args(["config", "validate"]));
    ok(cli(dir, url, tenant).args(["propose", tool, "--args", args]));
    ok(cli(dir, url, tenant).args(["proposals", "approve", "latest", "--yes"]));
    ok(cli(dir, url, tenant).args(["apply", "latest"]))
}

#[test]
fn postgres_integer_tenant_last_update_and_guards_end_to_end() {
    let db = common::PgDatabase::create("init_pg");
    common::psql(
        &db.0,
        "CREATE TABLE tickets (id bigint PRIMARY KEY, org_id int NOT NULL, status text NOT NULL, \
         priority int NOT NULL, api_key text, last_update timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO tickets VALUES (41, 7, 'open', 3, 'k-123'), (42, 8, 'open', 3, 'k-456')",
    );
    let url = common::with_db(&common::admin_url(), &db.0);
    let dir = tempfile::tempdir().unwrap();
    ok(cli(dir.path(), &url, "7").args([
        "init",
        "--from-env",
        "SI_URL",
        "--table",
        "tickets",
        "--mode",
        "review",
        "--patch",
        "status=arg:new_status,priority=arg:priority",
        "--transition-guard",
        "status=open:pending|closed;pending:closed",
        "--numeric-bound",
        "priority=1:5",
    ]));
    let c = config(dir.path());
    let read = &c["capabilities"][0];
    assert_eq!(read["name"], "ticket.inspect_ticket");
    assert_eq!(read["target"]["tenant_key"], "org_id");
    let visible: Vec<&str> = read["visible_columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!visible.contains(&"api_key"), "{visible:?}");
    let p = &c["capabilities"][1];
    assert_eq!(p["conflict_guard"]["column"], "last_update");
    assert_eq!(p["conflict_guard"]["advance"], "timestamp");
    assert_eq!(
        p["args"]["new_status"]["enum"],
        serde_json::json!(["pending", "closed"])
    );
    assert_eq!(
        p["args"]["priority"]["type"], "integer",
        "from the column's type"
    );
    assert_eq!(p["args"]["priority"]["maximum"], 5.0);
    assert!(dir.path().join(".env.example").exists());

    let applied = lifecycle(
        dir.path(),
        &url,
        "7",
        "ticket.propose_ticket_update",
        r#"{"ticket_id":"41","new_status":"closed","priority":2}"#,
    );
    assert!(applied.contains("applied"), "{applied}");
    assert_eq!(
        common::psql(
            &db.0,
            "SELECT status || ',' || priority FROM tickets ORDER BY id"
        ),
        "closed,2\nopen,3",
        "the trusted tenant's row only"
    );
    // Another tenant's ticket is not found through the same capability.
    let (code, _, err) = run(cli(dir.path(), &url, "7").args([
        "inspect",
        "ticket.inspect_ticket",
        "--args",
        r#"{"ticket_id":"42"}"#,
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("NOT_FOUND_IN_TENANT"), "{err}");
}

#[test]
fn mariadb_datetime6_versions_end_to_end() {
    let db = common::MariaDatabase::create("init_my");
    common::mariadb(
        Some(&db.0),
        "CREATE TABLE orders (order_id VARCHAR(20) PRIMARY KEY, tenant_id VARCHAR(20) NOT NULL, \
         status VARCHAR(20) NOT NULL, updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)); \
         INSERT INTO orders (order_id, tenant_id, status) VALUES ('O-1', 'acme', 'open')",
    );
    let url = format!("mysql://root@127.0.0.1:3306/{}", db.0);
    let dir = tempfile::tempdir().unwrap();
    ok(cli(dir.path(), &url, "acme").args([
        "init",
        "--from-env",
        "SI_URL",
        "--table",
        "orders",
        "--mode",
        "review",
        "--patch",
        "status=fixed:cancelled",
    ]));
    let c = config(dir.path());
    assert_eq!(c["sources"]["local_mysql"]["engine"], "mysql");
    assert_eq!(
        c["capabilities"][1]["conflict_guard"]["column"],
        "updated_at"
    );
    let applied = lifecycle(
        dir.path(),
        &url,
        "acme",
        "order.propose_order_update",
        r#"{"order_id":"O-1"}"#,
    );
    assert!(applied.contains("applied"), "{applied}");
    assert_eq!(
        common::mariadb(Some(&db.0), "SELECT status FROM orders"),
        "cancelled"
    );
}

#[test]
fn sqlite_camel_case_dry_run_overwrite_and_saved_inspections() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.sqlite");
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch(
        "CREATE TABLE \"Invoices\" (\"InvoiceId\" TEXT PRIMARY KEY, \"TenantId\" TEXT NOT NULL, \
         \"Status\" TEXT NOT NULL, \"LastUpdate\" TEXT NOT NULL, \"PasswordHash\" TEXT); \
         INSERT INTO \"Invoices\" VALUES ('I-1', 'acme', 'open', '2026-01-01T00:00:00Z', 'x');",
    )
    .unwrap();
    drop(conn);
    let d = dir.path();
    let init = |extra: &[&str]| {
        let mut c = cli(d, "", "acme");
        c.args(["init", "--sqlite", "app.sqlite", "--table", "Invoices"])
            .args(extra);
        run(&mut c)
    };
    // A dry run prints and writes nothing.
    let (code, out, err) = init(&[
        "--mode",
        "review",
        "--patch",
        "Status=fixed:void",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        printed["capabilities"][0]["name"],
        "invoice.inspect_invoice"
    );
    assert!(!d.join("synapsor.runner.json").exists());
    // Proposals need a patch; a column that does not exist is named.
    let (code, _, err) = init(&["--mode", "review"]);
    assert_eq!(code, 1);
    assert!(err.contains("--patch is required"), "{err}");
    let (code, _, err) = init(&["--mode", "read_only", "--visible-columns", "Nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("COLUMN_NOT_FOUND") && err.contains("Nope"),
        "{err}"
    );

    let (code, _, err) = init(&["--mode", "review", "--patch", "Status=fixed:void"]);
    assert_eq!(code, 0, "{err}");
    let c = config(d);
    assert_eq!(c["sources"]["local_sqlite"]["path"], "app.sqlite");
    assert_eq!(
        c["capabilities"][1]["conflict_guard"]["column"],
        "LastUpdate"
    );
    assert!(
        !c["capabilities"][0]["visible_columns"]
            .as_array()
            .unwrap()
            .contains(&Value::from("PasswordHash"))
    );
    // Existing files are kept unless --force.
    let (code, _, err) = init(&["--mode", "read_only"]);
    assert_eq!(code, 1);
    assert!(err.contains("--force"), "{err}");

    let applied = lifecycle(
        d,
        "",
        "acme",
        "invoice.propose_invoice_update",
        r#"{"invoice_id":"I-1"}"#,
    );
    assert!(applied.contains("applied"), "{applied}");
    let status: String = rusqlite::Connection::open(&file)
        .unwrap()
        .query_row("SELECT \"Status\" FROM \"Invoices\"", [], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "void");

    // A saved inspection gives the same config.
    let saved =
        ok(cli(d, "", "acme").args(["schema", "inspect", "--sqlite", "app.sqlite", "--json"]));
    std::fs::write(d.join("inspection.json"), saved).unwrap();
    let (code, out, err) = run(cli(d, "", "acme").args([
        "init",
        "--inspection-json",
        "inspection.json",
        "--sqlite",
        "app.sqlite",
        "--table",
        "Invoices",
        "--mode",
        "review",
        "--patch",
        "Status=fixed:void",
        "--dry-run",
    ]));
    assert_eq!(code, 0, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["capabilities"], config(d)["capabilities"]);
}

#[test]
fn onboard_writes_the_config_then_validates_checks_and_reads_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conn = rusqlite::Connection::open(d.join("app.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE tickets (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, status TEXT NOT NULL, \
         updated_at TEXT NOT NULL); INSERT INTO tickets VALUES ('T-1', 'acme', 'open', '2026-01-01T00:00:00Z');",
    )
    .unwrap();
    drop(conn);
    let onboard = |id: &str| {
        let mut c = cli(d, "", "acme");
        c.args([
            "onboard",
            "db",
            "--sqlite",
            "app.sqlite",
            "--table",
            "tickets",
            "--mode",
            "review",
            "--patch",
            "status=fixed:closed",
            "--force",
            "--smoke-id",
            id,
        ]);
        run(&mut c)
    };
    let (code, out, err) = onboard("T-1");
    assert_eq!(code, 0, "{out}\n{err}");
    for line in [
        "Synapsor Runner own-database onboarding",
        "config valid: synapsor.runner.json",
        "PASS semantic tools present",
        "Synapsor smoke call: ok",
        "synapsor-runner propose ticket.propose_ticket_update",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    // Another tenant's (or a missing) row fails the smoke read, and so the onboarding.
    let (code, out, _) = onboard("T-404");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Smoke read did not pass"), "{out}");
}
