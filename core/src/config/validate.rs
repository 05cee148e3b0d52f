//! Whole-file validation of the raw config JSON. Collects every error and warning, in the
//! order the spec lists them, each with a JSON path and a stable code.

use super::ConfigIssue;
use super::model::{GuardAdvance, guess_advance};
use crate::values::is_safe_identifier;
use regex_lite::Regex;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::LazyLock;

/// Result of validating a config value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ValidationReport {
    pub ok: bool,
    pub errors: Vec<ConfigIssue>,
    pub warnings: Vec<ConfigIssue>,
}

static SAFE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_.-]*$").unwrap());
static CAPABILITY_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$").unwrap());
static ENV_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Z_][A-Z0-9_]*$").unwrap());

/// A name folded for comparison: Unicode compatibility forms (full-width letters, ligatures)
/// to their plain letters (NFKC), case ignored, separators and anything else that is not a
/// letter or digit dropped. `TENANT_ID`, `tenantID`, `tenant-id` and `ｔｅｎａｎｔ＿ｉｄ` all fold to
/// `tenantid`. Config validation, argument checks and `audit` compare names this way.
pub fn fold_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfkc()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `name`, however spelled, is one of `RESERVED_ARG_NAMES`.
pub fn is_reserved_arg_name(name: &str) -> bool {
    static FOLDED: LazyLock<HashSet<String>> =
        LazyLock::new(|| RESERVED_ARG_NAMES.iter().map(|n| fold_name(n)).collect());
    FOLDED.contains(&fold_name(name))
}

/// Argument names the model may never declare: trust scope and dynamic identifiers (compared
/// through [`fold_name`], so every spelling of these is reserved).
pub const RESERVED_ARG_NAMES: &[&str] = &[
    "tenant_id",
    "tenantId",
    "principal",
    "principal_id",
    "principalId",
    "project_id",
    "projectId",
    "source_id",
    "sourceId",
    "allowed_columns",
    "allowedColumns",
    "row_version",
    "rowVersion",
    "current_version",
    "currentVersion",
    "expected_version",
    "expectedVersion",
    "approval_identity",
    "approvalIdentity",
    "table",
    "table_name",
    "tableName",
    "schema",
    "schema_name",
    "schemaName",
    "column",
    "columns",
    "column_name",
    "columnName",
    "database",
    "database_name",
    "databaseName",
];

const URL_KEYS: &[&str] = &[
    "url",
    "database_url",
    "databaseUrl",
    "read_url",
    "readUrl",
    "write_url",
    "writeUrl",
    "connection_string",
    "connectionString",
];
const SQL_KEYS: &[&str] = &[
    "sql",
    "raw_sql",
    "rawSql",
    "statement",
    "query_sql",
    "querySql",
];

struct Validator {
    strict: bool,
    errors: Vec<ConfigIssue>,
    warnings: Vec<ConfigIssue>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, code: &str, message: impl Into<String>) {
        self.errors.push(ConfigIssue {
            path: path.into(),
            code: code.into(),
            message: message.into(),
        });
    }
    fn warn(&mut self, path: impl Into<String>, code: &str, message: impl Into<String>) {
        self.warnings.push(ConfigIssue {
            path: path.into(),
            code: code.into(),
            message: message.into(),
        });
    }
    fn unknown_keys(&mut self, obj: &Map<String, Value>, path: &str, allowed: &[&str]) {
        if !self.strict {
            return;
        }
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                self.err(
                    format!("{path}.{key}"),
                    "UNKNOWN_FIELD",
                    format!("Unknown field {key}."),
                );
            }
        }
    }
    fn env_name(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        code: &str,
        required: bool,
    ) {
        match obj.get(key) {
            None if !required => {}
            Some(Value::String(s)) if ENV_NAME.is_match(s) => {}
            _ => self.err(
                format!("{path}.{key}"),
                code,
                format!("{key} must name an environment variable (uppercase letters, digits, _); do not store secrets or URLs in config."),
            ),
        }
    }
}

/// `storage`: a SQLite file (the default) or a PostgreSQL schema shared by many instances.
fn validate_storage(v: &mut Validator, s: &Map<String, Value>) {
    v.unknown_keys(
        s,
        "$.storage",
        &["sqlite_path", "engine", "url_env", "schema"],
    );
    let engine = match s.get("engine") {
        None => "sqlite",
        Some(Value::String(e)) if e == "sqlite" || e == "postgres" => e.as_str(),
        Some(_) => {
            v.err(
                "$.storage.engine",
                "INVALID_STORAGE_ENGINE",
                "storage.engine must be sqlite (the default) or postgres.",
            );
            return;
        }
    };
    if engine == "postgres" {
        v.env_name(s, "url_env", "$.storage", "STORAGE_URL_ENV_REQUIRED", true);
        if s.contains_key("sqlite_path") {
            v.err(
                "$.storage.sqlite_path",
                "STORAGE_SQLITE_PATH_WITH_POSTGRES",
                "sqlite_path is for a SQLite ledger; a postgres ledger takes url_env and schema.",
            );
        }
        if let Some(schema) = s.get("schema")
            && !schema
                .as_str()
                .is_some_and(crate::ledger::valid_schema_name)
        {
            v.err(
                "$.storage.schema",
                "INVALID_STORAGE_SCHEMA",
                "storage.schema must be lower-case letters, digits and _ (not starting with a digit, at most 63).",
            );
        }
        return;
    }
    for key in ["url_env", "schema"] {
        if s.contains_key(key) {
            v.err(
                format!("$.storage.{key}"),
                "STORAGE_FIELD_NEEDS_POSTGRES",
                format!("storage.{key} is for a PostgreSQL ledger; add \"engine\": \"postgres\"."),
            );
        }
    }
    if let Some(p) = s.get("sqlite_path")
        && p.as_str().map(|x| x.trim().is_empty()).unwrap_or(true)
    {
        v.err(
            "$.storage.sqlite_path",
            "INVALID_SQLITE_PATH",
            "sqlite_path must be a non-empty string.",
        );
    }
}

/// Validate a parsed config. `ok` is true when there are no errors; warnings never block.
pub fn validate_value(config: &Value) -> ValidationReport {
    let Some(root) = config.as_object() else {
        return ValidationReport {
            ok: false,
            errors: vec![ConfigIssue {
                path: "$".into(),
                code: "CONFIG_NOT_OBJECT".into(),
                message: "Config must be a JSON object.".into(),
            }],
            warnings: vec![],
        };
    };
    let mut v = Validator {
        strict: root.get("strict") != Some(&Value::Bool(false)),
        errors: vec![],
        warnings: vec![],
    };

    v.unknown_keys(
        root,
        "$",
        &[
            "$schema",
            "version",
            "mode",
            "result_format",
            "strict",
            "storage",
            "sources",
            "trusted_context",
            "contexts",
            "executors",
            "capabilities",
            "cloud",
        ],
    );
    if root.get("version") != Some(&Value::from(1)) {
        v.err(
            "$.version",
            "UNSUPPORTED_CONFIG_VERSION",
            "version must be the number 1.",
        );
    }
    if let Some(rf) = root.get("result_format")
        && rf != &Value::from(1)
        && rf != &Value::from(2)
    {
        v.err(
            "$.result_format",
            "INVALID_RESULT_FORMAT",
            "result_format must be 1 or 2.",
        );
    }
    let mode = root.get("mode").and_then(Value::as_str).unwrap_or("");
    if !["read_only", "shadow", "review", "cloud"].contains(&mode) {
        v.err(
            "$.mode",
            "INVALID_MODE",
            "mode must be read_only, shadow, review, or cloud.",
        );
    }
    let is_cloud = mode == "cloud";

    if let Some(storage) = root.get("storage") {
        match storage.as_object() {
            None => v.err(
                "$.storage",
                "STORAGE_NOT_OBJECT",
                "storage must be an object.",
            ),
            Some(s) => validate_storage(&mut v, s),
        }
    }
    if root.contains_key("cloud") && !is_cloud {
        v.err(
            "$.cloud",
            "CLOUD_CONFIG_ONLY_FOR_CLOUD_MODE",
            "cloud is only allowed in cloud mode.",
        );
    }
    if is_cloud {
        validate_cloud(&mut v, root.get("cloud"));
    }

    // Sources.
    let mut source_names: HashSet<String> = HashSet::new();
    let mut source_engine: std::collections::HashMap<String, String> = Default::default();
    match root.get("sources") {
        None if is_cloud => {}
        Some(Value::Object(sources)) if !sources.is_empty() => {
            for (name, src) in sources {
                let path = format!("$.sources.{name}");
                if !is_safe_identifier(name) {
                    v.err(
                        &path,
                        "UNSAFE_SOURCE_NAME",
                        "Source names must be safe identifiers (letters, digits, _).",
                    );
                }
                source_names.insert(name.clone());
                let Some(s) = src.as_object() else {
                    v.err(&path, "SOURCE_NOT_OBJECT", "Source must be an object.");
                    continue;
                };
                validate_source(&mut v, s, &path);
                if let Some(e) = s.get("engine").and_then(Value::as_str) {
                    source_engine.insert(name.clone(), e.to_string());
                }
            }
        }
        _ => v.err(
            "$.sources",
            "SOURCES_REQUIRED",
            "sources must be an object with at least one source.",
        ),
    }

    // Contexts.
    let mut context_names: HashSet<String> = HashSet::new();
    let contexts_ok = match root.get("contexts") {
        None => false,
        Some(Value::Object(ctxs)) if !ctxs.is_empty() => {
            for (name, ctx) in ctxs {
                let path = format!("$.contexts.{name}");
                if !SAFE_NAME.is_match(name) {
                    v.err(
                        &path,
                        "INVALID_CONTEXT_NAME",
                        "Context names must be safe names.",
                    );
                }
                context_names.insert(name.clone());
                validate_context(&mut v, ctx, &path);
            }
            true
        }
        Some(_) => {
            v.err(
                "$.contexts",
                "CONTEXTS_NOT_OBJECT",
                "contexts must be a non-empty object.",
            );
            false
        }
    };
    let caps = root.get("capabilities").and_then(Value::as_array);
    match root.get("trusted_context") {
        Some(ctx) => validate_context(&mut v, ctx, "$.trusted_context"),
        None => {
            let every_cap_has_context = contexts_ok
                && caps
                    .map(|cs| {
                        cs.iter().all(|c| {
                            c.get("context")
                                .and_then(Value::as_str)
                                .map(|s| !s.is_empty())
                                .unwrap_or(false)
                        })
                    })
                    .unwrap_or(false);
            if !is_cloud && !every_cap_has_context {
                v.err(
                    "$.trusted_context",
                    "TRUSTED_CONTEXT_REQUIRED",
                    "trusted_context is required unless every capability names a context.",
                );
            }
        }
    }

    // Executors.
    let mut executor_types: std::collections::HashMap<String, String> = Default::default();
    match root.get("executors") {
        None => {}
        Some(Value::Object(execs)) if !execs.is_empty() => {
            for (name, ex) in execs {
                let path = format!("$.executors.{name}");
                if !SAFE_NAME.is_match(name) {
                    v.err(
                        &path,
                        "INVALID_EXECUTOR_NAME",
                        "Executor names must be safe names.",
                    );
                }
                if let Some(t) = validate_executor(&mut v, ex, &path, mode) {
                    executor_types.insert(name.clone(), t);
                }
            }
        }
        Some(_) => v.err(
            "$.executors",
            "EXECUTORS_NOT_OBJECT",
            "executors must be a non-empty object.",
        ),
    }

    // Capabilities.
    match caps {
        None if is_cloud && root.get("capabilities").is_none() => {}
        Some(cs) if !cs.is_empty() => {
            let mut seen: HashSet<String> = HashSet::new();
            for (i, cap) in cs.iter().enumerate() {
                let path = format!("$.capabilities[{i}]");
                let Some(c) = cap.as_object() else {
                    v.err(
                        &path,
                        "CAPABILITY_NOT_OBJECT",
                        "Capability must be an object.",
                    );
                    continue;
                };
                if let Some(name) = c.get("name").and_then(Value::as_str)
                    && !seen.insert(name.to_string())
                {
                    v.err(
                        format!("{path}.name"),
                        "DUPLICATE_CAPABILITY_NAME",
                        format!("Capability name {name} is declared more than once."),
                    );
                }
                validate_capability(
                    &mut v,
                    c,
                    &path,
                    &source_names,
                    &context_names,
                    &executor_types,
                    &source_engine,
                );
            }
            if mode == "review" {
                writeback_readiness(&mut v, cs, root.get("sources"));
            }
        }
        _ => v.err(
            "$.capabilities",
            "CAPABILITIES_REQUIRED",
            "capabilities must be a non-empty array.",
        ),
    }

    forbidden_key_scan(&mut v, config, "$");
    ValidationReport {
        ok: v.errors.is_empty(),
        errors: v.errors,
        warnings: v.warnings,
    }
}

fn validate_cloud(v: &mut Validator, cloud: Option<&Value>) {
    let Some(c) = cloud.and_then(Value::as_object) else {
        v.err(
            "$.cloud",
            "CLOUD_CONFIG_REQUIRED",
            "cloud mode requires a cloud object.",
        );
        return;
    };
    v.unknown_keys(
        c,
        "$.cloud",
        &[
            "base_url_env",
            "runner_token_env",
            "runner_id",
            "runner_version",
            "project_id",
            "adapter_id",
            "source_id",
            "engines",
            "capabilities",
            "session",
        ],
    );
    v.env_name(
        c,
        "base_url_env",
        "$.cloud",
        "CLOUD_BASE_URL_ENV_REQUIRED",
        true,
    );
    v.env_name(
        c,
        "runner_token_env",
        "$.cloud",
        "CLOUD_RUNNER_TOKEN_ENV_REQUIRED",
        true,
    );
    if c.get("adapter_id")
        .and_then(Value::as_str)
        .map(|s| s.trim().is_empty())
        .unwrap_or(true)
    {
        v.err(
            "$.cloud.adapter_id",
            "CLOUD_ADAPTER_ID_REQUIRED",
            "cloud.adapter_id is required.",
        );
    }
    for (key, code) in [
        ("source_id", "INVALID_CLOUD_SOURCE_ID"),
        ("runner_id", "INVALID_CLOUD_RUNNER_ID"),
        ("runner_version", "INVALID_CLOUD_RUNNER_VERSION"),
        ("project_id", "INVALID_CLOUD_PROJECT_ID"),
    ] {
        if let Some(x) = c.get(key)
            && x.as_str().map(|s| s.trim().is_empty()).unwrap_or(true)
        {
            v.err(
                format!("$.cloud.{key}"),
                code,
                format!("cloud.{key} must be a non-empty string."),
            );
        }
    }
    if let Some(e) = c.get("engines") {
        let ok = e
            .as_array()
            .map(|a| {
                !a.is_empty()
                    && a.iter()
                        .all(|x| matches!(x.as_str(), Some("postgres" | "mysql")))
            })
            .unwrap_or(false);
        if !ok {
            v.err(
                "$.cloud.engines",
                "INVALID_CLOUD_ENGINES",
                "cloud.engines must be a non-empty array of postgres or mysql.",
            );
        }
    }
    if let Some(e) = c.get("capabilities") {
        let ok = e
            .as_array()
            .map(|a| {
                !a.is_empty()
                    && a.iter()
                        .all(|x| x.as_str().map(|s| !s.is_empty()).unwrap_or(false))
            })
            .unwrap_or(false);
        if !ok {
            v.err(
                "$.cloud.capabilities",
                "INVALID_CLOUD_CAPABILITIES",
                "cloud.capabilities must be a non-empty array of names.",
            );
        }
    }
    if let Some(s) = c.get("session")
        && !s.is_object()
    {
        v.err(
            "$.cloud.session",
            "INVALID_CLOUD_SESSION",
            "cloud.session must be an object.",
        );
    }
}

fn validate_source(v: &mut Validator, s: &Map<String, Value>, path: &str) {
    v.unknown_keys(
        s,
        path,
        &[
            "engine",
            "read_url_env",
            "write_url_env",
            "read_only",
            "statement_timeout_ms",
            "ssl",
            "path",
        ],
    );
    let engine = s.get("engine").and_then(Value::as_str);
    match engine {
        Some("postgres" | "mysql") => {
            v.env_name(s, "read_url_env", path, "READ_URL_ENV_REQUIRED", true);
            if s.contains_key("path") {
                v.err(
                    format!("{path}.path"),
                    "SOURCE_PATH_ONLY_FOR_SQLITE",
                    "path is only used by sqlite sources; use read_url_env.",
                );
            }
        }
        Some("sqlite") => {
            if s.get("path")
                .and_then(Value::as_str)
                .map(|p| p.trim().is_empty())
                .unwrap_or(true)
            {
                v.err(
                    format!("{path}.path"),
                    "SQLITE_PATH_REQUIRED",
                    "sqlite sources need a non-empty path to the database file.",
                );
            }
            v.env_name(s, "read_url_env", path, "READ_URL_ENV_REQUIRED", false);
        }
        _ => v.err(
            format!("{path}.engine"),
            "INVALID_SOURCE_ENGINE",
            "engine must be postgres, mysql, or sqlite.",
        ),
    }
    v.env_name(s, "write_url_env", path, "INVALID_WRITE_URL_ENV", false);
    if let Some(r) = s.get("read_only")
        && !r.is_boolean()
    {
        v.err(
            format!("{path}.read_only"),
            "INVALID_SOURCE_READ_ONLY",
            "read_only must be a boolean.",
        );
    }
    bounded(
        v,
        s,
        "statement_timeout_ms",
        path,
        "INVALID_TIMEOUT",
        MAX_TIMEOUT_MS,
    );
}

fn validate_context(v: &mut Validator, ctx: &Value, path: &str) {
    let Some(c) = ctx.as_object() else {
        v.err(
            path,
            "TRUSTED_CONTEXT_NOT_OBJECT",
            "Trusted context must be an object.",
        );
        return;
    };
    v.unknown_keys(c, path, &["provider", "values"]);
    let provider = c.get("provider").and_then(Value::as_str).unwrap_or("");
    if ![
        "environment",
        "static_dev",
        "host",
        "http_claims",
        "cloud_session",
    ]
    .contains(&provider)
    {
        v.err(
            format!("{path}.provider"),
            "INVALID_CONTEXT_PROVIDER",
            "provider must be environment, static_dev, host, http_claims, or cloud_session.",
        );
    }
    if provider == "static_dev" {
        v.warn(
            path,
            "STATIC_DEV_CONTEXT",
            "static_dev trusted context is for local demos only.",
        );
    }
    if let Some(values) = c.get("values") {
        match values.as_object() {
            None => v.err(
                format!("{path}.values"),
                "TRUSTED_CONTEXT_VALUES_NOT_OBJECT",
                "values must be an object.",
            ),
            Some(vals) => {
                for key in ["tenant_id_env", "principal_env"] {
                    v.env_name(
                        vals,
                        key,
                        &format!("{path}.values"),
                        "INVALID_CONTEXT_ENV",
                        false,
                    );
                }
            }
        }
    }
}

fn validate_executor(v: &mut Validator, ex: &Value, path: &str, mode: &str) -> Option<String> {
    let Some(e) = ex.as_object() else {
        v.err(path, "EXECUTOR_NOT_OBJECT", "Executor must be an object.");
        return None;
    };
    let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "sql_update" => v.unknown_keys(e, path, &["type"]),
        "http_handler" => {
            v.unknown_keys(
                e,
                path,
                &[
                    "type",
                    "url_env",
                    "method",
                    "auth",
                    "signing_secret_env",
                    "timeout_ms",
                    "max_response_bytes",
                ],
            );
            v.env_name(e, "url_env", path, "HANDLER_URL_ENV_REQUIRED", true);
            if let Some(m) = e.get("method")
                && !matches!(m.as_str(), Some("POST" | "PUT" | "PATCH"))
            {
                v.err(
                    format!("{path}.method"),
                    "INVALID_HANDLER_METHOD",
                    "method must be POST, PUT, or PATCH.",
                );
            }
            if let Some(auth) = e.get("auth") {
                match auth.as_object() {
                    None => v.err(
                        format!("{path}.auth"),
                        "EXECUTOR_AUTH_NOT_OBJECT",
                        "auth must be an object.",
                    ),
                    Some(a) => {
                        let ap = format!("{path}.auth");
                        v.unknown_keys(a, &ap, &["type", "token_env"]);
                        if a.get("type").and_then(Value::as_str) != Some("bearer_env") {
                            v.err(
                                format!("{ap}.type"),
                                "INVALID_EXECUTOR_AUTH",
                                "Only bearer_env executor auth is supported.",
                            );
                        }
                        v.env_name(a, "token_env", &ap, "EXECUTOR_TOKEN_ENV_REQUIRED", true);
                    }
                }
            }
            v.env_name(
                e,
                "signing_secret_env",
                path,
                "HANDLER_SIGNING_SECRET_ENV_INVALID",
                false,
            );
            timeout(v, e, path);
            response_cap(v, e, path);
        }
        "command_handler" => {
            v.unknown_keys(
                e,
                path,
                &["type", "command_env", "timeout_ms", "max_response_bytes"],
            );
            v.env_name(e, "command_env", path, "COMMAND_ENV_REQUIRED", true);
            timeout(v, e, path);
            response_cap(v, e, path);
        }
        "in_process" => {
            v.unknown_keys(e, path, &["type", "timeout_ms"]);
            timeout(v, e, path);
        }
        _ => {
            v.err(
                format!("{path}.type"),
                "INVALID_EXECUTOR_TYPE",
                "type must be sql_update, http_handler, command_handler, or in_process.",
            );
            return None;
        }
    }
    if mode == "read_only" && kind != "sql_update" {
        v.err(
            path,
            "EXECUTOR_INVALID_IN_READ_ONLY",
            "App-owned executors are not allowed in read_only mode.",
        );
    }
    Some(kind.to_string())
}

/// The longest timeout any setting accepts: 24 hours.
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// The largest handler answer `max_response_bytes` may allow: 64 MiB.
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// `key`, when present, must be an integer in `1..=max`.
fn bounded(
    v: &mut Validator,
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    code: &str,
    max: u64,
) {
    if let Some(t) = obj.get(key)
        && !t.as_u64().is_some_and(|n| n > 0 && n <= max)
    {
        v.err(
            format!("{path}.{key}"),
            code,
            format!("{key} must be a positive integer of at most {max}."),
        );
    }
}

fn timeout(v: &mut Validator, e: &Map<String, Value>, path: &str) {
    bounded(
        v,
        e,
        "timeout_ms",
        path,
        "INVALID_HANDLER_TIMEOUT",
        MAX_TIMEOUT_MS,
    );
}

fn response_cap(v: &mut Validator, e: &Map<String, Value>, path: &str) {
    bounded(
        v,
        e,
        "max_response_bytes",
        path,
        "INVALID_MAX_RESPONSE_BYTES",
        MAX_RESPONSE_BYTES,
    );
}

fn nonempty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

#[allow(clippy::too_many_arguments)]
fn validate_capability(
    v: &mut Validator,
    c: &Map<String, Value>,
    path: &str,
    sources: &HashSet<String>,
    contexts: &HashSet<String>,
    executors: &std::collections::HashMap<String, String>,
    _engines: &std::collections::HashMap<String, String>,
) {
    v.unknown_keys(
        c,
        path,
        &[
            "name",
            "kind",
            "description",
            "returns_hint",
            "source",
            "context",
            "executor",
            "target",
            "args",
            "lookup",
            "visible_columns",
            "evidence",
            "max_rows",
            "single_tenant_dev_ack",
            "patch",
            "allowed_columns",
            "numeric_bounds",
            "transition_guards",
            "conflict_guard",
            "approval",
        ],
    );
    let name_ok = c
        .get("name")
        .and_then(Value::as_str)
        .map(|n| CAPABILITY_NAME.is_match(n))
        .unwrap_or(false);
    if !name_ok {
        v.err(
            format!("{path}.name"),
            "INVALID_CAPABILITY_NAME",
            "Capability name must be namespace.name.",
        );
    }
    let kind = c.get("kind").and_then(Value::as_str).unwrap_or("");
    if !["read", "proposal"].contains(&kind) {
        v.err(
            format!("{path}.kind"),
            "INVALID_CAPABILITY_KIND",
            "kind must be read or proposal.",
        );
    }
    for (key, code) in [
        ("description", "INVALID_CAPABILITY_DESCRIPTION"),
        ("returns_hint", "INVALID_RETURNS_HINT"),
    ] {
        if c.contains_key(key) && nonempty_str(c.get(key)).is_none() {
            v.err(
                format!("{path}.{key}"),
                code,
                format!("{key} must be a non-empty string."),
            );
        }
    }
    match c.get("source").and_then(Value::as_str) {
        Some(s) if sources.contains(s) => {}
        _ => v.err(
            format!("{path}.source"),
            "UNKNOWN_SOURCE",
            "source must name a configured source.",
        ),
    }
    if let Some(ctx) = c.get("context") {
        match ctx.as_str() {
            Some(name) if contexts.contains(name) => {}
            _ => v.err(
                format!("{path}.context"),
                "UNKNOWN_CONTEXT",
                "context must name a configured context.",
            ),
        }
    }
    if let Some(ex) = c.get("executor") {
        match ex.as_str() {
            Some(s) if s.trim().is_empty() => v.err(
                format!("{path}.executor"),
                "INVALID_EXECUTOR_REFERENCE",
                "executor must be a non-empty string.",
            ),
            Some("sql_update") => {}
            Some(name) if executors.contains_key(name) => {}
            Some(_) => v.err(
                format!("{path}.executor"),
                "UNKNOWN_EXECUTOR",
                "executor must be sql_update or a configured executor.",
            ),
            None => v.err(
                format!("{path}.executor"),
                "INVALID_EXECUTOR_REFERENCE",
                "executor must be a non-empty string.",
            ),
        }
    }

    // Target.
    let mut pk: Option<String> = None;
    let mut tenant: Option<String> = None;
    match c.get("target").and_then(Value::as_object) {
        None => v.err(
            format!("{path}.target"),
            "TARGET_REQUIRED",
            "target must be an object.",
        ),
        Some(t) => {
            let tp = format!("{path}.target");
            v.unknown_keys(
                t,
                &tp,
                &[
                    "schema",
                    "table",
                    "primary_key",
                    "tenant_key",
                    "single_tenant_dev",
                ],
            );
            for key in ["schema", "table", "primary_key"] {
                if !t
                    .get(key)
                    .and_then(Value::as_str)
                    .map(is_safe_identifier)
                    .unwrap_or(false)
                {
                    v.err(
                        format!("{tp}.{key}"),
                        "INVALID_TARGET_IDENTIFIER",
                        format!("{key} must be a fixed safe identifier."),
                    );
                }
            }
            pk = t
                .get("primary_key")
                .and_then(Value::as_str)
                .map(String::from);
            let single = t.get("single_tenant_dev") == Some(&Value::Bool(true));
            let tk_ok = t
                .get("tenant_key")
                .and_then(Value::as_str)
                .map(is_safe_identifier)
                .unwrap_or(false);
            if tk_ok {
                tenant = t
                    .get("tenant_key")
                    .and_then(Value::as_str)
                    .map(String::from);
            } else if t.contains_key("tenant_key") {
                v.err(
                    format!("{tp}.tenant_key"),
                    "INVALID_TARGET_IDENTIFIER",
                    "tenant_key must be a fixed safe identifier.",
                );
            } else if !single {
                v.err(
                    format!("{tp}.tenant_key"),
                    "TENANT_GUARD_REQUIRED",
                    "A tenant_key is required unless single_tenant_dev is true.",
                );
            }
            // `single_tenant_dev_ack: true` on the capability acknowledges the exception, which
            // then is not warned about; an acknowledgement with nothing to acknowledge is refused.
            let ack = c.get("single_tenant_dev_ack");
            if single && ack != Some(&Value::Bool(true)) {
                v.warn(
                    format!("{tp}.single_tenant_dev"),
                    "SINGLE_TENANT_DEV_EXCEPTION",
                    "single_tenant_dev disables the tenant guard; use only for local development (single_tenant_dev_ack: true on the capability acknowledges it).",
                );
            }
            match ack {
                None | Some(Value::Bool(false)) => {}
                Some(Value::Bool(true)) if single => {}
                Some(Value::Bool(true)) => v.err(
                    format!("{path}.single_tenant_dev_ack"),
                    "SINGLE_TENANT_DEV_ACK_UNUSED",
                    "single_tenant_dev_ack acknowledges target.single_tenant_dev: true, which this capability does not set; remove it.",
                ),
                Some(_) => v.err(
                    format!("{path}.single_tenant_dev_ack"),
                    "INVALID_SINGLE_TENANT_DEV_ACK",
                    "single_tenant_dev_ack must be a boolean.",
                ),
            }
        }
    }

    // Args.
    let mut arg_names: HashSet<String> = HashSet::new();
    match c.get("args").and_then(Value::as_object) {
        Some(args) if !args.is_empty() => {
            for (name, spec) in args {
                let ap = format!("{path}.args.{name}");
                arg_names.insert(name.clone());
                if is_reserved_arg_name(name) {
                    v.err(&ap, "MODEL_CONTROLLED_RESERVED_ARG", format!("{name} is trusted context or a dynamic identifier and cannot be a model argument."));
                }
                validate_arg(v, spec, &ap);
            }
        }
        _ => v.err(
            format!("{path}.args"),
            "ARGS_REQUIRED",
            "args must be a non-empty object.",
        ),
    }

    match c.get("lookup").and_then(Value::as_object) {
        None => v.err(
            format!("{path}.lookup"),
            "LOOKUP_REQUIRED",
            "lookup must be an object.",
        ),
        Some(l) => {
            let lp = format!("{path}.lookup");
            v.unknown_keys(l, &lp, &["id_from_arg"]);
            match nonempty_str(l.get("id_from_arg")) {
                None => v.err(
                    format!("{lp}.id_from_arg"),
                    "LOOKUP_ARG_REQUIRED",
                    "lookup.id_from_arg must name an argument.",
                ),
                Some(a)
                    if !arg_names.contains(a)
                        && c.get("args").map(Value::is_object).unwrap_or(false) =>
                {
                    v.err(
                        format!("{lp}.id_from_arg"),
                        "LOOKUP_ARG_UNDECLARED",
                        format!("lookup.id_from_arg {a} is not a declared argument."),
                    )
                }
                Some(_) => {}
            }
        }
    }

    let mut readable: HashSet<String> = HashSet::new();
    match c.get("visible_columns").and_then(Value::as_array) {
        Some(cols) if !cols.is_empty() => {
            for (j, col) in cols.iter().enumerate() {
                match col.as_str() {
                    Some(s) if is_safe_identifier(s) => {
                        readable.insert(s.to_string());
                    }
                    _ => v.err(
                        format!("{path}.visible_columns[{j}]"),
                        "INVALID_VISIBLE_COLUMN",
                        "visible column must be a safe identifier.",
                    ),
                }
            }
        }
        _ => v.err(
            format!("{path}.visible_columns"),
            "VISIBLE_COLUMNS_REQUIRED",
            "visible_columns must be a non-empty array.",
        ),
    }
    bounded(v, c, "max_rows", path, "INVALID_MAX_ROWS", 10_000);
    // Evidence is recorded for every read: `required` says so; `optional` would promise a
    // choice the runner does not offer, so it is refused rather than ignored.
    match c.get("evidence").map(Value::as_str) {
        None | Some(Some("required")) => {}
        Some(Some("optional")) => v.err(
            format!("{path}.evidence"),
            "EVIDENCE_ALWAYS_RECORDED",
            "evidence is recorded for every read; set evidence to required or remove it.",
        ),
        Some(_) => v.err(
            format!("{path}.evidence"),
            "INVALID_EVIDENCE",
            "evidence must be required.",
        ),
    }
    if kind == "proposal" {
        readable.extend(pk.iter().cloned());
        readable.extend(tenant.iter().cloned());
        validate_proposal(
            v,
            c,
            path,
            &arg_names,
            &readable,
            pk.as_deref(),
            tenant.as_deref(),
        );
    }
}

fn validate_arg(v: &mut Validator, spec: &Value, ap: &str) {
    let Some(a) = spec.as_object() else {
        v.err(
            ap,
            "ARG_NOT_OBJECT",
            "Argument definition must be an object.",
        );
        return;
    };
    v.unknown_keys(
        a,
        ap,
        &[
            "type",
            "description",
            "required",
            "max_length",
            "minimum",
            "maximum",
            "enum",
            "nullable",
        ],
    );
    let t = a.get("type").and_then(Value::as_str).unwrap_or("");
    if !["string", "number", "integer", "boolean"].contains(&t) {
        v.err(
            format!("{ap}.type"),
            "INVALID_ARG_TYPE",
            "type must be string, number, integer, or boolean.",
        );
    }
    if let Some(n) = a.get("nullable")
        && !n.is_boolean()
    {
        v.err(
            format!("{ap}.nullable"),
            "INVALID_ARG_NULLABLE",
            "nullable must be a boolean.",
        );
    }
    if a.contains_key("description") && nonempty_str(a.get("description")).is_none() {
        v.err(
            format!("{ap}.description"),
            "INVALID_ARG_DESCRIPTION",
            "description must be a non-empty string.",
        );
    }
    if let Some(r) = a.get("required")
        && !r.is_boolean()
    {
        v.err(
            format!("{ap}.required"),
            "INVALID_ARG_REQUIRED",
            "required must be a boolean.",
        );
    }
    bounded(v, a, "max_length", ap, "INVALID_MAX_LENGTH", 1_000_000);
    let min = a.get("minimum");
    let max = a.get("maximum");
    if (min.is_some() || max.is_some()) && t != "number" && t != "integer" {
        v.err(
            ap,
            "NUMERIC_BOUNDS_REQUIRE_NUMBER",
            "minimum and maximum need a number argument.",
        );
    }
    numeric_range(v, min, max, ap);
    if let Some(e) = a.get("enum") {
        let ok = e
            .as_array()
            .map(|xs| {
                !xs.is_empty()
                    && xs
                        .iter()
                        .all(|x| !x.is_object() && !x.is_array() && !x.is_null())
            })
            .unwrap_or(false);
        if !ok {
            v.err(
                format!("{ap}.enum"),
                "INVALID_ARG_ENUM",
                "enum must be a non-empty array of strings, numbers, or booleans.",
            );
        }
    }
}

fn numeric_range(v: &mut Validator, min: Option<&Value>, max: Option<&Value>, p: &str) {
    if let Some(m) = min
        && !m.is_number()
    {
        v.err(
            format!("{p}.minimum"),
            "INVALID_MINIMUM",
            "minimum must be a finite number.",
        );
    }
    if let Some(m) = max
        && !m.is_number()
    {
        v.err(
            format!("{p}.maximum"),
            "INVALID_MAXIMUM",
            "maximum must be a finite number.",
        );
    }
    if let (Some(a), Some(b)) = (min.and_then(Value::as_f64), max.and_then(Value::as_f64))
        && a > b
    {
        v.err(
            p,
            "INVALID_NUMERIC_RANGE",
            "minimum must not exceed maximum.",
        );
    }
}

fn validate_proposal(
    v: &mut Validator,
    c: &Map<String, Value>,
    path: &str,
    arg_names: &HashSet<String>,
    readable: &HashSet<String>,
    pk: Option<&str>,
    tenant: Option<&str>,
) {
    let mut patch_cols: Vec<String> = Vec::new();
    match c.get("patch").and_then(Value::as_object) {
        Some(patch) if !patch.is_empty() => {
            for (col, binding) in patch {
                let pp = format!("{path}.patch.{col}");
                if !is_safe_identifier(col) {
                    v.err(
                        &pp,
                        "INVALID_PATCH_COLUMN",
                        "patch column must be a safe identifier.",
                    );
                } else {
                    patch_cols.push(col.clone());
                }
                let Some(b) = binding.as_object() else {
                    v.err(
                        &pp,
                        "PATCH_BINDING_NOT_OBJECT",
                        "patch binding must be an object.",
                    );
                    continue;
                };
                v.unknown_keys(b, &pp, &["fixed", "from_arg"]);
                match (b.contains_key("fixed"), b.get("from_arg")) {
                    (true, None) => {
                        if b["fixed"].is_object() || b["fixed"].is_array() {
                            v.err(
                                format!("{pp}.fixed"),
                                "INVALID_PATCH_BINDING",
                                "fixed must be a scalar value.",
                            );
                        }
                    }
                    (false, Some(a)) => match a.as_str().filter(|s| !s.is_empty()) {
                        None => v.err(
                            format!("{pp}.from_arg"),
                            "INVALID_PATCH_ARG",
                            "from_arg must name an argument.",
                        ),
                        Some(a) if !arg_names.contains(a) => v.err(
                            format!("{pp}.from_arg"),
                            "PATCH_ARG_UNDECLARED",
                            format!("from_arg {a} is not a declared argument."),
                        ),
                        Some(_) => {}
                    },
                    _ => v.err(
                        &pp,
                        "INVALID_PATCH_BINDING",
                        "patch binding needs exactly one of fixed or from_arg.",
                    ),
                }
            }
        }
        _ => v.err(
            format!("{path}.patch"),
            "PATCH_REQUIRED",
            "Proposal capabilities must declare a fixed patch mapping.",
        ),
    }

    let mut allowed: Vec<String> = Vec::new();
    match c.get("allowed_columns").and_then(Value::as_array) {
        Some(cols) if !cols.is_empty() => {
            for (j, col) in cols.iter().enumerate() {
                let ap = format!("{path}.allowed_columns[{j}]");
                match col.as_str() {
                    Some(s) if is_safe_identifier(s) => {
                        if Some(s) == pk {
                            v.err(
                                &ap,
                                "PRIMARY_KEY_IN_ALLOWED_COLUMNS",
                                "The primary key must not be patch-allowlisted.",
                            );
                        }
                        if Some(s) == tenant {
                            v.err(
                                &ap,
                                "TENANT_KEY_IN_ALLOWED_COLUMNS",
                                "The tenant key must not be patch-allowlisted.",
                            );
                        }
                        allowed.push(s.to_string());
                    }
                    _ => v.err(
                        &ap,
                        "INVALID_ALLOWED_COLUMN",
                        "allowed column must be a safe identifier.",
                    ),
                }
            }
            for col in &patch_cols {
                if !allowed.contains(col) {
                    v.err(
                        format!("{path}.patch.{col}"),
                        "PATCH_COLUMN_NOT_ALLOWED",
                        format!("patch column {col} is not in allowed_columns."),
                    );
                }
            }
        }
        _ => v.err(
            format!("{path}.allowed_columns"),
            "ALLOWED_COLUMNS_REQUIRED",
            "Proposal capabilities must declare allowed_columns.",
        ),
    }

    if let Some(nb) = c.get("numeric_bounds") {
        match nb.as_object() {
            None => v.err(
                format!("{path}.numeric_bounds"),
                "NUMERIC_BOUNDS_NOT_OBJECT",
                "numeric_bounds must be an object.",
            ),
            Some(bounds) => {
                for (col, bound) in bounds {
                    let bp = format!("{path}.numeric_bounds.{col}");
                    if !is_safe_identifier(col) {
                        v.err(
                            &bp,
                            "INVALID_NUMERIC_BOUND_COLUMN",
                            "numeric bound column must be a safe identifier.",
                        );
                    } else if !patch_cols.contains(col) {
                        v.err(
                            &bp,
                            "NUMERIC_BOUND_PATCH_COLUMN_REQUIRED",
                            "numeric bound column must be a patch column.",
                        );
                    }
                    let Some(b) = bound.as_object() else {
                        v.err(
                            &bp,
                            "NUMERIC_BOUND_NOT_OBJECT",
                            "numeric bound must be an object.",
                        );
                        continue;
                    };
                    v.unknown_keys(b, &bp, &["minimum", "maximum"]);
                    if !b.contains_key("minimum") && !b.contains_key("maximum") {
                        v.err(
                            &bp,
                            "NUMERIC_BOUND_EMPTY",
                            "numeric bound needs minimum or maximum.",
                        );
                    }
                    numeric_range(v, b.get("minimum"), b.get("maximum"), &bp);
                }
            }
        }
    }

    if let Some(tg) = c.get("transition_guards") {
        match tg.as_object() {
            None => v.err(
                format!("{path}.transition_guards"),
                "TRANSITION_GUARDS_NOT_OBJECT",
                "transition_guards must be an object.",
            ),
            Some(guards) => {
                let conflict_col = c
                    .get("conflict_guard")
                    .and_then(|g| g.get("column"))
                    .and_then(Value::as_str);
                for (col, guard) in guards {
                    let gp = format!("{path}.transition_guards.{col}");
                    if !is_safe_identifier(col) {
                        v.err(
                            &gp,
                            "INVALID_TRANSITION_GUARD_COLUMN",
                            "transition guard column must be a safe identifier.",
                        );
                    } else if !patch_cols.contains(col) {
                        v.err(
                            &gp,
                            "TRANSITION_PATCH_COLUMN_REQUIRED",
                            "transition guard column must be a patch column.",
                        );
                    }
                    let Some(g) = guard.as_object() else {
                        v.err(
                            &gp,
                            "TRANSITION_GUARD_NOT_OBJECT",
                            "transition guard must be an object.",
                        );
                        continue;
                    };
                    v.unknown_keys(g, &gp, &["from_column", "allowed"]);
                    if let Some(fc) = g.get("from_column") {
                        match fc.as_str() {
                            Some(s) if is_safe_identifier(s) => {
                                if !readable.contains(s) && Some(s) != conflict_col {
                                    v.err(
                                        format!("{gp}.from_column"),
                                        "TRANSITION_FROM_COLUMN_NOT_VISIBLE",
                                        "from_column must be read by the capability.",
                                    );
                                }
                            }
                            _ => v.err(
                                format!("{gp}.from_column"),
                                "INVALID_TRANSITION_FROM_COLUMN",
                                "from_column must be a safe identifier.",
                            ),
                        }
                    }
                    match g.get("allowed").and_then(Value::as_object) {
                        Some(allowed) if !allowed.is_empty() => {
                            for (from, tos) in allowed {
                                let fp = format!("{gp}.allowed.{from}");
                                if from.trim().is_empty() {
                                    v.err(
                                        &fp,
                                        "TRANSITION_FROM_REQUIRED",
                                        "transition source state must be non-empty.",
                                    );
                                }
                                let ok = tos
                                    .as_array()
                                    .map(|a| {
                                        !a.is_empty()
                                            && a.iter().all(|x| {
                                                x.as_str().map(|s| !s.is_empty()).unwrap_or(false)
                                            })
                                    })
                                    .unwrap_or(false);
                                if !ok {
                                    v.err(
                                        &fp,
                                        "TRANSITION_TO_VALUES_REQUIRED",
                                        "transition targets must be a non-empty array of states.",
                                    );
                                }
                            }
                        }
                        _ => v.err(
                            format!("{gp}.allowed"),
                            "TRANSITION_ALLOWED_REQUIRED",
                            "allowed must be a non-empty object.",
                        ),
                    }
                }
            }
        }
    }

    match c.get("conflict_guard").and_then(Value::as_object) {
        None => v.err(
            format!("{path}.conflict_guard"),
            "CONFLICT_GUARD_REQUIRED",
            "Proposal capabilities must declare a conflict_guard.",
        ),
        Some(g) => {
            let gp = format!("{path}.conflict_guard");
            v.unknown_keys(g, &gp, &["column", "weak_guard_ack", "advance"]);
            let column = g
                .get("column")
                .and_then(Value::as_str)
                .filter(|c| is_safe_identifier(c));
            let ack = g.get("weak_guard_ack") == Some(&Value::Bool(true));
            if column.is_none() && !ack {
                v.err(&gp, "CONFLICT_GUARD_COLUMN_REQUIRED", "conflict_guard needs a safe column, or weak_guard_ack: true for a row-hash guard.");
            }
            let advance = match g.get("advance") {
                None => Some(GuardAdvance::Auto),
                Some(a) => {
                    let parsed = serde_json::from_value::<GuardAdvance>(a.clone()).ok();
                    if parsed.is_none() {
                        v.err(
                            format!("{gp}.advance"),
                            "CONFLICT_GUARD_ADVANCE_INVALID",
                            "advance must be auto, timestamp, increment or application.",
                        );
                    }
                    parsed
                }
            };
            if let (Some(col), Some(GuardAdvance::Auto)) = (column, advance)
                && guess_advance(col).is_none()
            {
                v.err(
                    format!("{gp}.advance"),
                    "CONFLICT_GUARD_ADVANCE_UNKNOWN",
                    format!("the runner cannot tell how to advance {col} on every write: set advance to timestamp, increment, or application (a trigger or your executor advances it)."),
                );
            }
            if let Some(col) = column
                && let Some(cols) = c.get("allowed_columns").and_then(Value::as_array)
                && cols.iter().any(|x| x.as_str() == Some(col))
            {
                v.err(
                    format!("{path}.allowed_columns"),
                    "CONFLICT_COLUMN_PATCHABLE",
                    format!("{col} is the conflict guard column; the runner advances it and a patch may not set it."),
                );
            }
        }
    }

    if let Some(a) = c.get("approval") {
        match a.as_object() {
            None => v.err(
                format!("{path}.approval"),
                "APPROVAL_NOT_OBJECT",
                "approval must be an object.",
            ),
            Some(ap) => {
                let p = format!("{path}.approval");
                v.unknown_keys(ap, &p, &["mode", "required_role"]);
                if let Some(mode) = ap.get("mode").and_then(Value::as_str)
                    && !mode.trim().is_empty()
                    && !["human", "operator"].contains(&mode)
                {
                    v.err(
                        format!("{p}.mode"),
                        "APPROVAL_MODE_UNSUPPORTED",
                        format!("approval.mode {mode:?} is not supported: approval always happens outside the model, by a person or the host application (\"human\")."),
                    );
                }
                for key in ["mode", "required_role"] {
                    if ap.contains_key(key) && nonempty_str(ap.get(key)).is_none() {
                        v.err(
                            format!("{p}.{key}"),
                            "INVALID_APPROVAL_FIELD",
                            format!("approval.{key} must be a non-empty string."),
                        );
                    }
                }
            }
        }
    }
}

fn writeback_readiness(v: &mut Validator, caps: &[Value], sources: Option<&Value>) {
    for (i, cap) in caps.iter().enumerate() {
        if cap.get("kind").and_then(Value::as_str) != Some("proposal") {
            continue;
        }
        let Some(src_name) = cap.get("source").and_then(Value::as_str) else {
            continue;
        };
        let Some(src) = sources
            .and_then(|s| s.get(src_name))
            .and_then(Value::as_object)
        else {
            continue;
        };
        let executor = cap
            .get("executor")
            .and_then(Value::as_str)
            .unwrap_or("sql_update");
        if executor != "sql_update" {
            continue;
        }
        if src.get("read_only") == Some(&Value::Bool(true)) {
            v.err(
                format!("$.capabilities[{i}].executor"),
                "READ_ONLY_SOURCE_DIRECT_WRITEBACK",
                "A read_only source cannot take direct SQL writeback.",
            );
        } else if src.get("engine").and_then(Value::as_str) != Some("sqlite")
            && !src.contains_key("write_url_env")
        {
            v.warn(
                format!("$.sources.{src_name}.write_url_env"),
                "WRITEBACK_DISABLED",
                "No write_url_env: approved proposals cannot be applied by direct SQL writeback.",
            );
        }
    }
}

fn forbidden_key_scan(v: &mut Validator, value: &Value, path: &str) {
    match value {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{path}.{k}");
                if URL_KEYS.contains(&k.as_str()) {
                    v.err(
                        &p,
                        "INLINE_DATABASE_URL_FORBIDDEN",
                        "Database and handler URLs must come from *_env indirection, never inline.",
                    );
                }
                if SQL_KEYS.contains(&k.as_str()) {
                    v.err(
                        &p,
                        "ARBITRARY_SQL_FORBIDDEN",
                        "Config must not carry SQL; capabilities are fixed reads and patches.",
                    );
                }
                forbidden_key_scan(v, child, &p);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                forbidden_key_scan(v, child, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}
