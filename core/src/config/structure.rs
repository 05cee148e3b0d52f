//! The structural pass of config validation, driven by the published JSON Schema
//! (`core/schema/synapsor.runner.schema.json`): every field's type, shape, allowed values and
//! whether it is required are said once, there, for the runner and for editors alike. The schema
//! names the error each check reports (`x-code`, `x-message`); `rules.rs` adds the rules that
//! span fields.
//!
//! This walks the keywords the schema uses and no others (a test fails if the schema gains an
//! unsupported one). A general JSON Schema crate would bring some thirty crates into the core
//! and both bindings, and still would not report one error code per field.

use super::ConfigIssue;
use regex_lite::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::LazyLock;

/// The config schema as shipped (`synapsor-runner config schema` prints it).
pub const SCHEMA_TEXT: &str = include_str!("../../schema/synapsor.runner.schema.json");

static SCHEMA: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(SCHEMA_TEXT).expect("the bundled schema is JSON"));

/// The keywords [`check`] understands; annotations (`description`, `$id`, …) are ignored.
/// After `$ref` come the nine checks on a value itself.
#[cfg(test)]
pub(crate) const KEYWORDS: &[&str] = &[
    "$ref",
    "type",
    "const",
    "enum",
    "pattern",
    "minLength",
    "minimum",
    "maximum",
    "minItems",
    "minProperties",
    "required",
    "properties",
    "propertyNames",
    "additionalProperties",
    "items",
    "allOf",
    "if",
    "then",
    "else",
    "not",
];

/// The error one schema node reports, inherited through `$ref` (the referring node wins).
#[derive(Clone, Copy)]
struct Note<'s> {
    node: &'s Value,
}

impl<'s> Note<'s> {
    fn get(&self, key: &str) -> Option<&'s str> {
        self.node.get(key).and_then(Value::as_str)
    }
}

struct Walk {
    strict: bool,
    errors: Vec<ConfigIssue>,
    patterns: HashMap<String, Regex>,
}

/// Check `config` against the schema; the problems found, each with its code and path.
pub(crate) fn check(config: &Value, strict: bool) -> Vec<ConfigIssue> {
    let mut walk = Walk {
        strict,
        errors: Vec::new(),
        patterns: HashMap::new(),
    };
    walk.node(&SCHEMA, config, "$", None, None);
    walk.errors
}

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => false,
    }
}

fn resolve(reference: &str) -> &'static Value {
    let name = reference
        .strip_prefix("#/$defs/")
        .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
    &SCHEMA["$defs"][name]
}

impl Walk {
    fn fail(&mut self, path: &str, note: Option<Note>, value: &Value, enum_failed: bool) {
        let (code, message) = match note {
            Some(n) => {
                let by_value = value
                    .as_str()
                    .and_then(|s| n.node.get("x-value-codes")?.get(s)?.as_array());
                if let Some([code, message]) = by_value.map(Vec::as_slice) {
                    (code.as_str(), message.as_str())
                } else if enum_failed && n.get("x-enum-code").is_some() {
                    (n.get("x-enum-code"), n.get("x-enum-message"))
                } else {
                    (n.get("x-code"), n.get("x-message"))
                }
            }
            None => (None, None),
        };
        let message = message
            .unwrap_or("This value is not allowed here.")
            .replace("{value}", &value.to_string());
        self.errors.push(ConfigIssue {
            path: path.into(),
            code: code.unwrap_or("INVALID_CONFIG_VALUE").into(),
            message,
        });
    }

    fn matches(&mut self, pattern: &str, s: &str) -> bool {
        self.patterns
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).expect("schema pattern"))
            .is_match(s)
    }

    /// Whether `value` satisfies `schema`, reporting nothing (for `if`, `not` and `x-whole`).
    fn passes(&mut self, schema: &Value, value: &Value) -> bool {
        let mut quiet = Walk {
            strict: true,
            errors: Vec::new(),
            patterns: std::mem::take(&mut self.patterns),
        };
        quiet.node(schema, value, "$", None, None);
        self.patterns = quiet.patterns;
        quiet.errors.is_empty()
    }

    /// The checks on the value itself; false when it fails one (its contents are then not
    /// looked into).
    fn value_checks(
        &mut self,
        s: &Map<String, Value>,
        v: &Value,
        path: &str,
        note: Option<Note>,
    ) -> bool {
        let ok_type = match s.get("type") {
            None => true,
            Some(Value::String(t)) => type_matches(t, v),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| type_matches(t, v)),
            Some(_) => panic!("schema type must be a name or names"),
        };
        let shape_ok = ok_type
            && s.get("const").is_none_or(|c| c == v)
            && match v {
                Value::String(text) => {
                    s.get("pattern")
                        .and_then(Value::as_str)
                        .is_none_or(|p| self.matches(p, text))
                        && s.get("minLength")
                            .and_then(Value::as_u64)
                            .is_none_or(|n| text.chars().count() as u64 >= n)
                }
                Value::Number(n) => {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    s.get("minimum")
                        .and_then(Value::as_f64)
                        .is_none_or(|m| x >= m)
                        && s.get("maximum")
                            .and_then(Value::as_f64)
                            .is_none_or(|m| x <= m)
                }
                Value::Array(items) => s
                    .get("minItems")
                    .and_then(Value::as_u64)
                    .is_none_or(|n| items.len() as u64 >= n),
                Value::Object(map) => s
                    .get("minProperties")
                    .and_then(Value::as_u64)
                    .is_none_or(|n| map.len() as u64 >= n),
                _ => true,
            };
        if !shape_ok {
            self.fail(path, note, v, false);
            return false;
        }
        if let Some(Value::Array(allowed)) = s.get("enum")
            && !allowed.contains(v)
        {
            self.fail(path, note, v, true);
            return false;
        }
        if s.get("x-whole") == Some(&Value::Bool(true))
            && let (Some(items), Value::Array(values)) = (s.get("items"), v)
            && !values.iter().all(|x| self.passes(items, x))
        {
            self.fail(path, note, v, false);
            return false;
        }
        true
    }

    /// The code for a missing property: its own `x-required-code`, else its `x-code`.
    fn missing(&mut self, props: &[&Map<String, Value>], key: &str, path: &str) {
        let node = props
            .iter()
            .find_map(|p| p.get(key))
            .filter(|n| n.is_object());
        let (code, message) = match node {
            Some(n) => {
                let get = |k: &str| n.get(k).and_then(Value::as_str);
                match get("x-required-code") {
                    Some(c) => (Some(c), get("x-required-message")),
                    None => (get("x-code"), get("x-message")),
                }
            }
            None => (None, None),
        };
        self.errors.push(ConfigIssue {
            path: format!("{path}.{key}"),
            code: code.unwrap_or("REQUIRED_FIELD_MISSING").into(),
            message: message
                .map(String::from)
                .unwrap_or_else(|| format!("{key} is required.")),
        });
    }

    /// Check `v` against `schema`. `note` is the error inherited from a referring node;
    /// `outer` is the enclosing object schema's `properties` (for `required` inside `allOf`,
    /// `then` and `else`).
    fn node<'s>(
        &mut self,
        schema: &'s Value,
        v: &Value,
        path: &str,
        note: Option<Note<'s>>,
        outer: Option<&'s Map<String, Value>>,
    ) {
        let s = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return self.fail(path, note, v, false),
            Value::Object(s) => s,
            _ => panic!("schema nodes are objects or booleans"),
        };
        let note = note.or_else(|| s.contains_key("x-code").then_some(Note { node: schema }));
        if let Some(Value::String(r)) = s.get("$ref") {
            self.node(resolve(r), v, path, note, outer);
        }
        if !self.value_checks(s, v, path, note) {
            return;
        }
        if let Some(not) = s.get("not")
            && self.passes(not, v)
        {
            return self.fail(path, note, v, false);
        }
        let own = s.get("properties").and_then(Value::as_object);
        if let Value::Object(map) = v {
            let scopes: Vec<&Map<String, Value>> = own.into_iter().chain(outer).collect();
            if let Some(Value::Array(required)) = s.get("required") {
                for key in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(key) {
                        self.missing(&scopes, key, path);
                    }
                }
            }
            if let Some(names) = s.get("propertyNames") {
                for key in map.keys() {
                    self.node(
                        names,
                        &Value::String(key.clone()),
                        &format!("{path}.{key}"),
                        None,
                        None,
                    );
                }
            }
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match own.and_then(|p| p.get(key)) {
                    Some(sub) => self.node(sub, child, &child_path, None, None),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) if self.strict => self.errors.push(ConfigIssue {
                            path: child_path,
                            code: "UNKNOWN_FIELD".into(),
                            message: format!("Unknown field {key}."),
                        }),
                        Some(sub @ Value::Object(_)) => {
                            self.node(sub, child, &child_path, None, None)
                        }
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Value::Array(values)) = (s.get("items"), v)
            && s.get("x-whole") != Some(&Value::Bool(true))
        {
            for (i, item) in values.iter().enumerate() {
                self.node(items, item, &format!("{path}[{i}]"), None, None);
            }
        }
        let scope = own.or(outer);
        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                self.node(sub, v, path, None, scope);
            }
        }
        if let Some(cond) = s.get("if") {
            let branch = if self.passes(cond, v) { "then" } else { "else" };
            if let Some(sub) = s.get(branch) {
                self.node(sub, v, path, None, scope);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(node: &Value, at: &str, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                for (k, child) in map {
                    let here = format!("{at}/{k}");
                    let is_map_of_schemas = matches!(k.as_str(), "properties" | "$defs");
                    if !is_map_of_schemas
                        && !k.starts_with("x-")
                        && !KEYWORDS.contains(&k.as_str())
                        && !matches!(k.as_str(), "$schema" | "$id" | "title" | "description")
                    {
                        out.push(here.clone());
                    }
                    if is_map_of_schemas {
                        for (name, sub) in child.as_object().unwrap() {
                            visit(sub, &format!("{here}/{name}"), out);
                        }
                    } else if matches!(k.as_str(), "allOf") {
                        for (i, sub) in child.as_array().unwrap().iter().enumerate() {
                            visit(sub, &format!("{here}/{i}"), out);
                        }
                    } else if matches!(
                        k.as_str(),
                        "items"
                            | "additionalProperties"
                            | "propertyNames"
                            | "if"
                            | "then"
                            | "else"
                            | "not"
                    ) {
                        visit(child, &here, out);
                    }
                }
            }
            Value::Bool(_) => {}
            other => panic!("{at}: schema node {other}"),
        }
    }

    #[test]
    fn the_storage_schema_pattern_is_the_ledger_s_rule() {
        let node = &SCHEMA["properties"]["storage"]["properties"]["schema"];
        let long = "a".repeat(63);
        let longer = "a".repeat(64);
        for name in [
            "synapsor",
            "a1",
            "_x",
            "1a",
            "A",
            "",
            "a-b",
            long.as_str(),
            longer.as_str(),
        ] {
            let errors = {
                let mut w = Walk {
                    strict: true,
                    errors: vec![],
                    patterns: HashMap::new(),
                };
                w.node(node, &Value::from(name), "$", None, None);
                w.errors
            };
            assert_eq!(
                errors.is_empty(),
                crate::ledger::valid_schema_name(name),
                "{name:?}"
            );
        }
    }

    #[test]
    fn the_schema_uses_only_keywords_the_walk_understands() {
        let mut unknown = Vec::new();
        visit(&SCHEMA, "#", &mut unknown);
        assert!(unknown.is_empty(), "unsupported keywords: {unknown:?}");
    }

    #[test]
    fn every_field_that_can_fail_names_its_code() {
        // A node that checks something and has no x-code of its own must be reached through a
        // $ref from one that has (or sit where the code comes from elsewhere: if, not, items of
        // an x-whole array).
        fn walk(node: &Value, coded: bool, at: &str, out: &mut Vec<String>) {
            let Value::Object(map) = node else { return };
            let coded = coded || map.contains_key("x-code");
            // KEYWORDS[1..10]: the checks on a value itself.
            let checks = KEYWORDS[1..10].iter().any(|k| map.contains_key(*k));
            if checks && !coded && !map.contains_key("$ref") {
                out.push(at.to_string());
            }
            for (k, child) in map {
                match k.as_str() {
                    "properties" => {
                        for (name, sub) in child.as_object().unwrap() {
                            walk(sub, false, &format!("{at}/properties/{name}"), out);
                        }
                    }
                    "additionalProperties" | "propertyNames" => {
                        walk(child, false, &format!("{at}/{k}"), out)
                    }
                    "items" if map.get("x-whole") != Some(&Value::Bool(true)) => {
                        walk(child, false, &format!("{at}/items"), out)
                    }
                    "allOf" => {
                        for (i, sub) in child.as_array().unwrap().iter().enumerate() {
                            walk(sub, coded, &format!("{at}/allOf/{i}"), out);
                        }
                    }
                    "then" | "else" => walk(child, coded, &format!("{at}/{k}"), out),
                    _ => {}
                }
            }
        }
        let mut uncoded = Vec::new();
        for (name, def) in SCHEMA["$defs"].as_object().unwrap() {
            // Shared leaf shapes get their code from the field that refers to them.
            if ["env_name", "identifier", "safe_name", "text"].contains(&name.as_str()) {
                continue;
            }
            walk(def, false, &format!("#/$defs/{name}"), &mut uncoded);
        }
        walk(&SCHEMA, false, "#", &mut uncoded);
        assert!(
            uncoded.is_empty(),
            "checks without an error code: {uncoded:?}"
        );
    }

    /// Our walk and a general JSON Schema validator agree on which configs the schema accepts:
    /// the reference examples, the demo's config, and each of them broken in one of many ways.
    #[test]
    fn the_walk_agrees_with_a_general_json_schema_validator() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let general = jsonschema::options()
            .build(&SCHEMA)
            .expect("a valid JSON Schema");
        let mut corpus: Vec<Value> = Vec::new();
        for entry in std::fs::read_dir(root.join("fixtures/examples")).unwrap() {
            let path = entry.unwrap().path().join("synapsor.runner.json");
            if let Ok(text) = std::fs::read_to_string(&path) {
                corpus.push(serde_json::from_str(&text).unwrap());
            }
        }
        corpus.push(serde_json::from_str(crate::demo::DEMO_CONFIG).unwrap());
        let breakages: Vec<(&str, Value)> = vec![
            ("/version", Value::from(2)),
            ("/mode", Value::from("yolo")),
            ("/extra", Value::from(1)),
            ("/storage", serde_json::json!({"engine": "postgres"})),
            (
                "/storage",
                serde_json::json!({"engine": "postgres", "url_env": "L", "schema": "Bad"}),
            ),
            ("/sources", serde_json::json!({})),
            (
                "/sources/bad name",
                serde_json::json!({"engine": "sqlite", "path": "x.db"}),
            ),
            ("/sources/s2", serde_json::json!({"engine": "postgres"})),
            (
                "/sources/s2",
                serde_json::json!({"engine": "mysql", "read_url_env": "R", "path": "p"}),
            ),
            ("/sources/s2", serde_json::json!({"engine": "sqlite"})),
            (
                "/sources/s2",
                serde_json::json!({"engine": "sqlite", "path": "x", "statement_timeout_ms": 0}),
            ),
            (
                "/executors",
                serde_json::json!({"h": {"type": "http_handler"}}),
            ),
            (
                "/executors",
                serde_json::json!({"h": {"type": "http_handler", "url_env": "U", "auth": {"type": "basic", "token_env": "T"}}}),
            ),
            (
                "/executors",
                serde_json::json!({"h": {"type": "in_process", "url_env": "U"}}),
            ),
            (
                "/executors",
                serde_json::json!({"h": {"type": "command_handler", "command_env": "C", "timeout_ms": 86400001}}),
            ),
            ("/executors", serde_json::json!({"h": {"type": "teleport"}})),
            ("/capabilities", serde_json::json!([])),
            ("/capabilities/0/name", Value::from("no_namespace")),
            ("/capabilities/0/kind", Value::from("write")),
            (
                "/capabilities/0/visible_columns",
                serde_json::json!(["ok", "not ok"]),
            ),
            ("/capabilities/0/evidence", Value::from("optional")),
            ("/capabilities/0/max_rows", Value::from(10001)),
            (
                "/capabilities/0/args/x",
                serde_json::json!({"type": "date"}),
            ),
            (
                "/capabilities/0/args/x",
                serde_json::json!({"type": "string", "enum": []}),
            ),
            (
                "/capabilities/0/args/x",
                serde_json::json!({"type": "string", "enum": [{"a": 1}]}),
            ),
            (
                "/capabilities/0/target/tenant_key",
                Value::from("tenant id"),
            ),
            (
                "/capabilities/0/approval",
                serde_json::json!({"mode": "model"}),
            ),
            ("/capabilities/0/approval", serde_json::json!({"mode": ""})),
            (
                "/capabilities/0/transition_guards",
                serde_json::json!({"status": {"allowed": {"open": []}}}),
            ),
            (
                "/capabilities/0/transition_guards",
                serde_json::json!({"status": {"allowed": {"open": ["closed"]}}}),
            ),
            (
                "/capabilities/0/patch",
                serde_json::json!({"c": {"fixed": [1]}}),
            ),
            (
                "/capabilities/0/conflict_guard",
                serde_json::json!({"column": "v", "advance": "sometimes"}),
            ),
            (
                "/contexts",
                serde_json::json!({"c": {"provider": "telepathy"}}),
            ),
            (
                "/cloud",
                serde_json::json!({"base_url_env": "B", "runner_token_env": "T", "adapter_id": "a", "engines": ["oracle"]}),
            ),
        ];
        let base_count = corpus.len();
        for config in &corpus {
            assert_eq!(check(config, true), vec![], "{config}");
        }
        for i in 0..base_count {
            for (pointer, value) in &breakages {
                let mut broken = corpus[i].clone();
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                let Some(target) = broken.pointer_mut(if parent.is_empty() { "" } else { parent })
                else {
                    continue;
                };
                match target {
                    Value::Object(map) => {
                        map.insert(key.to_string(), value.clone());
                    }
                    Value::Array(items) => match key.parse::<usize>() {
                        Ok(n) if n < items.len() => items[n] = value.clone(),
                        _ => continue,
                    },
                    _ => continue,
                }
                corpus.push(broken);
            }
        }
        assert!(corpus.len() > 100);
        let refused = corpus.iter().filter(|c| !check(c, true).is_empty()).count();
        assert!(
            refused + base_count >= corpus.len() * 9 / 10,
            "{refused} of {}",
            corpus.len()
        );
        for config in &corpus {
            let ours = check(config, true);
            assert_eq!(
                ours.is_empty(),
                general.is_valid(config),
                "disagreement on {config}: ours {ours:?}"
            );
        }
    }
}
