//! Whole-file validation of the raw config JSON: the schema's structural pass
//! ([`super::structure`]), then the rules that span fields (references between sections, what a
//! proposal's patch, guards and bounds must agree on, mode rules, forbidden keys). Every problem
//! is collected, each with a JSON path and a stable code.

use super::ConfigIssue;
use super::model::{GuardAdvance, guess_advance};
use crate::values::is_safe_identifier;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// Result of validating a config value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ValidationReport {
    pub ok: bool,
    pub errors: Vec<ConfigIssue>,
    pub warnings: Vec<ConfigIssue>,
}

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

struct Report {
    errors: Vec<ConfigIssue>,
    warnings: Vec<ConfigIssue>,
}

impl Report {
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
}

/// Validate a parsed config. `ok` is true when there are no errors; warnings never block.
pub fn validate_value(config: &Value) -> ValidationReport {
    let strict = config.get("strict") != Some(&Value::Bool(false));
    let mut r = Report {
        errors: super::structure::check(config, strict),
        warnings: vec![],
    };
    if let Some(root) = config.as_object() {
        cross_field_rules(&mut r, root);
        forbidden_key_scan(&mut r, config, "$");
    }
    ValidationReport {
        ok: r.errors.is_empty(),
        errors: r.errors,
        warnings: r.warnings,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn cross_field_rules(r: &mut Report, root: &Map<String, Value>) {
    let mode = root.get("mode").and_then(Value::as_str).unwrap_or("");
    if root.contains_key("cloud") && mode != "cloud" {
        r.err(
            "$.cloud",
            "CLOUD_CONFIG_ONLY_FOR_CLOUD_MODE",
            "cloud is only allowed in cloud mode.",
        );
    }
    if let Some(Value::Object(storage)) = root.get("storage") {
        storage_rules(r, storage);
    }
    let object_keys = |key: &str| -> HashSet<&str> {
        root.get(key)
            .and_then(Value::as_object)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    };
    let sources = object_keys("sources");
    let contexts = object_keys("contexts");
    let executors: HashMap<&str, &str> = root
        .get("executors")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(name, e)| Some((name.as_str(), str_of(e, "type")?)))
                .collect()
        })
        .unwrap_or_default();
    for ctx in root
        .get("contexts")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.iter().map(|(n, c)| (format!("$.contexts.{n}"), c)))
        .chain(
            root.get("trusted_context")
                .map(|c| ("$.trusted_context".to_string(), c)),
        )
    {
        if str_of(ctx.1, "provider") == Some("static_dev") {
            r.warn(
                ctx.0,
                "STATIC_DEV_CONTEXT",
                "static_dev trusted context is for local demos only.",
            );
        }
    }
    if mode == "read_only" {
        for (name, kind) in &executors {
            if *kind != "sql_update" {
                r.err(
                    format!("$.executors.{name}"),
                    "EXECUTOR_INVALID_IN_READ_ONLY",
                    "App-owned executors are not allowed in read_only mode.",
                );
            }
        }
    }
    let Some(caps) = root.get("capabilities").and_then(Value::as_array) else {
        return;
    };
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, cap) in caps.iter().enumerate() {
        let Some(c) = cap.as_object() else { continue };
        let path = format!("$.capabilities[{i}]");
        if let Some(name) = str_of(cap, "name")
            && !seen.insert(name)
        {
            r.err(
                format!("{path}.name"),
                "DUPLICATE_CAPABILITY_NAME",
                format!("Capability name {name} is declared more than once."),
            );
        }
        capability_rules(r, c, &path, &sources, &contexts, &executors);
    }
    if mode == "review" {
        writeback_readiness(r, caps, root.get("sources"));
    }
}

/// `storage`: the fields of one engine only.
fn storage_rules(r: &mut Report, s: &Map<String, Value>) {
    match s.get("engine").and_then(Value::as_str) {
        Some("postgres") => {
            if s.contains_key("sqlite_path") {
                r.err(
                    "$.storage.sqlite_path",
                    "STORAGE_SQLITE_PATH_WITH_POSTGRES",
                    "sqlite_path is for a SQLite ledger; a postgres ledger takes url_env and schema.",
                );
            }
        }
        None | Some("sqlite") => {
            for key in ["url_env", "schema"] {
                if s.contains_key(key) {
                    r.err(
                        format!("$.storage.{key}"),
                        "STORAGE_FIELD_NEEDS_POSTGRES",
                        format!(
                            "storage.{key} is for a PostgreSQL ledger; add \"engine\": \"postgres\"."
                        ),
                    );
                }
            }
        }
        Some(_) => {}
    }
}

/// What a capability names must exist; its arguments, lookup and target must agree.
fn capability_rules(
    r: &mut Report,
    c: &Map<String, Value>,
    path: &str,
    sources: &HashSet<&str>,
    contexts: &HashSet<&str>,
    executors: &HashMap<&str, &str>,
) {
    if let Some(s) = c.get("source").and_then(Value::as_str)
        && !sources.contains(s)
    {
        r.err(
            format!("{path}.source"),
            "UNKNOWN_SOURCE",
            "source must name a configured source.",
        );
    }
    if let Some(name) = c.get("context").and_then(Value::as_str)
        && !contexts.contains(name)
    {
        r.err(
            format!("{path}.context"),
            "UNKNOWN_CONTEXT",
            "context must name a configured context.",
        );
    }
    if let Some(name) = c.get("executor").and_then(Value::as_str)
        && !name.trim().is_empty()
        && name != "sql_update"
        && !executors.contains_key(name)
    {
        r.err(
            format!("{path}.executor"),
            "UNKNOWN_EXECUTOR",
            "executor must be sql_update or a configured executor.",
        );
    }

    let target = c.get("target").and_then(Value::as_object);
    let target_str = |key: &str| {
        target
            .and_then(|t| t.get(key))
            .and_then(Value::as_str)
            .filter(|s| is_safe_identifier(s))
    };
    let (pk, tenant) = (target_str("primary_key"), target_str("tenant_key"));
    // `single_tenant_dev_ack: true` acknowledges the exception, which then is not warned about;
    // an acknowledgement with nothing to acknowledge is refused.
    let single = target.and_then(|t| t.get("single_tenant_dev")) == Some(&Value::Bool(true));
    let ack = c.get("single_tenant_dev_ack") == Some(&Value::Bool(true));
    if single && !ack {
        r.warn(
            format!("{path}.target.single_tenant_dev"),
            "SINGLE_TENANT_DEV_EXCEPTION",
            "single_tenant_dev disables the tenant guard; use only for local development (single_tenant_dev_ack: true on the capability acknowledges it).",
        );
    }
    if ack && !single {
        r.err(
            format!("{path}.single_tenant_dev_ack"),
            "SINGLE_TENANT_DEV_ACK_UNUSED",
            "single_tenant_dev_ack acknowledges target.single_tenant_dev: true, which this capability does not set; remove it.",
        );
    }

    let args = c.get("args").and_then(Value::as_object);
    let arg_names: HashSet<&str> = args
        .map(|a| a.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for (name, spec) in args.into_iter().flatten() {
        let ap = format!("{path}.args.{name}");
        if is_reserved_arg_name(name) {
            r.err(
                &ap,
                "MODEL_CONTROLLED_RESERVED_ARG",
                format!("{name} is trusted context or a dynamic identifier and cannot be a model argument."),
            );
        }
        if let Some(a) = spec.as_object() {
            let numeric = matches!(
                a.get("type").and_then(Value::as_str),
                Some("number" | "integer")
            );
            if (a.contains_key("minimum") || a.contains_key("maximum")) && !numeric {
                r.err(
                    &ap,
                    "NUMERIC_BOUNDS_REQUIRE_NUMBER",
                    "minimum and maximum need a number argument.",
                );
            }
            numeric_range(r, a, &ap);
        }
    }
    if let Some(a) = c
        .get("lookup")
        .and_then(|l| l.get("id_from_arg"))
        .and_then(Value::as_str)
        .filter(|a| !a.trim().is_empty())
        && args.is_some()
        && !arg_names.contains(a)
    {
        r.err(
            format!("{path}.lookup.id_from_arg"),
            "LOOKUP_ARG_UNDECLARED",
            format!("lookup.id_from_arg {a} is not a declared argument."),
        );
    }

    if c.get("kind").and_then(Value::as_str) == Some("proposal") {
        let mut readable: HashSet<&str> = c
            .get("visible_columns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|s| is_safe_identifier(s))
            .collect();
        readable.extend(pk);
        readable.extend(tenant);
        proposal_rules(r, c, path, &arg_names, &readable, pk, tenant);
    }
}

/// A minimum no larger than the maximum.
fn numeric_range(r: &mut Report, bound: &Map<String, Value>, p: &str) {
    let num = |k: &str| bound.get(k).and_then(Value::as_f64);
    if let (Some(a), Some(b)) = (num("minimum"), num("maximum"))
        && a > b
    {
        r.err(
            p,
            "INVALID_NUMERIC_RANGE",
            "minimum must not exceed maximum.",
        );
    }
}

/// A proposal's patch, allowed columns, bounds, transitions and conflict guard must agree.
fn proposal_rules(
    r: &mut Report,
    c: &Map<String, Value>,
    path: &str,
    arg_names: &HashSet<&str>,
    readable: &HashSet<&str>,
    pk: Option<&str>,
    tenant: Option<&str>,
) {
    let patch = c.get("patch").and_then(Value::as_object);
    let patch_cols: Vec<&str> = patch
        .into_iter()
        .flatten()
        .map(|(col, _)| col.as_str())
        .filter(|col| is_safe_identifier(col))
        .collect();
    for (col, binding) in patch.into_iter().flatten() {
        let pp = format!("{path}.patch.{col}");
        let Some(b) = binding.as_object() else {
            continue;
        };
        match (b.contains_key("fixed"), b.get("from_arg")) {
            (true, None) => {}
            (false, Some(a)) => {
                if let Some(a) = a.as_str().filter(|s| !s.is_empty())
                    && !arg_names.contains(a)
                {
                    r.err(
                        format!("{pp}.from_arg"),
                        "PATCH_ARG_UNDECLARED",
                        format!("from_arg {a} is not a declared argument."),
                    );
                }
            }
            _ => r.err(
                &pp,
                "INVALID_PATCH_BINDING",
                "patch binding needs exactly one of fixed or from_arg.",
            ),
        }
    }

    if let Some(cols) = c
        .get("allowed_columns")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        let allowed: Vec<&str> = cols
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| is_safe_identifier(s))
            .collect();
        for (j, col) in cols.iter().enumerate() {
            let ap = format!("{path}.allowed_columns[{j}]");
            let Some(s) = col.as_str().filter(|s| is_safe_identifier(s)) else {
                continue;
            };
            if Some(s) == pk {
                r.err(
                    &ap,
                    "PRIMARY_KEY_IN_ALLOWED_COLUMNS",
                    "The primary key must not be patch-allowlisted.",
                );
            }
            if Some(s) == tenant {
                r.err(
                    &ap,
                    "TENANT_KEY_IN_ALLOWED_COLUMNS",
                    "The tenant key must not be patch-allowlisted.",
                );
            }
        }
        for col in &patch_cols {
            if !allowed.contains(col) {
                r.err(
                    format!("{path}.patch.{col}"),
                    "PATCH_COLUMN_NOT_ALLOWED",
                    format!("patch column {col} is not in allowed_columns."),
                );
            }
        }
    }

    for (col, bound) in c
        .get("numeric_bounds")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let bp = format!("{path}.numeric_bounds.{col}");
        if is_safe_identifier(col) && !patch_cols.contains(&col.as_str()) {
            r.err(
                &bp,
                "NUMERIC_BOUND_PATCH_COLUMN_REQUIRED",
                "numeric bound column must be a patch column.",
            );
        }
        if let Some(b) = bound.as_object() {
            if !b.contains_key("minimum") && !b.contains_key("maximum") {
                r.err(
                    &bp,
                    "NUMERIC_BOUND_EMPTY",
                    "numeric bound needs minimum or maximum.",
                );
            }
            numeric_range(r, b, &bp);
        }
    }

    let conflict_col = c
        .get("conflict_guard")
        .and_then(|g| g.get("column"))
        .and_then(Value::as_str);
    for (col, guard) in c
        .get("transition_guards")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let gp = format!("{path}.transition_guards.{col}");
        if is_safe_identifier(col) && !patch_cols.contains(&col.as_str()) {
            r.err(
                &gp,
                "TRANSITION_PATCH_COLUMN_REQUIRED",
                "transition guard column must be a patch column.",
            );
        }
        if let Some(from) = guard.get("from_column").and_then(Value::as_str)
            && is_safe_identifier(from)
            && !readable.contains(from)
            && Some(from) != conflict_col
        {
            r.err(
                format!("{gp}.from_column"),
                "TRANSITION_FROM_COLUMN_NOT_VISIBLE",
                "from_column must be read by the capability.",
            );
        }
    }

    if let Some(g) = c.get("conflict_guard").and_then(Value::as_object) {
        conflict_guard_rules(r, c, g, path);
    }
}

/// A guard column the runner can advance (or a row-hash guard, acknowledged), never patchable.
fn conflict_guard_rules(
    r: &mut Report,
    c: &Map<String, Value>,
    g: &Map<String, Value>,
    path: &str,
) {
    let gp = format!("{path}.conflict_guard");
    let column = g
        .get("column")
        .and_then(Value::as_str)
        .filter(|c| is_safe_identifier(c));
    let ack = g.get("weak_guard_ack") == Some(&Value::Bool(true));
    if column.is_none() && !ack {
        r.err(
            &gp,
            "CONFLICT_GUARD_COLUMN_REQUIRED",
            "conflict_guard needs a safe column, or weak_guard_ack: true for a row-hash guard.",
        );
    }
    let advance = match g.get("advance") {
        None => Some(GuardAdvance::Auto),
        Some(a) => serde_json::from_value::<GuardAdvance>(a.clone()).ok(),
    };
    if let (Some(col), Some(GuardAdvance::Auto)) = (column, advance)
        && guess_advance(col).is_none()
    {
        r.err(
            format!("{gp}.advance"),
            "CONFLICT_GUARD_ADVANCE_UNKNOWN",
            format!("the runner cannot tell how to advance {col} on every write: set advance to timestamp, increment, or application (a trigger or your executor advances it)."),
        );
    }
    if let Some(col) = column
        && let Some(cols) = c.get("allowed_columns").and_then(Value::as_array)
        && cols.iter().any(|x| x.as_str() == Some(col))
    {
        r.err(
            format!("{path}.allowed_columns"),
            "CONFLICT_COLUMN_PATCHABLE",
            format!("{col} is the conflict guard column; the runner advances it and a patch may not set it."),
        );
    }
}

/// Review mode: a proposal written back by the guarded SQL write needs a writable source.
fn writeback_readiness(r: &mut Report, caps: &[Value], sources: Option<&Value>) {
    for (i, cap) in caps.iter().enumerate() {
        if str_of(cap, "kind") != Some("proposal") {
            continue;
        }
        let Some(src_name) = str_of(cap, "source") else {
            continue;
        };
        let Some(src) = sources
            .and_then(|s| s.get(src_name))
            .and_then(Value::as_object)
        else {
            continue;
        };
        if str_of(cap, "executor").unwrap_or("sql_update") != "sql_update" {
            continue;
        }
        if src.get("read_only") == Some(&Value::Bool(true)) {
            r.err(
                format!("$.capabilities[{i}].executor"),
                "READ_ONLY_SOURCE_DIRECT_WRITEBACK",
                "A read_only source cannot take direct SQL writeback.",
            );
        } else if src.get("engine").and_then(Value::as_str) != Some("sqlite")
            && !src.contains_key("write_url_env")
        {
            r.warn(
                format!("$.sources.{src_name}.write_url_env"),
                "WRITEBACK_DISABLED",
                "No write_url_env: approved proposals cannot be applied by direct SQL writeback.",
            );
        }
    }
}

/// URLs and SQL never belong in config, at any depth, strict or not.
fn forbidden_key_scan(r: &mut Report, value: &Value, path: &str) {
    match value {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{path}.{k}");
                if URL_KEYS.contains(&k.as_str()) {
                    r.err(
                        &p,
                        "INLINE_DATABASE_URL_FORBIDDEN",
                        "Database and handler URLs must come from *_env indirection, never inline.",
                    );
                }
                if SQL_KEYS.contains(&k.as_str()) {
                    r.err(
                        &p,
                        "ARBITRARY_SQL_FORBIDDEN",
                        "Config must not carry SQL; capabilities are fixed reads and patches.",
                    );
                }
                forbidden_key_scan(r, child, &p);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                forbidden_key_scan(r, child, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}
