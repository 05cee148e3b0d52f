//! Test support: a fresh PostgreSQL database per test, loaded with the reference billing
//! example's schema and seed, and a runner over the reference config.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use synapsor_runner::config::load_config_str;
use synapsor_runner::{Ledger, Runner};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

pub fn admin_url() -> String {
    std::env::var("SYNAPSOR_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Run SQL through psql against a database; panics with psql's stderr on failure.
pub fn psql(db: &str, sql: &str) -> String {
    let url = with_db(&admin_url(), db);
    let out = Command::new("psql")
        .args([
            url.as_str(),
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-At",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql failed: {}\nSQL: {sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run SQL through the mariadb client as root (optionally in database `db`); panics with the
/// client's stderr on failure.
pub fn mariadb(db: Option<&str>, sql: &str) -> String {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-uroot", "-h127.0.0.1", "-P3306", "-N", "-B", "-e", sql]);
    if let Some(d) = db {
        cmd.arg(d);
    }
    let out = cmd.output().expect("mariadb client runs");
    assert!(
        out.status.success(),
        "mariadb failed: {}\nSQL: {sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn psql_file(db: &str, sql: &str) {
    let url = with_db(&admin_url(), db);
    let mut child = Command::new("psql")
        .args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "psql script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn with_db(url: &str, db: &str) -> String {
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    format!("{base}/{db}")
}

/// A throwaway database, dropped when the value goes out of scope.
pub struct PgDb {
    pub name: String,
    pub dir: tempfile::TempDir,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl PgDb {
    /// Create a database with the billing example schema and seed (roles: reader, writer).
    pub fn billing() -> PgDb {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "synt_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        psql("postgres", &format!("CREATE DATABASE {name}"));
        // Roles are cluster-wide; create them race-free for parallel tests.
        for (role, pw) in [
            ("synapsor_reader", "synapsor_reader_password"),
            ("synapsor_writer", "synapsor_writer_password"),
        ] {
            psql(
                &name,
                &format!(
                    "DO $$ BEGIN CREATE ROLE {role} LOGIN PASSWORD '{pw}'; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                ),
            );
        }
        let schema = std::fs::read_to_string(fixture(
            "examples/mcp-postgres-billing-app-handler/schema.sql",
        ))
        .unwrap();
        let start = schema.find("DO $$").unwrap();
        let end = schema[start..].find("$$;").unwrap() + start + 3;
        let schema = format!("{}{}", &schema[..start], &schema[end..])
            .replace("synapsor_billing_app_handler", &name);
        psql_file(&name, &schema);
        psql_file(
            &name,
            &std::fs::read_to_string(fixture(
                "examples/mcp-postgres-billing-app-handler/seed.sql",
            ))
            .unwrap(),
        );
        PgDb {
            name,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn url(&self, role: &str) -> String {
        let admin = admin_url();
        let host = admin
            .split('@')
            .nth(1)
            .and_then(|h| h.split('/').next())
            .unwrap_or("127.0.0.1:5432")
            .to_string();
        format!("postgres://{role}:{role}_password@{host}/{}", self.name)
    }

    pub fn sql(&self, sql: &str) -> String {
        psql(&self.name, sql)
    }

    /// Env var names unique to this database (so parallel tests never share one).
    pub fn env_prefix(&self) -> String {
        self.name.to_uppercase()
    }

    /// The reference billing config with per-test env names and a `host` trusted context.
    pub fn config_value(&self) -> Value {
        let text = std::fs::read_to_string(fixture(
            "examples/mcp-postgres-billing-app-handler/synapsor.runner.json",
        ))
        .unwrap();
        let mut cfg: Value = serde_json::from_str(&text).unwrap();
        let p = self.env_prefix();
        cfg["sources"]["billing_postgres"]["read_url_env"] = json!(format!("{p}_READ"));
        cfg["sources"]["billing_postgres"]["write_url_env"] = json!(format!("{p}_WRITE"));
        cfg["trusted_context"] = json!({"provider": "host"});
        cfg["contexts"]["local_operator"] = json!({"provider": "host"});
        cfg.as_object_mut().unwrap().remove("storage");
        cfg
    }

    /// The connection URLs the config's variables name, handed to the runner directly (no
    /// process environment).
    pub fn env(&self) -> std::collections::HashMap<String, String> {
        let p = self.env_prefix();
        [
            (format!("{p}_READ"), self.url("synapsor_reader")),
            (format!("{p}_WRITE"), self.url("synapsor_writer")),
        ]
        .into_iter()
        .collect()
    }

    pub fn runner_with(&self, cfg: &Value) -> Runner {
        self.runner_with_env(cfg, self.env())
    }

    pub fn runner_with_env(
        &self,
        cfg: &Value,
        env: std::collections::HashMap<String, String>,
    ) -> Runner {
        let path = self.dir.path().join("synapsor.runner.json");
        std::fs::write(&path, serde_json::to_string_pretty(cfg).unwrap()).unwrap();
        let loaded =
            load_config_str(&serde_json::to_string(cfg).unwrap(), &path).expect("config loads");
        let ledger = Ledger::open(&self.dir.path().join("local.db")).unwrap();
        Runner::with_parts_and_env(loaded, ledger, &env).unwrap()
    }

    pub fn runner(&self) -> Runner {
        self.runner_with(&self.config_value())
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("synapsor.runner.json")
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("local.db")
    }
}

/// Drop a test's PostgreSQL database (best effort: cleanup never fails a test).
pub fn drop_pg_database(name: &str) {
    let _ = Command::new("psql")
        .args([
            admin_url().as_str(),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ])
        .output();
}

/// Drop a test's MariaDB database (best effort).
pub fn drop_mariadb_database(name: &str) {
    let _ = Command::new("mariadb")
        .args([
            "-uroot",
            "-h127.0.0.1",
            "-e",
            &format!("DROP DATABASE IF EXISTS {name}"),
        ])
        .output();
}

impl Drop for PgDb {
    fn drop(&mut self) {
        drop_pg_database(&self.name);
    }
}

/// An in-process executor that logs each time the core calls it (`execute`) and answers
/// at once, without a statement.
#[derive(Clone, Default)]
pub struct Recording(pub std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);

impl Recording {
    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl synapsor_runner::write::executor::Executor for Recording {
    fn execute<'a>(
        &'a self,
        _job: &'a synapsor_runner::write::executor::ExecutorJob,
        tx: Option<synapsor_runner::write::executor::GuardedTx>,
    ) -> synapsor_runner::write::executor::BoxFuture<
        'a,
        Result<Value, synapsor_runner::write::executor::ExecutorFailure>,
    > {
        self.0.lock().unwrap().push("execute");
        assert!(tx.is_some(), "runs in the guarded transaction");
        Box::pin(async {
            Ok(json!({"status": "applied", "rows_affected": 0, "source_database_mutated": false}))
        })
    }
}

/// An empty PostgreSQL database of its own for one test, dropped when this goes.
pub struct PgDatabase(pub String);

impl PgDatabase {
    pub fn create(prefix: &str) -> PgDatabase {
        let db = PgDatabase(unique_name(prefix));
        psql("postgres", &format!("CREATE DATABASE {}", db.0));
        db
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        drop_pg_database(&self.0);
    }
}

/// An empty MariaDB database of its own for one test, dropped when this goes.
pub struct MariaDatabase(pub String);

impl MariaDatabase {
    pub fn create(prefix: &str) -> MariaDatabase {
        let db = MariaDatabase(unique_name(prefix));
        mariadb(None, &format!("CREATE DATABASE {}", db.0));
        db
    }
}

impl Drop for MariaDatabase {
    fn drop(&mut self) {
        drop_mariadb_database(&self.0);
    }
}

/// A database name no other test (or test process) uses.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
