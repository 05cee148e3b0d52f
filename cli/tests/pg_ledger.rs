//! A shared PostgreSQL ledger used by separate runner processes: the demo's SQLite ledger is
//! copied in with `store migrate`, then every command works on it, concurrent `propose` and
//! `apply` processes leave one active proposal and one write, and a process killed mid-apply is
//! settled by `reconcile` from another.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[path = "support/cli.rs"]
mod cli_support;
use cli_support::{bin, run};

const URL_ENV: &str = "SYNAPSOR_LEDGER_URL";

fn admin_url() -> String {
    std::env::var("SYNAPSOR_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn psql(db: &str, sql: &str) -> String {
    let url = format!("{}/{db}", admin_url().rsplit_once('/').unwrap().0);
    let out = Command::new("psql")
        .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A PostgreSQL database of this test's own, dropped at the end.
struct Db(String);

impl Db {
    fn new() -> Db {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("pgledger_{}_{nanos}", std::process::id());
        psql("postgres", &format!("CREATE DATABASE {name}"));
        Db(name)
    }
    fn url(&self) -> String {
        format!("{}/{}", admin_url().rsplit_once('/').unwrap().0, self.0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                admin_url().as_str(),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0),
            ])
            .output();
    }
}

/// The demo, its SQLite ledger copied into PostgreSQL, its config pointed there.
struct Setup {
    dir: tempfile::TempDir,
    db: Db,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (code, out, err) = run(bin().arg("demo").current_dir(dir.path()));
        assert_eq!(code, 0, "{out}\n{err}");
        let config = dir.path().join(".synapsor/demo/synapsor.runner.json");
        let s = Setup {
            dir,
            db: Db::new(),
            config,
        };
        let sqlite = s.config.parent().unwrap().join("local.db");
        let sqlite = if sqlite.exists() {
            sqlite
        } else {
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(&s.config).unwrap()).unwrap();
            s.config
                .parent()
                .unwrap()
                .join(v["storage"]["sqlite_path"].as_str().unwrap())
        };
        let (code, out, err) = run(s
            .cmd(&["store", "migrate", "--to-url-env", URL_ENV, "--json"])
            .arg("--from")
            .arg(&sqlite));
        assert_eq!(code, 0, "{out}\n{err}");
        let copied: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(copied["already_migrated"], json!(false), "{copied}");
        assert_eq!(copied["check"]["problems"], json!([]), "{copied}");
        assert!(copied["proposals"].as_u64().unwrap() >= 1, "{copied}");
        // Again: nothing to do.
        let (code, out, _) = run(s
            .cmd(&["store", "migrate", "--to-url-env", URL_ENV, "--json"])
            .arg("--from")
            .arg(&sqlite));
        assert_eq!(code, 0);
        assert!(out.contains("\"already_migrated\": true"), "{out}");
        // From now on the config names the PostgreSQL ledger; the SQLite file is gone, so
        // nothing below can be reading it.
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(&s.config).unwrap()).unwrap();
        v["storage"] = json!({"engine": "postgres", "url_env": URL_ENV});
        std::fs::write(&s.config, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        std::fs::remove_file(&sqlite).unwrap();
        s
    }

    /// The CLI with this setup's config and the ledger URL in its environment, run from a
    /// folder of its own (as another instance would be).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = bin();
        c.args(args)
            .arg("--config")
            .arg(&self.config)
            .env(URL_ENV, self.db.url())
            .env("SYNAPSOR_OPERATOR_ROLES", "billing_lead")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    fn json(&self, args: &[&str]) -> Value {
        let (code, out, err) = run(&mut self.cmd(args));
        assert_eq!(code, 0, "{args:?}: {out}\n{err}");
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("{args:?}: not JSON: {out}"))
    }

    fn late_fee(&self, invoice: &str) -> i64 {
        let source = self.config.parent().unwrap().join("billing.sqlite");
        let conn = rusqlite::Connection::open(source).unwrap();
        conn.query_row(
            "SELECT late_fee_cents FROM invoices WHERE id = ?1",
            [invoice],
            |r| r.get(0),
        )
        .unwrap()
    }
}

/// Start `n` copies of a command at once and wait for all of them.
fn all_at_once(n: usize, make: impl Fn() -> Command) -> Vec<(i32, String, String)> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            make()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .collect()
}

/// The ledger's line of `doctor --json`.
fn ledger_check(doctor: &Value) -> Value {
    doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with("ledger:"))
        .cloned()
        .unwrap()
}

#[test]
fn separate_processes_share_one_postgres_ledger() {
    let s = Setup::new();
    let doctor = s.json(&["doctor", "--json"]);
    let ledger_check = ledger_check(&doctor);
    assert_eq!(ledger_check["status"], json!("pass"), "{doctor}");
    let listed = s.json(&["proposals", "list", "--json"]);
    let before = listed["proposals"].as_array().unwrap().len();
    assert!(before >= 1, "the demo's proposals were copied: {listed}");
    assert_eq!(s.json(&["store", "check", "--json"])["problems"], json!([]));

    // (c) Eight processes propose the same change to one object: one active proposal.
    let invoice = "INV-3002";
    let fee = s.late_fee(invoice);
    let outs = all_at_once(8, || {
        s.cmd(&[
            "propose",
            "billing.propose_late_fee_waiver",
            "--json",
            &json!({"invoice_id": invoice, "reason": "goodwill"}).to_string(),
        ])
    });
    let mut ids: Vec<String> = outs
        .iter()
        .map(|(code, out, err)| {
            assert_eq!(*code, 0, "{out}\n{err}");
            let v: Value = serde_json::from_str(out).unwrap();
            v["proposal"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{v}"))
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids.remove(0);
    let listed = s.json(&["proposals", "list", "--json"]);
    assert_eq!(listed["proposals"].as_array().unwrap().len(), before + 1);

    // Made through one process, approved through another, applied through many at once (b).
    let (code, out, err) = run(&mut s.cmd(&["proposals", "approve", &id, "--yes", "--as", "lead"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let outs = all_at_once(16, || s.cmd(&["apply", &id, "--json"]));
    let mut applied = 0;
    for (code, out, err) in &outs {
        if out.contains("\"status\": \"applied\"") {
            applied += 1;
        } else {
            // Another process's apply was running or had finished: nothing written here.
            assert!(
                out.contains("already_applied")
                    || err.contains("PROPOSAL_NOT_APPROVED")
                    || err.contains("in progress")
                    || err.contains("IN_PROGRESS")
                    || *code != 0,
                "{out}\n{err}"
            );
        }
    }
    assert_eq!(applied, 1, "{outs:?}");
    assert_eq!(s.late_fee(invoice), 0);
    assert_ne!(fee, 0);
    let receipts = s.json(&["receipts", "list", "--proposal", &id, "--json"]);
    let receipts = receipts["receipts"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        receipts
            .iter()
            .filter(|r| r["status"] == json!("applied"))
            .count(),
        1,
        "{receipts:?}"
    );
    let shown = s.json(&["proposals", "show", &id, "--json"]);
    assert_eq!(shown["proposal"]["state"], json!("applied"), "{shown}");
    assert_eq!(s.json(&["store", "check", "--json"])["problems"], json!([]));
    let stats = s.json(&["store", "stats", "--json"]);
    assert_eq!(stats["backend"], json!("postgres"), "{stats}");

    // MCP client snippets start the server on this same ledger: no --store (which would mean a
    // SQLite file), the ledger's URL variable among those the client must set.
    let snippet = s.json(&["mcp", "configure", "generic-stdio"]);
    let args = snippet["args"].to_string();
    assert!(!args.contains("--store"), "{snippet}");
    assert!(snippet["env"].get(URL_ENV).is_some(), "{snippet}");
    // The commands' hints name no ledger file either.
    let (code, out, err) = run(&mut s.cmd(&["proposals", "show", &id]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("synapsor-runner replay show") && !out.contains("--store"),
        "{out}"
    );
    let (code, out, err) = run(&mut s.cmd(&["up"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !out.contains("--store") && out.contains(&format!("postgres:${URL_ENV}/synapsor")),
        "{out}"
    );
}

#[test]
fn a_process_killed_mid_apply_is_reconciled_by_another() {
    let s = Setup::new();
    let invoice = "INV-3002";
    let p = s.json(&[
        "propose",
        "billing.propose_late_fee_waiver",
        "--json",
        &json!({"invoice_id": invoice, "reason": "goodwill"}).to_string(),
    ]);
    let id = p["proposal"]["id"].as_str().unwrap().to_string();
    let (code, out, err) = run(&mut s.cmd(&["proposals", "approve", &id, "--yes", "--as", "lead"]));
    assert_eq!(code, 0, "{out}\n{err}");
    // Hold the source's write lock so the apply stops after recording its job.
    let source = s.config.parent().unwrap().join("billing.sqlite");
    let lock = rusqlite::Connection::open(&source).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut apply = s
        .cmd(&["apply", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pending = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        psql(
            &s.db.0,
            &format!("SELECT state FROM synapsor.proposals WHERE proposal_id = '{id}'"),
        ) == "pending_worker"
    });
    assert!(pending, "the apply recorded its job");
    apply.kill().unwrap();
    apply.wait().unwrap();
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    let fee = s.late_fee(invoice);
    assert_ne!(fee, 0, "nothing was written");

    let settled = s.json(&["reconcile", "--force", "--json"]);
    let text = settled.to_string();
    assert!(text.contains("released") && text.contains(&id), "{text}");
    let (code, out, err) = run(&mut s.cmd(&["apply", &id]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(s.late_fee(invoice), 0);
    assert_eq!(s.json(&["store", "check", "--json"])["problems"], json!([]));
}

#[test]
fn a_bad_ledger_url_is_named_without_the_url_and_reset_drops_the_schema() {
    let s = Setup::new();
    let (code, _, err) = run(s
        .cmd(&["proposals", "list"])
        .env(URL_ENV, "postgres://u:hunter2@127.0.0.1:1/nowhere"));
    assert_ne!(code, 0);
    assert!(err.contains(URL_ENV) && !err.contains("hunter2"), "{err}");
    let (code, _, err) = run(s.cmd(&["proposals", "list"]).env_remove(URL_ENV));
    assert_ne!(code, 0);
    assert!(
        err.contains("LEDGER_URL_MISSING") || err.contains("is not set"),
        "{err}"
    );

    let (code, _, err) = run(&mut s.cmd(&["store", "reset"]));
    assert_ne!(code, 0, "reset needs --yes");
    assert!(err.contains("--yes"), "{err}");
    let (code, out, err) = run(&mut s.cmd(&["store", "reset", "--yes"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        psql(
            &s.db.0,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'synapsor'"
        ),
        "0"
    );
}

/// `store grants` prints a layout that works: the owner creates the ledger, the runner's role
/// uses it with what doctor asks for, and cannot rewrite its history.
#[test]
fn the_printed_grants_are_enough_and_no_more() {
    let s = Setup::new();
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let (owner, role) = (format!("lo_{n}"), format!("lr_{n}"));
    let (code, sql, err) = run(&mut s.cmd(&[
        "store", "grants", "--schema", "granted", "--owner", &owner, "--role", &role,
    ]));
    assert_eq!(code, 0, "{err}");
    let (before, after) = sql.split_once("-- 2.").unwrap();
    let after = format!("-- 2.{after}");
    let drop_roles = |owner: &str, role: &str, db: &str| {
        let _ = Command::new("psql")
            .args([admin_url().as_str(), "-qc", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE); DROP ROLE IF EXISTS {role}; DROP ROLE IF EXISTS {owner}")])
            .output();
    };
    psql(&s.db.0, before);
    let as_user = |user: &str| {
        format!(
            "postgres://{user}@{}",
            s.db.url().split_once('@').unwrap().1
        )
    };
    // The first start, as the owner, creates the tables.
    let config_schema = |schema: &str| {
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(&s.config).unwrap()).unwrap();
        v["storage"]["schema"] = json!(schema);
        std::fs::write(&s.config, v.to_string()).unwrap();
    };
    config_schema("granted");
    let (code, out, err) = run(s
        .cmd(&["store", "stats", "--json"])
        .env(URL_ENV, as_user(&owner)));
    assert_eq!(code, 0, "{out}\n{err}");
    psql(&s.db.0, &after);
    let doctor: Value = {
        let (_, out, _) = run(s.cmd(&["doctor", "--json"]).env(URL_ENV, as_user(&role)));
        serde_json::from_str(&out).unwrap()
    };
    let check = ledger_check(&doctor);
    assert_eq!(check["status"], json!("pass"), "{doctor}");
    // The runner's role works the whole lifecycle.
    let (code, out, err) = run(s
        .cmd(&[
            "propose",
            "billing.propose_late_fee_waiver",
            "--json",
            &json!({"invoice_id": "INV-3002", "reason": "grants"}).to_string(),
        ])
        .env(URL_ENV, as_user(&role)));
    assert_eq!(code, 0, "{out}\n{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["proposal"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = run(s
        .cmd(&["proposals", "approve", &id, "--yes", "--as", "lead"])
        .env(URL_ENV, as_user(&role)));
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = run(s.cmd(&["apply", &id]).env(URL_ENV, as_user(&role)));
    assert_eq!(code, 0, "{out}\n{err}");
    // And cannot rewrite history, with or without the trigger.
    let out = Command::new("psql")
        .args([
            format!("{}/{}", as_user(&role).rsplit_once('/').unwrap().0, s.db.0).as_str(),
            "-qc",
            "DELETE FROM granted.approvals",
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the runner's role may not delete approvals"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    drop_roles(&owner, &role, &s.db.0);
}
