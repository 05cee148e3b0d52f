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

/// The rest of the generated-config matrix on PostgreSQL: text key and tenant with a
/// `timestamptz` version; a `uuid` key with `password_hash` and `api_key` and no version column
/// (the row-hash guard only when asked for); a view (a read capability only).
#[test]
fn postgres_text_keys_uuid_keys_tables_without_versions_and_views() {
    let db = common::PgDatabase::create("init_matrix");
    common::psql(
        &db.0,
        "CREATE TABLE invoices (id text PRIMARY KEY, tenant_id text NOT NULL, status text NOT NULL, \
         late_fee_cents integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO invoices VALUES ('INV-1', 'acme', 'overdue', 5500), ('INV-2', 'globex', 'overdue', 5500); \
         CREATE TABLE accounts (account_uuid uuid PRIMARY KEY, tenant_id text NOT NULL, email text NOT NULL, \
         password_hash text NOT NULL, api_key text, plan text NOT NULL); \
         INSERT INTO accounts VALUES ('0b6f4a5e-9c1d-4e43-9a1b-2f3c4d5e6f70', 'acme', 'a@example.com', 'x', 'k', 'free'); \
         CREATE VIEW open_invoices AS SELECT id, tenant_id, status, late_fee_cents FROM invoices WHERE status = 'overdue'",
    );
    let url = common::with_db(&common::admin_url(), &db.0);

    // Text key, text tenant, timestamptz version: the billing shape.
    let dir = tempfile::tempdir().unwrap();
    ok(cli(dir.path(), &url, "acme").args([
        "init",
        "--from-env",
        "SI_URL",
        "--table",
        "invoices",
        "--mode",
        "review",
        "--patch",
        "late_fee_cents=fixed:0",
        "--numeric-bound",
        "late_fee_cents=0:10000",
    ]));
    let c = config(dir.path());
    assert_eq!(
        c["capabilities"][1]["conflict_guard"]["column"],
        "updated_at"
    );
    let applied = lifecycle(
        dir.path(),
        &url,
        "acme",
        "invoice.propose_invoice_update",
        r#"{"invoice_id":"INV-1"}"#,
    );
    assert!(applied.contains("applied"), "{applied}");
    assert_eq!(
        common::psql(
            &db.0,
            "SELECT id || ':' || late_fee_cents FROM invoices ORDER BY id"
        ),
        "INV-1:0\nINV-2:5500"
    );
    ok(cli(dir.path(), &url, "acme").args(["replay", "show", "latest"]));

    // uuid key, secrets, no version column: refused until the weaker guard is asked for.
    let dir = tempfile::tempdir().unwrap();
    let init = |extra: &[&str]| {
        let mut c = cli(dir.path(), &url, "acme");
        c.args([
            "init",
            "--from-env",
            "SI_URL",
            "--table",
            "accounts",
            "--mode",
            "review",
            "--patch",
            "plan=arg:plan",
        ])
        .args(extra);
        run(&mut c)
    };
    let (code, _, err) = init(&[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("CONFLICT_COLUMN_REQUIRED") && err.contains("--row-hash-guard"),
        "{err}"
    );
    assert!(
        !dir.path().join("synapsor.runner.json").exists(),
        "nothing written"
    );
    let (code, out, err) = init(&["--row-hash-guard"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let c = config(dir.path());
    let visible = c["capabilities"][0]["visible_columns"].to_string();
    assert!(
        !visible.contains("password_hash") && !visible.contains("api_key"),
        "{visible}"
    );
    assert_eq!(
        c["capabilities"][1]["conflict_guard"]["weak_guard_ack"],
        true
    );
    let applied = lifecycle(
        dir.path(),
        &url,
        "acme",
        "account.propose_account_update",
        r#"{"account_id":"0b6f4a5e-9c1d-4e43-9a1b-2f3c4d5e6f70","plan":"pro"}"#,
    );
    assert!(applied.contains("applied"), "{applied}");
    assert_eq!(common::psql(&db.0, "SELECT plan FROM accounts"), "pro");

    // A view: proposals refused; a read capability works.
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(cli(dir.path(), &url, "acme").args([
        "init",
        "--from-env",
        "SI_URL",
        "--table",
        "open_invoices",
        "--mode",
        "review",
        "--patch",
        "status=arg:status",
        "--primary-key",
        "id",
        "--tenant-column",
        "tenant_id",
    ]));
    assert_ne!(code, 0);
    assert!(
        err.contains("TABLE_NOT_WRITABLE") && err.contains("--mode read_only"),
        "{err}"
    );
    ok(cli(dir.path(), &url, "acme").args([
        "init",
        "--from-env",
        "SI_URL",
        "--table",
        "open_invoices",
        "--mode",
        "read_only",
        "--primary-key",
        "id",
        "--tenant-column",
        "tenant_id",
    ]));
    let c = config(dir.path());
    assert_eq!(c["capabilities"].as_array().unwrap().len(), 1);
    ok(cli(dir.path(), &url, "acme").args(["config", "validate"]));
    let (tool, arg) = (
        c["capabilities"][0]["name"].as_str().unwrap().to_string(),
        c["capabilities"][0]["lookup"]["id_from_arg"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let read = ok(cli(dir.path(), &url, "acme")
        .args([
            "inspect",
            &tool,
            "--args",
            &serde_json::json!({arg: "INV-2"}).to_string(),
        ])
        .env("SYNAPSOR_TENANT_ID", "globex"));
    assert!(read.contains("INV-2"), "{read}");
}
