//! Crash consistency: `synapsor-runner apply` is killed with SIGKILL at random points, then
//! applied again, on PostgreSQL, MariaDB, SQLite and through an HTTP handler. After every trial:
//! the row holds exactly the approved value and was written once (its integer version went up by
//! exactly one), the source has one `applied` receipt for the job, the ledger has one `applied`
//! receipt and passes its integrity check, and replay says the source changed.
//!
//! `CRASH_TRIALS` sets the trials per engine (default 6, what CI runs); `scripts/crash-harness`
//! runs a long series.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
#[path = "../../core/tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn trials() -> usize {
    std::env::var("CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// A small deterministic generator, so a failing trial can be replayed from its number.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Engine {
    Postgres,
    Mariadb,
    Sqlite,
}

struct Setup {
    engine: Engine,
    name: String,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Setup {
    fn new(engine: Engine, handler_url: Option<&str>) -> Setup {
        let name = format!(
            "synk_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let s = Setup {
            engine,
            name,
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        };
        let ddl = "CREATE TABLE accounts (id varchar(40) PRIMARY KEY, tenant_id varchar(40) NOT NULL, balance_cents integer NOT NULL, version integer NOT NULL)";
        match engine {
            Engine::Postgres => {
                s.pg("postgres", &format!("CREATE DATABASE {}", s.name));
                s.pg(&s.name, ddl);
            }
            Engine::Mariadb => {
                s.my(None, &format!("CREATE DATABASE {}", s.name));
                s.my(Some(&s.name), ddl);
            }
            Engine::Sqlite => {
                s.sql(ddl);
            }
        }
        let mut s = s;
        let env = s.name.to_uppercase();
        let source = match engine {
            Engine::Postgres => {
                s.env.push((
                    env.clone(),
                    format!("postgres://postgres@127.0.0.1:5432/{}", s.name),
                ));
                json!({"engine": "postgres", "read_url_env": env, "write_url_env": env})
            }
            Engine::Mariadb => {
                s.env.push((
                    env.clone(),
                    format!("mysql://root@127.0.0.1:3306/{}", s.name),
                ));
                json!({"engine": "mysql", "read_url_env": env, "write_url_env": env})
            }
            Engine::Sqlite => json!({"engine": "sqlite", "path": "app.db"}),
        };
        let schema = match engine {
            Engine::Postgres => "public".to_string(),
            Engine::Mariadb => s.name.clone(),
            Engine::Sqlite => "main".to_string(),
        };
        let mut cfg = json!({
            "version": 1, "mode": "review",
            "storage": {"sqlite_path": "ledger.db"},
            "sources": {"app": source},
            "trusted_context": {"provider": "static_dev", "values": {"tenant_id": "acme", "principal": "agent"}},
            "capabilities": [{
                "name": "acct.set_balance", "kind": "proposal", "source": "app",
                "target": {"schema": schema, "table": "accounts", "primary_key": "id", "tenant_key": "tenant_id"},
                "args": {"account_id": {"type": "string"}, "balance_cents": {"type": "integer"}},
                "lookup": {"id_from_arg": "account_id"},
                "visible_columns": ["id", "balance_cents"],
                "patch": {"balance_cents": {"from_arg": "balance_cents"}},
                "allowed_columns": ["balance_cents"],
                "conflict_guard": {"column": "version"}
            }]
        });
        if let Some(url) = handler_url {
            s.env.push(("CRASH_HANDLER_URL".into(), url.into()));
            cfg["executors"] = json!({"app": {"type": "http_handler", "url_env": "CRASH_HANDLER_URL", "timeout_ms": 5000}});
            cfg["capabilities"][0]["executor"] = json!("app");
        }
        std::fs::write(s.config(), serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
        s
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("synapsor.runner.json")
    }

    fn ledger(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }

    fn pg(&self, db: &str, sql: &str) -> String {
        sh(Command::new("psql").args([
            &format!("postgres://postgres@127.0.0.1:5432/{db}"),
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        ]))
    }

    fn my(&self, db: Option<&str>, sql: &str) -> String {
        let mut c = Command::new("mariadb");
        c.args(["-uroot", "-h127.0.0.1", "-N", "-B", "-e", sql]);
        if let Some(d) = db {
            c.arg(d);
        }
        sh(&mut c)
    }

    fn sqlite(path: &Path, sql: &str) -> String {
        sh(Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nrows=c.execute(sys.argv[2]).fetchall()\nc.commit()\nprint('\\n'.join('|'.join('' if v is None else str(v) for v in r) for r in rows))",
            ])
            .arg(path)
            .arg(sql))
    }

    fn sql(&self, sql: &str) -> String {
        match self.engine {
            Engine::Postgres => self.pg(&self.name, sql),
            Engine::Mariadb => self.my(Some(&self.name), sql),
            Engine::Sqlite => Self::sqlite(&self.dir.path().join("app.db"), sql),
        }
    }

    fn cli(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_synapsor-runner"));
        c.arg("--config")
            .arg(self.config())
            .env_remove("SYNAPSOR_LOCAL_STORE")
            .env("SYNAPSOR_OPERATOR_ROLES", "lead")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Propose and approve a change of account `id`; returns the proposal id.
    fn approved(&self, id: &str, balance: i64) -> String {
        let out = sh(self.cli().args([
            "propose",
            "acct.set_balance",
            "--json",
            &json!({"account_id": id, "balance_cents": balance}).to_string(),
        ]));
        let v: Value = serde_json::from_str(&out).unwrap();
        let pid = v["proposal"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no proposal id in {out}"))
            .to_string();
        sh(self.cli().args(["proposals", "approve", &pid, "--yes"]));
        pid
    }

    fn ledger_query(&self, sql: &str) -> String {
        Self::sqlite(&self.ledger(), sql)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        match self.engine {
            Engine::Postgres => common::drop_pg_database(&self.name),
            Engine::Mariadb => common::drop_mariadb_database(&self.name),
            Engine::Sqlite => {}
        }
    }
}

/// One trial: a fresh row and proposal, an apply killed after `delay`, then applies until one
/// settles it, then every invariant.
fn trial(s: &Setup, n: usize, delay: Duration, handler: Option<&Handler>) -> &'static str {
    let id = format!("T-{n}");
    s.sql(&format!(
        "INSERT INTO accounts VALUES ('{id}', 'acme', 1000, 1)"
    ));
    let approved_value = 2000 + n as i64;
    let pid = s.approved(&id, approved_value);
    let mut child = s
        .cli()
        .args(["apply", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let killed = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    // Retry until settled: a crash may leave the job pending (retry applies or recovers it).
    let mut last = String::new();
    for _ in 0..5 {
        let out = s.cli().args(["apply", &pid, "--json"]).output().unwrap();
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let row = s.sql(&format!(
        "SELECT balance_cents, version FROM accounts WHERE id = '{id}'"
    ));
    let ctx = format!(
        "trial {n} ({:?}, delay {delay:?}, killed {killed}): {last}",
        s.engine
    );
    match handler {
        None => {
            assert_eq!(
                row,
                format!("{approved_value}{}2", sep(s.engine)),
                "{ctx}: row written once with the approved value"
            );
            let receipts = s.sql(&format!(
                "SELECT status FROM synapsor_writeback_receipts WHERE idempotency_key = '{pid}:{id}'"
            ));
            assert_eq!(receipts, "applied", "{ctx}: one source receipt");
        }
        Some(h) => {
            assert_eq!(
                h.applied(&format!("{pid}:{id}")),
                1,
                "{ctx}: the handler applied once"
            );
        }
    }
    let applied = s.ledger_query(&format!(
        "SELECT count(*) FROM writeback_receipts WHERE proposal_id = '{pid}' AND status = 'applied'"
    ));
    assert_eq!(applied, "1", "{ctx}: one applied receipt in the ledger");
    let state = s.ledger_query(&format!(
        "SELECT state, source_database_mutated FROM proposals WHERE proposal_id = '{pid}'"
    ));
    assert_eq!(state, "applied|1", "{ctx}: replay says the source changed");
    let replay: Value =
        serde_json::from_str(&sh(s.cli().args(["replay", "show", &pid, "--json"]))).unwrap();
    assert_eq!(
        replay["proposal"]["source_database_mutated"],
        json!(true),
        "{ctx}"
    );
    if killed { "killed" } else { "finished" }
}

/// The column separator of each client's unaligned output.
fn sep(engine: Engine) -> &'static str {
    match engine {
        Engine::Mariadb => "\t",
        _ => "|",
    }
}

fn run_series(engine: Engine, handler: Option<&Handler>) {
    let s = Setup::new(engine, handler.map(|h| h.url.as_str()));
    // How long one apply takes here, to spread the kills over its whole life.
    s.sql("INSERT INTO accounts VALUES ('warm', 'acme', 1, 1)");
    let pid = s.approved("warm", 5);
    let started = Instant::now();
    sh(s.cli().args(["apply", &pid]));
    let span = started.elapsed().as_micros().max(1000) as u64 * 12 / 10;
    let mut rng = Lcg(0x5eed ^ engine as u64);
    let (mut killed, mut finished) = (0, 0);
    for n in 0..trials() {
        let delay = Duration::from_micros(rng.next() % span);
        match trial(&s, n, delay, handler) {
            "killed" => killed += 1,
            _ => finished += 1,
        }
    }
    let integrity = s.ledger_query("PRAGMA integrity_check");
    assert_eq!(integrity, "ok");
    eprintln!(
        "crash series {engine:?}{}: {} trials, {killed} killed mid-apply, {finished} finished first; apply takes ~{} us here",
        if handler.is_some() {
            " (HTTP handler)"
        } else {
            ""
        },
        trials(),
        span * 10 / 12
    );
}

#[test]
fn killed_applies_on_postgres_leave_one_write_and_one_receipt() {
    run_series(Engine::Postgres, None);
}

#[test]
fn killed_applies_on_mariadb_leave_one_write_and_one_receipt() {
    run_series(Engine::Mariadb, None);
}

#[test]
fn killed_applies_on_sqlite_leave_one_write_and_one_receipt() {
    run_series(Engine::Sqlite, None);
}

#[test]
fn killed_applies_through_an_http_handler_apply_once() {
    let h = Handler::start();
    run_series(Engine::Sqlite, Some(&h));
}

/// An app-owned HTTP handler that applies each Idempotency-Key once, as the docs tell handlers
/// to, and counts what it applied.
struct Handler {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl Handler {
    fn start() -> Handler {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/apply", listener.local_addr().unwrap());
        let seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>> =
            Default::default();
        let state = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let state = state.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let (mut key, mut len) = (String::new(), 0usize);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            match k.to_ascii_lowercase().as_str() {
                                "idempotency-key" => key = v.trim().to_string(),
                                "content-length" => len = v.trim().parse().unwrap_or(0),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body);
                    // Applied once per key; a repeated delivery gets the original answer again,
                    // as Idempotency-Key semantics ask.
                    state.lock().unwrap().entry(key).or_insert(0);
                    let answer =
                        r#"{"status":"applied","rows_affected":1,"source_database_mutated":true}"#;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                });
            }
        });
        Handler { url, seen }
    }

    /// How many times the key's change was made (each key at most once, by construction; a
    /// key the handler never received counts 0).
    fn applied(&self, key: &str) -> usize {
        usize::from(self.seen.lock().unwrap().contains_key(key))
    }
}
