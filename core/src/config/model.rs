//! Typed config model. Built only from JSON that passed `validate_value`.

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Runner mode: what proposals may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    ReadOnly,
    Shadow,
    Review,
    Cloud,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadOnly => "read_only",
            Mode::Shadow => "shadow",
            Mode::Review => "review",
            Mode::Cloud => "cloud",
        }
    }
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
pub struct RunnerConfig {
    pub version: u32,
    pub mode: Mode,
    #[serde(default)]
    pub result_format: Option<u8>,
    #[serde(default)]
    pub storage: Option<Storage>,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    #[serde(default)]
    pub trusted_context: Option<ContextBinding>,
    #[serde(default)]
    pub contexts: BTreeMap<String, ContextBinding>,
    #[serde(default)]
    pub executors: BTreeMap<String, ExecutorConfig>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

impl RunnerConfig {
    /// Convert validated JSON into the typed model.
    pub fn from_value(value: &Value) -> Result<Self> {
        Self::deserialize(value)
            .map_err(|e| Error::Internal(format!("validated config did not map to the model: {e}")))
    }

    /// Find a capability by its canonical name.
    pub fn capability(&self, name: &str) -> Option<&Capability> {
        self.capabilities.iter().find(|c| c.name == name)
    }

    /// Envelope format: 2 unless the config opts into 1.
    pub fn result_format(&self) -> u8 {
        self.result_format.unwrap_or(2)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Storage {
    #[serde(default)]
    pub sqlite_path: Option<String>,
    /// `sqlite` (the default) or `postgres`.
    #[serde(default)]
    pub engine: Option<String>,
    /// PostgreSQL: the variable holding the ledger database's URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// PostgreSQL: the schema of the ledger's tables (default `synapsor`).
    #[serde(default)]
    pub schema: Option<String>,
}

/// Database engine of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Postgres,
    Mysql,
    Sqlite,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Sqlite => "sqlite",
        }
    }
    /// The change-set `source.kind` for this engine.
    pub fn source_kind(self) -> &'static str {
        match self {
            Engine::Postgres => "external_postgres",
            Engine::Mysql => "external_mysql",
            Engine::Sqlite => "external_sqlite",
        }
    }
}

/// `sources.<name>`.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceConfig {
    pub engine: Engine,
    #[serde(default)]
    pub read_url_env: Option<String>,
    #[serde(default)]
    pub write_url_env: Option<String>,
    /// SQLite only: database file, relative to the config file's folder.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub statement_timeout_ms: Option<u64>,
}

impl SourceConfig {
    /// Whether trusted writeback has a connection for this source.
    pub fn has_writer(&self) -> bool {
        match self.engine {
            Engine::Sqlite => self.read_only != Some(true),
            _ => self.write_url_env.is_some(),
        }
    }
}

/// Where trusted tenant and principal come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Environment,
    StaticDev,
    Host,
    HttpClaims,
    CloudSession,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Environment => "environment",
            Provider::StaticDev => "static_dev",
            Provider::Host => "host",
            Provider::HttpClaims => "http_claims",
            Provider::CloudSession => "cloud_session",
        }
    }
}

/// `trusted_context` or `contexts.<name>`.
#[derive(Debug, Clone, Deserialize)]
pub struct ContextBinding {
    pub provider: Provider,
    #[serde(default)]
    pub values: Map<String, Value>,
}

/// HTTP handler auth.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecutorAuth {
    #[serde(rename = "type")]
    pub kind: String,
    pub token_env: String,
}

/// `executors.<name>`, routed by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecutorConfig {
    SqlUpdate {},
    HttpHandler {
        url_env: String,
        #[serde(default)]
        method: Option<String>,
        #[serde(default)]
        auth: Option<ExecutorAuth>,
        #[serde(default)]
        signing_secret_env: Option<String>,
        #[serde(default)]
        timeout_ms: Option<u64>,
        /// Largest answer body read (default 1 MiB); a larger one fails the apply safely.
        #[serde(default)]
        max_response_bytes: Option<u64>,
    },
    CommandHandler {
        command_env: String,
        #[serde(default)]
        timeout_ms: Option<u64>,
        /// Largest stdout read (default 1 MiB); more fails the apply safely.
        #[serde(default)]
        max_response_bytes: Option<u64>,
    },
    InProcess {
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
}

/// The default `max_response_bytes` of HTTP and command handlers: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

impl ExecutorConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            ExecutorConfig::SqlUpdate {} => "sql_update",
            ExecutorConfig::HttpHandler { .. } => "http_handler",
            ExecutorConfig::CommandHandler { .. } => "command_handler",
            ExecutorConfig::InProcess { .. } => "in_process",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapabilityKind {
    Read,
    Proposal,
}

impl CapabilityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CapabilityKind::Read => "read",
            CapabilityKind::Proposal => "proposal",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    pub schema: String,
    pub table: String,
    pub primary_key: String,
    #[serde(default)]
    pub tenant_key: Option<String>,
    #[serde(default)]
    pub single_tenant_dev: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgType {
    String,
    /// Any JSON number (fractions allowed); checked against the target column's type at propose.
    Number,
    /// A whole number (JSON Schema `integer`): `2.5` and `2.0` written as a fraction are refused.
    Integer,
    Boolean,
}

impl ArgType {
    pub fn as_str(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Number => "number",
            ArgType::Integer => "integer",
            ArgType::Boolean => "boolean",
        }
    }
}

/// One model-facing argument.
#[derive(Debug, Clone, Deserialize)]
pub struct ArgSpec {
    #[serde(rename = "type")]
    pub kind: ArgType,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_true")]
    pub required: bool,
    /// Whether an explicit JSON `null` is accepted (it writes NULL when the arg feeds a patch).
    #[serde(default)]
    pub nullable: bool,
    #[serde(default)]
    pub max_length: Option<u64>,
    #[serde(default)]
    pub minimum: Option<f64>,
    #[serde(default)]
    pub maximum: Option<f64>,
    #[serde(default, rename = "enum")]
    pub allowed: Option<Vec<Value>>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct Lookup {
    pub id_from_arg: String,
}

/// How a patch column gets its value.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchBinding {
    Fixed(Value),
    FromArg(String),
}

impl<'de> Deserialize<'de> for PatchBinding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        if let Some(v) = map.get("fixed") {
            return Ok(PatchBinding::Fixed(v.clone()));
        }
        match map.get("from_arg").and_then(Value::as_str) {
            Some(arg) => Ok(PatchBinding::FromArg(arg.to_string())),
            None => Err(serde::de::Error::custom(
                "patch binding needs fixed or from_arg",
            )),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NumericBound {
    #[serde(default)]
    pub minimum: Option<f64>,
    #[serde(default)]
    pub maximum: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TransitionGuard {
    #[serde(default)]
    pub from_column: Option<String>,
    pub allowed: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConflictGuard {
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub weak_guard_ack: Option<bool>,
    /// How every runner write moves the guard column forward.
    #[serde(default)]
    pub advance: GuardAdvance,
}

pub use crate::values::kinds::{GuardAdvance, guess_advance};

impl GuardAdvance {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardAdvance::Auto => "auto",
            GuardAdvance::Timestamp => "timestamp",
            GuardAdvance::Increment => "increment",
            GuardAdvance::Application => "application",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Approval {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub required_role: Option<String>,
}

/// One reviewed capability.
#[derive(Debug, Clone, Deserialize)]
pub struct Capability {
    pub name: String,
    pub kind: CapabilityKind,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub returns_hint: Option<String>,
    pub source: String,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub executor: Option<String>,
    pub target: Target,
    #[serde(deserialize_with = "ordered")]
    pub args: Vec<(String, ArgSpec)>,
    pub lookup: Lookup,
    pub visible_columns: Vec<String>,
    #[serde(default)]
    pub max_rows: Option<u64>,
    #[serde(default, deserialize_with = "ordered")]
    pub patch: Vec<(String, PatchBinding)>,
    #[serde(default)]
    pub allowed_columns: Vec<String>,
    #[serde(default, deserialize_with = "ordered")]
    pub numeric_bounds: Vec<(String, NumericBound)>,
    #[serde(default, deserialize_with = "ordered")]
    pub transition_guards: Vec<(String, TransitionGuard)>,
    #[serde(default)]
    pub conflict_guard: Option<ConflictGuard>,
    #[serde(default)]
    pub approval: Option<Approval>,
}

impl Capability {
    /// Declared argument by name.
    pub fn arg(&self, name: &str) -> Option<&ArgSpec> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// Columns read: visible (deduplicated, in order), then pk, tenant key, conflict column.
    pub fn read_columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        let mut push = |c: &str| {
            if !cols.iter().any(|x| x == c) {
                cols.push(c.to_string());
            }
        };
        for c in &self.visible_columns {
            push(c);
        }
        push(&self.target.primary_key);
        if let Some(t) = &self.target.tenant_key {
            push(t);
        }
        if let Some(c) = self.conflict_guard.as_ref().and_then(|g| g.column.as_ref()) {
            push(c);
        }
        cols
    }

    /// Executor name for proposals: the configured one or `sql_update`.
    pub fn executor_name(&self) -> &str {
        self.executor.as_deref().unwrap_or("sql_update")
    }

    /// The role an approver must hold, if any.
    pub fn required_role(&self) -> Option<&str> {
        self.approval
            .as_ref()
            .and_then(|a| a.required_role.as_deref())
    }

    /// `schema.table`.
    pub fn qualified_table(&self) -> String {
        format!("{}.{}", self.target.schema, self.target.table)
    }

    pub fn numeric_bound(&self, column: &str) -> Option<&NumericBound> {
        self.numeric_bounds
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, b)| b)
    }
}

fn ordered<'de, D, T>(d: D) -> std::result::Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let map = Map::<String, Value>::deserialize(d)?;
    map.into_iter()
        .map(|(k, v)| {
            serde_json::from_value(v)
                .map(|t| (k, t))
                .map_err(serde::de::Error::custom)
        })
        .collect()
}
