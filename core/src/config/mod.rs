//! `synapsor.runner.json` v1: the typed model, loading, and validation.
//!
//! Validation runs over the raw JSON first (`validate`) so that every problem is reported at
//! once with its JSON path; only a config with no errors is turned into the typed model.

mod model;
pub(crate) mod structure;
pub(crate) mod validate;

pub use model::*;
pub use structure::SCHEMA_TEXT;
pub use validate::{ValidationReport, fold_name, is_reserved_arg_name, validate_value};

use crate::error::{Error, Result};

use std::path::{Path, PathBuf};

pub use crate::error::ConfigIssue;

/// A validated config plus the file it came from (relative paths resolve against its folder).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: RunnerConfig,
    pub path: PathBuf,
    pub warnings: Vec<ConfigIssue>,
}

impl LoadedConfig {
    /// The folder relative source paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// Read the file, parse JSON, and validate. Any failure lists every problem found.
pub fn load_config(path: impl AsRef<Path>) -> Result<LoadedConfig> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
        code: "CONFIG_NOT_FOUND",
        message: format!("cannot read config {}: {e}", path.display()),
    })?;
    load_config_str(&text, path)
}

/// Parse and validate config text; `path` only names it in errors and anchors relative paths.
pub fn load_config_str(text: &str, path: &Path) -> Result<LoadedConfig> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::ConfigFile {
        code: "CONFIG_NOT_JSON",
        message: format!("config {} is not valid JSON: {e}", path.display()),
    })?;
    let report = validate_value(&value);
    if !report.errors.is_empty() {
        return Err(Error::Config(report.errors));
    }
    let config = RunnerConfig::from_value(&value)?;
    Ok(LoadedConfig {
        config,
        path: path.to_path_buf(),
        warnings: report.warnings,
    })
}
