//! `schema inspect` against real PostgreSQL, MariaDB and SQLite, each test in its own database:
//! what it finds, what it suggests, and that it reads no business rows.

#[path = "../../core/tests/common/mod.rs"]
mod common;

#[path = "support/cli.rs"]
mod cli_support;
use cli_support::{bin, run};
use serde_json::Value;

/// `schema inspect … --json` with `SI_URL=url`; the parsed output.
fn inspect_json(url: &str, extra: &[&str]) -> Value {
    let (code, out, err) = run(bin()
        .args(["schema", "inspect", "--from-env", "SI_URL", "--json"])
        .args(extra)
        .env("SI_URL", url));
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn table<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {v}"))
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

const SECRET_ROW_VALUE: &str = "s3cr3t-row-value-never-read";

#[test]
fn postgres_tables_views_keys_and_suggestions_without_reading_rows() {
    let db = common::PgDatabase::create("si_pg");
    common::psql(
        &db.0,
        &format!(
            "CREATE TABLE accounts (id uuid PRIMARY KEY, org_id int NOT NULL, email text, \
             password_hash text, lock_version int NOT NULL DEFAULT 0, meta jsonb, \
             created_at timestamptz DEFAULT now()); \
             CREATE UNIQUE INDEX ux_email ON accounts (email); \
             CREATE TABLE notes (note_id serial, account uuid REFERENCES accounts (id), body text, \
             last_update timestamptz, total int GENERATED ALWAYS AS (note_id * 2) STORED); \
             CREATE VIEW v_accounts AS SELECT id, email FROM accounts; \
             CREATE SCHEMA other; CREATE TABLE other.things (id int PRIMARY KEY); \
             INSERT INTO accounts VALUES ('00000000-0000-0000-0000-000000000001', 1, 'a@b', '{SECRET_ROW_VALUE}', 0, NULL)"
        ),
    );
    let url = common::with_db(&common::admin_url(), &db.0);
    let v = inspect_json(&url, &[]);
    assert_eq!(v["engine"], "postgres");
    assert!(!v.to_string().contains(SECRET_ROW_VALUE), "no row is read");

    let a = table(&v, "accounts");
    assert_eq!(a["schema"], "public");
    assert_eq!(a["type"], "table");
    assert_eq!(a["writable"], true);
    assert_eq!(names(&a["primary_key"]), ["id"]);
    let s = &a["suggestions"];
    assert_eq!(s["primary_key"], "id");
    assert_eq!(names(&s["tenant_columns"]), ["org_id"], "an integer tenant");
    assert_eq!(names(&s["conflict_columns"]), ["lock_version"]);
    assert_eq!(names(&s["sensitive_columns"]), ["password_hash"]);
    assert_eq!(
        names(&s["default_visible_columns"]),
        ["id", "org_id", "email", "lock_version", "created_at"],
        "neither the password hash nor the JSON document"
    );
    let ux = a["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "ux_email")
        .unwrap();
    assert_eq!(ux["unique"], true);
    assert_eq!(names(&ux["columns"]), ["email"]);
    let created = &a["columns"][6];
    assert_eq!(created["name"], "created_at");
    assert_eq!(created["data_type"], "timestamp with time zone");
    assert_eq!(created["suggestions"]["immutable"], true);

    let n = table(&v, "notes");
    assert!(n["primary_key"].as_array().unwrap().is_empty());
    assert_eq!(n["suggestions"]["primary_key"], "note_id", "a candidate");
    assert_eq!(
        names(&n["suggestions"]["conflict_columns"]),
        ["last_update"]
    );
    assert_eq!(n["foreign_keys"][0]["referenced_table"], "accounts");
    assert_eq!(names(&n["foreign_keys"][0]["columns"]), ["account"]);
    let total = n["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "total")
        .unwrap();
    assert_eq!(total["generated"], true);

    let view = table(&v, "v_accounts");
    assert_eq!(
        (view["type"].as_str(), view["writable"].as_bool()),
        (Some("view"), Some(false))
    );

    let only = inspect_json(&url, &["--schema", "other"]);
    let found: Vec<&str> = only["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["things"]);

    let (code, out, _) = run(bin()
        .args([
            "schema",
            "inspect",
            "--from-env",
            "SI_URL",
            "--table",
            "accounts",
        ])
        .env("SI_URL", &url));
    assert_eq!(code, 0);
    assert!(out.contains("public.accounts (table)"), "{out}");
    assert!(out.contains("sensitive:        password_hash"), "{out}");
    assert!(!out.contains("public.notes"), "{out}");
}

#[test]
fn mariadb_datetime6_versions_generated_columns_and_camel_case() {
    let db = common::MariaDatabase::create("si_my");
    common::mariadb(
        Some(&db.0),
        &format!(
            "CREATE TABLE Orders (OrderId BIGINT PRIMARY KEY, TenantId INT NOT NULL, Status VARCHAR(20), \
             ApiKey VARCHAR(64), UpdatedAt DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), Doc LONGBLOB, \
             Total INT AS (OrderId * 2) VIRTUAL, UNIQUE KEY uk_status (TenantId, Status)); \
             CREATE TABLE OrderLines (LineId INT AUTO_INCREMENT PRIMARY KEY, OrderId BIGINT, \
             CONSTRAINT fk_order FOREIGN KEY (OrderId) REFERENCES Orders (OrderId)); \
             CREATE VIEW VOrders AS SELECT OrderId FROM Orders; \
             INSERT INTO Orders (OrderId, TenantId, Status, ApiKey) VALUES (1, 7, 'open', '{SECRET_ROW_VALUE}')"
        ),
    );
    let url = format!("mysql://root@127.0.0.1:3306/{}", db.0);
    let v = inspect_json(&url, &[]);
    assert_eq!(v["engine"], "mysql");
    assert!(!v.to_string().contains(SECRET_ROW_VALUE), "no row is read");
    assert!(
        v["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["schema"] == db.0.as_str()),
        "the URL's database only"
    );
    let o = table(&v, "Orders");
    assert_eq!(names(&o["primary_key"]), ["OrderId"]);
    let s = &o["suggestions"];
    assert_eq!(names(&s["tenant_columns"]), ["TenantId"]);
    assert_eq!(names(&s["conflict_columns"]), ["UpdatedAt"]);
    assert_eq!(names(&s["sensitive_columns"]), ["ApiKey"]);
    assert!(!names(&s["default_visible_columns"]).contains(&"Doc"));
    let col = |name: &str| {
        o["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(col("UpdatedAt")["data_type"], "datetime(6)");
    assert_eq!(
        col("UpdatedAt")["generated"],
        false,
        "DEFAULT_GENERATED is a default, not a computed column"
    );
    assert_eq!(col("Total")["generated"], true);
    assert_eq!(
        names(&o["unique_constraints"][0]["columns"]),
        ["TenantId", "Status"]
    );
    let l = table(&v, "OrderLines");
    assert_eq!(l["foreign_keys"][0]["name"], "fk_order");
    assert_eq!(l["foreign_keys"][0]["referenced_table"], "Orders");
    assert_eq!(table(&v, "VOrders")["writable"], false);
}

#[test]
fn sqlite_files_composite_keys_and_text_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE \"Invoice\" (\"InvoiceId\" TEXT NOT NULL, \"TenantId\" TEXT NOT NULL, \"Amount\" INTEGER, \
         \"LastUpdate\" TEXT NOT NULL, \"CardNumber\" TEXT, PRIMARY KEY (\"TenantId\", \"InvoiceId\")); \
         CREATE TABLE line (id INTEGER PRIMARY KEY, invoice TEXT REFERENCES \"Invoice\" (\"InvoiceId\"), payload BLOB); \
         CREATE VIEW open_invoices AS SELECT \"InvoiceId\" FROM \"Invoice\"; \
         INSERT INTO \"Invoice\" VALUES ('I-1', 't1', 5, '2026-01-01', '{SECRET_ROW_VALUE}');"
    ))
    .unwrap();
    drop(conn);
    let (code, out, err) = run(bin()
        .args(["schema", "inspect", "--json", "--sqlite"])
        .arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(SECRET_ROW_VALUE), "no row is read");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["engine"], "sqlite");
    let i = table(&v, "Invoice");
    assert_eq!(
        names(&i["primary_key"]),
        ["TenantId", "InvoiceId"],
        "in key order"
    );
    let s = &i["suggestions"];
    assert_eq!(
        s["primary_key"], "InvoiceId",
        "the candidate for a composite key"
    );
    assert_eq!(names(&s["tenant_columns"]), ["TenantId"]);
    assert_eq!(
        names(&s["conflict_columns"]),
        ["LastUpdate"],
        "text timestamps on SQLite"
    );
    assert_eq!(names(&s["sensitive_columns"]), ["CardNumber"]);
    let l = table(&v, "line");
    assert_eq!(l["foreign_keys"][0]["referenced_table"], "Invoice");
    assert!(!names(&l["suggestions"]["default_visible_columns"]).contains(&"payload"));
    assert_eq!(table(&v, "open_invoices")["type"], "view");
}

#[test]
fn a_missing_variable_or_an_unknown_scheme_says_what_to_do() {
    let (code, _, err) = run(bin()
        .args(["schema", "inspect", "--from-env", "SI_NOT_SET"])
        .env_remove("SI_NOT_SET"));
    assert_eq!(code, 1);
    assert!(err.contains("SI_NOT_SET is not set"), "{err}");
    let (code, _, err) = run(bin()
        .args(["schema", "inspect", "--from-env", "SI_URL"])
        .env("SI_URL", "sqlserver://x"));
    assert_eq!(code, 1);
    assert!(err.contains("--sqlite PATH"), "{err}");
    let (code, _, err) = run(bin().args(["schema", "inspect"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(bin()
        .args(["schema", "inspect", "--from-env", "SI_URL"])
        .env(
            "SI_URL",
            "postgres://postgres@127.0.0.1:5432/si_no_such_database",
        ));
    assert_eq!(code, 4, "unavailable: {err}");
    assert!(err.contains("SCHEMA_INSPECTION_FAILED"), "{err}");
}
