//! What every command shares: where the config and the ledger are, how to open them, how to
//! print JSON and report a usage mistake.

use crate::Global;
use serde_json::Value;
use std::path::PathBuf;
use synapsor_runner::config::load_config;
use synapsor_runner::error::{Error, Result};
use synapsor_runner::runner::resolve_ledger_path;
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

/// Say so when a command is about to create a new, empty ledger while one exists where the
/// configured path would point if it were read relative to the working directory.
fn warn_if_ledger_moved(g: &Global, loaded: &synapsor_runner::LoadedConfig) {
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
pub(crate) fn open_existing_ledger(g: &Global) -> Result<(Ledger, PathBuf)> {
    let path = ledger_path(g);
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
