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
    sqlite_db(
        &d.join("app.sqlite"),
        "CREATE TABLE tickets (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, status TEXT NOT NULL, \
         updated_at TEXT NOT NULL); INSERT INTO tickets VALUES ('T-1', 'acme', 'open', '2026-01-01T00:00:00Z');",
    );
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

/// `init` at a terminal, driven through a pseudo-terminal: each answer given as a person
/// would (arrow keys, space, enter), `steps` pairs a prompt with the keys typed at it.
fn wizard(dir: &Path, url: &str, tenant: &str, steps: &[(&str, &str)]) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pty_drive.py");
    let steps = serde_json::to_string(steps).unwrap();
    let bin = env!("CARGO_BIN_EXE_synapsor-runner");
    let mut c = Command::new("python3");
    c.current_dir(dir)
        .env("SI_URL", url)
        .env("SYNAPSOR_DATABASE_WRITE_URL", url)
        .env("SYNAPSOR_TENANT_ID", tenant)
        .env("SYNAPSOR_PRINCIPAL", "agent:test")
        .arg(&script)
        .arg(&steps)
        .args(["--", bin, "init"]);
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const DOWN: &str = "\u{1b}[B";

fn sqlite_db(path: &Path, sql: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn the_init_wizard_on_sqlite_writes_what_the_flags_would_and_never_overwrites_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sqlite_db(
        &d.join("app.sqlite"),
        "CREATE TABLE tickets (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, status TEXT NOT NULL, \
         api_key TEXT, updated_at TEXT NOT NULL); \
         INSERT INTO tickets VALUES ('T-1', 'acme', 'open', 'k-1', '2026-01-01T00:00:00Z');",
    );
    let answers = [
        ("Where is the database", &format!("{DOWN}\r") as &str),
        ("SQLite file", "app.sqlite\r"),
        ("Table", "\r"),
        ("What may the agent do", "\r"),
        ("Tenant column", "\r"),
        ("Columns a read shows", "\r"),
        ("Version column", "\r"),
        ("Columns a proposal may change", " \r"),
        ("status: set to", "\r"),
        ("Tool namespace", "\r"),
        ("Write synapsor.runner.json", "y"),
    ];
    let (code, transcript) = wizard(d, "", "acme", &answers);
    assert_eq!(code, 0, "{transcript}");
    // The suggestions were pre-selected: tenant_id, updated_at; api_key not shown.
    let cfg = config(d);
    let proposal = &cfg["capabilities"][1];
    assert_eq!(proposal["target"]["tenant_key"], "tenant_id");
    assert_eq!(proposal["conflict_guard"]["column"], "updated_at");
    assert_eq!(proposal["patch"]["status"]["from_arg"], "status");
    let visible: Vec<&str> = cfg["capabilities"][0]["visible_columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        !visible.contains(&"api_key") && visible.contains(&"status"),
        "{visible:?}"
    );
    // The equivalent command it printed makes the same config.
    let line = transcript
        .lines()
        .find(|l| l.trim_start().starts_with("synapsor-runner init --sqlite"))
        .expect("the equivalent command")
        .trim()
        .to_string();
    let words = shell_words(&line);
    let (code, out, err) = run(cli(d, "", "acme").args(&words[1..]).arg("--dry-run"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), cfg);
    // It works end to end.
    let applied = lifecycle(
        d,
        "",
        "acme",
        "ticket.propose_ticket_update",
        r#"{"ticket_id": "T-1", "status": "closed"}"#,
    );
    assert!(applied.contains("applied"), "{applied}");
    // Run again: the file exists, the default answer keeps it.
    let before = std::fs::read_to_string(d.join("synapsor.runner.json")).unwrap();
    let mut again = answers.to_vec();
    again[3] = ("What may the agent do", "\u{1b}[B\u{1b}[B\r"); // read_only this time
    again.truncate(6);
    again.push(("Tool namespace", "\r"));
    again.push(("exists: overwrite them", "\r"));
    let (code, transcript) = wizard(d, "", "acme", &again);
    assert_eq!(code, 0, "{transcript}");
    assert!(transcript.contains("Nothing written."), "{transcript}");
    assert_eq!(
        std::fs::read_to_string(d.join("synapsor.runner.json")).unwrap(),
        before
    );
}

#[test]
fn the_init_wizard_on_postgres_reads_the_url_from_the_named_variable() {
    let db = common::PgDatabase::create("init_wizard");
    common::psql(
        &db.0,
        "CREATE TABLE orders (id bigint PRIMARY KEY, account_id int NOT NULL, state text NOT NULL, \
         note text, lock_version int NOT NULL DEFAULT 0); \
         INSERT INTO orders VALUES (5, 9, 'new', NULL)",
    );
    let url = common::with_db(&common::admin_url(), &db.0);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, transcript) = wizard(
        d,
        &url,
        "9",
        &[
            ("Where is the database", "\r"),
            ("Variable holding the database URL", "SI_URL\r"),
            ("Table", "\r"),
            ("What may the agent do", "\r"),
            ("Tenant column", "\r"),
            ("Columns a read shows", "\r"),
            ("Version column", "\r"),
            ("Columns a proposal may change", " \r"),
            ("state: set to", &format!("{DOWN}\r")),
            ("state: fixed value", "shipped\r"),
            ("Tool namespace", "shop\r"),
            ("Write synapsor.runner.json", "y"),
        ],
    );
    assert_eq!(code, 0, "{transcript}");
    let cfg = config(d);
    assert_eq!(cfg["sources"]["local_postgres"]["read_url_env"], "SI_URL");
    let proposal = &cfg["capabilities"][1];
    assert_eq!(proposal["name"], "shop.propose_order_update");
    assert_eq!(proposal["target"]["tenant_key"], "account_id");
    assert_eq!(proposal["conflict_guard"]["column"], "lock_version");
    assert_eq!(proposal["patch"]["state"]["fixed"], "shipped");
    let applied = lifecycle(
        d,
        &url,
        "9",
        "shop.propose_order_update",
        r#"{"order_id": "5"}"#,
    );
    assert!(applied.contains("applied"), "{applied}");
    let state = common::psql(
        &db.0,
        "SELECT state || ',' || lock_version FROM orders WHERE id = 5",
    );
    assert_eq!(state.trim(), "shipped,1");
}

#[test]
fn the_init_wizard_asks_for_a_key_and_offers_reads_only_when_nothing_is_left_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sqlite_db(
        &d.join("app.sqlite"),
        "CREATE TABLE audit_marks (mark TEXT NOT NULL, tenant_id TEXT NOT NULL, updated_at TEXT NOT NULL); \
         INSERT INTO audit_marks VALUES ('M-1', 'acme', '2026-01-01T00:00:00Z');",
    );
    let (code, transcript) = wizard(
        d,
        "",
        "acme",
        &[
            ("Where is the database", &format!("{DOWN}\r")),
            ("SQLite file", "app.sqlite\r"),
            ("Table", "\r"),
            (
                "Lookup key (audit_marks has no single-column primary key",
                "\r",
            ),
            ("What may the agent do", "\r"),
            ("Tenant column", "\r"),
            ("Columns a read shows", "\r"),
            ("Version column", "\r"),
            ("reads only", ""),
            ("Tool namespace", "\r"),
            ("Write synapsor.runner.json", "y"),
        ],
    );
    assert_eq!(code, 0, "{transcript}");
    let cfg = config(d);
    assert_eq!(cfg["mode"], "read_only", "{cfg}");
    let caps = cfg["capabilities"].as_array().unwrap();
    assert_eq!(caps.len(), 1, "a read capability only: {cfg}");
    assert_eq!(caps[0]["target"]["primary_key"], "mark");
    let read = ok(cli(d, "", "acme").args([
        "inspect",
        caps[0]["name"].as_str().unwrap(),
        "--args",
        r#"{"audit_mark_id": "M-1"}"#,
    ]));
    assert!(read.contains("M-1"), "{read}");
}

/// Split a printed command line as a POSIX shell would (single quotes only, as printed).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}
