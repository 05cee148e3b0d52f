//! The `synapsor-runner` binary end to end: demo, config validation, and the reference's core
//! flow (propose → approve latest → apply latest → retry → replay) against real PostgreSQL.

#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

#[path = "support/cli.rs"]
mod cli_support;
use cli_support::{bin, run};

#[test]
fn demo_walks_the_whole_lifecycle_and_is_rerunnable() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let (code, out, err) = run(bin().arg("demo").current_dir(dir.path()));
        assert_eq!(code, 0, "{out}\n{err}");
        for line in [
            "Proposal created:",
            "Source DB changed: no (late_fee_cents is still 5500)",
            "refused (APPROVER_ROLE_MISSING)",
            "Guarded writeback applied: rows 1",
            "Source now: late_fee_cents 0",
            "Guarded writeback already applied: rows 0",
            "apply: conflict (VERSION_CONFLICT), rows 0",
            "row untouched: yes",
            "NOT_FOUND_IN_TENANT",
            "writeback_applied by local_runner",
            "execute_sql absent",
        ] {
            assert!(out.contains(line), "missing {line:?} in:\n{out}");
        }
    }
    // The CLI reads the demo ledger afterwards.
    let store = dir.path().join(".synapsor/demo/local.db");
    let (code, out, _) = run(bin()
        .args(["replay", "show", "latest", "--store"])
        .arg(&store));
    assert_eq!(code, 0);
    assert!(
        out.contains("Replay replay_wrp_") && out.contains("Proposal is conflict"),
        "{out}"
    );
}

#[test]
fn config_validate_reports_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"version": 1, "mode": "x", "sources": {"a-b": {"engine": "postgres", "url": "postgres://u:p@h/d"}}, "capabilities": []}"#).unwrap();
    let (code, out, _) = run(bin().args(["config", "validate", "--config"]).arg(&bad));
    assert_eq!(code, 1);
    assert!(out.starts_with("config invalid:"), "{out}");
    for line in [
        "error $.mode INVALID_MODE",
        "error $.sources.a-b UNSAFE_SOURCE_NAME",
        "error $.sources.a-b.url INLINE_DATABASE_URL_FORBIDDEN",
        "error $.capabilities CAPABILITIES_REQUIRED",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }
    let (code, out, _) = run(bin()
        .args(["config", "validate", "--json", "--config"])
        .arg(&bad));
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], serde_json::json!(false));
    for example in [
        "mcp-postgres-billing",
        "mcp-mysql-orders",
        "support-billing-agent",
    ] {
        let path = common::fixture(&format!("examples/{example}/synapsor.runner.json"));
        let (code, out, _) = run(bin().args(["config", "validate", "--config"]).arg(&path));
        assert_eq!(code, 0, "{example}: {out}");
        assert!(out.starts_with("config valid:"));
    }
}

#[test]
fn errors_are_one_clear_line_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(bin()
        .args(["proposals", "show", "latest", "--store"])
        .arg(dir.path().join("missing.db")));
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "error[LOCAL_STORE_NOT_FOUND]: No local Synapsor proposal store was found at"
        ),
        "{err}"
    );
    let (code, _, err) = run(bin()
        .args(["apply", "latest", "--config"])
        .arg(dir.path().join("nope.json")));
    assert_eq!(code, 1);
    assert!(err.starts_with("error[CONFIG_NOT_FOUND]"), "{err}");
    let (code, out, _) = run(bin().arg("--version"));
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
}

fn pg_cli(db: &common::PgDb, cfg: &Path, store: &Path) -> Command {
    let mut c = bin();
    let p = db.env_prefix();
    c.env(format!("{p}_READ"), db.url("synapsor_reader"))
        .env(format!("{p}_WRITE"), db.url("synapsor_writer"))
        .env("SYNAPSOR_TENANT_ID", "acme")
        .env("SYNAPSOR_PRINCIPAL", "local_billing_operator")
        .arg("--config")
        .arg(cfg)
        .arg("--store")
        .arg(store);
    c
}

#[test]
fn reference_core_flow_runs_against_postgres() {
    let db = common::PgDb::billing();
    // The reference config as shipped (environment trusted context), only the URL env names differ.
    let text = std::fs::read_to_string(common::fixture(
        "examples/mcp-postgres-billing-app-handler/synapsor.runner.json",
    ))
    .unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    let p = db.env_prefix();
    cfg["sources"]["billing_postgres"]["read_url_env"] = serde_json::json!(format!("{p}_READ"));
    cfg["sources"]["billing_postgres"]["write_url_env"] = serde_json::json!(format!("{p}_WRITE"));
    let cfg_path = db.dir.path().join("synapsor.runner.json");
    std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let store = db.dir.path().join("local.db");
    let input = db.dir.path().join("waiver.json");
    std::fs::write(
        &input,
        r#"{"invoice_id":"INV-3001","reason":"support-approved waiver"}"#,
    )
    .unwrap();

    let (code, out, err) = run(pg_cli(&db, &cfg_path, &store).args(["tools", "preview"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("billing.propose_late_fee_waiver") && out.contains("PASS execute_sql absent"),
        "{out}"
    );

    let (code, out, err) = run(pg_cli(&db, &cfg_path, &store)
        .args(["propose", "billing.propose_late_fee_waiver", "--input"])
        .arg(&input));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Proposal created.") && out.contains("Source DB changed:\n  no"),
        "{out}"
    );
    assert_eq!(
        db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'"),
        "5500"
    );

    let (code, _, err) = run(bin()
        .args(["proposals", "approve", "latest", "--store"])
        .arg(&store)
        .stdin(std::process::Stdio::null()));
    assert_eq!(code, 1, "non-interactive approval needs --yes");
    assert!(err.contains("requires --yes"), "{err}");
    let (code, out, err) = run(bin()
        .args(["proposals", "approve", "latest", "--yes", "--store"])
        .arg(&store));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("approved wrp_") && out.contains("asserted local cli"),
        "{out}"
    );

    let (code, out, err) = run(pg_cli(&db, &cfg_path, &store).args(["apply", "latest"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Guarded writeback applied."), "{out}");
    assert!(out.contains("* affected rows: 1"));
    assert_eq!(
        db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'"),
        "0"
    );

    let (code, out, _) = run(pg_cli(&db, &cfg_path, &store).args(["apply", "latest"]));
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Guarded writeback already applied."),
        "{out}"
    );

    let (code, out, _) = run(bin()
        .args(["replay", "show", "latest", "--details", "--store"])
        .arg(&store));
    assert_eq!(code, 0);
    assert!(
        out.contains("billing.propose_late_fee_waiver")
            && out.contains("writeback_applied by")
            && out.contains("receipts: 1"),
        "{out}"
    );

    let (code, out, _) = run(pg_cli(&db, &cfg_path, &store).args([
        "inspect",
        "billing.inspect_invoice",
        "--json",
        r#"{"invoice_id":"INV-9001"}"#,
    ]));
    assert_eq!(code, 1);
    let _ = out;
    let (code, _, err) = run(pg_cli(&db, &cfg_path, &store).args([
        "inspect",
        "billing.inspect_invoice",
        "--args",
        r#"{"invoice_id":"INV-3001","tenant_id":"globex"}"#,
    ]));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error[MODEL_CANNOT_OVERRIDE_BINDING]"),
        "{err}"
    );
}

#[test]
fn writeback_migration_and_grants_print_checked_sql() {
    let (code, out, _) = run(bin().args(["writeback", "migration", "--engine", "mysql"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("CREATE TABLE IF NOT EXISTS synapsor_writeback_receipts")
            && out.contains("intent_hash"),
        "{out}"
    );
    let (code, out, _) = run(bin().args([
        "writeback",
        "grants",
        "--engine",
        "postgres",
        "--writer-role",
        "app_writer",
    ]));
    assert_eq!(code, 0);
    assert!(out.contains("GRANT SELECT, INSERT, UPDATE ON TABLE \"public\".synapsor_writeback_receipts TO \"app_writer\";"), "{out}");
    let (code, out, _) = run(bin().args([
        "writeback",
        "grants",
        "--engine",
        "mysql",
        "--writer-role",
        "'synapsor_writer'@'%'",
        "--schema",
        "appdb",
    ]));
    assert_eq!(code, 0);
    assert!(out.contains("GRANT SELECT, INSERT, UPDATE ON `appdb`.synapsor_writeback_receipts TO 'synapsor_writer'@'%';"), "{out}");
    let (code, _, err) = run(bin().args([
        "writeback",
        "grants",
        "--engine",
        "postgres",
        "--writer-role",
        "x; DROP ROLE postgres",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("UNSAFE_IDENTIFIER"), "{err}");
}

#[test]
fn doctor_check_writeback_probes_postgres_without_committing() {
    let db = common::PgDb::billing();
    let cfg = db.config_value();
    let path = db.dir.path().join("doctor.json");
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let p = db.env_prefix();
    let (code, out, err) = run(bin()
        .args(["doctor", "--check-writeback", "--config"])
        .arg(&path)
        .env(format!("{p}_READ"), db.url("synapsor_reader"))
        .env(format!("{p}_WRITE"), db.url("synapsor_writer")));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PASS billing_postgres: writeback probe"),
        "{out}"
    );
    assert!(
        !out.contains("synapsor_writer_password"),
        "no secrets in doctor output"
    );
    let (code, out, _) = run(bin()
        .args(["doctor", "--check-writeback", "--config"])
        .arg(&path)
        .env_remove(format!("{p}_WRITE"))
        .env(format!("{p}_READ"), db.url("synapsor_reader")));
    assert_eq!(code, 1);
    assert!(out.contains("FAIL billing_postgres: writer env"), "{out}");
}

/// A command's exit code, stdout and stderr.
type Output = (i32, String, String);

/// Propose `capability` with `args`, approve it as a holder of `role`, apply it: the apply's
/// exit code and output (propose and approve must succeed).
fn propose_approve_apply(
    cli: &dyn Fn(&[&str]) -> Output,
    capability: &str,
    args: &str,
    role: &str,
) -> Output {
    let (code, out, err) = cli(&["propose", capability, "--args", args]);
    assert_eq!(code, 0, "propose: {out}{err}");
    let (code, _, err) = cli(&[
        "proposals",
        "approve",
        "latest",
        "--yes",
        "--as",
        "lead",
        "--role",
        role,
    ]);
    assert_eq!(code, 0, "approve: {err}");
    cli(&["apply", "latest", "--json"])
}

#[test]
fn writeback_grants_from_the_config_are_all_a_fresh_writer_needs() {
    let db = common::PgDb::billing();
    let cfg = db.config_value();
    let path = db.dir.path().join("grants.json");
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let role = format!("gw_{}", &db.name[db.name.len() - 8..]);
    let (code, grants, err) = run(bin()
        .args([
            "writeback",
            "grants",
            "--engine",
            "postgres",
            "--writer-role",
            &role,
            "--config",
        ])
        .arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(
        grants.contains("ON \"public\".\"invoices\"")
            && grants.contains("UPDATE (\"late_fee_cents\", \"updated_at\", \"waiver_reason\")"),
        "the user's table and columns, not an example:\n{grants}"
    );
    // A role with nothing but these grants (and the receipt table the owner created) applies.
    let (_, ddl, _) = run(bin().args(["writeback", "migration", "--engine", "postgres"]));
    db.sql(&ddl);
    db.sql(&format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN PASSWORD 'pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    ));
    db.sql(&grants);
    let url = db.url("synapsor_writer").replace(
        "synapsor_writer:synapsor_writer_password",
        &format!("{role}:pw"),
    );
    let p = db.env_prefix();
    let env = |cmd: &mut std::process::Command| {
        cmd.env(format!("{p}_READ"), db.url("synapsor_reader"))
            .env(format!("{p}_WRITE"), &url)
            .env("SYNAPSOR_TENANT_ID", "acme")
            .env("SYNAPSOR_PRINCIPAL", "agent");
    };
    let store = db.dir.path().join("grants.db");
    let cli = |args: &[&str]| {
        let mut cmd = bin();
        cmd.args(args)
            .arg("--config")
            .arg(&path)
            .arg("--store")
            .arg(&store);
        env(&mut cmd);
        run(&mut cmd)
    };
    let (code, out, err) = propose_approve_apply(
        &cli,
        "billing.propose_late_fee_waiver",
        r#"{"invoice_id":"INV-3001","reason":"bank error"}"#,
        "billing_lead",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"status\": \"applied\""), "{out}");
    assert_eq!(
        db.sql("SELECT late_fee_cents FROM invoices WHERE id = 'INV-3001'"),
        "0"
    );
    db.sql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn mariadb_writeback_grants_from_the_config_are_all_a_fresh_writer_needs() {
    let name = format!("syngr_{}", std::process::id());
    common::mariadb(
        None,
        &format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"),
    );
    let schema = std::fs::read_to_string(common::fixture(
        "examples/mcp-mysql-orders/seed/001_schema.sql",
    ))
    .unwrap()
    .replace("synapsor_runner_mcp_orders", &name);
    common::mariadb(Some(&name), &schema);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture(
            "examples/mcp-mysql-orders/synapsor.runner.json",
        ))
        .unwrap(),
    )
    .unwrap();
    for cap in cfg["capabilities"].as_array_mut().unwrap() {
        cap["target"]["schema"] = serde_json::json!(name);
    }
    cfg.as_object_mut().unwrap().remove("storage");
    let path = dir.path().join("orders.json");
    std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let user = format!("gw{}", std::process::id());
    let account = format!("'{user}'@'%'");
    let (code, grants, err) = run(bin()
        .args([
            "writeback",
            "grants",
            "--engine",
            "mysql",
            "--writer-role",
            &account,
            "--schema",
            &name,
            "--config",
        ])
        .arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(
        grants.contains(&format!("ON `{name}`.`orders`")),
        "{grants}"
    );
    let (_, ddl, _) = run(bin().args(["writeback", "migration", "--engine", "mysql"]));
    common::mariadb(Some(&name), &ddl);
    common::mariadb(
        None,
        &format!("DROP USER IF EXISTS {account}; CREATE USER {account} IDENTIFIED BY 'pw'"),
    );
    common::mariadb(Some(&name), &grants);
    let cli = |args: &[&str]| {
        run(bin()
            .args(args)
            .arg("--config")
            .arg(&path)
            .arg("--store")
            .arg(dir.path().join("l.db"))
            .env(
                "ORDERS_MYSQL_READ_URL",
                format!("mysql://root@127.0.0.1:3306/{name}"),
            )
            .env(
                "ORDERS_MYSQL_WRITE_URL",
                format!("mysql://{user}:pw@127.0.0.1:3306/{name}"),
            )
            .env("SYNAPSOR_TENANT_ID", "acme")
            .env("SYNAPSOR_PRINCIPAL", "agent"))
    };
    let (code, out, err) = propose_approve_apply(
        &cli,
        "orders.propose_refund_review",
        r#"{"order_id":"O-1001","refund_note":"duplicate charge"}"#,
        "orders_lead",
    );
    let result = format!("{out}{err}");
    common::mariadb(
        None,
        &format!("DROP USER IF EXISTS {account}; DROP DATABASE IF EXISTS {name}"),
    );
    assert_eq!(code, 0, "{result}");
    assert!(result.contains("\"status\": \"applied\""), "{result}");
}
