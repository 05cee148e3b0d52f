//! What an approved write may and may not do, on PostgreSQL, MariaDB and SQLite alike: the
//! version guard advances on every write, what was checked at propose is checked again on the
//! locked row, omitted arguments never write NULL, and numbers are written exactly as approved.
//! Each test builds its own database with one small `accounts` table.

mod common;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use synapsor_runner::config::load_config_str;
use synapsor_runner::{ApplyOptions, Approver, Error, Ledger, Runner, TrustedContext};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Engine {
    Postgres,
    Mariadb,
    Sqlite,
}

const ENGINES: [Engine; 3] = [Engine::Postgres, Engine::Mariadb, Engine::Sqlite];

static COUNTER: AtomicU32 = AtomicU32::new(0);

use common::mariadb;

/// One throwaway database with an `accounts` table and a runner over it.
struct Db {
    engine: Engine,
    name: String,
    dir: tempfile::TempDir,
}

impl Db {
    fn new(engine: Engine) -> Db {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "synw_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let db = Db {
            engine,
            name,
            dir: tempfile::tempdir().unwrap(),
        };
        let (ts, int, big, numeric, double, text) = match engine {
            Engine::Postgres => (
                "timestamptz",
                "integer",
                "bigint",
                "numeric(12,2)",
                "double precision",
                "text",
            ),
            Engine::Mariadb => (
                "datetime(6)",
                "int",
                "bigint",
                "decimal(12,2)",
                "double",
                "varchar(200)",
            ),
            Engine::Sqlite => (
                "TEXT",
                "INTEGER",
                "INTEGER",
                "NUMERIC(12,2)",
                "REAL",
                "TEXT",
            ),
        };
        let ddl = format!(
            "CREATE TABLE accounts (id varchar(40) PRIMARY KEY, tenant_id varchar(40) NOT NULL, \
             balance_cents {int} NOT NULL, credit {numeric}, ratio {double}, big {big}, \
             status {text} NOT NULL, note {text}, version {int} NOT NULL DEFAULT 1, \
             updated_at {ts} NOT NULL)"
        );
        let stamp = match engine {
            Engine::Sqlite => "'2026-01-01T10:00:00.000Z'",
            _ => "'2026-01-01 10:00:00'",
        };
        let seed = format!(
            "INSERT INTO accounts VALUES ('A-1', 'acme', 2500, 10.50, 0.5, 7, 'open', 'hello', 1, {stamp}), \
             ('B-1', 'globex', 100, 1.00, 0.1, 1, 'open', NULL, 1, {stamp})"
        );
        match engine {
            Engine::Postgres => {
                common::psql("postgres", &format!("CREATE DATABASE {}", db.name));
                common::psql(&db.name, &ddl);
                common::psql(&db.name, &seed);
            }
            Engine::Mariadb => {
                mariadb(None, &format!("CREATE DATABASE {}", db.name));
                mariadb(Some(&db.name), &ddl);
                mariadb(Some(&db.name), &seed);
            }
            Engine::Sqlite => {
                let c = rusqlite::Connection::open(db.dir.path().join("app.db")).unwrap();
                c.execute_batch(&format!("{ddl}; {seed};")).unwrap();
            }
        }
        db
    }

    fn sql(&self, sql: &str) -> String {
        match self.engine {
            Engine::Postgres => common::psql(&self.name, sql),
            Engine::Mariadb => mariadb(Some(&self.name), sql),
            Engine::Sqlite => {
                let c = rusqlite::Connection::open(self.dir.path().join("app.db")).unwrap();
                let mut stmt = c.prepare(sql).unwrap();
                let n = stmt.column_count();
                let rows: Vec<String> = stmt
                    .query_map([], |r| {
                        let cells: Vec<String> = (0..n)
                            .map(|i| match r.get_ref(i).unwrap() {
                                rusqlite::types::ValueRef::Null => String::new(),
                                rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                                rusqlite::types::ValueRef::Real(f) => f.to_string(),
                                rusqlite::types::ValueRef::Text(t) => {
                                    String::from_utf8_lossy(t).into_owned()
                                }
                                rusqlite::types::ValueRef::Blob(_) => "<blob>".into(),
                            })
                            .collect();
                        Ok(cells.join("|"))
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                rows.join("\n")
            }
        }
    }

    /// A column of account `id` as text.
    fn cell(&self, id: &str, column: &str) -> String {
        let expr = match (self.engine, column) {
            (Engine::Postgres, "updated_at") => {
                "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')".to_string()
            }
            (Engine::Postgres, c) => format!("{c}::text"),
            (Engine::Mariadb, c) => format!("COALESCE(CAST({c} AS CHAR), '')"),
            (Engine::Sqlite, c) => c.to_string(),
        };
        self.sql(&format!("SELECT {expr} FROM accounts WHERE id = '{id}'"))
    }

    fn source(&self) -> Value {
        let env = self.name.to_uppercase();
        match self.engine {
            Engine::Postgres => {
                json!({"engine": "postgres", "read_url_env": env, "write_url_env": env})
            }
            Engine::Mariadb => {
                json!({"engine": "mysql", "read_url_env": env, "write_url_env": env})
            }
            Engine::Sqlite => json!({"engine": "sqlite", "path": "app.db"}),
        }
    }

    /// The connection URL the config's variable names, handed to the runner directly.
    fn env(&self) -> HashMap<String, String> {
        let url = match self.engine {
            Engine::Postgres => format!("postgres://postgres@127.0.0.1:5432/{}", self.name),
            Engine::Mariadb => format!("mysql://root@127.0.0.1:3306/{}", self.name),
            Engine::Sqlite => return HashMap::new(),
        };
        HashMap::from([(self.name.to_uppercase(), url)])
    }

    fn schema(&self) -> &str {
        match self.engine {
            Engine::Postgres => "public",
            Engine::Mariadb => &self.name,
            Engine::Sqlite => "main",
        }
    }

    /// The config: one read, and proposals guarded by `updated_at` (timestamp) and by
    /// `version` (integer).
    fn config(&self) -> Value {
        let target = json!({"schema": self.schema(), "table": "accounts", "primary_key": "id", "tenant_key": "tenant_id"});
        let visible = json!([
            "id",
            "balance_cents",
            "credit",
            "ratio",
            "big",
            "status",
            "note"
        ]);
        json!({
            "version": 1,
            "mode": "review",
            "sources": {"app": self.source()},
            "trusted_context": {"provider": "host"},
            "capabilities": [
                {
                    "name": "acct.inspect", "kind": "read", "source": "app", "target": target,
                    "args": {"account_id": {"type": "string"}},
                    "lookup": {"id_from_arg": "account_id"}, "visible_columns": visible
                },
                {
                    "name": "acct.set_balance", "kind": "proposal", "source": "app", "target": target,
                    "args": {"account_id": {"type": "string"}, "balance_cents": {"type": "number"}},
                    "lookup": {"id_from_arg": "account_id"}, "visible_columns": visible,
                    "patch": {"balance_cents": {"from_arg": "balance_cents"}},
                    "allowed_columns": ["balance_cents"],
                    "numeric_bounds": {"balance_cents": {"minimum": 0, "maximum": 100000}},
                    "conflict_guard": {"column": "updated_at"}
                },
                {
                    "name": "acct.edit", "kind": "proposal", "source": "app", "target": target,
                    "args": {
                        "account_id": {"type": "string"},
                        "status": {"type": "string", "required": false},
                        "note": {"type": "string", "required": false, "nullable": true},
                        "credit": {"type": "number", "required": false},
                        "ratio": {"type": "number", "required": false},
                        "big": {"type": "integer", "required": false}
                    },
                    "lookup": {"id_from_arg": "account_id"}, "visible_columns": visible,
                    "patch": {
                        "status": {"from_arg": "status"}, "note": {"from_arg": "note"},
                        "credit": {"from_arg": "credit"}, "ratio": {"from_arg": "ratio"},
                        "big": {"from_arg": "big"}
                    },
                    "allowed_columns": ["status", "note", "credit", "ratio", "big"],
                    "transition_guards": {"status": {"allowed": {"open": ["closed", "frozen"], "frozen": ["open"]}}},
                    "conflict_guard": {"column": "version"}
                }
            ]
        })
    }

    fn runner_with(&self, cfg: &Value) -> Runner {
        self.runner_with_env(cfg, &self.env())
    }

    fn runner_with_env(&self, cfg: &Value, env: &HashMap<String, String>) -> Runner {
        let path = self.dir.path().join("synapsor.runner.json");
        let text = serde_json::to_string_pretty(cfg).unwrap();
        std::fs::write(&path, &text).unwrap();
        let loaded = load_config_str(&text, &path).expect("config loads");
        let ledger = Ledger::open(&self.dir.path().join("local.db")).unwrap();
        Runner::with_parts_and_env(loaded, ledger, env).unwrap()
    }

    fn runner(&self) -> Runner {
        self.runner_with(&self.config())
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        match self.engine {
            Engine::Postgres => common::drop_pg_database(&self.name),
            Engine::Mariadb => common::drop_mariadb_database(&self.name),
            Engine::Sqlite => {}
        }
    }
}

fn ctx() -> TrustedContext {
    TrustedContext::new("acme", "agent_1")
}

async fn propose(r: &Runner, name: &str, args: Value) -> Result<String, Error> {
    r.propose(name, args, &ctx()).await.map(|p| p.proposal_id)
}

async fn approve_and_apply(r: &Runner, id: &str) -> synapsor_runner::ApplyOutcome {
    r.approve(id, &Approver::new("lead")).await.unwrap();
    r.apply(id, &ApplyOptions::default()).await.unwrap()
}

#[tokio::test]
async fn every_write_advances_the_version_column() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let r = db.runner();
        let before = db.cell("A-1", "updated_at");
        let id = propose(
            &r,
            "acct.set_balance",
            json!({"account_id": "A-1", "balance_cents": 2000}),
        )
        .await
        .unwrap();
        assert_eq!(approve_and_apply(&r, &id).await.receipt.status, "applied");
        let after = db.cell("A-1", "updated_at");
        assert!(
            after > before,
            "{engine:?}: updated_at moved forward: {before} -> {after}"
        );
        let id = propose(&r, "acct.edit", json!({"account_id": "A-1", "note": "x"}))
            .await
            .unwrap();
        assert_eq!(approve_and_apply(&r, &id).await.receipt.status, "applied");
        assert_eq!(
            db.cell("A-1", "version"),
            "2",
            "{engine:?}: integer version +1"
        );
        // A timestamp already ahead of the clock still moves strictly forward.
        let future = match engine {
            Engine::Sqlite => "'2099-01-01T00:00:00.000Z'",
            _ => "'2099-01-01 00:00:00'",
        };
        db.sql(&format!(
            "UPDATE accounts SET updated_at = {future} WHERE id = 'A-1'"
        ));
        let before = db.cell("A-1", "updated_at");
        let id = propose(
            &r,
            "acct.set_balance",
            json!({"account_id": "A-1", "balance_cents": 10}),
        )
        .await
        .unwrap();
        assert_eq!(approve_and_apply(&r, &id).await.receipt.status, "applied");
        let after = db.cell("A-1", "updated_at");
        assert!(after > before, "{engine:?}: {before} -> {after}");
    }
}

/// Two runners with their own ledgers (two replicas before the shared ledger) each approve a
/// change made against the same row: the first applies, the second is a conflict, for both
/// guard kinds.
#[tokio::test]
async fn two_approved_proposals_made_against_one_row_never_both_apply() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let r = db.runner();
        let other_dir = tempfile::tempdir().unwrap();
        let path = db.dir.path().join("synapsor.runner.json");
        let loaded = load_config_str(&db.config().to_string(), &path).unwrap();
        let r2 = Runner::with_parts_and_env(
            loaded,
            Ledger::open(&other_dir.path().join("l.db")).unwrap(),
            &db.env(),
        )
        .unwrap();
        for (cap, first, second, column, kept) in [
            (
                "acct.edit",
                json!({"status": "closed"}),
                json!({"status": "frozen"}),
                "status",
                "closed",
            ),
            (
                "acct.set_balance",
                json!({"balance_cents": 2000}),
                json!({"balance_cents": 0}),
                "balance_cents",
                "2000",
            ),
        ] {
            let with_id = |mut v: Value| {
                v["account_id"] = json!("A-1");
                v
            };
            let a = propose(&r, cap, with_id(first)).await.unwrap();
            let b = r2
                .propose(cap, with_id(second), &ctx())
                .await
                .unwrap()
                .proposal_id;
            assert_eq!(approve_and_apply(&r, &a).await.receipt.status, "applied");
            let out = approve_and_apply(&r2, &b).await;
            assert_eq!(
                out.receipt.status, "conflict",
                "{engine:?} {cap}: stale approval refused"
            );
            assert_eq!(db.cell("A-1", column), kept, "{engine:?} {cap}");
        }
    }
}

#[tokio::test]
async fn a_transition_no_longer_allowed_on_the_locked_row_is_a_conflict() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let r = db.runner();
        let id = propose(
            &r,
            "acct.edit",
            json!({"account_id": "A-1", "status": "frozen"}),
        )
        .await
        .unwrap();
        r.approve(&id, &Approver::new("lead")).await.unwrap();
        // Someone closes the account without touching the version column: the version guard
        // holds, the transition no longer does.
        db.sql("UPDATE accounts SET status = 'closed' WHERE id = 'A-1'");
        let out = r.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(out.receipt.status, "conflict", "{engine:?}");
        assert_eq!(
            out.receipt.safe_error_code.as_deref(),
            Some("TRANSITION_NO_LONGER_ALLOWED"),
            "{engine:?}"
        );
        assert_eq!(db.cell("A-1", "status"), "closed", "{engine:?}: untouched");
        assert_eq!(db.cell("A-1", "version"), "1", "{engine:?}: untouched");
    }
}

#[tokio::test]
async fn an_omitted_optional_argument_is_not_part_of_the_change() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let r = db.runner();
        let p = r
            .propose(
                "acct.edit",
                json!({"account_id": "A-1", "status": "frozen"}),
                &ctx(),
            )
            .await
            .unwrap();
        assert_eq!(
            p.diff.keys().collect::<Vec<_>>(),
            vec!["status"],
            "{engine:?}: only the given argument is in the diff"
        );
        approve_and_apply(&r, &p.proposal_id).await;
        assert_eq!(db.cell("A-1", "note"), "hello", "{engine:?}: note kept");
        assert_eq!(db.cell("A-1", "credit"), db.cell("A-1", "credit"));
        assert!(
            !db.cell("A-1", "credit").is_empty(),
            "{engine:?}: credit kept"
        );
        // An explicit null on a non-nullable optional arg means the same as leaving it out...
        let p = r
            .propose(
                "acct.edit",
                json!({"account_id": "A-1", "status": "open", "credit": null}),
                &ctx(),
            )
            .await
            .unwrap();
        assert!(!p.diff.contains_key("credit"), "{engine:?}");
        approve_and_apply(&r, &p.proposal_id).await;
        // ...and on a nullable one it writes NULL.
        let p = r
            .propose(
                "acct.edit",
                json!({"account_id": "A-1", "note": null}),
                &ctx(),
            )
            .await
            .unwrap();
        assert_eq!(p.diff["note"]["proposed"], Value::Null);
        approve_and_apply(&r, &p.proposal_id).await;
        assert_eq!(
            db.cell("A-1", "note"),
            "",
            "{engine:?}: NULL written on request"
        );
        // Nothing to change at all is refused with its own code.
        let err = propose(&r, "acct.edit", json!({"account_id": "A-1"}))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "PATCH_EMPTY", "{engine:?}");
    }
}

#[tokio::test]
async fn numbers_are_written_exactly_as_approved_or_refused_at_propose() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let r = db.runner();
        // A fraction for an integer column is refused, naming the argument, never the value.
        let err = propose(
            &r,
            "acct.set_balance",
            json!({"account_id": "A-1", "balance_cents": 2.5}),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "ARGUMENT_TYPE_INVALID", "{engine:?}");
        assert_eq!(err.safe_code(), "INVALID_ARGUMENT");
        assert!(err.to_string().contains("balance_cents"), "{err}");
        assert_eq!(err.field(), Some("balance_cents"));
        assert!(!err.to_string().contains("2.5"), "{err}");
        // The integer arg type refuses fractions before any read; the rest is checked against
        // the column: bigint's range, numeric(12,2)'s scale and precision.
        for (args, why) in [
            (json!({"big": 2.0}), "integer arg"),
            (json!({"big": u64::MAX}), "bigint range"),
            (json!({"credit": 1.005}), "numeric scale"),
            (json!({"credit": 12345678901.5}), "numeric precision"),
        ] {
            let mut args = args;
            args["account_id"] = json!("A-1");
            let err = propose(&r, "acct.edit", args).await.unwrap_err();
            assert_eq!(err.code(), "ARGUMENT_TYPE_INVALID", "{engine:?}: {why}");
        }
        // Exact values go through unchanged: integer, bigint, numeric(12,2) and double.
        let p = propose(
            &r,
            "acct.edit",
            json!({"account_id": "A-1", "credit": 9999999999.99, "big": 9007199254740993i64, "ratio": 0.1}),
        )
        .await
        .unwrap();
        approve_and_apply(&r, &p).await;
        let credit = db.cell("A-1", "credit");
        if engine == Engine::Sqlite {
            // SQLite keeps NUMERIC as a REAL: the closest double, not exact decimal text.
            assert!(credit.starts_with("9999999999.99"), "{credit}");
        } else {
            assert_eq!(credit, "9999999999.99", "{engine:?}");
        }
        assert_eq!(
            db.cell("A-1", "big"),
            "9007199254740993",
            "{engine:?}: no float"
        );
        assert!(db.cell("A-1", "ratio").starts_with("0.1"), "{engine:?}");
        let p = propose(
            &r,
            "acct.set_balance",
            json!({"account_id": "A-1", "balance_cents": 2000}),
        )
        .await
        .unwrap();
        approve_and_apply(&r, &p).await;
        assert_eq!(db.cell("A-1", "balance_cents"), "2000", "{engine:?}");
    }
}

#[tokio::test]
async fn a_guard_the_runner_cannot_advance_is_refused_at_load_or_before_writing() {
    let db = Db::new(Engine::Sqlite);
    // At load: a name that says nothing about how it moves needs an explicit rule.
    let mut cfg = db.config();
    cfg["capabilities"][1]["conflict_guard"] = json!({"column": "note"});
    let text = serde_json::to_string(&cfg).unwrap();
    let err = load_config_str(&text, &db.dir.path().join("c.json")).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("CONFLICT_GUARD_ADVANCE_UNKNOWN"), "{shown}");
    assert!(
        shown.contains("capabilities[1].conflict_guard.advance"),
        "{shown}"
    );
    // At apply: `increment` on a text column is refused with the row untouched.
    for engine in [Engine::Postgres, Engine::Sqlite, Engine::Mariadb] {
        let db = Db::new(engine);
        let mut cfg = db.config();
        cfg["capabilities"][1]["conflict_guard"] =
            json!({"column": "note", "advance": "increment"});
        let r = db.runner_with(&cfg);
        let id = propose(
            &r,
            "acct.set_balance",
            json!({"account_id": "A-1", "balance_cents": 7}),
        )
        .await
        .unwrap();
        let out = approve_and_apply(&r, &id).await;
        assert_eq!(out.receipt.status, "failed", "{engine:?}");
        assert_eq!(
            out.receipt.safe_error_code.as_deref(),
            Some("CONFLICT_GUARD_NOT_ADVANCEABLE")
        );
        assert_eq!(db.cell("A-1", "balance_cents"), "2500", "{engine:?}");
    }
}

#[tokio::test]
async fn an_application_advanced_guard_that_did_not_move_rolls_the_write_back() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let mut cfg = db.config();
        cfg["capabilities"][2]["conflict_guard"] =
            json!({"column": "version", "advance": "application"});
        let r = db.runner_with(&cfg);
        let id = propose(
            &r,
            "acct.edit",
            json!({"account_id": "A-1", "status": "closed"}),
        )
        .await
        .unwrap();
        let out = approve_and_apply(&r, &id).await;
        assert_eq!(out.receipt.status, "failed", "{engine:?}");
        assert_eq!(
            out.receipt.safe_error_code.as_deref(),
            Some("CONFLICT_GUARD_NOT_ADVANCED"),
            "{engine:?}"
        );
        assert_eq!(db.cell("A-1", "status"), "open", "{engine:?}: rolled back");
    }
}

#[tokio::test]
async fn spellings_of_trust_names_are_refused_as_such() {
    let db = Db::new(Engine::Sqlite);
    let r = db.runner();
    for name in [
        "TENANT_ID",
        "tenantID",
        "tenant-id",
        "Principal",
        "ｔｅｎａｎｔ＿ｉｄ",
        "Tenant Id",
    ] {
        let err = r
            .inspect(
                "acct.inspect",
                json!({"account_id": "A-1", name: "globex"}),
                &ctx(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "MODEL_CANNOT_OVERRIDE_BINDING", "{name}");
    }
    let mut cfg = db.config();
    cfg["capabilities"][0]["args"]["ＰＲＩＮＣＩＰＡＬ"] =
        json!({"type": "string", "required": false});
    let err = load_config_str(&cfg.to_string(), &db.dir.path().join("c.json")).unwrap_err();
    assert!(
        err.to_string().contains("MODEL_CONTROLLED_RESERVED_ARG"),
        "{err}"
    );
    // NUL bytes in a string argument are an argument error, not an internal one.
    let err = r
        .inspect("acct.inspect", json!({"account_id": "A-\u{0}1"}), &ctx())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ARGUMENT_INVALID_CHARACTER");
    assert_eq!(err.safe_code(), "INVALID_ARGUMENT");
}

/// A config whose `acct.edit` runs through an in-process callback.
fn in_process_config(db: &Db) -> Value {
    let mut cfg = db.config();
    cfg["executors"] = json!({"app_cb": {"type": "in_process", "timeout_ms": 5000}});
    cfg["capabilities"][2]["executor"] = json!("app_cb");
    cfg
}

/// The business write with the engine's own placeholders.
fn note_update(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres => "UPDATE accounts SET note = $1 WHERE id = $2",
        Engine::Mariadb => "UPDATE accounts SET note = ? WHERE id = ?",
        Engine::Sqlite => "UPDATE accounts SET note = ?1 WHERE id = ?2",
    }
}

#[tokio::test]
async fn a_callback_cannot_end_or_escape_the_guarded_transaction() {
    use synapsor_runner::write::executor::{ExecutorFailure, ExecutorJob, GuardedTx};
    for engine in ENGINES {
        let db = Db::new(engine);
        let r = db.runner_with(&in_process_config(&db));
        let refused = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = refused.clone();
        r.register_executor(
            "app_cb",
            move |_job: ExecutorJob, tx: Option<GuardedTx>| {
                let seen = seen.clone();
                async move {
                    let tx = tx.expect("guarded");
                    for sql in [
                        "ROLLBACK",
                        "commit",
                        "  /* sneaky */ COMMIT",
                        "-- note\nBEGIN",
                        "END",
                        "SAVEPOINT s1",
                        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
                        "SET autocommit = 1",
                        "PRAGMA journal_mode = DELETE",
                        "UPDATE accounts SET note = 'a' WHERE id = 'A-1'; COMMIT",
                    ] {
                        let err = tx.execute(sql, &[]).await.unwrap_err();
                        seen.lock().unwrap().push(err.code().to_string());
                    }
                    let n = tx
                        .execute(note_update(engine), &[json!("from callback"), json!("A-1")])
                        .await
                        .map_err(|e| ExecutorFailure::safe(e.code(), false))?;
                    Ok(json!({"status": "applied", "rows_affected": n, "source_database_mutated": true}))
                }
            },
        );
        let id = propose(
            &r,
            "acct.edit",
            json!({"account_id": "A-1", "status": "closed"}),
        )
        .await
        .unwrap();
        let out = approve_and_apply(&r, &id).await;
        assert_eq!(out.receipt.status, "applied", "{engine:?}");
        let codes = refused.lock().unwrap().clone();
        assert_eq!(codes.len(), 10, "{engine:?}");
        assert!(
            codes.iter().all(|c| c == "TRANSACTION_CONTROL_REFUSED"),
            "{engine:?}: {codes:?}"
        );
        assert_eq!(db.cell("A-1", "note"), "from callback", "{engine:?}");
        // The callback did not touch the version; the core advanced it inside the transaction.
        assert_eq!(db.cell("A-1", "version"), "2", "{engine:?}");
    }
}

/// A stored procedure may COMMIT on MariaDB even when called inside a transaction, and no list
/// of statements can see into it: the core notices that its transaction is gone before it
/// commits and reports it as needing reconciliation, never as a retryable failure (a retry
/// would repeat the business write).
#[tokio::test]
async fn a_transaction_lost_inside_a_callback_is_never_retried_blindly() {
    use synapsor_runner::write::executor::{ExecutorJob, GuardedTx};
    let db = Db::new(Engine::Mariadb);
    db.sql("CREATE PROCEDURE sneaky() COMMIT");
    let r = db.runner_with(&in_process_config(&db));
    r.register_executor(
        "app_cb",
        move |_job: ExecutorJob, tx: Option<GuardedTx>| async move {
            let tx = tx.expect("guarded");
            tx.execute(note_update(Engine::Mariadb), &[json!("once"), json!("A-1")])
                .await
                .unwrap();
            tx.execute("CALL sneaky()", &[]).await.unwrap();
            Ok(json!({"status": "applied", "rows_affected": 1, "source_database_mutated": true}))
        },
    );
    let id = propose(
        &r,
        "acct.edit",
        json!({"account_id": "A-1", "status": "closed"}),
    )
    .await
    .unwrap();
    let out = approve_and_apply(&r, &id).await;
    assert_eq!(out.receipt.status, "failed");
    assert_eq!(
        out.receipt.safe_error_code.as_deref(),
        Some("RECONCILIATION_REQUIRED")
    );
    assert!(!out.retryable, "never retried blindly");
    let p = r.ledger().proposal(&id).await.unwrap();
    assert_ne!(p.state, "approved", "a plain apply cannot run it again");
    let err = r.apply(&id, &ApplyOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "PROPOSAL_NOT_APPROVED");
}

#[test]
fn transaction_control_is_recognised_through_comments_case_and_quotes() {
    use synapsor_runner::config::Engine as E;
    use synapsor_runner::write::executor::transaction_control as tc;
    for e in [E::Postgres, E::Mysql, E::Sqlite] {
        assert!(tc("rollback", e).is_some());
        assert!(tc("/* x */ Commit -- y", e).is_some());
        assert!(tc("UPDATE t SET note = 'COMMIT; BEGIN' WHERE id = 1", e).is_none());
        assert!(tc("SELECT 1 -- ; COMMIT", e).is_none());
        assert!(tc("UPDATE t SET a = 1", e).is_none());
        assert!(tc("UPDATE t SET a = 1;", e).is_none());
    }
    // DDL commits implicitly on MySQL/MariaDB only; it is transactional elsewhere.
    assert!(tc("CREATE TABLE t (x int)", E::Mysql).is_some());
    assert!(tc("CREATE TABLE t (x int)", E::Postgres).is_none());
    assert!(tc("CREATE TABLE t (x int)", E::Sqlite).is_none());
}

#[tokio::test]
async fn credential_like_text_in_a_visible_column_is_masked_not_fatal() {
    for engine in ENGINES {
        let db = Db::new(engine);
        db.sql("UPDATE accounts SET note = 'call me, db is postgres://app:hunter2@10.0.0.5/prod' WHERE id = 'A-1'");
        db.sql("UPDATE accounts SET status = 'host=db password=hunter2' WHERE id = 'B-1'");
        let r = db.runner();
        let read = r
            .inspect("acct.inspect", json!({"account_id": "A-1"}), &ctx())
            .await
            .unwrap();
        assert_eq!(read.data["note"], json!("<redacted>"), "{engine:?}");
        assert_eq!(
            read.data["balance_cents"],
            json!(2500),
            "{engine:?}: the rest is intact"
        );
        let other = r
            .inspect(
                "acct.inspect",
                json!({"account_id": "B-1"}),
                &TrustedContext::new("globex", "agent_2"),
            )
            .await
            .unwrap();
        assert_eq!(other.data["status"], json!("<redacted>"), "{engine:?}");
        // A proposal on the row works too, and nothing credential-like reaches the ledger.
        let id = propose(
            &r,
            "acct.set_balance",
            json!({"account_id": "A-1", "balance_cents": 1}),
        )
        .await
        .unwrap();
        let replay = r.replay(&id).await.unwrap().to_string();
        assert!(!replay.contains("hunter2"), "{engine:?}");
        assert!(replay.contains("<redacted>"), "{engine:?}");
    }
}

/// Propose and approve a balance change of A-1, then apply it while the ledger refuses to record
/// receipts (as a full disk, a lock held too long or a killed process leaves it): the source
/// commits, the ledger misses it and the caller hears RECONCILIATION_REQUIRED. The ledger
/// accepts writes again afterwards. Returns the proposal id.
async fn apply_losing_the_receipt(r: &Runner, balance: i64) -> String {
    let id = propose(
        r,
        "acct.set_balance",
        json!({"account_id": "A-1", "balance_cents": balance}),
    )
    .await
    .unwrap();
    r.approve(&id, &Approver::new("lead")).await.unwrap();
    r.ledger()
        .raw(|c| c.execute_batch("CREATE TRIGGER lost BEFORE INSERT ON writeback_receipts BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")).await
        .unwrap();
    let err = r.apply(&id, &ApplyOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "RECONCILIATION_REQUIRED", "{err}");
    r.ledger()
        .raw(|c| c.execute_batch("DROP TRIGGER lost"))
        .await
        .unwrap();
    id
}

/// The source committed, then the ledger could not record the receipt (here: the ledger refuses
/// the insert, as a full disk or a lock held too long would). The caller hears
/// RECONCILIATION_REQUIRED; a retry recovers the application from the source receipt, with the
/// source marked as changed, and never writes the row twice.
#[tokio::test]
async fn a_receipt_the_ledger_missed_is_recovered_from_the_source() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let r = db.runner();
        let id = apply_losing_the_receipt(&r, 1234).await;
        assert_eq!(
            db.cell("A-1", "balance_cents"),
            "1234",
            "{engine:?}: the source has it"
        );
        let version_after_first = db.cell("A-1", "updated_at");
        assert_eq!(
            r.ledger().proposal(&id).await.unwrap().state,
            "pending_worker"
        );
        let out = r.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(out.receipt.status, "applied", "{engine:?}");
        assert!(out.receipt.source_database_mutated, "{engine:?}");
        assert_eq!(
            out.receipt.extra["recovered_from_source_receipt"],
            json!(true)
        );
        assert!(out.recorded);
        assert_eq!(
            db.cell("A-1", "updated_at"),
            version_after_first,
            "{engine:?}: written once"
        );
        let replay = r.replay(&id).await.unwrap();
        assert_eq!(replay["proposal"]["state"], json!("applied"), "{engine:?}");
        assert_eq!(
            replay["proposal"]["source_database_mutated"],
            json!(true),
            "{engine:?}"
        );
        // Another retry is a plain idempotent no-op.
        let again = r.apply(&id, &ApplyOptions::default()).await.unwrap();
        assert_eq!(again.receipt.status, "already_applied");
        assert!(!again.recorded);
    }
}

/// `reconcile` settles what a crash left in pending_worker: an application the source has is
/// recorded; a job that never wrote goes back to approved once its lease has passed.
#[tokio::test]
async fn reconcile_settles_stuck_proposals_from_the_source_receipts() {
    for engine in ENGINES {
        let db = Db::new(engine);
        let r = db.runner();
        // One applied at the source, lost by the ledger: the process died before recording.
        let applied = apply_losing_the_receipt(&r, 99).await;
        let state = r.ledger().proposal(&applied).await.unwrap().state;
        assert_eq!(state, "pending_worker", "{engine:?}");
        let settled = r.reconcile(false, &ApplyOptions::default()).await.unwrap();
        assert_eq!(settled.len(), 1, "{engine:?}: {settled:?}");
        assert_eq!(settled[0].outcome, "recorded_applied", "{engine:?}");
        let p = r.ledger().proposal(&applied).await.unwrap();
        assert_eq!(
            (p.state.as_str(), p.source_database_mutated),
            ("applied", true)
        );

        // One that never wrote: the job was recorded, then the process died.
        let stuck = propose(
            &r,
            "acct.edit",
            json!({"account_id": "A-1", "status": "closed"}),
        )
        .await
        .unwrap();
        r.approve(&stuck, &Approver::new("lead")).await.unwrap();
        let p = r.ledger().proposal(&stuck).await.unwrap();
        let job = synapsor_runner::apply::job_for_executor(
            &p,
            match engine {
                Engine::Postgres => "postgres",
                Engine::Mariadb => "mysql",
                Engine::Sqlite => "sqlite",
            },
            "sql_update",
            &ApplyOptions::default(),
        );
        r.ledger()
            .prepare_job(&job, "sql_update", "crashed_runner")
            .await
            .unwrap();
        let settled = r.reconcile(false, &ApplyOptions::default()).await.unwrap();
        assert_eq!(
            settled[0].outcome, "in_flight",
            "{engine:?}: lease not over"
        );
        assert_eq!(
            r.ledger().proposal(&stuck).await.unwrap().state,
            "pending_worker"
        );
        let settled = r.reconcile(true, &ApplyOptions::default()).await.unwrap();
        assert_eq!(settled[0].outcome, "released", "{engine:?}");
        assert_eq!(r.ledger().proposal(&stuck).await.unwrap().state, "approved");
        let out = r.apply(&stuck, &ApplyOptions::default()).await.unwrap();
        assert_eq!(out.receipt.status, "applied", "{engine:?}");
        assert!(
            r.reconcile(false, &ApplyOptions::default())
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn connection_mistakes_are_named_not_reported_as_retry_later() {
    // An unset write URL names its variable, before anything is recorded.
    let db = Db::new(Engine::Postgres);
    let var = db.name.to_uppercase();
    let mut cfg = db.config();
    // Reads go through a variable that is given; writes through one that is not.
    cfg["sources"]["app"]["read_url_env"] = json!(format!("{var}_READ"));
    let read_url = db.env().remove(&var).unwrap();
    let r = db.runner_with_env(&cfg, &HashMap::from([(format!("{var}_READ"), read_url)]));
    let id = propose(
        &r,
        "acct.set_balance",
        json!({"account_id": "A-1", "balance_cents": 5}),
    )
    .await
    .unwrap();
    r.approve(&id, &Approver::new("lead")).await.unwrap();
    let err = r.apply(&id, &ApplyOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "SOURCE_CREDENTIAL_MISSING");
    assert!(err.to_string().contains(&var), "{err}");
    assert!(err.to_string().contains("write"), "{err}");
    assert_eq!(
        r.ledger().proposal(&id).await.unwrap().state,
        "approved",
        "nothing recorded"
    );
    // A database name that does not exist says so, on both server engines.
    for (engine, url) in [
        (
            Engine::Postgres,
            "postgres://postgres@127.0.0.1:5432/no_such_db_here",
        ),
        (
            Engine::Mariadb,
            "mysql://root@127.0.0.1:3306/no_such_db_here",
        ),
    ] {
        let db = Db::new(engine);
        let r = db.runner_with_env(
            &db.config(),
            &HashMap::from([(db.name.to_uppercase(), url.to_string())]),
        );
        let err = r
            .inspect("acct.inspect", json!({"account_id": "A-1"}), &ctx())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "DATABASE_NOT_FOUND", "{engine:?}: {err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}

#[test]
fn a_read_only_ledger_can_be_listed_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = Db::new(Engine::Sqlite);
    let id = {
        let loaded =
            load_config_str(&db.config().to_string(), &db.dir.path().join("c.json")).unwrap();
        let r = Runner::with_parts(loaded, Ledger::open(&path).unwrap()).unwrap();
        rt.block_on(propose(
            &r,
            "acct.set_balance",
            json!({"account_id": "A-1", "balance_cents": 5}),
        ))
        .unwrap()
    };
    let ledger = Ledger::open_read_only(&path).unwrap();
    assert!(ledger.is_read_only());
    assert_eq!(
        rt.block_on(ledger.list_proposals(None, None, 10))
            .unwrap()
            .len(),
        1
    );
    let replay = rt.block_on(ledger.replay(&id)).unwrap();
    assert_eq!(replay["proposal"]["proposal_id"], json!(id));
    let err = rt
        .block_on(ledger.approve(&id, &Approver::new("lead"), None))
        .unwrap_err();
    assert_eq!(err.code(), "LOCAL_STORE_UNAVAILABLE", "writes fail: {err}");
}
