//! What every command shares: where the config and the ledger are, how to open them, how to
//! print JSON and report a usage mistake.

use crate::Global;
use serde_json::Value;
use std::path::PathBuf;
use synapsor_runner::LedgerLocation;
use synapsor_runner::config::load_config;
use synapsor_runner::error::{Error, Result};
use synapsor_runner::runner::{resolve_ledger, resolve_ledger_path};
use synapsor_runner::{Ledger, OpenOptions, Runner};

pub(crate) fn usage(msg: &str) -> Error {
    Error::ConfigFile {
        code: "USAGE",
        message: msg.to_string(),
    }
}

pub(crate) fn config_path(g: &Global) -> PathBuf {
    g.config
        .clone()
        .unwrap_or_else(|| PathBuf::from("synapsor.runner.json"))
}

pub(crate) async fn open_runner(g: &Global) -> Result<Runner> {
    let path = config_path(g);
    if let Ok(loaded) = load_config(&path) {
        warn_if_ledger_moved(g, &loaded);
    }
    Runner::open(OpenOptions {
        config_path: path,
        ledger_path: g.store.clone(),
        ..Default::default()
    })
    .await
}

/// The ledger of `g`: from `--store`, `SYNAPSOR_LOCAL_STORE`, or the config (the default config
/// file too, so review commands find the ledger `propose` and `apply` use).
pub(crate) fn ledger_path(g: &Global) -> PathBuf {
    let cfg = load_config(config_path(g)).ok();
    resolve_ledger_path(g.store.as_deref(), cfg.as_ref())
}

/// Where the ledger of `g` is: as [`ledger_path`], or the config's PostgreSQL ledger.
pub(crate) fn ledger_location(g: &Global) -> LedgerLocation {
    let cfg = load_config(config_path(g)).ok();
    resolve_ledger(g.store.as_deref(), cfg.as_ref())
}

/// Say so when a command is about to create a new, empty ledger while one exists where the
/// configured path would point if it were read relative to the working directory.
fn warn_if_ledger_moved(g: &Global, loaded: &synapsor_runner::LoadedConfig) {
    if resolve_ledger(g.store.as_deref(), Some(loaded))
        .sqlite_path()
        .is_none()
    {
        return;
    }
    let path = resolve_ledger_path(g.store.as_deref(), Some(loaded));
    if path.exists() || g.store.is_some() {
        return;
    }
    let configured = loaded
        .config
        .storage
        .as_ref()
        .and_then(|s| s.sqlite_path.clone())
        .unwrap_or_else(|| synapsor_runner::runner::DEFAULT_LEDGER.to_string());
    let elsewhere = PathBuf::from(&configured);
    if elsewhere.exists() && elsewhere.canonicalize().ok() != path.canonicalize().ok() {
        eprintln!(
            "warning: creating a new, empty ledger at {}; a ledger exists at {} (storage.sqlite_path is read relative to the config file's folder; pass --store {} to use that one)",
            path.display(),
            elsewhere.display(),
            elsewhere.display()
        );
    }
}

/// Open the ledger for review commands; a missing file is an error, not a new empty ledger.
/// The path is the file, or for a PostgreSQL ledger its name (`postgres:$VAR/schema`).
pub(crate) async fn open_existing_ledger(g: &Global) -> Result<(Ledger, PathBuf)> {
    let location = ledger_location(g);
    let LedgerLocation::Sqlite(path) = &location else {
        let ledger = location.open(&std::collections::HashMap::new()).await?;
        return Ok((ledger, PathBuf::from(location.to_string())));
    };
    let path = path.clone();
    if path.as_os_str() != ":memory:" && !path.exists() {
        return Err(Error::ConfigFile {
            code: "LOCAL_STORE_NOT_FOUND",
            message: format!(
                "No local Synapsor proposal store was found at {}.\nRun:\n  synapsor-runner demo\nor pass:\n  --store /path/to/local.db",
                path.display()
            ),
        });
    }
    Ok((Ledger::open(&path)?, path))
}

pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A long-running server's claim on its ledger: `<ledger>.lease.json` naming the process, so
/// that `store prune --yes` and `store reset` refuse while it runs. Removed when dropped; a lease
/// whose process is gone is ignored and removed by the next check.
pub(crate) struct StoreLease {
    path: PathBuf,
}

fn lease_path(ledger: &std::path::Path) -> PathBuf {
    let mut p = ledger.as_os_str().to_owned();
    p.push(".lease.json");
    PathBuf::from(p)
}

impl StoreLease {
    /// Claim the ledger of `g`, when it is a file (a PostgreSQL ledger is shared by design: no
    /// lease).
    pub(crate) fn take_for(g: &Global, transport: &str) -> Option<StoreLease> {
        match ledger_location(g) {
            LedgerLocation::Sqlite(p) => Self::take(&p, transport),
            LedgerLocation::Postgres { .. } => None,
        }
    }

    /// Claim `ledger` for this process (best effort: a lease that cannot be written is warned
    /// about, not fatal).
    pub(crate) fn take(ledger: &std::path::Path, transport: &str) -> Option<StoreLease> {
        if ledger.as_os_str() == ":memory:" {
            return None;
        }
        let path = lease_path(ledger);
        let body = serde_json::json!({
            "pid": std::process::id(),
            "mode": "mcp",
            "transport": transport,
            "store_path": ledger.display().to_string(),
            "started_at": chrono::Utc::now().to_rfc3339(),
        });
        match std::fs::write(&path, body.to_string()) {
            Ok(()) => Some(StoreLease { path }),
            Err(e) => {
                eprintln!(
                    "warning: cannot write the ledger lease {}: {e}",
                    path.display()
                );
                None
            }
        }
    }
}

impl Drop for StoreLease {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| v["pid"].as_u64() == Some(u64::from(std::process::id())));
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether process `pid` is alive (a process we may not signal counts as alive).
fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Refuse `op` on `ledger` while a live MCP server holds it, unless `force` (then only warn).
pub(crate) fn check_not_in_use(ledger: &std::path::Path, op: &str, force: bool) -> Result<()> {
    let path = lease_path(ledger);
    let Some(lease) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    else {
        return Ok(());
    };
    let pid = lease["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
    if !pid.is_some_and(alive) {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    let message = format!(
        "Local store appears active for {}/{} (pid {}, started {}). Refusing {op}. Stop that server first, or pass --force.",
        lease["mode"].as_str().unwrap_or("mcp"),
        lease["transport"].as_str().unwrap_or("?"),
        lease["pid"],
        lease["started_at"].as_str().unwrap_or("?"),
    );
    if force {
        eprintln!("warning: {message}");
        return Ok(());
    }
    Err(Error::ConfigFile {
        code: "LOCAL_STORE_IN_USE",
        message,
    })
}
