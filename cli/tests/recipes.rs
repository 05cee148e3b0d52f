//! `recipes list | show | init`: every built-in recipe makes a config that validates in every
//! mode, and the late-fee waiver's config runs the lifecycle against the billing example.

#[path = "../../core/tests/common/mod.rs"]
mod common;

#[path = "support/cli.rs"]
mod cli_support;
use cli_support::{bin, run};
use serde_json::Value;

const IDS: [&str; 5] = [
    "accounts.trial_extension",
    "billing.late_fee_waiver",
    "credits.account_credit",
    "orders.refund_review",
    "support.ticket_resolution",
];

#[test]
fn recipes_are_listed_shown_and_unknown_ones_named() {
    let (code, out, err) = run(bin().args(["recipes", "list", "--json"]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = v["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, IDS);
    let (code, out, _) = run(bin().args(["recipes", "show", "orders.refund_review", "--json"]));
    assert_eq!(code, 0);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["spec"]["engine"], "mysql");
    let (code, _, err) = run(bin().args(["recipes", "init", "billing.nope", "--dry-run"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("RECIPE_NOT_FOUND") && err.contains("recipes list"),
        "{err}"
    );
}

#[test]
fn every_recipe_makes_a_valid_config_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    for id in IDS {
        for mode in ["read_only", "shadow", "review"] {
            let out = dir.path().join(format!("{id}.{mode}.json"));
            let (code, _, err) = run(bin()
                .args(["recipes", "init", id, "--mode", mode, "--output"])
                .arg(&out));
            assert_eq!(code, 0, "{id} {mode}: {err}");
            let (code, _, err) = run(bin().args(["config", "validate", "--config"]).arg(&out));
            assert_eq!(code, 0, "{id} {mode}: {err}");
            let c: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
            let tools = c["capabilities"].as_array().unwrap().len();
            assert_eq!(
                tools,
                if mode == "read_only" { 1 } else { 2 },
                "{id} {mode}"
            );
            std::fs::remove_file(dir.path().join(".env.example")).unwrap();
        }
    }
    // The waiver's read shows what the reference's generator shows.
    let (_, out, _) = run(bin().args(["recipes", "init", "billing.late_fee_waiver", "--dry-run"]));
    let c: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        c["capabilities"][0]["visible_columns"],
        serde_json::json!([
            "id",
            "tenant_id",
            "updated_at",
            "late_fee_cents",
            "waiver_reason",
            "status"
        ])
    );
    assert_eq!(
        c["capabilities"][1]["name"],
        "billing.propose_late_fee_waiver"
    );
}

#[test]
fn the_late_fee_waiver_recipe_runs_against_the_billing_example() {
    let db = common::PgDb::billing();
    let dir = db.dir.path();
    let url = db.url("postgres");
    let cli = || {
        let mut c = bin();
        c.current_dir(dir)
            .env("SYNAPSOR_DATABASE_READ_URL", &url)
            .env("SYNAPSOR_DATABASE_WRITE_URL", &url)
            .env("SYNAPSOR_TENANT_ID", "acme")
            .env("SYNAPSOR_PRINCIPAL", "agent:test");
        c
    };
    let ok = |c: &mut std::process::Command| {
        let (code, out, err) = run(c);
        assert_eq!(code, 0, "{out}\n{err}");
        out
    };
    ok(cli().args(["recipes", "init", "billing.late_fee_waiver"]));
    ok(cli().args([
        "propose",
        "billing.propose_late_fee_waiver",
        "--args",
        r#"{"invoice_id":"INV-3001","reason":"bank error"}"#,
    ]));
    ok(cli().args(["proposals", "approve", "latest", "--yes"]));
    ok(cli().args(["apply", "latest"]));
    assert_eq!(
        db.sql("SELECT late_fee_cents || ',' || waiver_reason FROM invoices WHERE id = 'INV-3001'"),
        "0,bank error"
    );
}
