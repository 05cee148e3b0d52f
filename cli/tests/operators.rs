//! What careless operators run into: every command finds the same ledger, ledgers are private
//! files, a newer ledger is refused, numbers in config are bounded, a closed pipe ends quietly,
//! `reconcile` answers, and exit codes say what happened.

use std::path::Path;
use std::process::Command;

#[path = "support/cli.rs"]
mod cli_support;
use cli_support::{bin, run};

/// The command failed and said `msg` on stderr.
fn assert_refused((code, _, err): (i32, String, String), msg: &str) {
    assert_ne!(code, 0, "expected a refusal saying {msg}");
    assert!(err.contains(msg), "{msg} in: {err}");
}

/// Run the demo in `dir`; returns its config path.
fn demo(dir: &Path) -> std::path::PathBuf {
    let (code, out, err) = run(bin().arg("demo").current_dir(dir));
    assert_eq!(code, 0, "{out}\n{err}");
    dir.join(".synapsor/demo/synapsor.runner.json")
}

#[test]
fn every_command_finds_the_ledger_the_config_names_from_any_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    // No --store: the config's storage.sqlite_path, relative to the config file's folder.
    let (code, out, err) = run(bin()
        .args(["proposals", "list", "--config"])
        .arg(&config)
        .current_dir(elsewhere.path()));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("wrp_"),
        "the demo's proposals are listed:\n{out}"
    );
    let (code, out, _) = run(bin()
        .args(["replay", "show", "latest", "--config"])
        .arg(&config)
        .current_dir(elsewhere.path()));
    assert_eq!(code, 0);
    assert!(out.contains("Replay replay_wrp_"), "{out}");
    let (code, out, err) = run(bin()
        .args(["reconcile", "--config"])
        .arg(&config)
        .current_dir(elsewhere.path()));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Nothing to reconcile"), "{out}");
    assert!(
        !elsewhere.path().join(".synapsor").exists(),
        "no stray ledger created"
    );
    // The MCP snippet points the server at that same ledger.
    let (code, out, _) = run(bin()
        .args(["mcp", "configure", "generic-stdio", "--config"])
        .arg(&config)
        .current_dir(elsewhere.path()));
    assert_eq!(code, 0);
    let ledger = dir.path().join(".synapsor/demo/local.db");
    assert!(out.contains(&*ledger.to_string_lossy()), "{out}");
}

#[test]
fn a_command_about_to_start_an_empty_ledger_says_where_the_other_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    // A config in a sub-folder naming a ledger path that exists relative to the working folder.
    let sub = dir.path().join("cfg");
    std::fs::create_dir(&sub).unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "\"sqlite_path\": \"local.db\"",
            "\"sqlite_path\": \".synapsor/demo/local.db\"",
        )
        .replace(
            "\"path\": \"billing.sqlite\"",
            "\"path\": \"../.synapsor/demo/billing.sqlite\"",
        );
    std::fs::write(sub.join("synapsor.runner.json"), text).unwrap();
    let (_, _, err) = run(bin()
        .args([
            "inspect",
            "billing.inspect_invoice",
            "--args",
            r#"{"invoice_id":"INV-3001"}"#,
            "--config",
        ])
        .arg(sub.join("synapsor.runner.json"))
        .current_dir(dir.path()));
    assert!(
        err.contains("warning: creating a new, empty ledger"),
        "{err}"
    );
    assert!(err.contains(".synapsor/demo/local.db"), "{err}");
}

#[cfg(unix)]
#[test]
fn ledger_files_are_private_and_a_newer_ledger_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let ledger = dir.path().join(".synapsor/demo/local.db");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ledger), 0o600, "ledger file");
    let wal = dir.path().join(".synapsor/demo/local.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "WAL file");
    }
    // A new ledger in a new folder: the folder is private too.
    let fresh = dir.path().join("new/place/ledger.db");
    let (code, _, err) = run(bin()
        .args([
            "inspect",
            "billing.inspect_invoice",
            "--args",
            r#"{"invoice_id":"INV-3001"}"#,
            "--config",
        ])
        .arg(dir.path().join(".synapsor/demo/synapsor.runner.json"))
        .arg("--store")
        .arg(&fresh));
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&fresh), 0o600);
    assert_eq!(mode(&dir.path().join("new/place")), 0o700);
    // Written by a newer runner: refused, not written into.
    let conn = rusqlite_user_version(&ledger, 99);
    drop(conn);
    let (code, _, err) = run(bin().args(["proposals", "list", "--store"]).arg(&ledger));
    assert_eq!(code, 1);
    assert!(err.contains("error[LEDGER_SCHEMA_TOO_NEW]"), "{err}");
}

/// Set a SQLite file's user_version with the sqlite3-free route: the binary's own dependency is
/// not linked into tests, so use python3's sqlite3 module.
fn rusqlite_user_version(path: &Path, v: i64) -> std::process::Output {
    Command::new("python3")
        .args([
            "-c",
            &format!(
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version = {v}'); c.commit()"
            ),
        ])
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn config_numbers_are_bounded_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "\"statement_timeout_ms\": 3000",
        "\"statement_timeout_ms\": 999999999999",
    );
    std::fs::write(&config, text).unwrap();
    let (code, out, _) = run(bin().args(["config", "validate", "--config"]).arg(&config));
    assert_eq!(code, 1);
    assert!(
        out.contains("$.sources.billing.statement_timeout_ms INVALID_TIMEOUT"),
        "{out}"
    );
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' replay show latest --details --config '{}' | head -c 1 >/dev/null; '{}' tools preview --config '{}' >&-",
            env!("CARGO_BIN_EXE_synapsor-runner"),
            config.display(),
            env!("CARGO_BIN_EXE_synapsor-runner"),
            config.display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("failed printing"), "{err}");
}

#[test]
fn apply_exit_codes_say_conflict_and_success_apart() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let args = |a: &[&str]| {
        let mut c = bin();
        c.args(a).arg("--config").arg(&config);
        c
    };
    let (code, _, err) = run(&mut args(&[
        "propose",
        "billing.propose_late_fee_waiver",
        "--args",
        r#"{"invoice_id":"INV-3002","reason":"x"}"#,
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(args(&["proposals", "approve", "latest", "--yes"])
        .env("SYNAPSOR_OPERATOR_ROLES", "billing_lead"));
    assert_eq!(code, 0, "{err}");
    // The row moves under the approved proposal.
    let db = dir.path().join(".synapsor/demo/billing.sqlite");
    let moved = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE invoices SET updated_at = '2030-01-01T00:00:00.000Z' WHERE id = 'INV-3002'\"); c.commit()"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(moved.success());
    let (code, out, err) = run(&mut args(&["apply", "latest"]));
    assert_eq!(code, 3, "conflict exits 3:\n{out}\n{err}");
}

#[test]
fn approve_with_actor_takes_its_roles_from_the_operator_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let run_with = |args: &[&str], roles: Option<&str>| {
        let mut c = bin();
        c.args(args).arg("--config").arg(&config);
        if let Some(r) = roles {
            c.env("SYNAPSOR_OPERATOR_ROLES", r);
        }
        run(&mut c)
    };
    let (code, _, err) = run_with(
        &[
            "propose",
            "billing.propose_late_fee_waiver",
            "--args",
            r#"{"invoice_id":"INV-3002","reason":"x"}"#,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    // An explicit role that is not the required one is refused.
    let (code, _, err) = run_with(
        &[
            "proposals",
            "approve",
            "latest",
            "--actor",
            "someone",
            "--role",
            "support",
            "--yes",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("APPROVER_ROLE_MISSING"), "{err}");
    // The reference's scripts: --actor with the roles in SYNAPSOR_OPERATOR_ROLES.
    let (code, out, err) = run_with(
        &[
            "proposals",
            "approve",
            "latest",
            "--actor",
            "billing_lead",
            "--yes",
        ],
        Some("billing_lead"),
    );
    assert_eq!(code, 0, "{out}{err}");
    let (_, replay, _) = run_with(&["replay", "show", "latest", "--json"], None);
    assert!(replay.contains("billing_lead"), "{replay}");
    assert!(
        replay.contains("operator_env"),
        "how the role was established is recorded: {replay}"
    );
}

#[test]
fn unknown_states_and_approval_modes_are_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let (code, _, err) = run(bin()
        .args(["proposals", "list", "--state", "foo", "--config"])
        .arg(&config));
    assert_eq!(code, 1);
    assert!(
        err.contains("PROPOSAL_STATE_UNKNOWN") && err.contains("pending_review"),
        "{err}"
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"mode\": \"human\"", "\"mode\": \"foo\"");
    std::fs::write(&config, text).unwrap();
    let (code, out, _) = run(bin().args(["config", "validate", "--config"]).arg(&config));
    assert_eq!(code, 1);
    assert!(
        out.contains("approval.mode APPROVAL_MODE_UNSUPPORTED"),
        "{out}"
    );
}

#[test]
fn the_demo_hints_run_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(bin().arg("demo").current_dir(dir.path()));
    assert_eq!(code, 0, "{err}");
    let hints: Vec<&str> = out
        .split("Try the CLI on the same files:")
        .nth(1)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(hints.len(), 3, "{out}");
    for hint in hints {
        let status = Command::new("sh")
            .args(["-c", hint])
            .current_dir(dir.path())
            .env_remove("SYNAPSOR_LOCAL_STORE")
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{hint}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&status.stderr).contains("warning"),
            "{hint}"
        );
    }
}

#[test]
fn receipts_and_store_stats_read_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    let (code, out, err) = cli(&["receipts", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let receipts = list["receipts"].as_array().unwrap();
    let statuses: Vec<&str> = receipts
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"applied"), "{statuses:?}");
    assert!(statuses.contains(&"conflict"), "{statuses:?}");
    let ids: Vec<i64> = receipts
        .iter()
        .map(|r| r["receipt_id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let (_, out, _) = cli(&["receipts", "list", "--status", "conflict", "--json"]);
    let only: serde_json::Value = serde_json::from_str(&out).unwrap();
    let only = only["receipts"].as_array().unwrap();
    assert!(!only.is_empty() && only.iter().all(|r| r["status"] == "conflict"));

    let applied = receipts.iter().find(|r| r["status"] == "applied").unwrap();
    let n = applied["receipt_id"].as_i64().unwrap();
    let (code, out, _) = cli(&["receipts", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("  receipt {n}  applied")), "{out}");
    let (code, out, err) = cli(&["receipts", "show", &format!("rct_{n:06}")]);
    assert_eq!(code, 0, "{err}");
    for line in [
        format!("Receipt rct_{n:06}"),
        "Status: applied".into(),
        "Writeback: guarded single-row update".into(),
        "affected rows: 1".into(),
        "Source DB changed: yes".into(),
    ] {
        assert!(out.contains(&line), "{line} in:\n{out}");
    }
    let (_, out, _) = cli(&["receipts", "show", &n.to_string(), "--details"]);
    assert!(
        out.contains("Idempotency key: ") && out.contains("Receipt hash: sha256:"),
        "{out}"
    );

    assert_refused(cli(&["receipts", "show", "999999"]), "receipt not found");
    assert_refused(cli(&["receipts", "show", "latest"]), "positive number");
    assert_refused(cli(&["receipts", "list", "--limit", "0"]), "--limit");

    let (code, out, err) = cli(&["store", "stats", "--json"]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        stats["tables"]["proposals"].as_i64().unwrap() >= 2,
        "{stats}"
    );
    assert_eq!(
        stats["tables"]["writeback_receipts"].as_i64().unwrap(),
        receipts.len() as i64
    );
    assert_eq!(
        stats["approx_bytes"].as_i64().unwrap(),
        stats["page_count"].as_i64().unwrap() * stats["page_size"].as_i64().unwrap()
    );
    assert!(
        stats["path"].as_str().unwrap().ends_with("local.db"),
        "{stats}"
    );
    let (code, out, err) = cli(&["store", "vacuum"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("vacuumed local store") && out.contains("approx bytes: "),
        "{out}"
    );
    let (_, after, _) = cli(&["store", "stats", "--json"]);
    let after: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(after["tables"], stats["tables"], "vacuum keeps every row");
}

#[test]
fn evidence_and_query_audit_can_be_listed_shown_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    let json = |args: &[&str]| -> serde_json::Value {
        let (code, out, err) = cli(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let all = json(&["evidence", "list", "--json"]);
    let all = all["evidence"].as_array().unwrap().clone();
    assert!(all.len() >= 2, "{all:?}");
    let with_proposal = all.iter().find(|e| e["proposal_id"].is_string()).unwrap();
    let id = with_proposal["evidence_bundle_id"].as_str().unwrap();
    let object = format!(
        "{}:{}",
        with_proposal["business_object"].as_str().unwrap(),
        with_proposal["object_id"].as_str().unwrap()
    );
    let one = json(&["evidence", "list", "--object", &object, "--json"]);
    let one = one["evidence"].as_array().unwrap();
    assert!(
        !one.is_empty()
            && one
                .iter()
                .all(|e| e["object_id"] == with_proposal["object_id"])
    );
    let none = json(&["evidence", "list", "--tenant", "globex", "--json"]);
    assert_eq!(none["evidence"], serde_json::json!([]));
    assert_refused(
        cli(&["evidence", "list", "--object", "INV-3001"]),
        "--object must use type:id",
    );

    let (code, out, err) = cli(&["evidence", "show", id]);
    assert_eq!(code, 0, "{err}");
    for line in [
        &format!("Evidence {id}"),
        "Used for: proposal ",
        "evidence item(s)",
        "query audit record(s)",
        "More detail:",
    ] {
        assert!(out.contains(line), "{line} in:\n{out}");
    }
    let (_, out, _) = cli(&["evidence", "show", id, "--details"]);
    assert!(
        out.contains(&format!("Evidence bundle: {id}")) && out.contains("Query fingerprint: "),
        "{out}"
    );
    assert_refused(
        cli(&["evidence", "show", "ev_missing"]),
        "evidence bundle not found: ev_missing",
    );
    let md = dir.path().join("ev.md");
    let (code, out, err) = run(bin()
        .args(["evidence", "export", id, "--format", "markdown", "--output"])
        .arg(&md)
        .arg("--config")
        .arg(&config));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("exported {id} to ")), "{out}");
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .starts_with(&format!("# Evidence {id}"))
    );
    assert_refused(
        cli(&["evidence", "export", id]),
        "evidence export requires --output <path>",
    );
    assert_refused(
        cli(&["evidence", "export", id, "--format", "pdf", "--output", "x"]),
        "unsupported export format: pdf",
    );

    let audits = json(&["query-audit", "list", "--json"]);
    let audits = audits["query_audit"].as_array().unwrap().clone();
    assert!(!audits.is_empty());
    let linked = json(&["query-audit", "list", "--evidence", id, "--json"]);
    let linked = linked["query_audit"].as_array().unwrap();
    assert!(!linked.is_empty() && linked.iter().all(|a| a["evidence_bundle_id"] == id));
    let n = audits[0]["audit_id"].as_i64().unwrap().to_string();
    let (code, out, _) = cli(&["query-audit", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("  audit {n}")) && out.contains("  source: "),
        "{out}"
    );
    let (code, out, err) = cli(&["query-audit", "show", &n, "--details"]);
    assert_eq!(code, 0, "{err}");
    for line in [
        &format!("Query audit {n}"),
        "Read: ",
        "Rows returned: ",
        "Linked records:",
        "Parameters redacted: ",
        "Payload: ",
    ] {
        assert!(out.contains(line), "{line} in:\n{out}");
    }
    assert_refused(
        cli(&["query-audit", "show", "0"]),
        "query-audit show requires <audit_id>",
    );
    let file = dir.path().join("audit.json");
    let (code, _, err) = run(bin()
        .args(["query-audit", "export", &n, "--output"])
        .arg(&file)
        .arg("--config")
        .arg(&config));
    assert_eq!(code, 0, "{err}");
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(exported["audit_id"].to_string(), n);
}

#[test]
fn config_show_writeback_job_and_job_validation() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    // A credential in a free-form field is masked; the names of env vars stay readable.
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    cfg["trusted_context"]["values"]["password"] = serde_json::json!("hunter2");
    cfg["trusted_context"]["values"]["note"] = serde_json::json!("postgres://u:pw@db/x");
    cfg["executors"] = serde_json::json!({"app": {"type": "http_handler", "url_env": "APP_HANDLER_URL", "auth": {"type": "bearer_env", "token_env": "APP_HANDLER_TOKEN"}}});
    std::fs::write(&config, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    let (code, out, err) = cli(&["config", "show"]);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown, cfg);
    let (code, out, err) = cli(&["config", "show", "--redacted"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("hunter2") && !out.contains("u:pw@"), "{out}");
    let masked: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        masked["trusted_context"]["values"]["password"],
        "<redacted>"
    );
    assert_eq!(
        masked["executors"]["app"]["auth"]["token_env"],
        "APP_HANDLER_TOKEN"
    );
    assert_eq!(masked["executors"]["app"]["url_env"], "APP_HANDLER_URL");
    assert_eq!(
        masked["sources"]["billing"]["path"],
        cfg["sources"]["billing"]["path"]
    );
    let (code, out, _) = cli(&["config", "migrate"]);
    assert_eq!(code, 0);
    assert!(out.contains("config already current"), "{out}");

    // The job of an approved proposal, written to a file, validates and applies.
    let (code, _, err) = cli(&[
        "propose",
        "billing.propose_late_fee_waiver",
        "--args",
        r#"{"invoice_id":"INV-3002","reason":"goodwill"}"#,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&["proposals", "writeback-job", "latest"]);
    assert_ne!(code, 0, "pending review is not approved");
    assert!(err.contains("not approved for writeback"), "{err}");
    let (code, _, err) = cli(&[
        "proposals",
        "approve",
        "latest",
        "--yes",
        "--as",
        "lead",
        "--role",
        "billing_lead",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&["proposals", "writeback-job", "latest"]);
    assert_eq!(code, 0, "{err}");
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        printed["schema_version"], "synapsor.writeback-job.v1",
        "{printed}"
    );
    let job = dir.path().join("job.json");
    let (code, out, err) = run(bin()
        .args([
            "proposals",
            "writeback-job",
            "latest",
            "--lease-seconds",
            "600",
            "--output",
        ])
        .arg(&job)
        .arg("--config")
        .arg(&config));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created writeback job wbj_"), "{out}");
    let (code, out, err) = run(bin().args(["validate", "--job"]).arg(&job));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "job valid");
    let (code, out, err) = run(bin()
        .args(["apply", "--job"])
        .arg(&job)
        .arg("--config")
        .arg(&config));
    assert_eq!(code, 0, "{out}{err}");
    assert_refused(run(bin().arg("validate")), "--job <path> is required");
    std::fs::write(&job, r#"{"schema_version":"synapsor.writeback-job.v1"}"#).unwrap();
    assert_refused(
        run(bin().args(["validate", "--job"]).arg(&job)),
        "PROTOCOL_INVALID",
    );
}

#[test]
fn replays_can_be_listed_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    let (code, out, err) = cli(&["replay", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all = all["replays"].as_array().unwrap().clone();
    assert!(all.len() >= 2);
    for r in &all {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "replay_id",
            "proposal_id",
            "created_at",
            "state",
            "tenant_id",
            "principal",
            "capability",
            "business_object",
            "object_id",
        ] {
            assert!(keys.contains(&k), "{k} in {r}");
        }
        assert_eq!(
            r["replay_id"],
            format!("replay_{}", r["proposal_id"].as_str().unwrap())
        );
    }
    let (_, out, _) = cli(&["replay", "list", "--state", "applied", "--json"]);
    let applied: serde_json::Value = serde_json::from_str(&out).unwrap();
    let applied = applied["replays"].as_array().unwrap();
    assert!(!applied.is_empty() && applied.iter().all(|r| r["state"] == "applied"));
    let (_, out, _) = cli(&["receipts", "list", "--status", "conflict", "--json"]);
    let receipts: serde_json::Value = serde_json::from_str(&out).unwrap();
    let conflict = &receipts["receipts"][0];
    let (_, out, _) = cli(&[
        "replay",
        "list",
        "--receipt",
        &conflict["receipt_id"].to_string(),
        "--json",
    ]);
    let by_receipt: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(by_receipt["replays"].as_array().unwrap().len(), 1);
    assert_eq!(
        by_receipt["replays"][0]["proposal_id"],
        conflict["proposal_id"]
    );
    assert_refused(
        cli(&["replay", "list", "--receipt", "x"]),
        "--receipt must be a positive",
    );
    let (code, out, _) = cli(&["replay", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("  replay_wrp_"), "{out}");

    let md = dir.path().join("replay.md");
    let (code, out, err) = run(bin()
        .args([
            "replay", "export", "latest", "--format", "markdown", "--out",
        ])
        .arg(&md)
        .arg("--config")
        .arg(&config));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("exported replay_wrp_"), "{out}");
    let text = std::fs::read_to_string(&md).unwrap();
    for h in [
        "# Synapsor Replay",
        "## What The Agent Requested",
        "## Trusted Context",
        "## Evidence",
        "## Proposed Diff",
        "## Approval",
        "## Guarded Writeback",
        "## Query Audit",
        "## Replay Note",
    ] {
        assert!(text.contains(h), "{h} in:\n{text}");
    }
    let json_file = dir.path().join("replay.json");
    let (code, _, err) = run(bin()
        .args([
            "replay",
            "export",
            "--proposal",
            all[0]["proposal_id"].as_str().unwrap(),
            "--output",
        ])
        .arg(&json_file)
        .arg("--config")
        .arg(&config));
    assert_eq!(code, 0, "{err}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    assert_eq!(record["proposal"]["proposal_id"], all[0]["proposal_id"]);
    assert_refused(
        cli(&["replay", "export", "latest"]),
        "replay export requires --output <path>",
    );
}

#[test]
fn activity_search_merges_proposals_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    let search = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["activity", "search", "--json"];
        all.extend_from_slice(args);
        let (code, out, err) = cli(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["interactions"].as_array().unwrap().clone()
    };
    let all = search(&[]);
    let kinds: Vec<&str> = all.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"proposal") && kinds.contains(&"evidence"),
        "{kinds:?}"
    );
    let times: Vec<&str> = all
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let applied = search(&["--state", "applied"]);
    assert!(
        !applied.is_empty()
            && applied
                .iter()
                .all(|i| i["kind"] == "proposal" && i["state"] == "applied")
    );
    let id = applied[0]["proposal_id"].as_str().unwrap();
    let one = search(&["--replay", &format!("replay_{id}")]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["proposal_id"], id);
    let object = applied[0]["object"].as_str().unwrap();
    assert!(
        search(&["--object", object])
            .iter()
            .all(|i| i["object"] == object)
    );
    assert_eq!(search(&["--limit", "1"]).len(), 1);
    assert!(search(&["--tenant", "globex"]).is_empty());
    let (code, out, _) = cli(&["activity", "search", "--tenant", "globex"]);
    assert_eq!(code, 0);
    assert!(out.contains("No local interactions found."), "{out}");
    let (code, out, _) = cli(&["activity", "search"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("local interaction(s)") && out.contains("   kind: proposal"),
        "{out}"
    );
}

#[test]
fn store_prune_keeps_proposals_and_reset_needs_yes_and_a_free_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let ledger = dir.path().join(".synapsor/demo/local.db");
    let lease = dir.path().join(".synapsor/demo/local.db.lease.json");
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    let stats = || -> serde_json::Value {
        let (_, out, _) = cli(&["store", "stats", "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["tables"].clone()
    };
    let before = stats();
    // A dry run by default: counts, removes nothing.
    let (code, out, err) = cli(&["store", "prune", "--older-than", "0s"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Local store prune dry run") && out.contains("No rows were deleted."),
        "{out}"
    );
    assert_eq!(stats(), before);
    let (_, out, _) = cli(&["store", "prune", "--older-than", "0s", "--json"]);
    let dry: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(dry["dry_run"], true);
    let reads = dry["deleted"]["evidence_bundles"].as_i64().unwrap();
    assert!(reads >= 1, "the demo's read is prunable: {dry}");
    for (args, msg) in [
        (
            vec!["store", "prune", "--older-than", "0s", "--yes", "--dry-run"],
            "not both",
        ),
        (
            vec!["store", "prune", "--older-than", "5x"],
            "--older-than must be",
        ),
        (
            vec!["store", "prune", "--older-than", "5µ"],
            "--older-than must be",
        ),
        (vec!["store", "prune"], "requires --older-than"),
        (vec!["store", "reset"], "Rerun with --yes"),
    ] {
        let (code, _, err) = cli(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }

    // A live server's lease stops destructive commands unless --force; a stale one is ignored.
    let live = serde_json::json!({"pid": std::process::id(), "mode": "mcp", "transport": "stdio", "started_at": "now"});
    std::fs::write(&lease, live.to_string()).unwrap();
    assert_refused(
        cli(&["store", "prune", "--older-than", "0s", "--yes"]),
        "Refusing store prune",
    );
    assert_refused(cli(&["store", "reset", "--yes"]), "Refusing store reset");
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&lease, serde_json::json!({"pid": dead_pid}).to_string()).unwrap();
    let (code, out, err) = cli(&["store", "prune", "--older-than", "0s", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Local store prune complete"), "{out}");
    assert!(!lease.exists(), "a stale lease is removed");
    let after = stats();
    assert_eq!(after["proposals"], before["proposals"]);
    assert_eq!(after["writeback_receipts"], before["writeback_receipts"]);
    assert_eq!(after["proposal_events"], before["proposal_events"]);
    assert_eq!(
        after["evidence_bundles"].as_i64().unwrap(),
        before["evidence_bundles"].as_i64().unwrap() - reads
    );
    let (code, _, err) = cli(&["replay", "show", "latest"]);
    assert_eq!(code, 0, "proposals keep their evidence: {err}");

    // An MCP server holds the ledger while it runs and lets go when it stops.
    let mut server = bin()
        .args(["mcp", "serve", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !lease.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(lease.exists(), "mcp serve writes its lease");
    assert_refused(
        cli(&["store", "reset", "--yes"]),
        "appears active for mcp/stdio",
    );
    drop(server.stdin.take());
    server.wait().unwrap();
    assert!(!lease.exists(), "the lease goes with the server");

    let (code, out, err) = cli(&["store", "reset", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Local store reset complete") && out.contains("Source database changed: no"),
        "{out}"
    );
    assert!(!ledger.exists());
    assert_refused(
        cli(&["proposals", "list"]),
        "No local Synapsor proposal store was found",
    );
}

#[test]
fn sample_arguments_make_a_first_call_without_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    let (code, out, err) = cli(&[
        "propose",
        "billing.propose_late_fee_waiver",
        "--sample",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let made: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = made["proposal"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{made}"));
    let (_, out, _) = cli(&["proposals", "show", id, "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cs = &shown["proposal"]["change_set"];
    assert_eq!(cs["scope"]["object_id"], "INV-3001", "{cs}");
    assert_eq!(
        cs["patch"]["waiver_reason"], "approved support waiver",
        "{cs}"
    );
    let (code, out, err) = cli(&["inspect", "billing.inspect_invoice", "--sample"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("INV-3001"), "{out}");
    assert_refused(
        cli(&[
            "propose",
            "billing.propose_late_fee_waiver",
            "--sample",
            "--args",
            "{}",
        ]),
        "only one of --sample",
    );
}

#[test]
fn writeback_doctor_names_missing_writers_and_probes_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("synapsor.runner.json");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/examples/mcp-postgres-billing-app-handler/synapsor.runner.json"
        ),
        &config,
    )
    .unwrap();
    let admin = std::env::var("SYNAPSOR_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let doctor = |url: Option<&str>, check: bool| {
        let mut cmd = bin();
        cmd.args(["writeback", "doctor", "--config"]).arg(&config);
        if check {
            cmd.arg("--check-db");
        }
        cmd.env_remove("BILLING_APP_WRITE_URL");
        if let Some(u) = url {
            cmd.env("BILLING_APP_WRITE_URL", u);
        }
        run(&mut cmd)
    };
    let (code, out, _) = doctor(None, true);
    assert_eq!(code, 1, "{out}");
    for line in [
        "Synapsor writeback doctor",
        "Source: billing_postgres",
        "  writer env: BILLING_APP_WRITE_URL",
        "  env status: missing",
    ] {
        assert!(out.contains(line), "{line} in:\n{out}");
    }
    let (code, out, err) = doctor(Some(&admin), true);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("  env status: set") && out.contains("  db check: ok"),
        "{out}"
    );
    let (code, out, _) = doctor(Some("postgres://nobody@127.0.0.1:1/none"), true);
    assert_eq!(code, 1);
    assert!(out.contains("  db check: failed"), "{out}");
    assert!(
        !out.contains("nobody@"),
        "no credentials in the output: {out}"
    );
}

/// A one-thread HTTP server on loopback answering every request with `status`; returns its URL
/// and the requests it saw (head and body).
fn webhook_server(status: u16, n: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://hook:secret@{}/events?sig=abc",
        listener.local_addr().unwrap()
    );
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for stream in listener.incoming().take(n) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            seen.push(format!("{head}\n{}", String::from_utf8(body).unwrap()));
            let reply = if status == 200 { "ok" } else { "nope" };
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            )
            .unwrap();
        }
        seen
    });
    (url, handle)
}

#[test]
fn events_can_be_tailed_followed_and_pushed_to_a_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    let (code, out, err) = cli(&["events", "tail", "--json", "--limit", "200"]);
    assert_eq!(code, 0, "{err}");
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all = all["events"].as_array().unwrap().clone();
    let ids: Vec<i64> = all
        .iter()
        .map(|e| e["event_id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    let (_, out, _) = cli(&["events", "tail", "--kind", "proposal_created", "--json"]);
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        created["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] == "proposal_created")
    );
    let (code, out, _) = cli(&["events", "tail", "--limit", "2"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("  proposal: wrp_") && out.contains("  actor: "),
        "{out}"
    );
    let (_, out, _) = cli(&["events", "tail", "--kind", "nothing_like_this"]);
    assert!(out.contains("No local events found."), "{out}");
    assert_refused(cli(&["events", "tail", "--follow", "--json"]), "--follow");

    // --follow prints new events as they are recorded and ends cleanly on SIGTERM.
    let follower = bin()
        .args([
            "events",
            "tail",
            "--follow",
            "--interval-ms",
            "250",
            "--limit",
            "1",
            "--config",
        ])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it list what is there first; the proposal below is then only seen by following.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let (code, out, err) = cli(&[
        "propose",
        "billing.propose_late_fee_waiver",
        "--sample",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let made: serde_json::Value = serde_json::from_str(&out).unwrap();
    let new_id = made["proposal"]["id"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(900));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(follower.id() as i32, libc::SIGTERM) };
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success(), "ends cleanly: {:?}", out.status);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("proposal_created") && text.contains(&format!("  proposal: {new_id}")),
        "the new events were followed:\n{text}"
    );

    // The webhook gets each event with the bearer; the URL's credentials never reach the output.
    let (url, server) = webhook_server(200, 2);
    let (code, out, err) = run(bin()
        .args([
            "events",
            "webhook",
            "--url-env",
            "T_HOOK_URL",
            "--auth-token-env",
            "T_HOOK_TOKEN",
            "--limit",
            "2",
            "--config",
        ])
        .arg(&config)
        .env("T_HOOK_URL", &url)
        .env("T_HOOK_TOKEN", "tok-123"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("pushed event ").count(), 2, "{out}");
    assert!(!out.contains("secret") && !out.contains("sig=abc"), "{out}");
    let seen = server.join().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer tok-123"),
        "{}",
        seen[0]
    );
    let body: serde_json::Value =
        serde_json::from_str(seen[0].split("\n\n").last().unwrap()).unwrap();
    assert_eq!(body["schema_version"], "synapsor.local-event-webhook.v1");
    assert!(body["event"]["kind"].is_string());
    let (url, server) = webhook_server(500, 1);
    assert_refused(
        run(bin()
            .args([
                "events",
                "webhook",
                "--url-env",
                "T_HOOK_URL",
                "--limit",
                "1",
                "--config",
            ])
            .arg(&config)
            .env("T_HOOK_URL", &url)),
        "webhook returned HTTP 500: nope",
    );
    server.join().unwrap();
    assert_refused(
        cli(&["events", "webhook", "--url", "http://example.invalid/"]),
        "--url-env",
    );
}

#[test]
fn smoke_call_runs_one_tool_through_the_mcp_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    let (code, out, err) = cli(&["smoke", "call", "billing.inspect_invoice"]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "Synapsor smoke call: ok",
        "Tool:",
        "  billing.inspect_invoice",
        "\"invoice_id\": \"INV-3001\"",
        "Source DB changed:",
        "Evidence:\n  ev_",
        "query-audit list --evidence ev_",
    ] {
        assert!(out.contains(line), "{line} in:\n{out}");
    }
    let (code, out, err) = cli(&["smoke", "call", "billing.propose_late_fee_waiver"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Proposal:\n  wrp_") && out.contains("synapsor://replay/replay_wrp_"),
        "{out}"
    );
    let (code, out, err) = cli(&[
        "smoke",
        "call",
        "billing.inspect_invoice",
        "--json",
        r#"{"invoice_id":"INV-3002"}"#,
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["input"]["invoice_id"], "INV-3002");
    assert_eq!(v["result"]["data"]["id"], "INV-3002");
    assert!(v["store_path"].as_str().unwrap().ends_with("local.db"));
    assert_refused(cli(&["smoke", "call"]), "because 2 tools are exposed");
    assert_refused(
        cli(&[
            "smoke",
            "call",
            "billing.inspect_invoice",
            "--sample",
            "--json",
            "{}",
        ]),
        "only one of --sample, --input, or --json",
    );
    assert_refused(
        cli(&["smoke", "call", "billing.inspect_invoice", "--json", "[1]"]),
        "must be a JSON object",
    );
    assert_refused(
        cli(&["smoke", "call", "billing.nothing"]),
        "billing.nothing",
    );
    assert_refused(
        cli(&[
            "smoke",
            "call",
            "billing.inspect_invoice",
            "--json",
            r#"{"invoice_id":"INV-9001"}"#,
        ]),
        "NOT_FOUND_IN_TENANT",
    );
}

#[test]
fn the_quick_demo_seeds_a_fixture_ledger_its_inspect_commands_run_on() {
    let dir = tempfile::tempdir().unwrap();
    let here = |args: &[&str]| run(bin().args(args).current_dir(dir.path()));
    let (code, out, err) = here(&["demo", "--quick"]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "Synapsor quick demo complete.",
        "billing.propose_late_fee_waiver(invoice_id=\"INV-3001\")",
        "* proposal created",
        "* source DB changed: no",
        "* approval required outside MCP",
        "./.synapsor/quick-demo.db",
        "synapsor-runner demo inspect",
    ] {
        assert!(out.contains(line), "{line} in:\n{out}");
    }
    assert!(
        !out.contains("Raw MCP shape") && !out.contains("proposals show latest --store"),
        "{out}"
    );
    let (code, out, _) = here(&["demo", "--quick", "--json"]);
    assert_eq!(code, 0);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["proposal_id"], "wrp_quick_INV_3001");
    assert_eq!(summary["replay_id"], "replay_wrp_quick_INV_3001");
    assert_eq!(
        summary["proposed_change"]["late_fee_cents"],
        serde_json::json!({"before": 5500, "after": 0})
    );
    let (code, out, _) = here(&["demo", "--quick", "--details"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Raw MCP shape:") && out.contains("Proposal id: wrp_quick_INV_3001"),
        "{out}"
    );

    // Every command demo inspect lists (but the full demo and the audit) runs on the fixture.
    let (code, out, err) = here(&["demo", "inspect", "--json"]);
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let commands: Vec<String> = listed["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(commands.len(), 7);
    for command in commands.iter().filter(|c| c.contains("--store")) {
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        let (code, out, err) = here(&args);
        assert_eq!(code, 0, "{command}: {out}{err}");
        if command.contains("activity search") {
            assert!(out.contains("wrp_quick_INV_3001"), "{command}:\n{out}");
        }
    }
    let (code, out, _) = here(&["demo", "inspect", "--npx"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Quick demo inspection")
            && out.contains(
                "npx -y -p @synapsor/runner synapsor-runner evidence show ev_quick_INV_3001"
            ),
        "{out}"
    );
}

#[test]
fn store_check_recomputes_digests_and_finds_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let ledger = dir.path().join(".synapsor/demo/local.db");
    let check = || {
        let (code, out, err) = run(bin()
            .args(["store", "check", "--json", "--config"])
            .arg(&config));
        assert!(code == 0 || code == 1, "{err}");
        (
            code,
            serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        )
    };
    let (code, clean) = check();
    assert_eq!(code, 0, "{clean}");
    assert!(clean["checked"]["proposals"].as_u64().unwrap() >= 1);
    assert_eq!(clean["problems"], serde_json::json!([]));

    let db = rusqlite::Connection::open(&ledger).unwrap();
    let id: String = db
        .query_row(
            "SELECT proposal_id FROM proposals ORDER BY created_at LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // A diff edited after the fact no longer digests to its hash.
    db.execute(
        "UPDATE proposals SET change_set_json = replace(change_set_json, 'INV-', 'INV-X') WHERE proposal_id = ?1",
        [&id],
    )
    .unwrap();
    // An event slipped in with an earlier time than the one before it.
    db.execute(
        "INSERT INTO proposal_events (proposal_id, kind, actor, payload_json, created_at) VALUES (?1, 'note', 'x', '{}', '2000-01-01T00:00:00Z')",
        [&id],
    )
    .unwrap();
    drop(db);
    let (code, found) = check();
    assert_eq!(code, 1, "{found}");
    let codes: Vec<&str> = found["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["proposal_id"] == id.as_str())
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"PROPOSAL_HASH_MISMATCH"), "{found}");
    assert!(codes.contains(&"EVENTS_OUT_OF_ORDER"), "{found}");
    let (code, out, _) = run(bin().args(["store", "check", "--config"]).arg(&config));
    assert_eq!(code, 1);
    assert!(out.contains("PROPOSAL_HASH_MISMATCH"), "{out}");
}

#[test]
fn up_prints_the_review_checklist_and_serves_with_serve() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let (code, out, err) = run(bin().args(["up", "--config"]).arg(&config));
    assert_eq!(code, 0, "{err}");
    for line in [
        "Synapsor Runner review-mode up",
        "Mode: review",
        "Transport: stdio",
        "Serve now: no",
        "Model-facing tools:\n  - billing.inspect_invoice",
        "billing.propose_late_fee_waiver: direct guarded one-row UPDATE",
        "PASS execute_sql absent",
        "stdio mode is launched by an MCP client",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    let (code, out, err) = run(bin().args(["up", "--json", "--config"]).arg(&config));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["transport"], "stdio");
    assert_eq!(v["tools"][0]["name"], "billing.inspect_invoice");
    assert_eq!(v["writeback_paths"][0]["path"], "sql_update");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true)
    );
    let (code, _, err) = run(bin()
        .args(["up", "--serve", "--transport", "stdio", "--config"])
        .arg(&config));
    assert_ne!(code, 0);
    assert!(
        err.contains("up --serve starts the Streamable HTTP MCP server"),
        "{err}"
    );

    // --serve: the checklist, then the server on the port it picked.
    use std::io::{BufRead, Read, Write};
    let mut child = bin()
        .args(["up", "--serve", "--dev-no-auth", "--port", "0", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("listening on http://")
                .nth(1)
                .map(|rest| rest.trim_end_matches("/mcp").to_string())
        })
        .expect("the server says where it listens");
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"tools\":2"), "{resp}");
    assert!(
        stdout.contains("Status: starting after this checklist."),
        "{stdout}"
    );
}

#[test]
fn replay_show_takes_a_proposal_a_replay_id_or_an_evidence_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo(dir.path());
    let cli = |args: &[&str]| run(bin().args(args).arg("--config").arg(&config));
    let (code, out, err) = cli(&["proposals", "show", "latest", "--json"]);
    assert_eq!(code, 0, "{err}");
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = p["proposal"]["proposal_id"].as_str().unwrap().to_string();
    let ev = p["proposal"]["change_set"]["evidence"]["bundle_id"]
        .as_str()
        .unwrap()
        .to_string();
    let show = |args: &[&str]| {
        let mut all = vec!["replay", "show", "--json"];
        all.extend_from_slice(args);
        let (code, out, err) = cli(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["proposal"]["proposal_id"].clone()
    };
    let replay_id = format!("replay_{id}");
    for args in [
        vec![id.as_str()],
        vec!["--proposal", id.as_str()],
        vec!["--replay", replay_id.as_str()],
        vec![replay_id.as_str()],
        vec!["--evidence", ev.as_str()],
    ] {
        assert_eq!(show(&args), serde_json::json!(id), "{args:?}");
    }
    let (code, _, err) = cli(&["replay", "show", "--evidence", "ev_nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("not linked to a replayable proposal"), "{err}");
    let (code, _, err) = cli(&["replay", "show", ev.as_str()]);
    assert_ne!(code, 0);
    assert!(err.contains("Use --evidence"), "{err}");
}
